"""Poly-1, LDAM and label smoothing (issue 12): the definitions against independent references,
the reductions, the Hessian policies, the start, calibration, bad parameters, and both engines.

The finite-difference, stability and GPU-kernel tests run over these losses through the
conftest registry (``poly-*``, ``ldam-*``, ``*-ls*`` entries); this file holds what is specific
to them. The references are written from the definitions of issue 12 in plain NumPy (moderate
margins) or mpmath (any margin), never through gbloss's formulas.
"""

import json

import numpy as np
import pytest
from conftest import (
    BINARY,
    MULTICLASS,
    MULTILABEL,
    POLICIES,
    counts_for,
    make_data,
    mpmath,
    needs_mpmath,
    per_class_alpha,
    with_policy,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special

import gbloss
from gbloss.calibration import calibrated_proba
from gbloss.losses import LabelStats, _loops, by_key

N_ROWS = 40


def _outputs(loss, y, raw, w=None):
    return (loss.loss(y, raw, w), *loss.gradient_hessian(y, raw, w))


def _assert_same(a, b, rtol=1e-13):
    for name, x, z in zip(("loss", "grad", "hess"), a, b, strict=True):
        assert_allclose(x, z, rtol=rtol, atol=1e-300, err_msg=name)


def with_smoothing(loss, smoothing):
    return type(loss)(**{**loss.get_params(), "label_smoothing": smoothing})


def _alpha_t(alpha, y):
    return np.ones_like(y) if alpha is None else np.where(y == 1, alpha, 1 - alpha)


# ------------------------------------------------------------------------------------------------
# Definitions of issue 12, in plain NumPy at moderate margins


def _poly_textbook(p_t, a_t, epsilon, gamma):
    return a_t * (-(1 - p_t) ** gamma * np.log(p_t) + epsilon * (1 - p_t) ** (gamma + 1))


@pytest.mark.parametrize(("epsilon", "gamma", "alpha"),
                         [(1.0, 0.0, None), (-1.0, 0.0, 0.25), (2.0, 2.0, None),
                          (-0.5, 0.5, 0.7)])
def test_poly_binary_and_multilabel_are_the_definition(epsilon, gamma, alpha, rng):
    y = rng.integers(0, 2, (50, 3)).astype(float)
    z = rng.uniform(-6, 6, (50, 3))
    p = special.expit(z)
    p_t = np.where(y == 1, p, 1 - p)
    expected = _poly_textbook(p_t, _alpha_t(alpha, y), epsilon, gamma)
    loss = gbloss.PolyLoss(epsilon, gamma, alpha)
    assert_allclose(loss.loss(y[:, 0], z[:, 0]), expected[:, 0], rtol=1e-12)
    assert_allclose(loss.loss(y, z), expected.sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize(("epsilon", "gamma"), [(1.0, 0.0), (-1.0, 2.0), (2.0, 0.5)])
def test_poly_softmax_is_the_definition(epsilon, gamma, rng):
    alpha = np.array([0.2, 0.5, 0.3, 0.9])
    y = rng.integers(0, 4, 50).astype(float)
    raw = rng.uniform(-6, 6, (50, 4))
    p_t = special.softmax(raw, axis=1)[np.arange(50), y.astype(int)]
    expected = _poly_textbook(p_t, alpha[y.astype(int)], epsilon, gamma)
    assert_allclose(gbloss.PolyLoss(epsilon, gamma, alpha).loss(y, raw), expected, rtol=1e-12)


def test_ldam_margins_are_the_definition():
    counts = np.array([5000.0, 500.0, 50.0, 5.0])
    loss = gbloss.LDAMLoss(0.7, counts)
    expected = 0.7 * counts ** -0.25 / np.max(counts ** -0.25)
    assert_allclose(loss.margins(4), expected, rtol=1e-15)
    assert loss.margins(4)[-1] == 0.7  # the rarest class gets max_margin
    binary = gbloss.LDAMLoss(1.0, [900.0, 100.0])
    assert_allclose(binary.margins(1), [(900 / 100) ** -0.25, 1.0], rtol=1e-15)


def test_ldam_is_the_definition(rng):
    counts = np.array([400.0, 40.0, 4.0])
    loss = gbloss.LDAMLoss(0.5, counts)
    delta = loss.margins(3)
    y = rng.integers(0, 3, 50).astype(float)
    raw = rng.uniform(-6, 6, (50, 3))
    rows, labels = np.arange(50), y.astype(int)
    shifted = raw.copy()
    shifted[rows, labels] -= delta[labels]
    expected = -special.log_softmax(shifted, axis=1)[rows, labels]
    assert_allclose(loss.loss(y, raw), expected, rtol=1e-12)
    grad, hess = with_policy(loss, "exact").gradient_hessian(y, raw)
    p = special.softmax(shifted, axis=1)
    assert_allclose(grad, p - np.eye(3)[labels], rtol=1e-12, atol=1e-15)
    assert_allclose(hess, p * (1 - p), rtol=1e-12)
    # binary, raw = z1 - z0: CE at z - Delta_1 (y=1) and at z + Delta_0 (y=0)
    binary = gbloss.LDAMLoss(0.5, counts[:2])
    d0, d1 = binary.margins(1)
    z = rng.uniform(-6, 6, 50)
    yb = rng.integers(0, 2, 50).astype(float)
    expected = np.where(yb == 1, np.logaddexp(0, -(z - d1)), np.logaddexp(0, z + d0))
    assert_allclose(binary.loss(yb, z), expected, rtol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 2.0])
def test_label_smoothing_softmax_is_the_definition(gamma, rng):
    eps, n_class = 0.15, 5
    alpha = np.linspace(0.3, 0.9, n_class)
    y = rng.integers(0, n_class, 50).astype(float)
    raw = rng.uniform(-6, 6, (50, n_class))
    p = special.softmax(raw, axis=1)
    t = (1 - eps) * np.eye(n_class)[y.astype(int)] + eps / n_class
    expected = -(alpha * t * (1 - p) ** gamma * np.log(p)).sum(axis=1)
    focal = gbloss.FocalLoss(gamma, alpha, label_smoothing=eps)
    assert_allclose(focal.loss(y, raw), expected, rtol=1e-12)
    if gamma == 0:
        ce = gbloss.CrossEntropyLoss(label_smoothing=eps, hessian="exact")
        grad, hess = ce.gradient_hessian(y, raw)
        assert_allclose(grad, p - t, rtol=1e-12, atol=1e-15)  # derivations 11.3
        assert_allclose(hess, p * (1 - p), rtol=1e-12)


@needs_mpmath
def test_soft_target_blocked_loop_is_exact_for_cross_entropy(rng):
    """The CPU's blocked soft-target loop over several blocks against the exact cross-entropy
    gradient ``p - T`` (mpmath, 40 digits): its sums over the terms cancel to ``p - T``, which
    itself cancels where ``p`` is near ``T`` (hence the absolute tolerance, 1e-13 of ``T``)."""
    eps, n_class = 0.1, 10
    n = 3 * _loops.softmax_block_rows(n_class) + 5
    y = rng.integers(0, n_class, n).astype(float)
    raw = rng.normal(0.0, 3.0, (n, n_class))
    grad, _ = gbloss.CrossEntropyLoss(label_smoothing=eps).gradient_hessian(y, raw)
    with mpmath.workdps(40):
        for i in range(n):
            exps = [mpmath.exp(mpmath.mpf(z)) for z in raw[i]]
            total = mpmath.fsum(exps)
            exact = [float(e / total - mpmath.mpf(eps) / n_class
                           - (1 - mpmath.mpf(eps) if k == y[i] else 0))
                     for k, e in enumerate(exps)]
            assert_allclose(grad[i], exact, rtol=1e-12, atol=1e-15, err_msg=f"row {i}")


@pytest.mark.parametrize("alpha", [None, 0.25])
def test_label_smoothing_binary_is_the_soft_label_mixture(alpha, rng):
    eps, gamma = 0.2, 2.0
    y = rng.integers(0, 2, 50).astype(float)
    z = rng.uniform(-6, 6, 50)
    soft = y * (1 - eps) + eps / 2
    unsmoothed = gbloss.FocalLoss(gamma, alpha)
    _assert_same(_outputs(gbloss.FocalLoss(gamma, alpha, label_smoothing=eps), y, z),
                 _outputs(unsmoothed, soft, z), rtol=1e-12)
    p = special.expit(z)
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)
    expected = -soft * a1 * (1 - p) ** gamma * np.log(p) - (1 - soft) * a0 * p ** gamma \
        * np.log(1 - p)
    assert_allclose(gbloss.FocalLoss(gamma, alpha, label_smoothing=eps).loss(y, z), expected,
                    rtol=1e-12)


