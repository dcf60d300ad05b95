"""Stable scalar primitives that every gbloss loss builds on, in raw-score (margin) space.

Derivations: ``docs/derivations.md`` (sections 1-3, 8, 9). Notation: ``p = sigmoid(t)``,
``q = sigmoid(-t)`` (never ``1 - p``), powers as ``exp(gamma * log)``.

Focal core (Lin et al. 2017), with ``t`` the correct-class margin; ``gamma = 0`` is
cross-entropy, ``f(t) = softplus(-t)``::

    f(t)   = -q^g log p
    f'(t)  =  q^g (g p log p - q)                         (< 0 everywhere)
    f''(t) =  p q^g [(2g+1) q + g (q - g p) log p]        (< 0 only for t < t*(g), section 2.6)
    f''_GN =  (2g+1) p q^(g+1)                            (> 0: drops only the w''c term)

Hessian policies (section 8): ``HESS_EXACT`` the true second derivative; ``HESS_PSD`` (default)
``max(exact, curvature)`` plus a ``1e-16 * a_t`` floor, equal to the exact Hessian near the
optimum and > 0 everywhere; ``HESS_GN`` the positive curvature alone (for the focal core its
Gauss-Newton part).

Scalar functions are compiled without Numba's disk cache: they are compiled into the row loops
of :mod:`gbloss.losses._loops`, whose cache key covers the source of every module they reach.
"""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .._jit import inlined_scalar, scalar

HESS_EXACT = 0
HESS_PSD = 1
HESS_GN = 2

#: Absolute Hessian floor of the PSD policy (XGBoost's built-in logistic uses the same 1e-16),
#: times the row's class weight: keeps Hessians of saturated rows off exact zero.
HESS_FLOOR = 1e-16
#: For 0 < gamma_neg < 1 with a probability margin the exact ASL Hessian grows like u^(gamma-1)
#: at the kink u = p - m -> 0 (section 4.4); the PSD policy evaluates that term at u >= 1e-3.
LOG_KINK_FLOOR = np.log(1e-3)

# ------------------------------------------------------------------------------------------------
# Stable scalar primitives and the focal core


@scalar
def sigmoid_parts(t):
    """Return ``(p, q, log p, log q)`` for ``p = sigmoid(t)`` from a single exp.

    ``e = exp(-|t|)`` lies in [0, 1], so nothing overflows for any finite ``t`` and both ``p``
    and ``q`` are correctly rounded; ``log1p(e)`` gives the softplus without cancellation.
    """
    e = np.exp(-abs(t))
    soft = np.log1p(e)  # log(1 + exp(-|t|))
    d = 1.0 / (1.0 + e)
    if t >= 0.0:
        return d, e * d, -soft, -t - soft
    return e * d, d, t - soft, -soft


@scalar
def power_of(x, log_x, gamma):
    """``x**gamma`` for ``x`` in [0, 1] given ``log x``; exact products for common gammas."""
    if gamma == 0.0:
        return 1.0
    if gamma == 1.0:
        return x
    if gamma == 2.0:
        return x * x
    return np.exp(gamma * log_x)


# The same primitives as straight-line arithmetic (selects, no calls) for the binary loop, which
# LLVM then vectorises (AVX2: about 3x faster); it cannot vectorise around libm calls. They
# agree with libm to 2.2 ulp (1e6 random arguments), but cost more than libm where a loop is
# not vectorised, so the other loops keep sigmoid_parts and power_of.
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: n * _LN2_HI is exact, n < 2^11
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2^52: (x + _ROUND) - _ROUND rounds x to an integer
_SQRT2 = 1.4142135623730951


@intrinsic
def float_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits`` (a register move, which vectorises)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@inlined_scalar
def exp_neg(x):
    """``exp(-x)`` for ``x >= 0`` (0 beyond 746, gradual underflow from 708 on).

    Cody-Waite: ``-x = -n ln2 + r`` with ``|r| <= ln2/2``, ``exp(r)`` by its degree-12 Taylor
    polynomial (truncation below 1e-17), ``2^-n`` from its IEEE bits (exponent field
    ``1023 - n``). Beyond 708 the result is subnormal: it is computed as
    ``exp(-(x - 100 ln2)) 2^-100``.
    """
    x = min(x, 746.0)
    deep = x > 708.0
    x = x - 69.31471805599453 if deep else x  # 100 ln 2
    n = (x * _LOG2E + _ROUND) - _ROUND  # 0 <= n <= 1022
    r = (n * _LN2_HI - x) + n * _LN2_LO
    p = 1.0 / 479001600  # Horner: sum of r^k / k!, k = 0..12
    p = p * r + 1.0 / 39916800
    p = p * r + 1.0 / 3628800
    p = p * r + 1.0 / 362880
    p = p * r + 1.0 / 40320
    p = p * r + 1.0 / 5040
    p = p * r + 1.0 / 720
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 1.0 / 2
    p = p * r + 1.0
    p = p * r + 1.0
    p *= float_from_bits((1023 - np.int64(n)) << 52)  # 2^-n
    return p * 7.888609052210118e-31 if deep else p  # 2^-100


