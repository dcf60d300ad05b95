"""Asymmetric loss, ASL (Ridnik et al. 2021): binary and per-label multi-label.

Derivations: ``docs/derivations.md`` sections 4 (loss, exact and detached derivatives, the kink
at ``p = m``) and 8.2 (Hessian policy).
"""

import warnings

import numpy as np

from .._jit import scalar
from ._base import BINARY, MULTILABEL, Loss, check_choice, check_real
from .primitives import (
    HESS_EXACT,
    HESS_FLOOR,
    HESS_PSD,
    LOG_KINK_FLOOR,
    apply_policy,
    focal_core,
    power_of,
    sigmoid_parts,
)


@scalar
def asl_negative(z, gamma, m, detached, mode):
    """ASL negative part with probability margin ``m > 0``: ``(loss, grad, hess)`` at margin z.

    ``u = p - m``, ``v = 1 - u = q + m``, ``Lambda(u) = -log1p(-u)/u``::

        L = -u^g log v                          (0 where p <= m)
        psi'  = u^g (1/v + g Lambda)            g = pq psi'
        psi'' = u^(g-1) (g(g-1) Lambda + 2g/v) + u^g / v^2
        h = pq (q-p) psi' + (pq)^2 psi''        GN part: u^g (pq)^2 / v^2

    Detached weight ``u^g`` (official code): ``g = u^g pq/v`` and the total curvature
    ``u^g pq (q^2 + m(q-p))/v^2 + g u^(g-1) (pq)^2 / v``.
    """
    p, q, lp, lq = sigmoid_parts(z)
    u = p - m
    if u <= 0.0:
        return 0.0, 0.0, 0.0
    v = q + m
    log_u = np.log(u)
    ug = power_of(u, log_u, gamma)
    pq = p * q
    loss = -ug * np.log(v)
    h_gn = ug * pq * pq / (v * v)
    if mode != HESS_EXACT and gamma < 1.0:
        log_u = max(log_u, LOG_KINK_FLOOR)
    if detached:
        grad = ug * pq / v
        hess = ug * pq * (q * q + m * (q - p)) / (v * v)
        if gamma > 0.0:
            hess += gamma * np.exp((gamma - 1.0) * log_u) * pq * pq / v
    else:
        lam = -np.log1p(-u) / u
        d1 = ug * (1.0 / v + gamma * lam)
        d2 = ug / (v * v)
        if gamma > 0.0:
            d2 += np.exp((gamma - 1.0) * log_u) * (gamma * (gamma - 1.0) * lam + 2.0 * gamma / v)
        grad = pq * d1
        hess = pq * (q - p) * d1 + pq * pq * d2
    return loss, grad, apply_policy(hess, h_gn, mode)


@scalar
def sigmoid_element(y, z, k, theta, mode):
    """``y f_{g+}(z) + (1 - y) N(z)``: the focal core with ``gamma_pos`` for positives;
    ``N(z) = f_{g-}(-z)`` without a probability margin and :func:`asl_negative` with one;
    ``theta = (gamma_pos, gamma_neg, clip, detached)``."""
    gamma_pos, gamma_neg, margin, detached = theta
    loss = 0.0
    grad = 0.0
    hess = 0.0
    if y > 0.0:
        f, f1, f2, f2_gn = focal_core(z, gamma_pos, detached)
        loss += y * f
        grad += y * f1
        hess += y * apply_policy(f2, f2_gn, mode)
    if y < 1.0:
        if margin > 0.0:
            ln, gn, hn = asl_negative(z, gamma_neg, margin, detached, mode)
        else:
            ln, gn, hn, hn_gn = focal_core(-z, gamma_neg, detached)
            gn = -gn
            hn = apply_policy(hn, hn_gn, mode)
        loss += (1.0 - y) * ln
        grad += (1.0 - y) * gn
        hess += (1.0 - y) * hn
    if mode == HESS_PSD:
        hess += HESS_FLOOR
    return loss, grad, hess


