"""gbloss losses in LightGBM: training objective, eval metrics, the start, predictions, Dask.

The recipe (plain ``lightgbm.train``)::

    import lightgbm as lgb, gbloss, gbloss.lightgbm as gbl

    loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
    params = gbl.params(loss, train_set, {"num_leaves": 31}, valid_sets=[valid_set])
    booster = lgb.train(params, train_set, 500, valid_sets=[valid_set],
                        feval=gbl.metric(loss, "average_precision"),
                        callbacks=[lgb.early_stopping(20)])
    proba = gbl.predict_proba(booster, X_test)    # calibrated P(y=1 | x), start included

:func:`params` returns the parameters with ``"objective": gbl.objective(loss)``, the default
metric switched off and the loss's description, and sets the start as ``init_score`` on the
training set and every validation set. Or in one call (the start then lives in the trees)::

    booster = gbl.train({"num_leaves": 31}, train_set, 500, loss=loss,
                        metric="average_precision", valid_sets=[valid_set],
                        callbacks=[lgb.early_stopping(20)])
    proba = gbl.predict_proba(booster, X_test)

Either booster keeps its loss through ``save_model`` / ``lgb.Booster(model_file=...)``,
``model_to_string`` / ``lgb.Booster(model_str=...)`` and pickling, so
``gbl.predict_proba(lgb.Booster(model_file=path), X)`` gives probabilities.

Tasks: binary (labels in [0, 1]) and multiclass (labels ``0..K-1`` and ``params["num_class"]
= K``: softmax losses). LightGBM's custom objectives have no multi-output trees; multi-label
targets go through ``sklearn.multiclass.OneVsRestClassifier(gbloss.sklearn.
GBLossLGBMClassifier(...))``.

Design decisions
----------------
* **The start** is the loss's :meth:`~gbloss.Loss.init_score`. LightGBM ignores
  ``boost_from_average`` for custom objectives (training starts at 0) and neither saves
  ``init_score`` nor adds it at predict time. gbloss therefore sets it as ``init_score`` on the
  training and validation Datasets (the metrics and early stopping see margins with the start)
  and, after training, puts it into the model: :func:`train` adds it to the leaves of the first
  iteration's trees (``Booster.set_leaf_output``, exactly what LightGBM's own
  ``boost_from_average`` does for built-in objectives), so that even plain
  ``booster.predict(X, raw_score=True)`` includes it. Where that would be wrong (``dart``
  boosting rescales old trees, ``linear_tree`` leaves are not constants) and for boosters from
  plain ``lgb.train`` the start stays in the loss record below and :func:`predict_raw` adds
  it. ``rf`` boosting is refused: LightGBM's random forest takes no ``init_score``.
* **The loss record** (loss, task, start, whether the trees hold the start) is stored in the
  model itself: LightGBM saves its parameters in the model text, and the record is the value
  of the ``valid`` parameter (a list of validation *file names* that only LightGBM's command
  line program reads), written as ``"gbloss-" + hex(JSON)``. A sidecar file would not follow
  ``Booster(model_file=...)``, and unknown parameter names are not saved. :func:`params` and
  :func:`train` refuse a ``valid`` entry of their own.
* **Hessians** are gbloss's (exact softmax diagonal ``p_k(1 - p_k)`` times focal factors, PSD
  policy for the focal-type losses). LightGBM's ``multiclass`` uses ``K/(K-1) p_k(1 - p_k)``
  (docs/derivations.md section 3.5): ``hessian_scale=K/(K-1)`` reproduces it.
* **Sample weights** of the Dataset are applied inside the objective (LightGBM never applies
  them to custom gradients) and by the metrics.
* **Metrics** (:class:`Metric`, for ``feval=``) are computed on probabilities and return
  LightGBM's ``(name, value, is_higher_better)``, so ``lgb.early_stopping`` goes the right way.
  LightGBM's early stopping watches every metric on every validation set (stopping when any
  one stalls) unless ``first_metric_only=True``. The default metric, computed on raw scores,
  is switched off (``metric="None"``); :func:`params` and :func:`train` refuse a ``metric``
  parameter (use ``metric=`` / ``feval=`` with gbloss metrics instead).
* **Buffers**: LightGBM passes float64 scores, ``(n, K)`` Fortran-ordered for multiclass and a
  view of a buffer it reuses every round; the objective never keeps them. It refills the same
  float32 gradient buffers every round (Fortran-ordered for multiclass, so LightGBM's
  ``ravel(order="F")`` and float32 cast are no-copy views); LightGBM is done with them when
  ``Booster.update`` returns, before the next round asks for new ones. The first round's
  validated call fills them, so no round computes its gradients twice.
* **Two calling conventions**: :class:`Objective` and :class:`Metric` take
  ``(preds, dataset)`` (``lgb.train``) and ``(y_true, y_pred, weight)`` (LightGBM's
  scikit-learn and Dask estimators, which count three parameters and pass the weights).
  ``lgb.train`` deep-copies ``params``, so the objective keeps nothing the caller needs: every
  copy reads labels and weights from the Dataset it is handed, every round (per-run state:
  :mod:`gbloss._adapters`).
* **Dask**: :func:`dask_train` reduces every partition of the labels to label statistics on
  the workers, builds the loss (priors) and the start from the totals and fits
  ``lightgbm.DaskLGBMClassifier`` with the objective and the start as ``init_score``.
  :func:`predict_raw` and :func:`predict_proba` take Dask data too (lazy, block by block).
"""

