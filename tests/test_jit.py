"""Kernel plumbing: caller-supplied output buffers, memory order and dtype, inputs left alone,
sample weights, thread counts, and Numba's on-disk cache (a second process loads machine code; a
read-only install without any writable cache location still imports and computes)."""

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from conftest import BINARY, MULTICLASS, MULTILABEL, case_params, make_data
from numpy.testing import assert_allclose, assert_array_equal

import gbloss
from gbloss import _jit

LAYOUTS = [
    pytest.param(BINARY, "C", id="binary"),
    pytest.param(MULTICLASS, "C", id="multiclass-C"),
    pytest.param(MULTICLASS, "F", id="multiclass-F"),
    pytest.param(MULTILABEL, "C", id="multilabel-C"),
    pytest.param(MULTILABEL, "F", id="multilabel-F"),
]
DTYPES = [pytest.param(np.float64, id="f64"), pytest.param(np.float32, id="f32")]


def _loss_for(task):
    return gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5] if task == MULTICLASS else 0.25)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("task", "order"), LAYOUTS)
def test_out_buffers_are_filled_in_place_and_returned(task, order, dtype, rng):
    loss = _loss_for(task)
    y, raw = make_data(task, 3, 50, rng)
    raw = np.asarray(raw, dtype=dtype, order=order)
    expected = loss.gradient_hessian(y, np.ascontiguousarray(raw))
    grad, hess = np.full_like(raw, np.nan), np.full_like(raw, np.nan)  # keeps raw's order
    got = loss.gradient_hessian(y, raw, out=(grad, hess))
    assert got[0] is grad and got[1] is hess
    assert np.shares_memory(got[0], grad) and np.shares_memory(got[1], hess)
    assert_array_equal(grad, expected[0])
    assert_array_equal(hess, expected[1])
    # without out: same shape, dtype and memory order as raw
    fresh = loss.gradient_hessian(y, raw)
    for a in fresh:
        assert a.dtype == dtype and a.shape == raw.shape
        assert a.flags.f_contiguous if order == "F" else a.flags.c_contiguous


