"""scikit-learn classifiers that train gbloss losses with XGBoost or LightGBM.

==========================  =====================================================================
estimator                   loss
==========================  =====================================================================
``FocalXGBClassifier``      :class:`~gbloss.FocalLoss`, its ``gamma``, ``alpha``, ``hessian``
``FocalLGBMClassifier``     as flat parameters (``GridSearchCV(clf, {"gamma": [0, 1, 2]})``)
``GBLossXGBClassifier``     any gbloss loss, ``loss=gbloss.AsymmetricLoss(gamma_neg=4)``;
``GBLossLGBMClassifier``    default ``CrossEntropyLoss()``; its parameters are reachable as
                            ``loss__gamma_neg`` (``set_params``, ``GridSearchCV``)
==========================  =====================================================================

The estimators compose :mod:`gbloss.xgboost` / :mod:`gbloss.lightgbm` (objective, start,
metrics, prediction) and add scikit-learn's contract around them.

Targets: a 1-D vector of class labels of any kind (binary: one raw score per row; multiclass:
softmax over K raw scores, for losses with a softmax form), or, with the XGBoost estimators, a
2-D 0/1 indicator matrix (n, K) fitted natively as a multi-label target (per-label sigmoid
losses; XGBoost multi-output trees by default). ``OneVsRestClassifier(<estimator>)`` is the
other way to fit multi-label targets, with either engine.

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
  multiclass; (n, K) per-label probabilities for multi-label). With ``calibrate=True``
  (default) they come from :func:`gbloss.calibration.calibrated_proba`, which inverts the bias
  of focal-type losses (their plain link ``sigmoid(raw)`` is not P(y | x)); for proper losses
  (cross-entropy, logit adjustment) it is the plain link. ``calibrate=False`` gives the
  uncorrected link ``loss.predict_proba(raw)``. ``calibrate`` only acts at prediction time:
  ``clf.set_params(calibrate=False)`` on a fitted estimator switches without refitting.

Engine defaults for focal-type losses (``FocalLoss`` with ``gamma > 0``, ``AsymmetricLoss``),
whose Hessians are tiny for well-classified rows and whose steps need bounding
(loss-math.md section 8.4); ``None`` in the constructor means this default, any value given
wins:

=========================  ===============================  ===============================
parameter                  XGBoost                          LightGBM
=========================  ===============================  ===============================
``min_child_weight``       1e-3 (engine default 1 freezes   1e-3 (LightGBM's default)
                           leaves of easy rows at 0)
``max_delta_step``         1.0 (engine default 0: none)     1.0 (engine default 0: none)
``reg_lambda``             1.0 (XGBoost's default)          1e-3 (engine default 0)
=========================  ===============================  ===============================

For the other losses ``None`` means the engine's own default.
"""

import numbers

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

from . import _metrics
from .calibration import calibrated_proba
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
_FOCAL_DEFAULTS = {"min_child_weight": 1e-3, "max_delta_step": 1.0}


def _is_focal_type(loss):
    """Losses whose Hessian is tiny for well-classified rows (focusing or clipping)."""
    return bool(loss.engine_defaults("xgboost"))


