"""gbloss.sklearn: the scikit-learn contract (estimator checks, clone, pickling, pipelines, grid
search, pandas, labels), outputs, calibration, weights, early stopping, multi-label, bad input.

Small data, few trees, one engine thread (OpenMP barriers between two threads on a loaded
2-core machine make tiny fits many times slower)."""

import json
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
from scipy import special
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.exceptions import NotFittedError
from sklearn.metrics import average_precision_score, log_loss
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

import gbloss
import gbloss.lightgbm as gbl
import gbloss.xgboost as gbx
from gbloss.calibration import calibrated_proba
from gbloss.sklearn import (
    FocalLGBMClassifier,
    FocalXGBClassifier,
    GBLossLGBMClassifier,
    GBLossXGBClassifier,
)

FAST = {"n_estimators": 5, "n_jobs": 1}
#: Per engine: (focal estimator, generic estimator).
ENGINES = {"xgb": (FocalXGBClassifier, GBLossXGBClassifier),
           "lgbm": (FocalLGBMClassifier, GBLossLGBMClassifier)}
LOSSES = {
    "focal": lambda: gbloss.FocalLoss(2.0, 0.25),
    "ce": lambda: gbloss.CrossEntropyLoss(),
    "asl": lambda: gbloss.AsymmetricLoss(),
    "la": lambda: gbloss.LogitAdjustedLoss(),
}
engines = pytest.mark.parametrize("engine", list(ENGINES))


def focal(engine, **params):
    return ENGINES[engine][0](**{**FAST, **params})


def generic(engine, loss=None, **params):
    return ENGINES[engine][1](loss, **{**FAST, **params})


def binary_data(n=300, seed=0, weights=(0.85,)):
    return make_classification(n, 6, n_informative=4, weights=list(weights), random_state=seed)


def multiclass_data(n=300, seed=0):
    return make_classification(n, 6, n_informative=4, n_classes=3, n_clusters_per_class=1,
                               weights=[0.6, 0.3, 0.1], random_state=seed)


# -- scikit-learn's estimator checks ---------------------------------------------------------

WEIGHT_EQUIVALENCE = (
    "XGBoost keeps gradient pairs in float32: a row of weight 3 contributes float32(3 g), three "
    "copies 3 float32(g), so the two fits differ at float32 rounding (relative ~2e-7 against "
    "rtol 1e-7). Plain XGBClassifier fails the same check on 8 of 20 seeds; with weights that "
    "are powers of two both fits agree exactly (test_sample_weight_is_repetition).")
ASL_PROBA_RULE = (
    "predict is ASL's own decision rule, the sign of the raw score (consistent with "
    "decision_function), while the calibrated predict_proba estimates P(y|x), which ASL's "
    "asymmetric focusing shifts: argmax(predict_proba) != predict by design. With "
    "calibrate=False the check passes (estimator listed separately).")


LGBM_WEIGHT_EQUIVALENCE = (
    "LightGBM's own reason (lightgbm.LGBMClassifier marks the same check as expected to fail): "
    "a row of weight 0 still counts in count-based limits such as min_data_in_leaf, which "
    "LightGBM checks on row counts estimated from Hessian sums, and in the feature binning, so "
    "weights are not repetition; the built-in objective fails the check too. With those limits "
    "off, weights are repetition (test_sample_weight_is_repetition).")


def _expected_failures(estimator):
    failures = {}
    if isinstance(estimator, FocalXGBClassifier | GBLossXGBClassifier):
        failures["check_sample_weight_equivalence_on_dense_data"] = WEIGHT_EQUIVALENCE
        failures["check_sample_weight_equivalence_on_sparse_data"] = WEIGHT_EQUIVALENCE
    if isinstance(estimator, FocalLGBMClassifier | GBLossLGBMClassifier):
        failures["check_sample_weight_equivalence_on_dense_data"] = LGBM_WEIGHT_EQUIVALENCE
        failures["check_sample_weight_equivalence_on_sparse_data"] = LGBM_WEIGHT_EQUIVALENCE
    if isinstance(getattr(estimator, "loss", None), gbloss.AsymmetricLoss) \
            and estimator.calibrate:
        failures["check_classifiers_train"] = ASL_PROBA_RULE
    return failures


#: LightGBM's default learning rate 0.1 (XGBoost's: 0.3) moves five trees too little from the
#: asymmetric loss's start for check_classifiers_train's accuracy bar of 0.83.
CHECK_RATE = {GBLossLGBMClassifier: {"learning_rate": 0.3}}
CHECKED = [
    est(**FAST) for est in (FocalXGBClassifier, GBLossXGBClassifier, FocalLGBMClassifier,
                            GBLossLGBMClassifier)
] + [
    est(loss, calibrate=calibrate, **FAST, **CHECK_RATE.get(est, {}))
    for est in (GBLossXGBClassifier, GBLossLGBMClassifier)
    for loss, calibrate in ((gbloss.AsymmetricLoss(), True), (gbloss.AsymmetricLoss(), False),
                            (gbloss.LogitAdjustedLoss(), True))
]


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# -- parameters, clone, pickling ---------------------------------------------------------------


