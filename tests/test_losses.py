"""The loss contract: exact derivatives, Hessian policies, reductions, independent closed forms,
the optimal constant start, and input validation.

Derivatives are checked against 4th-order central differences of the per-sample loss (gradient)
and of the gradient (exact Hessian) for every registry entry (see conftest.py). For softmax, the
difference w.r.t. z_k of the per-sample loss is grad k and that of grad k is the Hessian diagonal.
"""

import itertools
import json

import numba
import numpy as np
import pytest
from conftest import (
    BINARY,
    GAMMAS,
    MULTICLASS,
    MULTILABEL,
    POLICIES,
    REGISTRY,
    case_params,
    column_fd,
    make_data,
    mpmath,
    needs_mpmath,
    per_class_alpha,
    priors_for,
    with_policy,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special

import gbloss
from gbloss.losses import _loops

RTOL, ATOL = 1e-6, 1e-9  # finite differences, float64, step 2**-13
N_ROWS = 40


def _columns(raw):
    return 1 if raw.ndim == 1 else raw.shape[1]


def _col(a, k):
    return a if a.ndim == 1 else a[:, k]


def _fd_params(**kwargs):
    """Registry params times (weights, labels): soft labels for the sigmoid tasks only."""
    params = []
    for p in case_params(**kwargs):
        case, task, k = p.values
        for weighted in (False, True):
            for soft in (False, True) if task != MULTICLASS else (False,):
                wid = "w" if weighted else "unw"
                lid = "soft" if soft else "hard"
                params.append(pytest.param(case, task, k, weighted, soft,
                                           id=f"{p.id}-{wid}-{lid}"))
    return params


def _fd_data(loss, task, n_out, weighted, soft, rng):
    y, raw = make_data(task, n_out, N_ROWS, rng, soft=soft, avoid_kink_of=loss)
    w = rng.uniform(0.25, 3.0, N_ROWS) if weighted else None
    return y, raw, w


# ------------------------------------------------------------------------------------------------
# 1. Exact derivatives against finite differences


@pytest.mark.parametrize(("case", "task", "n_out", "weighted", "soft"),
                         _fd_params(select=lambda c: "detached" not in c.name))
def test_gradient_is_finite_difference_of_loss(case, task, n_out, weighted, soft, rng):
    loss = case.build(n_out)
    y, raw, w = _fd_data(loss, task, n_out, weighted, soft, rng)
    grad, _ = loss.gradient_hessian(y, raw, w)
    for k in range(_columns(raw)):
        fd = column_fd(lambda x: loss.loss(y, x, w), raw, k)
        assert_allclose(_col(grad, k), fd, rtol=RTOL, atol=ATOL, err_msg=f"column {k}")


@pytest.mark.parametrize(("case", "task", "n_out", "weighted", "soft"), _fd_params())
def test_exact_hessian_is_finite_difference_of_gradient(case, task, n_out, weighted, soft, rng):
    """For the detached ASL gradient this is its 'total' curvature (derivations 4.3)."""
    loss = with_policy(case.build(n_out), "exact")
    y, raw, w = _fd_data(loss, task, n_out, weighted, soft, rng)
    _, hess = loss.gradient_hessian(y, raw, w)
    for k in range(_columns(raw)):
        fd = column_fd(lambda x, k=k: _col(loss.gradient_hessian(y, x, w)[0], k), raw, k)
        assert_allclose(_col(hess, k), fd, rtol=RTOL, atol=ATOL, err_msg=f"column {k}")


def _asl_detached_gradient(y, z, gamma_pos, gamma_neg, clip):
    """derivations 4.3: g+ = -q^(g+ + 1); g- = u^g- pq / v for u = p - m > 0, else 0."""
    p, q = special.expit(z), special.expit(-z)
    u, v = p - clip, q + clip
    g_neg = np.where(u > 0, np.maximum(u, 0.0) ** gamma_neg * p * q / v, 0.0)
    return -y * q ** (gamma_pos + 1.0) + (1.0 - y) * g_neg


@pytest.mark.parametrize(("case", "task", "n_out", "weighted", "soft"),
                         _fd_params(select=lambda c: "detached" in c.name))
def test_detached_asl_gradient_is_closed_form(case, task, n_out, weighted, soft, rng):
    loss = case.build(n_out)
    y, raw, w = _fd_data(loss, task, n_out, weighted, soft, rng)
    grad, _ = loss.gradient_hessian(y, raw, w)
    expected = _asl_detached_gradient(y, raw, loss.gamma_pos, loss.gamma_neg, loss.clip)
    if w is not None:
        expected = expected * (w if raw.ndim == 1 else w[:, None])
    assert_allclose(grad, expected, rtol=1e-10, atol=1e-15)


def test_detached_gradient_differs_from_the_loss_derivative(rng):
    """Guards the test above: the detached gradient is not the derivative of the loss."""
    loss = gbloss.AsymmetricLoss(1.0, 4.0, 0.05, gradient="detached")
    exact = gbloss.AsymmetricLoss(1.0, 4.0, 0.05)
    y, raw = make_data(BINARY, 1, N_ROWS, rng, avoid_kink_of=loss)
    assert_allclose(loss.loss(y, raw), exact.loss(y, raw), rtol=1e-15)
    assert np.max(np.abs(loss.gradient_hessian(y, raw)[0] - exact.gradient_hessian(y, raw)[0])) \
        > 1e-2


# ------------------------------------------------------------------------------------------------
# Independent closed forms (plain float64 formulas at moderate margins, and mpmath)


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("alpha", [None, 0.25])
def test_binary_focal_loss_is_textbook_formula(gamma, alpha, rng):
    y = rng.integers(0, 2, 50).astype(float)
    z = rng.uniform(-5, 5, 50)
    p = 1.0 / (1.0 + np.exp(-z))
    p_t = np.where(y == 1, p, 1 - p)
    a_t = 1.0 if alpha is None else np.where(y == 1, alpha, 1 - alpha)
    expected = -a_t * (1 - p_t) ** gamma * np.log(p_t)
    assert_allclose(gbloss.FocalLoss(gamma, alpha).loss(y, z), expected, rtol=1e-12)


@pytest.mark.parametrize("task", [BINARY, MULTILABEL])
def test_cross_entropy_derivatives_are_p_minus_y(task, rng):
    y, raw = make_data(task, 4, 50, rng, soft=True, low=-6, high=6)
    p = special.expit(raw)
    grad, hess = gbloss.CrossEntropyLoss(hessian="exact").gradient_hessian(y, raw)
    assert_allclose(grad, p - y, rtol=1e-12, atol=1e-15)
    assert_allclose(hess, p * (1 - p), rtol=1e-12)
    expected_loss = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    if task == MULTILABEL:
        expected_loss = expected_loss.sum(axis=1)
    assert_allclose(gbloss.CrossEntropyLoss().loss(y, raw), expected_loss, rtol=1e-12)


@pytest.mark.parametrize("loss", [gbloss.CrossEntropyLoss(hessian="exact"),
                                  gbloss.LogitAdjustedLoss(1.0, priors_for(5), hessian="exact")],
                         ids=["ce", "la-tau1"])
def test_softmax_cross_entropy_derivatives_are_p_minus_onehot(loss, rng):
    y, raw = make_data(MULTICLASS, 5, 50, rng, low=-6, high=6)
    shift = loss.tau * np.log(loss.priors) if isinstance(loss, gbloss.LogitAdjustedLoss) else 0.0
    p = special.softmax(raw + shift, axis=1)
    onehot = np.eye(5)[y.astype(int)]
    grad, hess = loss.gradient_hessian(y, raw)
    assert_allclose(grad, p - onehot, rtol=1e-12, atol=1e-15)
    assert_allclose(hess, p * (1 - p), rtol=1e-12, atol=1e-300)
    assert_allclose(loss.loss(y, raw), -np.log(p[np.arange(50), y.astype(int)]), rtol=1e-12)


def _mp_derivatives(func, x):
    """(f, f', f'') of a scalar mpmath function at x, 40 digits."""
    with mpmath.workdps(40):
        return [float(mpmath.diff(func, mpmath.mpf(x), n)) for n in (0, 1, 2)]


def _mp_focal(y, alpha, gamma):
    def f(z):
        p = 1 / (1 + mpmath.exp(-z))
        p_t, a_t = (p, alpha) if y == 1 else (1 - p, 1 - alpha)
        return -a_t * (1 - p_t) ** gamma * mpmath.log(p_t)
    return f


def _mp_asl(y, gamma_pos, gamma_neg, clip):
    def f(z):
        p = 1 / (1 + mpmath.exp(-z))
        if y == 1:
            return -((1 - p) ** gamma_pos) * mpmath.log(p)
        pm = max(p - clip, 0)
        return -(pm ** gamma_neg) * mpmath.log(1 - pm)
    return f


MP_POINTS = (-7.3, -2.5, -0.4, 0.0, 1.3, 4.1, 9.0)


@needs_mpmath
@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.7])
def test_binary_focal_derivatives_match_mpmath(gamma):
    loss = gbloss.FocalLoss(gamma, 0.25, hessian="exact")
    for y in (0.0, 1.0):
        z = np.array(MP_POINTS)
        grad, hess = loss.gradient_hessian(np.full(z.shape, y), z)
        values = loss.loss(np.full(z.shape, y), z)
        ref = np.array([_mp_derivatives(_mp_focal(y, 0.25, gamma), zi) for zi in z])
        assert_allclose(values, ref[:, 0], rtol=1e-13)
        assert_allclose(grad, ref[:, 1], rtol=1e-12)
        assert_allclose(hess, ref[:, 2], rtol=1e-10, atol=1e-16)


