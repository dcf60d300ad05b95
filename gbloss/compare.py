"""``gbloss compare``: cross-validate the gbloss losses side by side on one data set.

The question it answers: does focal loss (or ASL, or logit adjustment) help on *this* data?
Every loss is trained with the same engine settings on the same folds, starting from its
loss-optimal constant (the estimators of :mod:`gbloss.sklearn` do that), and scored on the
held-out fold with scikit-learn's metrics. The result is one table, mean and spread over folds::

    python -m gbloss compare                       # embedded 90:10 two-feature data set
    python -m gbloss compare --csv data.csv --target label --backend lightgbm \\
        --losses ce,focal,asl,la --folds 5 --out results/

Protocol
--------
* **Folds**: ``StratifiedKFold(folds, shuffle=True, random_state=seed)`` (multi-label targets:
  ``KFold``), one set of splits shared by every loss.
* **Rows**: one per loss of ``--losses``, keys of the loss registry (:func:`gbloss.losses.by_key`:
  ``ce`` cross-entropy, ``focal`` :class:`FocalLoss`, ``asl`` :class:`AsymmetricLoss`, ``la``
  :class:`LogitAdjustedLoss`, and any loss registered with :func:`gbloss.losses.register`,
  whose module ``--import`` loads); by default gbloss's own losses that fit the target,
  cross-entropy first. Then the usual baseline, plain cross-entropy with the positive class
  weighted ``n_neg / n_pos`` of the training fold (``ce+spw``: XGBoost's ``scale_pos_weight``,
  applied as sample weights); multiclass: ``class_weight="balanced"`` (``ce+balanced``, weights
  ``n / (K n_c)``); multi-label: the positive weight ``n_neg / n_pos`` of each label
  (``CrossEntropyLoss(alpha=n_neg / n)`` natively, ``class_weight="balanced"`` per label with
  one-vs-rest). The baseline's probabilities are those the weighting gives
  (``calibrate=False``), as with ``scale_pos_weight``.
* **Grid**: each loss class declares it (``compare_grid(task)``): focal ``gamma`` in {1, 2} x
  ``alpha`` in {None, 0.25} (multiclass: ``alpha`` None), ASL ``gamma_neg`` in {2, 4} x
  ``clip`` in {0, 0.05} (``gamma_pos`` 0), logit adjustment ``tau`` in {0.5, 1, 2}. Inside each
  training fold a stratified 25 % part is held out; every candidate is fitted on the other 75 %
  and scored on it by ``--select`` (default: the loss's ``compare_select``, PR-AUC for focal
  and ASL; balanced accuracy for logit adjustment, whose probabilities, and so PR-AUC, ROC-AUC
  and log-loss, do not depend on ``tau`` with boosted trees: from the loss-optimal start it
  grows cross-entropy's trees, only the decision offset ``tau log pi`` differs); the best
  (first on ties) is refitted on the whole training fold and only then scored on the test
  fold, which never takes part in the choice. ``--param NAME=VALUE`` fixes ``NAME`` for the
  losses whose grid or ``--no-grid`` values hold it (else for those that take it),
  ``--param LOSS.NAME=VALUE`` for one loss (any parameter of its class); ``--gamma 2 --alpha
  0.25 --gamma-neg 4 --gamma-pos 0 --clip 0.05 --tau 1`` are short for ``--param gamma=2``
  and so on. ``--no-grid`` fixes all of them (given values, else ``compare_fixed(task)``).
* **Engine settings**, the same for every loss (the baseline included): ``n_estimators``
  (100), ``learning_rate`` (0.1), the engine defaults that the losses ask for
  (``loss.engine_defaults``; gbloss's own ones always, so that runs with different
  ``--losses`` compare: ``min_child_weight=1e-3`` and ``max_delta_step=1``, LightGBM also
  ``reg_lambda=1e-3``, for focal-type losses, whose Hessians are tiny for well-classified
  rows), ``n_jobs``, ``random_state``; ``--engine-params`` JSON overrides or adds any
  estimator or engine parameter.
* **Metrics** (scikit-learn): ``average_precision_score`` (PR-AUC), ``roc_auc_score``,
  ``balanced_accuracy_score``, ``f1_score`` and ``log_loss``. Multiclass: one-vs-rest macro
  averages for PR-AUC and ROC-AUC, macro F1. Multi-label: macro averages over labels, the mean
  per-label balanced accuracy and binary log-loss. Labels come from ``predict`` (the loss's
  decision rule at its default threshold, raw score 0), probabilities from ``predict_proba``,
  calibrated by default (:mod:`gbloss.calibration`). Ranking metrics leave out classes without
  both outcomes in a test fold. ``fit s`` times the final fit of each fold (not the grid).

Input (``--csv``): numeric columns as they are (empty cells are missing values, which the
engines route natively); every other column is categorical. Categorical columns are encoded as
integer codes (missing stays missing), which both engines split natively: LightGBM through
``categorical_feature``, XGBoost through ``feature_types`` ``"c"``. One ``--target`` column
gives a binary or multiclass target of any labels (binary: the positive class is the minority
class unless ``--pos-label`` says otherwise); several ``--target`` columns give a multi-label
target, each column holding two values (0/1, False/True, or two labels of which the sorted
second is 1). Rows with a missing target are dropped.
"""

import argparse
import contextlib
import csv
import importlib
import importlib.util
import inspect
import itertools
import json
import math
import numbers
import os
import re
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from numba.core import event as numba_event
from sklearn import metrics as skm
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

from . import decisions
from .__main__ import check_out
from .losses import BINARY, MULTICLASS, MULTILABEL, REGISTRY, CrossEntropyLoss, by_key

__all__ = ["CompareError", "Dataset", "Result", "compare", "default_dataset", "default_losses",
           "import_losses", "load_csv", "main"]


class CompareError(ValueError):
    """A problem with the input or the options; the command line reports it in one line."""


#: Metric key -> (column header, higher is better).
METRICS = {
    "pr_auc": ("PR-AUC", True),
    "roc_auc": ("ROC-AUC", True),
    "balanced_accuracy": ("bal. acc.", True),
    "f1": ("F1", True),
    "log_loss": ("log-loss", False),
    "cost": ("cost/row", False),
}
BACKENDS = ("xgboost", "lightgbm")
#: The embedded default data set: the experiment behind gbloss.
DEFAULT_DATA = {"n_samples": 2000, "n_features": 2, "n_informative": 2, "n_redundant": 0,
                "n_clusters_per_class": 1, "weights": [0.9, 0.1], "class_sep": 0.5,
                "flip_y": 0.02, "random_state": 7}
_HOLDOUT = 0.25
_LGBM_CATEGORICAL = {"categorical_feature", "cat_feature", "categorical_column", "cat_column",
                     "categorical_features"}
_UNSET = object()  # --alpha not given (``none`` is a value)
_REFERENCE = "ce"  # the first row: plain cross-entropy


# -- data ------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Features (float64, NaN = missing), encoded target and their description.

    ``y``: (n,) ints 0..K-1 (binary: 1 is the positive class) or (n, K) 0/1 for multi-label;
    ``classes``: the original label of each code (multi-label: the target column names).
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    classes: list
    feature_names: list
    categorical: list = field(default_factory=list)
    name: str = "data"
    notes: list = field(default_factory=list)


