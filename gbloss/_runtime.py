"""gbloss's threads and OpenMP runtimes: the policy and its switches, in one place.

Importing gbloss (or any of its modules) makes no library global and starts no thread
(``gbloss.lightgbm`` imports LightGBM, which loads the system libgomp, as any LightGBM import
does).

Thread policy
-------------
* **Kernels called directly** (``loss.gradient_hessian``, ``loss.loss``...) use all of Numba's
  threads for inputs of 20,000 elements or more and one thread below
  (:func:`gbloss._jit.default_threads`), unless ``n_threads=`` says otherwise.
* **Inside LightGBM** the objective uses that same default: LightGBM's Linux wheels and Numba's
  ``omp`` threading layer load the same OpenMP runtime (the system libgomp), so the kernel runs
  on LightGBM's own, already spinning, thread team.
* **Inside XGBoost** the objective uses all threads when gbloss's kernels run in the OpenMP
  runtime that XGBoost's wheel bundles (:func:`share_openmp_runtime` returned True), and one
  thread otherwise: XGBoost's runtime keeps its threads spinning after each parallel loop, and a
  parallel kernel in a second runtime fights them (1.83x the built-in objective's training time
  against 1.16x serially, 200k rows, ``benchmarks/bench_threads.py``).
* ``n_threads=`` of an objective, estimator or kernel call always wins.

Sharing XGBoost's runtime
-------------------------
:func:`share_openmp_runtime` makes Numba's parallel loops run in XGBoost's OpenMP runtime. It
is decided once per process, on the first use of :mod:`gbloss.xgboost` that may run a kernel
(:func:`gbloss.xgboost.params`, ``train``, ``dask_train``, an objective or metric, reading
``gbloss.xgboost.OPENMP_SHARED``) or by calling it yourself. It can only work before Numba
has started its threads and before another libgomp is loaded (``import lightgbm`` loads the
system one), so a program that wants it and uses both engines, or calls gbloss's kernels
first, calls it at its start::

    import gbloss.xgboost
    gbloss.xgboost.share_openmp_runtime()   # True on Linux when it worked

Environment variables
---------------------
``GBLOSS_NUM_THREADS``
    Threads of the kernels wherever gbloss chooses the count (capped at Numba's
    ``NUMBA_NUM_THREADS``); an explicit ``n_threads=`` still wins.
``GBLOSS_SHARE_OPENMP``
    ``0`` leaves XGBoost's OpenMP runtime alone (:func:`share_openmp_runtime` returns False and
    the XGBoost objective runs serially).
``NUMBA_NUM_THREADS``, ``NUMBA_CACHE_DIR``
    Numba's own: the size of its thread pool, and where compiled kernels are cached.
"""

import ctypes
import os
import sys
import threading

import numba
import numpy as np

from .losses import _loops

_lock = threading.Lock()
_shared = None  # the decision, once made


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _openmp_library_of(library):
    """Path of the OpenMP runtime a loaded ``ctypes.CDLL`` resolves ``omp_*`` from, or None."""
    try:
        address = ctypes.cast(library.omp_get_max_threads, ctypes.c_void_p).value
    except AttributeError:  # built without OpenMP
        return None
    info = _DlInfo()
    if not ctypes.CDLL(None).dladdr(ctypes.c_void_p(address), ctypes.byref(info)):
        return None
    return os.fsdecode(info.dli_fname)


def _thread_count():
    return len(os.listdir("/proc/self/task"))


def _bind_numba_to_xgboost_runtime():
    """Make XGBoost's OpenMP runtime global (``RTLD_GLOBAL``) and start Numba's ``omp``
    threading layer on it; True when a parallel Numba loop then starts no thread of its own.

    Does nothing, and returns False, off Linux, with ``GBLOSS_SHARE_OPENMP=0``, without
    XGBoost, when Numba's threading layer has started already, when another libgomp is loaded
    (a library bound to it would compete again), or when a step fails.
    """
    n = numba.config.NUMBA_NUM_THREADS
    if (os.environ.get("GBLOSS_SHARE_OPENMP", "1") == "0" or not sys.platform.startswith("linux")
            or getattr(numba.np.ufunc.parallel, "_is_initialized", True) or n < 2):
        return False
    try:
        import xgboost.core

        with open("/proc/self/maps") as maps:
            if any("/libgomp.so" in line for line in maps):
                return False
        path = _openmp_library_of(xgboost.core._LIB)
        if path is None:
            return False
        start_region = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL | os.RTLD_NOLOAD).GOMP_parallel
    except (ImportError, OSError, AttributeError):  # no XGBoost, /proc, dladdr or libgomp
        return False
    # start the runtime's threads with one parallel region of its own
    region = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: None)
    start_region(region, None, ctypes.c_uint(n), ctypes.c_uint(0))
    before = _thread_count()
    numba.get_num_threads()  # starts Numba's threading layer, bound to the global runtime
    if numba.threading_layer() != "omp":
        return False
    _loops.check_weights.parallel(np.zeros(4 * n))
    return _thread_count() == before


def share_openmp_runtime():
    """Run gbloss's parallel kernels in XGBoost's OpenMP runtime, if still possible; returns
    whether they do. Decided on the first call in a process (later calls return the same
    answer); see the module notes for when it can work."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = _bind_numba_to_xgboost_runtime()
        return _shared
