"""The gbloss losses: thin Python classes over the Numba kernels of :mod:`gbloss._kernels`.

Shapes decide the task:

============  ====================  ===========  ==========================================
task          ``y``                 ``raw``      losses
============  ====================  ===========  ==========================================
binary        (n,) in [0, 1]        (n,)         all
multiclass    (n,) ints 0..K-1      (n, K)       Focal, CrossEntropy, LogitAdjusted (softmax)
multi-label   (n, K) in [0, 1]      (n, K)       Focal, CrossEntropy, Asymmetric (per label)
============  ====================  ===========  ==========================================

Soft labels in [0, 1] work for the sigmoid (binary, multi-label) losses through the linear
mixture ``L = y L(z, 1) + (1 - y) L(z, 0)``.
"""

import copy
import numbers

import numpy as np
from scipy import optimize, special

from . import _kernels as K
from ._jit import default_threads, thread_limit

BINARY = "binary"
MULTICLASS = "multiclass"
MULTILABEL = "multilabel"
TASKS = (BINARY, MULTICLASS, MULTILABEL)

_HESSIAN_MODES = {"exact": K.HESS_EXACT, "psd": K.HESS_PSD, "gn": K.HESS_GN}
#: Bounds of the constant start: sigmoid(-30) ~ 1e-13. A class or label that never occurs has
#: its optimal start at -infinity; it gets the bound instead.
_START_BOUND = 30.0
_EMPTY = np.empty(0, dtype=np.float64)


def _check_nonnegative(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _as_float_array(name, values, ndim):
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    if arr.ndim not in ndim:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in ndim)}, "
                         f"got shape {arr.shape}")
    return arr


