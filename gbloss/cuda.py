"""GPU gradients of the gbloss losses, compiled by numba-cuda from the CPU source.

Nothing here is a second copy of the math. For each loss, the row loops of its link
(:mod:`gbloss.losses._loops`) and every scalar function they reach (the loss module's slot
functions and the primitives they call) are recompiled as CUDA device functions from their
undecorated source (``.py_func``; :func:`python_source`), in namespaces where

* the scalar functions they call are their device versions (:func:`device_function`),
* ``prange`` is ``range``: a device loop runs serially over the rows it is given, and the CUDA
  kernels below give it one row each (views ``a[i:i + 1]``, one thread per row, grid-stride),
* ``np`` is NumPy, except that ``np.exp``, ``np.log``, ``np.log1p`` and ``np.floor`` are the
  ``math`` functions: numba-cuda 0.30.4 types these NumPy ufuncs on scalars but cannot lower
  them (``KeyError: <ufunc 'exp'>``, its CUDA ufunc table lacks them); ``math.exp`` and
  ``np.exp`` are the same libdevice call on the GPU. Under the simulator ``np`` stays NumPy
  (``math.exp`` raises on overflow in Python where NumPy gives inf).

So a new loss, or a change to a loss's formula, reaches the GPU without an edit here. Numba
options match :mod:`gbloss._jit`'s: no ``fastmath``, and numba-cuda's ``error_model="numpy"``
(its default outside ``debug=True``). This module imports numba-cuda; ``import gbloss`` never
imports it (nor CuPy): it is loaded only when asked for, by ``import gbloss.cuda`` or by
``gbloss.xgboost.train`` with ``device="cuda"`` and ``X=``. numba-cuda is imported through
:func:`gbloss.compat.import_numba_cuda` (a NumPy 2.5 shim).

Arrays: inputs are NumPy arrays (copied to the device and back: for tests) or device arrays
(anything with ``__cuda_array_interface__``: CuPy, numba, PyTorch). The device-resident XGBoost
loop is :func:`train_xgboost`, reached through :func:`gbloss.xgboost.train`.
"""

import math
import threading
import types
import warnings

import numpy as np

from .compat import import_numba_cuda
from .losses import BINARY, MULTICLASS, _loops
from .losses._base import HESSIAN_MODES

#: Threads per block of the row kernels (one row per thread, grid-stride).
THREADS_PER_BLOCK = 256
#: Upper bound on blocks per launch; further rows are taken by the grid-stride loop.
MAX_BLOCKS = 65_536
#: NumPy ufuncs on scalars that numba-cuda 0.30.4 cannot lower, and their ``math`` versions.
_MATH_FOR_NUMPY = {"exp": math.exp, "log": math.log, "log1p": math.log1p, "floor": math.floor}


class GPUUnavailableError(RuntimeError):
    """The GPU path was asked for but cannot run here; the message says what is missing."""


cuda = import_numba_cuda(GPUUnavailableError)
#: True under numba-cuda's CPU simulator (``NUMBA_ENABLE_CUDASIM=1`` when numba.cuda was
#: first imported).
SIMULATOR = cuda.jit.__module__.startswith("numba.cuda.simulator")


def _device_numpy():
    """``np`` as the device functions see it (module docstring)."""
    if SIMULATOR:
        return np
    module = types.ModuleType("gbloss.cuda.numpy")
    module.__dict__.update(vars(np))
    module.__dict__.update(_MATH_FOR_NUMPY)
    return module


_NUMPY = _device_numpy()


def python_source(compiled):
    """The undecorated function of a gbloss scalar (a Numba dispatcher, ``.py_func``) or row
    loop (:class:`gbloss._jit.Kernel`, whose parallel and serial dispatchers share it)."""
    if hasattr(compiled, "py_func"):
        return compiled.py_func
    return compiled.parallel.py_func


