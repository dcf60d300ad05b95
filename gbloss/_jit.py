"""All Numba policy of gbloss, in one place.

* ``cache=True`` for the row loops (:class:`Kernel`) so a second process loads machine code
  instead of compiling (first call with ``parallel=True`` costs about 1 s per dtype otherwise).
  When no writable cache location exists (read-only install, unwritable HOME, no
  ``NUMBA_CACHE_DIR``), Numba refuses ``cache=True`` at decoration time; we then compile without
  caching rather than failing ``import gbloss``. Scalar functions are not cached on their own:
  they are compiled into the loops, whose names carry a hash of every source they reach
  (:mod:`gbloss.losses._loops`), so an edited loss never loads stale machine code.
* ``error_model="numpy"``: division by zero gives inf/nan like NumPy instead of raising, and
  spares the zero checks in the hot loops (the kernels never divide by zero by construction).
* Only the small functions of the binary loop are inlined at Numba IR level
  (:func:`inlined_scalar`), which its vectorisation needs; inlining every scalar function made
  first compilations 1.4x to 4.6x slower (measured on the 2-core machine), and compilation is
  what a user's first run pays.
* No ``fastmath``: the stable formulas rely on IEEE semantics (inf, exact zeros, no reassociation).
  The one exception is ``contract`` in the vectorised binary loop and its inlined helpers
  (:data:`CONTRACT`): ``a * b + c`` may become one fused multiply-add, rounded once instead of
  twice, which changes no special value and makes that loop 1.25x faster (AVX-512 machine).
* Parallel loops and scalar functions are separate dispatchers (numba #6845: a parallel and a
  serial jit of one Python function share a cache entry).
* Threads: :func:`thread_limit` sets Numba's thread count for one call and restores it in
  ``finally``; ``numba.set_num_threads`` is per calling thread, so concurrent callers (Dask
  worker threads) do not disturb each other. A limit of one thread only marks the calling
  thread (a thread-local flag that :class:`Kernel` reads): the serial loops never touch Numba's
  pool, and querying and setting its count costs about 10 us a call, a third of a 2000-row
  kernel call in an engine's round.
"""

import contextlib
import numbers
import os
import threading
import types

import numba

_OPTIONS = {"error_model": "numpy", "nogil": True}


def _jit(fn, cache=True, **options):
    if not cache:
        return numba.njit(cache=False, **_OPTIONS, **options)(fn)
    try:
        return numba.njit(cache=True, **_OPTIONS, **options)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(cache=False, **_OPTIONS, **options)(fn)


def scalar(fn):
    """Compile a per-element function of (label, raw score, parameters).

    The undecorated source stays available as ``fn.py_func`` so that the GPU module can compile
    the very same function as a CUDA device function.
    """
    return _jit(fn, cache=False)


#: Fast-math flags of the vectorised binary loop: fused multiply-adds only.
CONTRACT = {"contract"}


def inlined_scalar(fn):
    """:func:`scalar`, inlined into its callers at Numba IR level: for the small functions in
    the binary loop, which LLVM vectorises only when it has no calls. Compiled with
    :data:`CONTRACT`, like that loop, so that a call on its own does the loop's arithmetic."""
    return _jit(fn, cache=False, inline="always", fastmath=CONTRACT)


class Kernel:
    """A row loop compiled twice: ``parallel`` (``prange`` over Numba's thread pool) and
    ``serial`` (the same loop on the calling thread, no pool at all).

    A call runs ``serial`` when the current Numba thread count is 1 (:func:`thread_limit`),
    ``parallel`` otherwise. Inside an engine's training loop the serial loop keeps Numba's
    OpenMP pool from spinning against the engine's own OpenMP threads (benchmarks/
    bench_threads.py) when the two runtimes differ (:data:`gbloss.xgboost.OPENMP_SHARED`).
    The serial copy has its own qualified name, so its cache entry is its own (numba #6845).
    """

    def __init__(self, fn, **options):
        self.parallel = _jit(fn, parallel=True, **options)
        copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial",
                                  fn.__defaults__, fn.__closure__)
        copy.__qualname__ = fn.__qualname__ + "_serial"
        copy.__doc__ = fn.__doc__
        self.serial = _jit(copy, **options)
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __call__(self, *args):
        serial = getattr(_LIMIT, "serial", False) or numba.get_num_threads() == 1
        return (self.serial if serial else self.parallel)(*args)


def kernel(fn=None, **options):
    """Compile a row loop that uses ``numba.prange``; see :class:`Kernel`. ``@kernel`` or
    ``@kernel(**options)`` (extra ``numba.njit`` options, such as ``fastmath``)."""
    if fn is None:
        return lambda f: Kernel(f, **options)
    return Kernel(fn, **options)


#: Below this many output elements the kernels run on one thread: starting the pool costs more
#: than it saves (measured in benchmarks/bench_kernels.py).
SERIAL_BELOW = 20_000


def default_threads(n_elements):
    """Thread count used when the caller does not give one.

    ``GBLOSS_NUM_THREADS`` overrides; otherwise all of Numba's threads for large inputs and one
    for small ones.
    """
    env = os.environ.get("GBLOSS_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"GBLOSS_NUM_THREADS must be a positive integer, got {env!r}"
                             ) from None
        return max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    if n_elements < SERIAL_BELOW:
        return 1
    return numba.config.NUMBA_NUM_THREADS


#: Per thread: ``serial`` is true inside ``thread_limit(1)``.
_LIMIT = threading.local()


@contextlib.contextmanager
def thread_limit(n_threads):
    """Run the enclosed kernels with ``n_threads`` Numba threads, restoring the old count."""
    if n_threads is None:
        yield
        return
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) \
            or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    n = min(int(n_threads), numba.config.NUMBA_NUM_THREADS)
    was_serial = getattr(_LIMIT, "serial", False)
    _LIMIT.serial = n == 1
    try:
        if n == 1:
            yield
        else:
            old = numba.get_num_threads()
            numba.set_num_threads(n)
            try:
                yield
            finally:
                numba.set_num_threads(old)
    finally:
        _LIMIT.serial = was_serial