class Loss:
    """Base class: per-sample loss, boosting-ready gradient/Hessian, optimal start and link.

    Subclasses describe themselves through :meth:`_sigmoid_setup` and/or :meth:`_softmax_setup`,
    which return the kernel parameters; everything else is shared.

    Parameters
    ----------
    hessian : {"psd", "exact", "gn"}
        ``"psd"`` (default): ``max(exact, Gauss-Newton part)`` plus a ``1e-16`` floor, positive
        everywhere and equal to the exact Hessian near a well-fit optimum (loss-math.md 8).
        ``"exact"``: the true second derivative, negative for badly misclassified rows of the
        focal-type losses. ``"gn"``: the Gauss-Newton part only.
    """

    #: Tasks the loss supports, a subset of ``TASKS``.
    tasks = ()
    #: Constructor parameters besides ``hessian``, for get_params / to_dict.
    _param_names = ()

    def __init__(self, *, hessian="psd"):
        if hessian not in _HESSIAN_MODES:
            raise ValueError(f"hessian must be one of {sorted(_HESSIAN_MODES)}, got {hessian!r}")
        self.hessian = hessian

    # -- parameters -------------------------------------------------------------------------

    def get_params(self):
        """Constructor parameters as plain Python values (JSON-serialisable)."""
        params = {}
        for name in (*self._param_names, "hessian"):
            value = getattr(self, name)
            params[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return params

    def to_dict(self):
        """``{"name": class name, "params": get_params()}``; see :func:`gbloss.loss_from_dict`."""
        return {"name": type(self).__name__, "params": self.get_params()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_params() == other.get_params()

    def __hash__(self):
        return hash(repr(self))

    def __sklearn_clone__(self):
        """scikit-learn's ``clone`` copies a loss (a value): lets estimators take ``loss=`` and
        grid searches range over losses."""
        return copy.deepcopy(self)

    def prepare(self, y, sample_weight=None, n_classes=None):
        """Return the loss with statistics of the training labels fixed (priors of logit
        adjustment); the loss itself when it needs none."""
        return self

    # -- task and inputs --------------------------------------------------------------------

    def task_of(self, y, raw):
        """The task implied by the shapes of ``y`` and ``raw``; raises for unsupported ones."""
        y_ndim, raw_ndim = np.ndim(y), np.ndim(raw)
        if raw_ndim == 1 and y_ndim == 1:
            task = BINARY
        elif raw_ndim == 2 and y_ndim == 1:
            task = MULTICLASS
        elif raw_ndim == 2 and y_ndim == 2:
            task = MULTILABEL
        else:
            raise ValueError(
                f"cannot tell the task from y with shape {np.shape(y)} and raw with shape "
                f"{np.shape(raw)}: expected binary y (n,) with raw (n,), multiclass y (n,) with "
                f"raw (n, K), or multi-label y (n, K) with raw (n, K)")
        if task not in self.tasks:
            raise ValueError(f"{type(self).__name__} does not support {task} targets "
                             f"(y shape {np.shape(y)}, raw shape {np.shape(raw)}); it supports: "
                             f"{', '.join(self.tasks)}")
        if task == MULTICLASS and np.shape(raw)[1] < 2:
            raise ValueError(f"multiclass raw scores need at least 2 columns, got shape "
                             f"{np.shape(raw)}; for a binary target pass raw as a 1-D array")
        return task

    def _inputs(self, y, raw, sample_weight, check_input):
        raw = _as_float_array("raw", raw, (1, 2))
        if raw.dtype not in (np.float32, np.float64):
            raw = raw.astype(np.float64)
        y = _as_float_array("y", y, (1, 2))
        task = self.task_of(y, raw)
        if y.shape[0] != raw.shape[0] or (task == MULTILABEL and y.shape != raw.shape):
            raise ValueError(f"y and raw do not match: y has shape {y.shape}, raw has shape "
                             f"{raw.shape}")
        y = np.ascontiguousarray(y, dtype=np.float64)
        if check_input:
            if task == MULTICLASS:
                code = K.check_class_labels(y, raw.shape[1])
                expected = f"integer class labels in 0..{raw.shape[1] - 1}"
            else:
                code = K.check_unit_interval(y)
                expected = "labels in [0, 1] (0/1, or soft labels)"
            if code == K.CHECK_NAN:
                raise ValueError("y contains NaN")
            if code != K.CHECK_OK:
                raise ValueError(f"y must hold {expected} for {task} {type(self).__name__}; "
                                 f"got values in [{y.min()}, {y.max()}]")
        weight = _EMPTY
        if sample_weight is not None:
            weight = np.ascontiguousarray(
                _as_float_array("sample_weight", sample_weight, (1,)), dtype=np.float64)
            if weight.shape[0] != raw.shape[0]:
                raise ValueError(f"sample_weight has {weight.shape[0]} entries but raw has "
                                 f"{raw.shape[0]} rows")
            if check_input:
                code = K.check_weights(weight)
                if code == K.CHECK_NAN:
                    raise ValueError("sample_weight contains NaN")
                if code != K.CHECK_OK:
                    raise ValueError("sample_weight must be finite and >= 0")
        return task, y, raw, weight

    # -- the public contract ----------------------------------------------------------------

    def loss(self, y, raw, sample_weight=None, *, n_threads=None, check_input=True):
        """Per-sample loss values, shape (n,) (summed over labels for multi-label), times the
        sample weight when one is given."""
        with thread_limit(default_threads(np.size(raw)) if n_threads is None else n_threads):
            task, y, raw, weight = self._inputs(y, raw, sample_weight, check_input)
            out = np.empty(raw.shape[0], dtype=np.float64)
            if task == MULTICLASS:
                offset, alpha, gamma = self._softmax_setup(raw.shape[1], y)
                K.softmax_loss(y, raw, weight, offset, alpha, gamma, out)
            else:
                s = self._sigmoid_setup(1 if task == BINARY else raw.shape[1], y)
                K.sigmoid_loss(_as_2d(y), _as_2d(raw), weight, s.offset, s.a_pos, s.a_neg,
                               s.gamma_pos, s.gamma_neg, s.margin, out)
        return out

    def gradient_hessian(self, y, raw, sample_weight=None, *, out=None, n_threads=None,
                         check_input=True):
        """Gradient and Hessian (diagonal) of the loss with respect to ``raw``.

        Returns ``(grad, hess)`` with ``raw``'s shape and dtype (float32 stays float32; the
        math runs in float64). Sample weights multiply both inside the kernel. ``out`` takes a
        ``(grad, hess)`` pair of preallocated arrays, filled in place and returned.
        """
        with thread_limit(default_threads(np.size(raw)) if n_threads is None else n_threads):
            task, y, raw, weight = self._inputs(y, raw, sample_weight, check_input)
            grad, hess = _output_buffers(raw, out)
            mode = _HESSIAN_MODES[self.hessian]
            if task == MULTICLASS:
                offset, alpha, gamma = self._softmax_setup(raw.shape[1], y)
                K.softmax_gradient_hessian(y, raw, weight, offset, alpha, gamma, mode, grad, hess)
            elif task == BINARY:
                s = self._sigmoid_setup(1, y)
                K.binary_gradient_hessian(y, raw, weight, s.offset[0], s.a_pos[0], s.a_neg[0],
                                          s.gamma_pos, s.gamma_neg, s.margin, s.detached, mode,
                                          grad, hess)
            else:
                s = self._sigmoid_setup(raw.shape[1], y)
                K.sigmoid_gradient_hessian(y, raw, weight, s.offset, s.a_pos, s.a_neg,
                                           s.gamma_pos, s.gamma_neg, s.margin, s.detached, mode,
                                           grad, hess)
        return grad, hess

    def init_score(self, y, sample_weight=None, n_classes=None):
        """The constant raw score minimising the (weighted) total loss.

        A float for binary targets, an array (K,) for multiclass (normalised so that
        ``logsumexp(start) = 0``; with cross-entropy this is the log of the class frequencies)
        and for multi-label (one per label). ``n_classes`` fixes K for multiclass labels when
        the highest classes may be absent from ``y``.
        """
        y = _as_float_array("y", y, (1, 2))
        if y.ndim == 2:
            task = self.task_of(y, np.empty((0, y.shape[1])))
            n_out = y.shape[1]
        elif MULTICLASS in self.tasks and (n_classes is not None or np.nanmax(y) > 1):
            n_out = int(n_classes) if n_classes is not None else int(np.nanmax(y)) + 1
            task = MULTICLASS
        else:
            task, n_out = BINARY, 1
        raw_shape = (y.shape[0],) if task == BINARY else (y.shape[0], n_out)
        # one validation pass through the same checks as gradient_hessian
        _, y, _, weight = self._inputs(y, np.empty(raw_shape), sample_weight, True)
        if task == MULTICLASS:
            return self._softmax_start(y, weight, n_out)
        starts = np.array([self._sigmoid_start(k, _as_2d(y), weight, n_out) for k in range(n_out)])
        return float(starts[0]) if task == BINARY else starts

    def predict_proba(self, raw, task=None):
        """Raw scores to probabilities through the loss's link.

        1-D raw: ``P(y=1)`` per row. 2-D raw: softmax class probabilities, or per-label sigmoid
        probabilities for multi-label (``task="multilabel"``; the default for losses without a
        softmax form).
        """
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 1:
            s = self._sigmoid_setup(1, None)
            return special.expit(raw + s.offset[0])
        if raw.ndim != 2:
            raise ValueError(f"raw must be 1-D or 2-D, got shape {raw.shape}")
        if task is None:
            task = MULTICLASS if MULTICLASS in self.tasks else MULTILABEL
        if task not in self.tasks or task == BINARY:
            raise ValueError(f"task must be one of {[t for t in self.tasks if t != BINARY]} "
                             f"for 2-D raw scores with {type(self).__name__}, got {task!r}")
        if task == MULTICLASS:
            return special.softmax(raw + self._softmax_offset(raw.shape[1]), axis=1)
        return special.expit(raw + self._sigmoid_setup(raw.shape[1], None).offset)

    def decision_scores(self, raw):
        """Scores whose argmax (or sign, for binary) is the loss's decision rule: the raw scores
        themselves, except for logit adjustment (balanced-error rule)."""
        return np.asarray(raw, dtype=np.float64)

    # -- optimal start ----------------------------------------------------------------------

    def _sigmoid_start(self, k, y, weight, n_out):
        """Minimise ``A P(b) + B N(b)`` over the constant b for output k, where A and B are the
        weighted sums of y and 1-y (the loss is linear in y)."""
        col = y[:, k]
        # elementwise sums, not np.dot: a BLAS call leaves OpenBLAS's threads spinning for
        # about 0.1 s, which slowed the engine's first round by 60 ms (500k rows, 2 cores)
        neg = 1.0 - col
        mass = (np.array([np.sum(weight * col), np.sum(weight * neg)]) if weight.shape[0] else
                np.array([np.sum(col), np.sum(neg)]))
        if mass[0] <= 0:
            return -_START_BOUND
        if mass[1] <= 0:
            return _START_BOUND
        s = self._sigmoid_setup(n_out, y)
        args = (s.offset[k:k + 1], s.a_pos[k:k + 1], s.a_neg[k:k + 1], s.gamma_pos,
                s.gamma_neg, s.margin)
        labels = np.array([[1.0], [0.0]])

        def total(b):  # at every point of the array b, in one kernel call
            b = np.asarray(b, dtype=np.float64)
            raw = np.repeat(b.reshape(-1, 1), 2, axis=0)
            out = np.empty(raw.shape[0])
            K.sigmoid_loss(np.tile(labels, (b.size, 1)), raw, np.tile(mass, b.size), *args, out)
            return out.reshape(-1, 2).sum(axis=1)

        def slope(b):  # the loss's own derivative, also for the detached ASL gradient
            g, h = np.empty((2, 1)), np.empty((2, 1))
            K.sigmoid_gradient_hessian(labels, np.full((2, 1), b), mass, *args, False,
                                       K.HESS_EXACT, g, h)
            return g.sum()

        with thread_limit(1):
            return _minimise_1d(total, slope)

    def _softmax_start(self, y, weight, n_class):
        counts = np.bincount(y.astype(np.intp), weights=weight if weight.shape[0] else None,
                             minlength=n_class).astype(np.float64)
        offset, alpha, gamma = self._softmax_setup(n_class, y)
        mass = counts * alpha
        if not np.any(mass > 0):
            raise ValueError("y has no class with positive weight; cannot compute the start")
        # cross-entropy optimum: softmax(b + offset) = class mass shares (exact when gamma = 0)
        start = np.log(np.maximum(mass, 1e-300)) - offset
        start = np.clip(start - special.logsumexp(start), -_START_BOUND, None)
        if gamma > 0:
            labels = np.arange(n_class, dtype=np.float64)
            ones = np.ones(n_class)

            def total_and_grad(b):
                raw = np.repeat(b[None, :], n_class, axis=0)
                loss, g, h = np.empty(n_class), np.empty_like(raw), np.empty_like(raw)
                K.softmax_loss(labels, raw, counts, offset, alpha, gamma, loss)
                K.softmax_gradient_hessian(labels, raw, counts, offset, alpha, gamma,
                                           K.HESS_EXACT, g, h)
                return loss.sum(), g.sum(axis=0)

            scale = mass.sum()
            with thread_limit(1):
                res = optimize.minimize(lambda b: tuple(v / scale for v in total_and_grad(b)),
                                        start, jac=True, method="L-BFGS-B",
                                        bounds=[(-_START_BOUND, _START_BOUND)] * n_class,
                                        options={"gtol": 1e-13, "ftol": 1e-15, "maxiter": 500})
            start = res.x - special.logsumexp(res.x) * ones
        return start

    # -- to be provided by subclasses -------------------------------------------------------

    def _sigmoid_setup(self, n_out, y):
        raise NotImplementedError

    def _softmax_setup(self, n_class, y):
        raise NotImplementedError

    def _softmax_offset(self, n_class):
        """The link's shift of the raw scores (K,): ``softmax(raw + offset)``."""
        return self._softmax_setup(n_class, None)[0]


class _SigmoidSetup:
    """Kernel parameters of a sigmoid loss for ``n_out`` outputs."""

    __slots__ = ("offset", "a_pos", "a_neg", "gamma_pos", "gamma_neg", "margin", "detached")

    def __init__(self, n_out, *, a_pos=1.0, a_neg=1.0, gamma_pos=0.0, gamma_neg=0.0, margin=0.0,
                 detached=False, offset=0.0):
        self.offset = _per_output(offset, n_out, "offset")
        self.a_pos = _per_output(a_pos, n_out, "alpha")
        self.a_neg = _per_output(a_neg, n_out, "alpha")
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.margin = float(margin)
        self.detached = bool(detached)


def _per_output(value, n_out, name):
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n_out, float(arr))
    if arr.shape != (n_out,):
        raise ValueError(f"{name} has {arr.size} entries but the target has {n_out} "
                         f"{'classes' if name != 'offset' else 'outputs'}")
    return np.ascontiguousarray(arr)


def _as_2d(a):
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _output_buffers(raw, out):
    if out is None:
        return np.empty_like(raw), np.empty_like(raw)
    try:
        grad, hess = out
    except (TypeError, ValueError):
        raise ValueError("out must be a (grad, hess) pair of arrays") from None
    for name, buf in (("grad", grad), ("hess", hess)):
        if not isinstance(buf, np.ndarray) or buf.shape != raw.shape \
                or buf.dtype not in (np.float32, np.float64) or not buf.flags.writeable:
            raise ValueError(f"out {name} buffer must be a writeable float32/float64 array of "
                             f"shape {raw.shape}")
    return grad, hess


def _minimise_1d(total, slope):
    """Global minimum of a smooth 1-D function on [-30, 30]: grid, then a root of the slope.

    ``total`` maps an array of points to the function's values there."""
    grid = np.linspace(-_START_BOUND, _START_BOUND, 241)
    values = total(grid)
    j = int(np.argmin(values))
    lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
    s_lo, s_hi = slope(lo), slope(hi)
    if s_lo < 0 < s_hi:
        return optimize.brentq(slope, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    return float(grid[j])


def _check_alpha(alpha, name="alpha"):
    """None, a scalar in [0, 1] or a 1-D sequence of values in [0, 1]."""
    if alpha is None:
        return None
    arr = np.asarray(alpha, dtype=np.float64) if not isinstance(alpha, str) else None
    if arr is None or arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be None, a number in [0, 1] or a 1-D sequence of them, "
                         f"got {alpha!r}")
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"{name} must lie in [0, 1], got {alpha!r}")
    return float(arr) if arr.ndim == 0 else arr


