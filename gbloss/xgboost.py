"""gbloss losses in XGBoost: training objective, eval metrics, the start, predictions, Dask.

The recipe (plain ``xgboost.train``)::

    import xgboost as xgb, gbloss, gbloss.xgboost as gbx

    loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
    booster = xgb.train(gbx.params(loss, dtrain, {"max_depth": 4}), dtrain, 200,
                        obj=gbx.objective(loss),
                        custom_metric=gbx.metric(loss, "average_precision"),
                        evals=[(dvalid, "valid")], early_stopping_rounds=20)
    proba = gbx.predict_proba(booster, dtest, loss=loss)   # calibrated P(y=1 | x)

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
* **The training loop.** :func:`train` runs ``xgboost.train``'s loop itself
  (:func:`boosting_loop`: the same callbacks, evaluation, early stopping and history) so that
  a round costs what the built-in objective's does: after the first round (through
  :class:`Objective`, which validates labels and weights and checks the start), each round
  calls XGBoost's C functions for the margins and the trees directly and the kernel bound to
  the run, sparing the Python wrappers' 0.3 ms a round, which on 2000 rows was half the
  round. The models are byte-identical to ``xgboost.train(..., obj=objective(loss))``. With
  ``callbacks=`` (user code between rounds, which may ``set_label``) every round goes through
  ``Booster.update`` and the objective, which reads labels and weights again.
* **Sample weights** of the DMatrix are applied inside the objective (XGBoost never applies
  them to custom gradients) and by the metrics.
* **Early stopping** uses the last metric. Metric names tell XGBoost's guess the direction
  (names starting with ``auc`` are maximised, all others minimised), so plain ``xgb.train`` with
  ``maximize`` unset stops correctly; :class:`Metric` also exposes ``maximize``, and
  :func:`train` passes it. The default metric, computed on raw margins, is switched off
  (``disable_default_eval_metric``).
* **Threads.** On Linux, gbloss's kernels run in the OpenMP runtime XGBoost's wheel bundles
  when that is still possible at this module's first use (or at an early call of
  :func:`share_openmp_runtime`); the objective then uses all threads, inside XGBoost's own
  thread pool (``OPENMP_SHARED`` is True). Otherwise (Numba's threads or the system libgomp
  came first, ``GBLOSS_SHARE_OPENMP=0``) it runs serially, since a parallel kernel in a second
  runtime fights XGBoost's spinning threads. Importing this module changes nothing; the policy
  and the ``GBLOSS_*`` variables are described in :mod:`gbloss._runtime`.
"""

import ctypes
import json
import warnings
import weakref

import numpy as np
import xgboost

from . import _adapters as core
from ._adapters import Engine, EngineMetric, EngineObjective, LabelStats
from ._runtime import share_openmp_runtime
from .losses import BINARY, MULTICLASS, MULTILABEL

#: Booster attributes that hold the model record (:func:`record`), one per record field.
ATTR_VERSION = "gbloss_version"
ATTR_LOSS = "gbloss_loss"
ATTR_TASK = "gbloss_task"
ATTR_NUM_CLASS = "gbloss_num_class"
ATTR_START = "gbloss_start"
_RECORD_WHERE = "the booster's attributes gbloss_*"

#: Name XGBoost shows (and guesses the early-stopping direction from) for each gbloss metric.
METRIC_NAMES = {
    "loss": "loss",
    "average_precision": "auc_pr",
    "roc_auc": "auc_roc",
    "log_loss": "log_loss",
    "balanced_accuracy": "balanced_error",
}
_MULTI_STRATEGIES = ("one_output_per_tree", "multi_output_tree")

ENGINE = Engine(
    module="gbloss.xgboost", name="XGBoost", dataset="DMatrix",
    make_dataset="xgboost.DMatrix(X, label=y)", score="margin",
    start_fix="build params with gbloss.xgboost.params(loss, dtrain, params) or train with "
              "gbloss.xgboost.train",
    untracked="trained with plain xgboost.train, not gbloss.xgboost.train")

# -- what XGBoost hands over -----------------------------------------------------------------


def _weights(dmatrix):
    w = dmatrix.get_weight()
    return w if w.size else None


def _num_class(labels, n_rows, predt):
    """The ``num_class`` XGBoost's margins imply for 1-D labels (0 for one margin per row)."""
    n_cols = 1 if predt.ndim == 1 else predt.shape[1]
    return n_cols if labels.size == n_rows and n_cols > 1 else 0