def test_poly_label_smoothing_is_the_papers_code_at_gamma0(rng):
    """Leng et al.'s Poly-1 code on smoothed labels: CE(t) + epsilon (1 - sum_k t_k p_k)."""
    eps, epsilon = 0.1, 2.0
    y = rng.integers(0, 4, 50).astype(float)
    raw = rng.uniform(-6, 6, (50, 4))
    p = special.softmax(raw, axis=1)
    t = (1 - eps) * np.eye(4)[y.astype(int)] + eps / 4
    expected = -(t * np.log(p)).sum(axis=1) + epsilon * (1 - (t * p).sum(axis=1))
    loss = gbloss.PolyLoss(epsilon, label_smoothing=eps)
    assert_allclose(loss.loss(y, raw), expected, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# High-precision references (mpmath)


def _mp_derivatives(func, x, dps=40, h=None):
    with mpmath.workdps(dps):
        kwargs = {} if h is None else {"h": mpmath.mpf(h)}
        return [float(mpmath.diff(func, mpmath.mpf(x), n, **kwargs)) for n in (0, 1, 2)]


def _mp_poly_binary(y, epsilon, gamma, alpha):
    a1, a0 = (1, 1) if alpha is None else (alpha, 1 - alpha)

    def f(z):
        p = 1 / (1 + mpmath.exp(-z))
        p_t, a_t = (p, a1) if y == 1 else (1 - p, a0)
        return a_t * (-(1 - p_t) ** gamma * mpmath.log(p_t) + epsilon * (1 - p_t) ** (gamma + 1))
    return f


MP_POINTS = (-30.0, -7.3, -2.5, -0.4, 0.0, 1.3, 4.1, 9.0, 20.0, 35.0)


@needs_mpmath
@pytest.mark.parametrize(("epsilon", "gamma"), [(-1.0, 0.0), (-1.0, 2.0), (-0.5, 0.5),
                                                (1.0, 0.0), (2.0, 0.0), (2.0, 3.7)])
def test_poly_binary_derivatives_match_mpmath(epsilon, gamma):
    """Full relative accuracy also at epsilon = -1, where focal core and Poly term cancel to
    leading order (the loss of a well-classified row is q^(gamma+2)/2, not q^(gamma+1))."""
    loss = gbloss.PolyLoss(epsilon, gamma, 0.25, hessian="exact")
    z = np.array(MP_POINTS)
    for y in (0.0, 1.0):
        labels = np.full(z.shape, y)
        values = loss.loss(labels, z)
        grad, hess = loss.gradient_hessian(labels, z)
        ref = np.array([_mp_derivatives(_mp_poly_binary(y, epsilon, gamma, 0.25), zi, dps=60)
                        for zi in z])
        assert_allclose(values, ref[:, 0], rtol=1e-13)
        assert_allclose(grad, ref[:, 1], rtol=1e-12)
        assert_allclose(hess, ref[:, 2], rtol=1e-11)


@needs_mpmath
@pytest.mark.parametrize("z", [-700.0, -100.0, 30.0, 100.0, 300.0])
def test_poly_extremes_match_mpmath(z):
    """epsilon = -1 at extreme margins: every value to full precision (700 digits)."""
    loss = gbloss.PolyLoss(-1.0, 0.5, hessian="exact")
    with mpmath.workdps(700):
        for y in (0.0, 1.0):
            f = _mp_poly_binary(y, -1, mpmath.mpf("0.5"), None)
            ref = [float(mpmath.diff(f, mpmath.mpf(z), n, h=mpmath.mpf("1e-40")))
                   for n in (0, 1, 2)]
            value = loss.loss(np.array([y]), np.array([z]))[0]
            grad, hess = loss.gradient_hessian(np.array([y]), np.array([z]))
            assert value == pytest.approx(ref[0], rel=1e-13, abs=1e-300)
            assert grad[0] == pytest.approx(ref[1], rel=1e-12, abs=1e-300)
            assert hess[0] == pytest.approx(ref[2], rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("hessian", ["exact", "psd"])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.7])
def test_poly_is_finite_at_the_largest_margins(gamma, hessian):
    """At |t| near the float64 maximum rho = -log p - q nears it too: the exact Hessian's term
    gamma rho (gamma p - q) must be formed from p rho (<= 1/e), not overflow to 0 * inf."""
    big = np.finfo(np.float64).max
    loss = gbloss.PolyLoss(2.0, gamma, hessian=hessian)
    for y, raw in ((np.array([1.0, 0.0]), np.array([-big, big])),
                   (np.array([0.0, 1.0]), np.array([[-big, 0.0], [0.0, -big]]))):
        grad, hess = loss.gradient_hessian(y, raw)
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))
        assert np.all(hess >= 0)


def _mp_softmax(z):
    e = [mpmath.exp(v) for v in z]
    total = sum(e)
    return [v / total for v in e]


def _mp_row_loss(name, c, alpha, params):
    """The per-row loss of issue 12 as a function of the logits (mpmath)."""
    def poly_term(p, k, epsilon, gamma):
        return alpha[k] * (-(1 - p) ** gamma * mpmath.log(p) + epsilon * (1 - p) ** (gamma + 1))

    def f(z):
        if name == "ldam":
            z = list(z)
            z[c] -= params["delta"][c]
            return -mpmath.log(_mp_softmax(z)[c])
        p = _mp_softmax(z)
        eps = params.get("smoothing", 0.0)
        t = [eps / len(z) + (1 - eps if k == c else 0) for k in range(len(z))]
        return sum(t[k] * poly_term(p[k], k, params["epsilon"], params["gamma"])
                   for k in range(len(z)) if t[k])
    return f


