"""gbloss.cuda: GPU kernels from the CPU source, the device-resident XGBoost loop, fallbacks.

Without an NVIDIA GPU the module runs under numba-cuda's simulator (``numba.config.ENABLE_CUDASIM``
is set here before numba.cuda is imported), on small arrays: the kernels, the one-row views and
the whole device-resident loop (with NumPy standing in for CuPy) are exercised on the CPU.
Tests marked ``gpu`` need a real GPU with CuPy and skip cleanly otherwise; on the GPU machine
the unmarked kernel tests run on the GPU too. ``test_kernels_compile_for_the_gpu`` compiles
every kernel through numba-cuda's real pipeline to PTX for sm_90 without a GPU when NVVM and
NVRTC are installed (``nvidia-cuda-nvcc-cu12``, ``nvidia-cuda-nvrtc-cu12``), and skips if not.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

if importlib.util.find_spec("numba_cuda") is None:
    pytest.skip("needs numba-cuda (pip install numba-cuda)", allow_module_level=True)

HAS_GPU = shutil.which("nvidia-smi") is not None or os.path.exists("/dev/nvidiactl") \
    or os.path.exists("/dev/nvidia0")
if not HAS_GPU and "numba.cuda" not in sys.modules:
    import numba

    numba.config.ENABLE_CUDASIM = 1  # what NUMBA_ENABLE_CUDASIM=1 sets; read by numba.cuda

import xgboost as xgb  # noqa: E402
from conftest import BINARY, MULTICLASS, MULTILABEL, case_params, make_data  # noqa: E402

import gbloss  # noqa: E402
import gbloss.cuda as gcuda  # noqa: E402
import gbloss.xgboost as gbx  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HAS_CUPY = importlib.util.find_spec("cupy") is not None
ON_GPU = HAS_GPU and not gcuda.SIMULATOR and HAS_CUPY
if os.environ.get("GBLOSS_REQUIRE_GPU") == "1" and not ON_GPU:  # set by benchmarks/gpu_check.sh
    raise RuntimeError(f"GBLOSS_REQUIRE_GPU=1 but the GPU tests would skip: GPU device node or "
                       f"nvidia-smi found: {HAS_GPU}, simulator: {gcuda.SIMULATOR}, CuPy: "
                       f"{HAS_CUPY}")
needs_gpu = pytest.mark.skipif(not ON_GPU, reason="needs an NVIDIA GPU with CuPy")
#: XGBoost's own warnings when device="cuda" runs on a machine without a GPU.
XGB_NO_GPU = "ignore:.*(No visible GPU|Device is changed).*:UserWarning"
ONE_THREAD = {"nthread": 1}
#: CPU/GPU agreement: relative, plus an absolute floor for values near zero. The math runs in
#: float64 on both; float32 outputs may differ by their last bit where libdevice and the CPU's
#: libm differ by an ulp of float64 next to a float32 rounding boundary.
RTOL, ATOL = 1e-9, 1e-14
RTOL_FLOAT32 = 2.0**-23


def _subprocess(code, *, simulator=False, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


# -- import hygiene --------------------------------------------------------------------------


def test_import_gbloss_imports_neither_numba_cuda_nor_cupy():
    result = _subprocess("""
        import sys
        import numpy as np
        import gbloss, gbloss.xgboost as gbx, gbloss.sklearn, gbloss.calibration
        import xgboost as xgb
        X = np.random.default_rng(0).normal(size=(50, 3))
        gbx.train({"nthread": 1}, xgb.DMatrix(X, label=X[:, 0] > 0), 2,
                  loss=gbloss.FocalLoss(), X=X)  # CPU: X is not used, nothing GPU loads
        gpu = sorted(m for m in sys.modules
                     if m.split(".")[0] in ("cupy", "numba_cuda", "cuda")
                     or m == "numba.cuda" or m.startswith("numba.cuda."))
        print(gpu)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


# -- kernels: the same source, the same numbers ----------------------------------------------


