r"""Calibrated probabilities for losses whose link is not calibrated (focal, ASL, weighted CE).

A boosted model trained to convergence makes the expected training gradient vanish at every
input: its raw score ``z`` solves ``E[g(y, z) | x] = 0``. For focal-type losses that zero is not
at ``sigmoid(z) = P(y=1 | x)`` (Mukhoti et al. 2020), so ``loss.predict_proba`` (the plain link)
is miscalibrated. The stationarity condition can be solved for ``eta = P(y | x)`` in closed
form, which gives the calibrated estimate :func:`calibrated_proba`. The plain link stays
available as ``loss.predict_proba``.

Sigmoid losses (binary, and each label of a multi-label target). With ``g1(z) < 0`` and
``g0(z) >= 0`` the gradients of the training objective for ``y = 1`` and ``y = 0``
(``loss.gradient_hessian``, weights included)::

    eta g1(z) + (1 - eta) g0(z) = 0   =>   logit(eta) = log g0(z) - log(-g1(z))

Focal (``g1 = alpha f'(z)``, ``g0 = -(1-alpha) f'(-z)``, ``|f'(t)| = q^g (q + g p log(1/p))``)::

    logit(eta) = log((1-alpha)/alpha) + log psi(z) - log psi(-z),
    psi(t) = p q / |f'(t)| = p q^(1-g) / (q + g p log(1/p))

``psi`` is strictly increasing for every ``g >= 0``:
``d log psi / dt = [q^2 + 2g pq + g(g-1) p^2 log(1/p)] / (q + g p log(1/p)) > 0`` (for g < 1
use ``log(1/p) <= q/p``), so the map ``z -> eta`` is strictly increasing from 0 to 1 and every
``eta`` has exactly one population minimiser. ``g = 0`` gives the prior-shift correction of
weighted cross-entropy, ``logit(eta) = z + log((1-alpha)/alpha)``.

ASL (``u = p - m``, ``v = 1 - u``, ``Lambda(u) = -log(1-u)/u``): ``g1 = f'_{g+}(z)`` and
``g0 = pq u^{g-} (1/v + g- Lambda(u))`` for ``p > m``, ``g0 = 0`` for ``p <= m``. On ``p > m``
``g0/|g1| = u^{g-} (1/v + g- Lambda(u)) psi_{g+}(z)`` is a product of increasing factors, so the
map is increasing (the detached gradient likewise), but its range is not all of (0, 1):

* below the clip (``p <= m``) the negative part is flat, no ``eta > 0`` has its minimiser
  there, and the map is 0. For ``gamma_neg > 0`` it is continuous at the clip. For
  ``gamma_neg == 0`` it jumps to ``m(1-m) / (m(1-m) + |f'_{g+}(z_m)|)`` (``m/(1+m)`` at
  ``gamma_pos = 0``). All smaller ``eta`` share the minimiser ``p = m``, so P(y=1 | x) is not
  identified there; a warning says how many rows are affected.
* with ``gamma_pos == 0`` and ``m > 0`` the negative part saturates and the map tends to
  ``c / (1 + c)`` with ``c = (1-m)^{g-} (1/m + g- log(1/m)/(1-m))`` as ``z -> inf`` (0.9637 for
  the defaults g-=4, m=0.05). Every larger ``eta`` has its minimiser at ``z = +inf``, so
  calibrated ASL probabilities never exceed that bound.

Softmax focal (K classes). With ``p = softmax(z)``, ``t_k = logit(p_k)`` the one-vs-rest margin
and ``d_k = alpha_k |f'(t_k)|``, the gradient for label ``c`` is ``-d_c`` on class ``c`` and
``d_c p_k / (1 - p_c)`` on ``k != c``. ``sum_c eta_c grad_c = 0`` forces
``eta_c d_c / (1 - p_c)`` proportional to ``p_c``, hence, per class::

    eta_k  proportional to  p_k (1 - p_k) / (alpha_k |f'(t_k)|) = psi(t_k) / alpha_k

Because ``psi`` is increasing, the map from the open simplex to itself is a bijection.
``gamma = 0`` gives ``eta_k ~ p_k / alpha_k``, the identity when the alphas are equal.

Proper losses (:func:`is_proper`): cross-entropy without class weights, logit adjustment (its
link ``softmax(z + tau log pi)`` estimates P(y | x) under the training distribution) and ASL
with ``gamma_pos = gamma_neg = clip = 0``. There the correction is the identity.

Margins are clipped to +-500 first: probabilities beyond ``exp(-500)`` from 0 or 1 are not
resolved, and ASL's two vanishing gradients never both underflow.
"""

