"""Numerical stability: no NaN or inf anywhere up to |raw| = 1e4, float32 in = float64 math rounded
once, and known limits at extreme margins (derivations 9)."""

import itertools

import numpy as np
import pytest
from conftest import (
    BINARY,
    MULTICLASS,
    MULTILABEL,
    POLICIES,
    Case,
    case_params,
    mpmath,
    needs_mpmath,
    with_policy,
)
from numpy.testing import assert_allclose

import gbloss

#: Margins around every IEEE threshold of derivations 1: exp overflow (88.7 / 709.8 / 745),
#: 1 - sigmoid rounding to 0 (16.6 / 36.7), and the +-1e4 the issue asks for.
EXTREMES = (-1e4, -745.0, -709.8, -100.0, -88.8, -37.0, -17.0, -1.0, 0.0,
            1.0, 17.0, 37.0, 88.8, 100.0, 709.8, 745.0, 1e4)
ROW_VALUES = (-1e4, -745.0, -37.0, 0.0, 37.0, 745.0, 1e4)


def _extreme_data(task):
    """Every extreme margin with labels exactly 0 and 1 (and 0.5 for the sigmoid tasks)."""
    if task == BINARY:
        z, y = np.meshgrid(EXTREMES, (0.0, 1.0, 0.5))
        return y.ravel(), z.ravel()
    rows = np.array(list(itertools.product(ROW_VALUES, repeat=3)))
    if task == MULTICLASS:
        y = np.repeat(np.arange(3.0), len(rows))
        return y, np.tile(rows, (3, 1))
    labels = np.array(list(itertools.product((0.0, 1.0), repeat=3)) + [[0.5, 0.0, 1.0]])
    y = np.repeat(labels, len(rows), axis=0)
    return y, np.tile(rows, (len(labels), 1))


#: gamma = 1.5 on top of the registry's 0.5: the Hessian's (1-p)^(gamma-2) is singular in p-space.
GAMMA_15 = [
    Case("focal-g1.5-a.25", lambda k: gbloss.FocalLoss(1.5, 0.25), (BINARY, MULTILABEL)),
    Case("focal-g1.5", lambda k: gbloss.FocalLoss(1.5), (MULTICLASS,)),
    Case("asl-gp1.5-gn1.5-m0.05", lambda k: gbloss.AsymmetricLoss(1.5, 1.5, 0.05),
         (BINARY, MULTILABEL)),
    Case("asl-gp0.5-gn1.5-m0.0-detached",
         lambda k: gbloss.AsymmetricLoss(0.5, 1.5, 0.0, gradient="detached"), (BINARY, MULTILABEL)),
]
CASES = case_params(k_values=(3,)) + case_params(k_values=(3,), cases=GAMMA_15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("case", "task", "n_out"), CASES)
def test_no_nan_or_inf_at_extreme_margins(case, task, n_out, dtype):
    y, raw = _extreme_data(task)
    raw = raw.astype(dtype)
    w = np.linspace(0.5, 2.0, raw.shape[0])
    for hessian in POLICIES:
        loss = with_policy(case.build(n_out), hessian)
        values = loss.loss(y, raw, w)
        grad, hess = loss.gradient_hessian(y, raw, w)
        assert grad.dtype == dtype and hess.dtype == dtype
        for name, a in (("loss", values), ("grad", grad), ("hess", hess)):
            assert np.all(np.isfinite(a)), f"{name} not finite for hessian={hessian}"
        if hessian == "psd":
            assert np.all(hess > 0)


@pytest.mark.parametrize(("case", "task", "n_out"), CASES)
def test_float32_is_float64_rounded_once(case, task, n_out, rng):
    """float32 margins give the float64 result (on the same rounded margins) to float32
    precision: the kernels compute in float64 and round once."""
    y, raw = _extreme_data(task)
    moderate = rng.normal(0.0, 6.0, raw.shape)
    raw32 = np.concatenate([raw, moderate]).astype(np.float32)
    y = np.concatenate([y, y])
    raw64 = raw32.astype(np.float64)
    for hessian in POLICIES:
        loss = with_policy(case.build(n_out), hessian)
        assert_allclose(loss.loss(y, raw32), loss.loss(y, raw64), rtol=1e-15)
        for a32, a64 in zip(loss.gradient_hessian(y, raw32), loss.gradient_hessian(y, raw64),
                            strict=True):
            assert_allclose(a32, a64, rtol=1e-6, atol=1e-38, err_msg=f"hessian={hessian}")


