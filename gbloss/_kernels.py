"""Scalar math of every gbloss loss and the Numba loops that run it over rows.

Everything is in raw-score (margin) space; see ``../shared/reference/loss-math.md`` for the
derivations. One module on purpose: all losses share the focal core, and a cached Numba loop does
not notice edits to a jitted function imported from another module.

Notation: ``p = sigmoid(t)``, ``q = sigmoid(-t)`` (never ``1 - p``), powers as ``exp(gamma*log)``.

Focal core (Lin et al. 2017), with ``t`` the correct-class margin::

    f(t)   = -q^g log p                                   (g = gamma; g=0: softplus(-t), the CE)
    f'(t)  =  q^g (g p log p - q)                         (< 0 everywhere)
    f''(t) =  p q^g [(2g+1) q + g (q - g p) log p]        (< 0 only for t < t*(g), section 2.6)
    f''_GN =  (2g+1) p q^(g+1)                            (> 0: drops only the w''c term)

Every sigmoid loss (binary and per-label: focal, ASL, cross-entropy, binary logit adjustment) is the
mixture ``L = y a_pos P(z) + (1-y) a_neg N(z)`` of a positive part ``P(z) = f_{g+}(z)`` and a
negative part ``N`` that is ``f_{g-}(-z)`` without a probability margin and the ASL negative part
with one (section 4.2). Softmax losses (focal, CE, logit adjustment) apply the focal core to the
one-vs-rest margin ``t = z_y - logsumexp_{k != y} z_k`` (section 3).

Hessian policies (section 8): ``HESS_EXACT`` the true second derivative; ``HESS_PSD`` (default)
``max(exact, Gauss-Newton part)`` plus a ``1e-16 * a_t`` floor, equal to the exact Hessian near
the optimum and > 0 everywhere; ``HESS_GN`` the Gauss-Newton part alone.
"""

import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from ._jit import CONTRACT, inlined_scalar, kernel, scalar

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
    k = 1.0 if big else 0.0
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
def hard_label_element(label, z, w, a_pos, a_neg, gamma_pos, gamma_neg, mode, integral):
    """Gradient and Hessian of a sigmoid focal output for a hard label (0 or 1) without a
    probability margin: the focal formulas at the signed margin ``s z``, ``s = 2y - 1``; the
    third value is 1 when ``label`` is not 0 or 1 (NaN included), else 0."""
    positive = label > 0.5
    s = 1.0 if positive else -1.0
    a = a_pos if positive else a_neg
    gamma = gamma_pos if positive else gamma_neg
    p, q, lp, lq = sigmoid_parts_vectorisable(s * z)
    _, f1, f2, f2_gn = focal_from_parts(p, q, lp, power_of_vectorisable(q, lq, gamma, integral),
                                        gamma, False)
    h = a * apply_policy(f2, f2_gn, mode)
    if_soft = 0 if label * (1.0 - label) == 0.0 else 1
    return w * (a * s * f1), w * (h + HESS_FLOOR * a if mode == HESS_PSD else h), if_soft


