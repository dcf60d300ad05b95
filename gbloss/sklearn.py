"""scikit-learn classifiers that train gbloss losses with XGBoost or LightGBM.

==========================  =====================================================================
estimator                   loss
==========================  =====================================================================
``GBLossXGBClassifier``     any gbloss loss, ``loss=gbloss.AsymmetricLoss(gamma_neg=4)``;
``GBLossLGBMClassifier``    default ``CrossEntropyLoss()``; its parameters are reachable as
                            ``loss__gamma_neg`` (``set_params``, ``GridSearchCV``)
``FocalXGBClassifier``      :class:`~gbloss.FocalLoss`, its ``gamma``, ``alpha``, ``hessian``
``FocalLGBMClassifier``     as flat parameters (``GridSearchCV(clf, {"gamma": [0, 1, 2]})``)
==========================  =====================================================================

One class per engine; the ``Focal*`` classes are subclasses that build the loss from their flat
parameters. The estimators compose :mod:`gbloss.xgboost` / :mod:`gbloss.lightgbm` (objective,
start, metrics, prediction) and add scikit-learn's contract around them. Their constructors are
generated from one parameter table per engine (:func:`_constructor`), so ``get_params``,
``set_params`` and ``clone`` see explicit signatures.

Targets: a 1-D vector of class labels of any kind (binary: one raw score per row; multiclass:
softmax over K raw scores, for losses with a softmax form), or, with the XGBoost estimators, a
2-D 0/1 indicator matrix (n, K) fitted natively as a multi-label target (per-label sigmoid
losses; XGBoost multi-output trees by default). ``OneVsRestClassifier(<estimator>)`` is the
other way to fit multi-label targets, with either engine.

Weights: ``sample_weight`` times the class weights of ``class_weight``. Every class of a binary
or multiclass ``y`` needs a positive total weight, and a multi-label target a positive total
(a label column without positives is allowed); anything else is refused with an error naming
the weights responsible.

Outputs (``raw``: the engine's margins, start included, trees up to the best iteration):

* ``decision_function(X)``: ``loss.decision_scores(raw)``, shape (n,) binary, (n, K) otherwise.
  These are the raw scores, except for ``LogitAdjustedLoss(posthoc=True)``, whose scores are
  ``raw - tau log pi``.
* ``predict(X)``: the decision rule the loss was trained for: ``classes_[decision > 0]``
  (binary), ``classes_[argmax decision]`` (multiclass), ``decision > 0`` per label (multi-label).
  For ``LogitAdjustedLoss`` this is the balanced-error rule of Menon et al. (2021): the argmax of
  the scores *without* the ``tau log pi`` offset, which estimates the classifier minimising the
  mean per-class error rather than the error rate. For class-weighted losses (``alpha``,
  asymmetric focusing) it is the cost-weighted rule those weights ask for.
* ``predict_proba(X)``: estimates of P(y | x), rows summing to 1 ((n, 2) binary, (n, K)
  multiclass; (n, K) per-label probabilities for multi-label):
  ``loss.predict_proba(raw, task=task_, calibrate=calibrate)``. With ``calibrate=True``
  (default) the loss inverts the bias of focal-type losses (their plain link ``sigmoid(raw)``
  is not P(y | x); :mod:`gbloss.calibration`); for proper losses (cross-entropy, logit
  adjustment) that is the plain link. ``calibrate=False`` gives the uncorrected link.
  ``calibrate`` only acts at prediction time: ``clf.set_params(calibrate=False)`` on a fitted
  estimator switches without refitting.

Early stopping (``early_stopping_rounds``) watches ``fit``'s ``eval_set``; without one, the
estimator holds out a stratified ``validation_fraction`` of the training rows (as
``HistGradientBoostingClassifier`` does), so ``GridSearchCV`` and ``cross_val_score`` work with
early stopping. ``best_iteration_`` (and XGBoost's spelling ``best_iteration``) is the best
round counted from 0; LightGBM's own ``LGBMClassifier.best_iteration_`` counts from 1.

Engine defaults: losses whose Hessians are tiny for well-classified rows (focusing, clipping)
need bounded steps and a small ``min_child_weight``. ``None`` in the constructor means the
loss's default, ``loss.engine_defaults(engine)``, else the engine's own; any value given wins.
For focal-type losses (``FocalLoss`` with ``gamma > 0``, ``AsymmetricLoss``) these are:

=========================  ===============================  ===============================
parameter                  XGBoost                          LightGBM
=========================  ===============================  ===============================
``min_child_weight``       1e-3 (engine default 1 freezes   1e-3 (LightGBM's default)
                           leaves of easy rows at 0)
``max_delta_step``         1.0 (engine default 0: none)     1.0 (engine default 0: none)
``reg_lambda``             1.0 (XGBoost's default)          1e-3 (engine default 0)
=========================  ===============================  ===============================
"""

import inspect
import numbers

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from . import _adapters, _metrics, decisions
from .compat import validate_data
from .losses import BINARY, MULTICLASS, MULTILABEL, CrossEntropyLoss, FocalLoss
from .losses import Loss as _Loss
from .weights import class_balanced_weights, inverse_frequency_weights

__all__ = [
    "FocalLGBMClassifier",
    "FocalXGBClassifier",
    "GBLossLGBMClassifier",
    "GBLossXGBClassifier",
]

_CLASS_WEIGHTS = ("balanced", "effective_number")
_X_CHECKS = {"accept_sparse": ("csr", "csc"), "dtype": (np.float64, np.float32),
             "ensure_all_finite": "allow-nan"}