SOFTMAX_MP_CASES = [
    pytest.param("poly", gbloss.PolyLoss(2.0, 0.0, [0.2, 0.5, 0.3], hessian="exact"),
                 {"epsilon": 2.0, "gamma": 0.0}, id="poly-e2-g0"),
    pytest.param("poly", gbloss.PolyLoss(-1.0, 2.0, [0.2, 0.5, 0.3], hessian="exact"),
                 {"epsilon": -1.0, "gamma": 2.0}, id="poly-e-1-g2"),
    pytest.param("poly", gbloss.FocalLoss(2.0, [0.2, 0.5, 0.3], label_smoothing=0.2,
                                          hessian="exact"),
                 {"epsilon": 0.0, "gamma": 2.0, "smoothing": 0.2}, id="focal-g2-ls0.2"),
    pytest.param("poly", gbloss.PolyLoss(1.0, 0.5, [0.2, 0.5, 0.3], label_smoothing=0.1,
                                         hessian="exact"),
                 {"epsilon": 1.0, "gamma": 0.5, "smoothing": 0.1}, id="poly-e1-g0.5-ls0.1"),
    pytest.param("ldam", gbloss.LDAMLoss(0.8, [100.0, 10.0, 1.0]),
                 {"delta": [0.8 * 0.1 ** 0.5, 0.8 * 0.1 ** 0.25, 0.8]}, id="ldam"),
]


@needs_mpmath
@pytest.mark.parametrize(("name", "loss", "params"), SOFTMAX_MP_CASES)
def test_softmax_derivatives_match_mpmath(name, loss, params):
    raw = np.array([[1.5, -0.7, 0.2], [-3.0, 2.5, 1.0], [0.3, 0.1, -4.0], [12.0, -9.0, 0.5],
                    [-20.0, 15.0, 14.0]])
    y = np.array([0.0, 0.0, 2.0, 0.0, 1.0])
    alpha = loss.alpha if getattr(loss, "alpha", None) is not None else np.ones(3)
    values = loss.loss(y, raw)
    grad, hess = loss.gradient_hessian(y, raw)
    for i in range(raw.shape[0]):
        f = _mp_row_loss(name, int(y[i]), alpha, params)
        for k in range(3):
            def f_k(t, i=i, k=k, f=f):
                z = [mpmath.mpf(v) for v in raw[i]]
                z[k] = t
                return f(z)
            ref = _mp_derivatives(f_k, raw[i, k])
            assert values[i] == pytest.approx(ref[0], rel=1e-13)
            assert grad[i, k] == pytest.approx(ref[1], rel=1e-12, abs=1e-300)
            assert hess[i, k] == pytest.approx(ref[2], rel=1e-10, abs=1e-300)


# ------------------------------------------------------------------------------------------------
# Reductions

TASK_SHAPES = [pytest.param(BINARY, 1, id="binary"), pytest.param(MULTICLASS, 4, id="multiclass"),
               pytest.param(MULTILABEL, 4, id="multilabel")]


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize(("task", "n_out"), TASK_SHAPES)
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
def test_poly_epsilon0_is_focal(gamma, task, n_out, hessian, rng):
    alpha = per_class_alpha(n_out) if task != BINARY else 0.3
    y, raw = make_data(task, n_out, N_ROWS, rng, soft=task != MULTICLASS)
    w = rng.uniform(0.5, 2, N_ROWS)
    _assert_same(_outputs(gbloss.PolyLoss(0.0, gamma, alpha, hessian=hessian), y, raw, w),
                 _outputs(gbloss.FocalLoss(gamma, alpha, hessian=hessian), y, raw, w),
                 rtol=1e-12)
    _assert_same(_outputs(gbloss.PolyLoss(0.0, gamma, hessian=hessian), y, raw),
                 _outputs(gbloss.FocalLoss(gamma, hessian=hessian), y, raw), rtol=1e-12)


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize(("task", "n_out"), TASK_SHAPES[:2])
def test_ldam_max_margin0_is_cross_entropy(task, n_out, hessian, rng):
    y, raw = make_data(task, n_out, N_ROWS, rng, soft=task == BINARY)
    w = rng.uniform(0.5, 2, N_ROWS)
    ldam = gbloss.LDAMLoss(0.0, counts_for(n_out), hessian=hessian)
    ce = gbloss.CrossEntropyLoss(hessian=hessian)
    _assert_same(_outputs(ldam, y, raw, w), _outputs(ce, y, raw, w))
    y_hard = y if task == MULTICLASS else np.round(y)
    assert_allclose(ldam.init_score(y_hard, w, n_classes=n_out if n_out > 1 else None),
                    ce.init_score(y_hard, w, n_classes=n_out if n_out > 1 else None),
                    rtol=1e-9, atol=1e-9)
    assert ldam.is_proper(task)


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize(("task", "n_out"), TASK_SHAPES)
@pytest.mark.parametrize("make", [
    lambda k, **kw: gbloss.CrossEntropyLoss(**kw),
    lambda k, **kw: gbloss.FocalLoss(2.0, per_class_alpha(k) if k > 1 else 0.3, **kw),
    lambda k, **kw: gbloss.PolyLoss(-1.0, 0.5, **kw)], ids=["ce", "focal", "poly"])
def test_label_smoothing0_is_the_unsmoothed_loss(make, task, n_out, hessian, rng):
    y, raw = make_data(task, n_out, N_ROWS, rng, soft=task != MULTICLASS)
    plain = make(n_out, hessian=hessian)
    smoothed0 = make(n_out, hessian=hessian, label_smoothing=0.0)
    assert smoothed0 == plain and smoothed0.scalars is type(plain).scalars  # hard-label slots
    _assert_same(_outputs(smoothed0, y, raw), _outputs(plain, y, raw), rtol=0)


EXTREME_ROWS = np.array([[1e4, 0.0, -1e4], [-1e4, 0.0, 1e4], [745.0, 745.0, -745.0],
                         [0.0, 0.0, 0.0], [37.0, -37.0, 0.0], [1.0, 1.0 + 1e-12, 1.0],
                         [-2.0, 3.0, 0.5], [30.0, 0.0, -1e4]])


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize("make", [lambda: gbloss.FocalLoss(2.0, [0.2, 0.5, 0.3]),
                                  lambda: gbloss.CrossEntropyLoss(),
                                  lambda: gbloss.PolyLoss(-1.0, 0.5),
                                  lambda: gbloss.PolyLoss(2.0)],
                         ids=["focal", "ce", "poly-e-1", "poly-e2"])
def test_soft_target_loop_without_smoothing_is_the_hard_label_loop(make, hessian):
    """The soft-target template at eps = 0 (one-hot targets) against the hard-label template,
    row by row at extreme margins: the linear-time sums lose nothing."""
    loss = with_policy(make(), hessian)
    raw = np.repeat(EXTREME_ROWS, 3, axis=0)
    y = np.tile(np.arange(3.0), EXTREME_ROWS.shape[0])
    theta = loss.kernel_params(MULTICLASS, 3)
    assert theta[1] == 0.0  # the smoothing in theta
    hard = _loops.loops_for(loss.scalars)
    soft = _loops.loops_for(with_smoothing(loss, 0.1).scalars)
    assert "softmax_target" in soft.bindings and "softmax_target" not in hard.bindings
    mode = gbloss.losses._base.HESSIAN_MODES[hessian]
    empty = np.empty(0)
    results = []
    for loops in (hard, soft):
        g, h, out = np.empty_like(raw), np.empty_like(raw), np.empty(raw.shape[0])
        assert loops.softmax_gradient_hessian(y, raw, empty, theta, mode, g, h) == (0, 0)
        loops.softmax_loss(y, raw, empty, theta, out)
        results.append((out, g, h))
    for name, a, b in zip(("loss", "grad", "hess"), *results, strict=True):
        assert_allclose(b, a, rtol=1e-12, atol=1e-300, err_msg=name)


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize("make", [
    lambda k, **kw: gbloss.FocalLoss(2.0, [0.75, 0.25] if k == 2 else 0.25, **kw),
    lambda k, **kw: gbloss.PolyLoss(-1.0, 0.5, **kw),
    lambda k, **kw: gbloss.PolyLoss(2.0, 0.0, [0.4, 0.6] if k == 2 else 0.6, **kw),
    lambda k, **kw: gbloss.CrossEntropyLoss(label_smoothing=0.3, **kw),
    lambda k, **kw: gbloss.FocalLoss(0.5, label_smoothing=0.1, **kw),
    lambda k, **kw: gbloss.LDAMLoss(1.0, [30.0, 3.0], **kw)],
    ids=["focal", "poly-e-1", "poly-e2-alpha", "ce-ls", "focal-ls", "ldam"])