@engines
def test_loss_parameters_are_nested_and_settable(engine):
    clf = generic(engine, gbloss.AsymmetricLoss(gamma_neg=4.0))
    params = clf.get_params()
    assert params["loss__gamma_neg"] == 4.0 and params["loss__clip"] == 0.05
    copy = clone(clf)
    assert copy.loss == clf.loss and copy.loss is not clf.loss
    clf.set_params(loss__gamma_neg=2.0, n_estimators=7)
    assert clf.loss == gbloss.AsymmetricLoss(gamma_neg=2.0) and clf.n_estimators == 7
    assert copy.loss.gamma_neg == 4.0  # the clone did not share the loss
    generic(engine).set_params(loss__alpha=0.3)  # the default loss, cross-entropy
    with pytest.raises(ValueError, match=r"invalid loss parameter\(s\) \['gama'\]"):
        clf.set_params(loss__gama=1.0)


#: The constructor parameters of each engine's estimators besides the loss's.
SHARED = {"calibrate", "cost_matrix", "class_weight", "beta", "eval_metric",
          "early_stopping_rounds", "validation_fraction", "n_estimators", "learning_rate",
          "max_depth", "min_child_weight",
          "max_delta_step", "subsample", "colsample_bytree", "reg_alpha", "reg_lambda",
          "max_bin", "n_jobs", "random_state", "device", "engine_params"}
ENGINE_PARAMETERS = {
    "xgb": SHARED | {"max_leaves", "min_split_loss", "tree_method", "multi_strategy",
                     "feature_types"},
    "lgbm": SHARED | {"num_leaves", "min_child_samples", "min_split_gain", "subsample_freq"},
}


@engines
def test_one_estimator_per_engine_and_focal_subclasses(engine):
    focal_cls, generic_cls = ENGINES[engine]
    assert issubclass(focal_cls, generic_cls)
    assert set(generic_cls().get_params()) == ENGINE_PARAMETERS[engine] | {"loss"}
    assert set(focal_cls().get_params()) == ENGINE_PARAMETERS[engine] | {"gamma", "alpha",
                                                                         "hessian"}
    defaults = focal_cls().get_params()
    assert (defaults["gamma"], defaults["alpha"], defaults["hessian"]) == (2.0, None, "psd")
    assert defaults["n_estimators"] == 100 and defaults["validation_fraction"] == 0.1
    assert generic_cls(gbloss.FocalLoss()).loss == gbloss.FocalLoss()  # loss is positional
    with pytest.raises(TypeError):
        focal_cls(2.0)  # the focal parameters are keyword-only
    with pytest.raises(ValueError, match="Invalid parameter 'loss'"):
        focal_cls().set_params(loss__gamma=1.0)
    X, y = multiclass_data()
    flat = focal(engine, gamma=1.0, alpha=[0.2, 0.3, 0.5], hessian="exact").fit(X, y)
    nested = generic(engine, gbloss.FocalLoss(1.0, [0.2, 0.3, 0.5], hessian="exact")).fit(X, y)
    np.testing.assert_array_equal(flat.predict_proba(X), nested.predict_proba(X))
    assert flat.loss_ == nested.loss_


def _documented_parameters(doc):
    """Names in the headers (``name : type`` or ``a, b, c``) of a numpydoc Parameters section."""
    section = doc.split("Parameters\n    ----------\n")[1].split("\n    Attributes\n")[0]
    headers = [line.split(" : ")[0] for line in section.splitlines()
               if line.startswith("    ") and not line.startswith("     ")]
    return {name.strip() for header in headers for name in header.split(",")}


@engines
def test_every_parameter_is_documented(engine):
    for cls in ENGINES[engine]:
        assert _documented_parameters(cls.__doc__) == set(cls().get_params()), cls.__name__


class _ShallowTrees(gbloss.CrossEntropyLoss):
    """Cross-entropy whose engine defaults grow stumps."""

    def engine_defaults(self, engine):
        return {"max_depth": 1} if engine == "xgboost" else {"num_leaves": 2}


@engines
def test_engine_defaults_come_from_the_loss(engine):
    X, y = binary_data()
    clf = generic(engine, _ShallowTrees()).fit(X, y)
    assert _leaves_per_tree(clf) == [2] * FAST["n_estimators"]
    deeper = {"max_depth": 3} if engine == "xgb" else {"num_leaves": 8}
    clf = generic(engine, _ShallowTrees(), **deeper).fit(X, y)  # a value given wins
    assert max(_leaves_per_tree(clf)) > 2