@needs_mpmath
@pytest.mark.parametrize(("gamma_pos", "gamma_neg", "clip"),
                         [(0.0, 4.0, 0.05), (1.0, 0.5, 0.05), (0.5, 2.0, 0.2), (2.0, 1.0, 0.0)])
def test_asl_derivatives_match_mpmath(gamma_pos, gamma_neg, clip):
    """Points at least 0.5 from the kink, on both sides of it."""
    loss = gbloss.AsymmetricLoss(gamma_pos, gamma_neg, clip, hessian="exact")
    for y in (0.0, 1.0):
        z = np.array(MP_POINTS)
        grad, hess = loss.gradient_hessian(np.full(z.shape, y), z)
        values = loss.loss(np.full(z.shape, y), z)
        ref = np.array([_mp_derivatives(_mp_asl(y, gamma_pos, gamma_neg, clip), zi) for zi in z])
        assert_allclose(values, ref[:, 0], rtol=1e-12, atol=1e-300)
        assert_allclose(grad, ref[:, 1], rtol=1e-11, atol=1e-300)
        assert_allclose(hess, ref[:, 2], rtol=1e-10, atol=1e-300)


@needs_mpmath
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_softmax_focal_derivatives_match_mpmath(gamma):
    alpha = np.array([0.2, 0.5, 0.3])
    loss = gbloss.FocalLoss(gamma, alpha, hessian="exact")
    raw = np.array([[1.5, -0.7, 0.2], [-3.0, 2.5, 1.0], [0.3, 0.1, -4.0]])
    y = np.array([0.0, 0.0, 2.0])
    grad, hess = loss.gradient_hessian(y, raw)
    values = loss.loss(y, raw)
    for i in range(3):
        c = int(y[i])

        def f_k(t, i=i, c=c, k=0):
            z = [mpmath.mpf(v) for v in raw[i]]
            z[k] = t
            p_c = mpmath.exp(z[c]) / sum(mpmath.exp(v) for v in z)
            return -alpha[c] * (1 - p_c) ** gamma * mpmath.log(p_c)

        for k in range(3):
            ref = _mp_derivatives(lambda t, k=k: f_k(t, k=k), raw[i, k])
            assert values[i] == pytest.approx(ref[0], rel=1e-13)
            assert grad[i, k] == pytest.approx(ref[1], rel=1e-12)
            assert hess[i, k] == pytest.approx(ref[2], rel=1e-10)


# ------------------------------------------------------------------------------------------------
# Reductions ("Reduces to" lines of the docstrings)


def _outputs(loss, y, raw, w=None):
    return (loss.loss(y, raw, w), *loss.gradient_hessian(y, raw, w))


def _assert_same(a, b, rtol=1e-13):
    for name, x, z in zip(("loss", "grad", "hess"), a, b, strict=True):
        assert_allclose(x, z, rtol=rtol, atol=1e-300, err_msg=name)


TASK_SHAPES = [pytest.param(BINARY, 1, id="binary"), pytest.param(MULTICLASS, 4, id="multiclass"),
               pytest.param(MULTILABEL, 4, id="multilabel")]


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize(("task", "n_out"), TASK_SHAPES)
@pytest.mark.parametrize("alpha", ["none", "alpha"])
def test_focal_gamma0_is_cross_entropy(task, n_out, alpha, hessian, rng):
    a = None if alpha == "none" else (per_class_alpha(n_out) if task != BINARY else 0.3)
    y, raw = make_data(task, n_out, N_ROWS, rng, soft=task != MULTICLASS)
    w = rng.uniform(0.5, 2, N_ROWS)
    _assert_same(_outputs(gbloss.FocalLoss(0.0, a, hessian=hessian), y, raw, w),
                 _outputs(gbloss.CrossEntropyLoss(a, hessian=hessian), y, raw, w))


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize(("task", "n_out"), TASK_SHAPES[:2])
def test_logit_adjustment_tau0_is_cross_entropy(task, n_out, hessian, rng):
    y, raw = make_data(task, n_out, N_ROWS, rng)
    la = gbloss.LogitAdjustedLoss(0.0, priors_for(n_out), hessian=hessian)
    _assert_same(_outputs(la, y, raw), _outputs(gbloss.CrossEntropyLoss(hessian=hessian), y, raw))


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize(("task", "n_out"), [TASK_SHAPES[0], TASK_SHAPES[2]])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_asl_symmetric_without_clip_is_focal(gamma, task, n_out, hessian, rng):
    y, raw = make_data(task, n_out, N_ROWS, rng, soft=True)
    asl = gbloss.AsymmetricLoss(gamma, gamma, 0.0, hessian=hessian)
    _assert_same(_outputs(asl, y, raw), _outputs(gbloss.FocalLoss(gamma, hessian=hessian), y, raw))