def default_dataset():
    """The embedded data set: ``make_classification(**DEFAULT_DATA)``, 2 features, 90:10."""
    from sklearn.datasets import make_classification

    X, y = make_classification(**DEFAULT_DATA)
    return Dataset(X, y.astype(np.intp), BINARY, [0, 1], ["x0", "x1"],
                   name="embedded make_classification (90:10, class_sep "
                        f"{DEFAULT_DATA['class_sep']}, flip_y {DEFAULT_DATA['flip_y']}, seed "
                        f"{DEFAULT_DATA['random_state']})")


def _encode_target(values, name, pos_label=None):
    """Codes 0..K-1 of a label column; binary: the positive class (minority) is 1."""
    values = np.asarray(values)
    try:
        classes, codes = np.unique(values, return_inverse=True)
    except TypeError:  # mixed types in an object column
        classes, codes = np.unique(values.astype(str), return_inverse=True)
    if classes.size < 2:
        shown = repr(classes[0].item() if hasattr(classes[0], "item") else classes[0]) \
            if classes.size else "none"
        raise CompareError(f"target {name!r} has only one class ({shown}); a classifier needs "
                           "at least two")
    if values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0) and classes.size > 20:
        raise CompareError(f"target {name!r} holds {classes.size} distinct non-integer values: "
                           "it looks continuous, and gbloss compare is for classification")
    classes = [c.item() if hasattr(c, "item") else c for c in classes]
    if len(classes) == 2:
        counts = np.bincount(codes, minlength=2)
        if pos_label is not None:
            names = [str(c) for c in classes]
            if str(pos_label) not in names:
                raise CompareError(f"--pos-label {pos_label!r} is not a class of target "
                                   f"{name!r} (classes: {', '.join(names)})")
            pos = names.index(str(pos_label))
        else:
            pos = int(np.argmin(counts)) if counts[0] != counts[1] else 1
        if pos == 0:
            classes, codes = classes[::-1], 1 - codes
    elif pos_label is not None:
        raise CompareError("--pos-label applies to binary targets only")
    return np.asarray(codes, dtype=np.intp), classes


def _binary_column(values, name):
    """A 0/1 column of a multi-label target."""
    values = np.asarray(values)
    kinds = np.unique(values.astype(str))
    if kinds.size != 2:
        raise CompareError(f"multi-label target column {name!r} must hold two values (0/1), "
                           f"it holds {kinds.size}: {', '.join(kinds[:5])}")
    if values.dtype.kind in "biuf" and set(np.unique(values).tolist()) <= {0, 1}:
        return values.astype(np.intp)
    return (values.astype(str) == kinds[1]).astype(np.intp)


#: Column separators that ``--csv`` detects; the first is the fallback.
SEPARATORS = (",", ";", "\t", "|")
_SNIFF_LINES = 50
_DECIMAL_COMMA = r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?|[-+]?\d+"