def test_out_buffers_may_differ_in_order_from_raw(rng):
    """LightGBM hands Fortran-ordered (n, K) margins; C-ordered output buffers work too."""
    loss = _loss_for(MULTICLASS)
    y, raw = make_data(MULTICLASS, 3, 50, rng)
    grad, hess = np.empty((50, 3)), np.empty((50, 3))
    loss.gradient_hessian(y, np.asfortranarray(raw), out=(grad, hess))
    expected = loss.gradient_hessian(y, raw)
    assert_array_equal(grad, expected[0])
    assert_array_equal(hess, expected[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_class", [3, 100])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_class_ordered_scores_over_many_blocks_match_row_order(n_class, dtype, n_threads, rng):
    """LightGBM's layout (F order) across several row blocks of the CPU's softmax loop, the last
    one partial, where each block's copy prefetches the next block's rows: the same values as
    C order, on one thread and on two."""
    from gbloss.losses._loops import softmax_block_rows

    n = 3 * softmax_block_rows(n_class) + 5
    loss = gbloss.FocalLoss(2.0)
    y = rng.integers(0, n_class, n).astype(float)
    raw = rng.normal(0.0, 3.0, (n, n_class)).astype(dtype)
    expected = loss.gradient_hessian(y, raw, n_threads=n_threads)
    got = loss.gradient_hessian(y, np.asfortranarray(raw), n_threads=n_threads)
    assert got[0].flags.f_contiguous
    assert_array_equal(got[0], expected[0])
    assert_array_equal(got[1], expected[1])


def test_strided_raw_is_accepted(rng):
    loss = _loss_for(MULTICLASS)
    y, raw = make_data(MULTICLASS, 3, 50, rng)
    wide = np.repeat(raw, 2, axis=1)
    assert_array_equal(loss.gradient_hessian(y, wide[:, ::2])[0], loss.gradient_hessian(y, raw)[0])


@pytest.mark.parametrize("bad", [
    pytest.param(lambda raw: (np.empty(raw.shape[0]), np.empty_like(raw)), id="shape"),
    pytest.param(lambda raw: (np.empty(raw.shape, dtype=np.int64), np.empty_like(raw)), id="dtype"),
    pytest.param(lambda raw: np.empty_like(raw), id="not-a-pair"),
])
def test_bad_out_buffers_raise(bad, rng):
    y, raw = make_data(MULTICLASS, 3, 10, rng)
    with pytest.raises(ValueError, match="out"):
        gbloss.FocalLoss().gradient_hessian(y, raw, out=bad(raw))


def test_read_only_out_buffer_raises(rng):
    y, raw = make_data(BINARY, 1, 10, rng)
    grad, hess = np.empty(10), np.empty(10)
    hess.flags.writeable = False
    with pytest.raises(ValueError, match="out hess buffer must be a writeable"):
        gbloss.FocalLoss().gradient_hessian(y, raw, out=(grad, hess))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("task", "order"), LAYOUTS)
def test_inputs_are_never_modified(task, order, dtype, rng):
    loss = _loss_for(task)
    y, raw = make_data(task, 3, 50, rng)
    raw = np.asarray(raw, dtype=dtype, order=order)
    w = rng.uniform(0.5, 2.0, 50)
    before = [a.copy() for a in (y, raw, w)]
    loss.loss(y, raw, w)
    loss.gradient_hessian(y, raw, w)
    loss.gradient_hessian(y, raw, w, out=(np.empty_like(raw), np.empty_like(raw)))
    loss.init_score(y, w, n_classes=3 if task == MULTICLASS else None)
    loss.predict_proba(raw, task=None if task == BINARY else task)
    for old, new in zip(before, (y, raw, w), strict=True):
        assert_array_equal(new, old)
        assert new.dtype == old.dtype


def test_read_only_inputs_are_accepted(rng):
    """Engines and memory maps hand out read-only arrays."""
    y, raw = make_data(MULTICLASS, 3, 20, rng)
    w = rng.uniform(0.5, 2.0, 20)
    expected = gbloss.FocalLoss().gradient_hessian(y, raw, w)
    for a in (y, raw, w):
        a.flags.writeable = False
    got = gbloss.FocalLoss().gradient_hessian(y, raw, w)
    assert_array_equal(got[0], expected[0])
    assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize(("case", "task", "n_out"), case_params(k_values=(3,)))
def test_sample_weights_multiply_gradient_and_hessian(case, task, n_out, rng):
    loss = case.build(n_out)
    y, raw = make_data(task, n_out, 30, rng, soft=task != MULTICLASS)
    w = rng.uniform(0.0, 3.0, 30)
    w[:3] = 0.0
    col = w if task == BINARY else w[:, None]
    grad_w, hess_w = loss.gradient_hessian(y, raw, w)
    grad, hess = loss.gradient_hessian(y, raw)
    assert_allclose(grad_w, col * grad, rtol=1e-14, atol=0)
    assert_allclose(hess_w, col * hess, rtol=1e-14, atol=0)
    assert_allclose(loss.loss(y, raw, w), w * loss.loss(y, raw), rtol=1e-14, atol=0)


def test_thread_count_does_not_change_results_and_is_restored(rng):
    n = 3 * _jit.SERIAL_BELOW
    y, raw = make_data(MULTICLASS, 3, n, rng)
    loss = gbloss.FocalLoss(2.0)
    before = numba.get_num_threads()
    one = loss.gradient_hessian(y, raw, n_threads=1)
    many = loss.gradient_hessian(y, raw, n_threads=numba.config.NUMBA_NUM_THREADS)
    default = loss.gradient_hessian(y, raw)
    assert numba.get_num_threads() == before
    for a, b, c in zip(one, many, default, strict=True):
        assert_array_equal(a, b)
        assert_array_equal(a, c)
    assert_array_equal(loss.loss(y, raw, n_threads=1), loss.loss(y, raw))


def test_thread_limit_validates_and_restores_after_errors():
    before = numba.get_num_threads()
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n_threads must be a positive integer"):
            gbloss.FocalLoss().gradient_hessian(np.zeros(3), np.zeros(3), n_threads=bad)
        with pytest.raises(ValueError, match="n_threads must be a positive integer"):
            gbloss.FocalLoss().loss(np.zeros(3), np.zeros(3), n_threads=bad)
    with pytest.raises(RuntimeError), _jit.thread_limit(2):
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
        raise RuntimeError
    assert numba.get_num_threads() == before


def test_one_thread_runs_the_serial_loops_and_more_threads_the_parallel_ones(monkeypatch):
    """thread_limit(1) marks the calling thread instead of resizing Numba's pool: kernels run
    their serial copy inside it, also nested in a wider limit, and their parallel copy in a
    wider limit nested inside it."""
    ran = []
    kernel = _jit.Kernel(lambda: None)
    monkeypatch.setattr(kernel, "serial", lambda: ran.append("serial"))
    monkeypatch.setattr(kernel, "parallel", lambda: ran.append("parallel"))
    with _jit.thread_limit(1):
        kernel()
        with _jit.thread_limit(2):
            kernel()
            with _jit.thread_limit(1):
                kernel()
            kernel()
        kernel()
    wide = "parallel" if numba.config.NUMBA_NUM_THREADS > 1 else "serial"
    assert ran == ["serial", wide, "serial", wide, "serial"]
    with pytest.raises(RuntimeError), _jit.thread_limit(1):
        raise RuntimeError
    assert not getattr(_jit._LIMIT, "serial", False)


def test_default_threads_follows_size_and_environment(monkeypatch):
    monkeypatch.delenv("GBLOSS_NUM_THREADS", raising=False)
    assert _jit.default_threads(10) == 1
    assert _jit.default_threads(10**7) == numba.config.NUMBA_NUM_THREADS
    monkeypatch.setenv("GBLOSS_NUM_THREADS", "1")
    assert _jit.default_threads(10**7) == 1
    monkeypatch.setenv("GBLOSS_NUM_THREADS", "1000")
    assert _jit.default_threads(10) == numba.config.NUMBA_NUM_THREADS


# ------------------------------------------------------------------------------------------------
# Numba's on-disk cache, in separate processes

_PROBE = """
import json, sys
import numpy as np
import gbloss
from gbloss.losses import focal
grad, hess = gbloss.FocalLoss(2.0, 0.25).gradient_hessian(
    np.array([0.0, 1.0, 1.0]), np.array([0.5, -3.0, 2.0]), check_input=False)  # one kernel only
stats = focal._binary_loop.serial.stats  # 3 rows: one thread
print(json.dumps({
    "file": gbloss.__file__,
    "hits": sum(stats.cache_hits.values()),
    "misses": sum(stats.cache_misses.values()),
    "cache": type(focal._binary_loop.serial._cache).__name__,
    "grad": grad.tolist(), "hess": hess.tolist(),
}))
"""


def _run_probe(env, cwd):
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _expected():
    return gbloss.FocalLoss(2.0, 0.25).gradient_hessian(np.array([0.0, 1.0, 1.0]),
                                                        np.array([0.5, -3.0, 2.0]))


REPO = Path(gbloss.__file__).resolve().parent.parent


def test_second_process_loads_kernels_from_cache(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    first = _run_probe(env, tmp_path)
    assert first["misses"] == 1 and first["hits"] == 0
    files = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    assert any(p.suffix == ".nbc" and "binary_gradient_hessian" in p.name for p in files)
    second = _run_probe(env, tmp_path)
    assert second["hits"] == 1 and second["misses"] == 0
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == files  # nothing recompiled
    assert second["grad"] == first["grad"] and second["hess"] == first["hess"]


def _chmod_tree(root, writable):
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        write = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~write)


def test_read_only_install_imports_without_a_cache_location(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(REPO / "gbloss", site / "gbloss",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # Read-only everywhere. Root ignores permission bits, so also put plain files where Numba
    # would create its cache directories (in-tree __pycache__ and ~/.cache): those always fail.
    for package in [site / "gbloss", *(p.parent for p in (site / "gbloss").rglob("*/__init__.py"))]:
        (package / "__pycache__").write_text("")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".cache").write_text("")
    listing = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    _chmod_tree(tmp_path, writable=False)
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    try:
        result = _run_probe(env, home)
    finally:
        _chmod_tree(tmp_path, writable=True)
    assert Path(result["file"]).is_relative_to(site)
    assert result["cache"] == "NullCache"  # compiled without caching instead of failing
    grad, hess = _expected()
    assert_allclose(result["grad"], grad, rtol=1e-15)
    assert_allclose(result["hess"], hess, rtol=1e-15)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == listing
