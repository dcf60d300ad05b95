"""gbloss losses in XGBoost: training objective, eval metrics, the start, predictions, Dask.

The recipe (plain ``xgboost.train``)::

    import xgboost as xgb, gbloss, gbloss.xgboost as gbx

    loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
    booster = xgb.train(gbx.params(loss, dtrain, {"max_depth": 4}), dtrain, 200,
                        obj=gbx.objective(loss),
                        custom_metric=gbx.metric(loss, "average_precision"),
                        evals=[(dvalid, "valid")], early_stopping_rounds=20)
    proba = gbx.predict_proba(booster, dtest, loss=loss)

or in one call, with a booster that remembers its loss (also after ``save_model``/``load_model``)::

    booster = gbx.train({"max_depth": 4}, dtrain, 200, loss=loss, metric="average_precision",
                        evals=[(dvalid, "valid")], early_stopping_rounds=20)
    proba = gbx.predict_proba(booster, dtest)

Tasks, decided by the labels and ``num_class`` exactly as in XGBoost: binary (1-D labels in
[0, 1]), multiclass (1-D labels ``0..K-1`` and ``params["num_class"] = K``: softmax losses) and
multi-label (2-D labels ``(n, K)``, per-label sigmoid losses; both ``multi_strategy`` values).

Design decisions
----------------
* **The start** is the loss's :meth:`~gbloss.Loss.init_score`, given to XGBoost as
  ``base_score`` in *margin* space (a vector for multiclass and multi-label). With a custom
  objective and no ``objective`` parameter XGBoost reads ``base_score`` as a margin, stores it in
  the model (JSON and UBJ) and adds it to every prediction and every eval set; ``base_margin``
  would be lost on saving and would have to be set on each DMatrix. :func:`params` therefore
  refuses an ``objective`` or ``base_score`` entry.
* **Hessians** are gbloss's (exact softmax diagonal ``p_k(1 - p_k)`` times focal factors, PSD
  policy for the focal-type losses). XGBoost's ``multi:softprob`` uses ``2 p_k(1 - p_k)``:
  ``hessian_scale=2.0`` reproduces it (halves the leaf steps); the default 1.0 keeps Newton's
  step of the diagonal. ``hessian_scale`` multiplies every Hessian, for any task.
* **Sample weights** of the DMatrix are applied inside the objective (XGBoost never applies
  them to custom gradients) and by the metrics.
* **Early stopping** uses the last metric. Metric names tell XGBoost's guess the direction
  (names starting with ``auc`` are maximised, all others minimised), so plain ``xgb.train`` with
  ``maximize`` unset stops correctly; :class:`Metric` also exposes ``maximize``, and
  :func:`train` passes it. The default metric, computed on raw margins, is switched off
  (``disable_default_eval_metric``).
* **Threads.** On Linux, importing this module before Numba has started its threads makes
  Numba run its parallel loops in the OpenMP runtime XGBoost's wheel bundles
  (:data:`OPENMP_SHARED`); the objective then uses all threads, inside XGBoost's own thread
  pool. Otherwise (Numba or the system libgomp came first, ``GBLOSS_SHARE_OPENMP=0``) it runs
  serially, since a parallel kernel in a second runtime fights XGBoost's spinning threads.
"""

import ctypes
import json
import os
import sys
import warnings

import numba
import numpy as np
import xgboost

from . import _metrics
from ._adapters import EngineMetric, EngineObjective, check_prepared, same_loss
from .losses import BINARY, MULTICLASS, MULTILABEL, LabelStats, loss_from_dict
from .losses import _loops as _kernels

#: Booster attributes written by :func:`train` and :func:`dask_train`.
ATTR_LOSS = "gbloss_loss"
ATTR_TASK = "gbloss_task"
ATTR_START = "gbloss_start"

#: Name XGBoost shows (and guesses the early-stopping direction from) for each gbloss metric.
METRIC_NAMES = {
    "loss": "loss",
    "average_precision": "auc_pr",
    "roc_auc": "auc_roc",
    "log_loss": "log_loss",
    "balanced_accuracy": "balanced_error",
}
_MULTI_STRATEGIES = ("one_output_per_tree", "multi_output_tree")
_ALTERNATIVES = {
    MULTICLASS: "FocalLoss, CrossEntropyLoss or LogitAdjustedLoss",
    MULTILABEL: "FocalLoss, CrossEntropyLoss or AsymmetricLoss",
}


# -- one OpenMP runtime for XGBoost and Numba ------------------------------------------------


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _openmp_library_of(library):
    """Path of the OpenMP runtime a loaded ``ctypes.CDLL`` resolves ``omp_*`` from, or None."""
    try:
        address = ctypes.cast(library.omp_get_max_threads, ctypes.c_void_p).value
    except AttributeError:  # built without OpenMP
        return None
    info = _DlInfo()
    if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(address), ctypes.byref(info)):
        return None
    return os.fsdecode(info.dli_fname)


