"""Cost-sensitive decisions: the Bayes rule against brute force, the binary shorthand, the
estimators' ``cost_matrix``."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from gbloss.decisions import bayes_decision, cost_matrix, expected_cost


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_bayes_decision_is_the_brute_force_minimum(n_classes, rng):
    proba = rng.dirichlet(np.ones(n_classes), size=200)
    costs = rng.uniform(0.1, 10.0, (n_classes, n_classes))
    np.fill_diagonal(costs, 0.0)
    got = bayes_decision(proba, costs)
    for i, k in enumerate(got):
        risks = [sum(proba[i, j] * costs[j, c] for j in range(n_classes))
                 for c in range(n_classes)]
        assert risks[k] == min(risks)
        assert k == risks.index(min(risks))  # ties: the lowest index


def test_zero_one_costs_give_the_argmax(rng):
    proba = rng.dirichlet(np.ones(4), size=100)
    assert_array_equal(bayes_decision(proba, 1.0 - np.eye(4)), np.argmax(proba, axis=1))


def test_binary_shorthand_is_the_threshold(rng):
    p = rng.uniform(size=500)
    got = bayes_decision(p, {"fn": 10.0, "fp": 1.0})
    assert_array_equal(got, (p > 1.0 / 11.0).astype(int))
    assert_array_equal(cost_matrix({"fn": 10, "fp": 1}, 2), [[0.0, 1.0], [10.0, 0.0]])


def test_expected_cost_counts_each_mistake():
    costs = {"fn": 10, "fp": 1}
    assert expected_cost([1, 1, 0, 0], [0, 1, 1, 0], costs) == pytest.approx((10 + 1) / 4)


@pytest.mark.parametrize(("costs", "n", "match"), [
    ([[1.0, 1.0], [1.0, 0.0]], 2, "zero diagonal"),
    ([[0.0, -1.0], [1.0, 0.0]], 2, ">= 0"),
    (np.zeros((3, 3)), 2, r"shape \(2, 2\)"),
    ({"fn": 1.0}, 2, "fn"),
    ({"fn": 1.0, "fp": 1.0}, 3, "binary"),
    ({"fn": True, "fp": 1.0}, 2, "finite number"),
    ("costly", 2, "cost_matrix must be"),
])
def test_bad_cost_matrices_are_refused(costs, n, match):
    with pytest.raises(ValueError, match=match):
        cost_matrix(costs, n)


def test_estimator_predict_uses_the_cost_matrix(rng):
    pytest.importorskip("xgboost")
    from gbloss.sklearn import FocalXGBClassifier

    X = rng.normal(size=(400, 3))
    y = np.where(X[:, 0] + rng.normal(scale=0.8, size=400) > 1.0, "fraud", "ok")
    clf = FocalXGBClassifier(n_estimators=20, max_depth=2, n_jobs=1).fit(X, y)
    plain = clf.predict(X)
    proba = clf.predict_proba(X)  # calibrated; classes_ = ["fraud", "ok"]
    costs = np.array([[0.0, 20.0], [1.0, 0.0]])  # missing a fraud costs 20
    clf.set_params(cost_matrix=costs)
    assert_array_equal(clf.predict(X), clf.classes_[bayes_decision(proba, costs)])
    assert np.sum(clf.predict(X) == "fraud") > np.sum(plain == "fraud")
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        clf.set_params(cost_matrix=np.zeros((3, 3))).predict(X)
