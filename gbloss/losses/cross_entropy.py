"""Cross-entropy (log-loss): binary, softmax multiclass and per-label multi-label, with
optional label smoothing.

The focal loss at ``gamma = 0`` (its scalar functions and loops); derivations sections 7 and
11.3.
"""

from .focal import FocalLoss


class CrossEntropyLoss(FocalLoss):
    """Cross-entropy (log-loss): binary, softmax multiclass and per-label multi-label.

    The plain baseline; identical to ``FocalLoss(gamma=0)``. Its Hessian ``p(1-p)`` (softmax:
    ``p_k(1-p_k)``) is exact and positive; ``hessian="psd"`` only adds the 1e-16 floor.
    ``alpha`` as in :class:`~gbloss.FocalLoss` gives weighted cross-entropy.
    Label smoothing (as PyTorch's ``CrossEntropyLoss(label_smoothing=)``): multiclass targets
    ``t = (1 - eps) onehot(y) + eps / K``, ``L = -sum_k alpha_k t_k log p_k`` (gradient
    ``p - t`` without class weights); binary and per label ``y' = y (1 - eps) + eps / 2``.
    Calibration: proper without class weights or smoothing; weighted, the prior-shift
    correction ``logit(eta) = z + log((1 - alpha) / alpha)``; smoothed, that map less the
    smoothing, ``(map - eps / K) / (1 - eps)`` clipped at 0 (see :class:`~gbloss.FocalLoss`).
    """

    parameters = ("alpha", "label_smoothing")
    key = "ce"
    description = "cross-entropy"
    grid = {}
    fixed = {}
    compare_select = None
    compare_by_default = True

    def __init__(self, alpha=None, *, label_smoothing=0.0, hessian="psd"):
        super().__init__(gamma=0.0, alpha=alpha, label_smoothing=label_smoothing,
                         hessian=hessian)

    @classmethod
    def compare_grid(cls, task):
        return {}