def _thread_count():
    return len(os.listdir("/proc/self/task"))


def _share_openmp_runtime():
    """Run Numba's parallel loops in the OpenMP runtime of XGBoost's library; True on success.

    XGBoost's wheels bundle their own libgomp, whose threads spin on the cores after each of
    XGBoost's parallel loops; a parallel kernel in Numba's separate runtime then competes with
    them and slows training (benchmarks/bench_threads.py), so the objective would have to run
    serially. Before Numba starts its threading layer, this makes XGBoost's runtime global
    (``RTLD_GLOBAL``): Numba's ``omp`` layer, loaded afterwards, binds to it, and its parallel
    loops run in XGBoost's thread pool (as LightGBM and Numba share the system libgomp). It
    does nothing, and returns False, off Linux, when Numba's threading layer has started
    already, when another libgomp is loaded (a library bound to it would compete again), or
    when the check fails: a parallel Numba loop must start no thread of its own.
    ``GBLOSS_SHARE_OPENMP=0`` switches it off.
    """
    n = numba.config.NUMBA_NUM_THREADS
    if (os.environ.get("GBLOSS_SHARE_OPENMP", "1") == "0" or not sys.platform.startswith("linux")
            or getattr(numba.np.ufunc.parallel, "_is_initialized", True) or n < 2):
        return False
    try:
        with open("/proc/self/maps") as maps:
            if any("/libgomp.so" in line for line in maps):
                return False
        path = _openmp_library_of(xgboost.core._LIB)
        if path is None:
            return False
        start_region = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD).GOMP_parallel
    except (OSError, AttributeError):  # no /proc, no dladdr, not libgomp: leave them apart
        return False
    # start the runtime's threads with one parallel region of its own
    region = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None)
    start_region(region, None, ctypes.c_uint(n), ctypes.c_uint(0))
    before = _thread_count()
    numba.get_num_threads()  # starts Numba's threading layer, bound to the global runtime
    if numba.threading_layer() != "omp":
        return False
    _kernels.check_weights.parallel(np.zeros(4 * n))
    return _thread_count() == before


#: Whether gbloss's kernels run in XGBoost's OpenMP runtime (decided on import, before Numba
#: starts its threads; see :func:`_share_openmp_runtime`). :class:`Objective` then uses all
#: threads by default, else one.
OPENMP_SHARED = _share_openmp_runtime()


# -- targets ---------------------------------------------------------------------------------


def _target(loss, y, n_rows, num_class):
    """The task and the labels in the loss's shape, from XGBoost's flat labels.

    ``num_class``: the number of margin columns XGBoost gives a 1-D label (0 or None: one).
    Raises with the setting to change when the loss cannot serve the target.
    """
    y = np.asarray(y, dtype=np.float64)
    name = type(loss).__name__
    if n_rows == 0:
        raise ValueError("the training DMatrix has no rows")
    if y.size == 0:
        raise ValueError("the DMatrix has no labels: create it with DMatrix(X, label=y)")
    if y.size % n_rows:
        raise ValueError(f"the DMatrix has {y.size} labels for {n_rows} rows")
    n_out = y.size // n_rows
    num_class = int(num_class or 0)
    if n_out > 1:
        if num_class:
            raise ValueError(f"labels of shape ({n_rows}, {n_out}) are a multi-label target, "
                             f"which takes no num_class: remove num_class={num_class} from params "
                             "(or pass 1-D class labels for a multiclass target)")
        task, y = MULTILABEL, y.reshape(n_rows, n_out)
    elif num_class > 1:
        task, n_out = MULTICLASS, num_class
    else:
        task = BINARY
        if np.nanmax(y) > 1 and np.all(y == np.floor(y)):
            k = int(np.nanmax(y)) + 1
            hint = (f"for a multiclass target set params['num_class'] = {k}"
                    if MULTICLASS in loss.tasks else
                    f"{name} has no multiclass form: use {_ALTERNATIVES[MULTICLASS]} with "
                    f"params['num_class'] = {k}")
            raise ValueError(f"binary labels must lie in [0, 1] but they hold class ids up to "
                             f"{k - 1}: {hint}")
        if np.isnan(y).any() or np.any((y < 0) | (y > 1)):
            raise ValueError(f"y must hold labels in [0, 1] (0/1, or soft labels) for binary "
                             f"{name}; got values in [{np.min(y)}, {np.max(y)}]")
    if task not in loss.tasks:
        if task == MULTICLASS:
            fix = (f"XGBoost gives it {n_out} margins per row because params has "
                   f"num_class={num_class}: remove num_class for a binary target, or use "
                   f"{_ALTERNATIVES[MULTICLASS]}")
        else:
            fix = f"use {_ALTERNATIVES[task]}"
        raise ValueError(f"{name} does not support {task} targets ({fix})")
    return task, y, n_out


