"""The row loops, written once per link and instantiated per loss.

A loss module supplies scalar functions (``@gbloss.losses.scalar``) in the *slots* below; the
loops of its link are compiled with the slots bound to them (:func:`loops_for`), for the CPU
(parallel and serial, :class:`gbloss._jit.Kernel`) and, by :mod:`gbloss.cuda`, for the GPU from
the same source. The slot functions here only document the contract; calling one raises.

Sigmoid link (binary and multi-label; one output at a time)::

    sigmoid_element(y, z, k, theta, mode) -> (loss, grad, hess)

of one output ``k`` with (soft) label ``y`` in [0, 1] at raw score ``z``, the Hessian already
turned into the one the policy ``mode`` asks for (:data:`~gbloss.losses.primitives.HESS_EXACT`,
``HESS_PSD``, ``HESS_GN``).

Softmax link (multiclass; label ``c``, the true class's one-vs-rest margin
``t = z'_c - logsumexp_{k != c} z'_k`` of the shifted scores ``z'_k = z_k + shift(k, c)``)::

    softmax_shift(k, c, theta) -> float
    softmax_core(t, c, theta, mode) -> (loss, f1, f2, floor)

``f1 = dL/dt``, ``f2`` the policy's ``d2L/dt2`` and ``floor`` the Hessian floor of the policy;
the loop chains them through the softmax (``docs/derivations.md`` section 3)::

    g_c = f1        g_k = -f1 r_k           r_k = softmax over the classes k != c
    h_cc = f2       h_kk = r_k^2 f2 - f1 r_k (1 - r_k)          (+ floor on every class)

Softmax link with soft targets (label smoothing). A loss opts in by filling these slots
instead of the two above (a loss fills one softmax template); its loss is a target-weighted sum
of per-class terms, each at its class's one-vs-rest margin ``u_k = z_k - logsumexp_{j != k} z_j``
(no shift)::

    softmax_target(k, c, theta) -> T_k          (the weight of class k's term for label c)
    softmax_core(u, k, theta, mode)             (class k's term, the slot above with c = k)

    L = sum_k T_k l_k(u_k)
    g_j  = T_j f1_j - sum_{k != j} T_k f1_k r_kj              r_kj = p_j / (1 - p_k)
    h_jj = T_j f2_j + sum_{k != j} T_k (r_kj^2 f2_k - f1_k r_kj (1 - r_kj)) + sum_k T_k floor_k

The loop is linear in K: with ``e_j = exp(z_j - z_top)`` (``top`` the row's argmax), every term
but the top class's has ``r_kj = e_j / d_k``, ``d_k = 1 + sum_{i != k, top} e_i``, so the sums
over ``k != j`` are totals over all ``k`` less the own term (a rounding error of the size of the
own term, which the sum holds anyway). The top class's term takes its ``r`` from the second
largest score, as the hard-label loop does (``docs/derivations.md`` section 11.3).

On the CPU the gradient loops are :func:`blocked_softmax_gradient_hessian` and
:func:`blocked_soft_softmax_gradient_hessian` (:data:`CPU_TEMPLATES`; the GPU compiles the
templates above): the same quantities on blocks of rows transposed into scratch, vectorised
along the rows, with ``exp``/``log1p`` from the polynomial primitives (``exp_neg``,
``log1p_positive``), ``r_k = e_k * (1 / (1 + rest))`` (one division per row) and, when the
loss fills them, two optional CPU-only slots for the core::

    softmax_class_param(c, theta) -> a                  (gathered outside the vector loop)
    softmax_core_vectorisable(t, a, theta, mode)        (softmax_core's values, straight-line)

(the soft-target loop evaluates class ``k``'s term with ``a = softmax_class_param(k, theta)``).

``theta`` is the loss's kernel parameter tuple (:meth:`gbloss.Loss.kernel_params`). Sample
weights multiply everything in the loops.

Numba's disk cache keys a compiled loop by its source file's time stamp, which does not see an
edit to a loss module whose scalar functions the loop calls. The loops therefore carry in their
names a hash of the source of every module their bound functions reach
(:func:`source_key`): an edited loss compiles anew instead of loading stale machine code.

The loops also count non-finite raw scores and, for softmax, labels outside ``0..K-1`` (a row
with such a label is skipped and filled with NaN): no input, validated or not, makes a loop
index out of bounds, and the caller turns the counts into errors.
"""

import hashlib
import inspect
import threading
import types

import numpy as np
from llvmlite import ir
from numba import prange
from numba import types as numba_types
from numba.core import cgutils
from numba.core.dispatcher import Dispatcher
from numba.extending import intrinsic

from .. import _jit
from .._jit import kernel, scalar
from .primitives import HESS_EXACT, exp_neg, log1p_positive

# ------------------------------------------------------------------------------------------------
# Slots: the scalar contract of each link


def sigmoid_element(y, z, k, theta, mode):
    """Slot: ``(loss, grad, hess)`` of sigmoid output ``k`` (see the module docstring)."""
    raise NotImplementedError("sigmoid_element is bound per loss by loops_for")


def softmax_shift(k, c, theta):
    """Slot: the shift added to raw score ``k`` when the label is ``c``."""
    raise NotImplementedError("softmax_shift is bound per loss by loops_for")


def softmax_core(t, c, theta, mode):
    """Slot: ``(loss, dL/dt, d2L/dt2 of the policy, Hessian floor)`` at margin ``t``."""
    raise NotImplementedError("softmax_core is bound per loss by loops_for")