@inlined_scalar
def focal_from_parts(p, q, lp, qg, gamma, detached):
    """The focal formulas from ``p, q, log p`` and ``qg = q^gamma``: ``(f, f', f'', f''_GN)``.

    ``detached`` gives the derivatives of the official ASL code's detached focusing weight
    (section 4.3): ``f' = -q^(g+1)`` and the 'total' curvature ``(g+1) p q^(g+1)`` (> 0).
    Selects, not branches, so that the binary loop vectorises.
    """
    f = -qg * lp
    h_detached = (gamma + 1.0) * p * q * qg
    f1 = -qg * q if detached else qg * (gamma * p * lp - q)
    f2 = h_detached if detached else \
        p * qg * ((2.0 * gamma + 1.0) * q + gamma * (q - gamma * p) * lp)
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
def asl_negative(z, gamma, m, detached, mode):
    """ASL negative part with probability margin ``m > 0``: ``(loss, grad, hess)`` at margin z.

    ``u = p - m``, ``v = 1 - u = q + m``, ``Lambda(u) = -log1p(-u)/u``::

        L = -u^g log v                          (0 where p <= m)
        psi'  = u^g (1/v + g Lambda)            g = pq psi'
        psi'' = u^(g-1) (g(g-1) Lambda + 2g/v) + u^g / v^2
        h = pq (q-p) psi' + (pq)^2 psi''        GN part: u^g (pq)^2 / v^2

    Detached weight ``u^g`` (official code): ``g = u^g pq/v`` and the total curvature
    ``u^g pq (q^2 + m(q-p))/v^2 + g u^(g-1) (pq)^2 / v``.
    """
    p, q, lp, lq = sigmoid_parts(z)
    u = p - m
    if u <= 0.0:
        return 0.0, 0.0, 0.0
    v = q + m
    log_u = np.log(u)
    ug = power_of(u, log_u, gamma)
    pq = p * q
    loss = -ug * np.log(v)
    h_gn = ug * pq * pq / (v * v)
    if mode != HESS_EXACT and gamma < 1.0:
        log_u = max(log_u, LOG_KINK_FLOOR)
    if detached:
        grad = ug * pq / v
        hess = ug * pq * (q * q + m * (q - p)) / (v * v)
        if gamma > 0.0:
            hess += gamma * np.exp((gamma - 1.0) * log_u) * pq * pq / v
    else:
        lam = -np.log1p(-u) / u
        d1 = ug * (1.0 / v + gamma * lam)
        d2 = ug / (v * v)
        if gamma > 0.0:
            d2 += np.exp((gamma - 1.0) * log_u) * (gamma * (gamma - 1.0) * lam + 2.0 * gamma / v)
        grad = pq * d1
        hess = pq * (q - p) * d1 + pq * pq * d2
    return loss, grad, apply_policy(hess, h_gn, mode)


@scalar
def sigmoid_element(y, z, a_pos, a_neg, gamma_pos, gamma_neg, margin, detached, mode):
    """Loss, gradient and Hessian of one sigmoid output with (soft) label ``y`` in [0, 1].

    ``L = y a_pos f_{g+}(z) + (1-y) a_neg N(z)`` with ``N(z) = f_{g-}(-z)`` when ``margin == 0``
    and the ASL negative part otherwise. Covers binary/multi-label focal (a_pos=alpha,
    a_neg=1-alpha, g+=g-=gamma), ASL, cross-entropy (gamma 0) and binary logit adjustment
    (cross-entropy at the shifted margin).
    """
    loss = 0.0
    grad = 0.0
    hess = 0.0
    if y > 0.0:
        f, f1, f2, f2_gn = focal_core(z, gamma_pos, detached)
        c = y * a_pos
        loss += c * f
        grad += c * f1
        hess += c * apply_policy(f2, f2_gn, mode)
    if y < 1.0:
        c = (1.0 - y) * a_neg
        if margin > 0.0:
            ln, gn, hn = asl_negative(z, gamma_neg, margin, detached, mode)
        else:
            ln, gn, hn, hn_gn = focal_core(-z, gamma_neg, detached)
            gn = -gn
            hn = apply_policy(hn, hn_gn, mode)
        loss += c * ln
        grad += c * gn
        hess += c * hn
    if mode == HESS_PSD:
        hess += HESS_FLOOR * (y * a_pos + (1.0 - y) * a_neg)
    return loss, grad, hess


@scalar
def softmax_margin(z_target, z_max_other, rest):
    """One-vs-rest margin ``t = z_y - logsumexp_{k != y} z_k``.

    ``z_max_other`` is the largest non-target score and ``rest`` the sum of
    ``exp(z_k - z_max_other)`` over the other non-target classes (the largest term, 1, excluded,
    so that ``log1p`` keeps full precision when it is small).
    """
    return z_target - (z_max_other + np.log1p(rest))


