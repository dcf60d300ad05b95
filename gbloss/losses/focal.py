"""Focal loss (Lin et al. 2017): binary, softmax multiclass and per-label multi-label, with
optional label smoothing.

Derivations: ``docs/derivations.md`` sections 2 (binary), 3 (softmax), 8 (Hessian policy),
11.3 (label smoothing).
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
    focal_softmax_core_vectorisable,
    power_of_vectorisable,
    sigmoid_parts_vectorisable,
)


@scalar
def smoothed_label(y, smoothing):
    """The binary soft label ``y (1 - eps) + eps / 2`` (``y`` itself at ``eps = 0``)."""
    return y * (1.0 - smoothing) + 0.5 * smoothing


@scalar
def sigmoid_element(y, z, k, theta, mode):
    """``y' alpha_k f(z) + (1 - y')(1 - alpha_k) f(-z)``, ``y'`` the smoothed label;
    ``theta = (a_pos, a_neg, eps, gamma)``."""
    a_pos, a_neg, smoothing, gamma = theta
    return focal_mixture(smoothed_label(y, smoothing), z, a_pos[k], a_neg[k], gamma, mode)


@scalar
def softmax_shift(k, c, theta):
    """Focal loss does not shift the scores."""
    return 0.0


@scalar
def softmax_target(k, c, theta):
    """The smoothed target ``(1 - eps) [k == c] + eps / K``; ``theta = (alpha, eps, ...)``."""
    alpha = theta[0]
    smoothing = theta[1]
    return smoothing / alpha.shape[0] + (1.0 - smoothing if k == c else 0.0)


@scalar
def softmax_core(t, c, theta, mode):
    """``alpha_c f(t)`` at class ``c``'s one-vs-rest margin; ``theta = (alpha, eps, gamma)``."""
    alpha, _, gamma = theta
    return focal_softmax_core(t, alpha[c], gamma, mode)


@scalar
def softmax_class_param(c, theta):
    """The class weight ``alpha_c``, for :func:`softmax_core_vectorisable`."""
    return theta[0][c]


@inlined_scalar
def softmax_core_vectorisable(t, a, theta, mode):
    """:func:`softmax_core` through the vectorisable primitives, given ``a = alpha_c`` (the
    CPU's blocked softmax loop)."""
    gamma = theta[2]
    return focal_softmax_core_vectorisable(t, a, gamma, mode)


class ScalarsBySmoothing:
    """The ``scalars`` of a loss with a ``label_smoothing`` parameter, from its sigmoid element
    and its per-class softmax term: the hard-label slots on the class (what
    :func:`gbloss.losses.register` checks) and on a loss without smoothing; the soft-target
    softmax slots (:mod:`gbloss.losses._loops`, targets :func:`softmax_target`) on a loss with
    smoothing."""

    def __init__(self, sigmoid_element, softmax_core, vectorisable=None):
        self.hard = {"sigmoid_element": sigmoid_element, "softmax_shift": softmax_shift,
                     "softmax_core": softmax_core, **(vectorisable or {})}
        self.smoothed = {"sigmoid_element": sigmoid_element, "softmax_target": softmax_target,
                         "softmax_core": softmax_core, **(vectorisable or {})}

    def __get__(self, loss, cls=None):
        return self.smoothed if loss is not None and loss.label_smoothing else self.hard


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


def multilabel_gradient_hessian(y, raw, weight, a_pos, a_neg, gamma, mode, grad, hess):
    """The binary loop's formulas for every label of a row (``raw`` (n, K); ``a_pos``,
    ``a_neg`` per label), vectorised along the labels (when :func:`_flat_multilabel` does not
    send the outputs through the binary loop); the same counts, and the same two loops
    so that ``integral`` is a constant."""
    n, n_out = raw.shape
    weighted = weight.shape[0] > 0
    soft_rows = 0
    nonfinite = 0
    if gamma == 0.0 or gamma == 1.0 or gamma == 2.0:
        for i in prange(n):
            w = weight[i] if weighted else 1.0
            for k in range(n_out):
                z = np.float64(raw[i, k])
                grad[i, k], hess[i, k], soft = hard_label_element(
                    y[i, k], z, w, a_pos[k], a_neg[k], gamma, mode, True)
                soft_rows += soft
                nonfinite += 0 if abs(z) < np.inf else 1
    else:
        for i in prange(n):
            w = weight[i] if weighted else 1.0
            for k in range(n_out):
                z = np.float64(raw[i, k])
                grad[i, k], hess[i, k], soft = hard_label_element(
                    y[i, k], z, w, a_pos[k], a_neg[k], gamma, mode, False)
                soft_rows += soft
                nonfinite += 0 if abs(z) < np.inf else 1
    return soft_rows, nonfinite


_multilabel_loop = _loops.compile_loop(multilabel_gradient_hessian, fastmath=CONTRACT)


