"""Tests of gbloss.calibration: the inverse of the map from P(y | x) to the population minimiser.

The oracles are independent of the module: probability-space derivatives written naively (the
textbook formulas, fine at moderate margins) for the sigmoid losses, the minimum of the risk
found by scipy, and the kernels' gradients for the softmax stationarity condition.
"""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize, special
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss

import gbloss
from gbloss.calibration import calibrated_proba, is_proper

ETAS = (1e-4, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)
ALPHAS = (None, 0.25, 0.9)


def _weights(alpha):
    return (1.0, 1.0) if alpha is None else (alpha, 1.0 - alpha)


# ------------------------------------------------------------------------------------------------
# Naive oracles: gradients dL/dz = dL/dq * q(1-q) with q = sigmoid(z), from the definitions.


def naive_focal_grads(z, gamma, alpha):
    """``(g1, g0)``: d/dz of ``-a1 (1-q)^g log q`` and ``-a0 q^g log(1-q)``."""
    a1, a0 = _weights(alpha)
    q = 1.0 / (1.0 + np.exp(-z))
    dpos = gamma * (1 - q) ** (gamma - 1) * np.log(q) - (1 - q) ** gamma / q
    dneg = -gamma * q ** (gamma - 1) * np.log(1 - q) + q**gamma / (1 - q)
    return a1 * dpos * q * (1 - q), a0 * dneg * q * (1 - q)


def naive_asl_grads(z, gamma_pos, gamma_neg, clip, detached):
    """``(g1, g0)`` of ASL: ``-(1-q)^{g+} log q`` and ``-u^{g-} log(1-u)``, ``u = q - clip``;
    detached: the focusing weights held constant."""
    q = 1.0 / (1.0 + np.exp(-z))
    u, v = q - clip, 1.0 - (q - clip)
    if detached:
        dpos = -(1 - q) ** gamma_pos / q
        dneg = u**gamma_neg / v
    else:
        dpos = gamma_pos * (1 - q) ** (gamma_pos - 1) * np.log(q) - (1 - q) ** gamma_pos / q
        dneg = -gamma_neg * u ** (gamma_neg - 1) * np.log(v) + u**gamma_neg / v
    return dpos * q * (1 - q), (dneg if u > 0 else 0.0) * q * (1 - q)


def stationary_margin(grads, eta, lo, hi):
    """The root in [lo, hi] of the expected gradient ``eta g1 + (1 - eta) g0``."""
    def slope(z):
        g1, g0 = grads(z)
        return eta * g1 + (1 - eta) * g0
    return optimize.brentq(slope, lo, hi, xtol=1e-14, rtol=4 * np.finfo(float).eps)


def risk_minimiser(loss, eta):
    """argmin over z of ``eta L(1, z) + (1 - eta) L(0, z)``, with scipy and the loss values."""
    labels = np.array([1.0, 0.0])

    def risk(z):
        return loss.loss(labels, np.full(2, z), np.array([eta, 1 - eta]), check_input=False).sum()

    return optimize.minimize_scalar(risk, bounds=(-30, 30), method="bounded",
                                    options={"xatol": 1e-10}).x