def test_two_class_softmax_is_binary_on_the_margin_difference(make, hessian, rng):
    y, raw = make_data(MULTICLASS, 2, N_ROWS, rng)
    w = rng.uniform(0.5, 2, N_ROWS)
    loss2, grad2, hess2 = _outputs(make(2, hessian=hessian), y, raw, w)
    loss1, grad1, hess1 = _outputs(make(1, hessian=hessian), y, raw[:, 1] - raw[:, 0], w)
    assert_allclose(loss2, loss1, rtol=1e-12)
    assert_allclose(grad2[:, 1], grad1, rtol=1e-12, atol=1e-300)
    assert_allclose(grad2[:, 0], -grad1, rtol=1e-12, atol=1e-300)
    assert_allclose(hess2[:, 1], hess1, rtol=3e-12, atol=1e-300)
    assert_allclose(hess2[:, 0], hess1, rtol=3e-12, atol=1e-300)


# ------------------------------------------------------------------------------------------------
# Poly-1 Hessian: where the exact one is negative, and the "psd" policy

margins = hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-50, 50))


def _policies(loss, y, raw):
    return {h: with_policy(loss, h).gradient_hessian(y, raw)[1] for h in POLICIES}


@settings(max_examples=80, deadline=None)
@given(z=margins, epsilon=st.sampled_from((-1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 5.0)),
       gamma=st.sampled_from((0.0, 0.5, 1.0, 2.0, 3.7)),
       alpha=st.sampled_from((None, 0.1, 0.25, 0.9)), data=st.data())
def test_poly_binary_policies(z, epsilon, gamma, alpha, data):
    y = data.draw(hnp.arrays(np.float64, z.shape, elements=st.sampled_from((0.0, 1.0))))
    h = _policies(gbloss.PolyLoss(epsilon, gamma, alpha), y, z)
    a_t = _alpha_t(alpha, y)
    assert np.all(h["psd"] >= h["exact"])
    assert np.all(h["psd"] > 0) and np.all(h["gn"][np.abs(z) < 30] > 0)
    assert_allclose(h["psd"], np.maximum(h["exact"], h["gn"]) + 1e-16 * a_t, rtol=1e-15, atol=0)
    p_t = special.expit(np.where(y == 1, z, -z))
    if gamma > 0:
        fit = p_t >= 1 / (1 + gamma)
    else:
        fit = p_t >= 0.5 if epsilon > 0 else np.ones_like(p_t, dtype=bool)
    assert_allclose(h["psd"][fit], (h["exact"] + 1e-16 * a_t)[fit], rtol=1e-13, atol=1e-30)


@settings(max_examples=40, deadline=None)
@given(z=hnp.arrays(np.float64, st.tuples(st.integers(1, 10), st.integers(2, 6)),
                    elements=st.floats(-50, 50)),
       epsilon=st.sampled_from((-1.0, 0.5, 2.0)), gamma=st.sampled_from((0.0, 2.0)),
       smoothing=st.sampled_from((0.0, 0.1)), data=st.data())
def test_poly_softmax_policies(z, epsilon, gamma, smoothing, data):
    y = data.draw(hnp.arrays(np.float64, z.shape[0], elements=st.integers(0, z.shape[1] - 1)))
    h = _policies(gbloss.PolyLoss(epsilon, gamma, label_smoothing=smoothing), y, z)
    assert np.all(h["psd"] > 0) and np.all(h["gn"] > 0)
    assert np.all(h["psd"] >= h["exact"] * (1 - 1e-12))


@pytest.mark.parametrize("epsilon", [2.0, 5.0])
def test_poly_gamma0_hessian_is_negative_only_below_the_threshold(epsilon):
    """gamma = 0: h = p q (1 - epsilon (1 - 2p)) < 0 exactly where p_t < (1 - 1/epsilon)/2."""
    threshold = (1 - 1 / epsilon) / 2
    p_t = np.concatenate([np.linspace(1e-6, 1 - 1e-6, 2001), [threshold]])
    z = special.logit(p_t)
    y = np.ones_like(z)
    h = gbloss.PolyLoss(epsilon, 0.0, hessian="exact").gradient_hessian(y, z)[1]
    assert_allclose(h, p_t * (1 - p_t) * (1 - epsilon * (1 - 2 * p_t)), rtol=1e-9, atol=1e-15)
    away = np.abs(p_t - threshold) > 1e-9
    assert_array_equal((h < 0)[away], (p_t < threshold)[away])
    for eps in (-1.0, 0.0, 1.0):  # no negative region for epsilon <= 1
        assert np.all(gbloss.PolyLoss(eps, 0.0, hessian="exact").gradient_hessian(y, z)[1] >= 0)


@pytest.mark.parametrize(("epsilon", "t_star"), [(-1.0, -4.0214), (0.0, -2.7904),
                                                 (1.0, -2.0898), (2.0, -1.7611)])
def test_poly_gamma2_hessian_root(epsilon, t_star):
    """gamma = 2: one root t*(gamma, epsilon); h < 0 exactly for t < t* (docstring table)."""
    loss = gbloss.PolyLoss(epsilon, 2.0, hessian="exact")
    t = np.linspace(-40, 40, 8001)
    h = loss.gradient_hessian(np.ones_like(t), t)[1]
    crossings = t[1:][np.diff(np.sign(h)) != 0]
    assert crossings.size == 1 and abs(crossings[0] - t_star) < 0.01
    root = optimize.brentq(lambda x: loss.gradient_hessian(np.ones(1), np.array([x]))[1][0],
                           t_star - 0.1, t_star + 0.1)
    assert root == pytest.approx(t_star, abs=1e-4)


def test_poly_gradient_keeps_its_sign(rng):
    """epsilon >= -1: dL/dz < 0 for y=1 and > 0 for y=0 everywhere (the calibration map needs
    it); the gradient of epsilon = -1 vanishes like q^(gamma+2)."""
    z = np.linspace(-60, 60, 2001)
    for gamma in (0.0, 0.5, 3.7):
        loss = gbloss.PolyLoss(-1.0, gamma)
        g1 = loss.gradient_hessian(np.ones_like(z), z)[0]
        g0 = loss.gradient_hessian(np.zeros_like(z), z)[0]
        resolved = np.abs(z) < 25
        assert np.all(g1[resolved] < 0) and np.all(g0[resolved] > 0)
        assert np.all(g1 <= 0) and np.all(g0 >= 0)