import functools
import json
import re
import warnings
import weakref

import lightgbm
import numpy as np

from . import _adapters as core
from . import _metrics
from ._adapters import LIGHTGBM_ALIASES, Engine, EngineMetric, EngineObjective, LabelStats
from .losses import BINARY, MULTICLASS

#: LightGBM parameter that carries the loss record in the saved model (see the module notes).
RECORD_PARAM = "valid"
_RECORD_PREFIX = "gbloss-"
_RECORD_WHERE = f"the model's {RECORD_PARAM!r} parameter"

#: gbloss metric names (:mod:`gbloss._metrics`), also the names LightGBM shows.
METRIC_NAMES = tuple(_metrics.METRICS)

ENGINE = Engine(
    module="gbloss.lightgbm", name="LightGBM", dataset="Dataset",
    make_dataset="lightgbm.Dataset(X, label=y)", score="score",
    start_fix="build params with gbloss.lightgbm.params(loss, train_set, params, "
              "valid_sets=...) or train with gbloss.lightgbm.train",
    untracked="trained with plain lightgbm.train without gbloss.lightgbm.params",
    multilabel_refusal="LightGBM's custom objectives have no multi-output trees: for "
                       "multi-label targets use sklearn.multiclass.OneVsRestClassifier("
                       "gbloss.sklearn.GBLossLGBMClassifier(loss))")


# -- what LightGBM hands over ----------------------------------------------------------------


def _field(dataset, name):
    """A field of a constructed or not yet constructed Dataset (LightGBM's getters raise
    before construction when the field was not given)."""
    if getattr(dataset, "_handle", None) is None:
        return getattr(dataset, name, None)
    return getattr(dataset, f"get_{name}")()


def _array_or_none(values):
    """The engine's array as it is (so that its identity tells a change), or None."""
    if values is None:
        return None
    if hasattr(values, "to_numpy"):  # pandas, before the Dataset is constructed
        values = values.to_numpy()
    values = np.asarray(values)
    return values if values.size else None


def _labels(dataset):
    return _array_or_none(_field(dataset, "label"))


def _weights(dataset):
    return _array_or_none(_field(dataset, "weight"))


def _training_target(loss, train_set, num_class):
    """The prepared loss, task, start and outputs per row of a training Dataset."""
    target = core.resolve_target(ENGINE, loss, _labels(train_set), None, num_class)
    loss, start = core.training_start(loss, core.label_stats(target, _weights(train_set)))
    return loss, target.task, start, target.n_outputs


# -- objective -------------------------------------------------------------------------------