def _recompiled(py, bindings, device):
    """``py`` with its globals overridden: ``np``, ``prange``, the given bindings, and every
    Numba dispatcher it calls replaced by its device function, also one called as a module
    attribute (``primitives.sigmoid_parts``: the module becomes a copy holding device
    functions)."""
    namespace = dict(py.__globals__)
    namespace.update(np=_NUMPY, prange=range)
    direct, by_module = _loops.called_dispatchers(py)
    namespace.update({name: device_function(d) for name, d in direct.items()})
    for name, used in by_module.items():
        module = types.ModuleType(py.__globals__[name].__name__)
        module.__dict__.update(vars(py.__globals__[name]))
        module.__dict__.update({a: device_function(d) for a, d in used.items()})
        namespace[name] = module
    namespace.update(bindings)
    fn = types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__,
                            py.__closure__)
    fn.__doc__ = py.__doc__
    return cuda.jit(device=True)(fn) if device else fn


_DEVICE = {}
_LOCK = threading.RLock()


def device_function(scalar):
    """The CUDA device function of a gbloss scalar function (a Numba dispatcher), built once
    from its Python source."""
    py = python_source(scalar)
    with _LOCK:
        dev = _DEVICE.get(py)
        if dev is None:
            dev = _DEVICE[py] = _recompiled(py, {}, device=True)
    return dev


# ------------------------------------------------------------------------------------------------
# Kernels: one thread per row, each calling the CPU row loop's source on one-row views. The
# arguments are those of the CPU loops (gbloss/losses/_loops.py). ``row_loop`` is bound per loss.


def row_loop(*args):
    """Slot: the loss's CPU row loop compiled as a device function (bound per loss)."""
    raise NotImplementedError("row_loop is bound per loss by device_loops")


def _gradient_hessian_kernel(y, raw, weight, theta, mode, grad, hess):
    weighted = weight.shape[0] > 0
    for i in range(cuda.grid(1), raw.shape[0], cuda.gridsize(1)):
        w = weight[i:i + 1] if weighted else weight[0:0]
        row_loop(y[i:i + 1], raw[i:i + 1], w, theta, mode, grad[i:i + 1], hess[i:i + 1])


def _loss_kernel(y, raw, weight, theta, out):
    weighted = weight.shape[0] > 0
    for i in range(cuda.grid(1), raw.shape[0], cuda.gridsize(1)):
        w = weight[i:i + 1] if weighted else weight[0:0]
        row_loop(y[i:i + 1], raw[i:i + 1], w, theta, out[i:i + 1])


_KERNELS = {"sigmoid_gradient_hessian": _gradient_hessian_kernel,
            "softmax_gradient_hessian": _gradient_hessian_kernel,
            "sigmoid_loss": _loss_kernel, "softmax_loss": _loss_kernel}


class DeviceLoops:
    """The CUDA kernels of one loss: attributes named like the CPU loops of
    :class:`gbloss.losses._loops.Loops` (``sigmoid_gradient_hessian``, ...), each the
    template's source with the loss's slots bound to device functions."""

    def __init__(self, bindings):
        # held, like the CPU loops': :func:`device_loops` keys by the functions' ids, which a
        # new function could take over once these were freed
        self.bindings = dict(bindings)
        for templates, names in _loops.TEMPLATES.values():
            if not all(n in bindings for n in names):
                continue
            slots = {n: device_function(bindings[n]) for n in names}  # not the CPU-only ones
            for template in templates:
                row = _recompiled(template, {n: slots[n] for n in names}, device=True)
                kernel = _KERNELS[template.__name__]
                namespace = dict(kernel.__globals__, row_loop=row)
                fn = types.FunctionType(kernel.__code__, namespace, template.__name__)
                setattr(self, template.__name__, cuda.jit(fn))


_DEVICE_LOOPS = {}


def device_loops(scalars):
    """The :class:`DeviceLoops` of a loss's slot functions (``Loss.scalars``), built once."""
    key = tuple(sorted((name, id(fn)) for name, fn in scalars.items()))
    with _LOCK:
        loops = _DEVICE_LOOPS.get(key)
        if loops is None:
            loops = _DEVICE_LOOPS[key] = DeviceLoops(scalars)
    return loops


