"""Label-distribution-aware margin loss (LDAM, Cao et al. 2019): binary and softmax multiclass.

Derivations: ``docs/derivations.md`` section 11.2.
"""

import numpy as np
from scipy import special

from .._jit import scalar
from ._base import BINARY, MULTICLASS, Loss, check_real, frozen_array, one_vs_rest_margins
from .primitives import (
    HESS_FLOOR,
    HESS_PSD,
    focal_core,
    no_class_param,
    shifted_cross_entropy_core,
    shifted_cross_entropy_core_vectorisable,
)


@scalar
def sigmoid_element(y, z, k, theta, mode):
    """Cross-entropy at ``z - Delta_1`` (label 1) and ``z + Delta_0`` (label 0), mixed by the
    (soft) label; ``theta = (margins,)`` with ``margins = (Delta_0, Delta_1)``. The Hessian is
    exact under every policy (the policy only adds the floor)."""
    margins, = theta
    loss = 0.0
    grad = 0.0
    hess = 0.0
    if y > 0.0:
        value, d1, d2, _ = focal_core(z - margins[1], 0.0, False)
        loss += y * value
        grad += y * d1
        hess += y * d2
    if y < 1.0:
        value, d1, d2, _ = focal_core(-(z + margins[0]), 0.0, False)
        loss += (1.0 - y) * value
        grad -= (1.0 - y) * d1
        hess += (1.0 - y) * d2
    if mode == HESS_PSD:
        hess += HESS_FLOOR
    return loss, grad, hess


@scalar
def softmax_shift(k, c, theta):
    """``-Delta_c`` on the true class ``c``, 0 elsewhere; ``theta = (margins,)``."""
    margins, = theta
    return -margins[c] if k == c else 0.0