class Objective(EngineObjective):
    """A gbloss loss as a LightGBM objective: ``params["objective"] = Objective(loss)``.

    Called as ``obj(preds, train_set)`` by ``lightgbm.train`` and as
    ``obj(y_true, y_pred, weight)`` by LightGBM's scikit-learn and Dask estimators; returns
    ``(grad, hess)`` with the scores' shape ((n,) binary, (n, K) multiclass) in float32. Per
    Dataset and thread it validates labels and weights once, rereads them every round (a
    change is validated again, never missed) and refills the same gradient buffers (see
    :mod:`gbloss._adapters`). Weights multiply gradient and Hessian. On the first round it warns
    when training does not start from the loss's start (no ``init_score`` from :func:`params`).

    Parameters
    ----------
    loss : gbloss.Loss
        Prepared loss (``LogitAdjustedLoss(priors=None)`` needs ``loss.prepare(y_train)``).
    hessian_scale : float > 0
        Multiplies every Hessian; ``K/(K-1)`` with a softmax loss reproduces LightGBM's
        ``multiclass`` Hessian. 1.0 (default) is gbloss's diagonal.
    n_threads : int or None
        Numba threads for the kernel. None (default): gbloss's default, all Numba threads for
        large data. LightGBM's Linux wheels and Numba's ``omp`` threading layer use the same
        OpenMP runtime (the system libgomp), so the kernel runs on LightGBM's own, already
        spinning, thread team: 1.04x the built-in objective's training time against 1.14x for
        the serial kernel (500k rows), and no collapse with another process on a core
        (benchmarks/bench_threads.py). 1: the serial kernel on LightGBM's calling thread.

    The object pickles (for Dask) and deep-copies without its per-Dataset state.
    """

    engine = ENGINE
    buffer_order = "F"  # LightGBM's ravel(order="F") of (n, K) buffers is then a view

    def __init__(self, loss, *, hessian_scale=1.0, n_threads=None):
        super().__init__(loss, hessian_scale, n_threads)

    def __call__(self, preds, train_set, weight=None):
        if isinstance(train_set, lightgbm.Dataset):
            key, labels, weight = train_set, _labels(train_set), _weights(train_set)
        else:  # LightGBM's estimators: (y_true, y_pred, weight)
            key, labels, preds = self, _array_or_none(preds), train_set
            weight = _array_or_none(weight)
        preds = np.asarray(preds)
        return self._gradients(key, preds, labels, weight,
                               preds.shape[1] if preds.ndim == 2 else 0)


def objective(loss, *, hessian_scale=1.0, n_threads=None):
    """The callable for ``params["objective"]``; see :class:`Objective`.

    Use :func:`params` to get it together with the start on the Datasets."""
    return Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)


# -- metrics ---------------------------------------------------------------------------------


class Metric(EngineMetric):
    """gbloss metrics as a LightGBM ``feval`` (or estimator ``eval_metric``), on probabilities.

    ``metric(preds, eval_set)`` (``lightgbm.train``) or ``metric(y_true, y_pred, weight)``
    (estimators) receives raw scores (with a custom objective LightGBM passes raw scores; they
    include the Dataset's ``init_score``, the start that :func:`params` and :func:`train` set),
    turns them into probabilities through the loss's link and calls scikit-learn (see
    :mod:`gbloss._metrics`), with the Dataset weights. Returns ``(name, value,
    is_higher_better)``, or a list of them for several names:

    ======================  ==================================  ================
    name                    value                               is_higher_better
    ======================  ==================================  ================
    ``loss``                weighted mean loss                  False
    ``average_precision``   average precision (PR-AUC)          True
    ``roc_auc``             ROC-AUC                             True
    ``log_loss``            log-loss of the probabilities       False
    ``balanced_accuracy``   balanced accuracy                   True
    ======================  ==================================  ================

    It warns once per eval Dataset without ``init_score`` (its scores then lack the start).
    """

    engine = ENGINE

    _transient = {"_warned": weakref.WeakSet}  # eval Datasets warned about

    def __init__(self, loss, names="loss"):
        super().__init__(loss, names, METRIC_NAMES)

    @property
    def higher_is_better(self):
        """``is_higher_better`` of each name, in order."""
        return [_metrics.higher_is_better(n) for n in self.names]

    def __call__(self, preds, eval_set, weight=None):
        if isinstance(eval_set, lightgbm.Dataset):
            labels, weight = _labels(eval_set), _weights(eval_set)
            if _field(eval_set, "init_score") is None and eval_set not in self._warned:
                self._warned.add(eval_set)
                warnings.warn("this eval Dataset has no init_score, so its scores lack the "
                              "loss's start: pass it in valid_sets= of "
                              "gbloss.lightgbm.params or train", UserWarning, stacklevel=2)
        else:  # (y_true, y_pred, weight)
            labels, preds, weight = preds, eval_set, _array_or_none(weight)
        raw = np.asarray(preds, dtype=np.float64)
        target = core.resolve_target(ENGINE, self.loss, labels, raw.shape[0],
                                     raw.shape[1] if raw.ndim == 2 else 0)
        values = [(n, value, _metrics.higher_is_better(n))
                  for n, value in self._values(target.y, raw, weight)]
        return values[0] if len(values) == 1 else values


