"""Poly-1 loss (Leng et al. 2022) on cross-entropy and on focal loss: binary, softmax multiclass
and per-label multi-label, with optional label smoothing.

Derivations: ``docs/derivations.md`` section 11.1 (and 2-3 for the focal core, 8 for the
Hessian policy, 11.3 for label smoothing).
"""

import numpy as np

from .._jit import scalar
from ._base import Loss, check_real
from .focal import FocalLoss, ScalarsBySmoothing, smoothed_label
from .primitives import HESS_FLOOR, HESS_PSD, apply_policy, power_of, sigmoid_parts

#: Terms of the series of :func:`log_excess`: its ratio is at most 1/9, so 20 terms leave a
#: relative remainder below 1e-19.
_SERIES_TERMS = 20


@scalar
def log_excess(q, log_p):
    """``rho = -log p - q >= 0`` for ``p = 1 - q``, without cancellation.

    For ``q <= 1/2``: ``-log(1 - q) = 2 atanh(s)`` with ``s = q / (2 - q) <= 1/3``, so
    ``rho = q^2 / (2 - q) + 2 sum_{j>=0} s^(2j+3) / (2j+3)``, a sum of positive terms. For
    ``q > 1/2``, ``-log p >= log 2`` and the difference loses at most two bits.
    """
    if q > 0.5:
        return -log_p - q
    s = q / (2.0 - q)
    s2 = s * s
    series = 0.0
    for j in range(_SERIES_TERMS - 1, -1, -1):  # Horner: sum_j s2^j / (2j + 3)
        series = series * s2 + 1.0 / (2 * j + 3)
    return q * q / (2.0 - q) + 2.0 * s * s2 * series


@scalar
def poly_core(t, gamma, epsilon):
    """``(P, P', P''_exact, P''_curvature)`` of ``P(t) = f_gamma(t) + epsilon q^(gamma+1)``
    at correct-class margin ``t``, ``f_gamma`` the focal core (section 11.1).

    With ``rho = -log p - q`` (:func:`log_excess`) and ``a = (1 + epsilon)(gamma + 1)``::

        P   = q^g ((1 + epsilon) q + rho)
        P'  = -q^g (a p q + q^2 + g p rho)
        P'' = p q^g ((g+1) q (a p + (1 - epsilon) q) + g rho (g p - q))

    Every term of ``P`` and ``P'`` is >= 0 for ``epsilon >= -1``, so both keep full relative
    accuracy, also at ``epsilon = -1`` where the leading orders of the focal core and the Poly
    term cancel; in ``P''`` only the focal term ``g rho (g p - q)`` and, for ``epsilon > 1``,
    ``(1 - epsilon) q`` change sign (where the Hessian itself does). The curvature of the
    ``"psd"`` policy is ``(1 + e-) (2g+1) p q^(g+1) + (-e-) 2 (g+1) p q^(g+2)``,
    ``e- = min(epsilon, 0)``.
    """
    p, q, lp, lq = sigmoid_parts(t)
    qg = power_of(q, lq, gamma)
    rho = log_excess(q, lp)
    g1 = gamma + 1.0
    a = (1.0 + epsilon) * g1
    value = qg * ((1.0 + epsilon) * q + rho)
    d1 = -qg * (a * p * q + q * q + gamma * p * rho)
    p_rho = p * rho  # finite (<= 1/e), where rho alone nears the float64 range
    d2 = qg * (p * g1 * q * (a * p + (1.0 - epsilon) * q) + gamma * p_rho * (gamma * p - q))
    below = min(epsilon, 0.0)
    curvature = p * q * qg * ((1.0 + below) * (2.0 * gamma + 1.0) - below * 2.0 * g1 * q)
    return value, d1, d2, curvature