def softmax_target(k, c, theta):
    """Slot: the weight of class ``k``'s term when the label is ``c`` (soft targets)."""
    raise NotImplementedError("softmax_target is bound per loss by loops_for")


def softmax_class_param(c, theta):
    """Optional slot (CPU, with the next): the per-class parameter the core reads for label
    ``c`` (a class weight), gathered outside the vectorised loop (LLVM does not vectorise a
    loop with a gather on this machine's target)."""
    raise NotImplementedError("softmax_class_param is bound per loss by loops_for")


def softmax_core_vectorisable(t, a, theta, mode):
    """Optional slot: :func:`softmax_core` given ``a = softmax_class_param(c, theta)``, as
    straight-line code that LLVM can vectorise (``@inlined_scalar``, no libm calls, selects);
    CPU only."""
    raise NotImplementedError("softmax_core_vectorisable is bound per loss by loops_for")


#: The optional slots of the CPU's blocked softmax loop (a loss fills both or neither).
VECTORISABLE_SLOTS = ("softmax_class_param", "softmax_core_vectorisable")
#: Bound per loss with them: whether the loss fills them (a compile-time constant).
VECTORISABLE_CORE = False


SIGMOID_SLOTS = ("sigmoid_element",)
SOFTMAX_SLOTS = ("softmax_shift", "softmax_core")
SOFT_SOFTMAX_SLOTS = ("softmax_target", "softmax_core")

# ------------------------------------------------------------------------------------------------
# Templates. ``raw`` is (n, K) in C or F order (binary is viewed as (n, 1)); outputs have raw's
# shape; ``weight`` is (n,) or empty for unweighted. Each returns its count(s) of bad inputs.


def sigmoid_gradient_hessian(y, raw, weight, theta, mode, grad, hess):
    n, n_out = raw.shape
    weighted = weight.shape[0] > 0
    nonfinite = 0
    for i in prange(n):
        w = weight[i] if weighted else 1.0
        row_bad = 0
        for k in range(n_out):
            z = np.float64(raw[i, k])
            row_bad += 0 if abs(z) < np.inf else 1
            _, g, h = sigmoid_element(y[i, k], z, k, theta, mode)
            grad[i, k] = w * g
            hess[i, k] = w * h
        nonfinite += row_bad
    return nonfinite


def sigmoid_loss(y, raw, weight, theta, out):
    """Per-element loss values, ``out`` of raw's shape (n, K)."""
    n, n_out = raw.shape
    weighted = weight.shape[0] > 0
    nonfinite = 0
    for i in prange(n):
        w = weight[i] if weighted else 1.0
        row_bad = 0
        for k in range(n_out):
            z = np.float64(raw[i, k])
            row_bad += 0 if abs(z) < np.inf else 1
            loss, _, _ = sigmoid_element(y[i, k], z, k, theta, HESS_EXACT)
            out[i, k] = w * loss
        nonfinite += row_bad
    return nonfinite


def softmax_gradient_hessian(y, raw, weight, theta, mode, grad, hess):
    """Recomputes ``exp(z'_k - z'_m)`` for the outputs instead of keeping it in ``grad``, which
    may be float32, too coarse for intermediate values."""
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    nonfinite = 0
    bad_labels = 0
    for i in prange(n):
        label = y[i]
        if label >= 0 and label < n_class:
            c = int(label)
            row_bad = 0
            m = -1  # the largest shifted score among the other classes
            best = -np.inf
            for k in range(n_class):
                zk = np.float64(raw[i, k])
                row_bad += 0 if abs(zk) < np.inf else 1
                if k != c:
                    v = zk + softmax_shift(k, c, theta)
                    if v > best or m < 0:
                        best = v
                        m = k
            zm = np.float64(raw[i, m])
            sm = softmax_shift(m, c, theta)
            rest = 0.0
            for k in range(n_class):
                if k != c and k != m:
                    rest += np.exp((np.float64(raw[i, k]) - zm) + (softmax_shift(k, c, theta) - sm))
            t = ((np.float64(raw[i, c]) - zm) + (softmax_shift(c, c, theta) - sm)) - np.log1p(rest)
            _, f1, f2, floor = softmax_core(t, c, theta, mode)
            w = weight[i] if weighted else 1.0
            total = 1.0 + rest
            grad[i, c] = w * f1
            hess[i, c] = w * (f2 + floor)
            for k in range(n_class):
                if k != c:
                    e = np.exp((np.float64(raw[i, k]) - zm) + (softmax_shift(k, c, theta) - sm))
                    r = e / total
                    one_minus_r = rest / total if k == m else 1.0 - r
                    grad[i, k] = -w * f1 * r
                    hess[i, k] = w * (r * r * f2 - f1 * r * one_minus_r + floor)
            nonfinite += row_bad
        else:
            bad_labels += 1
            for k in range(n_class):
                grad[i, k] = np.nan
                hess[i, k] = np.nan
    return nonfinite, bad_labels


@intrinsic
def prefetch(typingctx, array, row, column):
    """Ask the CPU to bring the cache line of ``array[row, column]`` into its caches
    (``llvm.prefetch``: read, keep). A hint only: it changes no value and cannot fault; callers
    still pass indices inside the array."""
    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        address = cgutils.get_item_pointer(context, builder, array_type, view, args[1:],
                                           wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        int32 = ir.IntType(32)
        hint = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, int32, int32, int32]),
            "llvm.prefetch.p0i8")
        builder.call(hint, [builder.bitcast(address, byte_pointer), ir.Constant(int32, 0),
                            ir.Constant(int32, 3), ir.Constant(int32, 1)])
        return context.get_dummy_value()
    return numba_types.void(array, row, column), codegen