# ------------------------------------------------------------------------------------------------
# Optimal start

START_LOSSES = [
    gbloss.PolyLoss(2.0), gbloss.PolyLoss(-1.0, 2.0, 0.25),
    gbloss.LDAMLoss(0.5), gbloss.LDAMLoss(1.5, [5.0, 1.0]),
    gbloss.CrossEntropyLoss(label_smoothing=0.2), gbloss.FocalLoss(2.0, 0.25, label_smoothing=0.1),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "w"])
@pytest.mark.parametrize("loss", START_LOSSES, ids=repr)
def test_binary_start_minimises_total_loss(loss, weighted, rng):
    y = (rng.uniform(size=300) < 0.2).astype(float)
    w = rng.uniform(0.1, 3.0, 300) if weighted else None
    start = loss.init_score(y, w)
    prepared = loss.prepare(y, w)

    def total(b):
        return prepared.loss(y, np.full(y.shape, b), w).sum()

    res = optimize.minimize_scalar(total, bounds=(-30, 30), method="bounded",
                                   options={"xatol": 1e-10})
    assert total(start) <= res.fun * (1 + 1e-12)
    assert start == pytest.approx(res.x, abs=1e-4)


@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "w"])
@pytest.mark.parametrize("loss", [
    gbloss.PolyLoss(2.0), gbloss.PolyLoss(-1.0, 2.0, [0.2, 0.5, 0.3]), gbloss.LDAMLoss(0.5),
    gbloss.LDAMLoss(2.0, [10.0, 5.0, 1.0]), gbloss.FocalLoss(2.0, label_smoothing=0.2),
    gbloss.PolyLoss(1.0, label_smoothing=0.1)], ids=repr)
def test_multiclass_start_minimises_total_loss(loss, weighted, rng):
    y = rng.choice(3, size=300, p=[0.7, 0.2, 0.1]).astype(float)
    w = rng.uniform(0.1, 3.0, 300) if weighted else None
    start = loss.init_score(y, w)
    assert start.shape == (3,) and special.logsumexp(start) == pytest.approx(0.0, abs=1e-12)
    prepared = loss.prepare(y, w)

    def total(b):
        return prepared.loss(y, np.tile(b, (300, 1)), w).sum()

    ref = optimize.minimize(total, np.zeros(3), method="BFGS", options={"gtol": 1e-9})
    assert total(start) <= ref.fun * (1 + 1e-10)
    assert total(start) == pytest.approx(ref.fun, rel=1e-10)


def test_ldam_start_is_not_the_log_frequencies(rng):
    y = rng.choice(3, size=500, p=[0.8, 0.15, 0.05]).astype(float)
    ldam = gbloss.LDAMLoss(1.0).init_score(y)
    ce = gbloss.CrossEntropyLoss().init_score(y)
    assert np.max(np.abs(ldam - ce)) > 0.1
    # the start is the population minimiser of the class frequencies: calibration returns them
    loss = gbloss.LDAMLoss(1.0).prepare(y)
    assert_allclose(loss.predict_proba(ldam[None, :]), [np.bincount(y.astype(int)) / y.size],
                    rtol=1e-7)


@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "w"])
def test_smoothed_cross_entropy_start_is_the_smoothed_frequencies(weighted, rng):
    eps = 0.2
    y = rng.choice(4, size=500, p=[0.6, 0.25, 0.1, 0.05]).astype(float)
    w = rng.uniform(0.1, 3.0, 500) if weighted else np.ones(500)
    freq = np.bincount(y.astype(int), weights=w) / w.sum()
    ce = gbloss.CrossEntropyLoss(label_smoothing=eps)
    assert_allclose(ce.init_score(y, w), np.log((1 - eps) * freq + eps / 4), rtol=1e-12)
    y01 = (y == 0).astype(float)
    mean = (1 - eps) * np.average(y01, weights=w) + eps / 2
    assert ce.init_score(y01, w) == pytest.approx(np.log(mean / (1 - mean)), rel=1e-10)


# ------------------------------------------------------------------------------------------------
# Calibration: the map inverts the population minimiser


def _binary_stationary_margin(grads, eta):
    def slope(z):
        g1, g0 = grads(z)
        return eta * g1 + (1 - eta) * g0
    return optimize.brentq(slope, -25, 25, xtol=1e-14, rtol=4 * np.finfo(float).eps)


def _naive_poly_grads(epsilon, gamma, alpha):
    """d/dz of the definition through p = sigmoid(z) (textbook chain rule, moderate z)."""
    a1, a0 = (1.0, 1.0) if alpha is None else (alpha, 1 - alpha)

    def dterm(p_t):  # d/dp_t of -(1-p)^g log p + eps (1-p)^(g+1)
        return gamma * (1 - p_t) ** (gamma - 1) * np.log(p_t) - (1 - p_t) ** gamma / p_t \
            - epsilon * (gamma + 1) * (1 - p_t) ** gamma

    def grads(z):
        p = special.expit(z)
        return a1 * dterm(p) * p * (1 - p), -a0 * dterm(1 - p) * p * (1 - p)
    return grads


def _risk_minimiser(loss, eta):
    labels = np.array([1.0, 0.0])

    def risk(z):
        return loss.loss(labels, np.full(2, z), np.array([eta, 1 - eta])).sum()

    return optimize.minimize_scalar(risk, bounds=(-30, 30), method="bounded",
                                    options={"xatol": 1e-10}).x


ETAS = (1e-3, 0.05, 0.3, 0.5, 0.8, 0.99)


@pytest.mark.parametrize(("epsilon", "gamma", "alpha"),
                         [(1.0, 0.0, None), (-1.0, 0.0, None), (2.0, 0.0, 0.25),
                          (-1.0, 2.0, 0.25), (1.0, 0.5, 0.9)])
def test_poly_binary_inverts_population_minimiser(epsilon, gamma, alpha):
    loss = gbloss.PolyLoss(epsilon, gamma, alpha)
    for eta in ETAS:
        z_star = _binary_stationary_margin(_naive_poly_grads(epsilon, gamma, alpha), eta)
        assert abs(_risk_minimiser(loss, eta) - z_star) < 1e-4
        assert_allclose(calibrated_proba(loss, np.array([z_star])), [eta], rtol=1e-10)


def test_ldam_binary_inverts_population_minimiser():
    loss = gbloss.LDAMLoss(1.0, [50.0, 2.0])
    d0, d1 = loss.margins(1)
    assert not loss.is_proper(BINARY)
    for eta in ETAS:
        z_star = _binary_stationary_margin(
            lambda z: (special.expit(z - d1) - 1, special.expit(z + d0)), eta)
        assert abs(_risk_minimiser(loss, eta) - z_star) < 1e-4
        assert_allclose(calibrated_proba(loss, np.array([z_star])), [eta], rtol=1e-12)


@pytest.mark.parametrize("loss", [gbloss.CrossEntropyLoss(label_smoothing=0.2),
                                  gbloss.FocalLoss(2.0, 0.25, label_smoothing=0.1),
                                  gbloss.PolyLoss(-1.0, 0.5, label_smoothing=0.3)], ids=repr)
