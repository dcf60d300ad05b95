"""The engine-independent core of gbloss's XGBoost and LightGBM adapters.

An engine module (:mod:`gbloss.xgboost`, :mod:`gbloss.lightgbm`) says only what differs between
the engines: how the engine hands over labels, weights and raw scores, where a model keeps its
record, and the words of its messages (:class:`Engine`). Everything else lives here, once:

* **target resolution** (:func:`resolve_target`): the task (binary, multiclass, multi-label)
  and the labels in the loss's shape, from the engine's labels and ``num_class``, with errors
  that name the setting to change;
* **label statistics, the prepared loss and the start** (:func:`label_stats`,
  :func:`training_start`): ``LabelStats`` of the training labels (summed over Dask partitions
  with ``LabelStats.total``), ``loss.prepare(stats)`` and ``loss.start(stats)``, whose rule
  for degenerate weights applies to every engine and task;
* **the objective body** (:class:`EngineObjective`): per-training-run state, the first round's
  validation and start check, gradient buffers refilled every round;
* **the metric body** (:class:`EngineMetric`);
* **the model record** (:func:`make_record`, :func:`parse_record`): one format and one
  validating parser, whatever the engine stores it in.

State and threads
-----------------
An objective keeps, per thread and per engine dataset, the labels and weights it validated and
the gradient buffers it refills. Every round it reads the labels and weights the engine holds
*now* and compares them with the validated ones (by identity, else element by element: 0.35 ms
a round for 500k rows and weights from XGBoost's copying getters, about 0.1% of a boosting
round), so ``set_label``/``set_weight`` between trainings, or between rounds, are never missed.
Two trainings in two threads with one objective object get buffers of their own (the engines
call the objective from the thread that trains), so they give the serial models. A run binds
the kernel to its validated labels, weights and buffers once (:meth:`gbloss.Loss.bind`);
:meth:`EngineObjective.bind` hands it to a training loop that runs no user code between
rounds (``gbloss.xgboost.train`` without callbacks), which then skips the rereading. Pickles and
deep copies (Dask, ``lightgbm.train``'s copy of its params) start with no state.
"""

import dataclasses
import json
import math
import numbers
import threading
import warnings
import weakref
from typing import NamedTuple

import numpy as np

from . import _metrics
from .losses import BINARY, MULTICLASS, MULTILABEL, REGISTRY, TASKS, LabelStats, loss_from_dict

# -- engines ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Engine:
    """The words an engine's messages use; the only engine knowledge of this module."""

    #: The gbloss module: ``"gbloss.xgboost"``.
    module: str
    #: The engine's name: ``"XGBoost"``.
    name: str
    #: Its dataset class and how to build one with labels.
    dataset: str
    make_dataset: str
    #: What it calls a raw score: ``"margin"`` or ``"score"``.
    score: str
    #: How to train from the loss's start (the first-round warning's advice).
    start_fix: str
    #: How a model without a gbloss record was trained (the prediction error's words).
    untracked: str
    #: None when the engine trains multi-label targets, else why not and what to use instead.
    multilabel_refusal: str | None = None


# -- targets ---------------------------------------------------------------------------------


class Target(NamedTuple):
    """A resolved target: the task, the labels in the loss's shape (float64, a copy of the
    engine's) and the number of raw scores per row (1 for binary)."""

    task: str
    y: np.ndarray
    n_outputs: int

    @property
    def shape(self):
        """Shape of the raw scores, gradients and Hessians: (n,) or (n, K)."""
        n = self.y.shape[0]
        return (n,) if self.task == BINARY else (n, self.n_outputs)