@scalar
def sigmoid_element(y, z, k, theta, mode):
    """``y' alpha_k P(z) + (1 - y')(1 - alpha_k) P(-z)``, ``y'`` the smoothed label;
    ``theta = (a_pos, a_neg, eps, gamma, epsilon)``."""
    a_pos, a_neg, smoothing, gamma, epsilon = theta
    y = smoothed_label(y, smoothing)
    loss = 0.0
    grad = 0.0
    hess = 0.0
    if y > 0.0:
        value, d1, d2, curvature = poly_core(z, gamma, epsilon)
        c = y * a_pos[k]
        loss += c * value
        grad += c * d1
        hess += c * apply_policy(d2, curvature, mode)
    if y < 1.0:
        value, d1, d2, curvature = poly_core(-z, gamma, epsilon)
        c = (1.0 - y) * a_neg[k]
        loss += c * value
        grad -= c * d1
        hess += c * apply_policy(d2, curvature, mode)
    if mode == HESS_PSD:
        hess += HESS_FLOOR * (y * a_pos[k] + (1.0 - y) * a_neg[k])
    return loss, grad, hess


@scalar
def softmax_core(t, c, theta, mode):
    """``alpha_c P(t)`` at class ``c``'s one-vs-rest margin;
    ``theta = (alpha, eps, gamma, epsilon)``."""
    alpha, _, gamma, epsilon = theta
    a = alpha[c]
    value, d1, d2, curvature = poly_core(t, gamma, epsilon)
    return a * value, a * d1, a * apply_policy(d2, curvature, mode), \
        HESS_FLOOR * a if mode == HESS_PSD else 0.0