def _seed(random_state):
    """An int seed for the engines: ints pass, a RandomState draws one, None gives None."""
    if random_state is None or isinstance(random_state, numbers.Integral):
        return random_state
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class _GBLossClassifier(ClassifierMixin, BaseEstimator):
    """Engine-independent part: targets, weights, eval sets, outputs, tags.

    Subclasses provide ``_make_loss()``, ``_fit_engine(...)`` (booster, eval history, best
    iteration), ``_raw(X)`` (margins, start included), ``_focal_defaults()`` and ``_MULTILABEL``
    (whether the engine fits 2-D targets natively).
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
        eval_sample_weight : list of array-like or None, optional
            One weight vector (or None) per eval set.
        verbose : bool or int
            Print the eval metric every round (or every ``verbose`` rounds).
        """
        X, y = validate_data(self, X, y, multi_output=True, **_X_CHECKS)
        loss = self._make_loss()
        task, y_enc = self._encode_fit_target(y, loss)
        self._check_params(task)
        weight = self._weights(X, y, y_enc, sample_weight, "sample_weight")
        n_classes = len(self.classes_) if task == MULTICLASS else None
        loss = loss.prepare(y_enc, weight, n_classes=n_classes)
        evals = self._eval_sets(eval_set, eval_sample_weight, task)
        if self.early_stopping_rounds is not None and not evals:
            raise ValueError("early_stopping_rounds needs an eval_set to watch: pass "
                             "fit(X, y, eval_set=[(X_val, y_val)])")
        self.loss_ = loss
        self.task_ = task
        self.booster_, self.evals_result_, self.best_iteration_ = self._fit_engine(
            X, y_enc, weight, loss, task, evals, verbose)
        return self

    def _check_params(self, task):
        if not isinstance(self.calibrate, bool | np.bool_):
            raise ValueError(f"calibrate must be True or False, got {self.calibrate!r}")
        names = [self.eval_metric] if isinstance(self.eval_metric, str) else self.eval_metric
        if not isinstance(names, list | tuple) or not names \
                or any(n not in _metrics.METRICS for n in names):
            raise ValueError(f"eval_metric must be one of {sorted(_metrics.METRICS)} or a list "
                             f"of them, got {self.eval_metric!r}")
        esr = self.early_stopping_rounds
        if esr is not None and (not isinstance(esr, numbers.Integral) or esr < 1):
            raise ValueError(f"early_stopping_rounds must be None or an integer >= 1, got {esr!r}")
        if not isinstance(self.n_estimators, numbers.Integral) or self.n_estimators < 1:
            raise ValueError(f"n_estimators must be an integer >= 1, got {self.n_estimators!r}")
        if self.engine_params is not None and not isinstance(self.engine_params, dict):
            raise ValueError(f"engine_params must be None or a dict of engine parameters, got "
                             f"{self.engine_params!r}")
        cw = self.class_weight
        if cw is not None and not isinstance(cw, dict) and cw not in _CLASS_WEIGHTS:
            raise ValueError(f"class_weight must be None, 'balanced', 'effective_number' or a "
                             f"dict {{class label: weight}}, got {cw!r}")
        if cw is not None and task == MULTILABEL:
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

    def _weights(self, X, y, y_enc, sample_weight, name):
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
            X_val = validate_data(self, X_val, reset=False, **_X_CHECKS)
            y_enc = self._encode(y_val, f"eval_set[{i}] y", task)
            if y_enc.shape[0] != X_val.shape[0]:
                raise ValueError(f"eval_set[{i}] has {X_val.shape[0]} rows in X but "
                                 f"{y_enc.shape[0]} labels")
            w = self._weights(X_val, y_val, y_enc, w_val, f"eval_sample_weight[{i}]")
            evals.append((X_val, y_enc, w))
        return evals

    def _engine_settings(self, loss, explicit, aliases):
        """The engine parameter dict: gbloss defaults for focal-type losses, the explicit
        constructor parameters that are not None, then ``engine_params``.

        ``explicit``: {constructor name: engine name}; ``aliases``: engine names (and their
        aliases) that ``engine_params`` must not repeat.
        """
        params = {}
        if _is_focal_type(loss):
            params.update({explicit[k]: v for k, v in self._focal_defaults().items()})
        for name, engine_name in explicit.items():
            value = getattr(self, name)
            if value is not None:
                params[engine_name] = value
        extra = self.engine_params or {}
        clash = sorted(k for k in extra if k in explicit or k in aliases)
        if clash:
            raise ValueError(f"engine_params repeats {clash}, which the estimator sets from its "
                             f"own parameters: pass them as constructor parameters instead")
        params.update(extra)
        return params

    def _focal_defaults(self):
        return _FOCAL_DEFAULTS

    # -- predict -----------------------------------------------------------------------------

    def _raw_scores(self, X):
        check_is_fitted(self, "booster_")
        X = validate_data(self, X, reset=False, **_X_CHECKS)
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
        task = None if self.task_ == BINARY else self.task_
        if self.calibrate:
            proba = calibrated_proba(self.loss_, raw, task=task)
        else:
            proba = self.loss_.predict_proba(raw, task=task, calibrate=False)
        if self.task_ == BINARY:
            return np.column_stack([1.0 - proba, proba])
        return proba

    def predict_log_proba(self, X):
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Labels from ``classes_`` by the loss's decision rule (see :meth:`decision_function`);
        multi-label: a 0/1 matrix (n, K) of the dtype of the training ``y``."""
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


class _LossParameterMixin:
    """``loss=`` as a constructor parameter whose own parameters are ``loss__<name>``.

    gbloss losses are immutable values: ``clone`` copies them, and ``set_params(loss__gamma=1)``
    replaces the loss by a new one with that parameter changed.
    """

    def _make_loss(self):
        if self.loss is None:
            return CrossEntropyLoss()
        if not isinstance(self.loss, _Loss):
            raise TypeError(f"loss must be None or a gbloss loss such as "
                            f"gbloss.FocalLoss(gamma=2.0), got {self.loss!r}")
        return self.loss

    def set_params(self, **params):
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


# -- XGBoost -------------------------------------------------------------------------------------

#: Constructor parameter -> XGBoost parameter.
_XGB_PARAMS = {
    "learning_rate": "eta", "max_depth": "max_depth", "max_leaves": "max_leaves",
    "min_child_weight": "min_child_weight", "max_delta_step": "max_delta_step",
    "min_split_loss": "gamma", "subsample": "subsample", "colsample_bytree": "colsample_bytree",
    "reg_alpha": "alpha", "reg_lambda": "lambda", "tree_method": "tree_method",
    "max_bin": "max_bin", "multi_strategy": "multi_strategy", "device": "device",
}
#: XGBoost names and aliases that engine_params must not repeat.
_XGB_RESERVED = {"eta", "gamma", "alpha", "lambda", "nthread", "n_jobs", "seed", "random_state",
                 "num_class", "num_boost_round", "n_estimators", "min_split_loss", "reg_alpha",
                 "reg_lambda", "learning_rate"}


class _XGBClassifier(_GBLossClassifier):
    """XGBoost engine: :func:`gbloss.xgboost.train` on a DMatrix, margins through
    :func:`gbloss.xgboost.predict_raw` (trees up to the best iteration)."""

    _MULTILABEL = True

    def __init__(self, *, calibrate=True, class_weight=None, beta=0.999, eval_metric="loss",
                 early_stopping_rounds=None, n_estimators=100, learning_rate=None,
                 max_depth=None, max_leaves=None, min_child_weight=None, max_delta_step=None,
                 min_split_loss=None, subsample=None, colsample_bytree=None, reg_alpha=None,
                 reg_lambda=None, tree_method=None, max_bin=None, multi_strategy=None,
                 n_jobs=None, random_state=None, device=None, feature_types=None,
                 engine_params=None):
        self.feature_types = feature_types
        self.calibrate = calibrate
        self.class_weight = class_weight
        self.beta = beta
        self.eval_metric = eval_metric
        self.early_stopping_rounds = early_stopping_rounds
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.max_leaves = max_leaves
        self.min_child_weight = min_child_weight
        self.max_delta_step = max_delta_step
        self.min_split_loss = min_split_loss
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.tree_method = tree_method
        self.max_bin = max_bin
        self.multi_strategy = multi_strategy
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.device = device
        self.engine_params = engine_params

    def _xgb_params(self, loss, task):
        params = self._engine_settings(loss, _XGB_PARAMS, _XGB_RESERVED)
        if self.n_jobs is not None:
            params["nthread"] = self.n_jobs
        seed = _seed(self.random_state)
        if seed is not None:
            params["seed"] = seed
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
        types = list(types)
        if len(types) != n_features or not all(t in ("q", "c", "int", "float", "i")
                                               for t in types):
            raise ValueError(f"feature_types must be None or one XGBoost feature type per "
                             f"column ('q' numeric, 'c' categorical), {n_features} in all; got "
                             f"{self.feature_types!r}")
        return types

    def _raw(self, X):
        from . import xgboost as gbx

        return gbx.predict_raw(self.booster_, X.tocsr() if sparse.issparse(X) else X)


class FocalXGBClassifier(_XGBClassifier):
    """Focal loss (:class:`gbloss.FocalLoss`) trained with XGBoost.

    Binary, multiclass (softmax focal) and native multi-label (2-D 0/1 ``y``) targets; see
    :mod:`gbloss.sklearn` for the outputs, calibration and the engine defaults.

    Parameters
    ----------
    gamma : float >= 0, default 2.0
        Focusing parameter of the loss. (XGBoost's own ``gamma`` is ``min_split_loss`` here.)
    alpha : None, float in [0, 1] or sequence, default None
        Class weight of the loss (:class:`gbloss.FocalLoss`); 0.25 in the paper.
    hessian : {"psd", "exact", "gn"}, default "psd"
    calibrate : bool, default True
        ``predict_proba`` returns calibrated P(y | x) (True) or the plain link (False).
    class_weight : None, "balanced", "effective_number" or dict {label: weight}
        Folded into the sample weights: ``"balanced"`` is ``n / (K n_c)``,
        ``"effective_number"`` the class-balanced weights of Cui et al. with ``beta``.
    beta : float in [0, 1], default 0.999
        For ``class_weight="effective_number"``.
    eval_metric : str or list of str, default "loss"
        Metric(s) on ``eval_set``: ``"loss"``, ``"average_precision"``, ``"roc_auc"``,
        ``"log_loss"``, ``"balanced_accuracy"`` (:mod:`gbloss._metrics`); early stopping follows
        the last one.
    early_stopping_rounds : int or None
        Stop when the metric on the last eval set has not improved for this many rounds;
        predictions use the best iteration (``best_iteration_``).
    n_estimators, learning_rate, max_depth, max_leaves, min_child_weight, max_delta_step,
    min_split_loss, subsample, colsample_bytree, reg_alpha, reg_lambda, tree_method, max_bin,
    multi_strategy, n_jobs, random_state, device
        XGBoost parameters as in ``xgboost.XGBClassifier``; None: the engine's default, or the
        gbloss default for focal-type losses (``min_child_weight=1e-3``, ``max_delta_step=1``).
        ``multi_strategy`` None is ``"multi_output_tree"`` for multi-label targets.
        ``n_jobs`` is the engine's thread count; gbloss's gradient kernel uses all threads
        when it runs in XGBoost's OpenMP runtime (``gbloss.xgboost.OPENMP_SHARED``), else
        runs serially on the engine's calling thread (see :class:`gbloss.xgboost.Objective`).
    feature_types : None or list of str
        One XGBoost feature type per column, ``"q"`` numeric or ``"c"`` categorical (integer
        category codes; NaN missing), as in ``xgboost.XGBClassifier``: categorical columns get
        XGBoost's native partition splits.
    engine_params : dict, optional
        Any other XGBoost parameter (``{"grow_policy": "lossguide"}``).

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_
    booster_ : xgboost.Booster
    loss_ : gbloss.Loss
        The loss trained (with logit-adjustment priors fixed from ``y``).
    task_ : {"binary", "multiclass", "multilabel"}
    evals_result_ : dict
        Metric history per eval set (``"validation_0"``, ...).
    best_iteration_ : int or None
        Best round under early stopping, else None.
    """

    def __init__(self, *, gamma=2.0, alpha=None, hessian="psd", calibrate=True,
                 class_weight=None, beta=0.999, eval_metric="loss", early_stopping_rounds=None,
                 n_estimators=100, learning_rate=None, max_depth=None, max_leaves=None,
                 min_child_weight=None, max_delta_step=None, min_split_loss=None, subsample=None,
                 colsample_bytree=None, reg_alpha=None, reg_lambda=None, tree_method=None,
                 max_bin=None, multi_strategy=None, n_jobs=None, random_state=None, device=None,
                 feature_types=None, engine_params=None):
        self.gamma = gamma
        self.alpha = alpha
        self.hessian = hessian
        super().__init__(
            calibrate=calibrate, class_weight=class_weight, beta=beta, eval_metric=eval_metric,
            early_stopping_rounds=early_stopping_rounds, n_estimators=n_estimators,
            learning_rate=learning_rate, max_depth=max_depth, max_leaves=max_leaves,
            min_child_weight=min_child_weight, max_delta_step=max_delta_step,
            min_split_loss=min_split_loss, subsample=subsample, colsample_bytree=colsample_bytree,
            reg_alpha=reg_alpha, reg_lambda=reg_lambda, tree_method=tree_method, max_bin=max_bin,
            multi_strategy=multi_strategy, n_jobs=n_jobs, random_state=random_state,
            device=device, feature_types=feature_types, engine_params=engine_params)

    def _make_loss(self):
        return FocalLoss(self.gamma, self.alpha, hessian=self.hessian)


class GBLossXGBClassifier(_LossParameterMixin, _XGBClassifier):
    """Any gbloss loss trained with XGBoost: ``GBLossXGBClassifier(gbloss.AsymmetricLoss())``.

    Parameters
    ----------
    loss : gbloss.Loss or None, default None
        :class:`~gbloss.FocalLoss`, :class:`~gbloss.AsymmetricLoss` (binary, multi-label),
        :class:`~gbloss.LogitAdjustedLoss` (binary, multiclass; ``priors=None`` takes the class
        frequencies of ``y``) or :class:`~gbloss.CrossEntropyLoss` (None). Its parameters are
        ``loss__<name>`` in ``set_params`` and ``GridSearchCV`` grids.
    calibrate, class_weight, beta, eval_metric, early_stopping_rounds, n_estimators, ...
        As in :class:`FocalXGBClassifier`.
    """

    def __init__(self, loss=None, *, calibrate=True, class_weight=None, beta=0.999,
                 eval_metric="loss", early_stopping_rounds=None, n_estimators=100,
                 learning_rate=None, max_depth=None, max_leaves=None, min_child_weight=None,
                 max_delta_step=None, min_split_loss=None, subsample=None, colsample_bytree=None,
                 reg_alpha=None, reg_lambda=None, tree_method=None, max_bin=None,
                 multi_strategy=None, n_jobs=None, random_state=None, device=None,
                 feature_types=None, engine_params=None):
        self.loss = loss
        super().__init__(
            calibrate=calibrate, class_weight=class_weight, beta=beta, eval_metric=eval_metric,
            early_stopping_rounds=early_stopping_rounds, n_estimators=n_estimators,
            learning_rate=learning_rate, max_depth=max_depth, max_leaves=max_leaves,
            min_child_weight=min_child_weight, max_delta_step=max_delta_step,
            min_split_loss=min_split_loss, subsample=subsample, colsample_bytree=colsample_bytree,
            reg_alpha=reg_alpha, reg_lambda=reg_lambda, tree_method=tree_method, max_bin=max_bin,
            multi_strategy=multi_strategy, n_jobs=n_jobs, random_state=random_state,
            device=device, feature_types=feature_types, engine_params=engine_params)


# -- LightGBM ------------------------------------------------------------------------------------

#: Constructor parameter -> LightGBM parameter.
_LGBM_PARAMS = {
    "learning_rate": "learning_rate", "num_leaves": "num_leaves", "max_depth": "max_depth",
    "min_child_samples": "min_data_in_leaf", "min_child_weight": "min_sum_hessian_in_leaf",
    "max_delta_step": "max_delta_step", "min_split_gain": "min_gain_to_split",
    "subsample": "bagging_fraction", "subsample_freq": "bagging_freq",
    "colsample_bytree": "feature_fraction", "reg_alpha": "lambda_l1", "reg_lambda": "lambda_l2",
    "max_bin": "max_bin", "device": "device_type",
}
#: LightGBM names and aliases that engine_params must not repeat.
_LGBM_RESERVED = {
    "eta", "shrinkage_rate", "num_leaf", "max_leaves", "max_leaf", "min_data_in_leaf",
    "min_data_per_leaf", "min_data", "min_sum_hessian_in_leaf", "min_sum_hessian",
    "min_sum_hessian_per_leaf", "min_hessian", "max_tree_output", "max_leaf_output",
    "min_gain_to_split", "min_split_gain", "bagging_fraction", "sub_row", "bagging",
    "bagging_freq", "feature_fraction", "sub_feature", "lambda_l1", "l1_regularization",
    "lambda_l2", "lambda", "l2_regularization", "device_type", "num_threads", "num_thread",
    "nthread", "nthreads", "n_jobs", "seed", "random_seed", "random_state", "num_class",
    "num_classes", "num_iterations", "num_iteration", "n_iter", "num_tree", "num_trees",
    "num_round", "num_rounds", "nrounds", "num_boost_round", "n_estimators", "max_iter",
}
_LGBM_FOCAL_DEFAULTS = {"min_child_weight": 1e-3, "max_delta_step": 1.0, "reg_lambda": 1e-3}


class _LGBMClassifier(_GBLossClassifier):
    """LightGBM engine: :func:`gbloss.lightgbm.train` on a Dataset, margins through
    :func:`gbloss.lightgbm.predict_raw` (trees up to the best iteration)."""

    def __init__(self, *, calibrate=True, class_weight=None, beta=0.999, eval_metric="loss",
                 early_stopping_rounds=None, n_estimators=100, learning_rate=None,
                 num_leaves=None, max_depth=None, min_child_samples=None, min_child_weight=None,
                 max_delta_step=None, min_split_gain=None, subsample=None, subsample_freq=None,
                 colsample_bytree=None, reg_alpha=None, reg_lambda=None, max_bin=None,
                 n_jobs=None, random_state=None, device=None, engine_params=None):
        self.calibrate = calibrate
        self.class_weight = class_weight
        self.beta = beta
        self.eval_metric = eval_metric
        self.early_stopping_rounds = early_stopping_rounds
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.min_child_weight = min_child_weight
        self.max_delta_step = max_delta_step
        self.min_split_gain = min_split_gain
        self.subsample = subsample
        self.subsample_freq = subsample_freq
        self.colsample_bytree = colsample_bytree
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.device = device
        self.engine_params = engine_params

    def _focal_defaults(self):
        return _LGBM_FOCAL_DEFAULTS

    def _lgbm_params(self, loss, task):
        params = {"verbosity": -1}
        params.update(self._engine_settings(loss, _LGBM_PARAMS, _LGBM_RESERVED))
        if self.n_jobs is not None:
            params["num_threads"] = self.n_jobs
        seed = _seed(self.random_state)
        if seed is not None:
            params["seed"] = seed
        if task == MULTICLASS:
            params["num_class"] = len(self.classes_)
        return params

    def _fit_engine(self, X, y, weight, loss, task, evals, verbose):
        import lightgbm

        from . import lightgbm as gbl

        params = self._lgbm_params(loss, task)
        dtrain = lightgbm.Dataset(X, label=y, weight=weight,
                                  params={"verbosity": -1, "feature_pre_filter": False})
        valid = [lightgbm.Dataset(X_val, label=y_val, weight=w_val, reference=dtrain)
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


class FocalLGBMClassifier(_LGBMClassifier):
    """Focal loss (:class:`gbloss.FocalLoss`) trained with LightGBM.

    Binary and multiclass (softmax focal) targets; multi-label through
    ``OneVsRestClassifier(FocalLGBMClassifier())``. Parameters as in
    :class:`FocalXGBClassifier`, with LightGBM's engine parameters (named as in
    ``lightgbm.LGBMClassifier``): ``n_estimators, learning_rate, num_leaves, max_depth,
    min_child_samples, min_child_weight, max_delta_step, min_split_gain, subsample,
    subsample_freq, colsample_bytree, reg_alpha, reg_lambda, max_bin, n_jobs, random_state,
    device``; None is LightGBM's default, or for focal-type losses ``min_child_weight=1e-3``,
    ``max_delta_step=1``, ``reg_lambda=1e-3``. ``engine_params``: any other LightGBM parameter.
    Early stopping watches every eval set. ``best_iteration_`` counts from 0 like XGBoost's.
    """

    def __init__(self, *, gamma=2.0, alpha=None, hessian="psd", calibrate=True,
                 class_weight=None, beta=0.999, eval_metric="loss", early_stopping_rounds=None,
                 n_estimators=100, learning_rate=None, num_leaves=None, max_depth=None,
                 min_child_samples=None, min_child_weight=None, max_delta_step=None,
                 min_split_gain=None, subsample=None, subsample_freq=None,
                 colsample_bytree=None, reg_alpha=None, reg_lambda=None, max_bin=None,
                 n_jobs=None, random_state=None, device=None, engine_params=None):
        self.gamma = gamma
        self.alpha = alpha
        self.hessian = hessian
        super().__init__(
            calibrate=calibrate, class_weight=class_weight, beta=beta, eval_metric=eval_metric,
            early_stopping_rounds=early_stopping_rounds, n_estimators=n_estimators,
            learning_rate=learning_rate, num_leaves=num_leaves, max_depth=max_depth,
            min_child_samples=min_child_samples, min_child_weight=min_child_weight,
            max_delta_step=max_delta_step, min_split_gain=min_split_gain, subsample=subsample,
            subsample_freq=subsample_freq, colsample_bytree=colsample_bytree,
            reg_alpha=reg_alpha, reg_lambda=reg_lambda, max_bin=max_bin, n_jobs=n_jobs,
            random_state=random_state, device=device, engine_params=engine_params)

    def _make_loss(self):
        return FocalLoss(self.gamma, self.alpha, hessian=self.hessian)


class GBLossLGBMClassifier(_LossParameterMixin, _LGBMClassifier):
    """Any gbloss loss trained with LightGBM: ``GBLossLGBMClassifier(gbloss.AsymmetricLoss())``.

    ``loss`` as in :class:`GBLossXGBClassifier` (multi-label through ``OneVsRestClassifier``);
    the other parameters as in :class:`FocalLGBMClassifier`.
    """

    def __init__(self, loss=None, *, calibrate=True, class_weight=None, beta=0.999,
                 eval_metric="loss", early_stopping_rounds=None, n_estimators=100,
                 learning_rate=None, num_leaves=None, max_depth=None, min_child_samples=None,
                 min_child_weight=None, max_delta_step=None, min_split_gain=None,
                 subsample=None, subsample_freq=None, colsample_bytree=None, reg_alpha=None,
                 reg_lambda=None, max_bin=None, n_jobs=None, random_state=None, device=None,
                 engine_params=None):
        self.loss = loss
        super().__init__(
            calibrate=calibrate, class_weight=class_weight, beta=beta, eval_metric=eval_metric,
            early_stopping_rounds=early_stopping_rounds, n_estimators=n_estimators,
            learning_rate=learning_rate, num_leaves=num_leaves, max_depth=max_depth,
            min_child_samples=min_child_samples, min_child_weight=min_child_weight,
            max_delta_step=max_delta_step, min_split_gain=min_split_gain, subsample=subsample,
            subsample_freq=subsample_freq, colsample_bytree=colsample_bytree,
            reg_alpha=reg_alpha, reg_lambda=reg_lambda, max_bin=max_bin, n_jobs=n_jobs,
            random_state=random_state, device=device, engine_params=engine_params)