def alternatives(task):
    """The registered losses that serve ``task``, as words for an error message."""
    names = [name for name, cls in REGISTRY.items() if task in cls.tasks]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def resolve_target(engine, loss, labels, n_rows, num_class):
    """The :class:`Target` of ``labels`` for ``loss``; raises naming the setting to change.

    ``labels``: the engine's labels, any shape with ``n_rows`` rows (``n_rows`` None: one per
    label), or None. ``num_class``: the number of raw scores the engine gives a 1-D label
    (0, 1 or None: one). Labels with several columns are a multi-label target.
    """
    name = type(loss).__name__
    if n_rows == 0:
        raise ValueError(f"the {engine.dataset} has no rows")
    if labels is None or np.size(labels) == 0:
        raise ValueError(f"the {engine.dataset} has no labels: create it with "
                         f"{engine.make_dataset}")
    y = np.array(labels, dtype=np.float64)  # a copy: later edits of the engine's array stay out
    n_rows = y.shape[0] if n_rows is None else int(n_rows)
    if y.size % n_rows:
        raise ValueError(f"the {engine.dataset} has {y.size} labels for {n_rows} rows")
    n_cols = y.size // n_rows
    if np.isnan(y).any():
        raise ValueError("the labels contain NaN: every row needs a label")
    num_class = int(num_class or 0)
    if n_cols > 1:
        if engine.multilabel_refusal is not None:
            raise ValueError(f"labels of shape ({n_rows}, {n_cols}) are a multi-label target; "
                             f"{engine.multilabel_refusal}")
        if num_class:
            raise ValueError(f"labels of shape ({n_rows}, {n_cols}) are a multi-label target, "
                             f"which takes no num_class: remove num_class={num_class} from "
                             "params (or pass 1-D class labels for a multiclass target)")
        target = Target(MULTILABEL, y.reshape(n_rows, n_cols), n_cols)
    elif num_class > 1:
        target = Target(MULTICLASS, y.reshape(n_rows), num_class)
    else:
        target = Target(BINARY, y.reshape(n_rows), 1)
        _check_binary_labels(name, loss, target.y)
    if target.task not in loss.tasks:
        if target.task == MULTICLASS:
            fix = (f"{engine.name} gives it {num_class} {engine.score}s per row because params "
                   f"has num_class={num_class}: remove num_class for a binary target, or use "
                   f"{alternatives(MULTICLASS)}")
        else:
            fix = f"use {alternatives(target.task)}"
        raise ValueError(f"{name} does not support {target.task} targets ({fix})")
    if target.task == MULTICLASS:
        y = target.y
        if np.any((y < 0) | (y >= num_class) | (y != np.floor(y))):
            raise ValueError(f"multiclass labels must be integer class labels in "
                             f"0..{num_class - 1}; got values in [{y.min()}, {y.max()}]: encode "
                             f"the classes as integers in 0..{num_class - 1} "
                             f"(num_class={num_class}), or set params['num_class'] to the "
                             "number of classes")
    elif target.task == MULTILABEL and np.any((target.y < 0) | (target.y > 1)):
        raise ValueError(f"multi-label labels must lie in [0, 1] for {name} (0/1, or soft labels "
                         f"in [0, 1]); got values in [{target.y.min()}, {target.y.max()}]")
    return target


def _check_binary_labels(name, loss, y):
    if not np.any((y < 0) | (y > 1)):
        return
    if y.max() > 1 and y.min() >= 0 and np.all(y == np.floor(y)):
        k = int(y.max()) + 1
        hint = (f"for a multiclass target set params['num_class'] = {k}"
                if MULTICLASS in loss.tasks else
                f"{name} has no multiclass form: use {alternatives(MULTICLASS)} with "
                f"params['num_class'] = {k}")
        raise ValueError(f"binary labels must lie in [0, 1] but they hold class ids up to "
                         f"{k - 1}: {hint}")
    raise ValueError(f"binary labels must lie in [0, 1] for {name} (0/1, or soft labels in "
                     f"[0, 1]); got values in [{y.min()}, {y.max()}]")


# -- label statistics, the prepared loss and the start ---------------------------------------


def label_stats(target, weight):
    """``LabelStats`` of a resolved target with the engine's weights (None: unweighted)."""
    return LabelStats.from_labels(target.task, target.y, weight, n_outputs=target.n_outputs)