import warnings

import numpy as np
from scipy import special

from .losses import (
    BINARY,
    MULTICLASS,
    MULTILABEL,
    AsymmetricLoss,
    FocalLoss,
    LogitAdjustedLoss,
)

#: |raw| bound: exp(-500) ~ 7e-218 keeps p, q and ASL's two gradients (both ~q as z -> inf)
#: far above the float64 underflow at 2e-308, even after multiplying them by parameters.
_MARGIN_BOUND = 500.0
_SUPPORTED = (FocalLoss, AsymmetricLoss, LogitAdjustedLoss)


def is_proper(loss, task=None):
    """Whether ``loss.predict_proba`` already estimates P(y | x) for ``task``.

    True for logit adjustment, for cross-entropy (``FocalLoss(gamma=0)``) whose class weights
    cancel (sigmoid tasks: ``alpha`` None or 0.5 everywhere; multiclass: all ``alpha`` equal)
    and for ASL with ``gamma_pos = gamma_neg = clip = 0``. ``task=None``: for every task the
    loss supports.
    """
    _check_supported(loss)
    if task is not None and task not in loss.tasks:
        raise ValueError(f"task must be None or one of {list(loss.tasks)} for "
                         f"{type(loss).__name__}, got {task!r}")
    tasks = loss.tasks if task is None else (task,)
    if isinstance(loss, LogitAdjustedLoss):
        return True
    if isinstance(loss, AsymmetricLoss):
        return loss.gamma_pos == 0 and loss.gamma_neg == 0 and loss.clip == 0
    if loss.gamma != 0:
        return False
    if loss.alpha is None:
        return True
    alpha = np.atleast_1d(loss.alpha)
    if MULTICLASS in tasks and np.ptp(alpha) != 0:
        return False
    return not (set(tasks) - {MULTICLASS}) or bool(np.all(alpha == 0.5))


def calibrated_proba(loss, raw, task=None):
    """Estimates of P(y | x) from raw scores of a model trained with ``loss``.

    The inverse of the map from P(y | x) to the population minimiser of ``loss`` (module
    docstring); same shapes and ``task`` argument as ``loss.predict_proba``: 1-D raw gives
    P(y=1) (n,); 2-D raw gives softmax class probabilities (n, K) (multiclass) or per-label
    P(y_k=1) (n, K) (``task="multilabel"``, the default for losses without a softmax form).
    Raw scores include the start (``init_score``), as for ``predict_proba``. Proper losses
    (:func:`is_proper`) return ``loss.predict_proba(raw, task)`` unchanged.
    """
    raw = np.asarray(raw, dtype=np.float64)
    task = _task(loss, raw, task)
    if is_proper(loss, task):
        return loss.predict_proba(raw, task=None if task == BINARY else task)
    raw = np.clip(raw, -_MARGIN_BOUND, _MARGIN_BOUND)
    if task == MULTICLASS:
        return _softmax_calibrated(loss, raw)
    return _sigmoid_calibrated(loss, raw)


def _check_supported(loss):
    if not isinstance(loss, _SUPPORTED):
        raise TypeError(f"loss must be one of {', '.join(c.__name__ for c in _SUPPORTED)} "
                        f"(or a subclass), got {type(loss).__name__}")


def _task(loss, raw, task):
    """The task of ``raw`` as ``loss.predict_proba`` reads it; raises for unsupported ones."""
    _check_supported(loss)
    if raw.ndim == 1:
        if task not in (None, BINARY):
            raise ValueError(f"task={task!r} needs 2-D raw scores (n, K); got 1-D raw, which "
                             "is a binary target")
        return BINARY
    if raw.ndim != 2:
        raise ValueError(f"raw must be 1-D (binary) or 2-D (n, K), got shape {raw.shape}")
    if task is None:
        task = MULTICLASS if MULTICLASS in loss.tasks else MULTILABEL
    if task == BINARY or task not in loss.tasks:
        raise ValueError(f"task must be one of {[t for t in loss.tasks if t != BINARY]} for "
                         f"2-D raw scores with {type(loss).__name__}, got {task!r}")
    if task == MULTICLASS and raw.shape[1] < 2:
        raise ValueError(f"multiclass raw scores need at least 2 columns, got shape {raw.shape}")
    return task