def population_margin(loss, eta):
    """z*(eta) for a binary loss by bisection on the (monotone) calibrated map."""
    lo, hi = np.full(eta.shape, -60.0), np.full(eta.shape, 60.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        above = calibrated_proba(loss, mid) > eta
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    return 0.5 * (lo + hi)


def expected_calibration_error(y, proba):
    """Equal-mass ECE: mean |observed frequency - mean probability| over 10 quantile bins."""
    observed, predicted = calibration_curve(y, proba, n_bins=10, strategy="quantile")
    return float(np.mean(np.abs(observed - predicted)))


# ------------------------------------------------------------------------------------------------
# (a) proper losses: the identity


PROPER = [
    pytest.param(gbloss.CrossEntropyLoss(), ("binary", "multiclass", "multilabel"), id="ce"),
    pytest.param(gbloss.FocalLoss(0.0), ("binary", "multiclass", "multilabel"), id="focal-g0"),
    pytest.param(gbloss.CrossEntropyLoss(0.5), ("binary", "multilabel"), id="ce-a.5"),
    pytest.param(gbloss.CrossEntropyLoss([0.3, 0.3, 0.3]), ("multiclass",), id="ce-equal-aK"),
    pytest.param(gbloss.LogitAdjustedLoss(1.0, [0.1, 0.3, 0.6]), ("multiclass",), id="la"),
    pytest.param(gbloss.LogitAdjustedLoss(1.0, [0.9, 0.1]), ("binary",), id="la-binary"),
    pytest.param(gbloss.LogitAdjustedLoss(1.0, [0.1, 0.3, 0.6], posthoc=True), ("multiclass",),
                 id="la-posthoc"),
    pytest.param(gbloss.AsymmetricLoss(0.0, 0.0, 0.0), ("binary", "multilabel"), id="asl-bce"),
]


@pytest.mark.parametrize(("loss", "tasks"), PROPER)
def test_identity_for_proper_losses(loss, tasks, rng):
    for task in tasks:
        assert is_proper(loss, task)
        raw = rng.normal(0, 4, 50) if task == "binary" else rng.normal(0, 4, (50, 3))
        task_arg = None if task == "binary" else task
        np.testing.assert_array_equal(calibrated_proba(loss, raw, task_arg),
                                      loss.predict_proba(raw, task_arg, calibrate=False))


def test_identity_is_the_map_itself_for_cross_entropy(rng):
    """The general formulas give the identity at gamma=0, not only the is_proper shortcut."""
    raw = rng.normal(0, 10, (200, 4))
    ce = gbloss.CrossEntropyLoss()
    np.testing.assert_allclose(ce._calibrated_sigmoid(raw, "multilabel"), special.expit(raw),
                               rtol=1e-14)
    np.testing.assert_allclose(ce._calibrated_softmax(raw),
                               special.softmax(raw, axis=1), rtol=1e-13)


@pytest.mark.parametrize(("loss", "task"), [
    (gbloss.FocalLoss(2.0), None),
    (gbloss.FocalLoss(0.5, 0.25), "binary"),
    (gbloss.CrossEntropyLoss(0.25), "binary"),
    (gbloss.CrossEntropyLoss([0.3, 0.3, 0.3]), "multilabel"),
    (gbloss.CrossEntropyLoss([0.2, 0.3, 0.5]), "multiclass"),
    (gbloss.AsymmetricLoss(), None),
    (gbloss.AsymmetricLoss(0.0, 0.0, 0.05), "binary"),
])
def test_not_proper(loss, task):
    assert not is_proper(loss, task)


def test_is_proper_without_task_needs_every_task():
    # equal class weights cancel in the softmax, not in the per-label sigmoid (0.3 vs 0.7)
    loss = gbloss.CrossEntropyLoss([0.3, 0.3, 0.3])
    assert is_proper(loss, "multiclass")
    assert not is_proper(loss)


def test_weighted_cross_entropy_is_the_prior_shift(rng):
    """gamma=0 with class weights: logit(eta) = z + log(a0/a1); softmax: eta ~ p / alpha."""
    z = rng.normal(0, 5, 100)
    np.testing.assert_allclose(calibrated_proba(gbloss.CrossEntropyLoss(0.2), z),
                               special.expit(z + np.log(0.8 / 0.2)), rtol=1e-13)
    raw = rng.normal(0, 5, (100, 3))
    alpha = np.array([0.2, 0.3, 0.5])
    expected = special.softmax(raw, axis=1) / alpha
    np.testing.assert_allclose(calibrated_proba(gbloss.CrossEntropyLoss(alpha), raw, "multiclass"),
                               expected / expected.sum(axis=1, keepdims=True), rtol=1e-13)


# ------------------------------------------------------------------------------------------------
# (b) exactness: the map sends the population minimiser of eta back to eta


@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.7, 5.0])
def test_binary_focal_inverts_population_minimiser(gamma, alpha):
    loss = gbloss.FocalLoss(gamma, alpha)
    for eta in ETAS:
        z_star = stationary_margin(lambda z: naive_focal_grads(z, gamma, alpha), eta, -25, 25)
        # the stationary point is the global minimiser of the risk
        assert abs(risk_minimiser(loss, eta) - z_star) < 1e-4
        np.testing.assert_allclose(calibrated_proba(loss, np.array([z_star])), [eta], rtol=1e-12)


