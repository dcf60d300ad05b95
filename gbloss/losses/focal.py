"""Focal loss (Lin et al. 2017): binary, softmax multiclass and per-label multi-label.

Derivations: ``docs/derivations.md`` sections 2 (binary), 3 (softmax), 8 (Hessian policy).
"""

import numpy as np
from numba import prange
from scipy import special

from .._jit import CONTRACT, inlined_scalar, scalar
from . import _loops
from ._base import (
    BINARY,
    MULTICLASS,
    Loss,
    check_real,
    check_unit_weights,
    one_vs_rest_margins,
    per_output,
)
from .primitives import (
    HESS_FLOOR,
    HESS_PSD,
    apply_policy,
    focal_from_parts,
    focal_mixture,
    focal_softmax_core,
    power_of_vectorisable,
    sigmoid_parts_vectorisable,
)


@scalar
def sigmoid_element(y, z, k, theta, mode):
    """``y alpha_k f(z) + (1 - y)(1 - alpha_k) f(-z)``; ``theta = (a_pos, a_neg, gamma)``."""
    a_pos, a_neg, gamma = theta
    return focal_mixture(y, z, a_pos[k], a_neg[k], gamma, mode)


@scalar
def softmax_shift(k, c, theta):
    """Focal loss does not shift the scores."""
    return 0.0


@scalar
def softmax_core(t, c, theta, mode):
    """``alpha_c f(t)`` at the true class's one-vs-rest margin; ``theta = (alpha, gamma)``."""
    alpha, gamma = theta
    return focal_softmax_core(t, alpha[c], gamma, mode)


@inlined_scalar
def hard_label_element(label, z, w, a_pos, a_neg, gamma, mode, integral):
    """Gradient and Hessian of a binary focal output for a hard label (0 or 1): the focal
    formulas at the signed margin ``s z``, ``s = 2y - 1``; the third value is 1 when ``label``
    is not 0 or 1 (NaN included), else 0."""
    positive = label > 0.5
    s = 1.0 if positive else -1.0
    a = a_pos if positive else a_neg
    p, q, lp, lq = sigmoid_parts_vectorisable(s * z)
    _, f1, f2, f2_gn = focal_from_parts(p, q, lp, power_of_vectorisable(q, lq, gamma, integral),
                                        gamma, False)
    h = a * apply_policy(f2, f2_gn, mode)
    if_soft = 0 if label * (1.0 - label) == 0.0 else 1
    return w * (a * s * f1), w * (h + HESS_FLOOR * a if mode == HESS_PSD else h), if_soft


def binary_gradient_hessian(y, raw, weight, a_pos, a_neg, gamma, mode, grad, hess):
    """The binary loop specialised for hard labels: the focal formulas at the signed margin in
    a loop without branches or calls, which LLVM vectorises (about 3x faster). Returns the
    counts of soft labels (the caller then redoes all rows with the mixture) and of non-finite
    scores."""
    n = raw.shape[0]
    weighted = weight.shape[0] > 0
    soft_rows = 0  # integer counts: a float sum would keep LLVM from vectorising
    nonfinite = 0
    # two loops, so that ``integral`` is a constant LLVM folds away (a runtime flag would leave
    # the general power computed on every row)
    if gamma == 0.0 or gamma == 1.0 or gamma == 2.0:
        for i in prange(n):
            z = np.float64(raw[i])
            grad[i], hess[i], soft = hard_label_element(
                y[i], z, weight[i] if weighted else 1.0, a_pos, a_neg, gamma, mode, True)
            soft_rows += soft
            nonfinite += 0 if abs(z) < np.inf else 1
    else:
        for i in prange(n):
            z = np.float64(raw[i])
            grad[i], hess[i], soft = hard_label_element(
                y[i], z, weight[i] if weighted else 1.0, a_pos, a_neg, gamma, mode, False)
            soft_rows += soft
            nonfinite += 0 if abs(z) < np.inf else 1
    return soft_rows, nonfinite


_binary_loop = _loops.compile_loop(binary_gradient_hessian, fastmath=CONTRACT)


