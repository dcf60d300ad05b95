"""The loss protocol: :class:`Loss`, :class:`LabelStats` and the registry.

A loss is one module (``gbloss/losses/<name>.py``): scalar functions for the row loops of its
link (:mod:`gbloss.losses._loops`), and a :class:`Loss` subclass that declares its parameters,
tasks, kernel parameters, start, calibration, engine defaults and ``compare`` grid. Everything
else in gbloss (engine adapters, estimators, calibration, ``compare``) uses only the public
methods below, so a loss registered with :func:`register` works everywhere.

Shapes of the public array methods:

============  ====================  ===========
task          ``y``                 ``raw``
============  ====================  ===========
binary        (n,) in [0, 1]        (n,)
multiclass    (n,) ints 0..K-1      (n, K)
multi-label   (n, K) in [0, 1]      (n, K)
============  ====================  ===========

Soft labels in [0, 1] work for the sigmoid (binary, multi-label) losses through the linear
mixture ``L = y L(z, 1) + (1 - y) L(z, 0)``.
"""

import copy
import dataclasses
import numbers

import numpy as np
from scipy import optimize, special

from .._jit import default_threads, thread_limit
from . import _loops
from .primitives import HESS_EXACT, HESS_GN, HESS_PSD

BINARY = "binary"
MULTICLASS = "multiclass"
MULTILABEL = "multilabel"
TASKS = (BINARY, MULTICLASS, MULTILABEL)

HESSIAN_MODES = {"exact": HESS_EXACT, "psd": HESS_PSD, "gn": HESS_GN}
#: Bounds of the constant start: sigmoid(-30) ~ 1e-13. A class or label without weight has its
#: optimal start at -infinity; it gets the bound instead.
START_BOUND = 30.0
#: Engine defaults of losses whose Hessians are tiny for well-classified rows (focusing,
#: clipping), keyed by estimator parameter name (derivations section 8.4).
SMALL_HESSIAN_DEFAULTS = {
    "xgboost": {"min_child_weight": 1e-3, "max_delta_step": 1.0},
    "lightgbm": {"min_child_weight": 1e-3, "max_delta_step": 1.0, "reg_lambda": 1e-3},
}
_EMPTY = np.empty(0, dtype=np.float64)

# ------------------------------------------------------------------------------------------------
# Parameter validation: strict types, messages that name the parameter


def check_real(name, value, *, low=None, high=None, low_open=False, high_open=False):
    """A finite real number (not a bool or a string) within the given bounds, as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    value = float(value)
    too_low = low is not None and (value < low or (low_open and value == low))
    too_high = high is not None and (value > high or (high_open and value == high))
    if too_low or too_high:
        if too_high and low is not None:
            left, right = "(" if low_open else "[", ")" if high_open else "]"
            bounds = f"lie in {left}{low:g}, {high:g}{right}"
        elif too_low:
            bounds = f"be {'>' if low_open else '>='} {low:g}"
        else:
            bounds = f"be {'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must {bounds}, got {value!r}")
    return value


def check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_bool(name, value):
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def frozen_array(name, values, *, ndim=1):
    """A read-only float64 copy of a numeric array parameter (the loss owns it)."""
    if isinstance(values, str | bytes) or (np.ndim(values) == 0 and isinstance(values, bool)):
        raise ValueError(f"{name} must be a numeric array, got {values!r}")
    arr = np.asarray(values)
    if arr.dtype.kind not in "iuf" or arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D numeric sequence, got {values!r}")
    arr = np.array(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must hold finite numbers, got {values!r}")
    arr.flags.writeable = False
    return arr


def check_unit_weights(name, value):
    """None, a number in [0, 1] (a float) or a 1-D sequence of them (a read-only array)."""
    if value is None:
        return None
    expected = f"{name} must be None, a number in [0, 1] or a 1-D sequence of them"
    try:
        if np.ndim(value) == 0:
            value = check_real(name, value)
        else:
            arr = frozen_array(name, value)
    except ValueError:
        raise ValueError(f"{expected}, got {value!r}") from None
    if np.ndim(value) == 0:
        return check_real(name, value, low=0.0, high=1.0)
    if np.any((arr < 0) | (arr > 1)):
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return arr


def per_output(value, n_out, name):
    """A scalar parameter broadcast to ``n_out`` outputs, or a sequence checked against it."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n_out, float(arr))
    if arr.shape != (n_out,):
        raise ValueError(f"{name} has {arr.size} entries but the target has {n_out} "
                         f"{'classes' if name != 'offset' else 'outputs'}")
    return np.ascontiguousarray(arr)