def test_smoothed_binary_inverts_population_minimiser(loss):
    """The root of the expected (smoothed) training gradient over hard labels y ~ Bern(eta)."""
    def grads(z):
        g = loss.gradient_hessian(np.array([1.0, 0.0]), np.full(2, z))[0]
        return g[0], g[1]

    for eta in ETAS:
        z_star = _binary_stationary_margin(grads, eta)
        assert abs(_risk_minimiser(loss, eta) - z_star) < 1e-4
        assert_allclose(calibrated_proba(loss, np.array([z_star])), [eta], rtol=1e-10)


def test_smoothed_cross_entropy_map_is_the_affine_correction(rng):
    eps = 0.2
    z = rng.normal(0, 4, 200)
    expected = np.clip((special.expit(z) - eps / 2) / (1 - eps), 0, 1)
    ce = gbloss.CrossEntropyLoss(label_smoothing=eps)
    assert not ce.is_proper(BINARY)
    assert_allclose(calibrated_proba(ce, z), expected, rtol=1e-13)
    raw = rng.normal(0, 4, (200, 4))
    eta = np.clip((special.softmax(raw, axis=1) - eps / 4) / (1 - eps), 0, None)
    assert_allclose(calibrated_proba(ce, raw, MULTICLASS), eta / eta.sum(axis=1, keepdims=True),
                    rtol=1e-12)


def _softmax_risk_minimiser(loss, eta):
    """argmin over logits (z_0 = 0) of sum_c eta_c L(c, z), with the loss's values and
    gradients (checked against mpmath above)."""
    n_class = eta.size
    labels = np.arange(n_class, dtype=np.float64)

    def value_and_grad(free):
        raw = np.tile(np.r_[0.0, free], (n_class, 1))
        g, _ = loss.gradient_hessian(labels, raw, eta)
        return loss.loss(labels, raw, eta).sum(), g.sum(axis=0)[1:]

    free = optimize.minimize(value_and_grad, np.log(eta[1:] / eta[0]), jac=True, method="BFGS",
                             options={"gtol": 1e-12}).x
    free = optimize.root(lambda f: value_and_grad(f)[1], free, tol=1e-15).x
    return np.r_[0.0, free]


@pytest.mark.parametrize("loss", [
    gbloss.LDAMLoss(1.0, [100.0, 10.0, 1.0]), gbloss.PolyLoss(2.0, 0.0, [0.2, 0.3, 0.5]),
    gbloss.PolyLoss(-1.0, 2.0), gbloss.FocalLoss(2.0, label_smoothing=0.1),
    gbloss.PolyLoss(1.0, 0.5, label_smoothing=0.05)], ids=repr)
def test_softmax_inverts_population_minimiser(loss, rng):
    smoothing = getattr(loss, "label_smoothing", 0.0)
    for eta in rng.dirichlet(np.ones(3), size=4):
        if smoothing:
            eta = 0.1 + 0.7 * eta  # the smoothed target keeps every class above eps / K
            eta /= eta.sum()
        z_star = _softmax_risk_minimiser(loss, eta)
        assert_allclose(calibrated_proba(loss, z_star[None, :], MULTICLASS)[0], eta,
                        rtol=1e-8 if smoothing else 1e-10)


@pytest.mark.parametrize("loss", [gbloss.LDAMLoss(0.8, [300.0, 30.0, 3.0, 1.0]),
                                  gbloss.PolyLoss(-1.0, 0.5), gbloss.PolyLoss(5.0)], ids=repr)
def test_softmax_expected_gradient_vanishes(loss, rng):
    raw = rng.normal(0, 3, (200, 4))
    eta = calibrated_proba(loss, raw, MULTICLASS)
    grads = [loss.gradient_hessian(np.full(200, c, dtype=float), raw)[0] for c in range(4)]
    expected = sum(eta[:, [c]] * grads[c] for c in range(4))
    scale = sum(eta[:, [c]] * np.abs(grads[c]) for c in range(4))
    assert np.all(np.abs(expected) <= 1e-12 * scale)


def test_ldam_map_is_the_fixed_point_of_the_issue(rng):
    """eta_k = sum_c eta_c softmax(z - Delta_c e_c)_k: the closed form is the stationary
    distribution of that stochastic matrix (an eigenvector solved by NumPy)."""
    loss = gbloss.LDAMLoss(1.5, [1000.0, 100.0, 10.0, 1.0])
    delta = loss.margins(4)
    raw = rng.normal(0, 3, (30, 4))
    eta = calibrated_proba(loss, raw, MULTICLASS)
    for i in range(raw.shape[0]):
        shifted = raw[i] - np.diag(delta)  # row c: z - Delta_c e_c
        m = special.softmax(shifted, axis=1)
        values, vectors = np.linalg.eig(m.T)
        stationary = np.real(vectors[:, np.argmin(np.abs(values - 1))])
        assert_allclose(eta[i], stationary / stationary.sum(), rtol=1e-10)
        assert_allclose(eta[i] @ m, eta[i], rtol=1e-12)


def test_ldam_two_classes_equals_binary_and_extremes(rng):
    raw = rng.normal(0, 4, (100, 2))
    two = calibrated_proba(gbloss.LDAMLoss(1.0, [40.0, 4.0]), raw, MULTICLASS)
    one = calibrated_proba(gbloss.LDAMLoss(1.0, [40.0, 4.0]), raw[:, 1] - raw[:, 0])
    assert_allclose(two[:, 1], one, rtol=1e-12)
    z = np.array([-1e6, -745.0, -30.0, 0.0, 30.0, 745.0, 1e6])
    eta = calibrated_proba(gbloss.LDAMLoss(2.0, [40.0, 4.0]), z)
    assert np.all(np.isfinite(eta)) and np.all(np.diff(eta) >= 0)
    assert eta[0] < 1e-200 and eta[-1] == 1.0 and 0 < eta[2] < eta[3] < eta[4] < 1
    rows = np.array([[1e6, 0.0, -1e6], [700.0, 700.0, 0.0], [-50.0, 0.0, 20.0]])
    eta = calibrated_proba(gbloss.LDAMLoss(1.0, [9.0, 3.0, 1.0]), rows, MULTICLASS)
    assert np.all(np.isfinite(eta))
    assert_allclose(eta.sum(axis=1), 1.0, rtol=1e-15)
    assert_allclose(eta[0], [1.0, 0.0, 0.0], atol=1e-200)


def test_ldam_calibration_undoes_the_margin_shift():
    """At the population optimum of a balanced row the rare class's raw score is higher, but
    the calibrated probability is back at 1/2."""
    loss = gbloss.LDAMLoss(1.0, [100.0, 1.0])
    z_star = _risk_minimiser(loss, 0.5)
    assert z_star > 0.3
    assert calibrated_proba(loss, np.array([z_star]))[0] == pytest.approx(0.5, rel=1e-8)


# ------------------------------------------------------------------------------------------------
# LDAM counts: prepare, weights, partitions