class FocalLoss(Loss):
    r"""Focal loss (Lin et al. 2017): ``-alpha_t (1 - p_t)^gamma log p_t``.

    Domain: binary ``y`` in [0, 1]; multiclass (softmax); multi-label (per-label sigmoid).
    Link: sigmoid (binary, multi-label) or softmax (multiclass).
    Gradient/Hessian: the focal core ``f(t) = -q^g log p`` at the correct-class margin ``t``
    (loss-math.md sections 2-3); the Hessian policy of :class:`Loss`.
    Reduces to: cross-entropy at ``gamma=0``.

    Parameters
    ----------
    gamma : float >= 0
        Focusing parameter; 2.0 in the paper.
    alpha : None, float in [0, 1], or sequence
        Binary and multi-label: weight of the positive class (``1 - alpha`` for negatives), a
        scalar or one per label; the paper uses 0.25 with gamma=2. Multiclass: one weight per
        class, ``alpha_y``. ``None``: unweighted (note ``alpha=0.5`` is half the unweighted loss).
    hessian : {"psd", "exact", "gn"}
        See :class:`Loss`.
    """

    tasks = (BINARY, MULTICLASS, MULTILABEL)
    _param_names = ("gamma", "alpha")

    def __init__(self, gamma=2.0, alpha=None, *, hessian="psd"):
        super().__init__(hessian=hessian)
        self.gamma = _check_nonnegative("gamma", gamma)
        alpha = _check_alpha(alpha)
        self.alpha = alpha

    def _sigmoid_setup(self, n_out, y):
        alpha = self.alpha
        if alpha is None:
            return _SigmoidSetup(n_out, gamma_pos=self.gamma, gamma_neg=self.gamma)
        alpha = _per_output(alpha, n_out, "alpha")
        return _SigmoidSetup(n_out, a_pos=alpha, a_neg=1.0 - alpha, gamma_pos=self.gamma,
                             gamma_neg=self.gamma)

    def _softmax_setup(self, n_class, y):
        if self.alpha is None:
            alpha = np.ones(n_class)
        elif np.ndim(self.alpha) == 0:
            raise ValueError("for multiclass targets alpha must hold one weight per class "
                             f"({n_class} values), got the scalar {self.alpha!r}")
        else:
            alpha = _per_output(self.alpha, n_class, "alpha")
        return np.zeros(n_class), alpha, self.gamma

    def _softmax_offset(self, n_class):
        return np.zeros(n_class)  # alpha weights the loss, not the link