def training_start(loss, stats):
    """The loss prepared on ``stats`` (logit-adjustment priors) and its start: a float for
    binary targets, an array (K,) otherwise. ``loss.start`` applies the one rule for
    degenerate weights before anything else: the total weight must be positive, and a binary or
    multiclass target needs weight in two classes at least."""
    start = loss.start(stats)
    return loss.prepare(stats), start


def check_prepared(loss, engine):
    """Refuse a loss that still needs statistics of the training labels
    (``LogitAdjustedLoss(priors=None)``): each caller would estimate them from whatever
    labels it sees."""
    if not loss.is_prepared:
        raise ValueError(f"{loss!r} is not prepared (no class priors yet): fix the statistics "
                         "it needs from the training labels first, loss = "
                         f"loss.prepare(y_train) ({engine.module}.train and dask_train do this "
                         "for you)")


# -- parameters ------------------------------------------------------------------------------


def check_hessian_scale(value):
    """``hessian_scale`` as a float: a real number, finite and > 0 (no bool, no string)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or value <= 0):
        raise ValueError(f"hessian_scale must be a finite number > 0, got {value!r}")
    return float(value)


def check_n_threads(value):
    """``n_threads``: None or an integer >= 1 (no bool, no float)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"n_threads must be None or an integer >= 1, got {value!r}")
    return int(value)


# -- the objective ---------------------------------------------------------------------------


def _same(current, validated):
    """Whether the engine's labels (or weights) are still the validated ones."""
    if current is validated:
        return True
    if current is None or validated is None:
        return False
    current = np.asarray(current)
    return current.shape == validated.shape and np.array_equal(current, validated)


class _Run:
    """State of one training run on one dataset: the shape of the engine's raw scores, its
    labels and weights as last seen, the validated target and weights, the buffers and
    ``gradients(raw) -> (grad, hess)``, the kernel bound to them (:meth:`gbloss.Loss.bind`)
    followed by the Hessian scale."""

    __slots__ = ("raw_shape", "labels", "weight", "target", "validated_weight", "buffers",
                 "gradients")

    def __init__(self, raw_shape, labels, weight, target, validated_weight, buffers,
                 gradients):
        self.raw_shape = raw_shape
        self.labels = labels
        self.weight = weight
        self.target = target
        self.validated_weight = validated_weight
        self.buffers = buffers
        self.gradients = gradients

    def serves(self, raw_shape, labels, weight):
        return (raw_shape == self.raw_shape and _same(labels, self.labels)
                and _same(weight, self.weight))


class TransientState:
    """Attributes named in :attr:`_transient` (name: factory) stay out of pickles and deep
    copies, which start with new ones. Subclasses call :meth:`_new_transient` in ``__init__``."""

    _transient = {}

    def _new_transient(self):
        for name, make in self._transient.items():
            setattr(self, name, make())

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._new_transient()