def test_device_functions_are_compiled_from_the_cpu_source():
    from gbloss.losses import _loops, focal, primitives

    for name, scalar in gbloss.FocalLoss.scalars.items():
        gpu = gcuda.device_function(scalar).py_func
        cpu = gcuda.python_source(scalar)
        assert gpu.__code__ is cpu.__code__, name  # one code object: no second copy
        assert gpu.__globals__ is not cpu.__globals__  # calls resolve to the device versions
    core = gcuda.device_function(primitives.focal_core).py_func
    assert core.__globals__["sigmoid_parts"] is gcuda.device_function(primitives.sigmoid_parts)
    kernels = gcuda.device_loops(gbloss.FocalLoss.scalars)
    row = kernels.sigmoid_gradient_hessian.py_func.__globals__["row_loop"].py_func
    assert row.__code__ is _loops.sigmoid_gradient_hessian.__code__  # the CPU template
    assert row.__globals__["sigmoid_element"] is gcuda.device_function(focal.sigmoid_element)


def _extreme_rows(raw, y, rng):
    """Append rows with saturated margins (+-30, +-100, 0) to exercise the stable branches."""
    extremes = np.array([-100.0, -30.0, 0.0, 30.0, 100.0])
    shape = (extremes.size,) + raw.shape[1:]
    extra_raw = np.broadcast_to(extremes.reshape(-1, *([1] * (raw.ndim - 1))), shape).copy()
    extra_y = y[rng.integers(0, y.shape[0], extremes.size)]
    return np.concatenate([raw, extra_raw]), np.concatenate([y, extra_y])


