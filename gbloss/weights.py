"""Class weights that become per-sample weights, usable with every loss and every engine.

Class-balanced weighting (Cui et al. 2019): the effective number of samples of a class with
``n_c`` samples is ``E = (1 - beta^n_c) / (1 - beta)``; its weight is ``1 / E``, normalised so the
class weights sum to the number of classes K (as the official ``cifar_main.py`` does). ``beta=0``
gives equal weights, ``beta -> 1`` inverse class frequency.
"""

import numbers

import numpy as np
from sklearn.utils.class_weight import compute_sample_weight


def _class_counts(y):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D vector of class labels, got shape {y.shape}; for "
                         "multi-label targets weight the rows yourself (e.g. by their rarest "
                         "label)")
    if y.size == 0:
        raise ValueError("y is empty")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError("y contains NaN")
    classes, index, counts = np.unique(y, return_inverse=True, return_counts=True)
    return classes, index, counts


def effective_number_weights(counts, beta=0.999):
    """Per-class weights ``(1-beta)/(1-beta^n_c)`` normalised to sum to K.

    Evaluated as ``1 / -expm1(n_c log beta)`` (the ``1-beta`` cancels in the normalisation), so
    there is no cancellation as beta -> 1. ``counts`` may be real (weighted) counts; every count
    must be > 0 (a class without samples would get an infinite weight).
    """
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta <= 1:
        raise ValueError(f"beta must be a number in [0, 1], got {beta!r}")
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or not np.all(np.isfinite(counts)) \
            or np.any(counts <= 0):
        raise ValueError(f"counts must be a 1-D array of positive class counts, got {counts!r}")
    if beta == 1:
        raw = 1.0 / counts
    elif beta == 0:
        raw = np.ones_like(counts)
    else:
        raw = -1.0 / np.expm1(counts * np.log(beta))
    return raw * (counts.size / raw.sum())


def class_balanced_weights(y, beta=0.999):
    """Per-sample weights ``w_{y_i}`` from the effective number of samples per class.

    Parameters
    ----------
    y : array of shape (n,)
        Class labels of any kind (integers, strings, 0/1).
    beta : float in [0, 1]
        0.9, 0.99, 0.999 and 0.9999 in the paper.
    """
    _, index, counts = _class_counts(y)
    return effective_number_weights(counts, beta)[index]


def inverse_frequency_weights(y):
    """Per-sample weights ``n / (K n_c)``: scikit-learn's ``class_weight="balanced"``."""
    _class_counts(y)
    return compute_sample_weight("balanced", np.asarray(y))