def _leaves_per_tree(clf):
    if isinstance(clf, GBLossXGBClassifier):
        return [tree.count("leaf=") for tree in clf.booster_.get_dump()]
    return [tree["num_leaves"] for tree in clf.booster_.dump_model()["tree_info"]]


@engines
def test_unknown_parameters_name_the_argument(engine):
    with pytest.raises(TypeError, match="gama"):
        ENGINES[engine][0](gama=1.0)
    with pytest.raises(ValueError, match="Invalid parameter 'gama'"):
        focal(engine).set_params(gama=1.0)
    with pytest.raises(TypeError, match="loss must be None or a gbloss loss"):
        generic(engine, "focal").fit(*binary_data())


@engines
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_pickle_and_joblib_round_trips_predict_the_same(engine, task, tmp_path):
    X, y = binary_data() if task == "binary" else multiclass_data()
    clf = generic(engine, gbloss.LogitAdjustedLoss()).fit(X, y)
    expected = clf.predict_proba(X)
    restored = pickle.loads(pickle.dumps(clf))
    joblib.dump(clf, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    for other in (restored, loaded):
        np.testing.assert_array_equal(other.predict_proba(X), expected)
        np.testing.assert_array_equal(other.predict(X), clf.predict(X))
        assert other.loss_ == clf.loss_  # priors fixed at fit travel with the model


def test_pickled_multilabel_estimator_predicts_the_same():
    X, Y = make_multilabel_classification(120, 5, n_classes=3, random_state=0)
    clf = focal("xgb").fit(X, Y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


# -- pipelines, grid search, cross-validation, pandas, labels --------------------------------


@engines
def test_pipeline_cross_val_score_and_grid_search(engine):
    X, y = binary_data()
    pipe = make_pipeline(StandardScaler(), focal(engine))
    scores = cross_val_score(pipe, X, y, cv=3, scoring="neg_log_loss")
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    search = GridSearchCV(focal(engine), {"gamma": [0.0, 2.0], "alpha": [0.25, 0.5]}, cv=2,
                          scoring="average_precision").fit(X, y)
    assert search.best_params_["gamma"] in (0.0, 2.0)
    assert 0.5 < search.best_score_ <= 1.0


@engines
def test_grid_search_over_losses_and_their_parameters(engine):
    X, y = binary_data()
    grid = [{"loss": [gbloss.FocalLoss(), gbloss.CrossEntropyLoss()]},
            {"loss": [gbloss.AsymmetricLoss()], "loss__gamma_neg": [1.0, 4.0]}]
    search = GridSearchCV(generic(engine), grid, cv=2, scoring="roc_auc").fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert isinstance(search.best_estimator_.loss_, gbloss.Loss)


@engines
def test_pandas_feature_names(engine):
    X, y = binary_data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    clf = focal(engine).fit(frame, pd.Series(y))
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    assert clf.n_features_in_ == X.shape[1]
    np.testing.assert_array_equal(clf.predict_proba(frame),
                                  focal(engine).fit(X, y).predict_proba(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame.rename(columns={"f0": "other"}))


@engines
@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"]), np.array([-3, 7, 40])],
                         ids=["strings", "sparse-ints"])
def test_string_and_non_contiguous_labels(engine, labels):
    X, y = multiclass_data()
    y_named = labels[y]
    clf = focal(engine).fit(X, y_named)
    np.testing.assert_array_equal(clf.classes_, labels)
    assert set(clf.predict(X)) <= set(labels)
    reference = focal(engine).fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))
    np.testing.assert_array_equal(clf.predict(X), labels[reference.predict(X)])
    binary = focal(engine).fit(X[y < 2], y_named[y < 2])
    assert binary.predict_proba(X).shape == (X.shape[0], 2)
    assert set(binary.predict(X)) <= set(labels[:2])


# -- outputs -------------------------------------------------------------------------------------


@engines
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_outputs_have_the_right_shapes_and_agree(engine, task):
    X, y = binary_data() if task == "binary" else multiclass_data()
    clf = focal(engine, calibrate=False).fit(X, y)
    proba, scores, pred = clf.predict_proba(X), clf.decision_function(X), clf.predict(X)
    k = len(clf.classes_)
    assert proba.shape == (len(y), k) and np.all((proba > 0) & (proba < 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    if task == "binary":
        assert scores.shape == (len(y),)
        np.testing.assert_allclose(proba[:, 1], special.expit(scores), rtol=1e-12)
        np.testing.assert_array_equal(pred, clf.classes_[(scores > 0).astype(int)])
    else:
        assert scores.shape == (len(y), k)
        np.testing.assert_allclose(proba, special.softmax(scores, axis=1), rtol=1e-12)
        np.testing.assert_array_equal(pred, clf.classes_[np.argmax(scores, axis=1)])
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))