def _n_outputs(task, n_out):
    return 1 if task == BINARY else n_out


def _start(loss, task, y, weight, n_out):
    start = loss.init_score(y, weight, n_classes=n_out if task == MULTICLASS else None)
    return float(start) if task == BINARY else np.asarray(start, dtype=np.float64)


def _weights(dmatrix):
    w = dmatrix.get_weight()
    return np.asarray(w, dtype=np.float64) if w.size else None


# -- objective -------------------------------------------------------------------------------


class Objective(EngineObjective):
    """A gbloss loss as an XGBoost objective: ``xgb.train(..., obj=Objective(loss))``.

    ``obj(predt, dtrain) -> (grad, hess)`` with ``predt``'s shape ((n,) binary, (n, K)
    multiclass and multi-label) in float32. Per DMatrix it reads labels and weights once
    (``get_label`` copies on every call), validates them once, and refills the same gradient
    buffers every round (XGBoost copies them right away). DMatrix weights multiply gradient and
    Hessian. On the first round it warns when training does not start from the loss's start
    (``base_score`` not set by :func:`params`).

    Parameters
    ----------
    loss : gbloss.Loss
        Prepared loss (``LogitAdjustedLoss(priors=None)`` needs ``loss.prepare(y_train)``).
    hessian_scale : float > 0
        Multiplies every Hessian. 2.0 with a softmax loss reproduces XGBoost's
        ``multi:softprob`` Hessian ``2 p(1 - p)``; 1.0 (default) is gbloss's diagonal.
    n_threads : int or None
        Numba threads for the kernel. None (default): all of them when gbloss's kernels run in
        XGBoost's own OpenMP runtime (:data:`OPENMP_SHARED`, decided in each process), else 1,
        the serial kernel on XGBoost's calling thread: XGBoost's wheels bundle an OpenMP
        runtime whose threads keep spinning on the cores after each of XGBoost's parallel
        loops, and a parallel kernel in a separate runtime competes with them (1.83x the
        built-in objective's training time against 1.16x serially, 200k rows,
        benchmarks/bench_threads.py).

    The object pickles (for Dask) without its per-DMatrix caches.
    """

    engine = "xgboost"

    def __init__(self, loss, *, hessian_scale=1.0, n_threads=None):
        super().__init__(loss, hessian_scale, n_threads)

    def _threads(self):
        if self.n_threads is not None:
            return self.n_threads
        return None if OPENMP_SHARED else 1

    def __call__(self, predt, dtrain):
        entry = self._cache.get(dtrain)
        if entry is None or entry[2][0].shape != predt.shape:
            entry = self._first_call(predt, dtrain)  # fills the buffers for this round too
            first = True
        else:
            first = False
        task, y, (grad, hess), weight = entry
        if task is None:
            return grad, hess
        if not first:
            self.loss.gradient_hessian(y, predt.reshape(grad.shape), weight, out=(grad, hess),
                                       n_threads=self._threads(), check_input=False)
        if self.hessian_scale != 1.0:
            hess *= self.hessian_scale
        return grad, hess

    def _first_call(self, predt, dtrain):
        predt = np.asarray(predt)
        n_rows = dtrain.num_row()
        if n_rows == 0:  # a Dask worker without rows of this DMatrix
            entry = (None, None, (np.empty(predt.shape, np.float32),) * 2, None)
            self._cache[dtrain] = entry
            return entry
        if predt.shape[0] != n_rows or predt.ndim > 2:
            raise ValueError(f"XGBoost passed predictions of shape {predt.shape} for "
                             f"{n_rows} rows")
        n_cols = 1 if predt.ndim == 1 else predt.shape[1]
        y_flat = dtrain.get_label()
        task, y, n_out = _target(self.loss, y_flat, n_rows,
                                 n_cols if y_flat.size == n_rows and n_cols > 1 else 0)
        if _n_outputs(task, n_out) != n_cols:
            raise ValueError(f"{task} labels with {_n_outputs(task, n_out)} outputs but XGBoost "
                             f"passed {n_cols} margins per row")
        shape = (n_rows,) if task == BINARY else (n_rows, n_out)
        weight = _weights(dtrain)
        raw = predt.reshape(shape)
        buffers = (np.empty(shape, np.float32), np.empty(shape, np.float32))
        # one validated call: labels in the loss's domain, weights finite and >= 0
        self.loss.gradient_hessian(y, raw, weight, out=buffers, n_threads=self._threads())
        self._warn_start(raw, task, y, weight, n_out)
        entry = (task, y, buffers, weight)
        self._cache[dtrain] = entry
        return entry

    def _warn_start(self, raw, task, y, weight, n_out):
        first = raw[0]
        if not np.all(raw == first):
            return  # continued training or base_margin: not the constant start
        expected = self.expected_start
        if expected is None:
            expected = _start(self.loss, task, y, weight, n_out)
        gap = np.asarray(first, np.float64) - expected
        if task == MULTICLASS:
            gap = gap - gap.mean()  # softmax margins are shift invariant
        if np.max(np.abs(gap)) > 1e-4:
            warnings.warn(f"training starts from the margin {np.round(first, 4).tolist()}, not "
                          f"from the start of {self.loss!r} ({np.round(expected, 4).tolist()}): "
                          "build params with gbloss.xgboost.params(loss, dtrain, params) or "
                          "train with gbloss.xgboost.train", UserWarning, stacklevel=4)