@pytest.mark.parametrize("gradient", ["exact", "detached"])
@pytest.mark.parametrize("gamma_neg", [0.5, 1.0, 4.0])
@pytest.mark.parametrize("gamma_pos", [0.0, 1.0])
def test_asl_inverts_population_minimiser(gamma_pos, gamma_neg, gradient):
    clip = 0.05
    loss = gbloss.AsymmetricLoss(gamma_pos, gamma_neg, clip, gradient=gradient)
    z_clip = np.log(clip / (1 - clip))
    for eta in (1e-3, 0.01, 0.1, 0.5, 0.9):  # inside the identified range (module docstring)
        z_star = stationary_margin(
            lambda z: naive_asl_grads(z, gamma_pos, gamma_neg, clip, gradient == "detached"),
            eta, z_clip + 1e-9, 30)
        if gradient == "exact":
            assert abs(risk_minimiser(loss, eta) - z_star) < 1e-4
        np.testing.assert_allclose(calibrated_proba(loss, np.array([z_star])), [eta], rtol=1e-11)


def _softmax_risk_minimiser(loss, eta):
    """argmin over logits of ``sum_c eta_c L(c, z)`` (z_0 = 0 fixed), with the kernels."""
    n_class = eta.size
    labels = np.arange(n_class, dtype=np.float64)

    def value_and_grad(free):
        raw = np.tile(np.r_[0.0, free], (n_class, 1))
        g, _ = loss.gradient_hessian(labels, raw, eta, check_input=False)
        return loss.loss(labels, raw, eta, check_input=False).sum(), g.sum(axis=0)[1:]

    start = np.log(eta[1:] / eta[0])
    free = optimize.minimize(value_and_grad, start, jac=True, method="BFGS",
                             options={"gtol": 1e-12}).x
    free = optimize.root(lambda f: value_and_grad(f)[1], free, tol=1e-15).x
    return np.r_[0.0, free]


@pytest.mark.parametrize("alpha", [None, [0.2, 0.3, 0.5]])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_softmax_focal_inverts_population_minimiser(gamma, alpha, rng):
    loss = gbloss.FocalLoss(gamma, alpha)
    for eta in rng.dirichlet(np.ones(3), size=4):
        z_star = _softmax_risk_minimiser(loss, eta)
        np.testing.assert_allclose(calibrated_proba(loss, z_star[None, :], "multiclass")[0], eta,
                                   rtol=1e-11)


@pytest.mark.parametrize("alpha", [None, [0.1, 0.2, 0.3, 0.4]])
@pytest.mark.parametrize("gamma", [0.5, 2.0, 5.0])
def test_softmax_expected_gradient_vanishes(gamma, alpha, rng):
    """Null-vector check with the kernels: ``sum_c eta_c grad(c, z) = 0`` row by row."""
    loss = gbloss.FocalLoss(gamma, alpha)
    raw = rng.normal(0, 3, (200, 4))
    eta = calibrated_proba(loss, raw, "multiclass")
    grads = [loss.gradient_hessian(np.full(200, c, dtype=float), raw)[0] for c in range(4)]
    expected = sum(eta[:, [c]] * grads[c] for c in range(4))
    scale = sum(eta[:, [c]] * np.abs(grads[c]) for c in range(4))
    assert np.all(np.abs(expected) <= 1e-12 * scale)


def test_softmax_two_classes_equals_binary(rng):
    raw = rng.normal(0, 4, (100, 2))
    two = calibrated_proba(gbloss.FocalLoss(2.0, [0.75, 0.25]), raw, "multiclass")
    one = calibrated_proba(gbloss.FocalLoss(2.0, 0.25), raw[:, 1] - raw[:, 0])
    np.testing.assert_allclose(two[:, 1], one, rtol=1e-12)


@pytest.mark.parametrize("loss", [gbloss.FocalLoss(2.0, [0.1, 0.25, 0.6]),
                                  gbloss.AsymmetricLoss(1.0, 4.0, 0.05)], ids=repr)
def test_multilabel_is_per_label_binary(loss, rng):
    raw = rng.normal(0, 4, (100, 3))
    proba = calibrated_proba(loss, raw, "multilabel")
    for k in range(3):
        single = loss if isinstance(loss, gbloss.AsymmetricLoss) else \
            gbloss.FocalLoss(loss.gamma, loss.alpha[k])
        # rtol 1e-13: the binary loop's exp and log1p are not libm's (2.2 ulp apart)
        np.testing.assert_allclose(proba[:, k], calibrated_proba(single, raw[:, k]), rtol=1e-13)


# ------------------------------------------------------------------------------------------------
# (c) monotonicity, and the ranges of ASL