# ------------------------------------------------------------------------------------------------
# Row loops. ``raw`` is (n, K) in C or F order (binary is viewed as (n, 1)); outputs have raw's
# shape; ``weight`` is (n,) or empty for unweighted; ``offset`` (K,) is added to the raw scores
# (tau * log prior for logit adjustment, zeros otherwise).


@kernel
def sigmoid_gradient_hessian(y, raw, weight, offset, a_pos, a_neg, gamma_pos, gamma_neg, margin,
                             detached, mode, grad, hess):
    n, n_out = raw.shape
    weighted = weight.shape[0] > 0
    for i in prange(n):
        w = weight[i] if weighted else 1.0
        for k in range(n_out):
            z = np.float64(raw[i, k]) + offset[k]
            _, g, h = sigmoid_element(y[i, k], z, a_pos[k], a_neg[k], gamma_pos, gamma_neg,
                                      margin, detached, mode)
            grad[i, k] = w * g
            hess[i, k] = w * h


@kernel(fastmath=CONTRACT)
def binary_gradient_hessian(y, raw, weight, offset, a_pos, a_neg, gamma_pos, gamma_neg, margin,
                            detached, mode, grad, hess):
    """:func:`sigmoid_gradient_hessian` for one output (binary targets, ``raw`` 1-D).

    Losses without a probability margin first take every row as a hard label: the focal
    formulas at the signed margin ``s z`` (``s = 2y - 1``), the mixture's value for y in
    {0, 1}, in a loop without branches or calls that LLVM vectorises. Labels outside {0, 1}
    (soft labels) make it redo all rows with the mixture.
    """
    n = raw.shape[0]
    weighted = weight.shape[0] > 0
    if margin == 0.0 and not detached:
        soft_rows = 0  # an integer count: a float sum would keep LLVM from vectorising
        # two loops, so that ``integral`` is a constant LLVM folds away (a runtime flag would
        # leave the general power computed on every row)
        if gamma_pos in (0.0, 1.0, 2.0) and gamma_neg in (0.0, 1.0, 2.0):
            for i in prange(n):
                grad[i], hess[i], soft = hard_label_element(
                    y[i], np.float64(raw[i]) + offset, weight[i] if weighted else 1.0, a_pos,
                    a_neg, gamma_pos, gamma_neg, mode, True)
                soft_rows += soft
        else:
            for i in prange(n):
                grad[i], hess[i], soft = hard_label_element(
                    y[i], np.float64(raw[i]) + offset, weight[i] if weighted else 1.0, a_pos,
                    a_neg, gamma_pos, gamma_neg, mode, False)
                soft_rows += soft
        if soft_rows == 0:
            return
    for i in prange(n):
        w = weight[i] if weighted else 1.0
        _, g, h = sigmoid_element(y[i], np.float64(raw[i]) + offset, a_pos, a_neg, gamma_pos,
                                  gamma_neg, margin, detached, mode)
        grad[i] = w * g
        hess[i] = w * h


@kernel
def sigmoid_loss(y, raw, weight, offset, a_pos, a_neg, gamma_pos, gamma_neg, margin, out):
    n, n_out = raw.shape
    weighted = weight.shape[0] > 0
    for i in prange(n):
        total = 0.0
        for k in range(n_out):
            z = np.float64(raw[i, k]) + offset[k]
            loss, _, _ = sigmoid_element(y[i, k], z, a_pos[k], a_neg[k], gamma_pos, gamma_neg,
                                         margin, False, HESS_EXACT)
            total += loss
        out[i] = total * weight[i] if weighted else total