@pytest.mark.parametrize("hessian", POLICIES)
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("gamma", GAMMAS)
def test_two_class_softmax_focal_is_binary_focal_on_margin_difference(gamma, alpha, hessian, rng):
    y, raw = make_data(MULTICLASS, 2, N_ROWS, rng)
    w = rng.uniform(0.5, 2, N_ROWS)
    softmax = gbloss.FocalLoss(gamma, None if alpha is None else [1 - alpha, alpha],
                               hessian=hessian)
    binary = gbloss.FocalLoss(gamma, alpha, hessian=hessian)
    loss2, grad2, hess2 = _outputs(softmax, y, raw, w)
    loss1, grad1, hess1 = _outputs(binary, y, raw[:, 1] - raw[:, 0], w)
    assert_allclose(loss2, loss1, rtol=1e-13)
    assert_allclose(grad2[:, 1], grad1, rtol=1e-13, atol=1e-300)
    assert_allclose(grad2[:, 0], -grad1, rtol=1e-13, atol=1e-300)
    # the exact Hessian cancels near its sign change (derivations 2.6), where the binary loop's
    # fused multiply-adds and the softmax loop's separate roundings differ by 1e-13 relative
    assert_allclose(hess2[:, 1], hess1, rtol=3e-13, atol=1e-300)
    assert_allclose(hess2[:, 0], hess1, rtol=3e-13, atol=1e-300)


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [None, 0.25, "per-label"])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 1.5])
def test_multilabel_focal_is_binary_focal_per_label(gamma, alpha, weighted, order, rng):
    """Hard multi-label targets go through the binary loop as one flat run (no weights, one
    alpha for all labels, C order) or through the row loop (otherwise): either way each label
    is the binary loss on its column."""
    n_out = 5
    y, raw = make_data(MULTILABEL, n_out, N_ROWS, rng)
    raw = np.asarray(raw, order=order)
    w = rng.uniform(0.5, 2, N_ROWS) if weighted else None
    alphas = ([None] * n_out if alpha is None else [alpha] * n_out if alpha == 0.25
              else [0.1, 0.3, 0.5, 0.7, 0.9])
    loss = gbloss.FocalLoss(gamma, None if alpha is None else alphas, hessian="exact")
    grad, hess = loss.gradient_hessian(y, raw, w)
    for k in range(n_out):
        g, h = gbloss.FocalLoss(gamma, alphas[k], hessian="exact").gradient_hessian(
            y[:, k], np.ascontiguousarray(raw[:, k]), w)
        assert_allclose(grad[:, k], g, rtol=1e-15, atol=1e-300)
        assert_allclose(hess[:, k], h, rtol=1e-15, atol=1e-300)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_binary_logit_adjustment_is_two_class_softmax(tau, rng):
    y, raw = make_data(MULTICLASS, 2, N_ROWS, rng)
    priors = [0.85, 0.15]
    loss2, grad2, hess2 = _outputs(gbloss.LogitAdjustedLoss(tau, priors, hessian="exact"), y, raw)
    loss1, grad1, hess1 = _outputs(gbloss.LogitAdjustedLoss(tau, priors, hessian="exact"), y,
                                   raw[:, 1] - raw[:, 0])
    assert_allclose(loss2, loss1, rtol=1e-12)
    assert_allclose(grad2[:, 1], grad1, rtol=1e-12)
    assert_allclose(hess2[:, 1], hess1, rtol=1e-12)


def test_alpha_half_is_half_the_unweighted_loss(rng):
    y, raw = make_data(BINARY, 1, N_ROWS, rng)
    half = _outputs(gbloss.FocalLoss(2.0, 0.5, hessian="exact"), y, raw)
    full = _outputs(gbloss.FocalLoss(2.0, hessian="exact"), y, raw)
    _assert_same(half, tuple(0.5 * a for a in full))


def test_posthoc_logit_adjustment_trains_with_cross_entropy(rng):
    y, raw = make_data(MULTICLASS, 3, N_ROWS, rng)
    posthoc = gbloss.LogitAdjustedLoss(1.0, priors_for(3), posthoc=True)
    _assert_same(_outputs(posthoc, y, raw), _outputs(gbloss.CrossEntropyLoss(), y, raw))
    assert_allclose(posthoc.decision_scores(raw), raw - np.log(priors_for(3)), rtol=1e-15)
    assert_allclose(posthoc.predict_proba(raw), special.softmax(raw, axis=1), rtol=1e-14)


# ------------------------------------------------------------------------------------------------
# Hessian policies: property tests over margins in [-50, 50]

margins = hnp.arrays(np.float64, st.integers(1, 30), elements=st.floats(-50, 50))
gammas = st.sampled_from((0.0, 0.5, 1.0, 1.5, 2.0, 3.7, 5.0))
alphas = st.sampled_from((None, 0.1, 0.25, 0.9))


def _policies(loss, y, raw):
    return {h: with_policy(loss, h).gradient_hessian(y, raw)[1] for h in POLICIES}


def _hard_labels(data, shape):
    return data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from((0.0, 1.0))))


@settings(max_examples=60, deadline=None)
@given(z=margins, gamma=gammas, alpha=alphas, data=st.data())
def test_binary_focal_policies(z, gamma, alpha, data):
    y = _hard_labels(data, z.shape)
    loss = gbloss.FocalLoss(gamma, alpha)
    h = _policies(loss, y, z)
    assert np.all(h["psd"] >= h["exact"])
    assert np.all(h["psd"] > 0)
    assert np.all(h["gn"] > 0)
    a_t = np.ones_like(z) if alpha is None else np.where(y == 1, alpha, 1 - alpha)
    assert_allclose(h["psd"], np.maximum(h["exact"], h["gn"]) + 1e-16 * a_t, rtol=1e-15, atol=0)
    # psd is the exact Hessian (plus the 1e-16 a_t floor) wherever p_t >= 1/(1+gamma)
    p_t = special.expit(np.where(y == 1, z, -z))
    fit = p_t >= 1.0 / (1.0 + gamma)
    assert_allclose(h["psd"][fit], (h["exact"] + 1e-16 * a_t)[fit], rtol=1e-13, atol=1e-30)


@settings(max_examples=40, deadline=None)
@given(z=hnp.arrays(np.float64, st.tuples(st.integers(1, 10), st.integers(2, 6)),
                    elements=st.floats(-50, 50)), gamma=gammas, data=st.data())
