"""gbloss: class-imbalance losses (focal, asymmetric, logit-adjusted, class-balanced) as
verified, Numba-compiled training objectives for XGBoost and LightGBM."""

from . import calibration, decisions
from .losses import (
    AsymmetricLoss,
    CrossEntropyLoss,
    FocalLoss,
    LabelStats,
    LogitAdjustedLoss,
    Loss,
    class_frequencies,
    loss_from_dict,
    register,
)
from .weights import class_balanced_weights, effective_number_weights, inverse_frequency_weights

__version__ = "0.1.0"

__all__ = [
    "AsymmetricLoss",
    "calibration",
    "decisions",
    "CrossEntropyLoss",
    "FocalLoss",
    "LogitAdjustedLoss",
    "LabelStats",
    "Loss",
    "class_balanced_weights",
    "class_frequencies",
    "effective_number_weights",
    "inverse_frequency_weights",
    "loss_from_dict",
    "register",
]