class CrossEntropyLoss(FocalLoss):
    """Cross-entropy (log-loss): binary, softmax multiclass and per-label multi-label.

    The plain baseline; identical to ``FocalLoss(gamma=0)``. Its Hessian ``p(1-p)`` (softmax:
    ``p_k(1-p_k)``) is exact and positive; ``hessian="psd"`` only adds the 1e-16 floor.
    ``alpha`` as in :class:`FocalLoss` gives weighted cross-entropy.
    """

    _param_names = ("alpha",)

    def __init__(self, alpha=None, *, hessian="psd"):
        super().__init__(gamma=0.0, alpha=alpha, hessian=hessian)


class AsymmetricLoss(Loss):
    r"""Asymmetric loss, ASL (Ridnik et al. 2021), binary and per-label multi-label.

    ``L = -y (1-p)^{g+} log p - (1-y) p_m^{g-} log(1 - p_m)``, ``p_m = max(p - clip, 0)``.

    Domain: ``y`` in [0, 1], 1-D (binary) or 2-D (multi-label). Link: sigmoid.
    Gradient: exact by default. ``gradient="detached"`` reproduces the official code
    (``disable_torch_grad_focal_loss=True``, used by its ``train.py``): the focusing weights
    ``(1-p)^{g+}`` and ``p_m^{g-}`` are treated as constants; its Hessian is the total
    derivative of that gradient field (loss-math.md 4.3). Unlike the official code there is no
    ``eps=1e-8`` clamp inside the logs, which zeroes the gradient of badly wrong positives.
    Reduces to: focal loss (``alpha=None``) when ``gamma_pos == gamma_neg`` and ``clip == 0``.

    Parameters
    ----------
    gamma_pos, gamma_neg : float >= 0
        Focusing parameters of positives and negatives (paper: 0 and 4).
    clip : float in [0, 1)
        Probability margin m (paper: 0.05); negatives with ``p <= clip`` have zero loss.
    gradient : {"exact", "detached"}
    hessian : {"psd", "exact", "gn"}
        See :class:`Loss`. The PSD policy of the negative part is
        ``max(exact, p_m^{g-} (pq)^2 / (1 - p_m)^2)`` (loss-math.md 8.2).
    """

    tasks = (BINARY, MULTILABEL)
    _param_names = ("gamma_pos", "gamma_neg", "clip", "gradient")

    def __init__(self, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, *, gradient="exact",
                 hessian="psd"):
        super().__init__(hessian=hessian)
        self.gamma_pos = _check_nonnegative("gamma_pos", gamma_pos)
        self.gamma_neg = _check_nonnegative("gamma_neg", gamma_neg)
        clip = _check_nonnegative("clip", clip)
        if not clip < 1:
            raise ValueError(f"clip must lie in [0, 1), got {clip!r}")
        self.clip = clip
        if gradient not in ("exact", "detached"):
            raise ValueError(f"gradient must be 'exact' or 'detached', got {gradient!r}")
        self.gradient = gradient

    def _sigmoid_setup(self, n_out, y):
        return _SigmoidSetup(n_out, gamma_pos=self.gamma_pos, gamma_neg=self.gamma_neg,
                             margin=self.clip, detached=self.gradient == "detached")