@pytest.mark.parametrize("alpha", [None, 0.1, 0.25, 0.9])
@pytest.mark.parametrize("gamma", [0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0])
def test_binary_focal_map_is_increasing(gamma, alpha):
    z = np.linspace(-40, 40, 80_001)
    eta = calibrated_proba(gbloss.FocalLoss(gamma, alpha), z)
    step = np.diff(eta)
    assert np.all(step >= 0)
    resolved = (eta[1:] > 1e-300) & (eta[:-1] < 1 - 1e-12)  # not saturated in float64
    assert np.all(step[resolved] > 0)
    assert eta[0] < 1e-15 and eta[-1] == 1.0


@settings(max_examples=30, deadline=None)
@given(gamma=st.floats(0.0, 10.0), t=st.floats(-30.0, 30.0))
def test_log_psi_slope_is_positive(gamma, t):
    """d/dt log psi = [q^2 + 2g pq + g(g-1) p^2 log(1/p)] / (q + g p log(1/p)) > 0, checked
    against a central difference of the calibrated log-odds at alpha=None."""
    p, q, lp = special.expit(t), special.expit(-t), -np.logaddexp(0, -t)
    slope = (q * q + 2 * gamma * p * q - gamma * (gamma - 1) * p * p * lp) / (q - gamma * p * lp)
    assert slope > 0
    # logit(eta(z)) = log psi(z) - log psi(-z), so its slope is slope(z) + slope(-z)
    loss, h = gbloss.FocalLoss(gamma), 1e-4
    eta = calibrated_proba(loss, np.array([t - h, t + h]))
    if eta[1] > 1 - 1e-6:
        return  # log-odds not resolved from eta in float64
    numeric = np.diff(special.logit(eta))[0] / (2 * h)
    p, q, lp = q, p, -np.logaddexp(0, t)
    mirrored = (q * q + 2 * gamma * p * q - gamma * (gamma - 1) * p * p * lp) / (q - gamma * p * lp)
    assert numeric == pytest.approx(slope + mirrored, rel=1e-5)


@pytest.mark.parametrize("gradient", ["exact", "detached"])
@pytest.mark.parametrize("clip", [0.05, 0.2])
@pytest.mark.parametrize("gamma_neg", [0.0, 0.5, 1.0, 4.0])
@pytest.mark.parametrize("gamma_pos", [0.0, 0.5, 2.0])
def test_asl_map_is_nondecreasing_and_zero_below_clip(gamma_pos, gamma_neg, clip, gradient):
    loss = gbloss.AsymmetricLoss(gamma_pos, gamma_neg, clip, gradient=gradient)
    z = np.linspace(-40, 40, 80_001)
    below = special.expit(z) <= clip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gamma_neg=0: the unidentified region
        eta = calibrated_proba(loss, z)
    assert np.all(eta[below] == 0)
    eta_above, z_above = eta[~below], z[~below]
    # resolved: below z=20 (gamma_pos=0 saturates to rounding level beyond) and eta < 1
    resolved = (z_above[1:] < 20) & (eta_above[1:] < 1 - 1e-12)
    logit = special.logit(eta_above[:-1][resolved]), special.logit(eta_above[1:][resolved])
    assert np.all(logit[1] > logit[0])
    assert np.all(np.diff(eta) >= -1e-14)


@pytest.mark.parametrize(("gamma_neg", "clip"), [(4.0, 0.05), (0.0, 0.05), (1.0, 0.2)])
def test_asl_upper_bound_with_gamma_pos_zero(gamma_neg, clip):
    """The negative part saturates: eta(z) -> c/(1+c), c = (1-m)^g (1/m + g log(1/m)/(1-m)),
    and for any larger eta the expected gradient stays negative (minimiser at +inf)."""
    loss = gbloss.AsymmetricLoss(0.0, gamma_neg, clip)
    c = (1 - clip) ** gamma_neg * (1 / clip - gamma_neg * np.log(clip) / (1 - clip))
    bound = c / (1 + c)
    assert calibrated_proba(loss, np.array([500.0]))[0] == pytest.approx(bound, rel=1e-12)
    assert np.all(calibrated_proba(loss, np.linspace(-2, 30, 100)) < bound)
    eta = bound + 0.005
    z = np.linspace(-2, 30, 100)
    g1, g0 = (loss.gradient_hessian(np.full(100, y), z)[0] for y in (1.0, 0.0))
    assert np.all(eta * g1 + (1 - eta) * g0 < 0)


def test_asl_default_bound_value():
    assert calibrated_proba(gbloss.AsymmetricLoss(), np.array([500.0]))[0] == \
        pytest.approx(0.96372, abs=1e-5)