def configured(kernel, n_rows):
    """``kernel[blocks, threads]`` for ``n_rows`` rows (:func:`launch_config`). numba-cuda warns
    about grids under 128 blocks; for inputs under 32768 rows one thread per row is the right
    size, so that warning is silenced here, for this launch configuration only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Grid size .* under-utilization")
        return kernel[launch_config(n_rows)]


def launch_config(n_rows):
    """``(blocks, threads)`` for ``n_rows`` rows (a few threads under the simulator, where each
    thread is a Python thread)."""
    if SIMULATOR:
        return 1, max(1, min(n_rows, 4))
    blocks = min(MAX_BLOCKS, max(1, -(-n_rows // THREADS_PER_BLOCK)))
    return blocks, THREADS_PER_BLOCK


# ------------------------------------------------------------------------------------------------
# Availability


def require(*, cupy=True):
    """Raise :class:`GPUUnavailableError` unless the GPU path can run: a CUDA device that
    numba-cuda sees (or its simulator) and, with ``cupy=True``, CuPy. Returns CuPy (or None)."""
    if not cuda.is_available():
        raise GPUUnavailableError("no CUDA GPU is available to numba-cuda (no device or no "
                                  "driver); train with device='cpu' (the default)")
    if not cupy:
        return None
    try:
        import cupy as cp
    except ImportError as exc:
        raise GPUUnavailableError("the device-resident training path needs CuPy "
                                  "(pip install cupy-cuda12x); or train with device='cpu'"
                                  ) from exc
    return cp


# ------------------------------------------------------------------------------------------------
# Gradients of a loss on device arrays


def _is_device_array(a):
    return hasattr(a, "__cuda_array_interface__")


def _to_device(a):
    """A NumPy array as kernel argument: as is under the simulator, copied otherwise."""
    if SIMULATOR:
        return np.ascontiguousarray(a)
    return cuda.to_device(np.ascontiguousarray(a))


def _view(a):
    """A kernel argument for a device (CAI) or NumPy array, made once per fit."""
    if _is_device_array(a):
        return cuda.as_cuda_array(a, sync=False) if not SIMULATOR else a
    return a


def _labels_to_host(y):
    if _is_device_array(y) and not isinstance(y, np.ndarray):
        return cuda.as_cuda_array(y).copy_to_host() if not SIMULATOR else np.asarray(y)
    return np.asarray(y)


class DeviceGradient:
    """One loss's gradient and Hessian on the GPU for fixed labels and weights.

    Labels and weights are validated on the host once (the checks of
    :meth:`gbloss.Loss.gradient_hessian`) and copied to the device once, with the loss's kernel
    parameters (:meth:`gbloss.Loss.kernel_params`). :meth:`__call__` then launches one kernel
    per call, on device views built here, into the given output buffers.

    Parameters
    ----------
    loss : gbloss.Loss
    y : array (n,) or (n, K)
        Labels as for :meth:`gbloss.Loss.gradient_hessian` (host or device).
    shape : tuple
        Shape of the raw scores, (n,) binary or (n, K).
    sample_weight : array (n,) or None
    hessian_scale : float
        Multiplies the Hessian (see :class:`gbloss.xgboost.Objective`).
    """

    def __init__(self, loss, y, shape, sample_weight=None, *, hessian_scale=1.0):
        y = _labels_to_host(y)
        if sample_weight is not None:
            sample_weight = _labels_to_host(sample_weight)
        placeholder = np.broadcast_to(np.float32(0), tuple(shape))
        task, y, _, weight = loss._inputs(y, placeholder, sample_weight, True)
        n_out = 1 if task == BINARY else shape[1]
        prepared = loss._ready(task, y, n_out)
        self.task, self.shape, self.n_out = task, tuple(shape), n_out
        self.hessian_scale = float(hessian_scale)
        self.mode = HESSIAN_MODES[loss.hessian]
        self.kernels = device_loops(prepared.scalars)
        self._weight = _to_device(weight)
        self._y = _to_device(y if task == MULTICLASS else y.reshape(-1, n_out))
        self._theta = tuple(_to_device(np.ascontiguousarray(p, dtype=np.float64))
                            if isinstance(p, np.ndarray) else p
                            for p in prepared.kernel_params(task, n_out))

    def _as_rows(self, a):
        return a.reshape(-1, 1) if self.task == BINARY else a

    def bind(self, raw, grad, hess):
        """A no-argument launcher for fixed buffers: device views are made once, here."""
        raw, grad, hess = (_view(self._as_rows(a)) for a in (raw, grad, hess))
        args = (self._y, raw, self._weight, self._theta, self.mode, grad, hess)
        kernel = self.kernels.softmax_gradient_hessian if self.task == MULTICLASS else \
            self.kernels.sigmoid_gradient_hessian
        launch = configured(kernel, self.shape[0])

        def run():
            launch(*args)

        return run

    def __call__(self, raw, out):
        """Fill ``out = (grad, hess)`` (arrays of ``raw``'s shape) from ``raw``; returns out."""
        self.bind(raw, *out)()
        return out

    def loss_values(self, raw):
        """Per-sample loss values (float64, summed over labels) for a NumPy ``raw``."""
        d_raw = _to_device(self._as_rows(raw))
        n = raw.shape[0]
        if self.task == MULTICLASS:
            shape, kernel = (n,), self.kernels.softmax_loss
        else:
            shape, kernel = (n, self.n_out), self.kernels.sigmoid_loss
        out = np.empty(shape) if SIMULATOR else cuda.device_array(shape, np.float64)
        configured(kernel, n)(self._y, d_raw, self._weight, self._theta, out)
        out = out if SIMULATOR else out.copy_to_host()
        return out if out.ndim == 1 else out.sum(axis=1)


def _host_or_device(raw):
    if isinstance(raw, np.ndarray) or not _is_device_array(raw):
        return np.asarray(raw), True
    return raw, False


def gradient_hessian(loss, y, raw, sample_weight=None):
    """:meth:`gbloss.Loss.gradient_hessian` computed by the GPU kernels.

    ``raw`` a NumPy array: the result is NumPy (float64 math, ``raw``'s dtype), copied back
    from the device. ``raw`` a device array: the result is a pair of numba device arrays of
    ``raw``'s shape and dtype (``cupy.asarray(grad)`` wraps one without a copy).
    """
    raw, host = _host_or_device(raw)
    shape = tuple(raw.shape)
    grad_fn = DeviceGradient(loss, y, shape, sample_weight)
    if host:
        raw = raw if raw.dtype in (np.float32, np.float64) else raw.astype(np.float64)
        if SIMULATOR:
            out = (np.empty_like(raw), np.empty_like(raw))
            return grad_fn(raw, out)
        d_raw = cuda.to_device(np.ascontiguousarray(raw))
        out = (cuda.device_array_like(d_raw), cuda.device_array_like(d_raw))
        grad_fn(d_raw, out)
        return out[0].copy_to_host(), out[1].copy_to_host()
    d_raw = cuda.as_cuda_array(raw)
    out = (cuda.device_array(shape, d_raw.dtype), cuda.device_array(shape, d_raw.dtype))
    return grad_fn(d_raw, out)


def loss_values(loss, y, raw, sample_weight=None):
    """:meth:`gbloss.Loss.loss` (per-sample values, float64) computed by the GPU kernels;
    NumPy in, NumPy out."""
    raw = np.asarray(raw)
    raw = raw if raw.dtype in (np.float32, np.float64) else raw.astype(np.float64)
    return DeviceGradient(loss, y, raw.shape, sample_weight).loss_values(raw)


# ------------------------------------------------------------------------------------------------
# The device-resident XGBoost loop


def _array_module():
    """CuPy (checked by :func:`require`); a seam for the CPU-simulator tests."""
    return require(cupy=True)


def device_features(X, xp=None):
    """The feature matrix as a C-contiguous float32 device array (CuPy) for ``inplace_predict``.

    Takes CuPy (or any ``__cuda_array_interface__`` array), NumPy and numeric pandas
    DataFrames. Missing values must be NaN (XGBoost's default ``missing``).
    """
    xp = _array_module() if xp is None else xp
    if hasattr(X, "dtypes") and hasattr(X, "to_numpy"):  # pandas
        kinds = {getattr(d, "kind", "O") for d in X.dtypes}  # category: "O"
        if not kinds <= set("biuf"):
            raise ValueError("the device-resident path needs numeric feature columns; "
                             f"X has dtypes {sorted({str(d) for d in X.dtypes})}: encode "
                             "categorical columns first, or drop X= to train with host "
                             "gradients")
        X = X.to_numpy(dtype=np.float32, na_value=np.nan)
    if hasattr(X, "tocsr") or getattr(X, "ndim", 2) != 2:
        raise ValueError(f"X must be a dense 2-D array (NumPy, CuPy or pandas), got "
                         f"{type(X).__name__} of shape {getattr(X, 'shape', None)}")
    return xp.ascontiguousarray(xp.asarray(X, dtype=xp.float32))


def _predict_margin(booster, X, base_margin, iteration_range):
    return booster.inplace_predict(X, iteration_range=iteration_range, predict_type="margin",
                                   base_margin=base_margin, validate_features=False)


def train_xgboost(params, dtrain, num_boost_round, *, X, loss, hessian_scale=1.0, evals=None,
                  custom_metric=None, maximize=None, early_stopping_rounds=None,
                  evals_result=None, verbose_eval=True, xgb_model=None, callbacks=None,
                  xp=None):
    """``xgboost.train`` with gradients computed and kept on the GPU.

    The loop of ``xgboost.train`` (:func:`gbloss.xgboost.boosting_loop`: callbacks, evaluation
    sets, early stopping, ``evals_result``, ``verbose_eval``, ``xgb_model``) with this round
    body: the gbloss kernel writes gradients and Hessians into device buffers allocated once,
    ``Booster.boost(dtrain, i, grad=, hess=)`` grows the trees, and the margins are advanced on
    the device by predicting the new trees only, ``inplace_predict(X, iteration_range=(r - 1,
    r), base_margin=margins)``. Labels and weights are read from ``dtrain`` once. Nothing is
    copied to the host per round except what custom metrics on ``evals`` need (XGBoost's
    ``eval_set`` predicts each eval set and hands host arrays to the metric).

    ``params`` are the training parameters from :func:`gbloss.xgboost.params`; ``X`` the
    feature matrix ``dtrain`` was built from (:func:`device_features` converts it); ``xp`` the
    array module (CuPy; NumPy only for the simulator tests).
    """
    from .xgboost import boosting_loop

    xp = _array_module() if xp is None else xp
    X = device_features(X, xp)
    n_rows = dtrain.num_row()
    if X.shape[0] != n_rows or X.shape[1] != dtrain.num_col():
        raise ValueError(f"X has shape {tuple(X.shape)} but dtrain has {n_rows} rows and "
                         f"{dtrain.num_col()} columns: pass the feature matrix dtrain was "
                         "built from")

    def rounds(bst):
        # the start: dtrain's base_margin if set, else base_score; plus the trees of xgb_model
        base_margin = dtrain.get_base_margin()  # flat, n_rows * outputs
        if base_margin.size:
            base_margin = xp.asarray(base_margin.reshape(n_rows, -1), dtype=xp.float32)
            base_margin = base_margin[:, 0] if base_margin.shape[1] == 1 else base_margin
        else:
            base_margin = None
        margins = xp.ascontiguousarray(_predict_margin(bst, X, base_margin, (0, 0)),
                                       dtype=xp.float32)
        grad = xp.empty_like(margins)
        hess = xp.empty_like(margins)
        weight = dtrain.get_weight()
        gradient = DeviceGradient(loss, dtrain.get_label(), margins.shape,
                                  weight if weight.size else None, hessian_scale=hessian_scale)
        launch = gradient.bind(margins, grad, hess)
        scale = gradient.hessian_scale

        def step(i):
            launch()
            if scale != 1.0:
                xp.multiply(hess, scale, out=hess)
            bst.boost(dtrain, i, grad=grad, hess=hess)
            done = bst.num_boosted_rounds()
            xp.copyto(margins, _predict_margin(bst, X, margins, (done - 1, done)))

        return step

    return boosting_loop(params, dtrain, num_boost_round, rounds, evals=evals,
                         custom_metric=custom_metric, maximize=maximize,
                         early_stopping_rounds=early_stopping_rounds, evals_result=evals_result,
                         verbose_eval=verbose_eval, xgb_model=xgb_model, callbacks=callbacks)