def detect_separator(path):
    """The column separator of a CSV file, one of :data:`SEPARATORS`, from its first lines
    (:class:`csv.Sniffer`: the character found the same number of times on every line);
    ``","`` when none is."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        lines = [line for _, line in zip(range(_SNIFF_LINES), f, strict=False)]
    try:
        return csv.Sniffer().sniff("".join(lines), delimiters="".join(SEPARATORS)).delimiter
    except csv.Error:
        return SEPARATORS[0]


def _shown(name):
    return {"\t": "tab"}.get(name, repr(name))


def _decimal_commas(df):
    """Convert text columns that hold numbers with a decimal comma (``1,5``) to floats, in
    place; returns their names."""
    import pandas as pd

    converted = []
    for col in df.columns:
        if not (pd.api.types.is_object_dtype(df[col]) or pd.api.types.is_string_dtype(df[col])):
            continue
        text = df[col].dropna().astype(str).str.strip()
        if len(text) and text.str.fullmatch(_DECIMAL_COMMA).all() and text.str.contains(",").any():
            df[col] = df[col].str.replace(",", ".", regex=False).astype("float64")
            converted.append(col)
    return converted


def load_csv(path, targets, features=None, pos_label=None, sep=None):
    """Read a CSV file into a :class:`Dataset` (see the module docstring for the encoding).

    ``sep``: the column separator; None detects it (:func:`detect_separator`). With a
    separator other than ``","``, columns of numbers with a decimal comma are read as numbers.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise CompareError("reading --csv needs pandas: pip install 'gbloss[cli]'") from exc
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    notes = []
    try:
        if sep is None:
            sep = detect_separator(path)
            if sep != SEPARATORS[0]:
                notes.append(f"{os.path.basename(path)}: columns separated by {_shown(sep)} "
                             "(detected; --sep sets it)")
        df = pd.read_csv(path, sep=sep)
    except OSError as exc:
        raise CompareError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CompareError(f"cannot read {path} as CSV: {str(exc).strip()}") from exc
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if sep != ",":
        converted = _decimal_commas(df)
        if converted:
            notes.append(f"decimal commas read as numbers in {', '.join(converted)}")
    shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
    for col in list(targets) + list(features or []):
        if col not in columns:
            hint = ""
            others = [s for s in SEPARATORS if s != sep and s in columns[0]]
            if len(columns) == 1 and others:
                hint = (f"; the file was read with the separator {_shown(sep)}, but its header "
                        f"holds {_shown(others[0])}: give --sep {_shown(others[0])}")
            raise KeyError(f"column {col!r} is not in {path} (columns: {shown}){hint}")
    if len(set(targets)) != len(targets):
        raise CompareError("a --target column is given twice")
    features = [c for c in columns if c not in targets] if features is None else list(features)
    overlap = sorted(set(features) & set(targets))
    if overlap:
        raise CompareError(f"column {overlap[0]!r} is both a feature and a target")
    if not features:
        raise CompareError(f"{path} has no feature columns besides the target")
    missing_target = df[list(targets)].isna().any(axis=1).to_numpy()
    if missing_target.any():
        notes.append(f"dropped {int(missing_target.sum())} rows with a missing target")
        df = df.loc[~missing_target]
    if len(df) == 0:
        raise CompareError(f"{path} has no rows with a target")
    X = np.empty((len(df), len(features)), dtype=np.float64)
    categorical = []
    for j, col in enumerate(features):
        s = df[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            X[:, j] = s.astype("float64").to_numpy()
        else:
            codes = pd.Categorical(s.astype("object").where(s.notna(), None)).codes
            X[:, j] = np.where(codes < 0, np.nan, codes)
            categorical.append(j)
    if len(targets) == 1:
        y, classes = _encode_target(df[targets[0]].to_numpy(), targets[0], pos_label)
        task = BINARY if len(classes) == 2 else MULTICLASS
    else:
        if pos_label is not None:
            raise CompareError("--pos-label applies to binary targets only")
        y = np.column_stack([_binary_column(df[t].to_numpy(), t) for t in targets])
        classes, task = list(targets), MULTILABEL
    return Dataset(X, y, task, classes, features, categorical, name=os.path.basename(path),
                   notes=notes)


# -- what to fit -------------------------------------------------------------------------------


@dataclass
class Spec:
    """One table row: its name, loss class and candidate parameter sets (one: no grid).

    ``loss_class`` is None for the weighted cross-entropy baseline.
    """

    name: str
    candidates: list
    loss_class: type | None = None

    @property
    def baseline(self):
        return self.loss_class is None

    def make(self, params):
        return self.loss_class(**params)


def _by_default(cls):
    return vars(cls).get("compare_by_default", False)


def default_losses(task):
    """Keys of the registered losses that run without ``--losses`` (``compare_by_default``:
    cross-entropy, focal, ASL, logit adjustment) and fit ``task``: cross-entropy first, then in
    registry order. Other losses run when ``--losses`` names them."""
    keys = [cls.key for cls in REGISTRY.values() if _by_default(cls) and task in cls.tasks]
    return sorted(keys, key=lambda key: key != _REFERENCE)


def _known_keys(task=None):
    return ",".join(cls.key for cls in REGISTRY.values()
                    if task is None or task in cls.tasks)


def _parse_losses(text, task):
    """The loss classes of the table, {key: class}, from ``--losses`` (None: the defaults)."""
    if text is None:
        return {key: by_key(key) for key in default_losses(task)}
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise CompareError("--losses is empty; choose from " + _known_keys())
    if len(set(names)) != len(names):
        raise CompareError("a loss is listed twice in --losses")
    known = {cls.key for cls in REGISTRY.values()}
    classes = {}
    for name in names:
        if name not in known:
            raise CompareError(f"unknown loss {name!r} in --losses; choose from "
                               f"{_known_keys()} (a loss of your own: register it with "
                               "gbloss.losses.register and load its module with --import)")
        cls = classes[name] = by_key(name)
        if task not in cls.tasks:
            raise CompareError(f"loss {name!r} ({cls.__name__}) does not fit a {task} target "
                               f"(it supports {', '.join(cls.tasks)}); for this target "
                               f"choose from {_known_keys(task)}")
    return classes


def _constructor_parameters(cls):
    """Names of the keyword parameters of ``cls``'s constructor."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [name for name, p in inspect.signature(cls).parameters.items() if p.kind in kinds]


def _assign_fixed(fixed, classes, task):
    """{loss key: {parameter: value}} from the fixed values of the command line.

    A key ``"loss.param"`` fixes ``param`` of that loss, any constructor parameter. A bare
    ``"param"`` fixes it for the losses of the table whose grid or ``--no-grid`` values name it,
    or, when none does, for those whose constructor takes it; a value no loss takes is an error.
    A qualified value overrides a bare one.
    """
    given = {key: {} for key in classes}
    for spec_key in sorted(fixed, key=lambda k: "." in k):  # bare names first
        value = fixed[spec_key]
        loss_key, _, param = spec_key.rpartition(".")
        if loss_key:
            if loss_key not in classes:
                raise CompareError(f"--param {spec_key}: loss {loss_key!r} is not in the table "
                                   f"({', '.join(classes)})")
            names = _constructor_parameters(classes[loss_key])
            if param not in names:
                raise CompareError(f"--param {spec_key}: {classes[loss_key].__name__} has no "
                                   f"parameter {param!r} (it takes {', '.join(names)})")
            given[loss_key][param] = value
            continue
        targets = [key for key, cls in classes.items()
                   if param in cls.compare_grid(task) or param in cls.compare_fixed(task)]
        targets = targets or [key for key, cls in classes.items()
                              if param in _constructor_parameters(cls)]
        if not targets:
            raise CompareError(f"no loss in the table ({', '.join(classes)}) takes the "
                               f"parameter {param!r}; fix it per loss with --param LOSS.NAME=VALUE")
        for key in targets:
            given[key][param] = value
    return given


def _candidates(cls, task, given, grid):
    """Parameter dicts to try for one loss: its grid, its ``--no-grid`` values for parameters
    off the grid, and the given values; without the grid its ``--no-grid`` values updated by
    the given ones."""
    fixed = cls.compare_fixed(task)
    if not grid:
        return [{**fixed, **given}]
    axes = dict(cls.compare_grid(task))
    for name, value in fixed.items():
        axes.setdefault(name, (value,))
    axes.update({k: (v,) for k, v in given.items()})
    return [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]


def _selection_metric(spec, select):
    """The metric that picks ``spec``'s grid value: ``--select``, else the loss's own."""
    metric = select or spec.loss_class.compare_select
    if metric is None:
        raise CompareError(f"loss {spec.name!r} searches a grid but names no selection metric "
                           f"({spec.loss_class.__name__}.compare_select is None): give --select "
                           "or --no-grid")
    if metric not in METRICS:
        raise CompareError(f"{spec.loss_class.__name__}.compare_select is {metric!r}; expected "
                           f"one of {', '.join(METRICS)}")
    return metric


def _check_candidates(specs, data):
    """Build every candidate loss and take its start on the labels, so that a value that does
    not fit the target (e.g. a scalar ``alpha`` for a multiclass one) fails before any fit."""
    n_classes = len(data.classes) if data.task == MULTICLASS else None
    for spec in specs:
        for params in spec.candidates:
            try:
                loss = spec.make(params).prepare(data.y, n_classes=n_classes)
                loss.init_score(data.y, n_classes=n_classes)
            except (TypeError, ValueError) as exc:
                shown = _format_params(params)
                raise CompareError(f"loss {spec.name!r}" + (f" with {shown}" if params else "")
                                   + f": {exc}") from exc


def _format_params(params):
    if not params:
        return "-"
    return " ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def _fmt_value(v):
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple | np.ndarray):
        return ",".join(f"{float(x):g}" for x in v)
    return str(v)


# -- estimators --------------------------------------------------------------------------------


def default_backend():
    """The first installed of :data:`BACKENDS` (XGBoost, then LightGBM)."""
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is not None:
            return backend
    raise CompareError("gbloss compare needs XGBoost or LightGBM: pip install 'gbloss[xgboost]' "
                       "or 'gbloss[lightgbm]'")


def _check_backend(backend):
    if backend not in BACKENDS:
        raise CompareError(f"unknown --backend {backend!r}; choose from {', '.join(BACKENDS)}")
    try:
        __import__(backend)
        __import__(f"gbloss.{backend}")
    except ImportError as exc:
        raise CompareError(f"--backend {backend} needs {backend} and gbloss.{backend} "
                           f"({exc}): pip install 'gbloss[{backend}]'") from exc


def _engine_defaults(backend, task, specs):
    """The engine defaults (``loss.engine_defaults``) that gbloss's own losses for ``task`` at
    their ``--no-grid`` values, then every candidate of the table, ask for, merged: the first
    value of a parameter wins; a later, different one gives a note.

    Every row gets them, whatever ``--losses`` holds, so that rows of different runs compare.
    """
    losses = [cls(**cls.compare_fixed(task)) for cls in REGISTRY.values()
              if _by_default(cls) and task in cls.tasks]
    losses += [spec.make(params) for spec in specs for params in spec.candidates]
    merged, asked_by, notes = {}, {}, []
    for loss in losses:
        for key, value in loss.engine_defaults(backend).items():
            if key not in merged:
                merged[key], asked_by[key] = value, type(loss).__name__
            elif value != merged[key]:
                note = (f"{type(loss).__name__} asks for {key}={_fmt_value(value)}, "
                        f"{asked_by[key]} for {_fmt_value(merged[key])}: every row uses "
                        f"{_fmt_value(merged[key])} (--engine-params sets it)")
                if note not in notes:
                    notes.append(note)
    return merged, notes


def _shared_settings(backend, n_estimators, learning_rate, n_jobs, seed, defaults):
    return {"n_estimators": n_estimators, "learning_rate": learning_rate, **defaults,
            "n_jobs": n_jobs, "random_state": seed}


class _Engine:
    """Builds the estimators of one comparison: backend, shared settings, categoricals."""

    def __init__(self, backend, task, settings, engine_params, categorical, n_features):
        from . import sklearn as gbs

        self.backend, self.task = backend, task
        cls = gbs.GBLossXGBClassifier if backend == "xgboost" else gbs.GBLossLGBMClassifier
        self.cls = cls
        names = set(cls().get_params()) - {"loss", "calibrate", "class_weight", "engine_params",
                                           "beta", "eval_metric", "early_stopping_rounds"}
        reserved = cls._RESERVED
        self.settings = dict(settings)
        extra = {}
        for key, value in (engine_params or {}).items():
            if key in names:
                self.settings[key] = value
            elif key in ("loss", "calibrate", "class_weight"):
                raise CompareError(f"--engine-params cannot set {key!r}: compare sets it per row")
            elif key in reserved:
                raise CompareError(f"--engine-params {key!r}: give it by its estimator name "
                                   f"(one of {', '.join(sorted(names))}) or the matching option")
            else:
                extra[key] = value
        if backend == "lightgbm" and categorical and not _LGBM_CATEGORICAL & set(extra):
            # LightGBM's alias: "categorical_feature" in params works too, but makes the
            # Dataset warn that it "will be ignored" (it is not)
            extra["cat_feature"] = list(categorical)
        if backend == "xgboost" and categorical and self.settings.get("feature_types") is None:
            self.settings["feature_types"] = ["c" if j in categorical else "q"
                                              for j in range(n_features)]
        self.engine_params = extra or None

    def describe(self):
        shown = {k: v for k, v in self.settings.items()
                 if v is not None and k != "feature_types"}
        shown.update(self.engine_params or {})
        return ", ".join(f"{k}={_fmt_value(v)}" for k, v in shown.items())

    def make(self, loss, *, class_weight=None, calibrate=True):
        est = self.cls(loss, calibrate=calibrate, class_weight=class_weight,
                       engine_params=self.engine_params, **self.settings)
        if self.task == MULTILABEL and self.backend != "xgboost":
            from sklearn.multiclass import OneVsRestClassifier

            est = OneVsRestClassifier(est)
        return est

    def baseline(self, y):
        """Cross-entropy weighted like ``scale_pos_weight`` (see the module docstring)."""
        if self.task == BINARY:
            n_pos = max(int(np.sum(y == 1)), 1)
            spw = (len(y) - n_pos) / n_pos
            return self.make(CrossEntropyLoss(), class_weight={0: 1.0, 1: spw},
                             calibrate=False), {"pos_weight": round(spw, 1)}
        if self.task == MULTICLASS:
            return self.make(CrossEntropyLoss(), class_weight="balanced",
                             calibrate=False), {"class_weight": "balanced"}
        if self.backend == "xgboost":
            alpha = np.clip(1.0 - y.mean(axis=0), 1e-3, 1 - 1e-3)
            return self.make(CrossEntropyLoss(alpha=alpha), calibrate=False), \
                {"pos_weight": "n_neg/n_pos per label"}
        return self.make(CrossEntropyLoss(), class_weight="balanced", calibrate=False), \
            {"pos_weight": "n_neg/n_pos per label"}


def _probabilities(est, X, task):
    """(n, 2) binary, (n, K) multiclass and multi-label (also through one-vs-rest)."""
    return np.asarray(est.predict_proba(X), dtype=np.float64)


# -- metrics ----------------------------------------------------------------------------------


def scores(task, y, proba, pred, costs=None):
    """The table's metrics for one fold (see the module docstring); proba (n, 2) binary.
    ``costs``: a cost matrix; then ``cost`` is the mean cost per row of the Bayes decisions
    from ``proba`` (:mod:`gbloss.decisions`), else NaN."""
    y, pred = np.asarray(y), np.asarray(pred)
    cost = math.nan if costs is None else \
        decisions.expected_cost(y, decisions.bayes_decision(proba, costs), costs)
    return {**_scores(task, y, proba, pred), "cost": cost}


def _scores(task, y, proba, pred):
    if task == BINARY:
        p = proba[:, 1]
        both = np.unique(y).size == 2
        return {
            "pr_auc": skm.average_precision_score(y, p) if both else math.nan,
            "roc_auc": skm.roc_auc_score(y, p) if both else math.nan,
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "f1": skm.f1_score(y, pred, zero_division=0),
            "log_loss": skm.log_loss(y, proba, labels=[0, 1]),
        }
    n_out = proba.shape[1]
    Y = (y[:, None] == np.arange(n_out)[None, :]).astype(int) if task == MULTICLASS else y
    keep = (Y.min(axis=0) == 0) & (Y.max(axis=0) == 1)
    ranked = {"pr_auc": math.nan, "roc_auc": math.nan}
    if keep.any():
        ranked["pr_auc"] = skm.average_precision_score(Y[:, keep], proba[:, keep],
                                                       average="macro")
        ranked["roc_auc"] = skm.roc_auc_score(Y[:, keep], proba[:, keep], average="macro")
    if task == MULTICLASS:
        labels = list(range(n_out))
        return {**ranked,
                "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
                "f1": skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0),
                "log_loss": skm.log_loss(y, proba, labels=labels)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-class labels: balanced accuracy of the one class
        bal = np.mean([skm.balanced_accuracy_score(Y[:, k], pred[:, k]) for k in range(n_out)])
    return {**ranked, "balanced_accuracy": float(bal),
            "f1": skm.f1_score(Y, pred, average="macro", zero_division=0),
            "log_loss": float(np.mean([skm.log_loss(Y[:, k], proba[:, k], labels=[0, 1])
                                       for k in range(n_out)]))}


# -- the comparison ------------------------------------------------------------------------------


@dataclass
class Result:
    """Per-fold rows, the summary per loss, the protocol in words, and what the figures need:
    the out-of-fold probabilities per loss, and ``first_fold``, {loss: (model, train rows, test
    rows, test predictions)} of the first fold, each model with the parameters of the table
    (refitted when the first fold chose others)."""

    folds: list
    summary: list
    footer: list
    data: Dataset
    oof: dict
    first_fold: dict
    notes: list

    def table(self):
        """The plain-text table with its footer."""
        return format_table(self.summary, self.footer)

    def markdown(self):
        return format_markdown(self.summary, self.footer)


class _Progress:
    def __init__(self, total, enabled):
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc="gbloss compare", unit="fit", file=sys.stderr,
                                leave=False, dynamic_ncols=True)

    @staticmethod
    def write(text):
        """A line on stderr that leaves a running progress bar intact."""
        try:
            from tqdm.auto import tqdm
        except ImportError:
            print(text, file=sys.stderr, flush=True)
        else:
            tqdm.write(text, file=sys.stderr)

    def step(self, text):
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _CompileNotice(numba_event.Listener):
    """Says once on stderr that Numba compiles: a cache miss, which the first run has."""

    MESSAGE = "compiling gbloss kernels, first run only (Numba caches them)…"

    def __init__(self):
        self.said = False

    def on_start(self, event):
        if not self.said:
            self.said = True
            _Progress.write(self.MESSAGE)

    def on_end(self, event):
        pass


@contextlib.contextmanager
def _announce_compilation(enabled):
    """While active (if ``enabled``), the first Numba compilation is announced on stderr."""
    if not enabled:
        yield
        return
    with numba_event.install_listener("numba:compile", _CompileNotice()):
        yield


def _splits(data, folds, seed):
    y = data.y
    if data.task == MULTILABEL:
        if folds > len(y):
            raise CompareError(f"--folds {folds} exceeds the {len(y)} rows")
        return list(KFold(folds, shuffle=True, random_state=seed).split(data.X))
    counts = np.bincount(y)
    if counts.min() < folds:
        c = int(np.argmin(counts))
        raise CompareError(f"class {data.classes[c]!r} has {counts[c]} rows, fewer than "
                           f"--folds {folds}: lower --folds or merge rare classes")
    return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(data.X, y))


def _holdout(task, y, seed):
    if task == MULTILABEL:
        return next(ShuffleSplit(1, test_size=_HOLDOUT, random_state=seed).split(y))
    try:
        return next(StratifiedShuffleSplit(1, test_size=_HOLDOUT, random_state=seed)
                    .split(np.zeros(len(y)), y))
    except ValueError as exc:
        raise CompareError(f"the held-out split for the grid search failed ({exc}); fix the "
                           "parameters (--no-grid or --gamma/--alpha/...) or lower --folds"
                           ) from exc


def _select(spec, engine, X, y, task, select, seed, progress, costs):
    """The candidate with the best ``select`` score on a held-out part of the training fold."""
    if len(spec.candidates) == 1:
        return spec.candidates[0], 0.0
    select = _selection_metric(spec, select)
    t0 = time.perf_counter()
    fit, val = _holdout(task, y, seed)
    higher = METRICS[select][1]
    best, best_score = spec.candidates[0], -math.inf
    for params in spec.candidates:
        est = engine.make(spec.make(params)).fit(X[fit], y[fit])
        s = scores(task, y[val], _probabilities(est, X[val], task), est.predict(X[val]),
                   costs)[select]
        s = -math.inf if not np.isfinite(s) else (s if higher else -s)
        if s > best_score:
            best, best_score = params, s
        progress.step(f"{spec.name} grid")
    return best, time.perf_counter() - t0


def compare(data, *, losses=None, backend=None, folds=5, seed=0,
            n_estimators=100, learning_rate=0.1, n_jobs=1, engine_params=None, fixed=None,
            grid=True, select=None, progress=False, costs=None):
    """Cross-validate each loss (and the weighted cross-entropy baseline) on ``data``.

    ``losses``: comma-separated registry keys (None: :func:`default_losses`); ``fixed``:
    {``NAME`` or ``LOSS.NAME``: value} (see ``--param``); ``costs``: a cost matrix
    ``C[true, predicted]`` or ``{"fn": .., "fp": ..}`` (binary), which adds the expected cost
    per row of the Bayes decisions (see ``--costs``).
    Returns a :class:`Result`; the protocol is in the module docstring.
    """
    if not isinstance(folds, numbers.Integral) or folds < 2:
        raise CompareError(f"--folds must be an integer >= 2, got {folds!r}")
    if not isinstance(n_estimators, numbers.Integral) or n_estimators < 1:
        raise CompareError(f"--n-estimators must be an integer >= 1, got {n_estimators!r}")
    if not learning_rate > 0:
        raise CompareError(f"--learning-rate must be > 0, got {learning_rate!r}")
    if select is not None and select not in METRICS:
        raise CompareError(f"--select must be one of {', '.join(METRICS)}, got {select!r}")
    backend = backend or default_backend()
    _check_backend(backend)
    task = data.task
    if costs is not None:
        if task == MULTILABEL:
            raise CompareError("--costs applies to binary and multiclass targets")
        try:
            costs = decisions.cost_matrix(costs, len(data.classes))
        except ValueError as exc:
            raise CompareError(f"--costs: {exc}") from None
    if select == "cost" and costs is None:
        raise CompareError("--select cost needs --costs")
    classes = _parse_losses(losses, task)
    given = _assign_fixed(dict(fixed or {}), classes, task)
    specs = [Spec(key, _candidates(cls, task, given[key], grid), cls)
             for key, cls in classes.items()]
    for spec in specs:
        if len(spec.candidates) > 1:
            _selection_metric(spec, select)
    splits = _splits(data, folds, seed)
    with _announce_compilation(progress):
        _check_candidates(specs, data)
        defaults, setting_notes = _engine_defaults(backend, task, specs)
        base_name = "ce+balanced" if task == MULTICLASS else "ce+spw"
        specs.append(Spec(base_name, [{}]))
        engine = _Engine(backend, task, _shared_settings(backend, n_estimators, learning_rate,
                                                         n_jobs, seed, defaults),
                         engine_params, data.categorical, data.X.shape[1])
        _warm_up(engine, specs, data)
        per_fold = sum(len(s.candidates) + (len(s.candidates) > 1) for s in specs)
        bar = _Progress(folds * per_fold, progress)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rows, oof, first = _cross_validate(data, splits, specs, engine, select, seed,
                                                   bar, costs)
        finally:
            bar.close()
    notes = list(data.notes) + setting_notes
    seen = set()
    for w in caught:
        text = f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
        if text not in seen:
            seen.add(text)
            notes.append(text)
    summary = summarise(rows, [s.name for s in specs])
    footer = _footer(data, task, folds, seed, backend, engine, specs, select, grid, costs)
    return Result(rows, summary, footer, data, oof, first, notes)


def _cross_validate(data, splits, specs, engine, select, seed, bar, costs):
    """Per-fold rows, out-of-fold probabilities per loss and the first fold's models (see
    :class:`Result`)."""
    X, y, task = data.X, data.y, data.task
    rows, oof, first, params_of = [], {}, {}, {}
    for fold, (tr, te) in enumerate(splits):
        for spec in specs:
            if spec.baseline:
                params, select_s = {}, 0.0
                est, shown = engine.baseline(y[tr])
            else:
                params, select_s = _select(spec, engine, X[tr], y[tr], task, select,
                                           seed + fold, bar, costs)
                est, shown = engine.make(spec.make(params)), params
            t0 = time.perf_counter()
            est.fit(X[tr], y[tr])
            fit_s = time.perf_counter() - t0
            proba = _probabilities(est, X[te], task)
            pred = np.asarray(est.predict(X[te]))
            text = _format_params(shown)
            params_of[spec.name, text] = params
            rows.append({"fold": fold, "loss": spec.name, "params": text,
                         **scores(task, y[te], proba, pred, costs), "fit_s": fit_s,
                         "select_s": select_s})
            store = oof.setdefault(spec.name, np.full((len(y),) + proba.shape[1:], np.nan))
            store[te] = proba
            if fold == 0:
                first[spec.name] = (est, tr, te, pred)
            bar.step(f"fold {fold + 1}/{len(splits)} {spec.name}")
    tr, te = splits[0]
    for spec in specs:
        choices = [r["params"] for r in rows if r["loss"] == spec.name]  # fold 0 first
        choice, _ = _most_frequent(choices)
        if not spec.baseline and choice != choices[0]:
            est = engine.make(spec.make(params_of[spec.name, choice])).fit(X[tr], y[tr])
            first[spec.name] = (est, tr, te, np.asarray(est.predict(X[te])))
    return rows, oof, first


def _most_frequent(choices):
    """The most frequent of ``choices`` (the first on ties) and its count."""
    best = max(dict.fromkeys(choices), key=choices.count)
    return best, choices.count(best)


def _warm_up(engine, specs, data):
    """Compile (or load from the Numba cache) each loss's kernels before anything is timed."""
    if data.task == MULTILABEL:
        rows = np.arange(min(len(data.y), 200))
    else:  # every class, and enough rows for LightGBM's min_data_in_leaf (20) to split
        rows = np.concatenate([np.flatnonzero(data.y == k)[:100]
                               for k in range(len(data.classes))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for spec in specs:  # the baseline too: weighted fits compile other kernels
            if spec.baseline:
                est = engine.baseline(data.y[rows])[0]
            else:
                est = engine.make(spec.make(spec.candidates[0]))
            est.set_params(**({"estimator__n_estimators": 1}
                              if hasattr(est, "estimator") else {"n_estimators": 1}))
            try:
                est.fit(data.X[rows], data.y[rows]).predict_proba(data.X[rows])
            except Exception:  # best effort: the real fits report any problem
                pass


def summarise(rows, names):
    """Mean and sample standard deviation over folds per loss, and the most frequent choice."""
    out = []
    for name in names:
        mine = [r for r in rows if r["loss"] == name]
        entry = {"loss": name}
        best, count = _most_frequent([r["params"] for r in mine])
        entry["parameters"] = best if count == len(mine) else f"{best} ({count}/{len(mine)})"
        for key in list(METRICS) + ["fit_s"]:
            values = np.array([r[key] for r in mine], dtype=np.float64)
            finite = values[np.isfinite(values)]
            entry[f"{key}_mean"] = float(finite.mean()) if finite.size else math.nan
            entry[f"{key}_sd"] = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
        entry["n_folds"] = len(mine)
        out.append(entry)
    return out


def _footer(data, task, folds, seed, backend, engine, specs, select, grid, costs):
    n, p = data.X.shape
    if task == BINARY:
        share = float(np.mean(data.y == 1))
        target = (f"binary target, positive class {data.classes[1]!r} ({100 * share:.1f}% of "
                  "rows)")
    elif task == MULTICLASS:
        counts = np.bincount(data.y)
        target = (f"multiclass target, {len(data.classes)} classes (largest:smallest "
                  f"{counts.max()}:{counts.min()}); PR-AUC, ROC-AUC one-vs-rest macro, "
                  "F1 macro")
    else:
        target = (f"multi-label target, {len(data.classes)} labels; macro averages over "
                  "labels, mean per-label balanced accuracy and log-loss")
    split = "stratified " if task != MULTILABEL else ""
    cats = ""
    if data.categorical:
        how = "split natively by LightGBM" if backend == "lightgbm" else \
            "split natively by XGBoost, feature_types 'c'"
        cats = f" ({len(data.categorical)} categorical, {how})"
    lines = [
        f"data: {data.name}, {n} rows, {p} features{cats}; {target}",
        f"mean ± sd over {folds} {split}folds (seed {seed}, the same folds for every loss); "
        "F1 and bal. acc. of predict() (default threshold, raw score 0); log-loss of "
        "predict_proba, calibrated (calibrate=True) except the baseline",
        f"engine: {backend}, {engine.describe()}, the same for every loss; each loss starts "
        "at its loss-optimal constant",
    ]
    searched = [s for s in specs if len(s.candidates) > 1]
    if searched:
        by = {}
        for spec in searched:
            by.setdefault(METRICS[_selection_metric(spec, select)][0], []).append(spec.name)
        rule = "; ".join(f"{', '.join(n)} by {m}" for m, n in by.items())
        lines.append(
            f"grid: chosen per training fold on a held-out {int(100 * _HOLDOUT)}% of it ({rule}), "
            "then refit on the whole training fold; the test fold takes no part; parameters: "
            "most frequent choice (folds)")
    elif not grid:
        lines.append("parameters fixed (--no-grid)")
    base = specs[-1].name
    if task == MULTICLASS:
        lines.append(f"{base}: cross-entropy with class_weight='balanced' (n / (K n_c)), "
                     "uncorrected probabilities")
    else:
        lines.append(f"{base}: cross-entropy with positive weight n_neg/n_pos of the training "
                     "fold (scale_pos_weight), uncorrected probabilities")
    if costs is not None:
        lines.append(f"cost/row: mean cost of the Bayes decisions argmin_k sum_j P(j|x) C[j, k] "
                     f"from predict_proba (calibrated except the baseline), C[true, predicted] "
                     f"= {costs.tolist()}")
    lines.append("fit s: the final fit of each fold, without the grid search")
    return lines


# -- output ------------------------------------------------------------------------------------


def _columns(summary):
    """(key, header) of the table's columns; ``cost`` only when it was computed."""
    shown = [k for k in METRICS
             if k != "cost" or any(np.isfinite(e["cost_mean"]) for e in summary)]
    return [("loss", "loss"), ("parameters", "parameters")] + \
        [(k, METRICS[k][0]) for k in shown] + [("fit_s", "fit s")]


def _cell(entry, key):
    if key in ("loss", "parameters"):
        return str(entry[key])
    mean, sd = entry[f"{key}_mean"], entry[f"{key}_sd"]
    digits = 2 if key == "fit_s" else 3
    if not np.isfinite(mean):
        return "n/a"
    if not np.isfinite(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def format_table(summary, footer=(), width=100):
    """Aligned plain-text table: one row per loss, then the footer lines."""
    columns = _columns(summary)
    cells = [[h for _, h in columns]] + [[_cell(e, k) for k, _ in columns] for e in summary]
    widths = [max(len(row[j]) for row in cells) for j in range(len(columns))]

    def line(row):
        return "  ".join(c.ljust(w) if j < 2 else c.rjust(w)
                         for j, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells[1:]]
    notes = [textwrap.fill(f, width, subsequent_indent="  ", break_on_hyphens=False)
             for f in footer]
    return "\n".join(out + [""] + notes)


def format_markdown(summary, footer=()):
    columns = _columns(summary)
    head = "| " + " | ".join(h for _, h in columns) + " |"
    rule = "|" + "|".join("---" if j < 2 else "---:" for j in range(len(columns))) + "|"
    body = ["| " + " | ".join(_cell(e, k) for k, _ in columns) + " |" for e in summary]
    return "\n".join([head, rule, *body, "", *(f"- {line}" for line in footer)]) + "\n"


def write_outputs(result, out, plots=True):
    """results.csv, folds.csv, results.md and (with matplotlib) the figures; returns paths."""
    try:
        return _write_outputs(result, out, plots)
    except OSError as exc:
        raise CompareError(f"--out {out}: {exc.strerror or exc}"
                           + (f" ({exc.filename})" if exc.filename else "")) from exc


def _write_outputs(result, out, plots):
    os.makedirs(out, exist_ok=True)
    written = []
    path = os.path.join(out, "results.csv")
    keys = ["loss", "parameters"] + [f"{k}_{s}" for k, _ in _columns(result.summary)[2:]
                                     for s in ("mean", "sd")] + ["n_folds"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, keys, extrasaction="ignore")  # cost: only when computed
        writer.writeheader()
        writer.writerows(result.summary)
    written.append(path)
    path = os.path.join(out, "folds.csv")
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(result.folds[0]))
        writer.writeheader()
        writer.writerows(result.folds)
    written.append(path)
    path = os.path.join(out, "results.md")
    with open(path, "w") as f:
        f.write(result.markdown())
    written.append(path)
    if plots:
        written += _write_figures(result, out)
    return written


def _panel_title(rows, name):
    """``name: parameters`` as the table chooses them, with the share of folds that did."""
    choice, count = _most_frequent([r["params"] for r in rows if r["loss"] == name])
    n_folds = sum(r["loss"] == name for r in rows)
    if choice == "-":
        return name
    return f"{name}: {choice}" + (f" (chosen in {count}/{n_folds} folds)" if count < n_folds
                                  else "")


def _write_figures(result, out):
    try:
        from . import plots
    except ImportError:
        result.notes.append("matplotlib is not installed: no figures (pip install "
                            "'gbloss[plot]')")
        return []
    data, written = result.data, []
    if data.X.shape[1] == 2 and data.task != MULTILABEL:
        panels = []
        for name, (est, _, te, pred) in result.first_fold.items():
            y_te = data.y[te]
            panels.append((_panel_title(result.folds, name), est, skm.accuracy_score(y_te, pred),
                           skm.balanced_accuracy_score(y_te, pred)))
        tr, te = next(iter(result.first_fold.values()))[1:3]
        fig = plots.decision_regions(
            panels, data.X[te], data.y[te], data.X[tr], class_names=data.classes,
            feature_names=data.feature_names,
            title="Decision regions on the first test fold, with the parameters of the table "
                  "(shading: predicted class)")
        written.append(plots.save(fig, os.path.join(out, "decision_regions.png")))
    else:
        result.notes.append("decision regions need exactly 2 features and a single target: "
                            "figure skipped")
    fold_means = {e["loss"]: e["pr_auc_mean"] for e in result.summary}
    fig = plots.pr_curves(result.oof, data.y, data.task, labels=data.classes,
                          fold_means=fold_means)
    written.append(plots.save(fig, os.path.join(out, "pr_curves.png")))
    fig = plots.focal_curves()
    written.append(plots.save(fig, os.path.join(out, "focal_curves.png")))
    return written


# -- command line --------------------------------------------------------------------------------


def _number_or_none(text):
    if text.strip().lower() == "none":
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, a comma-separated list or "
                                         f"'none', got {text!r}") from None
    return values[0] if len(values) == 1 else values


def _separator(text):
    sep = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(sep) != 1:
        raise argparse.ArgumentTypeError(f"expected one character or 'tab', got {text!r}")
    return sep


_PARAM = re.compile(r"(?:([\w+-]+)\.)?([A-Za-z_]\w*)=(.*)", re.DOTALL)
_WORDS = {"none": None, "null": None, "true": True, "false": False}


def _param_value(text):
    """A ``--param`` value: none/true/false, an int, a float, comma-separated numbers (a list
    of floats), else the text itself."""
    word = text.strip()
    if word.lower() in _WORDS:
        return _WORDS[word.lower()]
    for convert in (int, float):
        try:
            return convert(word)
        except ValueError:
            pass
    if "," in word:
        try:
            return [float(v) for v in word.split(",")]
        except ValueError:
            pass
    return word


def _param(text):
    """``[LOSS.]NAME=VALUE`` -> (``"LOSS.NAME"`` or ``"NAME"``, value)."""
    match = _PARAM.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE or LOSS.NAME=VALUE (e.g. "
                                         f"focal.gamma=2), got {text!r}")
    loss, name, value = match.groups()
    return (f"{loss}.{name}" if loss else name), _param_value(value)


def _builtin_classes():
    return [by_key(key) for key in
            dict.fromkeys(k for task in (BINARY, MULTICLASS, MULTILABEL)
                          for k in default_losses(task))]


def _values_text(values):
    return ",".join("none" if v is None else _fmt_value(v) for v in values)


def _grid_text():
    """The built-in grids in words, for ``--help`` (binary grids; multiclass focal: alpha none)."""
    grids = ((cls.key, cls.compare_grid(cls.tasks[0])) for cls in _builtin_classes())
    return ", ".join(f"{key} " + " x ".join(f"{name} {{{_values_text(values)}}}"
                                            for name, values in grid.items())
                     for key, grid in grids if grid)


def _fixed_text():
    """The built-in ``--no-grid`` values in words, for ``--help``."""
    fixed = ((cls.key, cls.compare_fixed(cls.tasks[0])) for cls in _builtin_classes())
    return ", ".join(f"{key} " + " ".join(f"{name}={_values_text([value])}"
                                          for name, value in values.items())
                     for key, values in fixed if values)


def _losses_text():
    return ", ".join(f"{cls.key} ({cls.description}; {', '.join(cls.tasks)})"
                     for cls in _builtin_classes())


def add_arguments(parser):
    """The options of ``gbloss compare`` on an argparse parser."""
    data = parser.add_argument_group("data (default: the embedded 90:10 two-feature set)")
    data.add_argument("--csv", metavar="PATH", help="CSV file with a header row")
    data.add_argument("--target", metavar="COL", action="append",
                      help="target column; repeat (or comma-separate) for a multi-label target")
    data.add_argument("--features", metavar="COLS",
                      help="comma-separated feature columns (default: all other columns)")
    data.add_argument("--pos-label", metavar="LABEL",
                      help="positive class of a binary target (default: the minority class)")
    data.add_argument("--sep", type=_separator, metavar="CHAR",
                      help="column separator of --csv: ',', ';', tab, '|' or another "
                           "character (default: detected from the first lines)")
    run = parser.add_argument_group("comparison")
    run.add_argument("--losses", metavar="LIST",
                     help=f"comma-separated loss keys: {_losses_text()}, or one registered "
                          "by --import; default: all of gbloss's that fit the target; the "
                          "weighted cross-entropy baseline is always added")
    run.add_argument("--import", dest="imports", metavar="MODULE", action="append",
                     help="import MODULE (a module on the Python path or a .py file) first: "
                          "the place where your own losses are registered with "
                          "gbloss.losses.register; repeatable")
    run.add_argument("--backend", default=None, choices=BACKENDS,
                     help="training engine (default: xgboost if installed, else lightgbm)")
    run.add_argument("--folds", type=int, default=5, metavar="K",
                     help="CV folds (default %(default)s)")
    run.add_argument("--seed", type=int, default=0, metavar="INT",
                     help="seed of folds and engine (default 0)")
    run.add_argument("--costs", metavar="fn=C,fp=C|JSON",
                     help="costs of wrong decisions, 'fn=10,fp=1' (binary: a missed positive, a "
                          "false alarm) or a JSON matrix C[true][predicted]: adds the mean cost "
                          "per row of the Bayes decisions from the calibrated probabilities "
                          "(select it with --select cost)")
    run.add_argument("--select", choices=list(METRICS),
                     help="grid selection metric on the held-out part, for every loss "
                          "(default: each loss's own, " + ", ".join(
                              f"{cls.key} {cls.compare_select}" for cls in _builtin_classes()
                              if cls.compare_select) + ")")
    grid = parser.add_argument_group(
        "loss parameters", textwrap.fill(f"a value given is fixed; the others are searched: "
                                         f"{_grid_text()}", 90))
    grid.add_argument("--param", metavar="[LOSS.]NAME=VALUE", action="append", type=_param,
                      help="fix a loss parameter; repeatable. NAME=VALUE: for the losses of "
                           "the table whose grid or --no-grid values hold NAME (else those "
                           "that take it); LOSS.NAME=VALUE: for that loss, any parameter of "
                           "its class. VALUE: a number, none, true/false, comma-separated "
                           "numbers, or a word. E.g. --param focal.gamma=2 --param tau=1")
    grid.add_argument("--gamma", type=float, metavar="G", help="= --param gamma=G (focal)")
    grid.add_argument("--alpha", type=_number_or_none, default=_UNSET, metavar="A",
                      help="= --param alpha=A (focal): a number, 'none', or one value per "
                           "class (multiclass)")
    grid.add_argument("--gamma-neg", type=float, metavar="G", help="= --param gamma_neg=G (asl)")
    grid.add_argument("--gamma-pos", type=float, metavar="G",
                      help="= --param gamma_pos=G (asl, default 0)")
    grid.add_argument("--clip", type=float, metavar="M",
                      help="= --param clip=M (asl probability margin)")
    grid.add_argument("--tau", type=float, metavar="T",
                      help="= --param tau=T (la temperature)")
    grid.add_argument("--no-grid", action="store_true",
                      help=f"no search: given values, else {_fixed_text()}")
    engine = parser.add_argument_group("engine (the same for every loss)")
    engine.add_argument("--n-estimators", type=int, default=100, metavar="N",
                        help="trees (default 100)")
    engine.add_argument("--learning-rate", type=float, default=0.1, metavar="RATE",
                        help="default 0.1")
    engine.add_argument("--n-jobs", type=int, default=1, metavar="N", help="threads (default 1)")
    engine.add_argument("--engine-params", metavar="JSON",
                        help='estimator or engine parameters, e.g. \'{"max_depth": 4}\'')
    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="DIR",
                     help="write results.csv, folds.csv, results.md and PNG figures here "
                          "(created if needed; checked before the work starts)")
    out.add_argument("--no-plots", action="store_true", help="with --out: no figures")
    out.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (``prog: error: ... (see prog --help)``, exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


DESCRIPTION = """\
Cross-validate the gbloss losses side by side on one data set: the same stratified folds and
engine settings for every loss, each starting at its loss-optimal constant, loss parameters
chosen on a held-out part of each training fold. Prints one table of PR-AUC, ROC-AUC, balanced
accuracy, F1, log-loss and fit time (mean ± sd over folds), next to cross-entropy weighted like
scale_pos_weight. Without --csv: the embedded two-feature 90:10 data set."""

EPILOG = """\
examples:
  gbloss compare
  gbloss compare --csv data.csv --target label --backend lightgbm --losses ce,focal,asl,la \\
      --folds 5 --out results/
  gbloss compare --csv tags.csv --target sports --target news       (multi-label)
  gbloss compare --gamma 2 --alpha 0.25 --tau 1 --no-grid           (fixed values, no search)
  gbloss compare --import my_losses.py --losses ce,poly1 --param poly1.epsilon=1
                                                           (a loss of your own, one value fixed)

bad input (missing file, unknown column, one-class target, a loss that does not fit the
target) ends with one line 'gbloss compare: error: ...' and exit status 2."""


def parser_kwargs():
    """Description, epilog and formatter of the ``compare`` parser (also for subcommands)."""
    return {"description": DESCRIPTION, "epilog": EPILOG,
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def build_parser(prog="gbloss compare"):
    return add_arguments(ArgumentParser(prog=prog, **parser_kwargs()))


def _targets(values):
    if not values:
        return None
    out = []
    for v in values:
        out += [t.strip() for t in v.split(",") if t.strip()]
    return out


_SHORTHANDS = ("gamma", "alpha", "gamma_neg", "gamma_pos", "clip", "tau")


def _fixed_values(args):
    """{``NAME`` or ``LOSS.NAME``: value} from ``--param`` and its shorthands (``--gamma`` ...)."""
    fixed = {}
    for name in _SHORTHANDS:
        value = getattr(args, name)
        if value is not (_UNSET if name == "alpha" else None):  # --alpha none is a value
            fixed[name] = value
    for name, value in args.param or ():
        if name in fixed:
            option = f"--{name.replace('_', '-')} and --param" if name in _SHORTHANDS \
                else "--param"
            raise CompareError(f"{option} both fix {name!r}; give it once")
        fixed[name] = value
    return fixed


def import_losses(modules):
    """Import each module name or ``.py`` path (where user losses are registered), once."""
    for module in modules or ():
        if module.endswith(".py"):
            if not os.path.isfile(module):
                raise CompareError(f"--import {module}: no such file")
            name = os.path.splitext(os.path.basename(module))[0]
            loaded = sys.modules.get(name)
            if loaded is not None and os.path.samefile(getattr(loaded, "__file__", None) or
                                                       os.devnull, module):
                continue
            spec = importlib.util.spec_from_file_location(name, module)
            loaded = importlib.util.module_from_spec(spec)
            sys.modules[name] = loaded
            spec.loader.exec_module(loaded)
        else:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                raise CompareError(f"--import {module}: {exc} (a module on the Python path, "
                                   "or a path ending in .py)") from exc


def run(args):
    """Run ``gbloss compare`` for parsed arguments; prints the table to stdout."""
    if args.out:
        check_out(args.out)  # again: gbloss.compare.main and abbreviated options
    import_losses(args.imports)
    if args.csv is None:
        if args.target or args.features or args.pos_label is not None or args.sep:
            raise CompareError("--target, --features, --pos-label and --sep need --csv")
        data = default_dataset()
    else:
        targets = _targets(args.target)
        if not targets:
            raise CompareError("--csv needs --target COL (the label column)")
        features = [c.strip() for c in args.features.split(",")] if args.features else None
        data = load_csv(args.csv, targets, features, args.pos_label, args.sep)
    engine_params = None
    if args.engine_params:
        try:
            engine_params = json.loads(args.engine_params)
        except json.JSONDecodeError as exc:
            raise CompareError(f"--engine-params is not valid JSON: {exc}") from exc
        if not isinstance(engine_params, dict):
            raise CompareError("--engine-params must be a JSON object such as "
                               '\'{"max_depth": 4}\'')
    fixed = _fixed_values(args)
    result = compare(data, losses=args.losses, backend=args.backend, folds=args.folds,
                     seed=args.seed, n_estimators=args.n_estimators,
                     learning_rate=args.learning_rate, n_jobs=args.n_jobs,
                     engine_params=engine_params, fixed=fixed, grid=not args.no_grid,
                     select=args.select, progress=not args.no_progress,
                     costs=_costs(args.costs))
    print(result.table())
    written = write_outputs(result, args.out, plots=not args.no_plots) if args.out else []
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if written:
        print("wrote " + ", ".join(written), file=sys.stderr)
    return result


def _costs(text):
    """``--costs``: ``fn=10,fp=1`` (binary) or a JSON matrix ``[[0, 1], [10, 0]]``."""
    if text is None:
        return None
    text = text.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CompareError(f"--costs is not a valid JSON matrix: {exc}") from None
    costs = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in ("fn", "fp") or key in costs:
            raise CompareError(f"--costs must be 'fn=COST,fp=COST' or a JSON matrix "
                               f"C[true][predicted], got {text!r}")
        try:
            costs[key] = float(value)
        except ValueError:
            raise CompareError(f"--costs: {key} must be a number, got {value!r}") from None
    return costs


def main(argv=None, prog="gbloss compare"):
    """``gbloss compare`` entry point: exit status 0, or 2 with a one-line error."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and argparse's one-line errors (2)
        return exc.code
    return run_safely(run, args, prog)


def run_safely(function, args, prog):
    """Call ``function(args)``; report usage and input errors in one line (exit 2)."""
    try:
        function(args)
    except (CompareError, ValueError, FileNotFoundError, KeyError, ImportError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        message = " ".join(str(message).split())
        print(f"{prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the engines' own errors (LightGBMError is no ValueError)
        if not type(exc).__module__.startswith(("xgboost", "lightgbm")):
            raise
        message = " ".join(str(exc).split())
        print(f"{prog}: error: {type(exc).__module__.split('.')[0]}: {message}", file=sys.stderr)
        return 2
    return 0