@pytest.mark.parametrize("case, task, n_out", case_params(k_values=(3,)))
def test_gpu_kernels_match_the_cpu_kernels(case, task, n_out, rng):
    loss = case.build(n_out)
    y, raw = make_data(task, n_out, 11, rng, soft=task != MULTICLASS, avoid_kink_of=loss)
    raw, y = _extreme_rows(raw, y, rng)
    weight = rng.uniform(0.2, 3.0, y.shape[0])
    for hessian in ("psd", "exact", "gn"):
        lossh = type(loss)(**{**loss.get_params(), "hessian": hessian})
        for dtype in (np.float64, np.float32):
            r = raw.astype(dtype)
            g, h = gcuda.gradient_hessian(lossh, y, r, weight)
            g0, h0 = lossh.gradient_hessian(y, r, weight)
            assert g.dtype == dtype and g.shape == r.shape
            rtol = RTOL if dtype == np.float64 else RTOL_FLOAT32
            np.testing.assert_allclose(g, g0, rtol=rtol, atol=ATOL, err_msg=f"grad {hessian}")
            np.testing.assert_allclose(h, h0, rtol=rtol, atol=ATOL, err_msg=f"hess {hessian}")
    np.testing.assert_allclose(gcuda.loss_values(loss, y, raw, weight),
                               loss.loss(y, raw, weight), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gcuda.loss_values(loss, y, raw), loss.loss(y, raw),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("n_class", [2, 10])
def test_softmax_kernel_for_several_class_counts(n_class, rng):
    loss = gbloss.FocalLoss(2.0, np.linspace(0.2, 0.8, n_class))
    y, raw = make_data(MULTICLASS, n_class, 9, rng)
    g, h = gcuda.gradient_hessian(loss, y, raw)
    g0, h0 = loss.gradient_hessian(y, raw)
    np.testing.assert_allclose(g, g0, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(h, h0, rtol=RTOL, atol=ATOL)


def test_device_gradient_validates_labels_and_weights_like_the_cpu(rng):
    loss = gbloss.FocalLoss()
    with pytest.raises(ValueError, match="y must hold labels in"):
        gcuda.gradient_hessian(loss, np.array([0.0, 2.0]), np.zeros(2))
    with pytest.raises(ValueError, match="sample_weight must be finite"):
        gcuda.gradient_hessian(loss, np.array([0.0, 1.0]), np.zeros(2), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="does not support multiclass"):
        gcuda.gradient_hessian(gbloss.AsymmetricLoss(), np.array([0.0, 2.0]), np.zeros((2, 3)))


_PTX_CHECK = """
    import sys, types
    for lib in ("nvvm", "nvrtc"):
        try:
            from cuda.pathfinder import load_nvidia_dynamic_lib
            load_nvidia_dynamic_lib(lib)
        except Exception as exc:
            print(f"SKIP lib{lib} not found ({type(exc).__name__})")
            sys.exit(0)
    import numpy as np
    import gbloss.losses  # scipy's array-API layer copies numpy's namespace, row_stack too
    sys.path.insert(0, "examples")
    import custom_loss  # noqa: F401  (a registered loss outside gbloss: primitives.sigmoid_parts)
    ROW_STACK_REMOVED = @REMOVE@
    if ROW_STACK_REMOVED and hasattr(np, "row_stack"):
        del np.row_stack  # as in NumPy 2.5
    from numba.cuda import dispatcher
    # compile without a device: the device functions ask the driver for the target's cc
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=(9, 0))
    from numba import cuda
    import gbloss.cuda as gc
    assert not gc.SIMULATOR
    assert hasattr(np, "row_stack") != ROW_STACK_REMOVED  # the shim left numpy as it was
    import numba
    from numba.core import types as nt
    from gbloss.losses import REGISTRY, BINARY, MULTICLASS, LabelStats
    # every registered loss at its defaults, and with label smoothing (the soft-target
    # softmax loop) where it has it; prepared on one label of every class (priors, counts),
    # statistics built by hand: no CPU kernel may run here (Numba's CPU target needs row_stack)
    variants = [(cls, {}) for cls in REGISTRY.values()]
    variants += [(cls, {"label_smoothing": 0.1}) for cls in REGISTRY.values()
                 if "label_smoothing" in cls.parameters]
    for dtype in (np.float32, np.float64):
        for cls, params in variants:
            for task in cls.tasks:
                n_out = 1 if task == BINARY else 3
                counts = np.ones(2) if task == BINARY else (
                    np.ones(3) if task == MULTICLASS else np.ones((3, 2)))
                loss = cls(**params).prepare(LabelStats(task, counts, counts))
                kernels = gc.device_loops(loss.scalars)
                y = np.zeros(4) if task == MULTICLASS else np.zeros((4, n_out))
                raw = np.zeros((4, n_out), dtype)
                theta = loss.kernel_params(task, n_out)
                link = "softmax" if task == MULTICLASS else "sigmoid"
                gh = (y, raw, np.zeros(0), theta, 1, raw, raw)
                out = np.zeros(4) if task == MULTICLASS else np.zeros((4, n_out))
                for name, args in ((f"{link}_gradient_hessian", gh),
                                   (f"{link}_loss", (y, raw, np.zeros(0), theta, out))):
                    sig = nt.void(*(numba.typeof(a) for a in args))
                    ptx, _ = cuda.compile_ptx(getattr(kernels, name).py_func, sig, cc=(9, 0))
                    assert ".entry" in ptx, (cls.__name__, name)
    print("OK")
"""


@pytest.mark.parametrize("row_stack_removed", [False, True], ids=["numpy", "numpy2.5-like"])
def test_kernels_compile_for_the_gpu(row_stack_removed):
    """numba-cuda's real typing, lowering and NVVM, no simulator; with ``numpy.row_stack``
    removed (NumPy 2.5) the compatibility shim must make the first compile work."""
    result = _subprocess(_PTX_CHECK.replace("@REMOVE@", str(row_stack_removed)))
    assert result.returncode == 0, result.stderr[-3000:]
    if result.stdout.startswith("SKIP"):
        pytest.skip(result.stdout.strip()[5:] + ": install nvidia-cuda-nvcc-cu12 and "
                    "nvidia-cuda-nvrtc-cu12 to compile the kernels without a GPU")
    assert result.stdout.strip() == "OK"


def test_row_stack_shim_is_needed_and_narrow():
    """Without the shim numba-cuda's first compile fails under NumPy 2.5; with it, the import
    works and NumPy is left without ``row_stack``."""
    result = _subprocess("""
        import numpy as np
        import gbloss.losses  # before the removal: scipy copies numpy's namespace, row_stack too
        if hasattr(np, "row_stack"):
            del np.row_stack
        try:
            import numba.cuda.np.arrayobj
        except AttributeError as exc:
            print("without shim:", exc)
        import sys
        for name in [m for m in sys.modules if m.startswith("numba.cuda.np.arrayobj")]:
            del sys.modules[name]
        import gbloss.cuda
        print("with shim: ok", hasattr(np, "row_stack"))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "with shim: ok False" in result.stdout
    if "without shim" not in result.stdout:
        pytest.fail("numba-cuda no longer needs the row_stack shim: remove it from gbloss.cuda "
                    "(and this test)")


# -- the device-resident loop, on the CPU (simulator kernels, NumPy in place of CuPy) --------


@pytest.fixture
def cpu_device(monkeypatch):
    """Let gbloss.xgboost.train take the device-resident path on the CPU: NumPy as the array
    module (the simulator runs the kernels)."""
    if not gcuda.SIMULATOR:
        pytest.skip("runs the device-resident loop on the CPU, under the simulator")
    monkeypatch.setattr(gcuda, "_array_module", lambda: np)
    monkeypatch.setattr(gcuda, "require", lambda cupy=True: np)


def _data(task, rng, n=240, weighted=True):
    X = rng.normal(size=(n, 5)).astype(np.float32)
    z = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=n)
    if task == BINARY:
        y = (z > 1.0).astype(np.float64)
    elif task == MULTICLASS:
        y = np.digitize(z, [-0.3, 1.0]).astype(np.float64)
    else:
        y = (X[:, :3] + rng.normal(scale=0.8, size=(n, 3)) > [1.2, 0.5, 0.0]).astype(float)
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    return X, y, w


_TASKS = {
    BINARY: (gbloss.FocalLoss(2.0, 0.25), {}),
    MULTICLASS: (gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5]), {"num_class": 3}),
    MULTILABEL: (gbloss.AsymmetricLoss(0.0, 4.0, 0.05), {"multi_strategy": "multi_output_tree"}),
}


def _margins(booster, X):
    return booster.inplace_predict(X, predict_type="margin")


@pytest.mark.filterwarnings(XGB_NO_GPU)
@pytest.mark.parametrize("task", [BINARY, MULTICLASS, MULTILABEL])
def test_device_loop_equals_the_host_objective(task, cpu_device, rng):
    X, y, w = _data(task, rng)
    loss, extra = _TASKS[task]
    params = {"max_depth": 3, "eta": 0.3, **ONE_THREAD, **extra}
    dtrain = xgb.DMatrix(X, label=y, weight=w)
    dvalid = xgb.DMatrix(X[:80], label=y[:80], weight=w[:80])
    results = []
    for device, X_arg in (("cpu", None), ("cuda", X)):
        history = {}
        booster = gbx.train({**params, "device": device}, dtrain, 6, loss=loss, X=X_arg,
                            evals=[(dvalid, "valid")], evals_result=history,
                            hessian_scale=2.0 if task == MULTICLASS else 1.0,
                            verbose_eval=False)
        results.append((booster, history))
    (host, host_history), (dev, dev_history) = results
    np.testing.assert_allclose(_margins(dev, X), _margins(host, X), rtol=0, atol=1e-5)
    np.testing.assert_allclose(dev_history["valid"]["loss"], host_history["valid"]["loss"],
                               rtol=1e-6)
    assert dev.attributes() == host.attributes()  # loss, task, start
    np.testing.assert_allclose(gbx.predict_proba(dev, X), gbx.predict_proba(host, X),
                               atol=1e-6)


@pytest.mark.filterwarnings(XGB_NO_GPU)
def test_device_loop_early_stopping_callbacks_and_saved_model(cpu_device, rng, tmp_path):
    X, y, w = _data(BINARY, rng, n=300)
    rng2 = np.random.default_rng(1)
    X_val, y_val, _ = _data(BINARY, rng2, n=200, weighted=False)
    y_val = rng2.permutation(y_val)  # noise: the validation loss soon stops improving
    dtrain = xgb.DMatrix(X, label=y, weight=w)
    dvalid = xgb.DMatrix(X_val, label=y_val)
    loss = gbloss.FocalLoss(2.0, 0.25)

    class Rounds(xgb.callback.TrainingCallback):
        def __init__(self):
            self.seen = []

        def after_iteration(self, model, epoch, evals_log):
            self.seen.append(epoch)
            return False

    boosters = []
    for device, X_arg in (("cpu", None), ("cuda", X)):
        rounds = Rounds()
        booster = gbx.train({"max_depth": 4, "eta": 0.5, "device": device, **ONE_THREAD},
                            dtrain, 60, loss=loss, X=X_arg, metric="average_precision",
                            evals=[(dvalid, "valid")], early_stopping_rounds=3,
                            callbacks=[rounds], verbose_eval=False)
        boosters.append((booster, rounds.seen))
    (host, host_seen), (dev, dev_seen) = boosters
    assert dev.best_iteration == host.best_iteration < 50
    assert dev_seen == host_seen == list(range(len(dev_seen)))
    assert dev.num_boosted_rounds() == host.num_boosted_rounds()
    path = tmp_path / "model.ubj"
    dev.save_model(path)
    loaded = xgb.Booster(model_file=path)
    assert loaded.attr(gbx.ATTR_LOSS) == host.attr(gbx.ATTR_LOSS)
    np.testing.assert_allclose(gbx.predict_proba(loaded, X), gbx.predict_proba(host, X),
                               atol=1e-6)


@pytest.mark.filterwarnings(XGB_NO_GPU)
def test_device_loop_continues_training_and_keeps_base_margin(cpu_device, rng):
    X, y, w = _data(BINARY, rng)
    loss = gbloss.FocalLoss(2.0)
    params = {"max_depth": 3, **ONE_THREAD}
    dtrain = xgb.DMatrix(X, label=y, weight=w)
    first = gbx.train(params, dtrain, 3, loss=loss)
    boosters = [gbx.train({**params, "device": device}, dtrain, 3, loss=loss, X=X_arg,
                          xgb_model=first.copy()) for device, X_arg in (("cpu", None), ("cuda", X))]
    np.testing.assert_allclose(_margins(boosters[1], X), _margins(boosters[0], X), atol=1e-5)
    assert boosters[1].num_boosted_rounds() == 6

    for task in (BINARY, MULTICLASS):
        X, y, _ = _data(task, rng)
        extra = {"num_class": 3} if task == MULTICLASS else {}
        margin = rng.normal(size=(X.shape[0], 3) if extra else X.shape[0]).astype(np.float32)
        dmargin = xgb.DMatrix(X, label=y, base_margin=margin)
        boosters = [gbx.train({**params, **extra, "device": device}, dmargin, 3, loss=loss,
                              X=X_arg) for device, X_arg in (("cpu", None), ("cuda", X))]
        dtest = xgb.DMatrix(X, base_margin=margin)
        np.testing.assert_allclose(boosters[1].predict(dtest, output_margin=True),
                                   boosters[0].predict(dtest, output_margin=True), atol=1e-5)


@pytest.mark.filterwarnings(XGB_NO_GPU)
def test_device_loop_takes_pandas_and_copies_nothing_per_round(cpu_device, rng, monkeypatch):
    pd = pytest.importorskip("pandas")
    X, y, w = _data(BINARY, rng)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    dtrain = xgb.DMatrix(frame, label=y, weight=w)
    predicted, boosted = [], []
    original_predict, original_boost = xgb.Booster.predict, xgb.Booster.boost

    def predict(self, data, *args, **kwargs):
        predicted.append(data)
        return original_predict(self, data, *args, **kwargs)

    def boost(self, dtrain, iteration, *, grad=None, hess=None, fobj=None):
        boosted.append((grad, hess))
        return original_boost(self, dtrain, iteration, grad=grad, hess=hess, fobj=fobj)

    with monkeypatch.context() as spies:
        spies.setattr(xgb.Booster, "predict", predict)
        spies.setattr(xgb.Booster, "boost", boost)
        booster = gbx.train({"max_depth": 3, "device": "cuda", **ONE_THREAD}, dtrain, 5,
                            loss=gbloss.FocalLoss(2.0), X=frame, metric=None)
    assert predicted == []  # the margins never leave the device (no Booster.predict)
    assert len(boosted) == 5
    assert all(g is boosted[0][0] and h is boosted[0][1] for g, h in boosted)  # one buffer
    host = gbx.train({"max_depth": 3, **ONE_THREAD}, dtrain, 5, loss=gbloss.FocalLoss(2.0))
    np.testing.assert_allclose(_margins(booster, frame), _margins(host, frame), atol=1e-5)

    frame["c"] = pd.Categorical(["a", "b"] * (X.shape[0] // 2))
    dcat = xgb.DMatrix(frame, label=y, enable_categorical=True)
    with pytest.raises(ValueError, match="numeric feature columns"):
        gbx.train({"device": "cuda", **ONE_THREAD}, dcat, 2, loss=gbloss.FocalLoss(), X=frame)


@pytest.mark.filterwarnings(XGB_NO_GPU)
def test_device_loop_refuses_a_feature_matrix_of_another_size(cpu_device, rng):
    X, y, _ = _data(BINARY, rng)
    dtrain = xgb.DMatrix(X, label=y)
    with pytest.raises(ValueError, match=r"X has shape \(239, 5\) but dtrain has 240 rows"):
        gbx.train({"device": "cuda"}, dtrain, 2, loss=gbloss.FocalLoss(), X=X[:-1])


# -- explicit fallbacks ----------------------------------------------------------------------


@pytest.mark.filterwarnings(XGB_NO_GPU)
@pytest.mark.filterwarnings("ignore:(?s).*(dart|rate_drop).*:UserWarning")  # deprecated, unknown
@pytest.mark.parametrize("how", ["no X", "sparse X", "dart", "dropout"])
def test_gpu_request_the_loop_cannot_serve_warns_and_uses_the_host_objective(how, rng):
    from scipy import sparse

    X, y, _ = _data(BINARY, rng, weighted=False)
    params = {"device": "cuda", "max_depth": 2, **ONE_THREAD}
    X_arg = None if how == "no X" else sparse.csr_matrix(X) if how == "sparse X" else X
    if how == "dart":
        params["booster"] = "dart"
    if how == "dropout":  # XGBoost 3.4: dropout on the tree booster
        params["rate_drop"] = 0.1
    match = {"no X": "no X= was given", "sparse X": "X is sparse", "dart": "is not 'gbtree'",
             "dropout": "dropout or process_type='update' changes earlier trees"}
    with pytest.warns(UserWarning, match=match[how] + ".*gradients on the host"):
        booster = gbx.train(params, xgb.DMatrix(X, label=y), 2, loss=gbloss.FocalLoss(),
                            X=X_arg)
    assert booster.num_boosted_rounds() == 2


@pytest.mark.skipif(HAS_CUPY, reason="CuPy is installed")
def test_device_path_without_cupy_is_a_clear_error(rng):
    X, y, _ = _data(BINARY, rng, weighted=False)
    with pytest.raises(gcuda.GPUUnavailableError, match="CuPy|no CUDA GPU"):
        gbx.train({"device": "cuda"}, xgb.DMatrix(X, label=y), 2, loss=gbloss.FocalLoss(), X=X)


_NO_GPU_TRAIN = """
    import importlib.util
    import numpy as np, xgboost as xgb, gbloss, gbloss.xgboost as gbx
    {hide}
    X = np.random.default_rng(0).normal(size=(50, 3))
    try:
        gbx.train({{"device": "cuda"}}, xgb.DMatrix(X, label=X[:, 0] > 0), 2,
                  loss=gbloss.FocalLoss(), X=X)
    except RuntimeError as exc:
        print(type(exc).__name__, exc)
"""
_HIDE_NUMBA_CUDA = """
    find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda name, *a: None if name == "numba_cuda" else \\
        find_spec(name, *a)
"""


@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
@pytest.mark.parametrize("missing", ["gpu", "numba-cuda"])
def test_device_path_without_gpu_or_numba_cuda_is_a_clear_error(missing):
    hide = _HIDE_NUMBA_CUDA if missing == "numba-cuda" else ""
    result = _subprocess(_NO_GPU_TRAIN.format(hide=textwrap.indent(textwrap.dedent(hide), "    ")))
    assert result.returncode == 0, result.stderr[-3000:]
    expected = "no CUDA GPU is available" if missing == "gpu" else "need the numba-cuda package"
    assert result.stdout.startswith("GPUUnavailableError") and expected in result.stdout, \
        result.stdout


@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
def test_gpu_benchmark_fails_clearly_without_a_gpu():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"),
                             "--small"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "needs an NVIDIA GPU" in result.stderr


# -- on the GPU ------------------------------------------------------------------------------


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("case, task, n_out", case_params(k_values=(3, 10)))
def test_gpu_kernels_on_device_arrays_match_the_cpu(case, task, n_out, rng):
    import cupy as cp

    loss = case.build(n_out)
    y, raw = make_data(task, n_out, 5000, rng, soft=task != MULTICLASS, avoid_kink_of=loss)
    raw, y = _extreme_rows(raw, y, rng)
    weight = rng.uniform(0.2, 3.0, y.shape[0])
    for dtype in (np.float64, np.float32):
        r = raw.astype(dtype)
        g, h = gcuda.gradient_hessian(loss, cp.asarray(y), cp.asarray(r), cp.asarray(weight))
        g0, h0 = loss.gradient_hessian(y, r, weight)
        rtol = RTOL if dtype == np.float64 else RTOL_FLOAT32
        np.testing.assert_allclose(cp.asnumpy(cp.asarray(g)), g0, rtol=rtol, atol=ATOL)
        np.testing.assert_allclose(cp.asnumpy(cp.asarray(h)), h0, rtol=rtol, atol=ATOL)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("task", [BINARY, MULTICLASS, MULTILABEL])
@pytest.mark.parametrize("kind", ["numpy", "cupy", "pandas"])
def test_gpu_device_loop_equals_the_host_objective(task, kind, rng, monkeypatch):
    import cupy as cp

    X, y, w = _data(task, rng, n=5000)
    X_arg = {"numpy": X, "cupy": cp.asarray(X), "pandas": None}[kind]
    if kind == "pandas":
        import pandas as pd

        X_arg = pd.DataFrame(X)
    loss, extra = _TASKS[task]
    params = {"max_depth": 4, "device": "cuda", "tree_method": "hist", **extra}
    dtrain = xgb.QuantileDMatrix(cp.asarray(X), label=cp.asarray(y), weight=cp.asarray(w))
    dvalid = xgb.QuantileDMatrix(cp.asarray(X[:1000]), label=cp.asarray(y[:1000]), ref=dtrain)
    grads = []
    boost = xgb.Booster.boost

    def spy(self, dtrain, iteration, *, grad=None, hess=None, fobj=None):
        grads.append((grad, hess))
        return boost(self, dtrain, iteration, grad=grad, hess=hess, fobj=fobj)

    history = {}
    with monkeypatch.context() as spies:
        spies.setattr(xgb.Booster, "boost", spy)
        dev = gbx.train(params, dtrain, 20, loss=loss, X=X_arg, evals=[(dvalid, "valid")],
                        evals_result=history, early_stopping_rounds=5, verbose_eval=False)
    assert all(isinstance(g, cp.ndarray) and isinstance(h, cp.ndarray) for g, h in grads)
    assert all(g is grads[0][0] for g, _ in grads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # host gradients: the warned fallback
        host_history = {}
        host = gbx.train(params, dtrain, 20, loss=loss, evals=[(dvalid, "valid")],
                         evals_result=host_history, early_stopping_rounds=5, verbose_eval=False)
    Xd = cp.asarray(X)
    diff = cp.abs(_margins(dev, Xd) - _margins(host, Xd)).max()
    assert float(diff) < 1e-4, float(diff)  # float32 margins; gpu.md measured 9.5e-7
    assert dev.best_iteration == host.best_iteration
    for key in (gbx.ATTR_LOSS, gbx.ATTR_TASK, gbx.ATTR_START):
        assert dev.attr(key) == host.attr(key)
    np.testing.assert_allclose(history["valid"]["loss"], host_history["valid"]["loss"],
                               rtol=1e-4)