def objective(loss, *, hessian_scale=1.0, n_threads=None):
    """The ``obj=`` callable for ``xgboost.train``; see :class:`Objective`."""
    return Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)


# -- metrics ---------------------------------------------------------------------------------


class Metric(EngineMetric):
    """gbloss metrics as an XGBoost ``custom_metric``, computed on probabilities.

    ``metric(predt, dmatrix)`` receives margins (XGBoost passes margins when ``obj`` is set;
    they include the start), turns them into probabilities through the loss's link and calls
    scikit-learn (see :mod:`gbloss._metrics`), with the DMatrix weights. Names as XGBoost shows
    them (:data:`METRIC_NAMES`):

    ======================  ==================  ==================================  ==========
    ``names`` entry         shown as            value                               stopping
    ======================  ==================  ==================================  ==========
    ``loss``                ``loss``            weighted mean loss                  minimise
    ``average_precision``   ``auc_pr``          average precision (PR-AUC)          maximise
    ``roc_auc``             ``auc_roc``         ROC-AUC                             maximise
    ``log_loss``            ``log_loss``        log-loss of the probabilities       minimise
    ``balanced_accuracy``   ``balanced_error``  1 - balanced accuracy               minimise
    ======================  ==================  ==================================  ==========

    Early stopping follows the *last* name. XGBoost guesses maximisation from a name's prefix
    (``auc...``), so the shown names stop in the right direction even with ``maximize``
    unset; ``maximize`` (that of the last name) is what to pass explicitly. Under
    ``xgboost.dask`` every worker gathers all workers' rows first (``xgboost.collective``), so
    each metric is the exact value over the whole eval set, the same on every worker.
    """

    engine = "xgboost"

    def __init__(self, loss, names="loss"):
        super().__init__(loss, names, METRIC_NAMES)
        self.__name__ = "_".join(METRIC_NAMES[n] for n in self.names)

    @property
    def maximize(self):
        """Whether early stopping must maximise the last metric (the one it follows)."""
        return METRIC_NAMES[self.names[-1]].startswith("auc")

    def __call__(self, predt, dmatrix):
        predt = np.asarray(predt)
        entry = self._cache.get(dmatrix)
        if entry is None:
            n_rows, n_cols = dmatrix.num_row(), 1 if predt.ndim == 1 else predt.shape[1]
            y_flat = dmatrix.get_label()
            y = None
            if n_rows:  # a Dask worker may hold no rows of an eval set
                _, y, _ = _target(self.loss, y_flat, n_rows,
                                  n_cols if y_flat.size == n_rows and n_cols > 1 else 0)
            entry = (y, _weights(dmatrix))
            self._cache[dmatrix] = entry
        y, weight = entry
        raw = None
        if y is not None:
            raw = predt.reshape(y.shape[0], -1)
            raw = raw[:, 0] if raw.shape[1] == 1 else raw
        if xgboost.collective.is_distributed():
            y, raw, weight = _gather(y, raw, weight)
        if y is None:
            return [(METRIC_NAMES[n], float("nan")) for n in self.names]
        values = [(METRIC_NAMES[n], self._value(n, y, raw, weight)) for n in self.names]
        return values[0] if len(values) == 1 else values

    def _value(self, name, y, raw, weight):
        value = _metrics.metric_value(name, self.loss, y, raw, weight)
        return 1.0 - value if name == "balanced_accuracy" else value


def metric(loss, names="loss"):
    """The ``custom_metric=`` callable for ``xgboost.train``; see :class:`Metric`.

    ``names``: one of ``"loss"``, ``"average_precision"``, ``"roc_auc"``, ``"log_loss"``,
    ``"balanced_accuracy"``, or a list of them (early stopping follows the last).
    """
    return Metric(loss, names)