def test_ldam_prepare_takes_weighted_masses(rng):
    y = rng.choice(3, size=200, p=[0.7, 0.2, 0.1]).astype(float)
    w = rng.uniform(0.1, 3.0, 200)
    loss = gbloss.LDAMLoss(0.5)
    assert not loss.is_prepared
    prepared = loss.prepare(y, w)
    assert loss.counts is None and prepared.is_prepared
    assert_allclose(prepared.counts, np.bincount(y.astype(int), weights=w), rtol=1e-12)
    stats = LabelStats.from_labels(MULTICLASS, y, w)
    assert_array_equal(loss.prepare(stats).counts, prepared.counts)
    assert prepared.prepare(y) is prepared  # given counts are kept
    with pytest.raises(ValueError, match="prepare"):
        loss.predict_proba(np.zeros((2, 3)))
    # partitions (Dask): the statistics add up, and prepare needs nothing else
    parts = [LabelStats.from_labels(MULTICLASS, y[s], w[s], n_outputs=3)
             for s in (slice(0, 70), slice(70, 150), slice(150, 200))]
    assert_allclose(loss.prepare(LabelStats.total(parts)).counts, prepared.counts, rtol=1e-12)
    binary = loss.prepare((y == 2).astype(float), w)
    assert_allclose(binary.counts, [w[y != 2].sum(), w[y == 2].sum()], rtol=1e-12)


def test_ldam_counts_are_a_read_only_copy():
    counts = np.array([10.0, 5.0, 1.0])
    loss = gbloss.LDAMLoss(0.5, counts)
    counts[0] = 1.0
    assert loss.counts[0] == 10.0 and not loss.counts.flags.writeable
    assert gbloss.loss_from_dict(json.loads(json.dumps(loss.to_dict()))) == loss


def test_ldam_absent_class_gets_the_largest_margin(rng):
    y = rng.choice(3, size=100, p=[0.8, 0.2, 0.0]).astype(float)
    loss = gbloss.LDAMLoss(0.5).prepare(y, n_classes=4)
    assert loss.counts[2] == 0 and loss.counts[3] == 0
    margins = loss.margins(4)
    assert_allclose(margins[:2], 0.5 * (loss.counts[:2] / loss.counts[1]) ** -0.25)
    assert_array_equal(margins[2:], [0.5, 0.5])
    start = loss.init_score(y, n_classes=4)
    assert np.all(np.isfinite(start)) and np.all(start[2:] < start[:2] - 20)


# ------------------------------------------------------------------------------------------------
# Bad parameters