def test_softmax_focal_policies(z, gamma, data):
    y = data.draw(hnp.arrays(np.float64, z.shape[0], elements=st.integers(0, z.shape[1] - 1)))
    h = _policies(gbloss.FocalLoss(gamma), y, z)
    assert np.all(h["psd"] >= h["exact"])
    assert np.all(h["psd"] > 0)
    assert np.all(h["gn"] > 0)
    target = (np.arange(z.shape[0]), y.astype(int))
    assert_allclose(h["psd"][target], np.maximum(h["exact"], h["gn"])[target] + 1e-16, rtol=1e-15,
                    atol=0)
    # rows whose target probability is >= 1/(1+gamma): the whole diagonal is exact
    p_y = special.softmax(z, axis=1)[np.arange(z.shape[0]), y.astype(int)]
    fit = p_y >= 1.0 / (1.0 + gamma) * (1 + 1e-9)
    assert_allclose(h["psd"][fit], h["exact"][fit] + 1e-16, rtol=1e-12, atol=1e-30)


@settings(max_examples=60, deadline=None)
@given(z=margins, gamma_pos=gammas, gamma_neg=gammas, clip=st.sampled_from((0.0, 0.05, 0.2)),
       gradient=st.sampled_from(("exact", "detached")), data=st.data())
def test_asl_policies(z, gamma_pos, gamma_neg, clip, gradient, data):
    y = _hard_labels(data, z.shape)
    loss = gbloss.AsymmetricLoss(gamma_pos, gamma_neg, clip, gradient=gradient)
    h = _policies(loss, y, z)
    grad = loss.gradient_hessian(y, z)[0]
    assert np.all(h["psd"] > 0)
    # The PSD policy caps the u^(g-1) blow-up of 0 < gamma_neg < 1 at u = p - clip = 1e-3
    # (derivations 8.2), so only there may it fall below the (huge) exact Hessian.
    capped = (y == 0) & (clip > 0) & (0 < gamma_neg < 1) & (special.expit(z) - clip < 1e-3)
    assert np.all(h["psd"][~capped] >= h["exact"][~capped])
    floor = 1e-16 * np.ones_like(z)
    assert_allclose(h["psd"][~capped], (np.maximum(h["exact"], h["gn"]) + floor)[~capped],
                    rtol=1e-15, atol=0)
    # Gauss-Newton part: > 0, except for negatives inside the margin (p <= clip), where the loss
    # is flat: there it is 0 like the gradient.
    flat = (y == 0) & (special.expit(z) <= clip)
    assert np.all(h["gn"][~flat] > 0)
    assert np.all(h["gn"][flat] == 0) and np.all(grad[flat] == 0)


def test_asl_psd_caps_the_kink_blow_up():
    """0 < gamma_neg < 1 with a clip: the exact Hessian -> +inf at p = clip; psd stays bounded."""
    clip = 0.05
    u = np.array([1e-12, 1e-9, 1e-6, 1e-4])
    z = special.logit(clip + u)
    y = np.zeros_like(z)
    exact = gbloss.AsymmetricLoss(0.0, 0.5, clip, hessian="exact").gradient_hessian(y, z)[1]
    psd = gbloss.AsymmetricLoss(0.0, 0.5, clip).gradient_hessian(y, z)[1]
    assert np.all(np.diff(exact) < 0) and exact[0] > 1e3
    assert np.all(np.isfinite(psd)) and np.all(psd > 0) and np.all(psd < 1.0)


# ------------------------------------------------------------------------------------------------
# 3. Optimal constant start

START_LOSSES = [
    gbloss.FocalLoss(2.0, 0.25),
    gbloss.FocalLoss(0.5),
    gbloss.CrossEntropyLoss(),
    gbloss.CrossEntropyLoss(0.7),
    gbloss.AsymmetricLoss(),
    gbloss.AsymmetricLoss(1.0, 4.0, 0.05, gradient="detached"),
    gbloss.AsymmetricLoss(0.0, 2.0, 0.0),
    gbloss.LogitAdjustedLoss(1.0, [0.7, 0.3]),
    gbloss.LogitAdjustedLoss(1.0),
]


def _minimise_scalar(total):
    res = optimize.minimize_scalar(total, bounds=(-30, 30), method="bounded",
                                   options={"xatol": 1e-10})
    return res.x, res.fun


@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "w"])
@pytest.mark.parametrize("loss", START_LOSSES, ids=repr)
def test_binary_start_minimises_total_loss(loss, weighted, rng):
    y = (rng.uniform(size=300) < 0.2).astype(float)
    w = rng.uniform(0.1, 3.0, 300) if weighted else None
    start = loss.init_score(y, w)
    assert isinstance(start, float)

    def total(b):
        return loss.loss(y, np.full(y.shape, b), w).sum()

    x_ref, f_ref = _minimise_scalar(total)
    assert total(start) <= f_ref * (1 + 1e-12)
    assert start == pytest.approx(x_ref, abs=1e-4)


@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "w"])
@pytest.mark.parametrize("loss", [s for s in START_LOSSES if MULTILABEL in s.tasks] + [
    gbloss.FocalLoss(2.0, per_class_alpha(3))], ids=repr)
def test_multilabel_start_minimises_each_label(loss, weighted, rng):
    y = (rng.uniform(size=(200, 3)) < [0.05, 0.3, 0.6]).astype(float)
    w = rng.uniform(0.1, 3.0, 200) if weighted else None
    start = loss.init_score(y, w)
    assert start.shape == (3,)
    for k in range(3):
        def total(b, k=k):
            raw = np.tile(start, (200, 1))
            raw[:, k] = b
            return loss.loss(y, raw, w).sum()

        x_ref, f_ref = _minimise_scalar(total)
        assert total(start[k]) <= f_ref * (1 + 1e-12)
        assert start[k] == pytest.approx(x_ref, abs=1e-4)


@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "w"])
@pytest.mark.parametrize("loss", [
    gbloss.FocalLoss(2.0), gbloss.FocalLoss(0.5, [0.2, 0.5, 0.3]), gbloss.CrossEntropyLoss(),
    gbloss.LogitAdjustedLoss(1.0, [0.5, 0.3, 0.2]), gbloss.LogitAdjustedLoss(2.0)], ids=repr)
def test_multiclass_start_minimises_total_loss(loss, weighted, rng):
    y = rng.choice(3, size=300, p=[0.7, 0.2, 0.1]).astype(float)
    w = rng.uniform(0.1, 3.0, 300) if weighted else None
    start = loss.init_score(y, w)
    assert start.shape == (3,)
    assert special.logsumexp(start) == pytest.approx(0.0, abs=1e-12)

    def total(b):
        return loss.loss(y, np.tile(b, (300, 1)), w).sum()

    ref = optimize.minimize(total, np.zeros(3), method="BFGS", options={"gtol": 1e-9})
    # softmax is shift invariant: compare the loss values at the optimum
    assert total(start) <= ref.fun * (1 + 1e-10)
    assert total(start) == pytest.approx(ref.fun, rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True], ids=["unw", "w"])