def metric(loss, names="loss"):
    """The ``feval=`` callable for ``lightgbm.train``; see :class:`Metric`.

    ``names``: one of ``"loss"``, ``"average_precision"``, ``"roc_auc"``, ``"log_loss"``,
    ``"balanced_accuracy"``, or a list of them.
    """
    return Metric(loss, names)


# -- the loss record -------------------------------------------------------------------------


def _encode_record(rec):
    text = json.dumps(rec, separators=(",", ":"))
    return _RECORD_PREFIX + text.encode("utf-8").hex()


def _decode_record(value):
    values = value if isinstance(value, list | tuple) else str(value).split(",")
    for item in values:
        item = str(item).strip()
        if item.startswith(_RECORD_PREFIX):
            try:
                text = bytes.fromhex(item[len(_RECORD_PREFIX):]).decode("utf-8")
            except ValueError as exc:  # not hex, or not UTF-8
                raise ValueError(f"the gbloss record in {_RECORD_WHERE} is corrupt: not "
                                 f"hex-encoded text ({exc})") from None
            return core.decode_json(text, _RECORD_WHERE)
    return None


def _read_record(booster):
    value = core.lightgbm_param(booster.params or {}, "valid")
    if value is None:  # e.g. a Booster built in a way that did not load its parameters
        text = booster.model_to_string()
        begin = text.find(f"\n[{RECORD_PARAM}: ")
        if begin < 0:
            return None
        value = text[begin + len(RECORD_PARAM) + 4:text.index("]", begin)]
    fields = _decode_record(value)
    if fields is None:
        return None
    return core.parse_record(fields, _RECORD_WHERE, booster.num_model_per_iteration())


def record(booster):
    """The loss record of a booster (dict with ``version``, ``loss``, ``task``,
    ``num_class``, ``start``, ``start_in_trees``), validated against the booster; None for a
    booster trained without gbloss's parameters."""
    rec = _read_record(_booster(booster))
    return None if rec is None else rec.as_dict()


def _booster(model):
    if isinstance(model, lightgbm.Booster):
        return model
    booster = getattr(model, "booster_", None)  # LightGBM's scikit-learn and Dask estimators
    if isinstance(booster, lightgbm.Booster):
        return booster
    raise TypeError(f"expected a lightgbm.Booster or a fitted LightGBM estimator, got "
                    f"{type(model).__name__}")


# -- parameters and training -----------------------------------------------------------------


def _check_params(params):
    for key, why in (("objective", "gbloss passes its objective"),
                     ("valid", "gbloss stores the loss record in it")):
        present = [a for a in LIGHTGBM_ALIASES[key] if a in params]
        if present:
            raise ValueError(f"remove params[{present[0]!r}]: {why} (see the notes of "
                             "gbloss.lightgbm)")
    if str(core.lightgbm_param(params, "boosting", "gbdt")).lower() in ("rf", "random_forest"):
        raise ValueError("boosting='rf' is not supported: LightGBM's random forest takes no "
                         "init_score, so it cannot start from the loss's start; use "
                         "boosting='gbdt' (with bagging for randomness) or 'dart'")
    metric_value = core.lightgbm_param(params, "metric")
    if metric_value not in (None, "None", "none", "", "null", "na", "custom", []):
        raise ValueError(f"remove params['metric'] = {metric_value!r}: with a custom objective "
                         "LightGBM computes built-in metrics on raw scores (and early stopping "
                         "would follow them); use gbloss metrics on probabilities, "
                         "metric=... in gbloss.lightgbm.train or "
                         "feval=gbloss.lightgbm.metric(loss, ...)")