@engines
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_predict_proba_includes_the_start(engine, task):
    """With a negligible learning rate the model is its start: cross-entropy's start gives the
    class frequencies."""
    X, y = binary_data() if task == "binary" else multiclass_data()
    clf = generic(engine, learning_rate=1e-10).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), np.tile(np.bincount(y) / len(y), (len(y), 1)),
                               rtol=1e-6)


@engines
def test_logit_adjusted_predict_is_the_balanced_rule(engine):
    X, y = make_classification(600, 6, n_informative=4, n_classes=3, n_clusters_per_class=1,
                               weights=[0.75, 0.2, 0.05], class_sep=0.7, flip_y=0.05,
                               random_state=0)
    X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=0.5, random_state=0, stratify=y)
    clf = generic(engine, gbloss.LogitAdjustedLoss(), n_estimators=30).fit(X_tr, y_tr)
    raw = clf.decision_function(X_te)
    priors = np.bincount(y_tr) / len(y_tr)
    np.testing.assert_allclose(clf.loss_.priors, priors)
    # the probabilities estimate P(y|x) under the training priors: softmax(raw + log pi) ...
    proba = clf.predict_proba(X_te)
    np.testing.assert_allclose(proba, special.softmax(raw + np.log(priors), 1), rtol=1e-10)
    # ... while predict is the argmax of raw alone: the balanced-error rule, which moves
    # decisions towards the rare classes
    pred = clf.predict(X_te)
    np.testing.assert_array_equal(pred, np.argmax(raw, axis=1))
    bayes = np.argmax(proba, axis=1)
    assert np.any(pred != bayes)
    assert np.sum(pred == 2) > np.sum(bayes == 2)


@engines
def test_posthoc_logit_adjustment_shifts_the_decision_scores(engine):
    X, y = binary_data()
    clf = generic(engine, gbloss.LogitAdjustedLoss(posthoc=True)).fit(X, y)
    engine_module = gbx if engine == "xgb" else gbl
    raw = engine_module.predict_raw(clf.booster_, X).astype(np.float64)
    log_odds = np.log(np.mean(y) / (1 - np.mean(y)))
    np.testing.assert_allclose(clf.decision_function(X), raw - log_odds, rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(X)[:, 1], special.expit(raw), rtol=1e-12)


# -- calibration ----------------------------------------------------------------------------------


@engines
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_calibrate_switches_between_calibrated_and_plain_link(engine, task):
    X, y = binary_data() if task == "binary" else multiclass_data()
    clf = focal(engine).fit(X, y)
    raw = clf.decision_function(X)
    link_task = None if task == "binary" else task
    calibrated = calibrated_proba(clf.loss_, raw, task=link_task)
    plain = clf.loss_.predict_proba(raw, task=link_task, calibrate=False)
    got = clf.predict_proba(X)
    np.testing.assert_allclose(got[:, 1] if task == "binary" else got, calibrated, rtol=1e-12)
    got = clf.set_params(calibrate=False).predict_proba(X)  # no refit needed
    np.testing.assert_allclose(got[:, 1] if task == "binary" else got, plain, rtol=1e-12)
    assert not np.allclose(calibrated, plain, rtol=1e-3)


@engines
def test_calibrated_focal_probabilities_have_lower_log_loss(engine):
    """Focal loss trains under-confident margins; the calibrated map sharpens them."""
    X, y = make_classification(2000, 6, n_informative=4, weights=[0.7], flip_y=0.1,
                               random_state=0)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.5, random_state=0)
    clf = focal(engine, n_estimators=30, learning_rate=0.3, max_depth=3).fit(X_tr, y_tr)
    calibrated = log_loss(y_te, clf.predict_proba(X_te))
    plain = log_loss(y_te, clf.set_params(calibrate=False).predict_proba(X_te))
    assert calibrated < plain - 0.05


# -- weights --------------------------------------------------------------------------------------