def test_cross_entropy_starts_are_log_frequencies(weighted, rng):
    y = rng.choice(4, size=500, p=[0.6, 0.25, 0.1, 0.05]).astype(float)
    w = rng.uniform(0.1, 3.0, 500) if weighted else np.ones(500)
    freq = np.bincount(y.astype(int), weights=w) / w.sum()
    ce = gbloss.CrossEntropyLoss()
    assert_allclose(ce.init_score(y, w), np.log(freq), rtol=1e-12)
    y01 = (y == 0).astype(float)
    mean = np.average(y01, weights=w)
    assert ce.init_score(y01, w) == pytest.approx(np.log(mean / (1 - mean)), rel=1e-12)
    y2 = np.stack([y == 0, y == 3], axis=1).astype(float)
    means = np.average(y2, axis=0, weights=w)
    assert_allclose(ce.init_score(y2, w), np.log(means / (1 - means)), rtol=1e-12)


def test_logit_adjusted_start_at_training_priors_is_uniform(rng):
    """softmax(b + tau log pi) = pi at the CE optimum, so b = 0 (up to the shift) for tau=1."""
    y = rng.choice(3, size=300, p=[0.7, 0.2, 0.1]).astype(float)
    loss = gbloss.LogitAdjustedLoss(1.0).prepare(y)
    assert_allclose(loss.init_score(y), np.full(3, -np.log(3)), rtol=1e-12)
    yb = (y == 2).astype(float)
    assert gbloss.LogitAdjustedLoss(1.0).prepare(yb).init_score(yb) == pytest.approx(0, abs=1e-9)


@pytest.mark.parametrize("gamma_neg", [0.0, 0.5])
def test_asl_start_at_the_kink(gamma_neg):
    """2% positives, gamma- <= 1/2: the total loss has its minimum at the kink p = clip, where
    the gradient jumps (gamma- = 0) or the Hessian is infinite (gamma- = 1/2)."""
    y = np.zeros(1000)
    y[:20] = 1.0
    loss = gbloss.AsymmetricLoss(0.0, gamma_neg, 0.05)

    def total(b):
        return loss.loss(y, np.full(y.shape, b)).sum()

    start = loss.init_score(y)
    _, f_ref = _minimise_scalar(total)
    assert total(start) <= f_ref * (1 + 1e-12)
    if gamma_neg == 0.0:
        assert start == pytest.approx(special.logit(0.05), abs=1e-9)


def test_start_with_absent_class_is_finite_and_low():
    y = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    start = gbloss.CrossEntropyLoss().init_score(y, n_classes=4)
    assert start.shape == (4,) and np.all(np.isfinite(start))
    assert np.all(start[2:] < start[:2] - 20)


@pytest.mark.parametrize("positives", [0.01, 0.001])
@pytest.mark.parametrize("loss", [gbloss.FocalLoss(2.0, 0.25), gbloss.AsymmetricLoss(),
                                  gbloss.AsymmetricLoss(gradient="detached")], ids=repr)
def test_root_hessian_sum_is_positive_at_the_start(loss, positives):
    n = 20_000
    y = np.zeros(n)
    y[: int(n * positives)] = 1.0
    start = loss.init_score(y)
    grad, hess = loss.gradient_hessian(y, np.full(n, start))
    assert hess.sum() > 0
    if loss.get_params().get("gradient") != "detached":
        # the start is stationary: the summed gradient vanishes
        assert abs(grad.sum()) <= 1e-9 * np.abs(grad).sum()


# ------------------------------------------------------------------------------------------------
# 5. Bad input: clear errors naming the argument, inputs never modified


def _bad_inputs():
    f = gbloss.FocalLoss(2.0, 0.25)
    fm = gbloss.FocalLoss(2.0)
    z1, z2 = np.zeros(4), np.zeros((4, 3))
    y01 = np.array([0.0, 1.0, 1.0, 0.0])
    yc = np.array([0.0, 1.0, 2.0, 1.0])
    cases = [
        ("binary-y=2", f, np.array([0.0, 2.0, 1.0, 0.0]), z1, None,
         r"y must hold labels in \[0, 1\]"),
        ("binary-y<0", f, np.array([0.0, -1.0, 1.0, 0.0]), z1, None, "y must hold"),
        ("multiclass-y=K", fm, np.array([0.0, 3.0, 1.0, 0.0]), z2, None,
         r"y must hold integer class labels in 0\.\.2"),
        ("multiclass-y=-1", fm, np.array([0.0, -1.0, 1.0, 0.0]), z2, None, "y must hold integer"),
        ("multiclass-y=1.5", fm, np.array([0.0, 1.5, 1.0, 0.0]), z2, None, "y must hold integer"),
        ("multilabel-y=2", fm, np.full((4, 3), 2.0), z2, None, "y must hold labels"),
        ("nan-label-binary", f, np.array([0.0, np.nan, 1.0, 0.0]), z1, None, "y contains NaN"),
        ("nan-label-multiclass", fm, np.array([0.0, np.nan, 1.0, 0.0]), z2, None, "y contains NaN"),
        ("y-length", f, y01[:3], z1, None, r"y and raw do not match.*\(3,\).*\(4,\)"),
        ("multiclass-y-length", fm, yc[:3], z2, None, "y and raw do not match"),
        ("multilabel-shape", fm, np.zeros((4, 2)), z2, None, r"y and raw do not match.*\(4, 2\)"),
        ("raw-3d", f, y01, np.zeros((4, 3, 2)), None, "raw must be 1-D or 2-D"),
        ("y-3d", fm, np.zeros((4, 3, 2)), z2, None, "y must be 1-D or 2-D"),
        ("raw-strings", f, y01, np.array(["a"] * 4), None, "raw must be numeric"),
        ("nan-weight", f, y01, z1, np.array([1.0, np.nan, 1.0, 1.0]), "sample_weight contains NaN"),
        ("negative-weight", f, y01, z1, np.array([1.0, -1.0, 1.0, 1.0]),
         r"sample_weight must be finite and >= 0"),
        ("inf-weight", f, y01, z1, np.array([1.0, np.inf, 1.0, 1.0]),
         "sample_weight must be finite"),
        ("weight-length", f, y01, z1, np.ones(3), "sample_weight has 3 entries but raw has 4 rows"),
        ("weight-2d", f, y01, z1, np.ones((4, 1)), "sample_weight must be 1-D"),
        ("scalar-alpha-multiclass", f, yc, z2, None, "alpha must hold one weight per class"),
        ("alpha-length", gbloss.FocalLoss(2.0, [0.2, 0.8]), yc, z2, None,
         "alpha has 2 entries but the target has 3"),
        ("asl-multiclass", gbloss.AsymmetricLoss(), yc, z2, None,
         "AsymmetricLoss does not support multiclass"),
        ("la-multilabel", gbloss.LogitAdjustedLoss(1.0), np.zeros((4, 3)), z2, None,
         "LogitAdjustedLoss does not support multilabel"),
        ("la-priors-vs-K", gbloss.LogitAdjustedLoss(1.0, [0.5, 0.5]), yc, z2, None,
         "priors has 2 entries but the target has 3 classes"),
        ("la-binary-priors-length", gbloss.LogitAdjustedLoss(1.0, [0.2, 0.3, 0.5]), y01, z1, None,
         "priors has 3 entries"),
        ("multiclass-one-column", fm, np.zeros(4), np.zeros((4, 1)), None, "at least 2 columns"),
    ]
    return [pytest.param(*c[1:], id=c[0]) for c in cases]