def _start_fits_in_trees(params):
    boosting = str(core.lightgbm_param(params, "boosting", "gbdt")).lower()
    linear = core.lightgbm_param(params, "linear_tree", False)
    return boosting in ("gbdt", "gbrt", "goss") and not linear


def _n_rows(dataset, what):
    label = _labels(dataset)
    if label is None:
        raise ValueError(f"the {what} Dataset has no labels: create it with "
                         "lightgbm.Dataset(X, label=y)")
    return label.shape[0]


def _set_start(datasets, task, start):
    for ds in datasets:
        n = _n_rows(ds, "validation")
        # multiclass: class-major, the order in which LightGBM stores (n, K) scores
        init = np.full(n, start) if task == BINARY else np.repeat(start, n)
        ds.set_init_score(init)


def _unique_sets(train_set, valid_sets):
    seen, sets = {id(train_set)}, [train_set]
    for ds in valid_sets or ():
        if not isinstance(ds, lightgbm.Dataset):
            raise TypeError(f"valid_sets must hold lightgbm.Dataset objects, got "
                            f"{type(ds).__name__}")
        if id(ds) not in seen:
            seen.add(id(ds))
            sets.append(ds)
    return sets


def _make_params(loss, train_set, params, valid_sets, *, hessian_scale, n_threads, in_trees):
    params = dict(params or {})
    _check_params(params)
    loss, task, start, n_out = _training_target(loss, train_set,
                                                core.lightgbm_param(params, "num_class"))
    _set_start(_unique_sets(train_set, valid_sets), task, start)
    for alias in LIGHTGBM_ALIASES["metric"]:
        params.pop(alias, None)
    params["objective"] = Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)
    params["objective"].expected_start = start  # spares recomputing it on the first round
    params["metric"] = "None"
    params[RECORD_PARAM] = _encode_record(core.make_record(loss, task, start, n_out, in_trees))
    return params, loss, task, start


def params(loss, train_set, params=None, *, valid_sets=None, hessian_scale=1.0,
           n_threads=None):
    """LightGBM parameters for training ``loss`` on ``train_set`` with plain ``lightgbm.train``.

    Returns a copy of ``params`` with ``"objective"`` = :func:`objective` (loss prepared on
    ``train_set``: logit-adjustment priors), ``"metric": "None"`` and the loss record, and sets
    the loss's start (:meth:`~gbloss.Loss.init_score` on the training labels and weights) as
    ``init_score`` of ``train_set`` and of every Dataset in ``valid_sets`` (replacing any they
    had). Checks the labels against the loss and ``num_class``; refuses ``objective``,
    ``metric`` and ``valid`` entries. Pass the same ``valid_sets`` to ``lightgbm.train``.
    """
    return _make_params(loss, train_set, params, valid_sets, hessian_scale=hessian_scale,
                        n_threads=n_threads, in_trees=False)[0]


_LEAF_COUNT = re.compile(r"^num_leaves=(\d+)$", re.MULTILINE)


def _move_start_into_trees(booster, task, start):
    """Add the start to every leaf of the first iteration's trees (one per class)."""
    starts = np.atleast_1d(start)
    n_trees = booster.num_trees()
    if n_trees < starts.size:
        return False
    # leaf counts from the model text: dump_model's JSON of the same trees takes about 8x longer
    leaves = _LEAF_COUNT.findall(booster.model_to_string(num_iteration=1))
    if len(leaves) < starts.size:
        raise RuntimeError("could not read the leaf counts from LightGBM's model text")
    for tree in range(starts.size):
        for leaf in range(int(leaves[tree])):
            booster.set_leaf_output(tree, leaf,
                                    booster.get_leaf_output(tree, leaf) + float(starts[tree]))
    return True


