"""Early stopping inside scikit-learn's tools: without an eval_set the estimators hold out a
stratified validation_fraction (as HistGradientBoostingClassifier does), so GridSearchCV and
cross_val_score work with early_stopping_rounds; best_iteration under XGBoost's name."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split

import gbloss
from gbloss.sklearn import (
    FocalLGBMClassifier,
    FocalXGBClassifier,
    GBLossLGBMClassifier,
    GBLossXGBClassifier,
)

ENGINES = {"xgb": (FocalXGBClassifier, GBLossXGBClassifier),
           "lgbm": (FocalLGBMClassifier, GBLossLGBMClassifier)}
engines = pytest.mark.parametrize("engine", list(ENGINES))
#: Enough rounds at a high rate that early stopping stops well before the end.
STOPPING = {"n_estimators": 200, "learning_rate": 0.5, "early_stopping_rounds": 5, "n_jobs": 1}


def focal(engine, **params):
    return ENGINES[engine][0](**{**STOPPING, **params})


def data(n=400, seed=2):
    return make_classification(n, 6, n_informative=4, n_classes=3, n_clusters_per_class=1,
                               weights=[0.7, 0.2, 0.1], flip_y=0.05, random_state=seed)


@engines
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_held_out_fraction_is_sklearns_stratified_split(engine, weighted):
    """The same model as an explicit eval_set from train_test_split(stratify=y) with the same
    fraction and seed, with the sample weights split alongside."""
    X, y = data()
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y)) if weighted else None
    labels = np.array(["a", "b", "c"])[y]
    auto = focal(engine, validation_fraction=0.2, random_state=3).fit(X, labels,
                                                                     sample_weight=w)
    arrays = (X, labels) if w is None else (X, labels, w)
    parts = train_test_split(*arrays, test_size=0.2, stratify=labels, random_state=3)
    X_tr, X_va, y_tr, y_va = parts[:4]
    w_tr, w_va = parts[4:] if weighted else (None, None)
    explicit = focal(engine, random_state=3).fit(
        X_tr, y_tr, sample_weight=w_tr, eval_set=[(X_va, y_va)],
        eval_sample_weight=None if w_va is None else [w_va])
    assert auto.best_iteration_ == explicit.best_iteration_
    assert auto.best_iteration_ < len(auto.evals_result_["validation_0"]["loss"]) - 1
    assert auto.evals_result_ == explicit.evals_result_
    np.testing.assert_array_equal(auto.predict_proba(X), explicit.predict_proba(X))


@engines
def test_held_out_fraction_is_reproducible_with_random_state(engine):
    X, y = data()
    first, second = focal(engine, random_state=0).fit(X, y), focal(engine, random_state=0).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    other = focal(engine, random_state=1).fit(X, y)
    assert other.evals_result_ != first.evals_result_  # another split, another history


def test_multilabel_targets_get_a_plain_split():
    X, Y = make_multilabel_classification(300, 8, n_classes=3, random_state=0)
    auto = ENGINES["xgb"][1](gbloss.FocalLoss(), **STOPPING, random_state=0).fit(X, Y)
    X_tr, X_va, Y_tr, Y_va = train_test_split(X, Y, test_size=0.1, random_state=0)
    explicit = ENGINES["xgb"][1](gbloss.FocalLoss(), **STOPPING, random_state=0).fit(
        X_tr, Y_tr, eval_set=[(X_va, Y_va)])
    assert auto.best_iteration_ == explicit.best_iteration_ is not None
    np.testing.assert_array_equal(auto.predict_proba(X), explicit.predict_proba(X))


@engines
def test_grid_search_and_cross_val_score_with_early_stopping(engine):
    X, y = data()
    search = GridSearchCV(focal(engine, random_state=0), {"gamma": [0.0, 2.0]}, cv=3,
                          scoring="neg_log_loss", error_score="raise").fit(X, y)
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    assert search.best_estimator_.best_iteration_ < STOPPING["n_estimators"] - 1
    scores = cross_val_score(focal(engine, random_state=0), X, y, cv=3,
                             scoring="balanced_accuracy", error_score="raise")
    assert scores.shape == (3,) and np.all(scores > 0.5)


@engines
def test_best_iteration_under_xgboosts_name(engine):
    X, y = data()
    clf = focal(engine, random_state=0).fit(X, y)
    (history,) = clf.evals_result_["validation_0"].values()
    assert clf.best_iteration == clf.best_iteration_ == int(np.argmin(history))
    plain = clone(clf).set_params(early_stopping_rounds=None, n_estimators=5).fit(X, y)
    assert plain.best_iteration_ is None
    with pytest.raises(AttributeError, match="only defined when early stopping is used"):
        _ = plain.best_iteration
    assert not hasattr(clone(clf), "best_iteration")  # unfitted


@engines
@pytest.mark.parametrize("fraction", [0, 1, 1.5, True, "0.1"])
def test_bad_validation_fraction_names_the_argument(engine, fraction):
    with pytest.raises(ValueError, match="validation_fraction must be None or a number in"):
        focal(engine, validation_fraction=fraction).fit(*data())


@engines
def test_a_split_that_cannot_stratify_says_why(engine):
    X, y = data(40)
    y[0] = 3  # a class of one row cannot be in both parts
    with pytest.raises(ValueError, match=r"validation_fraction=0.1 of the 40 training rows, "
                                         r"stratified by class, which fails here"):
        focal(engine).fit(X, y)