@engines
def test_sample_weight_is_repetition(engine):
    """Weights that are powers of two are exact in float32 gradient sums."""
    X, y = multiclass_data(120)
    rng = np.random.default_rng(0)
    w = rng.choice([1, 2, 4], size=len(y))
    rep = np.repeat(np.arange(len(y)), w)
    # LightGBM bins features from the rows it sees (min_data_in_bin=1: the same bins) and
    # checks min_data_in_leaf on row counts it estimates from Hessian sums, which weights and
    # repetition change differently (min_child_samples=0: no count limit). With both, its
    # built-in multiclass objective is exact. Focal gradients span many orders of magnitude, so
    # LightGBM's histogram sums (and its parent-minus-sibling histograms) round differently
    # for a row of weight 4 and four copies: gbloss agrees to 2e-5 in probability.
    if engine == "lgbm":
        weighted = focal(engine, min_child_samples=0, engine_params={"min_data_in_bin": 1})
    else:
        weighted = focal(engine)
    repeated = clone(weighted)
    weighted.fit(X, y, sample_weight=w)
    repeated.fit(X[rep], y[rep])
    tolerance = {"rtol": 1e-6} if engine == "xgb" else {"rtol": 0, "atol": 1e-4}
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), **tolerance)
    unweighted = clone(weighted).fit(X, y)
    assert not np.allclose(weighted.predict_proba(X), unweighted.predict_proba(X), rtol=1e-3)


@engines
@pytest.mark.parametrize("class_weight", ["balanced", "effective_number", {0: 1.0, 1: 5.0}])
def test_class_weight_folds_into_sample_weight(engine, class_weight):
    X, y = binary_data()
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    if class_weight == "balanced":
        expected = gbloss.inverse_frequency_weights(y)
    elif class_weight == "effective_number":
        expected = gbloss.class_balanced_weights(y, beta=0.99)
    else:
        expected = compute_sample_weight(class_weight, y)
    got = focal(engine, class_weight=class_weight, beta=0.99).fit(X, y, sample_weight=sw)
    ref = focal(engine).fit(X, y, sample_weight=sw * expected)
    np.testing.assert_array_equal(got.predict_proba(X), ref.predict_proba(X))


@engines
def test_class_weight_dict_takes_original_labels(engine):
    X, y = binary_data()
    labels = np.array(["no", "yes"])[y]
    got = focal(engine, class_weight={"yes": 4.0}).fit(X, labels)
    ref = focal(engine).fit(X, y, sample_weight=np.where(y == 1, 4.0, 1.0))
    np.testing.assert_array_equal(got.predict_proba(X), ref.predict_proba(X))
    with pytest.raises(ValueError, match="class_weight"):
        focal(engine, class_weight={"maybe": 2.0}).fit(X, labels)


# -- early stopping -------------------------------------------------------------------------------


@engines
@pytest.mark.parametrize("metric", ["loss", "average_precision"])
def test_early_stopping_uses_the_best_iteration(engine, metric):
    X, y = binary_data(400, seed=2, weights=(0.8,))
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.5, random_state=0)
    clf = focal(engine, n_estimators=200, learning_rate=0.5, eval_metric=metric,
                early_stopping_rounds=5).fit(X_tr, y_tr, eval_set=[(X_va, y_va)])
    best = clf.best_iteration_
    (history,) = clf.evals_result_["validation_0"].values()
    assert best is not None and best < len(history) - 1 < 199
    pick = np.argmax if metric == "average_precision" else np.argmin
    assert pick(history) == best
    if engine == "xgb":
        raw = gbx.predict_raw(clf.booster_, X_va, iteration_range=(0, best + 1))
        all_trees = gbx.predict_raw(clf.booster_, X_va, iteration_range=(0, len(history)))
        assert not np.allclose(raw, all_trees)
    else:  # lightgbm.train keeps only the trees up to the best iteration
        assert clf.booster_.current_iteration() == best + 1
        raw = clf.booster_.predict(X_va, raw_score=True)
    np.testing.assert_allclose(clf.decision_function(X_va), raw, rtol=1e-6)
    if metric == "average_precision":  # the recorded value is sklearn's on the probabilities
        proba = clf.set_params(calibrate=False).predict_proba(X_va)[:, 1]
        ap = average_precision_score(y_va, proba)
        assert history[best] == pytest.approx(ap, abs=1e-6)


@engines
def test_eval_set_labels_are_encoded_like_y(engine):
    X, y = binary_data()
    names = np.array(["neg", "pos"])
    clf = focal(engine, eval_metric="log_loss").fit(X, names[y], eval_set=[(X, names[y])])
    (history,) = clf.evals_result_["validation_0"].values()
    expected = log_loss(y, clf.set_params(calibrate=False).predict_proba(X))
    assert history[-1] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"eval_set\[0\] y holds labels not seen in y"):
        focal(engine).fit(X, names[y], eval_set=[(X, np.array(["neg", "other"])[y])])


@engines
def test_early_stopping_needs_an_eval_set_or_a_validation_fraction(engine):
    with pytest.raises(ValueError, match="early_stopping_rounds needs an eval_set"):
        focal(engine, early_stopping_rounds=3, validation_fraction=None).fit(*binary_data())


# -- engine parameters ----------------------------------------------------------------------------