def _gather(y, raw, weight):
    """All workers' rows on every worker, through two max/sum-allreduces (shapes, then data).

    ``y`` is None on a worker without rows; the label and margin widths come from the others
    (width 1 means a 1-D array: multi-label targets have K > 1 columns).
    """
    coll = xgboost.collective
    rank, world = coll.get_rank(), coll.get_world_size()
    n = 0 if y is None else y.shape[0]
    header = np.zeros(world + 3)
    header[rank] = n
    if n:
        header[world:] = (y.size // n, raw.size // n, weight is not None)
    header = coll.allreduce(header, coll.Op.MAX).astype(np.int64)
    sizes, (y_width, raw_width, weighted) = header[:world], header[world:]
    offset, total = int(sizes[:rank].sum()), int(sizes.sum())
    if total == 0:
        return None, None, None
    buf = np.zeros((total, y_width + raw_width + 1))
    if n:
        buf[offset:offset + n, :y_width] = y.reshape(n, -1)
        buf[offset:offset + n, y_width:-1] = raw.reshape(n, -1)
        buf[offset:offset + n, -1] = 1.0 if weight is None else weight
    buf = coll.allreduce(buf, coll.Op.SUM).reshape(total, -1)
    y_all, raw_all = buf[:, :y_width], buf[:, y_width:-1]
    return (y_all[:, 0] if y_width == 1 else y_all, raw_all[:, 0] if raw_width == 1 else raw_all,
            buf[:, -1] if weighted else None)


# -- parameters and training -----------------------------------------------------------------


def _check_params(params):
    for key in ("objective", "base_score"):
        if key in params:
            raise ValueError(
                f"remove params[{key!r}]: gbloss passes its objective as obj= and sets "
                "base_score to the loss's start in margin space (a built-in objective name "
                "would change how XGBoost reads base_score)")
    strategy = params.get("multi_strategy")
    if strategy is not None and strategy not in _MULTI_STRATEGIES:
        raise ValueError(f"multi_strategy must be one of {_MULTI_STRATEGIES}, got {strategy!r}")
    if strategy == "multi_output_tree" and params.get("tree_method", "hist") not in ("hist",
                                                                                     "auto"):
        raise ValueError("multi_strategy='multi_output_tree' needs tree_method='hist', got "
                         f"tree_method={params['tree_method']!r}")
    if "eval_metric" in params:
        warnings.warn("with a custom objective XGBoost computes params['eval_metric'] on raw "
                      "margins; use custom_metric=gbloss.xgboost.metric(loss, ...) for metrics "
                      "on probabilities", UserWarning, stacklevel=4)


def _check_strategy(params, task, loss):
    if task == BINARY and params.get("multi_strategy") == "multi_output_tree":
        raise ValueError(f"multi_strategy='multi_output_tree' builds trees for several outputs, "
                         f"but this binary {type(loss).__name__} target has one: remove "
                         "multi_strategy from params")


def _make_params(loss, dtrain, params, *, start=None, task=None):
    params = dict(params or {})
    _check_params(params)
    if start is None:
        task, y, n_out = _target(loss, dtrain.get_label(), dtrain.num_row(),
                                 params.get("num_class"))
        start = _start(loss, task, y, _weights(dtrain), n_out)
    _check_strategy(params, task, loss)
    params["base_score"] = start if task == BINARY else [float(s) for s in start]
    params["disable_default_eval_metric"] = 1
    return params


def params(loss, dtrain, params=None):
    """XGBoost parameters for training ``loss`` on ``dtrain`` with ``obj=objective(loss)``.

    Returns a copy of ``params`` with ``base_score`` = the loss's start on ``dtrain``'s labels
    and weights (:meth:`~gbloss.Loss.init_score`, in margin space; a list for multiclass and
    multi-label) and ``disable_default_eval_metric=1``. Checks the target against the loss and
    ``num_class``/``multi_strategy``, and refuses ``objective`` and ``base_score`` entries.
    """
    check_prepared(loss, "xgboost")
    return _make_params(loss, dtrain, params)


def _prepare(loss, dtrain, num_class):
    task, y, n_out = _target(loss, dtrain.get_label(), dtrain.num_row(), num_class)
    if not loss.is_prepared:
        loss = loss.prepare(y, n_classes=n_out if task == MULTICLASS else None)
    return loss, task, _start(loss, task, y, _weights(dtrain), n_out)


def _metric_and_direction(loss, metric_names, maximize):
    custom = Metric(loss, metric_names) if metric_names is not None else None
    if custom is not None:
        if maximize is not None and bool(maximize) != custom.maximize:
            raise ValueError(f"maximize={maximize!r} contradicts metric {custom.names[-1]!r}, "
                             f"which early stopping must "
                             f"{'maximise' if custom.maximize else 'minimise'}: drop maximize")
        maximize = custom.maximize
    return custom, maximize


def _remember(booster, loss, task, start):
    booster.set_attr(**{ATTR_LOSS: json.dumps(loss.to_dict()), ATTR_TASK: task,
                        ATTR_START: json.dumps(np.atleast_1d(start).tolist())})


def _check_kwargs(kwargs):
    for key in ("obj", "custom_metric"):
        if key in kwargs:
            raise TypeError(f"{key}= is set by gbloss from loss= (and metric=); drop it")


def train(params, dtrain, num_boost_round=10, *, loss, metric="loss", evals=None,
          early_stopping_rounds=None, maximize=None, hessian_scale=1.0, n_threads=None, X=None,
          **kwargs):
    """``xgboost.train`` with a gbloss loss; the booster remembers the loss and its start.

    Prepares the loss on ``dtrain`` (logit-adjustment priors), sets the start and switches off
    the margin-space default metric (:func:`params`), trains with :class:`Objective` and
    :class:`Metric` (``metric``: a name or list of names, None for none), passes the metric's
    direction as ``maximize``, and stores the loss, task and start as booster attributes
    (saved with the model) for :func:`predict_proba`. Other keyword arguments go to
    ``xgboost.train`` (``evals_result``, ``verbose_eval``, ``callbacks``, ``xgb_model``...).

    **GPU** (``params["device"] = "cuda"``): give ``X=``, the feature matrix ``dtrain`` was
    built from (CuPy, NumPy or numeric pandas; copied to the GPU once), and training runs
    device-resident (:func:`gbloss.cuda.train_xgboost`): margins, labels, weights, gradients
    and Hessians stay on the GPU, with no host copy per round. The model equals the host
    objective's (same trees; margins agree to float32 rounding). Callbacks, eval sets, early
    stopping, ``evals_result``, ``xgb_model`` and the booster attributes work as on the CPU.
    Missing GPU, CuPy or numba-cuda raise :class:`gbloss.cuda.GPUUnavailableError`. Without
    ``X=`` (or with a sparse ``X``, a ``booster`` other than ``gbtree``, dropout or
    ``process_type="update"``) gbloss warns and trains with the host objective, whose per-round
    copies cost several times the built-in objective's time (shared/reference/gpu.md).
    """
    _check_kwargs(kwargs)
    params = dict(params or {})
    loss, task, start = _prepare(loss, dtrain, params.get("num_class"))
    train_params = _make_params(loss, dtrain, params, start=start, task=task)
    if kwargs.get("xgb_model") is not None:
        del train_params["base_score"]  # continue from the model's own start
    custom, maximize = _metric_and_direction(loss, metric, maximize)
    loop = _device_loop(train_params, X)
    if loop is None:
        obj = Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)
        obj.expected_start = start  # spares recomputing it for the first-round check
        booster = xgboost.train(
            train_params, dtrain, num_boost_round, evals=evals, obj=obj,
            custom_metric=custom, maximize=maximize,
            early_stopping_rounds=early_stopping_rounds, **kwargs)
    else:
        booster = loop(train_params, dtrain, num_boost_round, X=X, loss=loss,
                       hessian_scale=hessian_scale, evals=evals, custom_metric=custom,
                       maximize=maximize, early_stopping_rounds=early_stopping_rounds, **kwargs)
    _remember(booster, loss, task, start)
    return booster


