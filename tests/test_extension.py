"""The extension point: a loss defined outside gbloss, in this file, works everywhere once
registered; and an edited loss module never loads stale machine code from Numba's cache."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import special

import gbloss
from gbloss.losses import BINARY, MULTICLASS, MULTILABEL, Loss, register, scalar
from gbloss.losses.primitives import HESS_FLOOR, HESS_PSD

REPO = Path(gbloss.__file__).resolve().parent.parent


@scalar
def _scaled_sigmoid_element(y, z, k, theta, mode):
    """``scale * (y softplus(-z) + (1 - y) softplus(z))``: cross-entropy times a constant."""
    scale, = theta
    p = 1.0 / (1.0 + np.exp(-z)) if z >= 0 else np.exp(z) / (1.0 + np.exp(z))
    q = 1.0 / (1.0 + np.exp(z)) if z < 0 else np.exp(-z) / (1.0 + np.exp(-z))
    loss = scale * (y * np.logaddexp(0.0, -z) + (1.0 - y) * np.logaddexp(0.0, z))
    hess = scale * p * q
    floor = HESS_FLOOR * scale if mode == HESS_PSD else 0.0
    return loss, scale * ((1.0 - y) * p - y * q), hess + floor


@scalar
def _no_shift(k, c, theta):
    return 0.0


@scalar
def _scaled_softmax_core(t, c, theta, mode):
    scale, = theta
    p = 1.0 / (1.0 + np.exp(-t)) if t >= 0 else np.exp(t) / (1.0 + np.exp(t))
    q = 1.0 - p if t < 0 else np.exp(-t) / (1.0 + np.exp(-t))
    return scale * np.logaddexp(0.0, -t), -scale * q, scale * p * q, \
        HESS_FLOOR * scale if mode == HESS_PSD else 0.0


class ScaledLogisticLoss(Loss):
    """A toy loss: cross-entropy times ``scale`` (proper: its link is calibrated)."""

    tasks = (BINARY, MULTICLASS, MULTILABEL)
    parameters = ("scale",)
    scalars = {"sigmoid_element": _scaled_sigmoid_element, "softmax_shift": _no_shift,
               "softmax_core": _scaled_softmax_core}
    key = "scaledce"
    description = "scaled cross-entropy"
    grid = {"scale": (0.5, 2.0)}
    fixed = {"scale": 1.0}
    compare_select = "log_loss"

    def __init__(self, scale=1.0, *, hessian="psd"):
        super().__init__(hessian=hessian)
        self.scale = gbloss.losses._base.check_real("scale", scale, low=0.0, low_open=True)

    def kernel_params(self, task, n_out):
        return (self.scale,)

    def is_proper(self, task):
        return True


register(ScaledLogisticLoss)


@pytest.fixture
def data(rng):
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + rng.normal(scale=0.5, size=300) > 0.8).astype(float)
    return X, y


def test_toy_loss_is_scaled_cross_entropy(rng):
    ce, toy = gbloss.CrossEntropyLoss(hessian="exact"), ScaledLogisticLoss(2.5, hessian="exact")
    for y, raw, task in ((rng.integers(0, 2, 50).astype(float), rng.normal(0, 5, 50), None),
                         (rng.integers(0, 3, 50).astype(float), rng.normal(0, 5, (50, 3)),
                          MULTICLASS),
                         (rng.integers(0, 2, (50, 3)).astype(float), rng.normal(0, 5, (50, 3)),
                          MULTILABEL)):
        for got, want in zip(toy.gradient_hessian(y, raw), ce.gradient_hessian(y, raw),
                             strict=True):
            assert_allclose(got, 2.5 * want, rtol=1e-12, atol=1e-300)
        assert_allclose(toy.loss(y, raw), 2.5 * ce.loss(y, raw), rtol=1e-12)
        start = toy.init_score(y, n_classes=3 if task == MULTICLASS else None)
        assert_allclose(start, ce.init_score(y, n_classes=3 if task == MULTICLASS else None),
                        rtol=1e-9, atol=1e-9)
        assert_allclose(toy.predict_proba(raw, task), ce.predict_proba(raw, task), rtol=1e-15)


def test_registered_toy_loss_round_trips_and_is_found_by_key():
    loss = ScaledLogisticLoss(3.0)
    assert gbloss.loss_from_dict(loss.to_dict()) == loss
    assert gbloss.losses.by_key("scaledce") is ScaledLogisticLoss
    assert ScaledLogisticLoss.compare_grid(BINARY) == {"scale": (0.5, 2.0)}
    assert loss.engine_defaults("xgboost") == {}


def test_a_redefined_loss_replaces_itself_but_a_namesake_is_refused():
    namespace = {}
    source = ("from gbloss.losses import Loss\n"
              "class ScaledLogisticLoss(Loss):\n"
              "    tasks = ('binary',)\n"
              "    scalars = {'sigmoid_element': element}\n")
    exec(source, {"__name__": "another_module", "element": _scaled_sigmoid_element}, namespace)
    with pytest.raises(ValueError, match="registered already"):
        register(namespace["ScaledLogisticLoss"])
    # the same module defining it again (a re-run notebook cell) replaces it
    again = type("ScaledLogisticLoss", (ScaledLogisticLoss,), {"__module__": __name__})
    again.__qualname__ = ScaledLogisticLoss.__qualname__
    assert register(again) is again and gbloss.losses.REGISTRY["ScaledLogisticLoss"] is again
    register(ScaledLogisticLoss)  # restore the module's own class
    assert gbloss.losses.REGISTRY["ScaledLogisticLoss"] is ScaledLogisticLoss


def test_registering_an_incomplete_loss_is_refused():
    class NoScalars(Loss):
        tasks = (BINARY,)

    with pytest.raises(ValueError, match="scalars lacks"):
        register(NoScalars)
    with pytest.raises(TypeError, match="Loss subclass"):
        register(object)


def test_toy_loss_trains_with_xgboost(data):
    xgb = pytest.importorskip("xgboost")
    import gbloss.xgboost as gbx

    X, y = data
    dtrain = xgb.DMatrix(X, label=y)
    toy = gbx.train({"max_depth": 2, "nthread": 1}, dtrain, 5, loss=ScaledLogisticLoss(1.0))
    ce = gbx.train({"max_depth": 2, "nthread": 1}, dtrain, 5, loss=gbloss.CrossEntropyLoss())
    assert_allclose(gbx.predict_raw(toy, dtrain), gbx.predict_raw(ce, dtrain), rtol=1e-6)
    loaded = xgb.Booster(model_file=None)
    loaded.load_model(bytearray(toy.save_raw("ubj")))
    proba = gbx.predict_proba(loaded, dtrain)
    assert_allclose(proba, special.expit(gbx.predict_raw(toy, dtrain).astype(float)), rtol=1e-12)


def test_toy_loss_trains_with_lightgbm(data):
    lgb = pytest.importorskip("lightgbm")
    import gbloss.lightgbm as gbl

    X, y = data
    params = {"num_leaves": 4, "verbosity": -1, "num_threads": 1}
    toy = gbl.train(params, lgb.Dataset(X, label=y), 5, loss=ScaledLogisticLoss(1.0))
    ce = gbl.train(params, lgb.Dataset(X, label=y), 5, loss=gbloss.CrossEntropyLoss())
    assert_allclose(gbl.predict_raw(toy, X), gbl.predict_raw(ce, X), rtol=1e-9)


def test_toy_loss_in_the_estimators(data):
    pytest.importorskip("xgboost")
    from sklearn.model_selection import GridSearchCV

    from gbloss.sklearn import GBLossXGBClassifier

    X, y = data
    clf = GBLossXGBClassifier(ScaledLogisticLoss(2.0), n_estimators=5, max_depth=2, n_jobs=1)
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1.0)
    search = GridSearchCV(clf, {"loss__scale": [0.5, 2.0]}, cv=2).fit(X, y)
    assert search.best_params_["loss__scale"] in (0.5, 2.0)


def test_toy_loss_in_gbloss_compare(capsys):
    from gbloss.compare import main

    code = main(["--losses", "ce,scaledce", "--folds", "2", "--n-estimators", "3", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert any(line.startswith("scaledce ") for line in out.splitlines())


def test_example_loss_module_reaches_the_command_line(capsys):
    """examples/custom_loss.py registers its loss on import; ``--import`` loads it."""
    from gbloss.compare import main

    example = REPO / "examples" / "custom_loss.py"
    code = main(["--import", str(example), "--losses", "ce,posweight", "--folds", "2",
                 "--n-estimators", "3", "--no-grid", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert any(line.startswith("posweight  pos_weight=5") for line in out.splitlines()), out


# ------------------------------------------------------------------------------------------------
# Numba's cache and edited loss modules

_TOY_MODULE = '''
import numpy as np
from gbloss.losses import BINARY, Loss, register, scalar

SCALE = @SCALE@

@scalar
def element(y, z, k, theta, mode):
    p = 1.0 / (1.0 + np.exp(-z))
    return SCALE * np.logaddexp(0.0, -z if y > 0.5 else z), SCALE * (p - y), SCALE * p * (1 - p)

@register
class EditedLoss(Loss):
    tasks = (BINARY,)
    scalars = {"sigmoid_element": element}
'''

_PROBE = """
import json
import numpy as np
import edited
from gbloss.losses import _loops
grad, _ = edited.EditedLoss().gradient_hessian(np.array([0.0, 1.0]), np.array([0.5, -1.0]))
stats = _loops.loops_for(edited.EditedLoss.scalars).sigmoid_gradient_hessian.serial.stats
print(json.dumps({"grad": grad.tolist(), "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def _probe(module_dir, cache):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join([str(module_dir), str(REPO)])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_PROBE)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_edited_loss_module_is_not_served_stale_machine_code(tmp_path):
    """The loop lives in gbloss/losses/_loops.py, whose time stamp Numba's cache checks; an
    edit of the loss module (same size, so no stamp of any file changes either way) must still
    compile anew, and an unchanged module must load from the cache."""
    module = tmp_path / "edited.py"
    cache = tmp_path / "cache"
    module.write_text(_TOY_MODULE.replace("@SCALE@", "1.0"))
    first = _probe(tmp_path, cache)
    assert first["misses"] == 1 and first["hits"] == 0
    again = _probe(tmp_path, cache)
    assert again["hits"] == 1 and again["misses"] == 0  # instantiated loops reuse the cache
    assert again["grad"] == first["grad"]
    stat = module.stat()
    module.write_text(_TOY_MODULE.replace("@SCALE@", "3.0"))
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old time stamp
    edited = _probe(tmp_path, cache)
    assert edited["misses"] == 1 and edited["hits"] == 0
    assert_allclose(edited["grad"], 3.0 * np.array(first["grad"]), rtol=1e-15)


def test_a_loss_script_run_as_main_does_not_load_the_loops_of_its_import(tmp_path):
    """Numba imports a cached function's module by name when it loads it: loops cached while
    the file was imported as ``edited`` must not be loaded when it runs as ``__main__`` (that
    import would run the script again and register its loss twice)."""
    module = tmp_path / "edited.py"
    module.write_text(_TOY_MODULE.replace("@SCALE@", "1.0") + textwrap.dedent("""
        if __name__ == "__main__":
            import numpy as np
            print(EditedLoss().gradient_hessian(np.array([1.0]), np.array([0.5]))[0][0])
        """))
    cache = tmp_path / "cache"
    _probe(tmp_path, cache)  # imports edited: its loops go to the cache
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(module)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) == pytest.approx(1.0 / (1.0 + np.exp(-0.5)) - 1.0)


_TWO_LOSSES = '''
import numpy as np
from gbloss.losses import BINARY, Loss, register, scalar

@scalar
def once(y, z, k, theta, mode):
    p = 1.0 / (1.0 + np.exp(-z))
    return np.logaddexp(0.0, -z if y > 0.5 else z), p - y, p * (1 - p)

@scalar
def twice(y, z, k, theta, mode):
    p = 1.0 / (1.0 + np.exp(-z))
    return 2 * np.logaddexp(0.0, -z if y > 0.5 else z), 2 * (p - y), 2 * p * (1 - p)

@register
class OnceLoss(Loss):
    tasks = (BINARY,)
    scalars = {"sigmoid_element": once}

@register
class TwiceLoss(Loss):
    tasks = (BINARY,)
    scalars = {"sigmoid_element": twice}
'''

_TWO_PROBE = """
import json
import numpy as np
import two
y, raw = np.array([0.0, 1.0]), np.array([0.5, -1.0])
print(json.dumps([two.OnceLoss().gradient_hessian(y, raw)[0].tolist(),
                  two.TwiceLoss().gradient_hessian(y, raw)[0].tolist()]))
"""


def test_two_losses_of_one_module_get_loops_of_their_own(tmp_path):
    """Loops of one template bound to different functions of the same module carry different
    names, so neither loads the other's cached machine code (in the process that compiled both,
    nor in a later one)."""
    (tmp_path / "two.py").write_text(_TWO_LOSSES)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(_TWO_PROBE)], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        once, twice = json.loads(done.stdout.strip().splitlines()[-1])
        assert_allclose(twice, 2 * np.array(once), rtol=1e-15)
        assert once[0] == pytest.approx(1.0 / (1.0 + np.exp(-0.5)))
