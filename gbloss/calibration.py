r"""Calibrated probabilities for losses whose link is not calibrated (focal, ASL, weighted CE).

A boosted model trained to convergence makes the expected training gradient vanish at every
input: its raw score ``z`` solves ``E[g(y, z) | x] = 0``. For focal-type losses that zero is not
at ``sigmoid(z) = P(y=1 | x)`` (Mukhoti et al. 2020), so ``loss.link`` (the plain link)
is miscalibrated. The stationarity condition can be solved for ``eta = P(y | x)`` in closed
form, which gives the calibrated estimate :func:`calibrated_proba`. The plain link stays
available as ``loss.link`` and ``loss.predict_proba(raw, calibrate=False)``.

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

from .losses import REGISTRY, TASKS, Loss

__all__ = ["calibrated_proba", "is_proper"]


def _check_loss(loss):
    if not isinstance(loss, Loss):
        raise TypeError(f"loss must be one of the gbloss losses ({', '.join(REGISTRY)}, or a "
                        f"registered loss of your own), got {type(loss).__name__}")


def is_proper(loss, task=None):
    """Whether ``loss.link`` already estimates P(y | x) for ``task`` (``None``: for every task
    the loss supports); the loss says so (:meth:`gbloss.Loss.is_proper`)."""
    _check_loss(loss)
    if task is not None and task not in loss.tasks:
        raise ValueError(f"task must be None or one of {list(loss.tasks)} for "
                         f"{type(loss).__name__}, got {task!r}")
    return all(loss.is_proper(t) for t in (loss.tasks if task is None else (task,))
               if t in TASKS)


def calibrated_proba(loss, raw, task=None):
    """Estimates of P(y | x) from raw scores of a model trained with ``loss``:
    ``loss.predict_proba(raw, task)`` (calibrated by default; see the module docstring)."""
    _check_loss(loss)
    return loss.predict_proba(raw, task)