@scalar
def prefetch_rows(array, first, end):
    """Prefetch rows ``first .. end - 1`` of a C-ordered ``array`` (2-d): a hint every 64
    bytes of each row."""
    step = max(1, 64 // array.itemsize)
    for row in range(first, end):
        for column in range(0, array.shape[1], step):
            prefetch(array, row, column)


def _interleave_masks(width):
    """The two shuffle masks that interleave vectors ``a`` and ``b`` (8 lanes) ``width`` lanes
    at a time: ``a``'s even groups with ``b``'s even groups, and the odd with the odd."""
    first = [lane if lane // width % 2 == 0 else 8 + lane - width for lane in range(8)]
    second = [lane + width if lane // width % 2 == 0 else 8 + lane for lane in range(8)]
    return first, second


def _alignment(array_type):
    """The alignment, in bytes, that an element of arrays of this Numba type is known to have
    (an array typed unaligned, such as a view at an odd byte offset, has none)."""
    return array_type.dtype.bitwidth // 8 if array_type.aligned else 1


@intrinsic
def copy_tile_transposed(typingctx, source, source_row, source_column, target, target_row,
                         target_column):
    """``target[target_row + m, target_column + i] = source[source_row + i, source_column + m]``
    for ``i, m`` in ``0..7`` (float32 or float64 either side, converted as an assignment is):
    eight vector loads, three rounds of shuffles that interleave the rows 1, 2 and 4 lanes at
    a time, and eight vector stores, where scalar copies cost a load and a store per element.
    Unchecked: callers keep both 8 x 8 tiles inside their arrays, and both arrays' rows
    contiguous (unit stride along the second axis)."""
    floats = (numba_types.float32, numba_types.float64)
    if not (isinstance(source, numba_types.Array) and isinstance(target, numba_types.Array)
            and source.ndim == 2 and target.ndim == 2 and source.dtype in floats
            and target.dtype in floats and target.mutable):
        return None

    def tile_rows(context, builder, array_type, array, row, column):
        view = context.make_array(array_type)(context, builder, array)
        element = context.get_value_type(array_type.dtype)
        for i in range(8):
            index = builder.add(row, ir.Constant(row.type, i))
            address = cgutils.get_item_pointer(context, builder, array_type, view,
                                               [index, column], wraparound=False)
            yield builder.bitcast(address, ir.VectorType(element, 8).as_pointer()), element

    def codegen(context, builder, signature, args):
        source_type, _, _, target_type, _, _ = signature.args
        double = ir.DoubleType()
        vectors = []
        for address, element in tile_rows(context, builder, source_type, *args[:3]):
            vector = builder.load(address, align=_alignment(source_type))
            vectors.append(vector if element == double
                           else builder.fpext(vector, ir.VectorType(double, 8)))
        for width in (1, 2, 4):
            masks = [ir.Constant(ir.VectorType(ir.IntType(32), 8), mask)
                     for mask in _interleave_masks(width)]
            for i in range(8):
                if i // width % 2 == 0:
                    a, b = vectors[i], vectors[i + width]
                    vectors[i] = builder.shuffle_vector(a, b, masks[0])
                    vectors[i + width] = builder.shuffle_vector(a, b, masks[1])
        for vector, (address, element) in zip(
                vectors, tile_rows(context, builder, target_type, *args[3:]), strict=True):
            if element != double:
                vector = builder.fptrunc(vector, ir.VectorType(element, 8))
            builder.store(vector, address, align=_alignment(target_type))
        return context.get_dummy_value()

    return numba_types.void(source, source_row, source_column, target, target_row,
                            target_column), codegen


@scalar
def read_block_labels(y, start, rows, n_class, labels, ok):
    """Read the labels of rows ``start ..`` into ``labels`` (0 where a label is outside
    ``0..K-1``) and ``ok``; returns the count of such labels."""
    bad = 0
    for j in range(rows):
        label = y[start + j]
        good = (label >= 0) & (label < n_class)
        ok[j] = good
        labels[j] = int(label if good else 0.0)
        bad += 0 if good else 1
    return bad


@scalar
def softmax_block_rows(n_class):
    """Rows per block of :func:`blocked_softmax_gradient_hessian`: about 8192 scores (at most
    256 rows), so that the block's two (K, rows) scratch arrays (128 KiB) stay in the L2 cache
    while the copies in and out run along long stretches of C- or F-ordered rows; a multiple
    of 8 (one AVX-512 vector of float64). Against 1024 scores (L1): 2.3x faster at K=100, the
    same at K=10."""
    return max(8, min(256, 8192 // n_class) // 8 * 8)


def blocked_softmax_gradient_hessian(y, raw, weight, theta, mode, grad, hess, loss_out=None):
    """The CPU's :func:`softmax_gradient_hessian` and, with ``loss_out`` (``grad`` and ``hess``
    then None), its :func:`softmax_loss`: the same quantities, computed on blocks of
    rows transposed into scratch arrays ``(K, rows)``, so that every inner loop runs along the
    rows of the block without calls, branches or float reductions, which LLVM vectorises:
    ``exp`` through ``exp_neg``, ``log1p`` through ``log1p_positive`` and the per-row core
    through the loss's ``softmax_core_vectorisable`` (its ``softmax_core`` when it has none;
    ``VECTORISABLE_CORE`` is bound with the slots).
    ``r_k`` is ``e_k`` times the row's ``1 / (1 + rest)``. The copies into and out of the
    scratch are :func:`copy_block_in` and :func:`copy_block_out`."""
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    block = softmax_block_rows(n_class)
    nonfinite = 0
    bad_labels = 0
    for b in prange((n + block - 1) // block):
        start = b * block
        rows = min(block, n - start)
        scores = np.empty((n_class, block))  # shifted scores, then the gradient
        exps = np.empty((n_class, block))  # exp(z'_k - z'_m) (0 at c), then the Hessian
        labels = np.empty(block, np.int64)
        ok = np.empty(block, np.bool_)
        best = np.empty(block)
        top = np.empty(block, np.int64)
        true = np.empty(block)
        weights = np.empty(block)  # softmax_class_param of each row's label
        per_row = np.empty((5, block))  # rest, 1 / (1 + rest), w f1, w f2, w floor
        bad_labels += read_block_labels(y, start, rows, n_class, labels, ok)
        nonfinite += copy_block_in(raw, start, rows, ok, scores)
        for j in range(rows):
            best[j] = -np.inf
            top[j] = -1
            true[j] = 0.0
        for k in range(n_class):  # shift; z'_c; m: the first largest z'_k among k != c
            for j in range(rows):
                v = scores[k, j] + softmax_shift(k, labels[j], theta)
                scores[k, j] = v
                at_label = k == labels[j]
                true[j] = v if at_label else true[j]
                take = (not at_label) & ((v > best[j]) | (top[j] < 0))
                best[j] = v if take else best[j]
                top[j] = k if take else top[j]
        for k in range(n_class):
            for j in range(rows):
                e = exp_neg(best[j] - scores[k, j])
                exps[k, j] = 0.0 if k == labels[j] else e
        for j in range(rows):
            per_row[0, j] = 0.0
        for k in range(n_class):
            for j in range(rows):
                per_row[0, j] += 0.0 if k == top[j] else exps[k, j]
        for j in range(rows):
            rest = per_row[0, j]
            inv_total = 1.0 / (1.0 + rest)
            per_row[1, j] = inv_total
            true[j] = (true[j] - best[j]) - log1p_positive(rest, inv_total)  # the margin t
        if VECTORISABLE_CORE:
            for j in range(rows):
                weights[j] = softmax_class_param(labels[j], theta)
            for j in range(rows):
                loss, f1, f2, floor = softmax_core_vectorisable(true[j], weights[j], theta, mode)
                w = weight[start + j] if weighted else 1.0
                per_row[2, j] = w * f1
                per_row[3, j] = w * f2
                per_row[4, j] = w * floor
                if loss_out is not None:
                    loss_out[start + j] = w * loss if ok[j] else np.nan
        else:
            for j in range(rows):
                loss, f1, f2, floor = softmax_core(true[j], labels[j], theta, mode)
                w = weight[start + j] if weighted else 1.0
                per_row[2, j] = w * f1
                per_row[3, j] = w * f2
                per_row[4, j] = w * floor
                if loss_out is not None:
                    loss_out[start + j] = w * loss if ok[j] else np.nan
        if grad is not None:
            for k in range(n_class):
                for j in range(rows):
                    rest = per_row[0, j]
                    inv_total = per_row[1, j]
                    wf1 = per_row[2, j]
                    wf2 = per_row[3, j]
                    wfloor = per_row[4, j]
                    r = exps[k, j] * inv_total
                    one_minus_r = rest * inv_total if k == top[j] else 1.0 - r
                    g = -wf1 * r
                    h = r * r * wf2 - wf1 * r * one_minus_r + wfloor
                    at_label = k == labels[j]
                    g = wf1 if at_label else g
                    h = wf2 + wfloor if at_label else h
                    scores[k, j] = g if ok[j] else np.nan
                    exps[k, j] = h if ok[j] else np.nan
            copy_block_out(scores, exps, start, rows, grad, hess)
    return nonfinite, bad_labels


@scalar
def copy_block_out(block_grad, block_hess, start, rows, grad, hess):
    """Write a block's transposed outputs ``(K, rows)`` to rows ``start ..`` of ``grad`` and
    ``hess`` (C or F order), along the outputs' own order, by 8 x 8 tiles where
    :func:`copy_block_in` uses them."""
    n_class = grad.shape[1]
    if grad.strides[0] >= grad.strides[1]:
        tiled = rows // 8 * 8 if tiles_fit(grad) & tiles_fit(hess) else 0
        for j in range(0, tiled, 8):
            for k in range(0, n_class, 8):
                first = min(k, n_class - 8)
                copy_tile_transposed(block_grad, first, j, grad, start + j, first)
                copy_tile_transposed(block_hess, first, j, hess, start + j, first)
        for j in range(tiled, rows):
            for k in range(n_class):
                grad[start + j, k] = block_grad[k, j]
                hess[start + j, k] = block_hess[k, j]
    else:
        for k in range(n_class):
            for j in range(rows):
                grad[start + j, k] = block_grad[k, j]
                hess[start + j, k] = block_hess[k, j]


def softmax_loss(y, raw, weight, theta, out):
    """Per-row loss values, ``out`` (n,)."""
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    nonfinite = 0
    bad_labels = 0
    for i in prange(n):
        label = y[i]
        if label >= 0 and label < n_class:
            c = int(label)
            row_bad = 0
            m = -1
            best = -np.inf
            for k in range(n_class):
                zk = np.float64(raw[i, k])
                row_bad += 0 if abs(zk) < np.inf else 1
                if k != c:
                    v = zk + softmax_shift(k, c, theta)
                    if v > best or m < 0:
                        best = v
                        m = k
            zm = np.float64(raw[i, m])
            sm = softmax_shift(m, c, theta)
            rest = 0.0
            for k in range(n_class):
                if k != c and k != m:
                    rest += np.exp((np.float64(raw[i, k]) - zm) + (softmax_shift(k, c, theta) - sm))
            t = ((np.float64(raw[i, c]) - zm) + (softmax_shift(c, c, theta) - sm)) - np.log1p(rest)
            loss, _, _, _ = softmax_core(t, c, theta, HESS_EXACT)
            out[i] = loss * (weight[i] if weighted else 1.0)
            nonfinite += row_bad
        else:
            bad_labels += 1
            out[i] = np.nan
    return nonfinite, bad_labels


@scalar
def _soft_row(raw, i, n_class):
    """What every term of row ``i`` needs: its argmax ``top`` and the largest other class
    ``second``, their scores, ``others = sum_{j != top} exp(z_j - z_top)``,
    ``rest_top = sum_{j != top, second} exp(z_j - z_second)``, and the count of non-finite
    scores."""
    top = 0
    nonfinite = 0
    for k in range(n_class):
        nonfinite += 0 if abs(np.float64(raw[i, k])) < np.inf else 1
        if raw[i, k] > raw[i, top]:
            top = k
    second = 1 if top == 0 else 0
    for k in range(n_class):
        if k != top and raw[i, k] > raw[i, second]:
            second = k
    z_top = np.float64(raw[i, top])
    z_second = np.float64(raw[i, second])
    others = 0.0
    rest_top = 0.0
    for k in range(n_class):
        if k != top:
            others += np.exp(np.float64(raw[i, k]) - z_top)
            if k != second:
                rest_top += np.exp(np.float64(raw[i, k]) - z_second)
    return top, second, z_top, z_second, others, rest_top, nonfinite


def soft_softmax_gradient_hessian(y, raw, weight, theta, mode, grad, hess):
    """Soft targets (module docstring): one pass for the row's sums of exponentials, one for
    the sums over the terms, one for the outputs, recomputing the exponentials and each term
    but the top class's instead of keeping them (``grad`` and ``hess`` may be float32, too
    coarse for intermediate values)."""
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    nonfinite = 0
    bad_labels = 0
    for i in prange(n):
        label = y[i]
        if label >= 0 and label < n_class:
            c = int(label)
            top, second, z_top, z_second, others, rest_top, row_bad = _soft_row(raw, i, n_class)
            t_top = softmax_target(top, c, theta)
            _, f1_top, f2_top, floor = softmax_core((z_top - z_second) - np.log1p(rest_top),
                                                    top, theta, mode)
            sum_a = 0.0  # sum over k != top of T_k f1_k / d_k
            sum_b = 0.0  # sum over k != top of T_k (f2_k + f1_k) / d_k^2
            h_top = t_top * f2_top
            floors = t_top * floor
            for k in range(n_class):
                if k != top:
                    zk = np.float64(raw[i, k])
                    rest = others - np.exp(zk - z_top)
                    d = 1.0 + rest
                    t_k = softmax_target(k, c, theta)
                    _, f1, f2, floor = softmax_core((zk - z_top) - np.log1p(rest), k, theta, mode)
                    sum_a += t_k * f1 / d
                    sum_b += t_k * (f2 + f1) / (d * d)
                    h_top += t_k * (f2 - f1 * rest) / (d * d)
                    floors += t_k * floor
            w = weight[i] if weighted else 1.0
            total_top = 1.0 + rest_top
            for j in range(n_class):
                if j != top:
                    zj = np.float64(raw[i, j])
                    e = np.exp(zj - z_top)
                    rest = others - e
                    d = 1.0 + rest
                    t_j = softmax_target(j, c, theta)
                    _, f1, f2, _ = softmax_core((zj - z_top) - np.log1p(rest), j, theta, mode)
                    rest_a = sum_a - t_j * f1 / d
                    rest_b = sum_b - t_j * (f2 + f1) / (d * d)
                    r = np.exp(zj - z_second) / total_top  # r of the top class's term
                    one_minus_r = rest_top / total_top if j == second else 1.0 - r
                    grad[i, j] = w * (t_j * f1 - e * rest_a - t_top * f1_top * r)
                    hess[i, j] = w * (t_j * f2 + e * e * rest_b - e * rest_a
                                      + t_top * (r * r * f2_top - f1_top * r * one_minus_r)
                                      + floors)
            grad[i, top] = w * (t_top * f1_top - sum_a)
            hess[i, top] = w * (h_top + floors)
            nonfinite += row_bad
        else:
            bad_labels += 1
            for k in range(n_class):
                grad[i, k] = np.nan
                hess[i, k] = np.nan
    return nonfinite, bad_labels


def soft_softmax_loss(y, raw, weight, theta, out):
    """Per-row loss values with soft targets, ``out`` (n,)."""
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    nonfinite = 0
    bad_labels = 0
    for i in prange(n):
        label = y[i]
        if label >= 0 and label < n_class:
            c = int(label)
            top, second, z_top, z_second, others, rest_top, row_bad = _soft_row(raw, i, n_class)
            value, _, _, _ = softmax_core((z_top - z_second) - np.log1p(rest_top), top, theta,
                                          HESS_EXACT)
            loss = softmax_target(top, c, theta) * value
            for k in range(n_class):
                if k != top:
                    zk = np.float64(raw[i, k])
                    rest = others - np.exp(zk - z_top)
                    value, _, _, _ = softmax_core((zk - z_top) - np.log1p(rest), k, theta,
                                                  HESS_EXACT)
                    loss += softmax_target(k, c, theta) * value
            out[i] = loss * (weight[i] if weighted else 1.0)
            nonfinite += row_bad
        else:
            bad_labels += 1
            out[i] = np.nan
    return nonfinite, bad_labels


@scalar
def copy_block_in(raw, start, rows, ok, scores):
    """Copy rows ``start ..`` of ``raw`` (C or F order) into ``scores[k, j]``, returning the
    count of non-finite scores in the rows marked ``ok``. Contiguous rows of 8 scores or more
    go by 8 x 8 tiles (:func:`copy_tile_transposed`; the last tile of a row overlaps the one
    before), scores by class (F order, LightGBM's layout) along the classes' runs. Both
    prefetch the next block's rows: the copies come in bursts between a block's arithmetic,
    which the CPU's prefetcher does not run ahead of (and a block's K runs in F order are more
    streams than it follows)."""
    n, n_class = raw.shape
    block = scores.shape[1]
    ahead = min(start + block, n - 1)
    ahead_end = min(start + 2 * block, n)
    nonfinite = 0
    if raw.strides[0] >= raw.strides[1]:
        tiled = rows // 8 * 8 if tiles_fit(raw) else 0
        for j in range(0, tiled, 8):
            for k in range(0, n_class, 8):
                first = min(k, n_class - 8)
                copy_tile_transposed(raw, start + j, first, scores, first, j)
        for j in range(tiled, rows):
            for k in range(n_class):
                scores[k, j] = raw[start + j, k]
        prefetch_rows(raw, ahead, ahead_end)
        for k in range(n_class):
            for j in range(rows):
                nonfinite += 0 if (abs(scores[k, j]) < np.inf) | (not ok[j]) else 1
    else:
        for k in range(n_class):
            for row in range(ahead, ahead_end, max(1, 64 // raw.itemsize)):
                prefetch(raw, row, k)
            column_bad = 0
            for j in range(rows):
                zk = np.float64(raw[start + j, k])
                column_bad += 0 if (abs(zk) < np.inf) | (not ok[j]) else 1
                scores[k, j] = zk
            nonfinite += column_bad
    return nonfinite


@scalar
def tiles_fit(array):
    """Whether ``array`` (2-d) is copied by 8 x 8 tiles: rows of 8 elements or more, contiguous."""
    return (array.shape[1] >= 8) & (array.strides[1] == array.itemsize)


def blocked_soft_softmax_gradient_hessian(y, raw, weight, theta, mode, grad, hess,
                                          loss_out=None):
    """The CPU's :func:`soft_softmax_gradient_hessian` and, with ``loss_out`` (``grad`` and
    ``hess`` then None), its :func:`soft_softmax_loss`: the same quantities on blocks of rows
    transposed into scratch ``(K, rows)``, as :func:`blocked_softmax_gradient_hessian` does,
    every inner loop along the rows of the block: the row's two largest scores, the two sums
    of exponentials (``exp_neg``), every class's term (``softmax_core_vectorisable`` at the
    class's ``softmax_class_param``, or ``softmax_core``) with the sums over the terms, and the
    outputs from the terms kept in scratch instead of recomputed."""
    n, n_class = raw.shape
    weighted = weight.shape[0] > 0
    block = softmax_block_rows(n_class)
    nonfinite = 0
    bad_labels = 0
    for b in prange((n + block - 1) // block):
        start = b * block
        rows = min(block, n - start)
        scores = np.empty((n_class, block))  # raw scores, then the gradient
        exps = np.empty((n_class, block))  # exp(z_k - z_top), then the Hessian
        exps_second = np.empty((n_class, block))  # exp(z_k - z_second)
        term_g = np.empty((n_class, block))  # T_k f1_k
        term_h = np.empty((n_class, block))  # T_k f2_k
        inv_d = np.empty((n_class, block))  # 1 / d_k
        z_top = np.empty(block)
        z_second = np.empty(block)
        others = np.empty(block)
        rest_top = np.empty(block)
        inv_total_top = np.empty(block)
        t_top = np.empty(block)
        a_top = np.empty(block)
        f1_top = np.empty(block)
        f2_top = np.empty(block)
        loss_row = np.empty(block)
        sum_a = np.empty(block)
        sum_b = np.empty(block)
        h_top = np.empty(block)
        floors = np.empty(block)
        w_row = np.empty(block)
        labels = np.empty(block, np.int64)
        top = np.empty(block, np.int64)
        second = np.empty(block, np.int64)
        ok = np.empty(block, np.bool_)
        bad_labels += read_block_labels(y, start, rows, n_class, labels, ok)
        for j in range(rows):
            w_row[j] = weight[start + j] if weighted else 1.0
        nonfinite += copy_block_in(raw, start, rows, ok, scores)
        for j in range(rows):  # the first largest score, then the first largest other
            top[j] = 0
            z_top[j] = scores[0, j]
        for k in range(1, n_class):
            for j in range(rows):
                v = scores[k, j]
                take = v > z_top[j]
                z_top[j] = v if take else z_top[j]
                top[j] = k if take else top[j]
        for j in range(rows):
            second[j] = 1 if top[j] == 0 else 0
            z_second[j] = scores[second[j], j]
        for k in range(n_class):
            for j in range(rows):
                v = scores[k, j]
                take = (k != top[j]) & (v > z_second[j])
                z_second[j] = v if take else z_second[j]
                second[j] = k if take else second[j]
        for j in range(rows):
            others[j] = 0.0
            rest_top[j] = 0.0
        for k in range(n_class):
            for j in range(rows):
                e = exp_neg(z_top[j] - scores[k, j])
                e_second = exp_neg(max(z_second[j] - scores[k, j], 0.0))
                exps[k, j] = e
                exps_second[k, j] = e_second
                at_top = k == top[j]
                others[j] += 0.0 if at_top else e
                rest_top[j] += 0.0 if at_top | (k == second[j]) else e_second
        for j in range(rows):
            t_top[j] = softmax_target(top[j], labels[j], theta)
            a_top[j] = softmax_class_param(top[j], theta) if VECTORISABLE_CORE else 0.0
        for j in range(rows):
            inv_total_top[j] = 1.0 / (1.0 + rest_top[j])
            u = (z_top[j] - z_second[j]) - log1p_positive(rest_top[j], inv_total_top[j])
            if VECTORISABLE_CORE:
                loss, f1, f2, floor = softmax_core_vectorisable(u, a_top[j], theta, mode)
            else:
                loss, f1, f2, floor = softmax_core(u, top[j], theta, mode)
            loss_row[j] = t_top[j] * loss
            f1_top[j] = f1
            f2_top[j] = f2
            sum_a[j] = 0.0  # sum over k != top of T_k f1_k / d_k
            sum_b[j] = 0.0  # sum over k != top of T_k (f2_k + f1_k) / d_k^2
            h_top[j] = t_top[j] * f2
            floors[j] = t_top[j] * floor
        for k in range(n_class):
            a = softmax_class_param(k, theta) if VECTORISABLE_CORE else 0.0
            for j in range(rows):
                e = exps[k, j]
                rest = others[j] - e
                inv = 1.0 / (1.0 + rest)
                u = (scores[k, j] - z_top[j]) - log1p_positive(rest, inv)
                if VECTORISABLE_CORE:
                    loss, f1, f2, floor = softmax_core_vectorisable(u, a, theta, mode)
                else:
                    loss, f1, f2, floor = softmax_core(u, k, theta, mode)
                t = softmax_target(k, labels[j], theta)
                term_g[k, j] = t * f1
                term_h[k, j] = t * f2
                inv_d[k, j] = inv
                at_top = k == top[j]
                loss_row[j] += 0.0 if at_top else t * loss
                sum_a[j] += 0.0 if at_top else t * f1 * inv
                sum_b[j] += 0.0 if at_top else t * (f2 + f1) * (inv * inv)
                h_top[j] += 0.0 if at_top else t * (f2 - f1 * rest) * (inv * inv)
                floors[j] += 0.0 if at_top else t * floor
        if loss_out is not None:
            for j in range(rows):
                loss_out[start + j] = w_row[j] * loss_row[j] if ok[j] else np.nan
        if grad is not None:
            for k in range(n_class):
                for j in range(rows):
                    e = exps[k, j]
                    inv = inv_d[k, j]
                    tf1 = term_g[k, j]
                    tf2 = term_h[k, j]
                    rest_a = sum_a[j] - tf1 * inv
                    rest_b = sum_b[j] - (tf2 + tf1) * (inv * inv)
                    r = exps_second[k, j] * inv_total_top[j]  # r of the top class's term
                    one_minus_r = rest_top[j] * inv_total_top[j] if k == second[j] else 1.0 - r
                    tt = t_top[j]
                    g = tf1 - e * rest_a - tt * f1_top[j] * r
                    h = tf2 + e * e * rest_b - e * rest_a \
                        + tt * (r * r * f2_top[j] - f1_top[j] * r * one_minus_r) + floors[j]
                    at_top = k == top[j]
                    g = tt * f1_top[j] - sum_a[j] if at_top else g
                    h = h_top[j] + floors[j] if at_top else h
                    w = w_row[j]
                    scores[k, j] = w * g if ok[j] else np.nan
                    exps[k, j] = w * h if ok[j] else np.nan
            copy_block_out(scores, exps, start, rows, grad, hess)
    return nonfinite, bad_labels


# The soft-target loops fill the softmax roles: a loss's Loops (and gbloss.cuda's DeviceLoops)
# name each loop after its template's __name__, whichever softmax template the loss fills.
soft_softmax_gradient_hessian.__name__ = softmax_gradient_hessian.__name__
soft_softmax_loss.__name__ = softmax_loss.__name__

TEMPLATES = {"sigmoid": ((sigmoid_gradient_hessian, sigmoid_loss), SIGMOID_SLOTS),
             "softmax": ((softmax_gradient_hessian, softmax_loss), SOFTMAX_SLOTS),
             "soft_softmax": ((soft_softmax_gradient_hessian, soft_softmax_loss),
                              SOFT_SOFTMAX_SLOTS)}

@scalar
def _unused_slot(*args):
    """Bound to the optional slots a loss leaves empty (the branch that calls them is
    compiled out)."""
    return 0.0


#: CPU-only replacements of gradient templates (the GPU compiles the templates above): same
#: arguments, same results, with the optional slots ``softmax_class_param``,
#: ``softmax_core_vectorisable``; each also replaces the loss template of its link
#: (:class:`LossOfGradientLoop`).
CPU_TEMPLATES = {softmax_gradient_hessian: blocked_softmax_gradient_hessian,
                 soft_softmax_gradient_hessian: blocked_soft_softmax_gradient_hessian}

# ------------------------------------------------------------------------------------------------
# Instantiation


def called_dispatchers(py):
    """The Numba dispatchers a Python function (or a function nested in it) calls through a
    global name, ``{name: dispatcher}``, and through a module attribute,
    ``{module name: {attribute: dispatcher}}``."""
    codes = [py.__code__, *(c for c in py.__code__.co_consts if isinstance(c, types.CodeType))]
    names = {name for code in codes for name in code.co_names}
    direct, by_module = {}, {}
    for name in names:
        obj = py.__globals__.get(name)
        if isinstance(obj, Dispatcher):
            direct[name] = obj
        elif isinstance(obj, types.ModuleType):
            used = {a: getattr(obj, a) for a in names
                    if isinstance(getattr(obj, a, None), Dispatcher)}
            if used:
                by_module[name] = used
    return direct, by_module


def _reachable_functions(functions):
    """The Python functions of the given Numba dispatchers and of every dispatcher they call,
    transitively (:func:`called_dispatchers`)."""
    seen, found, stack = set(), [], list(functions)
    while stack:
        fn = stack.pop()
        py = getattr(fn, "py_func", fn)
        if not isinstance(py, types.FunctionType) or id(py) in seen:
            continue
        seen.add(id(py))
        found.append(py)
        direct, by_module = called_dispatchers(py)
        stack += list(direct.values())
        stack += [d for used in by_module.values() for d in used.values()]
    return found


def _binding_name(value):
    """What a slot is bound to, as text: a function's module, qualified name and first line
    (two slot functions of one module differ in it), else the constant's repr."""
    py = getattr(value, "py_func", value)
    if isinstance(py, types.FunctionType):
        return f"{py.__module__}.{py.__qualname__}:{py.__code__.co_firstlineno}"
    return repr(value)


def source_key(functions, bindings=None):
    """A short hash of the source files of everything the given functions reach (their own
    modules, :mod:`gbloss._jit` and this module included), of the names those modules run
    under, and of what each slot in ``bindings`` is bound to: Numba's cache tells compiled
    loops apart by their name, file and line only, so two losses of one module must get loops
    of different names; and Numba imports a cached function's module by name when it loads it,
    so a loss module run as a script (``__main__``) must not load the loops cached when it was
    imported under its own name (that import would run the script again)."""
    reached = _reachable_functions(functions)
    files = {inspect.getsourcefile(py) for py in reached}
    files |= {__file__, _jit.__file__}
    digest = hashlib.sha256()
    for slot, value in sorted((bindings or {}).items()):
        digest.update(f"{slot}={_binding_name(value)}".encode() + b"\0")
    digest.update(" ".join(sorted({py.__globals__.get("__name__", "") for py in reached}))
                  .encode() + b"\0")
    for path in sorted(f for f in files if f):
        with open(path, "rb") as source:
            digest.update(path.encode() + b"\0" + source.read())
    return digest.hexdigest()[:16]


def compile_loop(template, bindings=None, variant="", **options):
    """:class:`gbloss._jit.Kernel` of ``template`` with the names in ``bindings`` resolved to
    the given functions (or constants), named after a hash of every source it reaches (module
    docstring) and ``variant``."""
    bindings = dict(bindings or {})
    namespace = dict(template.__globals__)
    namespace.update(bindings)
    key = source_key([template, *bindings.values()], bindings)
    name = f"{template.__name__}{variant}_{key}"
    fn = types.FunctionType(template.__code__, namespace, name, template.__defaults__,
                            template.__closure__)
    fn.__qualname__ = name
    fn.__doc__ = template.__doc__
    return _jit.Kernel(fn, **options)


class Loops:
    """The compiled loops of one loss: attributes ``sigmoid_gradient_hessian``, ``sigmoid_loss``
    (sigmoid link) and ``softmax_gradient_hessian``, ``softmax_loss`` (softmax link, hard-label
    or soft-target template), each present when the loss fills that template's slots;
    ``bindings`` are the slot functions."""

    def __init__(self, bindings):
        self.bindings = dict(bindings)  # held: loops_for keys by their ids
        if all(s in self.bindings for s in SOFTMAX_SLOTS + SOFT_SOFTMAX_SLOTS):
            raise ValueError("a loss fills the slots of one softmax template: softmax_shift "
                             "(hard labels) or softmax_target (soft targets), not both")
        for templates, slots in TEMPLATES.values():
            if all(s in self.bindings for s in slots):
                used = {s: self.bindings[s] for s in slots}
                gradient, loss = templates
                cpu = CPU_TEMPLATES.get(gradient)
                if cpu is None:
                    setattr(self, gradient.__name__, compile_loop(gradient, used))
                    setattr(self, loss.__name__, compile_loop(loss, used))
                    continue
                vectorised = all(s in self.bindings for s in VECTORISABLE_SLOTS)
                extra = {s: self.bindings[s] for s in VECTORISABLE_SLOTS} \
                    if vectorised else {s: _unused_slot for s in VECTORISABLE_SLOTS}
                extra["VECTORISABLE_CORE"] = vectorised
                loop = compile_loop(cpu, {**used, **extra}, fastmath=_jit.CONTRACT,
                                    variant="_vectorised" if vectorised else "")
                setattr(self, gradient.__name__, loop)
                setattr(self, loss.__name__, LossOfGradientLoop(loop))


class LossOfGradientLoop:
    """``loss(y, raw, weight, theta, out)`` of a CPU gradient loop that also computes the loss
    (``loss_out``), run without its gradient outputs."""

    def __init__(self, loop):
        self.loop = loop

    def __call__(self, y, raw, weight, theta, out):
        return self.loop(y, raw, weight, theta, HESS_EXACT, None, None, out)


_LOOPS = {}
_LOCK = threading.Lock()


def loops_for(scalars):
    """The :class:`Loops` of a loss's slot functions (``Loss.scalars``), built once."""
    key = tuple(sorted((name, id(fn)) for name, fn in scalars.items()))
    with _LOCK:
        loops = _LOOPS.get(key)
        if loops is None:
            loops = _LOOPS[key] = Loops(scalars)
    return loops


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