def _device_loop(params, X):
    """:func:`gbloss.cuda.train_xgboost` when ``params`` ask for the GPU and ``X`` allows the
    device-resident loop; None (XGBoost's loop with the host objective) otherwise, with a
    warning when the GPU was asked for. Raises when the GPU stack is missing."""
    device = str(params.get("device") or "cpu").lower()
    if not device.startswith(("cuda", "gpu")):
        return None
    booster = params.get("booster", "gbtree")
    # the loop adds each round's new trees to the margins: nothing may change earlier trees
    changes_trees = (float(params.get("rate_drop") or 0) > 0 or bool(params.get("one_drop"))
                     or params.get("process_type") == "update")
    reason = ("no X= was given" if X is None else
              "X is sparse" if hasattr(X, "tocsr") else
              f"booster={booster!r} is not 'gbtree'" if booster != "gbtree" else
              "dropout or process_type='update' changes earlier trees" if changes_trees else
              None)
    if reason is not None:
        warnings.warn(f"device={params['device']!r} but {reason}: gbloss computes gradients on "
                      "the host every round (XGBoost copies margins out and gradients back, "
                      "several times slower than the device-resident path); pass X=, the "
                      "dense feature matrix dtrain was built from", UserWarning, stacklevel=3)
        return None
    from . import cuda  # numba-cuda (and CuPy, checked here) only on this path

    cuda.require(cupy=True)
    return cuda.train_xgboost