class EngineObjective(TransientState):
    """What the engines' objectives share: a prepared loss, a Hessian scale, the kernel's
    threads, the start training should begin from, and per-run state (module notes).

    Subclasses set :attr:`engine` and :attr:`buffer_order`, and call :meth:`_gradients` with
    what their engine handed over.
    """

    engine = None
    #: Memory order of 2-D gradient buffers.
    buffer_order = "C"
    _transient = {"_local": threading.local}

    def __init__(self, loss, hessian_scale, n_threads):
        check_prepared(loss, self.engine)
        self.loss = loss
        self.hessian_scale = check_hessian_scale(hessian_scale)
        self.n_threads = check_n_threads(n_threads)
        #: The start training should begin from; None: the loss's start on the labels seen
        #: (dask_train sets the global start, since a worker sees only its shard).
        self.expected_start = None
        self._new_transient()

    def __repr__(self):
        return f"Objective({self.loss!r}, hessian_scale={self.hessian_scale!r})"

    def _runs(self):
        """This thread's runs, by engine dataset (weakly: a run ends with its dataset)."""
        runs = getattr(self._local, "runs", None)
        if runs is None:
            runs = self._local.runs = weakref.WeakKeyDictionary()
        return runs

    def _threads(self):
        return self.n_threads

    def _gradients(self, key, raw, labels, weight, num_class):
        """Gradient and Hessian for raw scores ``raw`` (n,) or (n, K) of the dataset ``key``
        with the engine's current ``labels`` and ``weight`` (None: unweighted), in float32
        buffers of this run, refilled every round."""
        runs = self._runs()
        run = runs.get(key)
        if run is not None and run.serves(raw.shape, labels, weight):
            return run.gradients(raw)
        run = self._new_run(raw, labels, weight, num_class)
        buffers = run.gradients(raw)  # the kernel refuses non-finite raw scores
        self._check_start(raw.reshape(run.target.shape), run.target, run.validated_weight)
        runs[key] = run
        return buffers

    def bind(self, key):
        """``gradients(raw) -> (grad, hess)`` for the run on dataset ``key`` that the last
        call set up (labels and weights validated, first-round checks done), into that run's
        buffers, without reading the engine's labels and weights again: for a training loop
        that runs no code between its rounds that could change them."""
        return self._runs()[key].gradients

    def _new_run(self, raw, labels, weight, num_class):
        """Resolve and validate the target (labels against the loss's domain, weights finite
        and >= 0) and bind the kernel to it and to new buffers."""
        if raw.ndim not in (1, 2):
            raise ValueError(f"{self.engine.name} passed {self.engine.score}s of shape "
                             f"{raw.shape}")
        target = resolve_target(self.engine, self.loss, labels, raw.shape[0], num_class)
        n_cols = 1 if raw.ndim == 1 else raw.shape[1]
        if target.n_outputs != n_cols:
            raise ValueError(f"{target.task} labels with {target.n_outputs} outputs but "
                             f"{self.engine.name} passed {n_cols} {self.engine.score}s per row")
        validated_weight = None if weight is None else np.array(weight, np.float64).ravel()
        buffers = tuple(np.empty(target.shape, np.float32, order=self.buffer_order)
                        for _ in range(2))
        fill = self.loss.bind(target.y, validated_weight, out=buffers, n_threads=self._threads())
        shape, scale = target.shape, self.hessian_scale
        grad, hess = buffers

        def gradients(raw):
            fill(raw.reshape(shape))
            if scale != 1.0:
                np.multiply(hess, scale, out=hess)
            return grad, hess

        return _Run(raw.shape, labels, weight, target, validated_weight, buffers, gradients)

    def _check_start(self, raw, target, weight):
        first = raw[0]
        if not np.all(raw == first):
            return  # continued training or per-row start scores: not the constant start
        expected = self.expected_start
        if expected is None:
            expected = training_start(self.loss, label_stats(target, weight))[1]
        gap = np.asarray(first, np.float64) - expected
        if target.task == MULTICLASS:
            gap = gap - gap.mean()  # softmax scores are shift invariant
        if np.max(np.abs(gap)) > 1e-4:
            warnings.warn(f"training starts from the {self.engine.score} "
                          f"{np.round(first, 4).tolist()}, not from the start of {self.loss!r} "
                          f"({np.round(expected, 4).tolist()}): {self.engine.start_fix}",
                          UserWarning, stacklevel=4)


# -- metrics ---------------------------------------------------------------------------------


class EngineMetric(TransientState):
    """What the engines' metrics share: a prepared loss, validated metric names, and the
    values on labels in the loss's shape. Metrics keep no labels: each call reads them."""

    engine = None

    def __init__(self, loss, names, known):
        check_prepared(loss, self.engine)
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise ValueError(f"unknown metric name(s) {unknown or names!r}; choose from "
                             f"{list(known)}")
        self.loss = loss
        self.names = names
        self._new_transient()

    def __repr__(self):
        return f"Metric({self.loss!r}, names={self.names!r})"

    def _values(self, y, raw, weight):
        """``[(name, value)]`` for every name (:func:`gbloss._metrics.metric_value`)."""
        return [(n, _metrics.metric_value(n, self.loss, y, raw, weight)) for n in self.names]


# -- the model record ------------------------------------------------------------------------

#: Version of the record format; a record of another version is refused.
RECORD_VERSION = 1
_RECORD_KEYS = ("version", "loss", "task", "num_class", "start", "start_in_trees")