def __getattr__(name):
    """``OPENMP_SHARED``: whether gbloss's kernels run in XGBoost's OpenMP runtime (decided
    now if this module has not been used yet; see :func:`share_openmp_runtime`)."""
    if name == "OPENMP_SHARED":
        return share_openmp_runtime()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _training_target(loss, dtrain, num_class):
    """The prepared loss, task and start of a training DMatrix."""
    share_openmp_runtime()  # before the start's kernels start Numba's threads
    target = core.resolve_target(ENGINE, loss, dtrain.get_label(), dtrain.num_row(), num_class)
    loss, start = core.training_start(loss, core.label_stats(target, _weights(dtrain)))
    return loss, target.task, start


# -- objective -------------------------------------------------------------------------------


class Objective(EngineObjective):
    """A gbloss loss as an XGBoost objective: ``xgb.train(..., obj=Objective(loss))``.

    ``obj(predt, dtrain) -> (grad, hess)`` with ``predt``'s shape ((n,) binary, (n, K)
    multiclass and multi-label) in float32. Per DMatrix and thread it validates labels and
    weights once, rereads them every round (a change is validated again, never missed) and
    refills the same gradient buffers (XGBoost copies them right away); see
    :mod:`gbloss._adapters`. DMatrix weights multiply gradient and Hessian. On the first round
    it warns when training does not start from the loss's start (``base_score`` not set by
    :func:`params`).

    Parameters
    ----------
    loss : gbloss.Loss
        Prepared loss (``LogitAdjustedLoss(priors=None)`` needs ``loss.prepare(y_train)``).
    hessian_scale : float > 0
        Multiplies every Hessian. 2.0 with a softmax loss reproduces XGBoost's
        ``multi:softprob`` Hessian ``2 p(1 - p)``; 1.0 (default) is gbloss's diagonal.
    n_threads : int or None
        Numba threads for the kernel. None (default): all of them when gbloss's kernels run in
        XGBoost's own OpenMP runtime (:func:`share_openmp_runtime`, decided in each process on
        first use), else 1, the serial kernel on XGBoost's calling thread (the thread policy:
        :mod:`gbloss._runtime`).

    The object pickles (for Dask) without its per-DMatrix state.
    """

    engine = ENGINE

    def __init__(self, loss, *, hessian_scale=1.0, n_threads=None):
        super().__init__(loss, hessian_scale, n_threads)

    def _threads(self):
        if self.n_threads is not None:
            return self.n_threads
        return None if share_openmp_runtime() else 1

    def __call__(self, predt, dtrain):
        predt = np.asarray(predt)
        n_rows = dtrain.num_row()
        if n_rows == 0:  # a Dask worker without rows of this DMatrix
            return (np.empty(predt.shape, np.float32),) * 2
        if predt.shape[0] != n_rows:
            raise ValueError(f"XGBoost passed predictions of shape {predt.shape} for "
                             f"{n_rows} rows")
        labels = dtrain.get_label()
        return self._gradients(dtrain, predt, labels, _weights(dtrain),
                               _num_class(labels, n_rows, predt))


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

    engine = ENGINE

    def __init__(self, loss, names="loss"):
        super().__init__(loss, names, METRIC_NAMES)
        self.__name__ = "_".join(METRIC_NAMES[n] for n in self.names)

    @property
    def maximize(self):
        """Whether early stopping must maximise the last metric (the one it follows)."""
        return METRIC_NAMES[self.names[-1]].startswith("auc")

    def __call__(self, predt, dmatrix):
        share_openmp_runtime()
        predt = np.asarray(predt)
        n_rows = dmatrix.num_row()
        y = raw = weight = None
        if n_rows:  # a Dask worker may hold no rows of an eval set
            labels = dmatrix.get_label()
            target = core.resolve_target(ENGINE, self.loss, labels, n_rows,
                                         _num_class(labels, n_rows, predt))
            y, raw, weight = target.y, predt.reshape(target.shape), _weights(dmatrix)
        if xgboost.collective.is_distributed():
            y, raw, weight = _gather(y, raw, weight)
        if y is None:
            return [(METRIC_NAMES[n], float("nan")) for n in self.names]
        values = [(METRIC_NAMES[n], 1.0 - v if n == "balanced_accuracy" else v)
                  for n, v in self._values(y, raw, weight)]
        return values[0] if len(values) == 1 else values

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