@kernel
def softmax_gradient_hessian(y, raw, weight, offset, alpha, gamma, mode, grad, hess):
    """Softmax focal (section 3): with ``r_k = softmax_{k != y}(z)_k`` and ``t`` the margin::

        g_y = a f'(t)            g_k = -a f'(t) r_k
        h_yy = a f''(t)          h_kk = a [r_k^2 f''(t) - f'(t) r_k (1 - r_k)]

    The PSD policy replaces ``f''`` by ``max(f'', f''_GN)`` in both. ``grad[i, k]`` holds
    ``exp(z_k - z_max)`` as scratch until the row's ``t`` is known: no temporaries.
    """
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    for i in prange(n):
        c = int(y[i])
        z_max = -np.inf
        k_max = -1
        for k in range(n_class):
            if k != c:
                zk = np.float64(raw[i, k]) + offset[k]
                if zk > z_max:
                    z_max = zk
                    k_max = k
        rest = 0.0
        for k in range(n_class):
            if k != c:
                e = np.exp(np.float64(raw[i, k]) + offset[k] - z_max)
                grad[i, k] = e
                if k != k_max:
                    rest += e
        t = softmax_margin(np.float64(raw[i, c]) + offset[c], z_max, rest)
        _, f1, f2, f2_gn = focal_core(t, gamma, False)
        f2 = apply_policy(f2, f2_gn, mode)
        a = alpha[c] * (weight[i] if weighted else 1.0)
        floor = HESS_FLOOR * a if mode == HESS_PSD else 0.0
        total = 1.0 + rest
        grad[i, c] = a * f1
        hess[i, c] = a * f2 + floor
        for k in range(n_class):
            if k != c:
                r = grad[i, k] / total
                one_minus_r = rest / total if k == k_max else 1.0 - r
                grad[i, k] = -a * f1 * r
                hess[i, k] = a * (r * r * f2 - f1 * r * one_minus_r) + floor


@kernel
def softmax_loss(y, raw, weight, offset, alpha, gamma, out):
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    for i in prange(n):
        c = int(y[i])
        z_max = -np.inf
        for k in range(n_class):
            if k != c:
                z_max = max(z_max, np.float64(raw[i, k]) + offset[k])
        rest = -1.0  # the largest term contributes exactly 1
        for k in range(n_class):
            if k != c:
                rest += np.exp(np.float64(raw[i, k]) + offset[k] - z_max)
        t = softmax_margin(np.float64(raw[i, c]) + offset[c], z_max, max(rest, 0.0))
        f, _, _, _ = focal_core(t, gamma, False)
        out[i] = alpha[c] * f * (weight[i] if weighted else 1.0)


# ------------------------------------------------------------------------------------------------
# Input checks in one pass, without temporaries. They return a code that the Python side turns
# into an error message naming the argument.

CHECK_OK = 0
CHECK_NAN = 1
CHECK_RANGE = 2
CHECK_NOT_INTEGER = 3


@kernel
def check_unit_interval(values):
    """0 if every value is in [0, 1]; CHECK_NAN for a NaN; CHECK_RANGE otherwise."""
    flat = values.ravel()
    nan = 0
    bad = 0
    for i in prange(flat.shape[0]):
        v = flat[i]
        if v != v:
            nan += 1
        elif v < 0.0 or v > 1.0:
            bad += 1
    return CHECK_NAN if nan else (CHECK_RANGE if bad else CHECK_OK)


@kernel
def check_class_labels(values, n_class):
    """0 if every value is an integer in [0, n_class)."""
    nan = 0
    bad = 0
    frac = 0
    for i in prange(values.shape[0]):
        v = values[i]
        if v != v:
            nan += 1
        elif v < 0 or v >= n_class:
            bad += 1
        elif v != np.floor(v):
            frac += 1
    if nan:
        return CHECK_NAN
    if bad:
        return CHECK_RANGE
    return CHECK_NOT_INTEGER if frac else CHECK_OK


@kernel
def check_weights(values):
    """0 if every weight is finite and >= 0."""
    nan = 0
    bad = 0
    for i in prange(values.shape[0]):
        v = values[i]
        if v != v:
            nan += 1
        elif v < 0.0 or v == np.inf:
            bad += 1
    return CHECK_NAN if nan else (CHECK_RANGE if bad else CHECK_OK)