def _snapshot(*arrays):
    return [None if a is None else np.array(a, copy=True) for a in arrays]


@pytest.mark.parametrize(("loss", "y", "raw", "weight", "match"), _bad_inputs())
def test_bad_input_raises_naming_the_argument(loss, y, raw, weight, match):
    before = _snapshot(y, raw, weight)
    with pytest.raises(ValueError, match=match):
        loss.gradient_hessian(y, raw, weight)
    with pytest.raises(ValueError, match=match):
        loss.loss(y, raw, weight)
    for old, new in zip(before, (y, raw, weight), strict=True):
        if old is not None:
            assert_array_equal(new, old)


@pytest.mark.parametrize(("build", "match"), [
    pytest.param(lambda: gbloss.FocalLoss(-1.0), "gamma must be >= 0", id="gamma<0"),
    pytest.param(lambda: gbloss.FocalLoss(np.nan), "gamma must be a finite", id="gamma-nan"),
    pytest.param(lambda: gbloss.FocalLoss("2"), "gamma must be a finite", id="gamma-str"),
    pytest.param(lambda: gbloss.AsymmetricLoss(gamma_pos=-0.5), "gamma_pos must be >= 0",
                 id="gamma_pos<0"),
    pytest.param(lambda: gbloss.AsymmetricLoss(gamma_neg=-4.0), "gamma_neg must be >= 0",
                 id="gamma_neg<0"),
    pytest.param(lambda: gbloss.AsymmetricLoss(clip=-0.05), "clip must be >= 0", id="clip<0"),
    pytest.param(lambda: gbloss.AsymmetricLoss(clip=1.0), r"clip must lie in \[0, 1\)",
                 id="clip=1"),
    pytest.param(lambda: gbloss.AsymmetricLoss(clip=1.5), r"clip must lie in \[0, 1\)",
                 id="clip>1"),
    pytest.param(lambda: gbloss.AsymmetricLoss(gradient="frozen"), "gradient must be",
                 id="asl-gradient"),
    pytest.param(lambda: gbloss.LogitAdjustedLoss(-1.0), "tau must be >= 0", id="tau<0"),
    pytest.param(lambda: gbloss.LogitAdjustedLoss(1.0, [1.2, -0.2]),
                 "priors must be a distribution", id="priors-negative"),
    pytest.param(lambda: gbloss.LogitAdjustedLoss(1.0, [0.2, 0.3]), "priors must be a distribution",
                 id="priors-sum"),
    pytest.param(lambda: gbloss.LogitAdjustedLoss(1.0, [1.0]), "priors must be a distribution",
                 id="priors-one-class"),
    pytest.param(lambda: gbloss.LogitAdjustedLoss(1.0, [[0.5, 0.5]]),
                 "priors must be a distribution", id="priors-2d"),
    pytest.param(lambda: gbloss.FocalLoss(2.0, 1.5), r"alpha must lie in \[0, 1\]", id="alpha>1"),
    pytest.param(lambda: gbloss.FocalLoss(2.0, [0.5, -0.1]), r"alpha must lie in \[0, 1\]",
                 id="alpha<0"),
    pytest.param(lambda: gbloss.CrossEntropyLoss(np.nan), "alpha must be None", id="alpha-nan"),
    pytest.param(lambda: gbloss.FocalLoss(2.0, "0.25"), "alpha must be None", id="alpha-str"),
    pytest.param(lambda: gbloss.FocalLoss(hessian="clip"), "hessian must be one of", id="hessian"),
    pytest.param(lambda: gbloss.AsymmetricLoss(hessian="abs"), "hessian must be one of",
                 id="asl-hessian"),
])
def test_bad_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize(("loss", "y", "weight", "kwargs", "match"), [
    pytest.param(gbloss.FocalLoss(), np.array([0.0, 2.5]), None, {}, "y must hold", id="binary-y"),
    pytest.param(gbloss.FocalLoss(), np.array([0.0, 1.0, 1.5]), None, {"n_classes": 3},
                 "y must hold integer", id="multiclass-y"),
    pytest.param(gbloss.FocalLoss(), np.array([0.0, 1.0]), np.array([1.0, -1.0]), {},
                 "sample_weight must be", id="negative-weight"),
    pytest.param(gbloss.FocalLoss(), np.array([0.0, 1.0]), np.array([1.0, np.nan]), {},
                 "sample_weight contains NaN", id="nan-weight"),
    pytest.param(gbloss.FocalLoss(), np.array([0.0, np.nan]), None, {}, "y contains NaN",
                 id="nan-label"),
    pytest.param(gbloss.AsymmetricLoss(), np.array([0.0, 1.0, 2.0]), None, {}, "y must hold",
                 id="asl-multiclass-labels"),
])
def test_init_score_rejects_bad_input(loss, y, weight, kwargs, match):
    before = _snapshot(y, weight)
    with pytest.raises(ValueError, match=match):
        loss.init_score(y, weight, **kwargs)
    assert_array_equal(y, before[0])


def test_unprepared_logit_adjustment_cannot_give_probabilities():
    with pytest.raises(ValueError, match="prepare"):
        gbloss.LogitAdjustedLoss(1.0).predict_proba(np.zeros(3))