class PolyLoss(FocalLoss):
    r"""Poly-1 loss (Leng et al. 2022): ``alpha_t (-(1 - p_t)^gamma log p_t
    + epsilon (1 - p_t)^(gamma + 1))``.

    ``gamma=0`` is Poly-1 on cross-entropy, ``-log p_t + epsilon (1 - p_t)``; ``gamma > 0``
    is Poly-1 on focal loss. ``epsilon > 0`` raises the weight of the first polynomial term
    ``(1 - p_t)`` (more gradient for well-classified rows; the paper's ImageNet setting is
    ``epsilon=2``); ``epsilon=-1`` removes it (the paper's setting for focal loss in detection).

    Domain, link, ``alpha`` and ``label_smoothing``: as :class:`~gbloss.FocalLoss`. With label
    smoothing the Poly term follows the targets, ``sum_k t_k alpha_k (...)``, which at
    ``gamma=0`` is the paper's code: ``CE(t) + epsilon (1 - sum_k t_k p_k)``.
    Loss, gradient, Hessian: :func:`poly_core` at the correct-class margin (derivations
    section 11.1), through the mixture of soft labels and the softmax chain of section 3.
    Hessian: the exact one is negative

    * at ``gamma=0`` only for ``epsilon > 1``, where ``p_t < (1 - 1/epsilon) / 2`` (0.25 at
      ``epsilon=2``);
    * at ``gamma > 0`` for badly misclassified rows, ``t < t*(gamma, epsilon)`` with one root
      ``t*`` (gamma=2: -4.02, -2.79, -2.09, -1.76 at epsilon = -1, 0, 1, 2; section 11.1).

    ``"psd"``: ``max(exact, curvature)`` with the positive curvature
    ``(1 + e-)(2g+1) p q^(g+1) + (-e-) 2(g+1) p q^(g+2)``, ``e- = min(epsilon, 0)``: the
    Gauss-Newton parts of the focal core and of the ``epsilon = -1`` loss, mixed as the loss
    mixes them. It equals the exact Hessian wherever ``p_t >= 1 / (1 + gamma)`` (``gamma > 0``)
    or ``p_t >= 1/2`` (``gamma = 0``; everywhere for ``epsilon <= 0``), i.e. near a well-fit
    optimum. ``"gn"``: that curvature alone.
    Calibration: the stationarity map of :mod:`gbloss.calibration` with
    ``|P'(t)| = q^(g+1) ((1 + epsilon)(1 + g) p + q + g p rho / q)``; the gradient keeps its
    sign for ``epsilon >= -1``, so the map is well defined. Proper only at ``epsilon=0``,
    ``gamma=0``, without class weights or smoothing.
    Reduces to: :class:`~gbloss.FocalLoss` (``gamma``, ``alpha``) at ``epsilon=0``;
    cross-entropy at ``epsilon=0, gamma=0``.

    Parameters
    ----------
    epsilon : float >= -1
        Coefficient of the Poly-1 term; 1.0 by default (the paper's Poly-1 definition). Below
        -1 the gradient changes sign near ``p_t = 1``: each row's loss is then minimised at
        ``p_t < 1`` (``1 / |epsilon|`` at ``gamma=0``) and the exact Hessian is negative at
        that optimum, so ``epsilon < -1`` is refused (for every ``gamma``).
    gamma : float >= 0
        Focusing parameter of the focal core; 0 (default) is Poly-1 on cross-entropy.
    alpha : None, float in [0, 1], or sequence
        As :class:`~gbloss.FocalLoss`.
    label_smoothing : float in [0, 1)
        As :class:`~gbloss.FocalLoss`.
    hessian : {"psd", "exact", "gn"}
        See :class:`gbloss.Loss`.

    Notes
    -----
    ``gbloss compare`` searches ``epsilon`` in {-1, 1, 2} at ``gamma=0``: the paper's two
    recommended settings (-1 for detection-style imbalance, 2 for classification) and its
    default Poly-1 (1); ``--no-grid`` uses ``epsilon=1``.
    """

    parameters = ("epsilon", "gamma", "alpha", "label_smoothing")
    scalars = ScalarsBySmoothing(sigmoid_element, softmax_core)
    key = "poly"
    description = "Poly-1 loss"
    grid = {"epsilon": (-1.0, 1.0, 2.0)}
    fixed = {"epsilon": 1.0}
    compare_select = "pr_auc"

    def __init__(self, epsilon=1.0, gamma=0.0, alpha=None, *, label_smoothing=0.0,
                 hessian="psd"):
        super().__init__(gamma, alpha, label_smoothing=label_smoothing, hessian=hessian)
        self.epsilon = check_real("epsilon", epsilon)
        if self.epsilon < -1.0:
            raise ValueError(f"epsilon must be >= -1, got {epsilon!r}: below -1 the Poly-1 term "
                             "outweighs the loss's own slope near p_t = 1, so each row's loss "
                             "is minimised at p_t < 1 (the gradient changes sign there)")

    # the vectorised binary loop is focal loss's own
    _gradient_hessian = Loss._gradient_hessian

    def _core_params(self):
        return self.gamma, self.epsilon

    def _is_cross_entropy(self):
        return self.gamma == 0.0 and self.epsilon == 0.0

    def _small_hessian(self):
        """Focusing, or a negative epsilon: at ``epsilon = -1`` the curvature of
        well-classified rows is ``O(q^(gamma+2))`` instead of ``O(q^(gamma+1))``."""
        return self.gamma > 0 or self.epsilon < 0

    def _log_psi(self, t):
        """``log psi(t) = log(p q / |P'(t)|) = log p - g log q - log((1 + epsilon)(1 + g) p
        + q + g p rho / q)``, every term of the last sum >= 0 for ``epsilon >= -1``."""
        log_p = -np.logaddexp(0.0, -t)
        log_q = -np.logaddexp(0.0, t)
        p, q = np.exp(log_p), np.exp(log_q)
        gamma = self.gamma
        inner = (1.0 + self.epsilon) * (1.0 + gamma) * p + q + gamma * p * _excess_ratio(q,
                                                                                        log_p)
        return log_p - gamma * log_q - np.log(inner)


def _excess_ratio(q, log_p):
    """``rho / q = (-log p - q) / q`` elementwise without cancellation (the series of
    :func:`log_excess` divided by q: ``s + 2 s^2 / (2 - q) sum_j s^(2j) / (2j + 3)``), and its
    limit 0 at q = 0."""
    s = q / (2.0 - q)
    s2 = s * s
    series = np.zeros_like(q)
    for j in range(_SERIES_TERMS - 1, -1, -1):
        series = series * s2 + 1.0 / (2 * j + 3)
    small = s + 2.0 * s2 / (2.0 - q) * series
    with np.errstate(divide="ignore", invalid="ignore"):
        large = -log_p / q - 1.0
    return np.where(q > 0.5, large, small)