def _with_start(params, loss, task, start):
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
    core.check_prepared(loss, ENGINE)
    params = dict(params or {})
    _check_params(params)
    loss, task, start = _training_target(loss, dtrain, params.get("num_class"))
    return _with_start(params, loss, task, start)


def _metric_and_direction(loss, metric_names, maximize):
    custom = Metric(loss, metric_names) if metric_names is not None else None
    if custom is not None:
        if maximize is not None and bool(maximize) != custom.maximize:
            raise ValueError(f"maximize={maximize!r} contradicts metric {custom.names[-1]!r}, "
                             f"which early stopping must "
                             f"{'maximise' if custom.maximize else 'minimise'}: drop maximize")
        maximize = custom.maximize
    return custom, maximize


def _check_kwargs(kwargs):
    for key in ("obj", "custom_metric"):
        if key in kwargs:
            raise TypeError(f"{key}= is set by gbloss from loss= (and metric=); drop it")


def _training_setup(params, kwargs, training_target):
    """Checked training parameters with the start, and the prepared loss, task and start."""
    _check_kwargs(kwargs)
    params = dict(params or {})
    _check_params(params)
    loss, task, start = training_target(params.get("num_class"))
    train_params = _with_start(params, loss, task, start)
    if kwargs.get("xgb_model") is not None:
        del train_params["base_score"]  # continue from the model's own start
    return train_params, loss, task, start


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
    hessian_scale = core.check_hessian_scale(hessian_scale)  # the GPU loop takes it too
    n_threads = core.check_n_threads(n_threads)
    train_params, loss, task, start = _training_setup(
        params, kwargs, lambda num_class: _training_target(loss, dtrain, num_class))
    custom, maximize = _metric_and_direction(loss, metric, maximize)
    loop = _device_loop(train_params, X)
    if loop is None:
        obj = Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)
        obj.expected_start = start  # spares recomputing it for the first-round check
        rereads = bool(kwargs.get("callbacks"))  # user code between rounds may set labels
        booster = boosting_loop(
            train_params, dtrain, num_boost_round,
            lambda bst: _host_rounds(bst, dtrain, obj, rereads), evals=evals,
            custom_metric=custom, maximize=maximize,
            early_stopping_rounds=early_stopping_rounds, **kwargs)
    else:
        booster = loop(train_params, dtrain, num_boost_round, X=X, loss=loss,
                       hessian_scale=hessian_scale, evals=evals, custom_metric=custom,
                       maximize=maximize, early_stopping_rounds=early_stopping_rounds, **kwargs)
    _store_record(booster, core.make_record(loss, task, start, np.size(start), True))
    return booster


def boosting_loop(params, dtrain, num_boost_round, rounds, *, evals=None, custom_metric=None,
                  maximize=None, early_stopping_rounds=None, evals_result=None,
                  verbose_eval=True, xgb_model=None, callbacks=None):
    """``xgboost.train`` with a custom objective, its round body given by ``rounds``.

    The loop of ``xgboost.train`` (its ``CallbackContainer``: callbacks, evaluation sets,
    early stopping, ``evals_result``, ``verbose_eval``, ``xgb_model``; metrics on margins)
    with ``rounds(booster) -> step``, where ``step(i)`` grows round ``i``'s trees: the host
    objective (:func:`_host_rounds`) or the GPU's device-resident loop
    (:func:`gbloss.cuda.train_xgboost`).
    """
    from xgboost.callback import CallbackContainer, EarlyStopping, EvaluationMonitor

    evals = list(evals) if evals else []
    for data, _ in evals:
        if not isinstance(data, xgboost.DMatrix):
            raise TypeError(f"evals must hold (DMatrix, name) pairs, got {type(data).__name__}")
        ref = getattr(data, "ref", None)
        if ref is not None and ref is not weakref.ref(dtrain) and data is not dtrain:
            raise ValueError("an eval QuantileDMatrix must be built with ref=dtrain, the "
                             "training data, to share its quantile cuts")
    callbacks = list(callbacks) if callbacks else []
    bst = xgboost.Booster(params, [dtrain] + [d for d, _ in evals], model_file=xgb_model)
    if verbose_eval:
        callbacks.append(EvaluationMonitor(period=1 if verbose_eval is True else verbose_eval))
    if early_stopping_rounds:
        callbacks.append(EarlyStopping(rounds=early_stopping_rounds, maximize=maximize))
    container = CallbackContainer(callbacks, metric=custom_metric, output_margin=True)
    bst = container.before_training(bst)
    step = rounds(bst)
    for i in range(num_boost_round):
        if container.before_iteration(bst, i, dtrain, evals):
            break
        step(i)
        if container.after_iteration(bst, i, dtrain, evals):
            break
    bst = container.after_training(bst)
    if evals_result is not None:
        evals_result.update(container.history)
    return bst.reset()