def _xgb_config(clf):
    return json.loads(clf.booster_.save_config())["learner"]["gradient_booster"]["tree_train_param"]


def test_xgboost_parameters_pass_through_with_focal_defaults():
    X, y = binary_data()
    config = _xgb_config(focal("xgb").fit(X, y))
    assert float(config["min_child_weight"]) == pytest.approx(1e-3, rel=1e-6)
    assert float(config["max_delta_step"]) == 1.0
    clf = focal("xgb", n_estimators=4, max_depth=1, min_child_weight=2.0, reg_lambda=3.0,
                min_split_loss=0.5, engine_params={"grow_policy": "lossguide"}).fit(X, y)
    config = _xgb_config(clf)
    assert float(config["min_child_weight"]) == 2.0 and float(config["reg_lambda"]) == 3.0
    assert float(config["gamma"]) == 0.5 and config["grow_policy"] == "lossguide"
    assert clf.booster_.num_boosted_rounds() == 4
    assert all(tree.count("leaf=") <= 2 for tree in clf.booster_.get_dump())
    config = _xgb_config(generic("xgb").fit(X, y))  # cross-entropy keeps XGBoost's defaults
    assert float(config["min_child_weight"]) == 1.0 and float(config["max_delta_step"]) == 0.0


def test_lightgbm_parameters_pass_through_with_focal_defaults():
    X, y = binary_data()
    params = focal("lgbm").fit(X, y).booster_.params
    assert params["min_sum_hessian_in_leaf"] == 1e-3 and params["max_delta_step"] == 1.0
    assert params["lambda_l2"] == 1e-3
    clf = focal("lgbm", n_estimators=4, num_leaves=2, reg_lambda=3.0,
                engine_params={"extra_trees": True}).fit(X, y)
    params = clf.booster_.params
    assert params["lambda_l2"] == 3.0 and params["extra_trees"] is True
    assert clf.booster_.num_trees() == 4
    assert all(t["num_leaves"] <= 2 for t in clf.booster_.dump_model()["tree_info"])
    assert "max_delta_step" not in generic("lgbm").fit(X, y).booster_.params


@engines
def test_engine_params_cannot_repeat_constructor_parameters(engine):
    key = "eta" if engine == "xgb" else "shrinkage_rate"
    with pytest.raises(ValueError, match=rf"engine_params repeats \['{key}'\]"):
        focal(engine, engine_params={key: 0.1}).fit(*binary_data())


# -- multi-label ----------------------------------------------------------------------------------


def _multilabel(seed=0):
    X, Y = make_multilabel_classification(600, 10, n_classes=5, n_labels=2, random_state=seed)
    return train_test_split(X, Y, test_size=0.5, random_state=0)


@engines
def test_one_vs_rest_fits_multilabel_targets(engine):
    X_tr, X_te, Y_tr, Y_te = _multilabel()
    ovr = OneVsRestClassifier(focal(engine)).fit(X_tr, Y_tr)
    proba = ovr.predict_proba(X_te)
    assert proba.shape == Y_te.shape and np.all((proba > 0) & (proba < 1))
    assert average_precision_score(Y_te, proba, average="macro") > 0.5


@pytest.mark.parametrize("loss", [gbloss.FocalLoss(), gbloss.AsymmetricLoss()],
                         ids=["focal", "asl"])
def test_native_multilabel_is_not_worse_than_one_vs_rest(loss):
    """Same split, trees, learning rate and depth; the native estimator grows multi-output
    trees over the label matrix, one-vs-rest one model per label."""
    X_tr, X_te, Y_tr, Y_te = _multilabel()
    budget = {"n_estimators": 50, "learning_rate": 0.1, "max_depth": 3, "n_jobs": 1}
    native = GBLossXGBClassifier(loss, **budget).fit(X_tr, Y_tr)
    ovr = OneVsRestClassifier(GBLossXGBClassifier(loss, **budget)).fit(X_tr, Y_tr)
    proba = native.predict_proba(X_te)
    assert proba.shape == Y_te.shape
    ap_native = average_precision_score(Y_te, proba, average="macro")
    ap_ovr = average_precision_score(Y_te, ovr.predict_proba(X_te), average="macro")
    assert ap_native >= ap_ovr


def test_native_multilabel_outputs():
    X_tr, X_te, Y_tr, _ = _multilabel()
    clf = FocalXGBClassifier(**FAST).fit(X_tr, Y_tr.astype(np.int8))
    assert clf.task_ == "multilabel" and list(clf.classes_) == list(range(Y_tr.shape[1]))
    pred, scores = clf.predict(X_te), clf.decision_function(X_te)
    assert pred.dtype == np.int8 and pred.shape == (len(X_te), Y_tr.shape[1])
    np.testing.assert_array_equal(pred, scores > 0)
    plain = clf.set_params(calibrate=False).predict_proba(X_te)
    np.testing.assert_allclose(plain, special.expit(scores), rtol=1e-12)


