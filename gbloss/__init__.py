"""gbloss: class-imbalance losses (focal, asymmetric, logit-adjusted, Poly-1, LDAM,
class-balanced) as verified, Numba-compiled training objectives for XGBoost and LightGBM.

The public names below are loaded on first use (module ``__getattr__``), so ``import gbloss``
and ``python -m gbloss`` start without importing Numba or scikit-learn until they are needed.
"""

import importlib

__version__ = "0.1.0"

#: Public name -> the submodule that defines it (a submodule itself when the name is one).
_EXPORTS = {
    "AsymmetricLoss": "losses",
    "CrossEntropyLoss": "losses",
    "FocalLoss": "losses",
    "LDAMLoss": "losses",
    "LabelStats": "losses",
    "LogitAdjustedLoss": "losses",
    "Loss": "losses",
    "PolyLoss": "losses",
    "class_frequencies": "losses",
    "loss_from_dict": "losses",
    "register": "losses",
    "class_balanced_weights": "weights",
    "effective_number_weights": "weights",
    "inverse_frequency_weights": "weights",
    "calibration": None,
    "decisions": None,
    "losses": None,
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gbloss' has no attribute {name!r}")
    module = _EXPORTS[name]
    value = importlib.import_module(f".{name if module is None else module}", __name__)
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