def _host_rounds(bst, dtrain, obj, rereads):
    """The round body with the host objective :class:`Objective`.

    ``rereads`` (user callbacks run between rounds): every round is ``Booster.update`` with the
    objective, as in ``xgboost.train``, which reads labels and weights again. Otherwise only the
    first round is (it validates them and checks the start); the later rounds call the
    objective bound to that run (:meth:`Objective.bind`) between XGBoost's C functions for the
    margins and the tree growing, called directly (:class:`_NativeRound`), which spares the
    Python wrappers' cost per round (about 0.3 ms, three times a 2000-row round of the kernel).
    """
    def update(i):
        bst.update(dtrain, i, fobj=obj)

    if rereads or dtrain.num_row() == 0 or not _NativeRound.available():
        return update
    native = None

    def step(i):
        nonlocal native
        if native is None:
            update(i)
            native = _NativeRound(bst, dtrain, obj.bind(dtrain))
        else:
            native(i)

    return step


class _NativeRound:
    """One boosting round through XGBoost's C API (``c_api.h``), as ``Booster.boost`` does it:
    ``XGBoosterPredictFromDMatrix`` (margins, ``training=True``) read in place, the gradients
    into the run's buffers (the same two arrays every round), ``XGBoosterTrainOneIter`` with
    their array interfaces, built once."""

    _CONFIG = json.dumps({"type": 1, "training": True, "iteration_begin": 0,
                          "iteration_end": 0, "strict_shape": False}).encode()

    @staticmethod
    def available():
        lib = getattr(xgboost.core, "_LIB", None)
        return all(hasattr(lib, f) for f in ("XGBoosterPredictFromDMatrix",
                                             "XGBoosterTrainOneIter", "XGBGetLastError"))

    def __init__(self, bst, dtrain, gradients):
        self.lib = xgboost.core._LIB
        self.bst, self.dtrain, self.gradients = bst, dtrain, gradients
        self.buffers = self.interfaces = None
        self.preds = ctypes.POINTER(ctypes.c_float)()
        self.shape = ctypes.POINTER(ctypes.c_uint64)()
        self.dims = ctypes.c_uint64()

    def _check(self, status):
        if status != 0:
            raise xgboost.core.XGBoostError(self.lib.XGBGetLastError().decode())

    def __call__(self, i):
        self._check(self.lib.XGBoosterPredictFromDMatrix(
            self.bst.handle, self.dtrain.handle, self._CONFIG, ctypes.byref(self.shape),
            ctypes.byref(self.dims), ctypes.byref(self.preds)))
        shape = tuple(int(self.shape[k]) for k in range(self.dims.value))
        margins = np.ctypeslib.as_array(self.preds, shape=shape)  # XGBoost's buffer
        buffers = self.gradients(margins)
        if self.interfaces is None:
            self.buffers = buffers  # held: XGBoost reads them through their addresses
            self.interfaces = [json.dumps({**a.__array_interface__, "strides": None}).encode()
                               for a in buffers]
        self._check(self.lib.XGBoosterTrainOneIter(self.bst.handle, self.dtrain.handle,
                                                   ctypes.c_int(i), *self.interfaces))


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


# -- the model record ------------------------------------------------------------------------


def _store_record(booster, rec):
    """Keep the record (:func:`gbloss._adapters.make_record`) as booster attributes, which
    ``save_model`` keeps: the task as text, every other field as JSON. XGBoost's model holds
    the start as ``base_score``, so ``start_in_trees`` is always true and not stored."""
    booster.set_attr(**{ATTR_VERSION: json.dumps(rec["version"]),
                        ATTR_LOSS: json.dumps(rec["loss"]), ATTR_TASK: rec["task"],
                        ATTR_NUM_CLASS: json.dumps(rec["num_class"]),
                        ATTR_START: json.dumps(rec["start"])})


def _model_outputs(booster):
    """Raw scores per row of a booster: its classes, or its targets (multi-label)."""
    config = json.loads(booster.save_config())["learner"]["learner_model_param"]
    return max(int(config["num_class"]), int(config.get("num_target", 1)), 1)