def _check_kwargs(kwargs):
    for key in ("feval", "fobj"):
        if key in kwargs:
            raise TypeError(f"{key}= is set by gbloss from loss= (and metric=); drop it")
    if kwargs.get("init_model") is not None:
        raise TypeError("init_model= is not supported by gbloss.lightgbm.train: the start of a "
                        "continued model would be counted twice")


def train(params, dtrain, num_boost_round=100, *, loss, metric="loss", valid_sets=None,
          valid_names=None, callbacks=None, n_threads=None, hessian_scale=1.0, **kwargs):
    """``lightgbm.train`` with a gbloss loss; the booster holds its start and remembers its loss.

    Prepares the loss on ``dtrain`` (logit-adjustment priors), sets the start as ``init_score``
    on ``dtrain`` and every validation set (:func:`params`; the Datasets are modified), trains
    with :class:`Objective` and :class:`Metric` (``metric``: a name or list of names, None for
    none; computed on probabilities, the default metric off), then adds the start to the first
    trees (see the module notes), so that the model predicts with it after ``save_model``.
    ``callbacks`` (e.g. ``lightgbm.early_stopping(20)``) and other keyword arguments go to
    ``lightgbm.train``. Returns the ``lightgbm.Booster``; ``best_iteration`` is LightGBM's
    (1-based, 0 without early stopping). ``n_threads``: Numba threads of the objective.
    """
    _check_kwargs(kwargs)
    if int(num_boost_round) < 1:
        raise ValueError(f"num_boost_round must be >= 1, got {num_boost_round!r}")
    in_trees = _start_fits_in_trees(params or {})
    train_params, loss, task, start = _make_params(
        loss, dtrain, params, valid_sets, hessian_scale=hessian_scale, n_threads=n_threads,
        in_trees=in_trees)
    feval = Metric(loss, metric) if metric is not None else None
    try:
        booster = lightgbm.train(train_params, dtrain, num_boost_round, valid_sets=valid_sets,
                                 valid_names=valid_names, feval=feval, callbacks=callbacks,
                                 **kwargs)
    except lightgbm.basic.LightGBMError as exc:
        if "num_features()) > (0)" not in str(exc):
            raise
        # LightGBM 4.x fails this way with any custom objective (the built-in ones train
        # constant trees) when Dataset construction dropped every feature as unsplittable
        raise ValueError(
            "LightGBM kept no feature it could split: with this few rows every feature was "
            "dropped when the Dataset was built (min_data_in_leaf, default 20). Lower "
            "min_data_in_leaf, or build the Dataset with params={'feature_pre_filter': False}"
        ) from exc
    if in_trees and not _move_start_into_trees(booster, task, start):
        raise RuntimeError("LightGBM returned a model without trees of the first iteration; "
                           "cannot store the start")
    return booster


# -- prediction ------------------------------------------------------------------------------


def predict_raw(booster, data, *, num_iteration=None):
    """Raw scores of a booster trained with a gbloss objective, start included.

    ``booster``: a ``lightgbm.Booster`` (also one loaded with ``Booster(model_file=...)``) or a
    fitted LightGBM estimator (``booster_``). ``data``: anything ``Booster.predict`` takes, or a
    Dask Array / DataFrame (then a lazy Dask Array, predicted block by block on the workers).
    ``num_iteration`` defaults to LightGBM's: the trees up to ``best_iteration`` after early
    stopping, else all. Shape (n,) binary or (n, K) multiclass.
    """
    booster = _booster(booster)
    if _is_dask(data):
        return _dask_map(functools.partial(predict_raw, booster, num_iteration=num_iteration),
                         booster, data)
    raw = np.asarray(booster.predict(data, raw_score=True, num_iteration=num_iteration),
                     dtype=np.float64)
    rec = _read_record(booster)
    if rec is not None and not rec.start_in_trees:
        raw = raw + (rec.start[0] if rec.task == BINARY else rec.start)
    return raw


