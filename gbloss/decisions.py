"""Cost-sensitive decisions: the Bayes rule for a cost matrix, from calibrated probabilities.

With ``C[j, k]`` the cost of predicting class ``k`` when the truth is ``j`` (zero diagonal),
the decision that minimises the expected cost given probabilities ``P(j | x)`` is::

    k*(x) = argmin_k  sum_j P(j | x) C[j, k]

(ties go to the lowest class index). It needs *calibrated* probabilities, which the estimators'
``predict_proba`` and ``loss.predict_proba`` give by default. For binary targets the shorthand
``{"fn": c_fn, "fp": c_fp}`` is the matrix ``[[0, c_fp], [c_fn, 0]]``: predict the positive
class when ``P(1 | x) > c_fp / (c_fp + c_fn)``.
"""

import numbers

import numpy as np

__all__ = ["bayes_decision", "cost_matrix", "expected_cost"]


def cost_matrix(costs, n_classes):
    """A validated ``(K, K)`` float cost matrix from ``costs``: an array-like ``C[true,
    predicted]`` (finite, >= 0, zero diagonal) or, for ``n_classes == 2``, the dict
    ``{"fn": cost of a false negative, "fp": cost of a false positive}``."""
    if isinstance(costs, dict):
        if n_classes != 2 or set(costs) != {"fn", "fp"}:
            raise ValueError("cost_matrix as a dict must be {'fn': cost, 'fp': cost} for a "
                             f"binary target; got {costs!r} for {n_classes} classes")
        for key, value in costs.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not np.isfinite(value) or value < 0:
                raise ValueError(f"cost_matrix[{key!r}] must be a finite number >= 0, "
                                 f"got {value!r}")
        costs = [[0.0, costs["fp"]], [costs["fn"], 0.0]]
    if isinstance(costs, str | bytes):
        raise ValueError(f"cost_matrix must be a (K, K) array or {{'fn': .., 'fp': ..}}, "
                         f"got {costs!r}")
    matrix = np.asarray(costs)
    if matrix.dtype == bool or matrix.dtype.kind not in "iuf":
        raise ValueError(f"cost_matrix must be numeric, got {costs!r}")
    matrix = matrix.astype(np.float64)
    if matrix.shape != (n_classes, n_classes):
        raise ValueError(f"cost_matrix must have shape ({n_classes}, {n_classes}) "
                         f"(C[true class, predicted class]), got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise ValueError("cost_matrix must hold finite costs >= 0")
    if np.any(np.diag(matrix) != 0):
        raise ValueError(f"cost_matrix must have a zero diagonal (a correct decision costs "
                         f"nothing), got diagonal {np.diag(matrix).tolist()}")
    return matrix


def _as_class_probabilities(proba):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:  # binary P(y=1 | x)
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must be P(y=1) (n,) or class probabilities (n, K), got shape "
                         f"{proba.shape}")
    if not np.all(np.isfinite(proba)) or np.any(proba < 0):
        raise ValueError("proba must hold finite probabilities >= 0")
    return proba


def bayes_decision(proba, costs):
    """The class index minimising the expected cost, ``argmin_k sum_j proba[:, j] C[j, k]``.

    ``proba``: class probabilities (n, K), or ``P(y=1)`` (n,) for binary targets; ``costs``:
    see :func:`cost_matrix`. Returns integer class indices (n,).
    """
    proba = _as_class_probabilities(proba)
    matrix = cost_matrix(costs, proba.shape[1])
    expected = (proba[:, :, None] * matrix[None, :, :]).sum(axis=1)  # no BLAS: (n, K)
    return np.argmin(expected, axis=1)


def expected_cost(y, predicted, costs):
    """Mean cost per row of decisions ``predicted`` for true class indices ``y``:
    ``mean(C[y_i, predicted_i])``."""
    matrix = cost_matrix(costs, 2 if isinstance(costs, dict) else np.shape(costs)[0])
    y = np.asarray(y)
    predicted = np.asarray(predicted)
    if y.shape != predicted.shape or y.ndim != 1:
        raise ValueError(f"y and predicted must be 1-D of the same length, got shapes {y.shape} "
                         f"and {predicted.shape}")
    for name, values in (("y", y), ("predicted", predicted)):
        if values.size and (values.min() < 0 or values.max() >= matrix.shape[0]
                            or np.any(values != np.floor(values))):
            raise ValueError(f"{name} must hold class indices 0..{matrix.shape[0] - 1}")
    return float(matrix[y.astype(np.intp), predicted.astype(np.intp)].mean())