# -- prediction ------------------------------------------------------------------------------


def _loss_and_task(booster, loss, raw):
    spec = booster.attr(ATTR_LOSS)
    if spec is not None:
        stored = loss_from_dict(json.loads(spec))
        if loss is not None and not same_loss(loss, stored):
            raise ValueError(f"loss={loss!r} differs from the loss the booster was trained with, "
                             f"{stored!r}: drop loss=")
        return stored, booster.attr(ATTR_TASK)
    if loss is None:
        raise ValueError("the booster carries no gbloss loss (trained with plain xgboost.train, "
                         "not gbloss.xgboost.train): pass loss=")
    check_prepared(loss, "xgboost")
    if raw.ndim == 1:
        return loss, BINARY
    config = json.loads(booster.save_config())["learner"]["learner_model_param"]
    return loss, MULTICLASS if int(config["num_class"]) > 0 else MULTILABEL


def _iteration_range(booster, iteration_range):
    if iteration_range is not None:
        return tuple(iteration_range)
    best = booster.attr("best_iteration")
    return (0, int(best) + 1) if best is not None else (0, 0)


def _margins(booster, data, iteration_range):
    iteration_range = _iteration_range(booster, iteration_range)
    if isinstance(data, xgboost.DMatrix):
        return booster.predict(data, output_margin=True, iteration_range=iteration_range)
    raw = booster.inplace_predict(data, predict_type="margin", iteration_range=iteration_range)
    return raw.get() if hasattr(raw, "__cuda_array_interface__") else raw  # CuPy: to the host


def predict_raw(booster, data, *, iteration_range=None):
    """Raw margins of a booster trained with a gbloss objective, start included.

    ``data``: a DMatrix or anything ``Booster.inplace_predict`` takes (NumPy, pandas, ...).
    ``iteration_range`` defaults to the trees up to ``best_iteration`` after early stopping
    (like XGBoost's scikit-learn API), else all trees. A NumPy array of shape (n,) or (n, K),
    also for CuPy ``data`` (predicted on the GPU, then copied to the host).
    """
    return _margins(booster, data, iteration_range)


def predict_proba(booster, data, *, loss=None, iteration_range=None):
    """Probabilities of a booster trained with a gbloss objective, through the loss's link.

    Binary: ``P(y=1)``, shape (n,); multiclass: softmax, (n, K); multi-label: per-label
    sigmoid, (n, K). The loss comes from the booster's attributes (:func:`train`,
    :func:`dask_train`; kept by ``save_model``/``load_model``) or from ``loss=`` for a booster
    trained with plain ``xgboost.train``. ``data`` and ``iteration_range`` as in
    :func:`predict_raw`.
    """
    raw = _margins(booster, data, iteration_range)
    loss, task = _loss_and_task(booster, loss, raw)
    return loss.predict_proba(raw, task=None if task == BINARY else task, calibrate=False)


# -- Dask ------------------------------------------------------------------------------------


def _part_stats(part, num_class):
    """Sufficient label statistics of one partition: everything the start and the priors
    depend on (the losses are linear in soft labels; the softmax start needs class masses)."""
    y = np.asarray(part["label"], dtype=np.float64)
    weight = part.get("weight")
    w = np.ones(y.shape[0]) if weight is None else np.asarray(weight, np.float64).ravel()
    if num_class:
        if np.isnan(y).any() or np.any((y < 0) | (y >= num_class) | (y != np.floor(y))):
            raise ValueError(f"multiclass labels must be integers in 0..{num_class - 1}")
        idx = y.ravel().astype(np.intp)
        return {"n": y.shape[0], "counts": np.bincount(idx, minlength=num_class),
                "masses": np.bincount(idx, weights=w, minlength=num_class), "ndim": 1}
    y2 = y.reshape(y.shape[0], -1)
    # (w[:, None] * y2).sum(0), not w @ y2: BLAS threads would spin against the worker's training
    return {"n": y.shape[0], "sum_y": y2.sum(axis=0), "masses": (w[:, None] * y2).sum(axis=0),
            "total_w": w.sum(), "ndim": y.ndim, "max_y": float(np.nanmax(y)) if y.size else 0.0,
            "int_y": bool(np.all(y == np.floor(y)))}