class AsymmetricLoss(Loss):
    r"""Asymmetric loss, ASL (Ridnik et al. 2021), binary and per-label multi-label.

    ``L = -y (1-p)^{g+} log p - (1-y) p_m^{g-} log(1 - p_m)``, ``p_m = max(p - clip, 0)``.

    Domain: ``y`` in [0, 1], 1-D (binary) or 2-D (multi-label). Link: sigmoid.
    Gradient: exact by default. ``gradient="detached"`` reproduces the official code
    (``disable_torch_grad_focal_loss=True``, used by its ``train.py``): the focusing weights
    ``(1-p)^{g+}`` and ``p_m^{g-}`` are treated as constants; its Hessian is the total
    derivative of that gradient field (derivations section 4.3). Unlike the official code there
    is no ``eps=1e-8`` clamp inside the logs, which zeroes the gradient of badly wrong positives.
    Hessian: the exact one is negative in the concave tails; ``"psd"`` uses
    ``max(exact, p_m^{g-} (pq)^2 / (1 - p_m)^2)`` for the negative part (section 8.2).
    Calibration: the stationarity map (:mod:`gbloss.calibration`); below the clip with
    ``gamma_neg = 0`` P(y | x) is not identified (a warning says how many outputs).
    Reduces to: focal loss (``alpha=None``) when ``gamma_pos == gamma_neg`` and ``clip == 0``.

    Parameters
    ----------
    gamma_pos, gamma_neg : float >= 0
        Focusing parameters of positives and negatives (paper: 0 and 4).
    clip : float in [0, 1)
        Probability margin m (paper: 0.05); negatives with ``p <= clip`` have zero loss.
    gradient : {"exact", "detached"}
    hessian : {"psd", "exact", "gn"}
        See :class:`gbloss.Loss`.
    """

    tasks = (BINARY, MULTILABEL)
    parameters = ("gamma_pos", "gamma_neg", "clip", "gradient")
    scalars = {"sigmoid_element": sigmoid_element}
    key = "asl"
    description = "asymmetric loss (ASL)"
    grid = {"gamma_neg": (2.0, 4.0), "clip": (0.0, 0.05)}
    fixed = {"gamma_neg": 4.0, "clip": 0.05}
    compare_select = "pr_auc"
    compare_by_default = True

    def __init__(self, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, *, gradient="exact",
                 hessian="psd"):
        super().__init__(hessian=hessian)
        self.gamma_pos = check_real("gamma_pos", gamma_pos, low=0.0)
        self.gamma_neg = check_real("gamma_neg", gamma_neg, low=0.0)
        self.clip = check_real("clip", clip, low=0.0, high=1.0, high_open=True)
        self.gradient = check_choice("gradient", gradient, ("exact", "detached"))

    def kernel_params(self, task, n_out):
        return self.gamma_pos, self.gamma_neg, self.clip, self.gradient == "detached"

    def loss_params(self, task, n_out):
        return self.gamma_pos, self.gamma_neg, self.clip, False

    def _small_hessian(self):
        return True

    def is_proper(self, task):
        """Cross-entropy: ``gamma_pos = gamma_neg = clip = 0``."""
        return self.gamma_pos == 0 and self.gamma_neg == 0 and self.clip == 0

    def _calibrated_sigmoid(self, raw, task):
        proba = super()._calibrated_sigmoid(raw, task)
        if self.gamma_neg == 0 and self.clip > 0:
            flat = int(np.count_nonzero(proba == 0))
            if flat:
                z_clip = np.log(self.clip) - np.log1p(-self.clip)
                jump = super()._calibrated_sigmoid(np.array([z_clip + 1e-9]), BINARY)[0]
                warnings.warn(
                    f"{self!r} does not identify P(y=1 | x) below {jump:.4g}: every such "
                    "probability has its population minimiser at sigmoid(raw) = clip. "
                    f"{flat} of {raw.size} outputs lie at or below the clip; their calibrated "
                    "probability is 0, a lower bound.", UserWarning, stacklevel=3)
        return proba