_TYPE_NAMES = {numbers.Real: "a number", numbers.Integral: "an integer", str: "a string"}


def _is_a(value, kind):
    """``isinstance(value, kind)``, except that booleans are not numbers here."""
    return isinstance(value, kind) and not isinstance(value, bool | np.bool_)


def _seed(random_state):
    """An int seed for the engines: ints pass, a RandomState draws one, None gives None."""
    if random_state is None or isinstance(random_state, numbers.Integral):
        return random_state
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _non_numeric_columns(X):
    """``name (dtype)`` of each pandas-style column that is not numbers: categories, and
    strings or objects that do not convert to float."""
    dtypes = getattr(X, "dtypes", None)
    if not hasattr(dtypes, "items"):
        return []
    found = []
    for name, dtype in dtypes.items():
        if getattr(dtype, "kind", "O") in "biuf":
            continue
        if str(dtype) != "category":
            try:
                np.asarray(X[name], dtype=np.float64)
                continue
            except (TypeError, ValueError):
                pass
        found.append(f"{name!r} ({dtype})")
    return found


# -- constructors and their documentation --------------------------------------------------------

#: Parameters every estimator has after its loss's: name -> default.
_SHARED_PARAMS = {
    "calibrate": True, "cost_matrix": None, "class_weight": None, "beta": 0.999,
    "eval_metric": "loss", "early_stopping_rounds": None, "validation_fraction": 0.1,
    "n_estimators": 100,
}
_KEYWORD = inspect.Parameter.KEYWORD_ONLY
#: The loss parameters of the generic estimators and of the focal ones.
_LOSS_ARGUMENT = [inspect.Parameter("loss", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
_FOCAL_ARGUMENTS = [inspect.Parameter("gamma", _KEYWORD, default=2.0),
                    inspect.Parameter("alpha", _KEYWORD, default=None),
                    inspect.Parameter("hessian", _KEYWORD, default="psd")]


def _constructor(loss_arguments, engine_table, engine_extras=()):
    """An ``__init__`` that stores its arguments as attributes, under an explicit signature
    (scikit-learn's ``get_params`` and ``clone`` read it): ``loss_arguments``, the shared
    parameters, then ``engine_table``'s keys, ``engine_extras``, ``random_state`` and
    ``engine_params``, all None by default. Unknown arguments raise TypeError."""
    engine_names = [*engine_table, *engine_extras, "random_state", "engine_params"]
    defaults = {**_SHARED_PARAMS, **dict.fromkeys(engine_names)}
    signature = inspect.Signature([
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), *loss_arguments,
        *(inspect.Parameter(name, _KEYWORD, default=value) for name, value in defaults.items())])

    def __init__(self, *args, **kwargs):
        arguments = signature.bind(self, *args, **kwargs)
        arguments.apply_defaults()
        for name, value in arguments.arguments.items():
            if name != "self":
                setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


_LOSS_DOC = """\
    loss : gbloss.Loss or None, default None
        :class:`~gbloss.FocalLoss`, :class:`~gbloss.AsymmetricLoss` (binary, multi-label),
        :class:`~gbloss.LogitAdjustedLoss` (binary, multiclass; ``priors=None`` takes the class
        frequencies of ``y``), :class:`~gbloss.CrossEntropyLoss` (None) or any registered loss.
        Its parameters are ``loss__<name>`` in ``set_params`` and ``GridSearchCV`` grids."""

_FOCAL_DOC = """\
    gamma : float >= 0, default 2.0
        Focusing parameter of the loss.{gamma_note}
    alpha : None, float in [0, 1] or sequence, default None
        Class weight of the loss (:class:`gbloss.FocalLoss`); 0.25 in the paper.
    hessian : {{"psd", "exact", "gn"}}, default "psd"
        Hessian policy of :class:`gbloss.FocalLoss`."""

_SHARED_DOC = """\
    calibrate : bool, default True
        ``predict_proba`` returns calibrated P(y | x) (True) or the plain link (False); read at
        prediction time, so ``set_params(calibrate=False)`` needs no refit.
    cost_matrix : None, array-like (K, K) or dict {{"fn": cost, "fp": cost}}, default None
        ``C[true, predicted]`` (zero diagonal, costs >= 0, classes in the order of
        ``classes_``); then :meth:`predict` is the Bayes decision
        ``argmin_k sum_j P(j | x) C[j, k]`` from the calibrated probabilities
        (:func:`gbloss.decisions.bayes_decision`). The dict is the binary shorthand, with the
        positive class ``classes_[1]``. Binary and multiclass targets; read at prediction time.
    class_weight : None, "balanced", "effective_number" or dict {{label: weight}}
        Folded into the sample weights: ``"balanced"`` is ``n / (K n_c)``,
        ``"effective_number"`` the class-balanced weights of Cui et al. with ``beta``; a dict
        gives finite weights >= 0. Every class needs a positive total weight.
    beta : float in [0, 1], default 0.999
        For ``class_weight="effective_number"``.
    eval_metric : str or list of str, default "loss"
        Metric(s) on the validation data: ``"loss"``, ``"average_precision"``, ``"roc_auc"``,
        ``"log_loss"``, ``"balanced_accuracy"`` (:mod:`gbloss._metrics`).
        {stopping}.
    early_stopping_rounds : int or None, default None
        Stop when the validation metric has not improved for this many rounds; predictions use
        the best iteration (``best_iteration_``). The validation data are ``fit``'s
        ``eval_set``, or without one a held-out ``validation_fraction`` of the training rows.
    validation_fraction : float in (0, 1) or None, default 0.1
        Share of the training rows held out for early stopping when ``fit`` gets no
        ``eval_set``, as in ``HistGradientBoostingClassifier``: stratified by class (a plain
        split for multi-label targets), drawn with ``random_state``, weighted like the training
        rows. None: early stopping needs an ``eval_set``. Unused without
        ``early_stopping_rounds``.
    n_estimators : int >= 1, default 100
        Boosting rounds.
    {engine_names}
        {engine_doc}
    random_state : None, int or numpy RandomState
        Seed of the engine and of the validation split.
    engine_params : dict or None
        Any other {engine} parameter ({engine_example}).

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_
    booster_ : {booster}
    loss_ : gbloss.Loss
        The loss trained (with logit-adjustment priors fixed from the training rows).
    task_ : {{"binary", "multiclass", "multilabel"}}
    evals_result_ : dict
        Metric history per validation set (``"validation_0"``, ...).
    best_iteration_ : int or None
        Best round under early stopping, counted from 0, else None. ``best_iteration`` is the
        same number under XGBoost's name (an AttributeError without early stopping).{best_note}
"""


def _docstring(summary, loss_doc, engine):
    """The docstring of a public estimator: its summary, its loss parameters, then the
    parameters and attributes every estimator of that engine shares."""
    return f"{summary}\n\n    Parameters\n    ----------\n{loss_doc}\n" + \
        _SHARED_DOC.format(**_ENGINE_DOCS[engine])


# -- the engine-independent estimator ------------------------------------------------------------


class _GBLossClassifier(ClassifierMixin, BaseEstimator):
    """Loss, targets, weights, validation data, outputs and tags, for every engine.

    An engine subclass sets ``_ENGINE`` (the name ``loss.engine_defaults`` takes), ``_PARAMS``
    ({constructor name: (engine name, type)}, all None by default), ``_RESERVED`` (engine names
    and aliases that ``engine_params`` must not repeat), ``_MULTILABEL`` (whether the engine
    fits 2-D targets natively) and ``_CATEGORICAL_HINT``, and provides ``_fit_engine(...)``
    (booster, eval history, best iteration) and ``_raw(X)`` (margins, start included).
    """

    _MULTILABEL = False

    # -- fit ---------------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, eval_set=None, eval_sample_weight=None,
            verbose=False):
        """Fit the booster.

        Parameters
        ----------
        X : array-like or sparse matrix (n, n_features); NaN marks missing values.
        y : array-like (n,) of class labels, or (n, K) 0/1 multi-label indicator matrix.
        sample_weight : array-like (n,), optional
            Multiplied by the class weights of ``class_weight``.
        eval_set : list of (X, y) pairs, optional
            Validation sets, scored with ``eval_metric`` every round (``evals_result_``); early
            stopping (``early_stopping_rounds``) follows the last one (XGBoost) or any of them
            (LightGBM). Their labels are encoded like ``y`` and weighted by ``class_weight``.
            Without one, early stopping holds out ``validation_fraction`` of the rows.
        eval_sample_weight : list of array-like or None, optional
            One weight vector (or None) per eval set.
        verbose : bool or int
            Print the eval metric every round (or every ``verbose`` rounds).
        """
        self._forget_fit()
        X, y = self._validate_X(X, y)
        loss = self._make_loss()
        task, y_enc = self._encode_fit_target(y, loss)
        self._check_params(task)
        weight = self._weights(X, y_enc, sample_weight, "sample_weight")
        evals = self._eval_sets(eval_set, eval_sample_weight, task)
        given = [name for name, value in (("sample_weight", sample_weight),
                                          ("class_weight", self.class_weight))
                 if value is not None]
        if self.early_stopping_rounds is not None and not evals:
            X, y_enc, weight, evals = self._hold_out(X, y_enc, weight, task)
            given.append(f"holding out validation_fraction={self.validation_fraction}")
        self._check_total_weight(y_enc, weight, task, " and ".join(given))
        n_classes = len(self.classes_) if task == MULTICLASS else None
        loss = loss.prepare(y_enc, weight, n_classes=n_classes)
        booster, history, best = self._fit_engine(X, y_enc, weight, loss, task, evals, verbose)
        self.loss_, self.task_ = loss, task
        self.booster_, self.evals_result_, self.best_iteration_ = booster, history, best
        return self

    def _forget_fit(self):
        """Drop everything an earlier fit learned, so that a refit starts afresh and a failed
        one leaves the estimator unfitted."""
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, name)
        self.__dict__.pop("_y_dtype", None)

    def _validate_X(self, X, y="no_validation", *, reset=True):
        """``validate_data`` for X (and y, when given), after refusing non-numeric pandas
        columns."""
        columns = _non_numeric_columns(X)
        if columns:
            raise ValueError(f"X has columns that are not numbers: {', '.join(columns)}. "
                             f"{type(self).__name__} takes numeric features: "
                             f"{self._CATEGORICAL_HINT}")
        if isinstance(y, str) and y == "no_validation":
            return validate_data(self, X, reset=reset, **_X_CHECKS)
        return validate_data(self, X, y, multi_output=True, **_X_CHECKS)

    def _check_params(self, task):
        self._check_calibrate()
        names = [self.eval_metric] if isinstance(self.eval_metric, str) else self.eval_metric
        if not isinstance(names, list | tuple) or not names \
                or any(n not in _metrics.METRICS for n in names):
            raise ValueError(f"eval_metric must be one of {sorted(_metrics.METRICS)} or a list "
                             f"of them, got {self.eval_metric!r}")
        esr = self.early_stopping_rounds
        if esr is not None and not (_is_a(esr, numbers.Integral) and esr >= 1):
            raise ValueError(f"early_stopping_rounds must be None or an integer >= 1, got {esr!r}")
        fraction = self.validation_fraction
        if fraction is not None and not (_is_a(fraction, numbers.Real) and 0 < fraction < 1):
            raise ValueError(f"validation_fraction must be None or a number in (0, 1), got "
                             f"{fraction!r}")
        if not (_is_a(self.n_estimators, numbers.Integral) and self.n_estimators >= 1):
            raise ValueError(f"n_estimators must be an integer >= 1, got {self.n_estimators!r}")
        if not (_is_a(self.beta, numbers.Real) and 0 <= self.beta <= 1):
            raise ValueError(f"beta must be a number in [0, 1], got {self.beta!r}")
        for name, (_, kind) in self._PARAMS.items():
            value = getattr(self, name)
            if value is not None and not _is_a(value, kind):
                raise ValueError(f"{name} must be None or {_TYPE_NAMES[kind]}, got {value!r}")
        rs = self.random_state
        if rs is not None and not (_is_a(rs, numbers.Integral)
                                   or isinstance(rs, np.random.RandomState)):
            raise ValueError(f"random_state must be None, an integer or a numpy RandomState, got "
                             f"{rs!r}")
        if self.engine_params is not None and not isinstance(self.engine_params, dict):
            raise ValueError(f"engine_params must be None or a dict of engine parameters, got "
                             f"{self.engine_params!r}")
        self._check_class_weight(task)
        self._costs(task)

    def _costs(self, task):
        """The validated cost matrix, or None."""
        if self.cost_matrix is None:
            return None
        if task == MULTILABEL:
            raise ValueError("cost_matrix does not apply to multi-label targets (each label is "
                             "its own decision); use it per label with OneVsRestClassifier")
        return decisions.cost_matrix(self.cost_matrix, len(self.classes_))

    def _check_calibrate(self):
        if not isinstance(self.calibrate, bool | np.bool_):
            raise ValueError(f"calibrate must be True or False, got {self.calibrate!r}")

    def _check_class_weight(self, task):
        cw = self.class_weight
        if cw is None:
            return
        if not isinstance(cw, dict) and cw not in _CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be None, 'balanced', 'effective_number' or a "
                             f"dict {{class label: weight}}, got {cw!r}")
        if isinstance(cw, dict) and not all(_is_a(w, numbers.Real) and np.isfinite(w) and w >= 0
                                            for w in cw.values()):
            raise ValueError(f"class_weight must give each class a finite weight >= 0, got {cw!r}")
        if task == MULTILABEL:
            raise ValueError("class_weight does not apply to multi-label targets (a row has "
                             "several classes); weight the rows with sample_weight instead")

    def _encode_fit_target(self, y, loss):
        """Task and the labels in the loss's shape; sets ``classes_`` (and the label dtype)."""
        if sparse.issparse(y):
            y = y.toarray()
        y = np.asarray(y)
        name = type(loss).__name__
        if y.ndim == 2 and y.shape[1] > 1:
            kind = type_of_target(y, input_name="y")
            if kind != "multilabel-indicator":
                raise ValueError(f"a 2-D y must be a 0/1 multi-label indicator matrix, got a "
                                 f"{kind} target of shape {y.shape}")
            if MULTILABEL not in loss.tasks:
                raise ValueError(f"y is a multi-label indicator matrix {y.shape}, which "
                                 f"{name} does not support (it supports {', '.join(loss.tasks)})"
                                 ": use FocalLoss, CrossEntropyLoss or AsymmetricLoss, or "
                                 f"OneVsRestClassifier(<this estimator>)")
            if not self._MULTILABEL:
                raise ValueError(f"{type(self).__name__} does not fit multi-label targets "
                                 f"natively (y has shape {y.shape}): use "
                                 f"OneVsRestClassifier({type(self).__name__}()) or the XGBoost "
                                 "estimator")
            self.classes_ = np.arange(y.shape[1])
            self._y_dtype = y.dtype
            return MULTILABEL, y.astype(np.float64)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if self.classes_.size < 2:
            raise ValueError(f"y has only one class ({self.classes_[0]!r}); a classifier needs "
                             "at least two classes")
        y_enc = encoder.transform(y).astype(np.float64)
        if self.classes_.size == 2:
            return BINARY, y_enc
        if MULTICLASS not in loss.tasks:
            raise ValueError(f"Only binary classification is supported by {name} (and "
                             f"multi-label indicator targets); y has {self.classes_.size} "
                             "classes: use FocalLoss, CrossEntropyLoss or LogitAdjustedLoss, "
                             "or OneVsRestClassifier(<this estimator>)")
        return MULTICLASS, y_enc

    def _encode(self, y, name, task):
        """Labels of an eval set, encoded like the training labels."""
        if task == MULTILABEL:
            y = np.asarray(y.toarray() if sparse.issparse(y) else y)
            if y.shape[1:] != (self.classes_.size,) or not np.isin(y, (0, 1)).all():
                raise ValueError(f"{name} must be a 0/1 indicator matrix with "
                                 f"{self.classes_.size} columns like y, got shape {y.shape}")
            return y.astype(np.float64)
        y = column_or_1d(y, warn=True)
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"{name} holds labels not seen in y: {unknown.tolist()}")
        return np.searchsorted(self.classes_, y).astype(np.float64)

    def _weights(self, X, y_enc, sample_weight, name):
        """``sample_weight`` times the class weights, or None when both are absent."""
        weight = None
        if sample_weight is not None:
            weight = _check_sample_weight(sample_weight, X, dtype=np.float64)
            if not np.all(np.isfinite(weight)) or np.any(weight < 0):
                raise ValueError(f"{name} must be finite and >= 0")
        cw = self.class_weight
        if cw is None:
            return weight
        labels = self.classes_[y_enc.astype(np.intp)]
        if cw == "balanced":
            class_w = inverse_frequency_weights(labels)
        elif cw == "effective_number":
            class_w = class_balanced_weights(labels, self.beta)
        else:
            class_w = compute_sample_weight(cw, labels)
        return class_w if weight is None else weight * class_w

    def _check_total_weight(self, y_enc, weight, task, cause):
        """One rule for degenerate weights: every class of a binary or multiclass target, and
        the whole of a multi-label one, needs a positive total weight (a label column without
        positives is allowed)."""
        if weight is None and task == MULTILABEL:
            return
        under = f" under {cause}" if cause else ""
        if task == MULTILABEL:
            if not weight.sum() > 0:
                raise ValueError(f"the training rows have a total weight of zero{under}")
            return
        mass = np.bincount(y_enc.astype(np.intp), weights=weight, minlength=self.classes_.size)
        empty = self.classes_[~(mass > 0)]
        if empty.size:
            raise ValueError(f"class(es) {empty.tolist()} of y have a total training weight of "
                             f"zero{under}: every class needs a positive total weight (drop "
                             "the class from y, or weight its rows)")

    def _eval_sets(self, eval_set, eval_sample_weight, task):
        if eval_set is None:
            if eval_sample_weight is not None:
                raise ValueError("eval_sample_weight was given without eval_set")
            return []
        if not isinstance(eval_set, list | tuple) or not all(
                isinstance(pair, list | tuple) and len(pair) == 2 for pair in eval_set):
            raise ValueError("eval_set must be a list of (X, y) pairs")
        weights = [None] * len(eval_set) if eval_sample_weight is None else eval_sample_weight
        if len(weights) != len(eval_set):
            raise ValueError(f"eval_sample_weight has {len(weights)} entries for "
                             f"{len(eval_set)} eval sets")
        evals = []
        for i, ((X_val, y_val), w_val) in enumerate(zip(eval_set, weights, strict=True)):
            X_val = self._validate_X(X_val, reset=False)
            y_enc = self._encode(y_val, f"eval_set[{i}] y", task)
            if y_enc.shape[0] != X_val.shape[0]:
                raise ValueError(f"eval_set[{i}] has {X_val.shape[0]} rows in X but "
                                 f"{y_enc.shape[0]} labels")
            w = self._weights(X_val, y_enc, w_val, f"eval_sample_weight[{i}]")
            if w is not None and not w.sum() > 0:
                raise ValueError(f"eval_set[{i}] has a total weight of zero")
            evals.append((X_val, y_enc, w))
        return evals

    def _hold_out(self, X, y_enc, weight, task):
        """Training rows and one validation set: ``validation_fraction`` of the rows, stratified
        by class (a plain split for multi-label targets), drawn with ``random_state``."""
        fraction = self.validation_fraction
        if fraction is None:
            raise ValueError("early_stopping_rounds needs an eval_set to watch: pass "
                             "fit(X, y, eval_set=[(X_val, y_val)]), or a validation_fraction "
                             "of the training rows to hold out")
        arrays = (X, y_enc) if weight is None else (X, y_enc, weight)
        stratify = None if task == MULTILABEL else y_enc
        try:
            parts = train_test_split(*arrays, test_size=fraction, stratify=stratify,
                                     random_state=self.random_state)
        except ValueError as error:
            raise ValueError(f"early stopping without an eval_set holds out "
                             f"validation_fraction={fraction} of the {len(y_enc)} training rows"
                             f"{'' if stratify is None else ', stratified by class'}, which "
                             f"fails here ({error}): pass an eval_set or another "
                             "validation_fraction") from error
        X_train, X_val, y_train, y_val = parts[:4]
        w_train, w_val = parts[4:] if weight is not None else (None, None)
        return X_train, y_train, w_train, [(X_val, y_val, w_val)]

    def _engine_settings(self, loss):
        """The engine parameter dict: the loss's engine defaults, the constructor's engine
        parameters that are not None, ``engine_params``, and the seed."""
        table = self._PARAMS
        params = {table[k][0]: v for k, v in loss.engine_defaults(self._ENGINE).items()}
        for name, (engine_name, _) in table.items():
            value = getattr(self, name)
            if value is not None:
                params[engine_name] = value
        extra = self.engine_params or {}
        clash = sorted(k for k in extra if k in table or k in self._RESERVED)
        if clash:
            raise ValueError(f"engine_params repeats {clash}, which the estimator sets from its "
                             f"own parameters: pass them as constructor parameters instead")
        params.update(extra)
        seed = _seed(self.random_state)
        if seed is not None:
            params["seed"] = seed
        return params

    # -- loss ----------------------------------------------------------------------------------

    def _make_loss(self):
        if self.loss is None:
            return CrossEntropyLoss()
        if not isinstance(self.loss, _Loss):
            raise TypeError(f"loss must be None or a gbloss loss such as "
                            f"gbloss.FocalLoss(gamma=2.0), got {self.loss!r}")
        return self.loss

    def set_params(self, **params):
        """Set parameters; ``loss__<name>`` replaces the loss by a copy with that parameter
        changed (gbloss losses are immutable values, so ``clone`` copies them)."""
        nested = {}
        if "loss" in self._get_param_names():
            nested = {k[len("loss__"):]: params.pop(k) for k in list(params)
                      if k.startswith("loss__")}
        super().set_params(**params)
        if nested:
            loss = self._make_loss()
            current = loss.get_params()
            unknown = sorted(set(nested) - set(current))
            if unknown:
                raise ValueError(f"invalid loss parameter(s) {unknown} for "
                                 f"{type(loss).__name__}; valid: {sorted(current)}")
            self.loss = type(loss)(**{**current, **nested})
        return self

    # -- predict -----------------------------------------------------------------------------

    @property
    def best_iteration(self):
        """``best_iteration_`` under XGBoost's name: the best round under early stopping,
        counted from 0 (AttributeError without early stopping, as in XGBoost)."""
        check_is_fitted(self, "booster_")
        if self.best_iteration_ is None:
            raise AttributeError("best_iteration is only defined when early stopping is used")
        return self.best_iteration_

    def _raw_scores(self, X):
        check_is_fitted(self, "booster_")
        X = self._validate_X(X, reset=False)
        return np.asarray(self._raw(X), dtype=np.float64)

    def decision_function(self, X):
        """Raw scores, start included: (n,) binary, (n, K) multiclass and multi-label.

        ``loss.decision_scores(raw)``: the raw margins themselves, except post-hoc logit
        adjustment (``raw - tau log pi``); their sign (binary, per label) or argmax
        (multiclass) is :meth:`predict`.
        """
        raw = self._raw_scores(X)
        return self.loss_.decision_scores(raw)

    def predict_proba(self, X):
        """Probabilities: (n, 2) binary, (n, K) multiclass (rows sum to 1), (n, K) per-label
        P(y_k = 1) for multi-label; calibrated estimates of P(y | x) when ``calibrate``."""
        raw = self._raw_scores(X)
        proba = self.loss_.predict_proba(raw, task=self.task_, calibrate=self.calibrate)
        if self.task_ == BINARY:
            return np.column_stack([1.0 - proba, proba])
        return proba

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Labels from ``classes_`` by the loss's decision rule (see :meth:`decision_function`),
        or with ``cost_matrix`` the Bayes decision from the calibrated probabilities;
        multi-label: a 0/1 matrix (n, K) of the dtype of the training ``y``."""
        costs = self._costs(self.task_) if hasattr(self, "task_") else None
        if costs is not None:
            raw = self._raw_scores(X)
            proba = self.loss_.predict_proba(raw, task=self.task_)
            return self.classes_[decisions.bayes_decision(proba, costs)]
        scores = self.decision_function(X)
        if self.task_ == MULTILABEL:
            return (scores > 0).astype(self._y_dtype)
        index = (scores > 0).astype(np.intp) if self.task_ == BINARY else np.argmax(scores, 1)
        return self.classes_[index]

    # -- tags --------------------------------------------------------------------------------

    def _loss_tasks(self):
        try:
            return self._make_loss().tasks
        except (TypeError, ValueError):  # invalid parameters are reported by fit
            return (BINARY,)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tasks = self._loss_tasks()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_class = MULTICLASS in tasks
        tags.classifier_tags.multi_label = self._MULTILABEL and MULTILABEL in tasks
        return tags

    def _more_tags(self):  # scikit-learn < 1.6; remove when gbloss requires >= 1.6
        tasks = self._loss_tasks()
        return {"allow_nan": True, "binary_only": MULTICLASS not in tasks,
                "multilabel": self._MULTILABEL and MULTILABEL in tasks}


# -- XGBoost -------------------------------------------------------------------------------------

#: XGBoost estimator parameters: constructor name -> (XGBoost parameter, accepted type).
_XGB_PARAMS = {
    "learning_rate": ("eta", numbers.Real), "max_depth": ("max_depth", numbers.Integral),
    "max_leaves": ("max_leaves", numbers.Integral),
    "min_child_weight": ("min_child_weight", numbers.Real),
    "max_delta_step": ("max_delta_step", numbers.Real), "min_split_loss": ("gamma", numbers.Real),
    "subsample": ("subsample", numbers.Real),
    "colsample_bytree": ("colsample_bytree", numbers.Real),
    "reg_alpha": ("alpha", numbers.Real), "reg_lambda": ("lambda", numbers.Real),
    "tree_method": ("tree_method", str), "max_bin": ("max_bin", numbers.Integral),
    "multi_strategy": ("multi_strategy", str), "n_jobs": ("nthread", numbers.Integral),
    "device": ("device", str),
}
#: XGBoost names and aliases that engine_params must not repeat.
_XGB_RESERVED = {"eta", "gamma", "alpha", "lambda", "nthread", "n_jobs", "seed", "random_state",
                 "num_class", "num_boost_round", "n_estimators", "min_split_loss", "reg_alpha",
                 "reg_lambda", "learning_rate"}
_XGB_EXTRAS = ("feature_types",)

# -- LightGBM ------------------------------------------------------------------------------------

#: LightGBM estimator parameters: constructor name -> (LightGBM parameter, accepted type).
_LGBM_PARAMS = {
    "learning_rate": ("learning_rate", numbers.Real),
    "num_leaves": ("num_leaves", numbers.Integral), "max_depth": ("max_depth", numbers.Integral),
    "min_child_samples": ("min_data_in_leaf", numbers.Integral),
    "min_child_weight": ("min_sum_hessian_in_leaf", numbers.Real),
    "max_delta_step": ("max_delta_step", numbers.Real),
    "min_split_gain": ("min_gain_to_split", numbers.Real),
    "subsample": ("bagging_fraction", numbers.Real),
    "subsample_freq": ("bagging_freq", numbers.Integral),
    "colsample_bytree": ("feature_fraction", numbers.Real),
    "reg_alpha": ("lambda_l1", numbers.Real), "reg_lambda": ("lambda_l2", numbers.Real),
    "max_bin": ("max_bin", numbers.Integral), "n_jobs": ("num_threads", numbers.Integral),
    "device": ("device_type", str),
}
#: LightGBM names and aliases that engine_params must not repeat.
_LGBM_RESERVED = _adapters.lightgbm_names(
    "learning_rate", "num_leaves", "min_data_in_leaf", "min_sum_hessian_in_leaf",
    "max_delta_step", "min_gain_to_split", "bagging_fraction", "bagging_freq",
    "feature_fraction", "lambda_l1", "lambda_l2", "device_type", "num_threads", "seed",
    "num_class", "num_iterations", "max_depth", "max_bin")

_ENGINE_DOCS = {
    "xgboost": {
        "engine": "XGBoost", "engine_example": '``{"grow_policy": "lossguide"}``',
        "booster": "xgboost.Booster",
        "stopping": "Early stopping follows the last metric on the last validation set",
        "engine_names": ", ".join([*_XGB_PARAMS, *_XGB_EXTRAS]),
        "engine_doc": """XGBoost parameters as in ``xgboost.XGBClassifier`` (XGBoost's ``gamma`` is
        ``min_split_loss`` here); None: the loss's ``engine_defaults("xgboost")``, else the
        engine's default. ``multi_strategy`` None is ``"multi_output_tree"`` for multi-label
        targets. ``n_jobs`` is the engine's thread count; gbloss's gradient kernel uses all
        threads when it runs in XGBoost's OpenMP runtime (``gbloss.xgboost.OPENMP_SHARED``),
        else runs serially on the engine's calling thread (see
        :class:`gbloss.xgboost.Objective`). ``feature_types``: one XGBoost feature type per
        column, ``"q"`` numeric or ``"c"`` categorical (integer category codes; NaN missing),
        as in ``xgboost.XGBClassifier``: categorical columns get XGBoost's native partition
        splits.""",
        "best_note": "",
    },
    "lightgbm": {
        "engine": "LightGBM", "engine_example": '``{"extra_trees": True}``',
        "booster": "lightgbm.Booster",
        "stopping": "Early stopping watches every metric on every validation set",
        "engine_names": ", ".join(_LGBM_PARAMS),
        "engine_doc": """LightGBM parameters named as in ``lightgbm.LGBMClassifier``; None: the
        loss's ``engine_defaults("lightgbm")``, else LightGBM's default.""",
        "best_note": """ LightGBM's own
        ``LGBMClassifier.best_iteration_`` counts from 1; the booster keeps the trees up to
        the best iteration.""",
    },
}


class GBLossXGBClassifier(_GBLossClassifier):
    __doc__ = _docstring(
        """Any gbloss loss trained with XGBoost: ``GBLossXGBClassifier(gbloss.AsymmetricLoss())``.

    Binary, multiclass (softmax losses) and native multi-label (2-D 0/1 ``y``) targets, trained
    by :func:`gbloss.xgboost.train` on a DMatrix; margins through
    :func:`gbloss.xgboost.predict_raw` (trees up to the best iteration). See
    :mod:`gbloss.sklearn` for the outputs, calibration, early stopping and engine defaults.""",
        _LOSS_DOC, "xgboost")

    __init__ = _constructor(_LOSS_ARGUMENT, _XGB_PARAMS, _XGB_EXTRAS)
    _ENGINE = "xgboost"
    _PARAMS = _XGB_PARAMS
    _RESERVED = _XGB_RESERVED
    _MULTILABEL = True
    _CATEGORICAL_HINT = ("encode each categorical column as integer codes (e.g. "
                         "X[column].cat.codes, with NaN for missing values) and mark it \"c\" in "
                         "feature_types for XGBoost's categorical splits")

    def _xgb_params(self, loss, task):
        params = self._engine_settings(loss)
        if task == MULTICLASS:
            params["num_class"] = len(self.classes_)
        if task == MULTILABEL and self.multi_strategy is None:
            params.setdefault("multi_strategy", "multi_output_tree")
        return params

    def _fit_engine(self, X, y, weight, loss, task, evals, verbose):
        import xgboost

        from . import xgboost as gbx

        params = self._xgb_params(loss, task)
        types = self._feature_types(X.shape[1])
        categorical = {"feature_types": types, "enable_categorical": "c" in types} if types else {}
        dtrain = xgboost.DMatrix(X, label=y, weight=weight, nthread=self.n_jobs, **categorical)
        watch = [(xgboost.DMatrix(X_val, label=y_val, weight=w_val, nthread=self.n_jobs,
                                  **categorical),
                  f"validation_{i}")
                 for i, (X_val, y_val, w_val) in enumerate(evals)]
        result = {}
        booster = gbx.train(params, dtrain, self.n_estimators, loss=loss,
                            metric=self.eval_metric if watch else None, evals=watch,
                            early_stopping_rounds=self.early_stopping_rounds,
                            evals_result=result, verbose_eval=verbose, X=X)
        best = booster.attr("best_iteration")
        return booster, result, None if best is None else int(best)

    def _feature_types(self, n_features):
        types = self.feature_types
        if types is None:
            return None
        types = list(types) if isinstance(types, list | tuple) else None
        if types is None or len(types) != n_features \
                or not all(t in ("q", "c", "int", "float", "i") for t in types):
            raise ValueError(f"feature_types must be None or one XGBoost feature type per "
                             f"column ('q' numeric, 'c' categorical), {n_features} in all; got "
                             f"{self.feature_types!r}")
        return types

    def _raw(self, X):
        from . import xgboost as gbx

        return gbx.predict_raw(self.booster_, X.tocsr() if sparse.issparse(X) else X)


class FocalXGBClassifier(GBLossXGBClassifier):
    __doc__ = _docstring(
        """Focal loss (:class:`gbloss.FocalLoss`) trained with XGBoost, its parameters flat.

    :class:`GBLossXGBClassifier` with ``loss=FocalLoss(gamma, alpha, hessian=hessian)``:
    ``GridSearchCV(FocalXGBClassifier(), {"gamma": [0, 1, 2]})``.""",
        _FOCAL_DOC.format(gamma_note=" (XGBoost's own ``gamma`` is ``min_split_loss`` here.)"),
        "xgboost")

    __init__ = _constructor(_FOCAL_ARGUMENTS, _XGB_PARAMS, _XGB_EXTRAS)

    def _make_loss(self):
        return FocalLoss(self.gamma, self.alpha, hessian=self.hessian)


class GBLossLGBMClassifier(_GBLossClassifier):
    __doc__ = _docstring(
        """Any gbloss loss trained with LightGBM: ``GBLossLGBMClassifier(gbloss.AsymmetricLoss())``.

    Binary and multiclass (softmax losses) targets; multi-label through
    ``OneVsRestClassifier(GBLossLGBMClassifier(...))``. Trained by
    :func:`gbloss.lightgbm.train` on a Dataset; margins through
    :func:`gbloss.lightgbm.predict_raw`. See :mod:`gbloss.sklearn` for the outputs,
    calibration, early stopping and engine defaults.""",
        _LOSS_DOC, "lightgbm")

    __init__ = _constructor(_LOSS_ARGUMENT, _LGBM_PARAMS)
    _ENGINE = "lightgbm"
    _PARAMS = _LGBM_PARAMS
    _RESERVED = _LGBM_RESERVED
    _CATEGORICAL_HINT = ("encode each categorical column as integer codes (e.g. "
                         "X[column].cat.codes, with NaN for missing values) and name their "
                         "column indices in engine_params={\"categorical_feature\": [...]} for "
                         "LightGBM's categorical splits")

    def _lgbm_params(self, loss, task):
        params = {"verbosity": -1, **self._engine_settings(loss)}
        if task == MULTICLASS:
            params["num_class"] = len(self.classes_)
        return params

    def _fit_engine(self, X, y, weight, loss, task, evals, verbose):
        import lightgbm

        from . import lightgbm as gbl

        params = self._lgbm_params(loss, task)
        dataset_params = {"verbosity": -1, "feature_pre_filter": False}
        dtrain = lightgbm.Dataset(X, label=y, weight=weight,
                                  categorical_feature=params.pop("categorical_feature", "auto"),
                                  params=dataset_params)
        valid = [lightgbm.Dataset(X_val, label=y_val, weight=w_val, reference=dtrain,
                                  params=dataset_params)
                 for X_val, y_val, w_val in evals]
        result = {}
        callbacks = [lightgbm.record_evaluation(result)]
        if verbose:
            callbacks.append(lightgbm.log_evaluation(int(verbose)))
        if self.early_stopping_rounds is not None:
            callbacks.append(lightgbm.early_stopping(self.early_stopping_rounds, verbose=False))
        booster = gbl.train(params, dtrain, self.n_estimators, loss=loss,
                            metric=self.eval_metric if valid else None, valid_sets=valid,
                            valid_names=[f"validation_{i}" for i in range(len(valid))],
                            callbacks=callbacks)
        best = booster.best_iteration if self.early_stopping_rounds is not None else 0
        return booster, result, best - 1 if best > 0 else None

    def _raw(self, X):
        from . import lightgbm as gbl

        return gbl.predict_raw(self.booster_, X)


class FocalLGBMClassifier(GBLossLGBMClassifier):
    __doc__ = _docstring(
        """Focal loss (:class:`gbloss.FocalLoss`) trained with LightGBM, its parameters flat.

    :class:`GBLossLGBMClassifier` with ``loss=FocalLoss(gamma, alpha, hessian=hessian)``:
    ``GridSearchCV(FocalLGBMClassifier(), {"gamma": [0, 1, 2]})``.""",
        _FOCAL_DOC.format(gamma_note=""), "lightgbm")

    __init__ = _constructor(_FOCAL_ARGUMENTS, _LGBM_PARAMS)

    def _make_loss(self):
        return FocalLoss(self.gamma, self.alpha, hessian=self.hessian)