def _as_float_array(name, values, ndim):
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
    if arr.ndim not in ndim:
        raise ValueError(f"{name} must be {' or '.join(f'{d}-D' for d in ndim)}, "
                         f"got shape {arr.shape}")
    return arr


# ------------------------------------------------------------------------------------------------
# Label statistics


@dataclasses.dataclass(frozen=True, eq=False)
class LabelStats:
    """What a loss may need from its training labels: sufficient statistics that add up over
    data partitions (:meth:`total`, for Dask).

    ``counts`` (unweighted) and ``masses`` (weighted by the sample weights): binary (2,)
    ``[sum(1 - y), sum(y)]``; multiclass (K,) per class; multi-label (K, 2) per label
    ``[sum(1 - y), sum(y)]``.
    """

    task: str
    counts: np.ndarray
    masses: np.ndarray

    @property
    def n_outputs(self):
        """1 for binary targets, K otherwise."""
        return 1 if self.task == BINARY else self.counts.shape[0]

    @classmethod
    def from_labels(cls, task, y, sample_weight=None, n_outputs=None):
        """Statistics of labels ``y`` in the loss's shape for ``task`` (validated: labels in the
        task's domain, weights finite and >= 0); ``n_outputs`` fixes K of a multiclass target
        whose highest classes may be absent (default: the largest label + 1)."""
        if task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
        y = np.ascontiguousarray(_as_float_array("y", y, (2,) if task == MULTILABEL else (1,)),
                                 dtype=np.float64)
        weight = _check_weights(sample_weight, y.shape[0])
        w = weight if weight.shape[0] else None
        if task == MULTICLASS:
            if y.size and np.isnan(y).any():
                raise ValueError("y contains NaN")
            k = int(n_outputs) if n_outputs is not None else \
                (int(np.max(y)) + 1 if y.size else 0)
            code = _loops.check_class_labels(y, k)
            if code != _loops.CHECK_OK or k < 2:
                raise ValueError(f"y must hold integer class labels in 0..{max(k, 2) - 1} for a "
                                 f"multiclass target with {max(k, 2)} classes; got values in "
                                 f"[{np.min(y) if y.size else 'none'}, "
                                 f"{np.max(y) if y.size else 'none'}]")
            idx = y.astype(np.intp)
            counts = np.bincount(idx, minlength=k).astype(np.float64)
            masses = counts if w is None else np.bincount(idx, weights=w, minlength=k)
            return cls(task, counts, np.asarray(masses, dtype=np.float64))
        _check_unit(y, task)
        y2 = y.reshape(y.shape[0], -1)
        # elementwise sums, not BLAS: a BLAS call leaves OpenBLAS's threads spinning for about
        # 0.1 s, which slowed the engine's first round by 60 ms (500k rows, 2 cores)
        pos = y2.sum(axis=0)
        counts = np.stack([y2.shape[0] - pos, pos], axis=1)
        if w is None:
            masses = counts
        else:
            wpos = (w[:, None] * y2).sum(axis=0)
            masses = np.stack([w.sum() - wpos, wpos], axis=1)
        if task == BINARY:
            counts, masses = counts[0], masses[0]
        return cls(task, counts, masses)

    @classmethod
    def total(cls, parts):
        """The statistics of the union of partitions (element-wise sums)."""
        parts = list(parts)
        if not parts:
            raise ValueError("no label statistics to add up")
        task, shape = parts[0].task, parts[0].counts.shape
        for part in parts:
            if part.task != task or part.counts.shape != shape:
                raise ValueError(f"label statistics do not match: {task} {shape} and "
                                 f"{part.task} {part.counts.shape}")
        return cls(task, sum(p.counts for p in parts), sum(p.masses for p in parts))


def _check_unit(y, task):
    code = _loops.check_unit_interval(y)
    if code == _loops.CHECK_NAN:
        raise ValueError("y contains NaN")
    if code != _loops.CHECK_OK:
        raise ValueError(f"y must hold labels in [0, 1] (0/1, or soft labels) for a {task} "
                         f"target; got values in [{y.min()}, {y.max()}]")


