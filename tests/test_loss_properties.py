"""Property-based tests (hypothesis) over the public loss API, and the reliability guarantees
of the losses: finite results for every finite input, inputs never mutated, the same numbers for
any memory layout and dtype, no out-of-bounds write with or without input checks, losses that
own read-only copies of their array parameters, strict parameter types.

The ``slow`` marker widens the search (``pytest --slow``)."""

import numpy as np
import pytest
from conftest import BINARY, MULTICLASS, MULTILABEL, REGISTRY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import gbloss

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
WIDE = settings(max_examples=600, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TASK_CASES = [(case, task) for case in REGISTRY for task in case.tasks]


def _values(dtype):
    big = float(np.finfo(dtype).max)
    return st.one_of(
        st.floats(-30, 30, width=32 if dtype == np.float32 else 64),
        st.sampled_from([0.0, -0.0, 1e-300 if dtype == np.float64 else 1e-38, 700.0, -745.0,
                         1e4, -1e4, 1e16, -1e16, big, -big, 36.8, -36.8, 16.7]),
        st.floats(-big, big, allow_nan=False, allow_infinity=False,
                  width=32 if dtype == np.float32 else 64))


@st.composite
def problems(draw):
    """A loss, a task, labels, raw scores in a random dtype and memory layout, weights."""
    case, task = draw(st.sampled_from(TASK_CASES))
    n = draw(st.integers(1, 12))
    k = 1 if task == BINARY else draw(st.integers(2, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = (n,) if task == BINARY else (n, k)
    raw = np.array(draw(st.lists(_values(dtype), min_size=int(np.prod(shape)),
                                 max_size=int(np.prod(shape)))), dtype=dtype).reshape(shape)
    if task == MULTICLASS:
        y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)), float)
    else:
        y = np.array(draw(st.lists(st.sampled_from([0.0, 1.0, 0.5, 0.25, 1e-9]),
                                   min_size=int(np.prod(shape)), max_size=int(np.prod(shape)))),
                     float).reshape(shape)
    weight = None
    if draw(st.booleans()):
        weight = np.array(draw(st.lists(st.floats(0, 1e3), min_size=n, max_size=n)), float)
    layout = draw(st.sampled_from(["C", "F", "strided"]))
    if layout == "F":
        raw = np.asfortranarray(raw)
    elif layout == "strided":
        wide = np.zeros((n, 2 * k) if raw.ndim == 2 else 2 * n, dtype=dtype)
        if raw.ndim == 2:
            wide[:, ::2] = raw
            raw = wide[:, ::2]
        else:
            wide[::2] = raw
            raw = wide[::2]
    return case.build(k), task, y, raw, weight


def _all_outputs(loss, y, raw, weight):
    grad, hess = loss.gradient_hessian(y, raw, weight)
    return loss.loss(y, raw, weight), grad, hess


def _check_finite_and_unchanged(problem):
    loss, task, y, raw, weight = problem
    before = [None if a is None else a.copy() for a in (y, raw, weight)]
    values, grad, hess = _all_outputs(loss, y, raw, weight)
    for name, out in (("loss", values), ("grad", grad), ("hess", hess)):
        assert not np.isnan(out).any(), (name, loss, raw)
    assert np.all(np.isfinite(grad)), (loss, raw)
    if loss.hessian == "psd":
        assert np.all(hess >= 0), (loss, raw)
    for old, new in zip(before, (y, raw, weight), strict=True):
        if old is not None:
            assert_array_equal(new, old)
    # the same numbers from a contiguous float64 copy: the layout changes nothing, float32 only
    # the rounding of the outputs (the math runs in float64; the softmax loop keeps exp() in
    # the output buffer as scratch, so float32 buffers may round twice: 2 ulp)
    values64, grad64, hess64 = _all_outputs(loss, y, np.ascontiguousarray(raw, np.float64),
                                            weight)
    assert_array_equal(values, values64)
    if raw.dtype == np.float64:
        assert_array_equal(grad, grad64)
        assert_array_equal(hess, hess64)
    else:
        assert_allclose(grad, grad64, rtol=2.0**-22, atol=2e-45)
        assert_allclose(hess, hess64, rtol=2.0**-22, atol=2e-45)


@FAST
@given(problems())
def test_finite_inputs_give_finite_results_and_are_not_mutated(problem):
    _check_finite_and_unchanged(problem)


@pytest.mark.slow
@WIDE
@given(problems())
def test_finite_inputs_wide_search(problem):
    _check_finite_and_unchanged(problem)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize(("loss", "task"), [
    (gbloss.FocalLoss(2.0, 0.25), BINARY), (gbloss.FocalLoss(2.0), MULTICLASS),
    (gbloss.AsymmetricLoss(), MULTILABEL), (gbloss.LogitAdjustedLoss(1.0, [0.3, 0.7]), BINARY),
    (gbloss.CrossEntropyLoss(), MULTICLASS)])
def test_non_finite_raw_scores_are_a_clear_error(loss, task, value):
    raw = np.zeros(4) if task == BINARY else np.zeros((4, 2))
    y = np.array([0.0, 1.0, 1.0, 0.0]) if task != MULTILABEL else np.zeros((4, 2))
    raw[(1,) * raw.ndim] = value
    for check_input in (True, False):
        with pytest.raises(ValueError, match="raw holds 1 non-finite score"):
            loss.gradient_hessian(y, raw, check_input=check_input)
        with pytest.raises(ValueError, match="raw holds 1 non-finite score"):
            loss.loss(y, raw, check_input=check_input)