@intrinsic
def bits_from_float(typingctx, value):
    """The int64 holding the IEEE bits of the float64 ``value`` (a register move)."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@inlined_scalar
def log_reduced(v, k, correction):
    """``k ln2 + log(v) + correction`` for ``v`` in [1/sqrt2, sqrt2]: ``log(v) = 2 atanh(s)``,
    ``s = (v - 1)/(v + 1)``, ``s^2 <= 0.0295``, 10 terms of the series (the rest is below
    2.4e-17 relative)."""
    s = (v - 1.0) / (v + 1.0)
    z = s * s
    series = 1.0 / 19  # Horner: sum of z^j / (2j + 1), j = 0..9
    series = series * z + 1.0 / 17
    series = series * z + 1.0 / 15
    series = series * z + 1.0 / 13
    series = series * z + 1.0 / 11
    series = series * z + 1.0 / 9
    series = series * z + 1.0 / 7
    series = series * z + 1.0 / 5
    series = series * z + 1.0 / 3
    series = series * z + 1.0
    return k * _LN2_HI + (2.0 * s * series + (k * _LN2_LO + correction))


@inlined_scalar
def log1p_unit(e, inv_u):
    """``log(1 + e)`` for ``e`` in [0, 1], given ``inv_u = 1 / (1 + e)`` (which the caller has).

    ``u = 1 + e`` rounded, ``log1p(e) = log(u) + (e - (u - 1)) / u`` (the rounding of u,
    corrected to first order), ``log(u) = k ln2 + 2 atanh(s)`` with ``v = u / 2^k`` in
    [1/sqrt2, sqrt2], ``s = (v - 1)/(v + 1)``, ``s^2 <= 0.0295``: 10 terms of the atanh series
    (the rest is below 2.4e-17 relative).
    """
    u = 1.0 + e
    correction = (e - (u - 1.0)) * inv_u
    big = u > _SQRT2
    v = u * 0.5 if big else u
    return log_reduced(v, 1.0 if big else 0.0, correction)


@inlined_scalar
def log1p_positive(e, inv_u):
    """``log(1 + e)`` for finite ``e >= 0``, given ``inv_u = 1 / (1 + e)``: as
    :func:`log1p_unit`, with ``u = 1 + e`` reduced to [1/sqrt2, sqrt2] by its IEEE exponent."""
    u = 1.0 + e
    correction = (e - (u - 1.0)) * inv_u
    bits = bits_from_float(u)
    v = float_from_bits((bits & 0xFFFFFFFFFFFFF) | (1023 << 52))  # u / 2^k in [1, 2)
    k = np.float64((bits >> 52) - 1023)
    big = v > _SQRT2
    return log_reduced(v * 0.5 if big else v, k + 1.0 if big else k, correction)


@inlined_scalar
def sigmoid_parts_vectorisable(t):
    """:func:`sigmoid_parts` through :func:`exp_neg` and :func:`log1p_unit`, with selects."""
    e = exp_neg(abs(t))
    d = 1.0 / (1.0 + e)
    soft = log1p_unit(e, d)
    ed = e * d
    positive = t >= 0.0
    return (d if positive else ed), (ed if positive else d), min(t, 0.0) - soft, \
        -max(t, 0.0) - soft


@inlined_scalar
def power_of_vectorisable(x, log_x, gamma, integral):
    """:func:`power_of` with selects. ``integral``: gamma is known to be 0, 1 or 2, which spares
    the general power (a vectorised loop computes both sides of a select)."""
    general = 0.0 if integral else exp_neg(-gamma * log_x)
    return 1.0 if gamma == 0.0 else (x if gamma == 1.0 else (x * x if gamma == 2.0 else general))


@inlined_scalar
def focal_from_parts(p, q, lp, qg, gamma, detached):
    """The focal formulas from ``p, q, log p`` and ``qg = q^gamma``: ``(f, f', f'', f''_GN)``.

    ``detached`` gives the derivatives of the official ASL code's detached focusing weight
    (section 4.3): ``f' = -q^(g+1)`` and the 'total' curvature ``(g+1) p q^(g+1)`` (> 0).
    Selects, not branches, so that the binary loop vectorises. ``p log p`` is formed first
    (bounded by 1/e; 0 where p underflows), so no ``0 * inf`` arises at any finite margin.
    """
    f = -qg * lp
    plp = p * lp if p > 0.0 else 0.0
    h_detached = (gamma + 1.0) * p * q * qg
    f1 = -qg * q if detached else qg * (gamma * plp - q)
    f2 = h_detached if detached else \
        qg * ((2.0 * gamma + 1.0) * p * q + gamma * (q - gamma * p) * plp)
    return f, f1, f2, h_detached if detached else (2.0 * gamma + 1.0) * p * q * qg


@scalar
def focal_core(t, gamma, detached):
    """Focal core at correct-class margin ``t``: ``(f, f', f''_exact, f''_GN)``."""
    p, q, lp, lq = sigmoid_parts(t)
    return focal_from_parts(p, q, lp, power_of(q, lq, gamma), gamma, detached)


@inlined_scalar
def apply_policy(h_exact, h_gn, mode):
    """Turn an exact Hessian and its Gauss-Newton part into the one the policy asks for."""
    return h_exact if mode == HESS_EXACT else (h_gn if mode == HESS_GN else max(h_exact, h_gn))



@scalar
def focal_mixture(y, z, a_pos, a_neg, gamma, mode):
    """``(loss, grad, hess)`` of ``y a_pos f(z) + (1 - y) a_neg f(-z)``, the focal core in the
    mixture form of soft labels (derivations section 2.2), the Hessian after the policy, plus
    the PSD floor ``1e-16 (y a_pos + (1 - y) a_neg)``."""
    loss = 0.0
    grad = 0.0
    hess = 0.0
    if y > 0.0:
        f, f1, f2, f2_gn = focal_core(z, gamma, False)
        c = y * a_pos
        loss += c * f
        grad += c * f1
        hess += c * apply_policy(f2, f2_gn, mode)
    if y < 1.0:
        f, f1, f2, f2_gn = focal_core(-z, gamma, False)
        c = (1.0 - y) * a_neg
        loss += c * f
        grad -= c * f1
        hess += c * apply_policy(f2, f2_gn, mode)
    if mode == HESS_PSD:
        hess += HESS_FLOOR * (y * a_pos + (1.0 - y) * a_neg)
    return loss, grad, hess


@inlined_scalar
def weighted_softmax_core(a, f, f1, f2, f2_gn, mode):
    """The softmax slot ``(loss, f1, f2, floor)`` of ``a f(t)`` from the core's values."""
    return a * f, a * f1, a * apply_policy(f2, f2_gn, mode), \
        HESS_FLOOR * a if mode == HESS_PSD else 0.0


@scalar
def focal_softmax_core(t, a, gamma, mode):
    """The softmax slot ``(loss, f1, f2, floor)`` of ``a f(t)`` at the one-vs-rest margin."""
    f, f1, f2, f2_gn = focal_core(t, gamma, False)
    return weighted_softmax_core(a, f, f1, f2, f2_gn, mode)


@inlined_scalar
def focal_softmax_core_vectorisable(t, a, gamma, mode):
    """:func:`focal_softmax_core` through the vectorisable primitives, for the CPU's blocked
    softmax loops (:mod:`gbloss.losses._loops`). Whether gamma is 0, 1 or 2 is the same on
    every row, so LLVM hoists that test out of the loop: the general power is then not
    computed (the soft-target loop at gamma=2 12% faster)."""
    integral = (gamma == 0.0) | (gamma == 1.0) | (gamma == 2.0)
    p, q, lp, lq = sigmoid_parts_vectorisable(t)
    f, f1, f2, f2_gn = focal_from_parts(p, q, lp, power_of_vectorisable(q, lq, gamma, integral),
                                        gamma, False)
    return weighted_softmax_core(a, f, f1, f2, f2_gn, mode)


# The softmax slots of cross-entropy on shifted scores (logit adjustment, LDAM): the loss
# modules differ only in their shifts.


@scalar
def shifted_cross_entropy_core(t, c, theta, mode):
    """Slot ``softmax_core``: cross-entropy at the one-vs-rest margin of the shifted scores."""
    return focal_softmax_core(t, 1.0, 0.0, mode)


@scalar
def no_class_param(c, theta):
    """Slot ``softmax_class_param``: no per-class parameter."""
    return 1.0


@inlined_scalar
def shifted_cross_entropy_core_vectorisable(t, a, theta, mode):
    """Slot ``softmax_core_vectorisable``: :func:`shifted_cross_entropy_core` through the
    vectorisable primitives (the CPU's blocked softmax loop)."""
    return focal_softmax_core_vectorisable(t, 1.0, 0.0, mode)