def test_asl_gamma_neg_zero_warns_below_clip():
    loss = gbloss.AsymmetricLoss(0.0, 0.0, 0.05)
    z_clip = np.log(0.05 / 0.95)
    with pytest.warns(UserWarning, match=r"below 0.04762.*2 of 3 outputs"):
        eta = calibrated_proba(loss, np.array([z_clip - 1, z_clip - 1e-3, 0.0]))
    assert eta[0] == eta[1] == 0
    # just above the clip the map starts at m / (1 + m)
    above = calibrated_proba(loss, np.array([z_clip + 1e-9]))[0]
    assert above == pytest.approx(0.05 / 1.05, rel=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calibrated_proba(loss, np.array([0.0, 1.0]))  # no row at the clip: no warning


# ------------------------------------------------------------------------------------------------
# (d) the demonstration: synthetic data with known probabilities


def _synthetic(rng, n):
    """Features, true P(y=1 | x) with ~9% positives, and labels drawn from it."""
    x = rng.normal(size=(n, 5))
    logit = -3.0 + x @ np.array([1.0, -0.8, 0.6, 0.0, 0.0]) + 0.5 * np.sin(2 * x[:, 3])
    eta = special.expit(logit)
    return x, eta, rng.binomial(1, eta).astype(np.float64)


def _features(x):
    return np.column_stack([np.ones(len(x)), x, np.sin(2 * x[:, 3])])


def _fit_linear(loss, x, y):
    """A linear model in margin space fitted by L-BFGS on the mean loss."""
    phi = _features(x)

    def value_and_grad(w):
        raw = phi @ w
        g, _ = loss.gradient_hessian(y, raw)
        return loss.loss(y, raw).mean(), phi.T @ g / len(y)

    return optimize.minimize(value_and_grad, np.zeros(phi.shape[1]), jac=True,
                             method="L-BFGS-B").x


def demo_metrics(seed=0, n=20_000):
    """ECE and log-loss on held-out data of the plain link, the calibrated probabilities and
    the true probabilities, for FocalLoss(2, 0.25) fitted as a linear model in margin space."""
    rng = np.random.default_rng(seed)
    loss = gbloss.FocalLoss(2.0, 0.25)
    x, _, y = _synthetic(rng, n)
    w = _fit_linear(loss, x, y)
    x, eta, y = _synthetic(rng, n)
    raw = _features(x) @ w
    probas = {"plain": loss.predict_proba(raw, calibrate=False),
              "calibrated": calibrated_proba(loss, raw),
              "true": eta}
    return {name: {"ece": expected_calibration_error(y, p), "log_loss": log_loss(y, p),
                   "mean_abs_error": float(np.mean(np.abs(p - eta)))}
            for name, p in probas.items()}


def test_demo_fitted_focal_model_is_calibrated():
    m = demo_metrics()
    plain, calibrated, true = m["plain"], m["calibrated"], m["true"]
    assert plain["ece"] > 0.05 and calibrated["ece"] < 0.02
    assert calibrated["ece"] < plain["ece"] / 5
    assert calibrated["log_loss"] < plain["log_loss"] - 0.03
    assert calibrated["log_loss"] < true["log_loss"] + 0.005
    assert calibrated["mean_abs_error"] < plain["mean_abs_error"] / 5


def test_demo_noisy_population_margins(rng):
    """Model-free: the population-optimal margins of the true probabilities plus noise."""
    loss = gbloss.FocalLoss(2.0, 0.25)
    _, eta, y = _synthetic(rng, 20_000)
    raw = population_margin(loss, eta) + rng.normal(0, 0.2, eta.size)
    plain, calibrated = loss.predict_proba(raw, calibrate=False), calibrated_proba(loss, raw)
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, plain) / 3
    assert log_loss(y, calibrated) < log_loss(y, plain) - 0.03