# -- bad input ------------------------------------------------------------------------------------


@engines
def test_bad_labels_get_clear_errors(engine):
    X, y = binary_data()
    with pytest.raises(ValueError, match="y has only one class"):
        focal(engine).fit(X, np.zeros(len(y)))
    y_nan = y.astype(float)
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match="Input y contains NaN"):
        focal(engine).fit(X, y_nan)
    _, y3 = multiclass_data()
    with pytest.raises(ValueError, match="Only binary classification is supported by "
                                         "AsymmetricLoss"):
        generic(engine, gbloss.AsymmetricLoss()).fit(X, y3)


@engines
def test_multilabel_input_to_a_binary_or_multiclass_loss(engine):
    X_tr, _, Y_tr, _ = _multilabel()
    with pytest.raises(ValueError, match="LogitAdjustedLoss does not support"):
        generic(engine, gbloss.LogitAdjustedLoss()).fit(X_tr, Y_tr)
    if engine == "lgbm":
        with pytest.raises(ValueError, match=r"OneVsRestClassifier\(FocalLGBMClassifier"):
            focal(engine).fit(X_tr, Y_tr)
    with pytest.raises(ValueError, match="class_weight does not apply to multi-label"):
        GBLossXGBClassifier(class_weight="balanced", **FAST).fit(X_tr, Y_tr)


@engines
@pytest.mark.parametrize(("params", "match"), [
    ({"class_weight": "inverse"}, "class_weight must be"),
    ({"eval_metric": "auc"}, "eval_metric must be one of"),
    ({"early_stopping_rounds": 0}, "early_stopping_rounds must be"),
    ({"n_estimators": 0}, "n_estimators must be"),
    ({"calibrate": "yes"}, "calibrate must be"),
    ({"engine_params": ["max_bin"]}, "engine_params must be"),
    ({"gamma": -1.0}, "gamma must be >= 0"),
    ({"alpha": 2.0}, "alpha must lie in"),
    ({"hessian": "diag"}, "hessian must be one of"),
    ({"calibrate": 1}, "calibrate must be True or False"),
    ({"n_estimators": True}, "n_estimators must be an integer"),
    ({"early_stopping_rounds": True}, "early_stopping_rounds must be None or an integer"),
    ({"learning_rate": "0.1"}, "learning_rate must be None or a number"),
    ({"max_depth": 2.5}, "max_depth must be None or an integer"),
    ({"n_jobs": 1.5}, "n_jobs must be None or an integer"),
    ({"device": 0}, "device must be None or a string"),
    ({"beta": True}, "beta must be a number in"),
    ({"random_state": "seed"}, "random_state must be None, an integer"),
    ({"class_weight": {0: -1.0}}, "class_weight must give each class a finite weight >= 0"),
    ({"class_weight": {0: float("nan")}}, "class_weight must give each class a finite weight"),
])
def test_bad_parameters_name_the_argument(engine, params, match):
    with pytest.raises(ValueError, match=match):
        focal(engine, **params).fit(*binary_data())


@engines
def test_calibrate_is_checked_where_it_acts(engine):
    X, y = binary_data()
    clf = focal(engine).fit(X, y).set_params(calibrate="no")
    with pytest.raises(ValueError, match="calibrate must be True or False, got 'no'"):
        clf.predict_proba(X)


# -- degenerate weights: one rule ----------------------------------------------------------------


@engines
def test_a_class_without_weight_is_refused(engine):
    X, y = binary_data()
    with pytest.raises(ValueError, match=r"class\(es\) \[0, 1\] of y have a total training "
                                         r"weight of zero under class_weight"):
        focal(engine, class_weight={0: 0, 1: 0}).fit(X, y)
    labels = np.array(["no", "yes"])[y]
    with pytest.raises(ValueError, match=r"\['no'\] of y have a total training weight of zero "
                                         r"under class_weight"):
        focal(engine, class_weight={"no": 0.0}).fit(X, labels)
    X3, y3 = multiclass_data()
    with pytest.raises(ValueError, match=r"\[2\] of y have a total training weight of zero "
                                         r"under sample_weight and class_weight"):
        focal(engine, class_weight="balanced").fit(X3, y3, sample_weight=(y3 != 2) * 1.0)
    with pytest.raises(ValueError, match="weight.*zero"):
        focal(engine).fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="weight.*zero"):
        focal(engine).fit(X, y, eval_set=[(X, y)], eval_sample_weight=[np.zeros(len(y))])
    weights = np.where(y == 0, 0.5, 3.0)  # positive class totals: allowed
    focal(engine).fit(X, y, sample_weight=weights)


