"""Helpers that the XGBoost and LightGBM adapters share (engine-independent)."""

import weakref

import numpy as np


def check_prepared(loss, module):
    """Refuse a loss whose training statistics are still open (LogitAdjustedLoss(priors=None)):
    each caller would otherwise estimate them from whatever labels it sees."""
    if not loss.is_prepared:
        raise ValueError(f"{loss!r} has no class priors yet: fix them from the training labels "
                         f"first, loss = loss.prepare(y_train) (gbloss.{module}.train and "
                         "dask_train do this for you)")


def same_loss(a, b):
    """Whether two losses are the same loss with the same parameters, arrays (priors from a
    JSON record) compared to 1e-12."""
    da, db = a.to_dict(), b.to_dict()
    if da["name"] != db["name"] or da["params"].keys() != db["params"].keys():
        return False
    for key, va in da["params"].items():
        vb = db["params"][key]
        if va is None or vb is None or isinstance(va, str) or isinstance(vb, str):
            if va != vb:
                return False
        elif np.shape(va) != np.shape(vb) or not np.allclose(va, vb, rtol=1e-12, atol=0):
            return False
    return True


class PerDatasetCache:
    """Mixin for objectives and metrics that cache labels and buffers per engine dataset:
    pickling (Dask) and deep copies (``lightgbm.train`` copies its params) leave the caches
    out and start new ones. Subclasses call :meth:`_new_caches` in ``__init__``."""

    def _new_caches(self):
        self._cache = weakref.WeakKeyDictionary()

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["_cache"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._new_caches()


class EngineObjective(PerDatasetCache):
    """What the engines' objectives share: a prepared loss, a Hessian scale, the kernel's
    threads and the start training should begin from. ``engine``: the gbloss module."""

    engine = None

    def __init__(self, loss, hessian_scale, n_threads):
        check_prepared(loss, self.engine)
        scale = float(hessian_scale)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"hessian_scale must be a finite number > 0, got {hessian_scale!r}")
        self.loss = loss
        self.hessian_scale = scale
        self.n_threads = n_threads
        #: The start training should begin from; None: the loss's start on the labels seen
        #: (dask_train sets the global start, since a worker sees only its shard).
        self.expected_start = None
        self._new_caches()

    def __repr__(self):
        return f"Objective({self.loss!r}, hessian_scale={self.hessian_scale!r})"


class EngineMetric(PerDatasetCache):
    """What the engines' metrics share: a prepared loss and validated metric names."""

    engine = None

    def __init__(self, loss, names, known):
        check_prepared(loss, self.engine)
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise ValueError(f"unknown metric name(s) {unknown or names!r}; choose from "
                             f"{list(known)}")
        self.loss = loss
        self.names = names
        self._new_caches()

    def __repr__(self):
        return f"Metric({self.loss!r}, names={self.names!r})"