class LogitAdjustedLoss(Loss):
    r"""Logit-adjusted cross-entropy (Menon et al. 2021), binary and softmax multiclass.

    ``L = CE(softmax(z + tau log pi), y)``; binary: ``BCE(sigmoid(z + tau log(pi_1/pi_0)), y)``.

    Domain: binary ``y`` in [0, 1] or multiclass labels. Link: ``softmax(z + tau log pi)``,
    which estimates P(y | x) under the training distribution. :meth:`decision_scores` returns
    ``z`` itself, whose argmax is the balanced-error rule of the paper.
    Post-hoc variant (``posthoc=True``): train with plain cross-entropy, and take the decision
    scores ``z - tau log pi``; :meth:`predict_proba` is then ``softmax(z)``.
    Reduces to: cross-entropy at ``tau=0``.

    Parameters
    ----------
    tau : float >= 0
        Temperature of the adjustment (paper: 1).
    priors : None or sequence of K class probabilities (K=2 for binary: ``(pi_0, pi_1)``)
        ``None``: the class frequencies of the training labels, fixed by :meth:`prepare`
        (which the gbloss wrappers call); until then each call estimates them from its ``y``.
    posthoc : bool
    """

    tasks = (BINARY, MULTICLASS)
    _param_names = ("tau", "priors", "posthoc")

    def __init__(self, tau=1.0, priors=None, *, posthoc=False, hessian="psd"):
        super().__init__(hessian=hessian)
        self.tau = _check_nonnegative("tau", tau)
        self.priors = None if priors is None else _check_priors(priors)
        self.posthoc = bool(posthoc)

    def prepare(self, y, sample_weight=None, n_classes=None):
        """A copy with ``priors`` set to the class frequencies of ``y`` (when not given)."""
        if self.priors is not None:
            return self
        return self.with_priors(class_frequencies(y, n_classes))

    def with_priors(self, priors):
        new = copy.copy(self)
        new.priors = _check_priors(priors)
        return new

    def _log_priors(self, n_class, y):
        priors = self.priors
        if priors is None:
            if y is None:
                raise ValueError("LogitAdjustedLoss(priors=None) has not seen training labels: "
                                 "call loss.prepare(y_train) or pass priors=")
            priors = class_frequencies(y.ravel(), n_class)
        if len(priors) != n_class:
            raise ValueError(f"priors has {len(priors)} entries but the target has {n_class} "
                             "classes (binary targets take (pi_0, pi_1))")
        return np.log(priors)

    def _adjustment(self, n_class, y):
        """``tau log pi`` (K,), or for binary the scalar ``tau log(pi_1 / pi_0)``."""
        log_pi = self._log_priors(n_class if n_class > 1 else 2, y)
        adj = self.tau * log_pi
        return adj if n_class > 1 else adj[1] - adj[0]

    def _sigmoid_setup(self, n_out, y):
        return _SigmoidSetup(n_out, offset=0.0 if self.posthoc else self._adjustment(1, y))

    def _softmax_setup(self, n_class, y):
        offset = np.zeros(n_class) if self.posthoc else self._adjustment(n_class, y)
        return offset, np.ones(n_class), 0.0

    def decision_scores(self, raw):
        raw = np.asarray(raw, dtype=np.float64)
        if not self.posthoc:
            return raw
        return raw - self._adjustment(1 if raw.ndim == 1 else raw.shape[1], None)