def test_multilabel_weights_need_a_positive_total_but_labels_may_lack_positives():
    X_tr, _, Y_tr, _ = _multilabel()
    with pytest.raises(ValueError, match="weight.*zero"):
        focal("xgb").fit(X_tr, Y_tr, sample_weight=np.zeros(len(Y_tr)))
    Y_tr = Y_tr.copy()
    Y_tr[:, 1] = 0  # a label nobody has
    clf = focal("xgb").fit(X_tr, Y_tr)
    assert clf.predict_proba(X_tr).shape == Y_tr.shape


# -- pandas columns that are not numbers ---------------------------------------------------------


def _frame_with(y, column):
    X, _ = binary_data()
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame[column] = pd.Series(np.array(["red", "blue"])[y]).astype(
        "category" if column == "size" else object)
    return frame


@engines
@pytest.mark.parametrize("column", ["colour", "size"], ids=["strings", "category"])
def test_non_numeric_columns_are_named_with_the_engines_way(engine, column):
    _, y = binary_data()
    hint = "feature_types" if engine == "xgb" else "categorical_feature"
    with pytest.raises(ValueError, match=rf"X has columns that are not numbers: '{column}' "
                                         rf"\(.*{hint}"):
        focal(engine).fit(_frame_with(y, column), y)
    numeric = _frame_with(y, column).drop(columns=column)
    clf = focal(engine).fit(numeric, y)
    with pytest.raises(ValueError, match=f"'{column}'"):
        clf.predict(numeric.assign(**{column: _frame_with(y, column)[column]}))
    as_numbers = numeric.assign(**{column: np.arange(len(y)).astype(object)})
    focal(engine).fit(as_numbers, y)  # an object column of numbers converts


@engines
def test_the_hint_gives_categorical_splits(engine):
    _, y = binary_data()
    frame = _frame_with(y, "size")
    codes = frame.assign(size=frame["size"].cat.codes.astype(float))
    codes.loc[:4, "size"] = np.nan
    column = codes.columns.get_loc("size")
    if engine == "xgb":
        types = ["c" if i == column else "q" for i in range(codes.shape[1])]
        clf = focal(engine, feature_types=types).fit(codes, y)
        assert any(f"[f{column}:{{" in tree for tree in clf.booster_.get_dump())
    else:
        clf = focal(engine, engine_params={"categorical_feature": [column]}).fit(codes, y)
        trees = [tree["tree_structure"] for tree in clf.booster_.dump_model()["tree_info"]]
        assert any(t.get("split_feature") == column and t["decision_type"] == "=="
                   for t in trees)


# -- refits ---------------------------------------------------------------------------------------


@engines
def test_a_refit_equals_a_fresh_fit(engine):
    X3, y3 = multiclass_data()
    X2, y2 = binary_data(seed=1)
    y2 = np.array(["no", "yes"])[y2]
    params = {"class_weight": "balanced", "early_stopping_rounds": 3, "random_state": 0,
              "learning_rate": 0.5, "n_estimators": 50}
    est = generic(engine, gbloss.LogitAdjustedLoss(), **params)
    est.fit(X3, y3, eval_set=[(X3, y3)])
    frame = pd.DataFrame(X2, columns=[f"g{i}" for i in range(X2.shape[1])])
    est.fit(frame, y2)
    fresh = clone(est).fit(frame, y2)
    np.testing.assert_array_equal(est.classes_, ["no", "yes"])
    assert est.loss_ == fresh.loss_ and est.task_ == fresh.task_ == "binary"
    assert est.best_iteration_ == fresh.best_iteration_
    assert est.evals_result_ == fresh.evals_result_
    np.testing.assert_array_equal(est.predict_proba(frame), fresh.predict_proba(frame))
    est.set_params(early_stopping_rounds=None).fit(X3, y3)  # no feature names, no stopping
    assert not hasattr(est, "feature_names_in_") and est.best_iteration_ is None


@engines
def test_a_failed_refit_leaves_the_estimator_unfitted(engine):
    X, y = binary_data()
    clf = focal(engine).fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        clf.set_params(class_weight={0: 0, 1: 0}).fit(X, y)
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_a_refit_after_a_multilabel_fit():
    X_tr, _, Y_tr, _ = _multilabel()
    clf = focal("xgb").fit(X_tr, Y_tr.astype(np.int8))
    y = Y_tr[:, 0]
    clf.fit(X_tr, y)
    np.testing.assert_array_equal(clf.predict_proba(X_tr), focal("xgb").fit(X_tr, y)
                                  .predict_proba(X_tr))
    assert clf.predict(X_tr).dtype == y.dtype