def _flat_multilabel(y, raw, weight, a_pos, a_neg, grad, hess):
    """Whether multi-label outputs can go through the binary loop as one flat run of
    elements: no sample weights, the same class weights for every label and C-contiguous
    arrays (views, so the loop writes into ``grad`` and ``hess``); 2.4x faster than the row
    loop at 50k x 10."""
    return (weight.shape[0] == 0 and y.flags.c_contiguous and raw.flags.c_contiguous
            and grad.flags.c_contiguous and hess.flags.c_contiguous
            and (a_pos == a_pos[0]).all() and (a_neg == a_neg[0]).all())


class FocalLoss(Loss):
    r"""Focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)^gamma log p_t``.

    Domain: binary ``y`` in [0, 1]; multiclass (softmax); multi-label (per-label sigmoid).
    Link: sigmoid (binary, multi-label) or softmax (multiclass).
    Loss, gradient, Hessian: the focal core ``f(t) = -q^g log p`` at the correct-class margin
    ``t`` (:mod:`gbloss.losses.primitives`; derivations sections 2-3); soft labels through the
    mixture ``y alpha f(z) + (1 - y)(1 - alpha) f(-z)``.
    Label smoothing (section 11.3, as Keras ``CategoricalFocalCrossentropy``): multiclass
    targets ``t = (1 - eps) onehot(y) + eps / K`` and ``L = -sum_k alpha_k t_k (1 - p_k)^gamma
    log p_k``; binary and per label the soft label ``y' = y (1 - eps) + eps / 2`` in the mixture.
    Hessian: the exact one is negative for badly misclassified rows (``t < t*(gamma)``,
    t* = -2.79 at gamma=2, section 2.6); ``"psd"`` uses ``max(f'', (2g+1) p q^(g+1))``.
    Calibration: the stationarity map of :mod:`gbloss.calibration`; proper at gamma=0 without
    class weights or smoothing. With smoothing the population minimiser is the unsmoothed
    loss's minimiser for the expected target ``(1 - eps) eta + eps / K`` (the loss is linear
    in the target), so the calibrated ``eta`` is the unsmoothed map less the smoothing,
    ``(map - eps / K) / (1 - eps)``, clipped at 0 (multiclass: renormalised); K = 2 for
    binary and per label.
    Reduces to: cross-entropy at ``gamma=0``; the unsmoothed loss at ``label_smoothing=0``.

    Parameters
    ----------
    gamma : float >= 0
        Focusing parameter; 2.0 in the paper.
    alpha : None, float in [0, 1], or sequence
        Binary and multi-label: weight of the positive class (``1 - alpha`` for negatives), a
        scalar or one per label; the paper uses 0.25 with gamma=2. Multiclass: one weight per
        class, ``alpha_y``. ``None``: unweighted (note ``alpha=0.5`` is half the unweighted loss).
    label_smoothing : float in [0, 1)
        ``eps`` above; 0 (default) trains on the labels themselves.
    hessian : {"psd", "exact", "gn"}
        See :class:`gbloss.Loss`.
    """

    tasks = (BINARY, MULTICLASS, "multilabel")
    parameters = ("gamma", "alpha", "label_smoothing")
    scalars = ScalarsBySmoothing(sigmoid_element, softmax_core,
                                 {"softmax_class_param": softmax_class_param,
                                  "softmax_core_vectorisable": softmax_core_vectorisable})
    key = "focal"
    description = "focal loss"
    grid = {"gamma": (1.0, 2.0), "alpha": (None, 0.25)}
    fixed = {"gamma": 2.0, "alpha": None}
    compare_select = "pr_auc"
    compare_by_default = True

    def __init__(self, gamma=2.0, alpha=None, *, label_smoothing=0.0, hessian="psd"):
        super().__init__(hessian=hessian)
        self.gamma = check_real("gamma", gamma, low=0.0)
        self.alpha = check_unit_weights("alpha", alpha)
        self.label_smoothing = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0,
                                          high_open=True)

    def _class_alpha(self, n_class):
        if self.alpha is None:
            return np.ones(n_class)
        if np.ndim(self.alpha) == 0:
            raise ValueError("for multiclass targets alpha must hold one weight per class "
                             f"({n_class} values), got the scalar {self.alpha!r}")
        return per_output(self.alpha, n_class, "alpha")

    def _core_params(self):
        """The parameters of the loss's scalar core, after the weights and the smoothing in
        ``theta``."""
        return (self.gamma,)

    def _is_cross_entropy(self):
        """Whether the per-class term is cross-entropy (up to its class weight)."""
        return self.gamma == 0.0

    def kernel_params(self, task, n_out):
        if task == MULTICLASS:
            return self._class_alpha(n_out), self.label_smoothing, *self._core_params()
        if self.alpha is None:
            a_pos = a_neg = np.ones(n_out)
        else:
            a_pos = per_output(self.alpha, n_out, "alpha")
            a_neg = 1.0 - a_pos
        return a_pos, a_neg, self.label_smoothing, *self._core_params()

    def _gradient_hessian(self, task, y, raw, weight, theta, mode, grad, hess):
        if task != MULTICLASS and not self.label_smoothing:
            a_pos, a_neg, _, gamma = theta
            if task == BINARY:
                soft_rows, nonfinite = _binary_loop(y, raw, weight, a_pos[0], a_neg[0], gamma,
                                                    mode, grad, hess)
            elif _flat_multilabel(y, raw, weight, a_pos, a_neg, grad, hess):
                soft_rows, nonfinite = _binary_loop(
                    y.reshape(-1), raw.reshape(-1), weight, a_pos[0], a_neg[0], gamma, mode,
                    grad.reshape(-1), hess.reshape(-1))
            else:
                soft_rows, nonfinite = _multilabel_loop(y, raw, weight, a_pos, a_neg, gamma,
                                                        mode, grad, hess)
            if soft_rows == 0 or nonfinite:
                return nonfinite
        return super()._gradient_hessian(task, y, raw, weight, theta, mode, grad, hess)

    def _softmax_start_guess(self, masses):
        """Cross-entropy's optimum ``softmax(b) ~ alpha_k T_k`` with ``T_k`` the class's total
        target mass (with smoothing ``(1 - eps) mass_k + eps total / K``): exact when the
        per-class term is cross-entropy."""
        eps = self.label_smoothing
        targets = (1.0 - eps) * masses + eps * masses.sum() / masses.size
        weighted = targets * self._class_alpha(masses.size)
        return np.log(np.maximum(weighted, 1e-300)), self._is_cross_entropy()

    def _small_hessian(self):
        return self.gamma > 0

    def is_proper(self, task):
        """Cross-entropy whose class weights cancel, without smoothing: ``gamma=0`` and
        ``alpha`` None, or equal for all classes (multiclass), or 0.5 everywhere (binary,
        multi-label)."""
        if not self._is_cross_entropy() or self.label_smoothing:
            return False
        if self.alpha is None:
            return True
        alpha = np.atleast_1d(self.alpha)
        if task == MULTICLASS:
            return bool(np.ptp(alpha) == 0)
        return bool(np.all(alpha == 0.5))

    def _without_smoothing(self, target, n_class):
        """P(y | x) from the calibrated target ``(1 - eps) eta + eps / K`` (class docstring):
        clipped at 0, then renormalised (softmax rows) or capped at 1 (one sigmoid output, the
        same for its two classes)."""
        eps = self.label_smoothing
        if not eps:
            return target
        eta = np.maximum((target - eps / n_class) / (1.0 - eps), 0.0)
        return eta / eta.sum(axis=1, keepdims=True) if n_class > 2 else np.minimum(eta, 1.0)

    def _calibrated_sigmoid(self, raw, task):
        if self.alpha is not None and np.any(np.isin(self.alpha, (0.0, 1.0))):
            raise ValueError(f"alpha must lie in (0, 1) for calibrated probabilities, got "
                             f"{self.alpha!r}: a class with weight 0 leaves P(y | x) "
                             "unidentified")
        if not self.label_smoothing:
            return super()._calibrated_sigmoid(raw, task)
        hard = type(self)(**{**self.get_params(), "label_smoothing": 0.0})
        return self._without_smoothing(hard._calibrated_sigmoid(raw, task), 2)

    def _log_psi(self, t):
        """``log psi(t) = log(p q / |f'(t)|)`` at one-vs-rest margins ``t``
        (:mod:`gbloss.calibration`): ``psi = p q^(1-g) / (q + g p log(1/p))``."""
        log_p = -np.logaddexp(0.0, -t)
        log_q = -np.logaddexp(0.0, t)
        gamma = self.gamma
        # both terms of the sum are >= 0
        return log_p + (1.0 - gamma) * log_q - np.log(np.exp(log_q)
                                                      - gamma * np.exp(log_p) * log_p)

    def _calibrated_softmax(self, raw):
        """``eta_k ~ psi(t_k) / alpha_k`` at the one-vs-rest margins, in log space, less the
        smoothing."""
        alpha = self._class_alpha(raw.shape[1])
        if np.any(alpha <= 0):
            raise ValueError(f"alpha must be > 0 for calibrated probabilities, got "
                             f"{self.alpha!r}: a class with weight 0 leaves P(y | x) "
                             "unidentified")
        eta = special.softmax(self._log_psi(one_vs_rest_margins(raw)) - np.log(alpha), axis=1)
        return self._without_smoothing(eta, raw.shape[1])

    @classmethod
    def compare_grid(cls, task):
        grid = dict(cls.grid)
        if task == MULTICLASS and "alpha" in grid:
            grid["alpha"] = (None,)  # a scalar alpha is a binary / per-label weight
        return grid