def _check_priors(priors):
    arr = np.asarray(priors, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(arr <= 0) \
            or abs(arr.sum() - 1.0) > 1e-6:
        raise ValueError("priors must be a distribution: a 1-D sequence of at least 2 positive "
                         f"class probabilities summing to 1, got {priors!r}")
    return arr / arr.sum()


def class_frequencies(y, n_classes=None):
    """Relative frequencies of the labels ``0..K-1`` (at least two classes); soft binary labels
    in [0, 1] give ``(1 - mean, mean)``."""
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size == 0 or np.isnan(y).any() or np.any(y < 0):
        raise ValueError("y must be a non-empty vector of labels 0..K-1 (no NaN) to estimate "
                         "class priors")
    if np.all(y == np.floor(y)):
        counts = np.bincount(y.astype(np.intp), minlength=n_classes or 2)
        freq = counts / counts.sum()
    elif n_classes in (None, 2) and np.all(y <= 1):
        freq = np.array([1.0 - y.mean(), y.mean()])
    else:
        raise ValueError("y must hold integer class labels 0..K-1 (or soft binary labels in "
                         "[0, 1]) to estimate class priors")
    if np.any(freq <= 0):
        raise ValueError("every class needs at least one training label to estimate priors; "
                         f"class frequencies are {freq.tolist()}")
    return freq


LOSSES = {cls.__name__: cls for cls in (FocalLoss, CrossEntropyLoss, AsymmetricLoss,
                                        LogitAdjustedLoss)}


def loss_from_dict(spec):
    """Rebuild a loss from :meth:`Loss.to_dict` output."""
    try:
        cls = LOSSES[spec["name"]]
    except (KeyError, TypeError):
        raise ValueError(f"not a gbloss loss description: {spec!r}") from None
    return cls(**spec["params"])