class FocalLoss(Loss):
    r"""Focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)^gamma log p_t``.

    Domain: binary ``y`` in [0, 1]; multiclass (softmax); multi-label (per-label sigmoid).
    Link: sigmoid (binary, multi-label) or softmax (multiclass).
    Loss, gradient, Hessian: the focal core ``f(t) = -q^g log p`` at the correct-class margin
    ``t`` (:mod:`gbloss.losses.primitives`; derivations sections 2-3); soft labels through the
    mixture ``y alpha f(z) + (1 - y)(1 - alpha) f(-z)``.
    Hessian: the exact one is negative for badly misclassified rows (``t < t*(gamma)``,
    t* = -2.79 at gamma=2, section 2.6); ``"psd"`` uses ``max(f'', (2g+1) p q^(g+1))``.
    Calibration: the stationarity map of :mod:`gbloss.calibration`; proper at gamma=0 without
    class weights.
    Reduces to: cross-entropy at ``gamma=0``.

    Parameters
    ----------
    gamma : float >= 0
        Focusing parameter; 2.0 in the paper.
    alpha : None, float in [0, 1], or sequence
        Binary and multi-label: weight of the positive class (``1 - alpha`` for negatives), a
        scalar or one per label; the paper uses 0.25 with gamma=2. Multiclass: one weight per
        class, ``alpha_y``. ``None``: unweighted (note ``alpha=0.5`` is half the unweighted loss).
    hessian : {"psd", "exact", "gn"}
        See :class:`gbloss.Loss`.
    """

    tasks = (BINARY, MULTICLASS, "multilabel")
    parameters = ("gamma", "alpha")
    scalars = {"sigmoid_element": sigmoid_element, "softmax_shift": softmax_shift,
               "softmax_core": softmax_core}
    key = "focal"
    description = "focal loss"
    grid = {"gamma": (1.0, 2.0), "alpha": (None, 0.25)}
    fixed = {"gamma": 2.0, "alpha": None}
    compare_select = "pr_auc"

    def __init__(self, gamma=2.0, alpha=None, *, hessian="psd"):
        super().__init__(hessian=hessian)
        self.gamma = check_real("gamma", gamma, low=0.0)
        self.alpha = check_unit_weights("alpha", alpha)

    def _class_alpha(self, n_class):
        if self.alpha is None:
            return np.ones(n_class)
        if np.ndim(self.alpha) == 0:
            raise ValueError("for multiclass targets alpha must hold one weight per class "
                             f"({n_class} values), got the scalar {self.alpha!r}")
        return per_output(self.alpha, n_class, "alpha")

    def kernel_params(self, task, n_out):
        if task == MULTICLASS:
            return self._class_alpha(n_out), self.gamma
        if self.alpha is None:
            return np.ones(n_out), np.ones(n_out), self.gamma
        alpha = per_output(self.alpha, n_out, "alpha")
        return alpha, 1.0 - alpha, self.gamma

    def _gradient_hessian(self, task, y, raw, weight, theta, mode, grad, hess):
        if task == BINARY:
            a_pos, a_neg, gamma = theta
            soft_rows, nonfinite = _binary_loop(y, raw, weight, a_pos[0], a_neg[0], gamma, mode,
                                                grad, hess)
            if soft_rows == 0 or nonfinite:
                return nonfinite
        return super()._gradient_hessian(task, y, raw, weight, theta, mode, grad, hess)

    def _softmax_start_guess(self, masses):
        """Cross-entropy's optimum ``softmax(b) = alpha mass / sum``: exact at gamma=0."""
        weighted = masses * self._class_alpha(masses.size)
        return np.log(np.maximum(weighted, 1e-300)), self.gamma == 0.0

    def _small_hessian(self):
        return self.gamma > 0

    def is_proper(self, task):
        """Cross-entropy whose class weights cancel: ``gamma=0`` and ``alpha`` None, or equal
        for all classes (multiclass), or 0.5 everywhere (binary, multi-label)."""
        if self.gamma != 0:
            return False
        if self.alpha is None:
            return True
        alpha = np.atleast_1d(self.alpha)
        if task == MULTICLASS:
            return bool(np.ptp(alpha) == 0)
        return bool(np.all(alpha == 0.5))

    def _calibrated_sigmoid(self, raw, task):
        if self.alpha is not None and np.any(np.isin(self.alpha, (0.0, 1.0))):
            raise ValueError(f"alpha must lie in (0, 1) for calibrated probabilities, got "
                             f"{self.alpha!r}: a class with weight 0 leaves P(y | x) "
                             "unidentified")
        return super()._calibrated_sigmoid(raw, task)

    def _calibrated_softmax(self, raw):
        """``eta_k ~ psi(t_k) / alpha_k`` with ``psi(t) = p q^(1-g) / (q + g p log(1/p))`` at
        the one-vs-rest margins (:mod:`gbloss.calibration`), in log space."""
        alpha = self._class_alpha(raw.shape[1])
        if np.any(alpha <= 0):
            raise ValueError(f"alpha must be > 0 for calibrated probabilities, got "
                             f"{self.alpha!r}: a class with weight 0 leaves P(y | x) "
                             "unidentified")
        t = one_vs_rest_margins(raw)
        log_p = -np.logaddexp(0.0, -t)
        log_q = -np.logaddexp(0.0, t)
        gamma = self.gamma
        # log psi(t) = log p + (1 - g) log q - log(q + g p log(1/p)); both terms of the sum >= 0
        log_psi = log_p + (1.0 - gamma) * log_q - np.log(np.exp(log_q)
                                                         - gamma * np.exp(log_p) * log_p)
        return special.softmax(log_psi - np.log(alpha), axis=1)

    @classmethod
    def compare_grid(cls, task):
        grid = dict(cls.grid)
        if task == MULTICLASS:
            grid["alpha"] = (None,)  # a scalar alpha is a binary / per-label weight
        return grid
