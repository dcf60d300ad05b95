"""Class weights that become sample weights: class-balanced (Cui et al. 2019, effective number of
samples), inverse frequency, and the class frequencies used as logit-adjustment priors."""

import numpy as np
import pytest
from conftest import mpmath, needs_mpmath
from numpy.testing import assert_allclose, assert_array_equal

import gbloss
from gbloss import class_balanced_weights, effective_number_weights, inverse_frequency_weights

P_CLASSES = [0.7, 0.2, 0.08, 0.02]


def _paper_weights(counts, beta):
    """(1 - beta) / (1 - beta^n_c), normalised to sum to K (official cifar_main.py)."""
    w = (1.0 - beta) / (1.0 - beta ** np.asarray(counts, dtype=float))
    return w / w.sum() * len(counts)


@pytest.fixture
def labels(rng):
    return rng.choice(len(P_CLASSES), size=2000, p=P_CLASSES)


@pytest.mark.parametrize("beta", [0.5, 0.9, 0.99, 0.999, 0.9999])
def test_class_balanced_weights_follow_the_paper(labels, beta):
    counts = np.bincount(labels)
    w = class_balanced_weights(labels, beta)
    assert_allclose(w, _paper_weights(counts, beta)[labels], rtol=1e-12)
    per_class = [w[labels == c][0] for c in range(len(counts))]
    assert sum(per_class) == pytest.approx(len(counts), rel=1e-14)
    assert np.all(np.diff(per_class) >= 0)  # rarer class, larger (or equal) weight


@needs_mpmath
@pytest.mark.parametrize("beta", [0.999, 0.999999])
def test_effective_number_weights_match_mpmath(beta):
    counts = np.array([1.0, 7.0, 100.0, 5000.0, 10.0**6])
    with mpmath.workdps(60):
        b = mpmath.mpf(beta)  # the float's exact value
        raw = [(1 - b) / (1 - b ** int(n)) for n in counts]
        ref = [float(r / sum(raw) * len(counts)) for r in raw]
    assert_allclose(effective_number_weights(counts, beta), ref, rtol=1e-12)


def test_limits(labels):
    counts = np.bincount(labels)
    assert_array_equal(class_balanced_weights(labels, 0.0), np.ones(labels.size))
    inverse = (1.0 / counts) / np.sum(1.0 / counts) * len(counts)
    assert_allclose(class_balanced_weights(labels, 1.0), inverse[labels], rtol=1e-14)
    # beta -> 1 approaches inverse frequency continuously: relative gap ~ n_c (1 - beta)
    assert_allclose(class_balanced_weights(labels, 1 - 1e-12), inverse[labels], rtol=1e-8)
    assert_allclose(effective_number_weights(counts, 1e-300), np.ones(len(counts)), rtol=1e-14)


def test_string_labels_are_classes(labels):
    names = np.array(["ant", "bee", "cat", "dog"])[labels]
    assert_allclose(class_balanced_weights(names, 0.99), class_balanced_weights(labels, 0.99),
                    rtol=1e-15)
    assert_allclose(class_balanced_weights(list(names), 0.99),
                    class_balanced_weights(labels, 0.99), rtol=1e-15)


def test_inverse_frequency_weights_are_balanced(labels):
    counts = np.bincount(labels)
    expected = labels.size / (len(counts) * counts)
    assert_allclose(inverse_frequency_weights(labels), expected[labels], rtol=1e-14)


def test_real_counts_are_accepted():
    """Weighted (non-integer) class counts, e.g. summed sample weights."""
    counts = np.array([10.5, 2.25, 0.5])
    assert_allclose(effective_number_weights(counts, 0.9), _paper_weights(counts, 0.9),
                    rtol=1e-12)


@pytest.mark.parametrize("beta", [-0.1, 1.1, np.nan, "0.9", True, None])
def test_bad_beta_raises(beta, labels):
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\]"):
        class_balanced_weights(labels, beta)
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\]"):
        effective_number_weights([3, 4], beta)


@pytest.mark.parametrize(("y", "match"), [
    pytest.param(np.zeros((4, 2)), "y must be a 1-D vector of class labels", id="2d"),
    pytest.param(np.array([]), "y is empty", id="empty"),
    pytest.param(np.array([0.0, np.nan, 1.0]), "y contains NaN", id="nan"),
])
def test_bad_labels_raise(y, match):
    with pytest.raises(ValueError, match=match):
        class_balanced_weights(y)
    with pytest.raises(ValueError, match=match):
        inverse_frequency_weights(y)


@pytest.mark.parametrize("counts", [[3, 0, 2], [3, -1], [[1, 2]], [], [1, np.inf]])
def test_bad_counts_raise(counts):
    with pytest.raises(ValueError, match="counts must be a 1-D array of positive class counts"):
        effective_number_weights(counts, 0.99)


def test_weights_multiply_gradient_rows(labels, rng):
    y = labels[:300].astype(float)
    raw = rng.normal(0.0, 2.0, (300, len(P_CLASSES)))
    w = class_balanced_weights(labels[:300], 0.999)
    before = y.copy()
    for loss in (gbloss.FocalLoss(2.0), gbloss.CrossEntropyLoss()):
        grad_w, hess_w = loss.gradient_hessian(y, raw, w)
        grad, hess = loss.gradient_hessian(y, raw)
        assert_allclose(grad_w, w[:, None] * grad, rtol=1e-14)
        assert_allclose(hess_w, w[:, None] * hess, rtol=1e-14)
    yb = (y == 3).astype(float)
    wb = class_balanced_weights(yb, 0.99)
    focal = gbloss.FocalLoss(2.0, 0.25)
    assert_allclose(focal.gradient_hessian(yb, raw[:, 0], wb)[0],
                    wb * focal.gradient_hessian(yb, raw[:, 0])[0], rtol=1e-14)
    assert_array_equal(y, before)


def test_class_frequencies():
    assert_allclose(gbloss.class_frequencies([0, 0, 1, 2]), [0.5, 0.25, 0.25], rtol=1e-15)
    assert_allclose(gbloss.class_frequencies([0, 1, 1], n_classes=2), [1 / 3, 2 / 3], rtol=1e-15)
    assert_allclose(gbloss.class_frequencies([0.2, 0.6]), [0.6, 0.4], rtol=1e-15)  # soft binary
    with pytest.raises(ValueError, match="every class needs at least one"):
        gbloss.class_frequencies([0, 0, 2])
    with pytest.raises(ValueError, match="no NaN"):
        gbloss.class_frequencies([0, np.nan])