# ------------------------------------------------------------------------------------------------
# Known limits


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("z", [745.0, 1e4])
def test_focal_badly_wrong_rows_are_linear(z, dtype):
    """y=1 at -z and y=0 at +z: loss = alpha_t |z| (+ O(e^-z)), grad = -+alpha_t, hess ~ 0."""
    loss = gbloss.FocalLoss(2.0, 0.25)
    y = np.array([1.0, 0.0])
    raw = np.array([-z, z], dtype=dtype)
    assert_allclose(loss.loss(y, raw), [0.25 * z, 0.75 * z], rtol=1e-12)
    grad, hess = loss.gradient_hessian(y, raw)
    assert_allclose(grad, [-0.25, 0.75], rtol=1e-12)
    assert np.all(hess > 0) and np.all(hess < 1e-15)


@pytest.mark.parametrize("gamma", [0.5, 1.5, 2.0])
def test_focal_well_classified_rows_vanish_without_nan(gamma):
    """The chain rule through (1-p)^(gamma-1) gives NaN here (derivations 2.5)."""
    loss = gbloss.FocalLoss(gamma, hessian="exact")
    z = np.array([17.0, 37.0, 40.0, 100.0, 745.0, 1e4])
    for y, raw in ((np.ones(6), z), (np.zeros(6), -z)):
        values = loss.loss(y, raw)
        grad, hess = loss.gradient_hessian(y, raw)
        assert np.all(values >= 0) and np.all(values < 1e-7)
        assert np.all(np.abs(grad) < 1e-7) and np.all(np.abs(hess) < 1e-7)
        assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))


@needs_mpmath
@pytest.mark.parametrize("z", [-700.0, -100.0, -30.0, 30.0, 100.0, 700.0])
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_focal_extremes_match_mpmath(gamma, z):
    """Full relative accuracy where naive formulas lose everything (|z| up to 700)."""
    loss = gbloss.FocalLoss(gamma, 0.25, hessian="exact")
    # the Hessian at |z| = 700 is ~1e-302 next to a loss ~500: 700 digits and a step of 1e-40
    with mpmath.workdps(700):
        def f(t, y):
            p = 1 / (1 + mpmath.exp(-t))
            p_t, a_t = (p, 0.25) if y == 1 else (1 - p, 0.75)
            return -a_t * (1 - p_t) ** gamma * mpmath.log(p_t)

        for y in (0.0, 1.0):
            ref = [float(mpmath.diff(lambda t, y=y: f(t, y), mpmath.mpf(z), n,
                                     h=mpmath.mpf("1e-40"))) for n in (0, 1, 2)]
            value = loss.loss(np.array([y]), np.array([z]))[0]
            grad, hess = loss.gradient_hessian(np.array([y]), np.array([z]))
            assert value == pytest.approx(ref[0], rel=1e-13, abs=1e-300)
            assert grad[0] == pytest.approx(ref[1], rel=1e-12, abs=1e-300)
            assert hess[0] == pytest.approx(ref[2], rel=1e-10, abs=1e-300)


def test_cross_entropy_limits():
    y = np.array([1.0, 0.0, 1.0, 0.0])
    z = np.array([-1e4, 1e4, 1e4, -1e4])
    loss = gbloss.CrossEntropyLoss(hessian="exact")
    assert_allclose(loss.loss(y, z), [1e4, 1e4, 0.0, 0.0], rtol=1e-15, atol=0)
    grad, hess = loss.gradient_hessian(y, z)
    assert_allclose(grad, [-1.0, 1.0, 0.0, 0.0], rtol=1e-15, atol=0)
    assert np.all(hess == 0)
    psd = gbloss.CrossEntropyLoss().gradient_hessian(y, z)[1]
    assert_allclose(psd, 1e-16, rtol=1e-15)  # the floor keeps saturated rows off exact zero