def _global_target(client, dtrain, loss, num_class):
    """Task, prepared loss and start from all partitions of a DaskDMatrix."""
    futures = [f for parts in dtrain.worker_map.values() for f in parts]
    stats = client.gather([client.submit(_part_stats, f, int(num_class or 0), pure=False)
                           for f in futures])
    n = sum(s["n"] for s in stats)
    masses = sum(s["masses"] for s in stats)
    if num_class and int(num_class) > 1:
        k = int(num_class)
        task, _, _ = _target(loss, np.zeros(n), n, k)
        counts = sum(s["counts"] for s in stats)
        if not loss.is_prepared:
            loss = loss.prepare(LabelStats(MULTICLASS, counts, counts))
        # the softmax start depends on the weighted class masses only
        return loss, task, _start(loss, task, np.arange(k, dtype=np.float64), masses, k)
    ndim = max(s["ndim"] for s in stats)
    n_out = masses.size
    if ndim == 1 and all(s["int_y"] for s in stats):  # class ids > 1 without num_class
        _target(loss, np.array([max(s["max_y"] for s in stats)]), 1, 0)
    task, _, _ = _target(loss, np.zeros(n * n_out), n, 0)
    sum_y, total_w = sum(s["sum_y"] for s in stats), sum(s["total_w"] for s in stats)
    if not loss.is_prepared:
        counts = np.array([n - sum_y[0], sum_y[0]])
        loss = loss.prepare(LabelStats(BINARY, counts, counts))
    # one row with the weighted mean soft label carries every output's masses (A_k, W - A_k)
    y_mean = (masses / total_w)[None, :] if task == MULTILABEL else masses / total_w
    return loss, task, _start(loss, task, y_mean, np.array([total_w]), n_out)


def dask_train(client, params, dtrain, num_boost_round=10, *, loss, metric="loss", evals=None,
               early_stopping_rounds=None, maximize=None, hessian_scale=1.0, n_threads=None,
               **kwargs):
    """:func:`train` on a Dask cluster through ``xgboost.dask.train``.

    ``dtrain`` and the eval sets are ``xgboost.dask.DaskDMatrix`` (or ``DaskQuantileDMatrix``).
    The statistics the loss needs from the whole training set, the start and the
    logit-adjustment priors, come from all partitions (Dask tasks that reduce each partition to
    class counts and weighted label sums) before training; the metrics gather all workers' eval
    rows (:class:`Metric`). Returns ``xgboost.dask.train``'s ``{"booster", "history"}``; the
    booster remembers its loss like :func:`train`'s. gbloss must be importable on the workers
    (otherwise ``xgboost.dask.train`` hangs instead of raising).
    For class-balanced weights over all workers see :func:`dask_class_balanced_weights`.
    """
    from xgboost import dask as dxgb

    _check_kwargs(kwargs)
    params = dict(params or {})
    loss, task, start = _global_target(client, dtrain, loss, params.get("num_class"))
    train_params = _make_params(loss, dtrain, params, start=start, task=task)
    if kwargs.get("xgb_model") is not None:
        del train_params["base_score"]
    custom, maximize = _metric_and_direction(loss, metric, maximize)
    obj = Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)
    obj.expected_start = start
    callbacks = list(kwargs.pop("callbacks", None) or [])
    if early_stopping_rounds:  # xgboost.dask.train has no maximize=: say it to the callback
        callbacks.append(xgboost.callback.EarlyStopping(rounds=early_stopping_rounds,
                                                        maximize=maximize))
    result = dxgb.train(client, train_params, dtrain, num_boost_round, evals=evals, obj=obj,
                        custom_metric=custom, callbacks=callbacks or None, **kwargs)
    _remember(result["booster"], loss, task, start)
    return result


def dask_class_balanced_weights(y, beta=0.999):
    """Class-balanced per-sample weights (:func:`gbloss.class_balanced_weights`) for a Dask
    array or Series of labels, from the class counts over *all* partitions.

    Returns a lazy collection of the same partitioning, for ``DaskDMatrix(weight=...)``.
    """
    import dask

    from .weights import effective_number_weights

    if hasattr(y, "value_counts"):  # dask Series
        counts = dask.compute(y.value_counts())[0].sort_index()
        classes, counts = counts.index.to_numpy(), counts.to_numpy()
    else:
        import dask.array as da

        if y.ndim != 1:
            raise ValueError(f"y must be a 1-D Dask array of class labels, got {y.ndim}-D")
        classes, counts = dask.compute(*da.unique(y, return_counts=True))
    weights = effective_number_weights(counts, beta)

    def lookup(block):
        return weights[np.searchsorted(classes, np.asarray(block))]

    if hasattr(y, "map_partitions"):
        return y.map_partitions(lookup, meta=(y.name, "f8"))
    return y.map_blocks(lookup, dtype=np.float64)