def make_record(loss, task, start, n_outputs, start_in_trees):
    """The record a model keeps (JSON-serialisable): format version, the loss
    (:meth:`~gbloss.Loss.to_dict`), the task, the number of raw scores per row (``num_class``:
    1 for binary), the start (a list) and whether the model's own raw output includes it
    (``start_in_trees``)."""
    return {"version": RECORD_VERSION, "loss": loss.to_dict(), "task": task,
            "num_class": int(n_outputs), "start": np.atleast_1d(start).astype(float).tolist(),
            "start_in_trees": bool(start_in_trees)}


class ModelRecord(NamedTuple):
    """A validated record: the loss object, task, outputs per row, start (float64 array of
    ``num_class`` entries) and whether the model's raw output includes the start."""

    loss: object
    task: str
    num_class: int
    start: np.ndarray
    start_in_trees: bool

    def as_dict(self):
        """The record as stored (:func:`make_record`)."""
        return make_record(self.loss, self.task, self.start, self.num_class,
                           self.start_in_trees)


def decode_json(text, where):
    """``json.loads`` with an error that names the stored record."""
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError(f"the gbloss record in {where} is corrupt: not JSON ({exc})") from None


def parse_record(fields, where, model_outputs):
    """Validate a stored record against its model; returns a :class:`ModelRecord`.

    ``fields``: the decoded record (a dict as :func:`make_record` writes it); ``where``: where
    the model keeps it, for the messages; ``model_outputs``: the model's raw scores per row.
    Every defect (version, missing keys, a loss that does not load, a start that does not fit
    the task or the model) raises a ValueError that names the record.
    """
    def refuse(problem):
        return ValueError(f"the gbloss record in {where} {problem}; it cannot be used with "
                          "this model")

    if not isinstance(fields, dict):
        raise refuse(f"is not a JSON object but {type(fields).__name__}")
    version = fields.get("version")
    if version != RECORD_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and not isinstance(version, bool) and \
            version > RECORD_VERSION
        raise refuse(f"has version {version!r}, but this gbloss reads version {RECORD_VERSION}"
                     + (": it was written by a newer gbloss, upgrade gbloss" if newer else ""))
    missing = [key for key in _RECORD_KEYS if key not in fields]
    if missing:
        raise refuse(f"lacks {missing}")
    try:
        loss = loss_from_dict(fields["loss"])
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise refuse(f"holds no valid loss ({exc})") from None
    task, num_class = fields["task"], fields["num_class"]
    if task not in TASKS or task not in loss.tasks:
        raise refuse(f"has task {task!r}, not one of {type(loss).__name__}'s {loss.tasks}")
    if not loss.is_prepared:
        raise refuse(f"holds an unprepared loss {loss!r}")
    if isinstance(num_class, bool) or not isinstance(num_class, int) or (
            num_class != 1 if task == BINARY else num_class < 2):
        raise refuse(f"has num_class={num_class!r} for a {task} task")
    try:
        start = np.asarray(fields["start"], dtype=np.float64)
    except (ValueError, TypeError):
        start = None
    if start is None or start.shape != (num_class,) or not np.all(np.isfinite(start)):
        raise refuse(f"has start {fields['start']!r}, not {num_class} finite number(s) for "
                     f"its {task} task")
    if not isinstance(fields["start_in_trees"], bool):
        raise refuse(f"has start_in_trees={fields['start_in_trees']!r}, not a bool")
    if model_outputs != num_class:
        raise refuse(f"describes a {task} model with {num_class} output(s) per row, but the "
                     f"model has {model_outputs}")
    return ModelRecord(loss, task, num_class, start, fields["start_in_trees"])


def same_loss(a, b):
    """Whether two losses are the same loss with the same parameters, arrays (priors from a
    JSON record) compared to 1e-12."""
    da, db = a.to_dict(), b.to_dict()
    if da["name"] != db["name"] or da["params"].keys() != db["params"].keys():
        return False
    for key, va in da["params"].items():
        vb = db["params"][key]
        if va is None or vb is None or isinstance(va, str) or isinstance(vb, str):
            if va != vb:
                return False
        elif np.shape(va) != np.shape(vb) or not np.allclose(va, vb, rtol=1e-12, atol=0):
            return False
    return True