@pytest.mark.parametrize(("case", "task", "n_out"), case_params(k_values=(3,)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bound_kernel_is_gradient_hessian_with_fixed_labels(case, task, n_out, dtype, rng):
    loss = case.build(n_out)
    y, raw = make_data(task, n_out, N_ROWS, rng)
    w = rng.uniform(0.25, 3.0, N_ROWS)
    out = (np.empty(raw.shape, dtype), np.empty(raw.shape, dtype))
    fill = loss.bind(y, w, out=out)
    y_given, w_given = y.copy(), w.copy()
    y[:] = 1.0 - y if task != MULTICLASS else 0.0  # the bound labels and weights are copies
    w[:] = 1.0
    for shift in (0.0, 0.5):
        grad, hess = fill(raw + shift)
        assert grad is out[0] and hess is out[1]
        expected = loss.gradient_hessian(y_given, raw + shift, w_given)
        assert_allclose(grad, expected[0].astype(dtype), rtol=1e-6 if dtype is np.float32 else 0)
        assert_allclose(hess, expected[1].astype(dtype), rtol=1e-6 if dtype is np.float32 else 0)


def test_bound_kernel_checks_labels_once_and_raw_every_call(rng):
    loss = gbloss.FocalLoss()
    y, raw = make_data(MULTICLASS, 3, N_ROWS, rng)
    out = (np.empty_like(raw), np.empty_like(raw))
    with pytest.raises(ValueError, match="integer class labels in 0..2"):
        loss.bind(y + 3, out=out)
    with pytest.raises(ValueError, match="sample_weight"):
        loss.bind(y, -np.ones(N_ROWS), out=out)
    with pytest.raises(ValueError, match="out must be a"):
        loss.bind(y, out=None)
    fill = loss.bind(y, out=out)
    with pytest.raises(ValueError, match=r"raw must be a float32/float64 array of shape \(40, 3\)"):
        fill(raw[:, :2])
    bad = raw.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fill(bad)


@pytest.mark.parametrize("n_class", [2, 3, 10, 33, 100, 300])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("name", ["focal", "ce", "la", "ldam", "poly", "focal-ls", "ce-ls",
                                  "poly-ls"])
def test_blocked_softmax_loop_is_the_row_template_over_many_blocks(name, n_class, order, rng):
    """The CPU's blocked softmax loops (hard labels, and soft targets with label smoothing),
    gradient and loss, against the row-by-row templates they replace (the ones the GPU
    compiles), compiled here for the CPU: several blocks and a partial one, weights, C and F
    order, float32 scores, a bad label and a non-finite score."""
    loss = {"focal": gbloss.FocalLoss(2.0, alpha=per_class_alpha(n_class)),
            "ce": gbloss.CrossEntropyLoss(),
            "la": gbloss.LogitAdjustedLoss(1.0, priors=priors_for(n_class)),
            "ldam": gbloss.LDAMLoss(0.5, counts=np.arange(1, n_class + 1) * 7.0),
            "poly": gbloss.PolyLoss(1.0, 2.0),
            "focal-ls": gbloss.FocalLoss(0.5, alpha=per_class_alpha(n_class),
                                         label_smoothing=0.2),
            "ce-ls": gbloss.CrossEntropyLoss(label_smoothing=0.1),
            "poly-ls": gbloss.PolyLoss(-1.0, 2.0, label_smoothing=0.3)}[name]
    n = 3 * _loops.softmax_block_rows(n_class) + 5
    y = rng.integers(0, n_class, n).astype(np.float64)
    raw = np.asarray(rng.normal(0.0, 3.0, (n, n_class)), np.float32, order=order)
    raw[1, :] = raw[1, 0]  # a row of ties: the first largest scores are the top two
    w = rng.uniform(0.2, 3.0, n)
    theta = loss.kernel_params(MULTICLASS, n_class)
    soft = "softmax_target" in loss.scalars
    (template, loss_template), slot_names = _loops.TEMPLATES["soft_softmax" if soft else
                                                             "softmax"]
    slots = {s: loss.scalars[s] for s in slot_names}
    rows = _loops.compile_loop(template, slots, variant="_rows").serial
    rows_loss = _loops.compile_loop(loss_template, slots, variant="_rows").serial
    loops = _loops.loops_for(loss.scalars)
    blocked, blocked_loss = loops.softmax_gradient_hessian, loops.softmax_loss
    assert blocked.parallel.py_func.__name__.startswith(
        "blocked_soft_softmax" if soft else "blocked_softmax")
    # soft targets: the blocked loop keeps each class's term instead of recomputing it, so the
    # cancellations in the sums over the terms round differently (the exact gradient:
    # tests/test_new_losses.py::test_soft_target_blocked_loop_is_exact_for_cross_entropy)
    rtol = 2e-11 if soft else 1e-12
    for mode in (0, 1, 2):
        expected = (np.empty((n, n_class)), np.empty((n, n_class)))
        got = (np.empty((n, n_class), order=order), np.empty((n, n_class), order=order))
        assert rows(y, raw, w, theta, mode, *expected) == (0, 0)
        assert blocked(y, raw, w, theta, mode, *got) == (0, 0)
        assert_allclose(got[0], expected[0], rtol=rtol, atol=1e-300)
        assert_allclose(got[1], expected[1], rtol=rtol, atol=1e-300)
    expected, got = np.empty(n), np.empty(n)
    assert rows_loss(y, raw, w, theta, expected) == (0, 0)
    assert blocked_loss(y, raw, w, theta, got) == (0, 0)
    assert_allclose(got, expected, rtol=1e-13)
    y[n - 2], raw[n // 2, 1] = n_class, np.inf
    assert blocked_loss(y, raw, w, theta, got) == (1, 1)
    assert np.isnan(got[n - 2]) and np.isnan(got).sum() == 1
    got = (np.empty((n, n_class), order=order), np.empty((n, n_class), order=order))
    assert blocked(y, raw, w, theta, 1, *got) == (1, 1)
    assert np.all(np.isnan(got[0][n - 2])) and np.all(np.isnan(got[1][n - 2]))


def test_tile_transpose_is_an_exact_transposed_copy(rng):
    @numba.njit
    def copy(source, row, column, target, target_row, target_column):
        _loops.copy_tile_transposed(source, row, column, target, target_row, target_column)

    for source_type, target_type in itertools.product([np.float32, np.float64], repeat=2):
        parent = rng.normal(size=(30, 21)).astype(source_type)
        source = parent[::2, 3:]  # rows apart, each contiguous
        target = np.full((12, 40), -1.0, target_type)
        copy(source, 4, 5, target, 3, 9)
        expected = np.full((12, 40), -1.0, target_type)
        expected[3:11, 9:17] = source[4:12, 5:13].T  # as an assignment converts
        assert_array_equal(target, expected)
        raw_bytes = np.zeros(parent.nbytes + 1, np.uint8)
        unaligned = np.frombuffer(raw_bytes.data, source_type, parent.size, offset=1).reshape(
            parent.shape)
        unaligned[...] = parent
        assert not unaligned.flags.aligned
        copy(unaligned, 4, 5, target, 3, 9)
        expected[3:11, 9:17] = parent[4:12, 5:13].T
        assert_array_equal(target, expected)


@pytest.mark.parametrize("n_class", [8, 9, 10, 16, 17])
@pytest.mark.parametrize("name", ["focal", "la", "focal-ls"])
def test_blocked_softmax_loop_is_the_same_on_every_layout(name, n_class, rng):
    """The blocked loops copy by 8 x 8 tiles where rows are contiguous (K >= 8) and element by
    element elsewhere: every layout of scores and outputs gives the same bits."""
    loss = {"focal": gbloss.FocalLoss(2.0), "la": gbloss.LogitAdjustedLoss(
        1.0, priors=priors_for(n_class)), "focal-ls": gbloss.FocalLoss(
        2.0, label_smoothing=0.1)}[name]
    n = 2 * _loops.softmax_block_rows(n_class) + 13
    y = rng.integers(0, n_class, n).astype(np.float64)
    raw = rng.normal(0.0, 3.0, (n, n_class))
    grad, hess = loss.gradient_hessian(y, raw)
    wide = np.zeros((n, n_class + 3))
    wide[:, 1:n_class + 1] = raw
    spread = np.zeros((n, 2 * n_class))
    spread[:, ::2] = raw
    for scores in (np.asfortranarray(raw), wide[:, 1:n_class + 1], spread[:, ::2]):
        assert_array_equal(loss.gradient_hessian(y, scores)[0], grad)
    for dtype in (np.float64, np.float32):
        outputs = (np.zeros((n, n_class + 3), dtype)[:, 2:n_class + 2],
                   np.zeros((n, 2 * n_class), dtype)[:, 1::2])
        loss.gradient_hessian(y, raw, out=outputs)
        assert_array_equal(outputs[0], grad.astype(dtype))
        assert_array_equal(outputs[1], hess.astype(dtype))
        outputs = (np.empty((n, n_class), dtype), np.empty((n, n_class), dtype))
        single = raw.astype(np.float32)
        loss.gradient_hessian(y, single, out=outputs)
        assert_array_equal(outputs[0], loss.gradient_hessian(
            y, single.astype(np.float64))[0].astype(dtype))


# ------------------------------------------------------------------------------------------------
# Link, task detection, preparation, serialisation


def test_predict_proba_uses_the_loss_link(rng):
    raw = rng.normal(size=(20, 3))
    focal = gbloss.FocalLoss(2.0)
    plain = {"calibrate": False}
    assert_allclose(focal.predict_proba(raw[:, 0], **plain), special.expit(raw[:, 0]), rtol=1e-15)
    assert_allclose(focal.predict_proba(raw, MULTICLASS, **plain), special.softmax(raw, axis=1),
                    rtol=1e-15)
    assert_allclose(focal.predict_proba(raw, task=MULTILABEL, **plain), special.expit(raw),
                    rtol=1e-15)
    assert_allclose(focal.link(raw, MULTILABEL), special.expit(raw), rtol=1e-15)
    assert_allclose(gbloss.AsymmetricLoss().predict_proba(raw, **plain), special.expit(raw),
                    rtol=1e-15)
    la = gbloss.LogitAdjustedLoss(1.0, [0.6, 0.3, 0.1])
    expected = special.softmax(raw + np.log([0.6, 0.3, 0.1]), axis=1)
    assert_allclose(la.predict_proba(raw, **plain), expected, rtol=1e-14)
    assert_allclose(la.predict_proba(raw), expected, rtol=1e-14)  # proper: calibrated = link
    assert_array_equal(la.decision_scores(raw), raw)
    with pytest.raises(ValueError, match="task must be one of"):
        gbloss.AsymmetricLoss().predict_proba(raw, task=MULTICLASS)


def test_predict_proba_is_calibrated_by_default(rng):
    raw = rng.normal(size=(20, 3))
    focal = gbloss.FocalLoss(2.0, 0.25)
    assert_allclose(focal.predict_proba(raw[:, 0]),
                    gbloss.calibration.calibrated_proba(focal, raw[:, 0]), rtol=1e-15)
    assert not np.allclose(focal.predict_proba(raw[:, 0]), special.expit(raw[:, 0]))
    with pytest.raises(ValueError, match="calibrate must be True or False"):
        focal.predict_proba(raw[:, 0], calibrate="no")


def test_two_dimensional_raw_needs_task_when_ambiguous(rng):
    raw = rng.normal(size=(20, 3))
    for loss in (gbloss.FocalLoss(), gbloss.CrossEntropyLoss()):
        with pytest.raises(ValueError, match="ambiguous.*task="):
            loss.predict_proba(raw)
    assert gbloss.AsymmetricLoss().predict_proba(raw).shape == raw.shape  # per label only
    la = gbloss.LogitAdjustedLoss(1.0, [0.6, 0.3, 0.1])
    assert_allclose(la.predict_proba(raw).sum(axis=1), 1.0)  # softmax only


@pytest.mark.parametrize(("y_shape", "raw_shape", "task"), [
    ((5,), (5,), BINARY), ((5,), (5, 3), MULTICLASS), ((5, 3), (5, 3), MULTILABEL)])
def test_task_of_reads_shapes(y_shape, raw_shape, task):
    assert gbloss.FocalLoss().task_of(np.zeros(y_shape), np.zeros(raw_shape)) == task


def test_task_of_rejects_impossible_shapes():
    with pytest.raises(ValueError, match="cannot tell the task"):
        gbloss.FocalLoss().task_of(np.zeros((5, 3)), np.zeros(5))


def test_prepare_fixes_logit_adjustment_priors():
    y = np.array([0, 0, 0, 1, 2, 2], dtype=float)
    loss = gbloss.LogitAdjustedLoss(1.0)
    prepared = loss.prepare(y)
    assert loss.priors is None
    assert_allclose(prepared.priors, [0.5, 1 / 6, 1 / 3], rtol=1e-15)
    assert prepared.prepare(np.array([0.0, 1.0, 2.0])) is prepared
    focal = gbloss.FocalLoss()
    assert focal.prepare(y) is focal


@pytest.mark.parametrize("case", REGISTRY, ids=repr)
def test_to_dict_round_trip(case):
    loss = case.build(3)
    spec = json.loads(json.dumps(loss.to_dict()))
    assert gbloss.loss_from_dict(spec) == loss


@pytest.mark.parametrize("spec", [{"name": "NoSuchLoss", "params": {}}, {"params": {}}, None])
def test_loss_from_dict_rejects_unknown_names(spec):
    with pytest.raises(ValueError, match="not a gbloss loss description"):
        gbloss.loss_from_dict(spec)


@pytest.mark.parametrize("n_class", [3, 10])
@pytest.mark.parametrize("name", ["focal", "la", "focal-ls"])
def test_row_template_rounds_float32_outputs_once(name, n_class, rng):
    """The row-by-row softmax templates (the GPU's) into float32 outputs, as XGBoost's device
    loop calls them, are their float64 outputs rounded once: within one float32 ulp, so no
    intermediate value passes through a float32 output."""
    loss = {"focal": gbloss.FocalLoss(2.0),
            "la": gbloss.LogitAdjustedLoss(1.0, priors=priors_for(n_class)),
            "focal-ls": gbloss.FocalLoss(2.0, label_smoothing=0.1)}[name]
    n = 50_000
    y = rng.integers(0, n_class, n).astype(np.float64)
    raw = rng.normal(0.0, 4.0, (n, n_class)).astype(np.float32)
    theta = loss.kernel_params(MULTICLASS, n_class)
    soft = "softmax_target" in loss.scalars
    (template, _), slot_names = _loops.TEMPLATES["soft_softmax" if soft else "softmax"]
    rows = _loops.compile_loop(template, {s: loss.scalars[s] for s in slot_names},
                               variant="_rows").serial
    wide = (np.empty((n, n_class)), np.empty((n, n_class)))
    narrow = (np.empty((n, n_class), np.float32), np.empty((n, n_class), np.float32))
    rows(y, raw, np.empty(0), theta, 0, *wide)
    rows(y, raw, np.empty(0), theta, 0, *narrow)
    for got, exact in zip(narrow, wide, strict=True):
        np.testing.assert_array_max_ulp(got, exact.astype(np.float32), maxulp=1)