@pytest.mark.parametrize("label", [3.0, 1e9, -1.0, np.nan, 2.5e18])
def test_softmax_labels_never_index_out_of_bounds(label):
    """With ``check_input=False`` a label outside 0..K-1 is refused by the loop itself."""
    y = np.array([0.0, label, 2.0])
    raw = np.zeros((3, 3))
    grad, hess = np.full((3, 3), 7.0), np.full((3, 3), 7.0)
    guard = np.full((2, 3), 7.0)  # memory right behind the buffers in a bigger array
    for loss in (gbloss.FocalLoss(2.0), gbloss.LogitAdjustedLoss(1.0, [0.2, 0.3, 0.5])):
        with pytest.raises(ValueError, match="outside the classes"):
            loss.gradient_hessian(y, raw, out=(grad, hess), check_input=False)
        with pytest.raises(ValueError, match="outside the classes"):
            loss.loss(y, raw, check_input=False)
    assert_array_equal(guard, 7.0)


@pytest.mark.parametrize("scale", [1e10, 1e16, 1e100, 1e300, 1.7e308])
def test_tied_huge_softmax_scores_keep_every_class(scale):
    raw = np.full((1, 3), scale)
    assert_allclose(gbloss.CrossEntropyLoss().loss(np.zeros(1), raw), np.log(3), rtol=1e-15)
    assert_allclose(gbloss.FocalLoss(2.0).loss(np.zeros(1), raw),
                    (2 / 3) ** 2 * np.log(3), rtol=1e-15)
    grad, _ = gbloss.CrossEntropyLoss().gradient_hessian(np.zeros(1), raw)
    assert_allclose(grad, [[-2 / 3, 1 / 3, 1 / 3]], rtol=1e-15)


@pytest.mark.parametrize("z", [-1e308, -1.7e308, 1e308, -1e4, 1e4])
def test_binary_extreme_margins_are_exact(z):
    loss = gbloss.FocalLoss(2.0, 0.25, hessian="exact")
    grad, hess = loss.gradient_hessian(np.array([1.0, 0.0]), np.array([z, z]))
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))
    # y=1 at z -> -inf: loss alpha |z|, gradient -alpha, Hessian 0 (from below)
    if z < 0:
        assert_allclose(loss.loss(np.array([1.0]), np.array([z])), [0.25 * -z], rtol=1e-15)
        assert grad[0] == -0.25 and hess[0] == 0.0


def test_losses_own_read_only_copies_of_their_arrays():
    alpha = np.array([0.2, 0.3, 0.5])
    priors = np.array([0.6, 0.3, 0.1])
    focal = gbloss.FocalLoss(2.0, alpha)
    la = gbloss.LogitAdjustedLoss(1.0, priors)
    raw = np.random.default_rng(0).normal(size=(5, 3))
    before = (focal.predict_proba(raw, MULTICLASS), la.predict_proba(raw))
    alpha[:] = 1.0
    priors[:] = [0.1, 0.1, 0.8]
    assert_array_equal(focal.predict_proba(raw, MULTICLASS), before[0])
    assert_array_equal(la.predict_proba(raw), before[1])
    for array in (focal.alpha, la.priors):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0.0
    prepared = gbloss.LogitAdjustedLoss(1.0).prepare(np.array([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="read-only"):
        prepared.priors[0] = 0.5


@pytest.mark.parametrize(("build", "match"), [
    (lambda: gbloss.LogitAdjustedLoss(posthoc="no"), "posthoc must be True or False"),
    (lambda: gbloss.LogitAdjustedLoss(posthoc=1), "posthoc must be True or False"),
    (lambda: gbloss.FocalLoss(alpha=True), "alpha must be None"),
    (lambda: gbloss.FocalLoss(gamma=True), "gamma must be a finite real number"),
    (lambda: gbloss.FocalLoss(gamma="2"), "gamma must be a finite real number"),
    (lambda: gbloss.AsymmetricLoss(clip=False), "clip must be a finite real number"),
    (lambda: gbloss.LogitAdjustedLoss(tau="1"), "tau must be a finite real number"),
    (lambda: gbloss.FocalLoss(hessian=1), "hessian must be one of"),
    (lambda: gbloss.LogitAdjustedLoss(1.0, [True, False]), "priors must be a distribution"),
])
def test_parameters_of_the_wrong_type_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("n_threads", [1.5, "2", True, 0, -1])
def test_n_threads_must_be_a_positive_integer(n_threads):
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        gbloss.FocalLoss().gradient_hessian(np.zeros(3), np.zeros(3), n_threads=n_threads)


@pytest.mark.parametrize(("y", "weight", "kwargs", "match"), [
    (np.array([0.0, 1.0]), np.zeros(2), {}, "zero total weight"),
    (np.array([1.0, 1.0]), None, {}, "only one label value"),
    (np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0]), {}, "only one label value"),
    (np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0]), {}, "only one class"),
    (np.array([0.0, 0.0]), None, {"n_classes": 3}, "only one class"),
])
def test_degenerate_weights_are_one_rule(y, weight, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gbloss.FocalLoss(2.0).init_score(y, weight, **kwargs)


def test_a_multilabel_column_without_positives_is_legitimate():
    y = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 1.0]])
    start = gbloss.AsymmetricLoss().init_score(y)
    assert start[0] == -30.0 and np.isfinite(start[1])