def _check_weights(sample_weight, n_rows):
    if sample_weight is None:
        return _EMPTY
    weight = np.ascontiguousarray(_as_float_array("sample_weight", sample_weight, (1,)),
                                  dtype=np.float64)
    if weight.shape[0] != n_rows:
        raise ValueError(f"sample_weight has {weight.shape[0]} entries but raw has {n_rows} rows")
    code = _loops.check_weights(weight)
    if code == _loops.CHECK_NAN:
        raise ValueError("sample_weight contains NaN")
    if code != _loops.CHECK_OK:
        raise ValueError("sample_weight must be finite and >= 0")
    return weight


def check_degenerate(stats):
    """One rule for every task: the total weight must be positive, and a binary or multiclass
    target needs weight in at least two classes. A class or a multi-label column without weight
    is allowed (its start is the bound ``-START_BOUND``)."""
    masses = stats.masses.reshape(-1, 2) if stats.task != MULTICLASS else stats.masses
    total = masses.sum() if stats.task == MULTICLASS else masses[0].sum()
    if not total > 0:
        raise ValueError("the training labels have zero total weight (every sample_weight is 0 "
                         "or there are no rows): nothing to fit")
    if stats.task != MULTILABEL and np.count_nonzero(stats.masses > 0) < 2:
        classes = "class" if stats.task == MULTICLASS else "label value (0 or 1)"
        raise ValueError(f"the training labels have weight in only one {classes} (weighted "
                         f"class masses {np.round(stats.masses, 6).tolist()}): a classifier "
                         "needs weight in at least two classes")


# ------------------------------------------------------------------------------------------------
# The loss protocol