@pytest.mark.parametrize(("build", "match"), [
    pytest.param(lambda: gbloss.PolyLoss(-1.5), r"epsilon must be >= -1", id="epsilon<-1"),
    pytest.param(lambda: gbloss.PolyLoss(-1.01, 2.0), r"epsilon must be >= -1",
                 id="epsilon<-1-gamma2"),
    pytest.param(lambda: gbloss.PolyLoss(np.nan), "epsilon must be a finite", id="epsilon-nan"),
    pytest.param(lambda: gbloss.PolyLoss("1"), "epsilon must be a finite", id="epsilon-str"),
    pytest.param(lambda: gbloss.PolyLoss(True), "epsilon must be a finite", id="epsilon-bool"),
    pytest.param(lambda: gbloss.PolyLoss(1.0, -1.0), "gamma must be >= 0", id="poly-gamma"),
    pytest.param(lambda: gbloss.PolyLoss(1.0, 0.0, 1.5), r"alpha must lie in \[0, 1\]",
                 id="poly-alpha"),
    pytest.param(lambda: gbloss.PolyLoss(hessian="clip"), "hessian must be one of",
                 id="poly-hessian"),
    pytest.param(lambda: gbloss.LDAMLoss(-0.5), "max_margin must be >= 0", id="margin<0"),
    pytest.param(lambda: gbloss.LDAMLoss(np.inf), "max_margin must be a finite", id="margin-inf"),
    pytest.param(lambda: gbloss.LDAMLoss("0.5"), "max_margin must be a finite",
                 id="margin-str"),
    pytest.param(lambda: gbloss.LDAMLoss(0.5, [10.0, -1.0]), "counts must be", id="counts<0"),
    pytest.param(lambda: gbloss.LDAMLoss(0.5, [10.0]), "counts must be", id="counts-one"),
    pytest.param(lambda: gbloss.LDAMLoss(0.5, [0.0, 0.0]), "counts must be", id="counts-zero"),
    pytest.param(lambda: gbloss.LDAMLoss(0.5, [[1.0, 2.0]]), "counts must be", id="counts-2d"),
    pytest.param(lambda: gbloss.LDAMLoss(0.5, ["a", "b"]), "counts must be", id="counts-str"),
    pytest.param(lambda: gbloss.LDAMLoss(0.5, [1.0, np.nan]), "counts must be",
                 id="counts-nan"),
    pytest.param(lambda: gbloss.LDAMLoss(hessian="psdd"), "hessian must be one of",
                 id="ldam-hessian"),
    pytest.param(lambda: gbloss.CrossEntropyLoss(label_smoothing=1.0),
                 r"label_smoothing must lie in \[0, 1\)", id="ls=1"),
    pytest.param(lambda: gbloss.FocalLoss(label_smoothing=-0.1),
                 r"label_smoothing must be >= 0", id="ls<0"),
    pytest.param(lambda: gbloss.FocalLoss(label_smoothing="0.1"),
                 "label_smoothing must be a finite", id="ls-str"),
    pytest.param(lambda: gbloss.FocalLoss(label_smoothing=True),
                 "label_smoothing must be a finite", id="ls-bool"),
    pytest.param(lambda: gbloss.PolyLoss(label_smoothing=np.nan),
                 "label_smoothing must be a finite", id="ls-nan"),
])
def test_bad_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_inputs_name_the_argument():
    z2 = np.zeros((4, 3))
    yc = np.array([0.0, 1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="counts has 2 entries but the target has 3 classes"):
        gbloss.LDAMLoss(0.5, [3.0, 1.0]).gradient_hessian(yc, z2)
    with pytest.raises(ValueError, match="LDAMLoss does not support multilabel"):
        gbloss.LDAMLoss(0.5, [3.0, 1.0]).loss(np.zeros((4, 3)), z2)
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        gbloss.CrossEntropyLoss(label_smoothing=0.1).gradient_hessian(np.array([0, 3.0]),
                                                                      np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        gbloss.FocalLoss(label_smoothing=0.1).gradient_hessian(
            yc, np.array([[0.0, np.inf, 0.0]] * 4))
    with pytest.raises(ValueError, match="one softmax template"):
        _loops.Loops({**gbloss.FocalLoss.scalars,
                      **gbloss.FocalLoss(label_smoothing=0.1).scalars})


# ------------------------------------------------------------------------------------------------
# The protocol: registry, compare, engine defaults


def test_registry_keys_grids_and_defaults():
    assert by_key("poly") is gbloss.PolyLoss and by_key("ldam") is gbloss.LDAMLoss
    assert gbloss.PolyLoss.compare_grid(MULTICLASS) == {"epsilon": (-1.0, 1.0, 2.0)}
    assert gbloss.PolyLoss.compare_fixed(BINARY) == {"epsilon": 1.0}
    assert gbloss.LDAMLoss.compare_grid(BINARY) == {"max_margin": (0.5, 1.0, 2.0)}
    assert gbloss.LDAMLoss.compare_select == "balanced_accuracy"
    assert gbloss.LDAMLoss().engine_defaults("xgboost") == {}
    assert gbloss.PolyLoss(1.0).engine_defaults("xgboost") == {}
    assert gbloss.PolyLoss(-1.0).engine_defaults("lightgbm")["min_child_weight"] == 1e-3
    assert gbloss.PolyLoss(1.0, 2.0).engine_defaults("xgboost")["max_delta_step"] == 1.0
    for loss in (gbloss.PolyLoss(-1.0, 2.0, [0.2, 0.8], label_smoothing=0.1),
                 gbloss.FocalLoss(label_smoothing=0.3), gbloss.LDAMLoss(0.3)):
        assert gbloss.loss_from_dict(json.loads(json.dumps(loss.to_dict()))) == loss


def test_is_proper():
    assert gbloss.PolyLoss(0.0).is_proper(MULTICLASS)
    assert not gbloss.PolyLoss(1.0).is_proper(BINARY)
    assert not gbloss.PolyLoss(0.0, label_smoothing=0.1).is_proper(MULTICLASS)
    assert not gbloss.CrossEntropyLoss(label_smoothing=0.1).is_proper(BINARY)
    assert gbloss.LDAMLoss(0.0).is_proper(MULTICLASS)
    assert not gbloss.LDAMLoss(0.5).is_proper(MULTICLASS)


# ------------------------------------------------------------------------------------------------
# Both engines and the estimators


def _engine_data(task, rng, n=300):
    X = rng.normal(size=(n, 4))
    z = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.7, size=n)
    y = np.digitize(z, [-0.5, 1.2]).astype(float) if task == MULTICLASS else \
        (z > 1.0).astype(float)
    return X, y


ENGINE_LOSSES = [
    pytest.param(gbloss.PolyLoss(2.0), BINARY, id="poly-binary"),
    pytest.param(gbloss.PolyLoss(-1.0, 2.0, label_smoothing=0.1), MULTICLASS,
                 id="poly-focal-ls-multiclass"),
    pytest.param(gbloss.LDAMLoss(1.0), BINARY, id="ldam-binary"),
    pytest.param(gbloss.LDAMLoss(1.0), MULTICLASS, id="ldam-multiclass"),
    pytest.param(gbloss.CrossEntropyLoss(label_smoothing=0.1), MULTICLASS, id="ce-ls-multiclass"),
]


def _assert_fitted(loss, task, y, raw):
    """The trained model's mean loss is well below that of the optimal constant start."""
    n_classes = 3 if task == MULTICLASS else None
    prepared = loss.prepare(y, n_classes=n_classes)
    start = np.broadcast_to(prepared.init_score(y, n_classes=n_classes), raw.shape)
    assert prepared.loss(y, raw).mean() < 0.9 * prepared.loss(y, start).mean()


@pytest.mark.parametrize(("loss", "task"), ENGINE_LOSSES)
def test_xgboost_trains(loss, task, rng):
    xgb = pytest.importorskip("xgboost")
    import gbloss.xgboost as gbx

    X, y = _engine_data(task, rng)
    params = {"max_depth": 3, "eta": 0.3, "nthread": 1}
    if task == MULTICLASS:
        params["num_class"] = 3
    dtrain = xgb.DMatrix(X, label=y)
    booster = gbx.train(params, dtrain, 15, loss=loss)
    _assert_fitted(loss, task, y, gbx.predict_raw(booster, dtrain))
    loaded = xgb.Booster(model_file=bytearray(booster.save_raw("ubj")))
    assert_allclose(gbx.predict_proba(loaded, dtrain), gbx.predict_proba(booster, dtrain),
                    rtol=1e-12)


@pytest.mark.parametrize(("loss", "task"), ENGINE_LOSSES)
def test_lightgbm_trains(loss, task, rng):
    lgb = pytest.importorskip("lightgbm")
    import gbloss.lightgbm as gbl

    X, y = _engine_data(task, rng)
    params = {"num_leaves": 8, "learning_rate": 0.3, "verbosity": -1, "num_threads": 1}
    if task == MULTICLASS:
        params["num_class"] = 3
    booster = gbl.train(params, lgb.Dataset(X, label=y), 15, loss=loss)
    _assert_fitted(loss, task, y, gbl.predict_raw(booster, X))


def test_engines_take_ldam_counts_from_weighted_labels(rng):
    """Sample weights count in LDAM's class sizes (the engines keep weights in float32)."""
    xgb = pytest.importorskip("xgboost")
    lgb = pytest.importorskip("lightgbm")
    import gbloss.lightgbm as gbl
    import gbloss.xgboost as gbx

    X, y = _engine_data(MULTICLASS, rng)
    w = rng.uniform(0.2, 3.0, y.size)
    expected = np.bincount(y.astype(int), weights=w.astype(np.float32))
    booster = gbx.train({"num_class": 3, "nthread": 1}, xgb.DMatrix(X, label=y, weight=w), 2,
                        loss=gbloss.LDAMLoss(1.0))
    stored = gbloss.loss_from_dict(json.loads(booster.attr("gbloss_loss")))
    assert_allclose(stored.counts, expected, rtol=1e-12)
    booster = gbl.train({"num_class": 3, "num_threads": 1, "verbosity": -1},
                        lgb.Dataset(X, label=y, weight=w), 2, loss=gbloss.LDAMLoss(1.0))
    proba = gbl.predict_proba(booster, X)
    expected_loss = gbloss.LDAMLoss(1.0, expected)
    assert_allclose(proba, expected_loss.predict_proba(gbl.predict_raw(booster, X)),
                    rtol=1e-6)


def test_xgb_estimator_with_ldam_and_grid_search(rng):
    pytest.importorskip("xgboost")
    from sklearn.model_selection import GridSearchCV

    from gbloss.sklearn import GBLossXGBClassifier

    X, y = _engine_data(MULTICLASS, rng)
    w = rng.uniform(0.5, 2.0, y.size)
    clf = GBLossXGBClassifier(gbloss.LDAMLoss(), n_estimators=8, max_depth=2, n_jobs=1)
    clf.fit(X, y, sample_weight=w)
    assert_allclose(clf.loss_.counts, np.bincount(y.astype(int), weights=w), rtol=1e-12)
    proba = clf.predict_proba(X)
    assert proba.shape == (y.size, 3) and np.allclose(proba.sum(axis=1), 1.0)
    plain = clf.set_params(calibrate=False).predict_proba(X)
    assert not np.allclose(proba, plain)  # LDAM's link is not calibrated
    search = GridSearchCV(GBLossXGBClassifier(gbloss.LDAMLoss(), n_estimators=5, max_depth=2,
                                              n_jobs=1),
                          {"loss__max_margin": [0.0, 1.0]}, cv=2).fit(X, y)
    assert search.best_params_["loss__max_margin"] in (0.0, 1.0)
    assert search.best_estimator_.loss_.counts is not None


def test_lgbm_estimator_with_poly_and_smoothing(rng):
    pytest.importorskip("lightgbm")
    from sklearn.model_selection import GridSearchCV

    from gbloss.sklearn import GBLossLGBMClassifier

    X, y = _engine_data(BINARY, rng)
    clf = GBLossLGBMClassifier(gbloss.PolyLoss(2.0), n_estimators=8, num_leaves=4, n_jobs=1)
    proba = clf.fit(X, y).predict_proba(X)
    assert proba.shape == (y.size, 2) and np.all((proba >= 0) & (proba <= 1))
    search = GridSearchCV(clf, {"loss__epsilon": [-1.0, 2.0],
                                "loss__label_smoothing": [0.0, 0.1]}, cv=2).fit(X, y)
    assert search.best_params_["loss__epsilon"] in (-1.0, 2.0)