@pytest.mark.parametrize("loss", [gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5]),
                                  gbloss.CrossEntropyLoss(),
                                  gbloss.LogitAdjustedLoss(1.0, [0.6, 0.3, 0.1])], ids=repr)
def test_softmax_badly_wrong_rows(loss):
    """Target at -1e4, the rest at 0 and +1e4: loss ~ alpha_y 2e4, grad ~ (-a, 0, +a)."""
    y = np.array([0.0, 2.0])
    raw = np.array([[-1e4, 0.0, 1e4], [1e4, 0.0, -1e4]])
    a = np.array([0.2, 0.5]) if isinstance(loss, gbloss.FocalLoss) and loss.alpha is not None \
        else np.ones(2)
    values = loss.loss(y, raw)
    assert_allclose(values, 2e4 * a, rtol=1e-3)
    grad, hess = loss.gradient_hessian(y, raw)
    assert_allclose(grad[0], [-a[0], 0.0, a[0]], rtol=1e-12, atol=1e-300)
    assert_allclose(grad[1], [a[1], 0.0, -a[1]], rtol=1e-12, atol=1e-300)
    assert np.all(np.isfinite(hess)) and np.all(hess > 0)


def test_asl_limits():
    """No eps clamp: a badly wrong positive keeps its gradient (the official code zeroes it below
    z = -18.4); a confident negative's loss saturates at -(1-m)^g- log m."""
    loss = gbloss.AsymmetricLoss(0.0, 4.0, 0.05)
    z = np.array([-30.0, -1e4])
    grad, _ = loss.gradient_hessian(np.ones(2), z)
    assert_allclose(grad, [-1.0, -1.0], rtol=1e-12)
    assert_allclose(loss.loss(np.ones(2), z), [30.0, 1e4], rtol=1e-12)
    neg = loss.loss(np.zeros(2), np.array([745.0, 1e4]))
    assert_allclose(neg, -(0.95**4) * np.log(0.05), rtol=1e-12)
    grad, hess = loss.gradient_hessian(np.zeros(3), np.array([-1e4, -3.0, 1e4]))
    assert_allclose(grad, 0.0, atol=1e-300)  # below the margin (p <= 0.05) and saturated


@pytest.mark.parametrize("task", [BINARY, MULTILABEL])
def test_soft_labels_at_extremes(task):
    """y = 0.5 at z = +-1e4 costs half of the wrong side: 0.5 * 1e4 per output."""
    z = np.array([-1e4, 1e4])
    y = np.full(2, 0.5)
    if task == MULTILABEL:
        z, y = z[:, None], y[:, None]
    loss = gbloss.CrossEntropyLoss()
    assert_allclose(loss.loss(y, z), [5e3, 5e3], rtol=1e-12)
    assert_allclose(loss.gradient_hessian(y, z)[0].ravel(), [-0.5, 0.5], rtol=1e-12)


def test_vectorisable_exp_and_log1p_agree_with_libm():
    """The binary loop's exp(-x) and log1p(e) (gbloss._kernels) against NumPy's libm."""
    from gbloss.losses import primitives as _kernels

    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(0.0, 708.0, 4001), rng.exponential(8.0, 4000)])
    x = x[x <= 708.0]
    got = np.array([_kernels.exp_neg(v) for v in x])
    assert np.max(np.abs(got - np.exp(-x)) / np.exp(-x)) < 4 * np.finfo(float).eps
    deep = np.array([708.5, 720.0, 745.0, 746.0, 800.0, 1e4, np.inf])
    got = np.array([_kernels.exp_neg(v) for v in deep])
    np.testing.assert_allclose(got, np.exp(-deep), rtol=1e-12, atol=1e-322)  # subnormal, then 0
    assert got[-3:].tolist() == [0.0, 0.0, 0.0]
    e = np.concatenate([rng.random(4000), np.logspace(-300, 0, 400), [0.0, 1e-17, 1.0]])
    got = np.array([_kernels.log1p_unit(v, 1.0 / (1.0 + v)) for v in e])
    positive = e > 0
    assert np.max(np.abs(got[positive] - np.log1p(e[positive])) / np.log1p(e[positive])) \
        < 4 * np.finfo(float).eps
    assert got[~positive].tolist() == [0.0]