def test_demo_softmax_focal(rng):
    """Three imbalanced classes, a linear softmax model fitted by L-BFGS on the focal loss."""
    loss = gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5])
    coef = np.array([[0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, -1.5],
                     [0.5, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    intercept = np.array([2.0, 0.3, -1.0])

    def draw(n):
        x = rng.normal(size=(n, 5))
        eta = special.softmax(_features(x) @ coef + intercept, axis=1)
        y = (rng.uniform(size=(n, 1)) > eta.cumsum(axis=1)).sum(axis=1).astype(np.float64)
        return x, eta, y

    x, _, y = draw(20_000)
    phi = _features(x)

    def value_and_grad(w):
        raw = phi @ w.reshape(phi.shape[1], 3)
        g, _ = loss.gradient_hessian(y, raw)
        return loss.loss(y, raw).mean(), (phi.T @ g / len(y)).ravel()

    w = optimize.minimize(value_and_grad, np.zeros(phi.shape[1] * 3), jac=True,
                          method="L-BFGS-B").x.reshape(-1, 3)
    x, eta, y = draw(20_000)
    raw = _features(x) @ w
    plain = loss.predict_proba(raw, "multiclass", calibrate=False)
    calibrated = calibrated_proba(loss, raw, "multiclass")
    labels = [0, 1, 2]
    assert log_loss(y, calibrated, labels=labels) < log_loss(y, plain, labels=labels) - 0.02
    assert np.mean(np.abs(calibrated - eta)) < np.mean(np.abs(plain - eta)) / 3


# ------------------------------------------------------------------------------------------------
# inputs, dtypes and errors


def test_float32_and_lists(rng):
    loss = gbloss.FocalLoss(2.0, 0.25)
    raw = rng.normal(0, 3, 50)
    expected = calibrated_proba(loss, raw)
    np.testing.assert_allclose(calibrated_proba(loss, raw.astype(np.float32)), expected,
                               rtol=1e-6)
    np.testing.assert_array_equal(calibrated_proba(loss, raw.tolist()), expected)


@pytest.mark.parametrize("hessian", ["exact", "gn"])
def test_independent_of_hessian_policy(hessian, rng):
    raw = rng.normal(0, 5, (50, 3))
    for make, task in ((lambda h: gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5], hessian=h),
                        "multiclass"),
                       (lambda h: gbloss.AsymmetricLoss(hessian=h), None)):
        np.testing.assert_array_equal(calibrated_proba(make(hessian), raw, task),
                                      calibrated_proba(make("psd"), raw, task))


def test_extreme_margins_are_finite():
    z = np.array([-1e6, -745.0, -500.0, 0.0, 500.0, 745.0, 1e6])
    for loss in (gbloss.FocalLoss(0.5, 0.25), gbloss.FocalLoss(5.0), gbloss.AsymmetricLoss(),
                 gbloss.AsymmetricLoss(1.0, 0.5, 0.2, gradient="detached")):
        eta = calibrated_proba(loss, z)
        assert np.all(np.isfinite(eta)) and np.all(np.diff(eta) >= 0)
    rows = np.array([[1e6, 0.0, -1e6], [700.0, 700.0, 0.0], [-50.0, 0.0, 20.0]])
    eta = calibrated_proba(gbloss.FocalLoss(2.0), rows, "multiclass")
    assert np.all(np.isfinite(eta))
    np.testing.assert_allclose(eta.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(eta[0], [1.0, 0.0, 0.0], atol=1e-200)
    np.testing.assert_allclose(eta[1, :2], [0.5, 0.5], rtol=1e-12)  # raw ulp at 700: 1e-13


@pytest.mark.parametrize(("loss", "raw", "task", "match"), [
    (gbloss.FocalLoss(2.0, 1.0), np.zeros(3), None, r"alpha must lie in \(0, 1\)"),
    (gbloss.CrossEntropyLoss(0.0), np.zeros(3), None, r"alpha must lie in \(0, 1\)"),
    (gbloss.FocalLoss(2.0, [0.5, 0.0, 0.5]), np.zeros((2, 3)), "multiclass",
     "alpha must be > 0"),
    (gbloss.FocalLoss(2.0, 0.25), np.zeros((2, 3)), "multiclass", "one weight per class"),
    (gbloss.FocalLoss(2.0), np.zeros(3), "multiclass", "needs 2-D raw"),
    (gbloss.FocalLoss(2.0), np.zeros((2, 3, 1)), None, "1-D .* or 2-D"),
    (gbloss.AsymmetricLoss(), np.zeros((2, 3)), "multiclass", "task must be one of"),
    (gbloss.FocalLoss(2.0), np.zeros((2, 1)), "multiclass", "at least 2 columns"),
    (gbloss.LogitAdjustedLoss(), np.zeros(3), None, "has not seen training labels"),
])
def test_errors(loss, raw, task, match):
    with pytest.raises(ValueError, match=match):
        calibrated_proba(loss, raw, task)


def test_unsupported_loss_type():
    with pytest.raises(TypeError, match="loss must be one of"):
        calibrated_proba(object(), np.zeros(3))
    with pytest.raises(ValueError, match="task must be None or one of"):
        is_proper(gbloss.AsymmetricLoss(), "multiclass")