def _read_record(booster):
    attrs = booster.attributes()
    if not any(key.startswith("gbloss_") for key in attrs):
        return None
    fields = {"start_in_trees": True}
    if ATTR_TASK in attrs:
        fields["task"] = attrs[ATTR_TASK]
    for key, attr in (("version", ATTR_VERSION), ("loss", ATTR_LOSS),
                      ("num_class", ATTR_NUM_CLASS), ("start", ATTR_START)):
        if attr in attrs:
            fields[key] = core.decode_json(attrs[attr], f"{_RECORD_WHERE} ({attr})")
    if ATTR_VERSION not in attrs and ATTR_LOSS in attrs:  # gbloss 0.1.0: loss, task, start
        fields["version"] = 1
        if isinstance(fields.get("start"), list):
            fields["num_class"] = len(fields["start"])
    return core.parse_record(fields, _RECORD_WHERE, _model_outputs(booster))


def record(booster):
    """The model record of a booster trained by :func:`train` or :func:`dask_train` (dict with
    ``version``, ``loss``, ``task``, ``num_class``, ``start``, ``start_in_trees``), validated
    against the booster; None for a booster trained with plain ``xgboost.train``."""
    rec = _read_record(booster)
    return None if rec is None else rec.as_dict()


# -- prediction ------------------------------------------------------------------------------


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



def predict_proba(booster, data, *, loss=None, calibrate=True, iteration_range=None):
    """Probabilities P(y | x) of a booster trained with a gbloss objective.

    Binary: ``P(y=1)``, shape (n,); multiclass: (n, K), rows summing to 1; multi-label: per
    label, (n, K). ``calibrate=True`` (default) inverts the loss's bias
    (:meth:`gbloss.Loss.predict_proba`; focal and ASL links are not probabilities,
    proper losses are left as they are); ``calibrate=False`` gives the loss's plain link
    (sigmoid or softmax of the margins). The loss comes from the booster's record
    (:func:`train`, :func:`dask_train`; kept by ``save_model``/``load_model``) or from
    ``loss=`` for a booster trained with plain ``xgboost.train``. ``data`` and
    ``iteration_range`` as in :func:`predict_raw`.
    """
    raw = _margins(booster, data, iteration_range)

    def task_of_model():
        if raw.ndim == 1:
            return BINARY
        config = json.loads(booster.save_config())["learner"]["learner_model_param"]
        return MULTICLASS if int(config["num_class"]) > 0 else MULTILABEL

    loss, task = core.prediction_loss(ENGINE, _read_record(booster), loss, task_of_model)
    return core.probabilities(loss, raw, task, calibrate)


# -- Dask ------------------------------------------------------------------------------------


def _partition_stats(part, loss, num_class):
    """Label statistics of one partition (None for an empty one), its target resolved as on
    one machine."""
    share_openmp_runtime()  # on the worker, before its first kernel
    labels = np.asarray(part["label"])
    if labels.shape[0] == 0:
        return None
    target = core.resolve_target(ENGINE, loss, labels, labels.shape[0], num_class)
    return core.label_stats(target, part.get("weight"))


def _global_target(client, dtrain, loss, num_class):
    """Prepared loss, task and start from the label statistics of all partitions."""
    share_openmp_runtime()
    futures = [f for parts in dtrain.worker_map.values() for f in parts]
    stats = client.gather([client.submit(_partition_stats, f, loss, num_class, pure=False)
                           for f in futures])
    stats = [s for s in stats if s is not None]
    if not stats:
        raise ValueError("the training DaskDMatrix has no rows")
    total = LabelStats.total(stats)
    loss, start = core.training_start(loss, total)
    return loss, total.task, start


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

    train_params, loss, task, start = _training_setup(
        params, kwargs, lambda num_class: _global_target(client, dtrain, loss, num_class))
    custom, maximize = _metric_and_direction(loss, metric, maximize)
    obj = Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)
    obj.expected_start = start
    callbacks = list(kwargs.pop("callbacks", None) or [])
    if early_stopping_rounds:  # xgboost.dask.train has no maximize=: say it to the callback
        callbacks.append(xgboost.callback.EarlyStopping(rounds=early_stopping_rounds,
                                                        maximize=maximize))
    result = dxgb.train(client, train_params, dtrain, num_boost_round, evals=evals, obj=obj,
                        custom_metric=custom, callbacks=callbacks or None, **kwargs)
    _store_record(result["booster"], core.make_record(loss, task, start, np.size(start), True))
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