class Loss:
    """Base class of the gbloss losses: per-sample loss, boosting-ready gradient and Hessian,
    optimal start, link, calibration, and what the engines need to know.

    A subclass (one module, see ``docs/architecture.md``) provides

    * ``scalars``: its slot functions for the loops of its link(s) (:mod:`~gbloss.losses._loops`);
    * ``tasks``, ``parameters`` (constructor parameter names besides ``hessian``, validated in
      its ``__init__``) and :meth:`kernel_params`;
    * optionally :meth:`link_offset`, :meth:`_prepare` and ``is_prepared``, :meth:`is_proper`
      and :meth:`_calibrated_softmax`, :meth:`_small_hessian`, :meth:`_softmax_start_guess`,
      :meth:`decision_scores`, and the ``compare`` attributes ``key``, ``description``,
      ``grid``, ``fixed``, ``compare_select``, ``compare_by_default``.

    Parameters
    ----------
    hessian : {"psd", "exact", "gn"}
        ``"psd"`` (default): ``max(exact, curvature)`` plus a ``1e-16`` floor, positive
        everywhere and equal to the exact Hessian near a well-fit optimum (derivations
        section 8). ``"exact"``: the true second derivative, negative for badly misclassified
        rows of the focal-type losses. ``"gn"``: the positive curvature alone.
    """

    #: Tasks the loss supports, a subset of ``TASKS``.
    tasks = ()
    #: Constructor parameters besides ``hessian``, for get_params / to_dict.
    parameters = ()
    #: Slot name -> scalar function (see :mod:`gbloss.losses._loops`).
    scalars = {}
    #: ``gbloss compare``: command-line key, description, grid searched in each training fold,
    #: values used with ``--no-grid``, and the metric that picks grid values.
    key = None
    description = None
    grid = {}
    fixed = {}
    compare_select = None
    #: Whether ``gbloss compare`` runs the loss without ``--losses`` naming it (declared by the
    #: class itself; a subclass does not inherit it).
    compare_by_default = False

    def __init__(self, *, hessian="psd"):
        self.hessian = check_choice("hessian", hessian, HESSIAN_MODES)

    # -- parameters -------------------------------------------------------------------------

    def get_params(self):
        """Constructor parameters as plain Python values (JSON-serialisable)."""
        params = {}
        for name in (*self.parameters, "hessian"):
            value = getattr(self, name)
            params[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return params

    def to_dict(self):
        """``{"name": class name, "params": get_params()}``; see :func:`loss_from_dict`."""
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

    # -- what the loss needs from the training labels ---------------------------------------

    @property
    def is_prepared(self):
        """False while the loss still needs statistics of the training labels."""
        return True

    def prepare(self, y, sample_weight=None, n_classes=None):
        """The loss with the statistics it needs from the training labels fixed (a copy), or
        the loss itself when it needs none. ``y``: a :class:`LabelStats`, or labels as for
        :meth:`init_score`. Use it as ``loss = loss.prepare(y_train)``."""
        stats = y if isinstance(y, LabelStats) else self._stats(y, sample_weight, n_classes)
        if stats.task not in self.tasks:
            raise ValueError(f"{type(self).__name__} does not support {stats.task} targets")
        return self._prepare(stats)

    def _prepare(self, stats):
        return self

    def _require_prepared(self):
        if not self.is_prepared:
            raise ValueError(f"{self!r} has not seen training labels: prepare it first, "
                             "loss = loss.prepare(y_train) (the gbloss engines and estimators "
                             "do this for you)")

    def _stats(self, y, sample_weight, n_classes):
        """Label statistics of ``y`` for the task ``y`` implies (see :meth:`init_score`)."""
        y = _as_float_array("y", y, (1, 2))
        if y.ndim == 2:
            task = MULTILABEL
        elif MULTICLASS in self.tasks and (n_classes is not None
                                           or (y.size and np.nanmax(y) > 1)):
            task = MULTICLASS
        else:
            task = BINARY
        if task not in self.tasks:
            raise ValueError(f"{type(self).__name__} does not support {task} targets "
                             f"(y shape {y.shape}); it supports: {', '.join(self.tasks)}")
        return LabelStats.from_labels(task, y, sample_weight,
                                      n_classes if task == MULTICLASS else None)

    # -- kernel parameters (per subclass) ---------------------------------------------------

    def kernel_params(self, task, n_out):
        """The ``theta`` tuple the slot functions receive, for ``n_out`` outputs (1: binary)."""
        return ()

    def loss_params(self, task, n_out):
        """The kernel parameters whose gradient is the derivative of the loss itself, for the
        start's minimisation: :meth:`kernel_params`, except for losses trained with another
        gradient field (ASL's detached gradient)."""
        return self.kernel_params(task, n_out)

    def link_offset(self, task, n_out):
        """Shift of the raw scores inside the link, ``link(raw + offset)`` (zeros but for logit
        adjustment)."""
        return np.zeros(n_out)

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
                code = _loops.check_class_labels(y, raw.shape[1])
                if code == _loops.CHECK_NAN:
                    raise ValueError("y contains NaN")
                if code != _loops.CHECK_OK:
                    raise ValueError(f"y must hold integer class labels in "
                                     f"0..{raw.shape[1] - 1} for multiclass "
                                     f"{type(self).__name__}; got values in "
                                     f"[{y.min()}, {y.max()}]")
            else:
                _check_unit(y, task)
        weight = _check_weights(sample_weight, raw.shape[0]) if check_input else (
            _EMPTY if sample_weight is None else
            np.ascontiguousarray(sample_weight, dtype=np.float64))
        if weight.shape[0] not in (0, raw.shape[0]):
            raise ValueError(f"sample_weight has {weight.shape[0]} entries but raw has "
                             f"{raw.shape[0]} rows")
        return task, y, raw, weight

    def _ready(self, task, y, n_out):
        """This loss, or a copy prepared on ``y`` when it still needs label statistics (each
        call then estimates them from its own labels)."""
        if self.is_prepared:
            return self
        return self._prepare(LabelStats.from_labels(
            task, y, None, n_out if task == MULTICLASS else None))

    # -- the public array contract ----------------------------------------------------------

    def loss(self, y, raw, sample_weight=None, *, n_threads=None, check_input=True):
        """Per-sample loss values, shape (n,) (summed over labels for multi-label), times the
        sample weight when one is given."""
        with thread_limit(default_threads(np.size(raw)) if n_threads is None else n_threads):
            task, y, raw, weight = self._inputs(y, raw, sample_weight, check_input)
            n_out = 1 if raw.ndim == 1 else raw.shape[1]
            loss = self._ready(task, y, n_out)
            loops = _loops.loops_for(loss.scalars)
            theta = loss.kernel_params(task, n_out)
            if task == MULTICLASS:
                out = np.empty(raw.shape[0])
                _raise_bad(loops.softmax_loss(y, raw, weight, theta, out))
                return out
            out = np.empty((raw.shape[0], n_out))
            _raise_bad(loops.sigmoid_loss(_as_2d(y), _as_2d(raw), weight, theta, out))
        return out.sum(axis=1) if n_out > 1 else out[:, 0]

    def gradient_hessian(self, y, raw, sample_weight=None, *, out=None, n_threads=None,
                         check_input=True):
        """Gradient and Hessian (diagonal) of the loss with respect to ``raw``.

        Returns ``(grad, hess)`` with ``raw``'s shape and dtype (float32 stays float32; the
        math runs in float64). Sample weights multiply both inside the kernel. ``out`` takes a
        ``(grad, hess)`` pair of preallocated arrays, filled in place and returned.
        ``check_input=False`` skips the label and weight checks (the engines validate once);
        labels that would index out of bounds and non-finite raw scores are refused either way.
        """
        with thread_limit(default_threads(np.size(raw)) if n_threads is None else n_threads):
            task, y, raw, weight = self._inputs(y, raw, sample_weight, check_input)
            grad, hess = _output_buffers(raw, out)
            run, theta, mode = self._kernel(task, y, raw)
            _raise_bad(run(task, y, raw, weight, theta, mode, grad, hess))
        return grad, hess

    def bind(self, y, sample_weight=None, *, out, n_threads=None):
        """``fill(raw)``: :meth:`gradient_hessian` into ``out``, a ``(grad, hess)`` pair, for
        labels and weights fixed now: for a training loop that calls it every round.

        ``y``, ``sample_weight`` and ``out`` are checked once here (``raw`` must then have the
        shape of the buffers in ``out``); the task, the kernel parameters, the Hessian policy
        and the threads are resolved once. ``y`` and ``sample_weight`` are copied, so ``fill``
        stays valid whatever happens to the caller's arrays; each call checks ``raw``'s shape
        and dtype, and the kernel refuses non-finite raw scores as always.
        """
        try:
            example = np.zeros(np.shape(out[0]))
        except (TypeError, IndexError):
            raise ValueError("out must be a (grad, hess) pair of arrays") from None
        n = default_threads(example.size) if n_threads is None else n_threads
        with thread_limit(n):
            task, y, raw, weight = self._inputs(y, example, sample_weight, True)
        y, weight = y.copy(), weight.copy()
        grad, hess = _output_buffers(raw, out)
        run, theta, mode = self._kernel(task, y, raw)

        def fill(raw):
            if raw.shape != grad.shape or raw.dtype not in (np.float32, np.float64):
                raise ValueError(f"raw must be a float32/float64 array of shape {grad.shape}, "
                                 f"got {raw.dtype} {raw.shape}")
            with thread_limit(n):
                _raise_bad(run(task, y, raw, weight, theta, mode, grad, hess))
            return grad, hess

        return fill

    def _kernel(self, task, y, raw):
        """What a gradient kernel call needs besides the arrays: the kernel of the loss ready
        for ``y`` (prepared on it when it needs label statistics), its parameters and the
        Hessian policy's mode."""
        n_out = 1 if raw.ndim == 1 else raw.shape[1]
        loss = self._ready(task, y, n_out)
        return loss._gradient_hessian, loss.kernel_params(task, n_out), \
            HESSIAN_MODES[self.hessian]

    def _gradient_hessian(self, task, y, raw, weight, theta, mode, grad, hess):
        """Run the loop of ``task``; returns its count(s) of bad inputs. A loss may specialise
        a task here (focal's vectorised binary loop)."""
        loops = _loops.loops_for(self.scalars)
        if task == MULTICLASS:
            return loops.softmax_gradient_hessian(y, raw, weight, theta, mode, grad, hess)
        return loops.sigmoid_gradient_hessian(_as_2d(y), _as_2d(raw), weight, theta, mode,
                                              _as_2d(grad), _as_2d(hess))

    # -- optimal start ----------------------------------------------------------------------

    def init_score(self, y, sample_weight=None, n_classes=None):
        """The constant raw score minimising the (weighted) total loss.

        A float for binary targets, an array (K,) for multiclass (normalised so that
        ``logsumexp(start) = 0``; with cross-entropy this is the log of the class frequencies)
        and for multi-label (one per label). ``n_classes`` fixes K for multiclass labels when
        the highest classes may be absent from ``y``.
        """
        return self.start(self._stats(y, sample_weight, n_classes))

    def start(self, stats):
        """:meth:`init_score` from label statistics (a loss that still needs them is prepared
        on the same statistics first)."""
        if stats.task not in self.tasks:
            raise ValueError(f"{type(self).__name__} does not support {stats.task} targets")
        check_degenerate(stats)
        loss = self if self.is_prepared else self._prepare(stats)
        with thread_limit(1):
            if stats.task == MULTICLASS:
                return loss._softmax_start(stats)
            starts = loss._sigmoid_start(stats)
        return float(starts[0]) if stats.task == BINARY else starts

    def _sigmoid_start(self, stats):
        """Per output k, minimise ``B_k L(b; y=1) + A_k L(b; y=0)`` over the constant b, with
        ``A, B`` the weighted masses of 0 and 1 (the loss is linear in y): a grid over
        [-30, 30], then a root of the slope."""
        masses = stats.masses.reshape(-1, 2)
        n_out = masses.shape[0]
        loops = _loops.loops_for(self.scalars)
        theta = self.loss_params(stats.task, n_out)
        grid = np.linspace(-START_BOUND, START_BOUND, 241)

        def evaluate(points, gradient):  # (len(points), n_out) for y=1 and for y=0
            raw = np.repeat(np.repeat(np.asarray(points, np.float64), 2)[:, None], n_out, axis=1)
            y = np.tile(np.array([[1.0], [0.0]]), (len(points), n_out))
            out = np.empty_like(raw)
            if gradient:
                loops.sigmoid_gradient_hessian(y, raw, _EMPTY, theta, HESS_EXACT, out,
                                               np.empty_like(raw))
            else:
                loops.sigmoid_loss(y, raw, _EMPTY, theta, out)
            return out[0::2], out[1::2]

        ones, zeros = evaluate(grid, False)
        starts = np.empty(n_out)
        for k in range(n_out):
            neg, pos = masses[k]
            if pos <= 0 or neg <= 0:
                starts[k] = START_BOUND if pos > 0 else -START_BOUND
                continue

            def slope(b, k=k, neg=neg, pos=pos):
                g1, g0 = evaluate([b], True)
                return pos * g1[0, k] + neg * g0[0, k]

            values = pos * ones[:, k] + neg * zeros[:, k]
            j = int(np.argmin(values))
            lo, hi = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
            if slope(lo) < 0 < slope(hi):
                starts[k] = optimize.brentq(slope, lo, hi, xtol=1e-15,
                                            rtol=4 * np.finfo(float).eps)
            else:
                starts[k] = grid[j]
        return starts

    def _softmax_start_guess(self, masses):
        """A starting guess for the softmax start and whether it is already the optimum:
        the cross-entropy optimum ``log(mass)`` (shifted by the link offset)."""
        return np.log(np.maximum(masses, 1e-300)) - self.link_offset(MULTICLASS, masses.size), \
            False

    def _softmax_start(self, stats):
        masses = stats.masses
        n_class = masses.size
        start, exact = self._softmax_start_guess(masses)
        start = np.clip(start - special.logsumexp(start), -START_BOUND, None)
        if not exact:
            loops = _loops.loops_for(self.scalars)
            theta = self.loss_params(MULTICLASS, n_class)
            labels = np.arange(n_class, dtype=np.float64)

            def total_and_grad(b):
                raw = np.repeat(b[None, :], n_class, axis=0)
                loss, g, h = np.empty(n_class), np.empty_like(raw), np.empty_like(raw)
                loops.softmax_loss(labels, raw, masses, theta, loss)
                loops.softmax_gradient_hessian(labels, raw, masses, theta, HESS_EXACT, g, h)
                return loss.sum(), g.sum(axis=0)

            scale = masses.sum()
            res = optimize.minimize(lambda b: tuple(v / scale for v in total_and_grad(b)),
                                    start, jac=True, method="L-BFGS-B",
                                    bounds=[(-START_BOUND, START_BOUND)] * n_class,
                                    options={"gtol": 1e-13, "ftol": 1e-15, "maxiter": 500})
            start = res.x - special.logsumexp(res.x)
        return start

    # -- probabilities and decisions --------------------------------------------------------

    def _proba_task(self, raw, task):
        """The task of raw scores for the link; 2-D raw needs ``task`` when the loss supports
        both softmax and per-label targets."""
        if raw.ndim == 1:
            if task not in (None, BINARY):
                raise ValueError(f"task={task!r} needs 2-D raw scores (n, K); got 1-D raw, "
                                 "which is a binary target")
            if BINARY not in self.tasks:
                raise ValueError(f"{type(self).__name__} does not support binary targets")
            return BINARY
        if raw.ndim != 2:
            raise ValueError(f"raw must be 1-D (binary) or 2-D (n, K), got shape {raw.shape}")
        two_d = [t for t in self.tasks if t != BINARY]
        if task is None:
            if len(two_d) != 1:
                raise ValueError(f"2-D raw scores are ambiguous for {type(self).__name__}: pass "
                                 f"task='multiclass' (softmax) or task='multilabel' (per-label "
                                 "sigmoid)")
            task = two_d[0]
        if task not in two_d:
            raise ValueError(f"task must be one of {two_d} for 2-D raw scores with "
                             f"{type(self).__name__}, got {task!r}")
        if task == MULTICLASS and raw.shape[1] < 2:
            raise ValueError(f"multiclass raw scores need at least 2 columns, got shape "
                             f"{raw.shape}")
        return task

    def link(self, raw, task=None):
        """The plain link: ``sigmoid(raw + offset)`` (binary, per label) or
        ``softmax(raw + offset)`` (multiclass), ``offset`` from :meth:`link_offset`."""
        raw = np.asarray(raw, dtype=np.float64)
        task = self._proba_task(raw, task)
        self._require_prepared()
        n_out = 1 if raw.ndim == 1 else raw.shape[1]
        offset = self.link_offset(task, n_out)
        if task == MULTICLASS:
            return special.softmax(raw + offset, axis=1)
        return special.expit(raw + (offset[0] if task == BINARY else offset))

    def predict_proba(self, raw, task=None, *, calibrate=True):
        """Estimates of P(y | x) from raw scores (start included) of a model trained with
        this loss.

        1-D raw: ``P(y=1)`` per row. 2-D raw: class probabilities (multiclass) or per-label
        probabilities (``task="multilabel"``); ``task`` is required for losses that support
        both. ``calibrate=True`` (default) inverts the map from P(y | x) to the loss's
        population minimiser (:mod:`gbloss.calibration`); for proper losses
        (:meth:`is_proper`) that is the link itself. ``calibrate=False``: the plain
        :meth:`link`.
        """
        raw = np.asarray(raw, dtype=np.float64)
        task = self._proba_task(raw, task)
        if not check_bool("calibrate", calibrate) or self.is_proper(task):
            return self.link(raw, task)
        self._require_prepared()
        raw = np.clip(raw, -CALIBRATION_BOUND, CALIBRATION_BOUND)
        if task == MULTICLASS:
            return self._calibrated_softmax(raw)
        return self._calibrated_sigmoid(raw, task)

    def is_proper(self, task):
        """Whether the plain link already estimates P(y | x) for ``task`` (then calibration is
        the identity)."""
        return False

    def _calibrated_sigmoid(self, raw, task):
        """``sigmoid(log g0 - log(-g1))`` with the exact training gradients for y=0 and y=1:
        the stationarity condition ``eta g1(z) + (1 - eta) g0(z) = 0`` solved for eta
        (:mod:`gbloss.calibration`)."""
        g1, _ = self.gradient_hessian(np.ones_like(raw), raw, check_input=False)
        g0, _ = self.gradient_hessian(np.zeros_like(raw), raw, check_input=False)
        with np.errstate(divide="ignore"):
            return special.expit(np.log(g0) - np.log(-g1))

    def _calibrated_softmax(self, raw):
        raise TypeError(f"{type(self).__name__} has no calibration map for multiclass targets: "
                        "a loss module declares is_proper() or implements "
                        "_calibrated_softmax(raw); use calibrate=False for the plain link")

    def decision_scores(self, raw):
        """Scores whose argmax (or sign, for binary) is the loss's decision rule: the raw scores
        themselves, except for post-hoc logit adjustment."""
        return np.asarray(raw, dtype=np.float64)

    # -- engines and compare ----------------------------------------------------------------

    def _small_hessian(self):
        """Whether the Hessians are tiny for well-classified rows (focusing, clipping)."""
        return False

    def engine_defaults(self, engine):
        """Engine settings the loss needs, keyed by estimator parameter name; ``engine`` is
        ``"xgboost"`` or ``"lightgbm"``. Small-Hessian losses get ``min_child_weight=1e-3``
        (XGBoost's default 1 freezes leaves of easy rows at 0) and ``max_delta_step=1`` (and
        ``reg_lambda=1e-3`` with LightGBM); others none."""
        if engine not in SMALL_HESSIAN_DEFAULTS:
            raise ValueError(f"engine must be one of {sorted(SMALL_HESSIAN_DEFAULTS)}, "
                             f"got {engine!r}")
        return dict(SMALL_HESSIAN_DEFAULTS[engine]) if self._small_hessian() else {}

    @classmethod
    def compare_grid(cls, task):
        """Parameter values ``gbloss compare`` searches for ``task``: {name: tuple}."""
        return dict(cls.grid)

    @classmethod
    def compare_fixed(cls, task):
        """Parameter values ``gbloss compare --no-grid`` uses for ``task``."""
        return dict(cls.fixed)


#: |raw| bound of calibration: exp(-500) ~ 7e-218 keeps p, q and the two gradients far above
#: the float64 underflow at 2e-308, even after multiplying them by parameters.
CALIBRATION_BOUND = 500.0


def one_vs_rest_margins(raw):
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


def _raise_bad(counts):
    """Turn a loop's counts of bad inputs into errors naming the argument."""
    nonfinite, bad_labels = counts if isinstance(counts, tuple) else (counts, 0)
    if bad_labels:
        raise ValueError(f"y holds {bad_labels} label(s) outside the classes 0..K-1 of raw")
    if nonfinite:
        raise ValueError(f"raw holds {nonfinite} non-finite score(s) (NaN or +-inf); raw scores "
                         "must be finite")


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


# ------------------------------------------------------------------------------------------------
# Registry

#: Class name -> loss class, for :func:`loss_from_dict`, the estimators and ``gbloss compare``.
REGISTRY = {}


def register(cls):
    """Register a loss class (usable as a decorator): saved models, ``gbloss compare
    --losses <cls.key>`` and every adapter then know it. Returns ``cls``."""
    if not (isinstance(cls, type) and issubclass(cls, Loss)):
        raise TypeError(f"register takes a gbloss.Loss subclass, got {cls!r}")
    if not cls.tasks or not set(cls.tasks) <= set(TASKS):
        raise ValueError(f"{cls.__name__}.tasks must be a non-empty subset of {TASKS}")
    needed = (_loops.SIGMOID_SLOTS if set(cls.tasks) & {BINARY, MULTILABEL} else ()) + \
        (_loops.SOFTMAX_SLOTS if MULTICLASS in cls.tasks else ())
    missing = [s for s in needed if s not in cls.scalars]
    if missing:
        raise ValueError(f"{cls.__name__}.scalars lacks {missing} for its tasks {cls.tasks}")
    clash = REGISTRY.get(cls.__name__)
    if clash is not None and clash is not cls and not _redefinition(clash, cls):
        raise ValueError(f"a loss named {cls.__name__} is registered already ({clash!r})")
    if cls.key is not None:
        other = next((c for c in REGISTRY.values()
                      if c.key == cls.key and c is not cls and not _redefinition(c, cls)), None)
        if other is not None:
            raise ValueError(f"the key {cls.key!r} belongs to {other.__name__} already")
    REGISTRY[cls.__name__] = cls
    return cls


def _redefinition(old, new):
    """Whether ``new`` is ``old`` defined again (a re-run script or notebook cell): the same
    module and qualified name. It then replaces ``old``."""
    return (old.__module__, old.__qualname__) == (new.__module__, new.__qualname__)


def by_key(key):
    """The registered loss class with ``gbloss compare`` key ``key``."""
    for cls in REGISTRY.values():
        if cls.key == key:
            return cls
    known = [c.key for c in REGISTRY.values() if c.key]
    raise ValueError(f"unknown loss {key!r}; choose from {', '.join(known)}")


def loss_from_dict(spec):
    """Rebuild a loss from :meth:`Loss.to_dict` output."""
    try:
        cls = REGISTRY[spec["name"]]
        params = dict(spec["params"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"not a gbloss loss description (or its loss is not registered): "
                         f"{spec!r}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"invalid parameters for {cls.__name__} in {spec!r}: {exc}") from None