def class_margins(max_margin, counts):
    """``Delta_j = max_margin n_j^(-1/4) / max_k n_k^(-1/4)`` over the classes with ``n_j > 0``;
    a class without training mass gets ``max_margin`` (it has no rows to shift)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    margins = np.full(counts.shape, max_margin)
    margins[present] = max_margin * (counts[present] / counts[present].min()) ** -0.25
    return margins


class LDAMLoss(Loss):
    r"""Label-distribution-aware margin loss (LDAM, Cao et al. 2019), binary and softmax
    multiclass: cross-entropy with the true class's score lowered by a per-class margin.

    Margins: ``Delta_j = max_margin n_j^(-1/4) / max_k n_k^(-1/4)``, so the rarest class gets
    ``max_margin`` and a class ``m`` times more frequent ``max_margin m^(-1/4)``. Softmax:
    ``L = -log softmax(z - Delta_y e_y)_y``. Binary, raw score ``z = z_1 - z_0``:
    ``L = log(1 + exp(-(z - Delta_1)))`` for y=1 and ``log(1 + exp(z + Delta_0))`` for y=0;
    soft labels through the mixture ``y L(z; 1) + (1 - y) L(z; 0)``.

    Link: ``softmax(z)`` / ``sigmoid(z)`` without margins (the paper's prediction rule; the
    decision is ``argmax z``). These are **not** calibrated: the margins push rare classes'
    scores up. Calibrated probabilities (the default of :meth:`predict_proba`) invert the
    population stationarity ``sum_c eta_c (softmax(z - Delta_c e_c) - e_c) = 0``, whose
    solution is closed-form (derivations section 11.2)::

        eta_k  proportional to  p_k (1 - p_k (1 - exp(-Delta_k))),     p = softmax(z)

    (binary: ``logit(eta) = log sigmoid(z + Delta_0) - log sigmoid(Delta_1 - z)``).
    Hessian: cross-entropy's at the shifted scores, exact and positive; ``"psd"`` only adds the
    1e-16 floor and ``"gn"`` is the exact Hessian.
    Start: the constant minimising the shifted loss (not the log class frequencies).
    Decision: at the population optimum LDAM moves the boundary between two classes by at most a
    factor 2 in their odds, for any margins (section 11.2); logit adjustment moves it by the
    prior ratio. With boosted trees expect small changes to the balanced error.
    Reduces to: cross-entropy at ``max_margin=0``.

    Parameters
    ----------
    max_margin : float >= 0
        The rarest class's margin, in raw-score units (the paper tunes it so that the largest
        margin is 0.5 on normalised logits).
    counts : None or sequence of K class sizes (K=2 for binary: ``(n_0, n_1)``)
        ``None``: the weighted class masses of the training labels (sample weights count, so
        balancing class weights make every margin ``max_margin``), fixed by :meth:`prepare`
        (``loss = loss.prepare(y_train)``; the gbloss engines, estimators and Dask paths do it).
        Given: kept as a read-only copy; values >= 0, at least one positive.
    hessian : {"exact", "psd", "gn"}
        See :class:`gbloss.Loss`; all three are the exact (positive) Hessian here, "psd" with
        the floor.
    """

    tasks = (BINARY, MULTICLASS)
    parameters = ("max_margin", "counts")
    scalars = {"sigmoid_element": sigmoid_element, "softmax_shift": softmax_shift,
               "softmax_core": shifted_cross_entropy_core,
               "softmax_class_param": no_class_param,
               "softmax_core_vectorisable": shifted_cross_entropy_core_vectorisable}
    key = "ldam"
    description = "label-distribution-aware margin loss"
    grid = {"max_margin": (0.5, 1.0, 2.0)}
    fixed = {"max_margin": 0.5}
    compare_select = "balanced_accuracy"

    def __init__(self, max_margin=0.5, counts=None, *, hessian="exact"):
        super().__init__(hessian=hessian)
        self.max_margin = check_real("max_margin", max_margin, low=0.0)
        self.counts = None if counts is None else _check_counts(counts)

    @property
    def is_prepared(self):
        return self.counts is not None

    def _prepare(self, stats):
        """A copy with ``counts`` set to the weighted class masses of the statistics (when
        not given)."""
        return self if self.counts is not None else \
            type(self)(self.max_margin, stats.masses, hessian=self.hessian)

    def margins(self, n_out):
        """``(Delta_0, ..., Delta_{K-1})`` for ``n_out`` outputs (1: binary, two margins)."""
        self._require_prepared()
        n_class = max(n_out, 2)
        if len(self.counts) != n_class:
            raise ValueError(f"counts has {len(self.counts)} entries but the target has "
                             f"{n_class} classes (binary targets take (n_0, n_1))")
        return class_margins(self.max_margin, self.counts)

    def kernel_params(self, task, n_out):
        return (self.margins(n_out),)

    def is_proper(self, task):
        return self.max_margin == 0.0

    def _calibrated_sigmoid(self, raw, task):
        delta_0, delta_1 = self.margins(1)
        return special.expit(np.logaddexp(0.0, raw - delta_1) - np.logaddexp(0.0, -raw - delta_0))

    def _calibrated_softmax(self, raw):
        """``log eta_k = log p_k + log(q_k + p_k exp(-Delta_k)) + const`` at the one-vs-rest
        margins, ``p_k = sigmoid(t_k)``, ``q_k = sigmoid(-t_k)``."""
        t = one_vs_rest_margins(raw)
        log_p = -np.logaddexp(0.0, -t)
        log_q = -np.logaddexp(0.0, t)
        margins = self.margins(raw.shape[1])
        return special.softmax(log_p + np.logaddexp(log_q, log_p - margins), axis=1)


def _check_counts(counts):
    try:
        arr = frozen_array("counts", counts)
    except ValueError:
        arr = np.zeros(0)
    if arr.size < 2 or np.any(arr < 0) or not np.any(arr > 0):
        raise ValueError("counts must be a 1-D sequence of at least 2 class sizes >= 0, not all "
                         f"0 (binary: (n_0, n_1)), got {counts!r}")
    return arr