def predict_proba(booster, data, *, loss=None, calibrate=True, num_iteration=None):
    """Probabilities P(y | x) of a booster trained with a gbloss objective.

    Binary: ``P(y=1)``, shape (n,); multiclass: (n, K), rows summing to 1. ``calibrate=True``
    (default) inverts the loss's bias (:meth:`gbloss.Loss.predict_proba`; focal
    and ASL links are not probabilities, proper losses are left as they are);
    ``calibrate=False`` gives the loss's plain link (sigmoid or softmax of the raw scores). The
    loss comes from the booster's record (:func:`train`, :func:`params`, :func:`dask_train`;
    kept by saving and loading) or, for a booster trained without gbloss's parameters, from
    ``loss=`` (its raw scores are then taken as they are). ``data`` and ``num_iteration`` as in
    :func:`predict_raw`.
    """
    booster = _booster(booster)
    if _is_dask(data):
        return _dask_map(functools.partial(predict_proba, booster, loss=loss,
                                           calibrate=calibrate, num_iteration=num_iteration),
                         booster, data)
    raw = predict_raw(booster, data, num_iteration=num_iteration)
    loss, task = core.prediction_loss(ENGINE, _read_record(booster), loss,
                                      lambda: BINARY if raw.ndim == 1 else MULTICLASS)
    return core.probabilities(loss, raw, task, calibrate)


def _is_dask(data):
    return type(data).__module__.split(".")[0] in ("dask", "dask_expr")


def _dask_map(predict, booster, data):
    """Apply a NumPy prediction to every row block of a Dask Array or DataFrame, lazily."""
    import dask.array as da

    if not isinstance(data, da.Array):
        data = data.to_dask_array(lengths=True)
    if data.ndim != 2:
        raise ValueError(f"expected 2-D data, got a Dask array of shape {data.shape}")
    data = data.rechunk({1: -1})
    n_out = booster.num_model_per_iteration()
    if n_out == 1:
        return data.map_blocks(predict, drop_axis=1, dtype=np.float64)
    return data.map_blocks(predict, chunks=(data.chunks[0], (n_out,)), dtype=np.float64)


# -- Dask ------------------------------------------------------------------------------------


