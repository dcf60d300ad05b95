"""Cross-entropy (log-loss): binary, softmax multiclass and per-label multi-label.

The focal loss at ``gamma = 0`` (its scalar functions and loops); derivations section 7.
"""

from .focal import FocalLoss


class CrossEntropyLoss(FocalLoss):
    """Cross-entropy (log-loss): binary, softmax multiclass and per-label multi-label.

    The plain baseline; identical to ``FocalLoss(gamma=0)``. Its Hessian ``p(1-p)`` (softmax:
    ``p_k(1-p_k)``) is exact and positive; ``hessian="psd"`` only adds the 1e-16 floor.
    ``alpha`` as in :class:`~gbloss.FocalLoss` gives weighted cross-entropy.
    Calibration: proper without class weights; weighted, the prior-shift correction
    ``logit(eta) = z + log((1 - alpha) / alpha)``.
    """

    parameters = ("alpha",)
    key = "ce"
    description = "cross-entropy"
    grid = {}
    fixed = {}
    compare_select = None

    def __init__(self, alpha=None, *, hessian="psd"):
        super().__init__(gamma=0.0, alpha=alpha, hessian=hessian)

    @classmethod
    def compare_grid(cls, task):
        return {}
