"""The gbloss losses: one module each, registered here, one line per loss.

See :mod:`gbloss.losses._base` for the protocol every layer uses, and ``docs/architecture.md``
for how to add a loss (one module and one line below, or :func:`register` from your own code).
"""

from .._jit import scalar
from . import primitives
from ._base import (
    BINARY,
    MULTICLASS,
    MULTILABEL,
    REGISTRY,
    TASKS,
    LabelStats,
    Loss,
    by_key,
    loss_from_dict,
    register,
)
from .asymmetric import AsymmetricLoss
from .cross_entropy import CrossEntropyLoss
from .focal import FocalLoss
from .logit_adjusted import LogitAdjustedLoss, class_frequencies

register(FocalLoss)
register(CrossEntropyLoss)
register(AsymmetricLoss)
register(LogitAdjustedLoss)

__all__ = [
    "BINARY",
    "MULTICLASS",
    "MULTILABEL",
    "REGISTRY",
    "TASKS",
    "AsymmetricLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LabelStats",
    "LogitAdjustedLoss",
    "Loss",
    "by_key",
    "class_frequencies",
    "loss_from_dict",
    "primitives",
    "register",
    "scalar",
]