def _block_summary(y):
    """What the task of Dask training depends on, for one block of labels (class ids)."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if np.isnan(y).any():
        return {"error": "the labels contain NaN: every row needs a label"}
    if np.any((y < 0) | (y != np.floor(y))):
        return {"error": f"labels must be class ids 0, 1, ..., K-1 for Dask training; got "
                         f"values in [{y.min()}, {y.max()}]"}
    return {"max": float(y.max()) if y.size else -1.0}


def _block_stats(loss, y, weight, num_class):
    """Label statistics of one block (None for an empty one)."""
    y = np.asarray(y)
    if y.size == 0:
        return None
    target = core.resolve_target(ENGINE, loss, y, None, num_class)
    return core.label_stats(target, weight)


def _blocks(collection):
    if collection is None:
        return None
    if hasattr(collection, "to_delayed"):
        blocks = collection.to_delayed()
        return list(np.asarray(blocks, dtype=object).ravel())
    raise TypeError(f"expected a Dask Array or Series, got {type(collection).__name__}")


def _global_target(client, loss, y, sample_weight, num_class):
    """Prepared loss, task, start and outputs per row from all partitions of the Dask labels
    (and weights): one pass finds the task (the largest class id), a second sums the label
    statistics."""
    import dask

    y_blocks = _blocks(y)
    w_blocks = _blocks(sample_weight) or [None] * len(y_blocks)
    if len(w_blocks) != len(y_blocks):
        raise ValueError(f"sample_weight has {len(w_blocks)} partitions but y has "
                         f"{len(y_blocks)}: chunk them alike")
    summaries = client.gather(client.compute([dask.delayed(_block_summary)(b)
                                              for b in y_blocks]))
    for s in summaries:
        if "error" in s:
            raise ValueError(s["error"])
    largest = max(s["max"] for s in summaries)
    num_class = int(num_class or 0)
    if num_class <= 1 and largest > 1:
        # class ids > 1: multiclass, or the message of a loss without a multiclass form
        num_class = int(largest) + 1 if MULTICLASS in loss.tasks else 0
        core.resolve_target(ENGINE, loss, [largest], 1, num_class)
    stats = client.gather(client.compute([
        dask.delayed(_block_stats)(loss, yb, wb, num_class)
        for yb, wb in zip(y_blocks, w_blocks, strict=True)]))
    stats = [s for s in stats if s is not None]
    if not stats:
        raise ValueError("y has no rows")
    if num_class > 1:
        present = min(int(np.count_nonzero(s.counts)) for s in stats)
        if present < num_class:
            raise ValueError(f"a partition of y holds only {present} of the {num_class} "
                             "classes: LightGBM's DaskLGBMClassifier encodes labels on each "
                             "worker, so every partition needs every class; shuffle or "
                             "repartition y")
    total = LabelStats.total(stats)
    loss, start = core.training_start(loss, total)
    return loss, total.task, start, total.n_outputs


def _constant_like(y, task, start):
    """A Dask array of the start, chunked like ``y`` ((n,) binary, (n, K) multiclass)."""
    import dask.array as da

    if not isinstance(y, da.Array):
        y = y.to_dask_array(lengths=True)
    if task == BINARY:
        return y.map_blocks(lambda b: np.full(b.shape[0], start), dtype=np.float64)
    starts = np.asarray(start, dtype=np.float64)
    return y.map_blocks(lambda b: np.tile(starts, (b.shape[0], 1)), dtype=np.float64,
                        new_axis=1, chunks=(y.chunks[0], (starts.size,)))


def dask_train(client, params, X, y, num_boost_round=100, *, loss, sample_weight=None,
               hessian_scale=1.0, n_threads=None, **fit_kwargs):
    """Fit ``lightgbm.DaskLGBMClassifier`` with a gbloss loss; the model remembers its loss.

    ``X``, ``y`` (class ids 0..K-1) and ``sample_weight`` are Dask collections chunked alike.
    The statistics the loss needs from the whole training set, the start and the
    logit-adjustment priors, come from all partitions (Dask tasks that reduce each partition to
    class counts and weighted class masses) before training; the start goes to every worker as
    ``init_score`` and, after training, into the first trees (as in :func:`train`). ``params``:
    LightGBM parameters (``num_class`` is set from the labels; no ``objective``/``metric``).
    Other keyword arguments go to ``DaskLGBMClassifier.fit``. Returns the fitted estimator;
    predict with :func:`predict_proba` (``model`` or ``model.booster_``, NumPy data).
    Every partition must hold every class (LightGBM label-encodes on each worker), and gbloss
    must be importable on the workers.
    """
    params = dict(params or {})
    _check_params(params)
    for key in ("init_score", "eval_init_score", "eval_metric"):
        if key in fit_kwargs:
            raise TypeError(f"{key}= is set by gbloss (or not supported on Dask); drop it")
    num_class = core.lightgbm_param(params, "num_class")
    loss, task, start, n_out = _global_target(client, loss, y, sample_weight, num_class)
    for alias in LIGHTGBM_ALIASES["num_class"]:
        params.pop(alias, None)  # DaskLGBMClassifier sets it from the classes
    in_trees = _start_fits_in_trees(params)
    obj = Objective(loss, hessian_scale=hessian_scale, n_threads=n_threads)
    obj.expected_start = start
    params.update(metric="None", **{RECORD_PARAM: _encode_record(
        core.make_record(loss, task, start, n_out, in_trees))})
    model = lightgbm.DaskLGBMClassifier(client=client, objective=obj,
                                        n_estimators=int(num_boost_round), **params)
    model.fit(X, y, sample_weight=sample_weight, init_score=_constant_like(y, task, start),
              **fit_kwargs)
    if in_trees and not _move_start_into_trees(model.booster_, task, start):
        raise RuntimeError("LightGBM returned a model without trees of the first iteration; "
                           "cannot store the start")
    return model
