"""Compatibility shims, each with the condition under which it can be removed.

* :func:`validate_data`: scikit-learn < 1.6 has no ``sklearn.utils.validation.validate_data``
  (estimators called ``self._validate_data``, which took ``force_all_finite``). Remove when
  gbloss requires scikit-learn >= 1.6.
* :func:`import_numba_cuda`: numba-cuda <= 0.30.4 registers an overload for ``numpy.row_stack``
  when its ``numba.cuda.np.arrayobj`` module is imported (at the first kernel compile), and
  NumPy 2.5 removed that alias, so the first compile fails with ``AttributeError: module
  'numpy' has no attribute 'row_stack'``. Only when NumPy lacks the alias is it defined as
  ``numpy.vstack`` for the duration of that one import and removed again (NumPy's namespace is
  left as it was). Remove once numba-cuda guards the overload like numba 0.68 does
  (``if hasattr(np, "row_stack")``).
"""

import importlib.util

import numpy as np


def validate_data(estimator, /, X="no_validation", y="no_validation", **kwargs):
    """``sklearn.utils.validation.validate_data``, or on scikit-learn < 1.6 the estimator
    method it replaced. scikit-learn is imported here, on first use, so that the GPU path
    (:func:`import_numba_cuda`) never needs it."""
    try:
        from sklearn.utils.validation import validate_data as validate
    except ImportError:  # scikit-learn < 1.6
        kwargs["force_all_finite"] = kwargs.pop("ensure_all_finite", True)
        return estimator._validate_data(X, y, **kwargs)
    return validate(estimator, X, y, **kwargs)


def import_numba_cuda(unavailable_error):
    """``numba.cuda`` from the numba-cuda package, with the ``row_stack`` shim applied.

    ``unavailable_error``: the exception class raised when numba-cuda is not installed."""
    if importlib.util.find_spec("numba_cuda") is None:  # numba's own, deprecated CUDA target
        raise unavailable_error("gbloss's GPU kernels need the numba-cuda package: "
                                "pip install 'numba-cuda>=0.30'")
    from numba import cuda

    missing = not hasattr(np, "row_stack")
    if missing:
        np.row_stack = np.vstack
    try:
        import numba.cuda.np.arrayobj  # noqa: F401  (registers the row_stack overload)
    finally:
        if missing:
            del np.row_stack
    return cuda