def prediction_loss(engine, record, loss, task_of_model):
    """The loss and task to turn a model's raw scores into probabilities: the record's (a
    ``loss=`` must then be the same), or ``loss=`` with ``task_of_model()`` for a model
    without a record."""
    if record is not None:
        if loss is not None and not same_loss(loss, record.loss):
            raise ValueError(f"loss={loss!r} differs from the loss the booster was trained with, "
                             f"{record.loss!r}: drop loss=")
        return record.loss, record.task
    if loss is None:
        raise ValueError(f"the booster carries no gbloss loss ({engine.untracked}): pass loss=")
    check_prepared(loss, engine)
    return loss, task_of_model()


def probabilities(loss, raw, task, calibrate):
    """P(y | x) from raw scores: calibrated when ``calibrate`` is true (the identity for proper
    losses), else the loss's plain link (``loss.predict_proba``)."""
    return loss.predict_proba(raw, task=None if task == BINARY else task, calibrate=calibrate)


# -- LightGBM parameter names ----------------------------------------------------------------

#: LightGBM's parameters that gbloss sets, reads or reserves, with all their aliases (as
#: LightGBM 4 accepts them). Here rather than in :mod:`gbloss.lightgbm` so that the estimators
#: read it without importing LightGBM.
LIGHTGBM_ALIASES = {
    "objective": ("objective", "objective_type", "app", "application", "loss"),
    "metric": ("metric", "metrics", "metric_types"),
    "num_class": ("num_class", "num_classes"),
    "boosting": ("boosting", "boosting_type", "boost"),
    "linear_tree": ("linear_tree", "linear_trees"),
    "valid": ("valid", "test", "valid_data", "valid_data_file", "test_data", "test_data_file",
              "valid_filenames"),
    "learning_rate": ("learning_rate", "eta", "shrinkage_rate"),
    "num_leaves": ("num_leaves", "num_leaf", "max_leaves", "max_leaf", "max_leaf_nodes"),
    "max_depth": ("max_depth",),
    "min_data_in_leaf": ("min_data_in_leaf", "min_data_per_leaf", "min_data",
                         "min_child_samples", "min_samples_leaf"),
    "min_sum_hessian_in_leaf": ("min_sum_hessian_in_leaf", "min_sum_hessian_per_leaf",
                                "min_sum_hessian", "min_hessian", "min_child_weight"),
    "max_delta_step": ("max_delta_step", "max_tree_output", "max_leaf_output"),
    "min_gain_to_split": ("min_gain_to_split", "min_split_gain"),
    "bagging_fraction": ("bagging_fraction", "sub_row", "subsample", "bagging"),
    "bagging_freq": ("bagging_freq", "subsample_freq"),
    "feature_fraction": ("feature_fraction", "sub_feature", "colsample_bytree"),
    "lambda_l1": ("lambda_l1", "reg_alpha", "l1_regularization"),
    "lambda_l2": ("lambda_l2", "reg_lambda", "lambda", "l2_regularization"),
    "max_bin": ("max_bin", "max_bins"),
    "device_type": ("device_type", "device"),
    "num_threads": ("num_threads", "num_thread", "nthread", "nthreads", "n_jobs"),
    "seed": ("seed", "random_seed", "random_state"),
    "num_iterations": ("num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees",
                       "num_round", "num_rounds", "nrounds", "num_boost_round", "n_estimators",
                       "max_iter"),
}


def lightgbm_names(*parameters):
    """Every name (all aliases) of the given LightGBM parameters, as a set."""
    return {alias for p in parameters for alias in LIGHTGBM_ALIASES[p]}


def lightgbm_param(params, parameter, default=None):
    """The value of a LightGBM parameter under any of its aliases."""
    for alias in LIGHTGBM_ALIASES[parameter]:
        if alias in params:
            return params[alias]
    return default