def _sigmoid_calibrated(loss, raw):
    """``sigmoid(log g0 - log(-g1))`` with the training gradients for y=0 and y=1."""
    if isinstance(loss, FocalLoss) and loss.alpha is not None \
            and np.any(np.isin(loss.alpha, (0.0, 1.0))):
        raise ValueError(f"alpha must lie in (0, 1) for calibrated probabilities, got "
                         f"{loss.alpha!r}: a class with weight 0 leaves P(y | x) unidentified")
    g1, _ = loss.gradient_hessian(np.ones_like(raw), raw, check_input=False)
    g0, _ = loss.gradient_hessian(np.zeros_like(raw), raw, check_input=False)
    with np.errstate(divide="ignore"):
        logit = np.log(g0) - np.log(-g1)
    if isinstance(loss, AsymmetricLoss) and loss.gamma_neg == 0 and loss.clip > 0:
        _warn_unidentified(loss, int(np.count_nonzero(g0 == 0)), raw.size)
    return special.expit(logit)


def _warn_unidentified(loss, n_flat, n_total):
    """ASL with gamma_neg = 0: every eta up to the jump at the clip has its minimiser there."""
    if n_flat == 0:
        return
    z_clip = np.log(loss.clip) - np.log1p(-loss.clip)
    jump = _sigmoid_calibrated(loss, np.array([z_clip + 1e-9]))[0]
    warnings.warn(
        f"{loss!r} does not identify P(y=1 | x) below {jump:.4g}: every such probability has "
        f"its population minimiser at sigmoid(raw) = clip. {n_flat} of {n_total} outputs lie "
        "at or below the clip; their calibrated probability is 0, a lower bound.",
        UserWarning, stacklevel=4)


def _softmax_calibrated(loss, raw):
    """``eta_k ~ psi(t_k) / alpha_k`` in log space, normalised with a softmax."""
    alpha = _softmax_alpha(loss, raw.shape[1])
    t = np.clip(_one_vs_rest_margins(raw), -_MARGIN_BOUND, _MARGIN_BOUND)
    log_p = -np.logaddexp(0.0, -t)
    log_q = -np.logaddexp(0.0, t)
    gamma = loss.gamma
    # log psi(t) = log p + (1 - g) log q - log(q + g p log(1/p)); both terms of the sum >= 0
    log_psi = log_p + (1.0 - gamma) * log_q - np.log(np.exp(log_q) - gamma * np.exp(log_p) * log_p)
    return special.softmax(log_psi - np.log(alpha), axis=1)


def _softmax_alpha(loss, n_class):
    """Per-class weights of a softmax focal loss, all > 0."""
    if loss.alpha is None:
        return np.ones(n_class)
    alpha = np.asarray(loss.alpha, dtype=np.float64)
    if alpha.shape != (n_class,):
        raise ValueError(f"for multiclass targets alpha must hold one weight per class "
                         f"({n_class} values), got {loss.alpha!r}")
    if np.any(alpha <= 0):
        raise ValueError(f"alpha must be > 0 for calibrated probabilities, got {loss.alpha!r}: "
                         "a class with weight 0 leaves P(y | x) unidentified")
    return alpha


def _one_vs_rest_margins(raw):
    """``t_k = z_k - logsumexp_{j != k} z_j = logit(softmax(z)_k)`` without cancellation.

    Every class but the row's argmax has ``p_k <= 1/2``, where ``log(1 - p_k) = log1p(-p_k)``
    is accurate; the argmax gets ``logsumexp`` over the other classes directly.
    """
    lse = special.logsumexp(raw, axis=1, keepdims=True)
    log_p = raw - lse
    with np.errstate(divide="ignore"):  # p = 1 in a row's argmax, replaced below
        log_rest = np.log1p(-np.exp(log_p))  # log(1 - p_k)
    rows = np.arange(raw.shape[0])
    top = np.argmax(raw, axis=1)
    others = raw.copy()
    others[rows, top] = -np.inf
    log_rest[rows, top] = special.logsumexp(others, axis=1) - lse[:, 0]
    return log_p - log_rest
