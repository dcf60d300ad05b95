"""Logit-adjusted cross-entropy (Menon et al. 2021): binary and softmax multiclass, and the
post-hoc variant.

Derivations: ``docs/derivations.md`` section 5.
"""

import copy

import numpy as np

from .._jit import scalar
from ._base import BINARY, MULTICLASS, LabelStats, Loss, check_bool, check_real, frozen_array
from .primitives import (
    focal_mixture,
    no_class_param,
    shifted_cross_entropy_core,
    shifted_cross_entropy_core_vectorisable,
)


@scalar
def sigmoid_element(y, z, k, theta, mode):
    """Cross-entropy at the shifted margin ``z + tau log(pi_1 / pi_0)``; ``theta = (offset,)``."""
    offset, = theta
    return focal_mixture(y, z + offset[k], 1.0, 1.0, 0.0, mode)


@scalar
def softmax_shift(k, c, theta):
    """``tau log pi_k``; ``theta = (offset,)``."""
    offset, = theta
    return offset[k]


class LogitAdjustedLoss(Loss):
    r"""Logit-adjusted cross-entropy (Menon et al. 2021), binary and softmax multiclass.

    ``L = CE(softmax(z + tau log pi), y)``; binary: ``BCE(sigmoid(z + tau log(pi_1/pi_0)), y)``.

    Domain: binary ``y`` in [0, 1] or multiclass labels. Link: ``softmax(z + tau log pi)``,
    which estimates P(y | x) under the training distribution (a proper loss: calibration is the
    identity). :meth:`decision_scores` returns ``z`` itself, whose argmax is the balanced-error
    rule of the paper.
    Post-hoc variant (``posthoc=True``): train with plain cross-entropy, and take the decision
    scores ``z - tau log pi``; :meth:`predict_proba` is then ``softmax(z)``.
    Hessian: cross-entropy's, exact and positive.
    Reduces to: cross-entropy at ``tau=0``.

    Parameters
    ----------
    tau : float >= 0
        Temperature of the adjustment (paper: 1).
    priors : None or sequence of K class probabilities (K=2 for binary: ``(pi_0, pi_1)``)
        ``None``: the class frequencies of the training labels, fixed by :meth:`prepare`
        (``loss = loss.prepare(y_train)``; the gbloss engines and estimators do it), from the
        unweighted class counts.
    posthoc : bool
    """

    tasks = (BINARY, MULTICLASS)
    parameters = ("tau", "priors", "posthoc")
    scalars = {"sigmoid_element": sigmoid_element, "softmax_shift": softmax_shift,
               "softmax_core": shifted_cross_entropy_core,
               "softmax_class_param": no_class_param,
               "softmax_core_vectorisable": shifted_cross_entropy_core_vectorisable}
    key = "la"
    description = "logit-adjusted cross-entropy"
    grid = {"tau": (0.5, 1.0, 2.0)}
    fixed = {"tau": 1.0}
    compare_select = "balanced_accuracy"
    compare_by_default = True

    def __init__(self, tau=1.0, priors=None, *, posthoc=False, hessian="psd"):
        super().__init__(hessian=hessian)
        self.tau = check_real("tau", tau, low=0.0)
        self.priors = None if priors is None else _check_priors(priors)
        self.posthoc = check_bool("posthoc", posthoc)

    @property
    def is_prepared(self):
        return self.priors is not None

    def _prepare(self, stats):
        """A copy with ``priors`` set to the class frequencies of the statistics (when not
        given)."""
        if self.priors is not None:
            return self
        new = copy.copy(self)
        new.priors = _check_priors(_frequencies(stats))
        return new

    def _adjustment(self, n_out):
        """``tau log pi`` (K,), or for binary targets ``[tau log(pi_1 / pi_0)]``."""
        self._require_prepared()
        n_class = max(n_out, 2)
        if len(self.priors) != n_class:
            raise ValueError(f"priors has {len(self.priors)} entries but the target has "
                             f"{n_class} classes (binary targets take (pi_0, pi_1))")
        adj = self.tau * np.log(self.priors)
        return adj if n_out > 1 else adj[1:] - adj[:1]

    def link_offset(self, task, n_out):
        return np.zeros(n_out) if self.posthoc else self._adjustment(n_out)

    def kernel_params(self, task, n_out):
        return (self.link_offset(task, n_out),)

    def _softmax_start_guess(self, masses):
        guess, _ = super()._softmax_start_guess(masses)
        return guess, True  # cross-entropy at shifted scores: the guess is the optimum

    def is_proper(self, task):
        return True

    def decision_scores(self, raw):
        raw = np.asarray(raw, dtype=np.float64)
        if not self.posthoc:
            return raw
        adj = self._adjustment(1 if raw.ndim == 1 else raw.shape[1])
        return raw - (adj[0] if raw.ndim == 1 else adj)


def _check_priors(priors):
    try:
        arr = frozen_array("priors", priors)
    except ValueError:
        arr = np.zeros(0)
    if arr.size < 2 or np.any(arr <= 0) or abs(arr.sum() - 1.0) > 1e-6:
        raise ValueError("priors must be a distribution: a 1-D sequence of at least 2 positive "
                         f"class probabilities summing to 1, got {priors!r}")
    arr = arr / arr.sum()
    arr.flags.writeable = False
    return arr


def _frequencies(stats):
    counts = np.asarray(stats.counts, dtype=np.float64)
    if np.any(counts <= 0):
        raise ValueError("every class needs at least one training label to estimate the "
                         f"logit-adjustment priors; class counts are {counts.tolist()}")
    return counts / counts.sum()


def class_frequencies(y, n_classes=None):
    """Relative frequencies of the labels ``0..K-1`` (at least two classes); soft binary labels
    in [0, 1] give ``(1 - mean, mean)``."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size == 0 or np.isnan(y).any() or np.any(y < 0):
        raise ValueError("y must be a non-empty vector of labels 0..K-1 (no NaN) to estimate "
                         "class priors")
    multiclass = (n_classes is not None and n_classes > 2) or np.max(y) > 1
    if multiclass and np.any(y != np.floor(y)):
        raise ValueError("y must hold integer class labels 0..K-1 (or soft binary labels in "
                         "[0, 1]) to estimate class priors")
    stats = LabelStats.from_labels(MULTICLASS if multiclass else BINARY, y, None,
                                   n_classes if multiclass else None)
    return _frequencies(stats)
