"""gbloss's kernels in XGBoost's own OpenMP runtime (gbloss.xgboost.OPENMP_SHARED,
gbloss._runtime).

Each case runs in a fresh interpreter: what is decided depends on what the process loaded and
started before the first use of ``gbloss.xgboost``. Importing it decides nothing.
"""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the shared runtime is a Linux feature")

PROBE = r"""
import json, os, sys
{before}
import numpy as np
import xgboost as xgb
import gbloss
import gbloss.xgboost as gbx
from gbloss.losses import _loops as _kernels

def threads():
    return len(os.listdir("/proc/self/task"))

rng = np.random.default_rng(0)
X = rng.normal(size=(30000, 5)).astype(np.float32)
y = (X[:, 0] > 1).astype(np.float32)
dtrain = xgb.DMatrix(X, label=y)
loss = gbloss.FocalLoss(2.0, 0.25)
obj = gbx.objective(loss)
serial = gbx.train({{"max_depth": 3}}, dtrain, 3, loss=loss, metric=None, n_threads=1)
booster = gbx.train({{"max_depth": 3}}, dtrain, 3, loss=loss, metric=None)
before = threads()
_kernels.check_weights.parallel(np.zeros(100000))
print(json.dumps({{"shared": gbx.OPENMP_SHARED, "threads": obj._threads(),
                   "new_threads": threads() - before,
                   "same_model": np.array_equal(serial.predict(dtrain), booster.predict(dtrain))}}))
"""


def _probe(before="", env=None):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(before=before)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NUMBA_NUM_THREADS": "2", **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_kernels_run_in_xgboost_runtime_when_used_first():
    result = _probe()
    assert result["shared"] is True
    assert result["threads"] is None  # all threads, gbloss's default
    assert result["new_threads"] == 0  # Numba's parallel loop ran in XGBoost's thread pool
    assert result["same_model"]  # the parallel kernel computes what the serial one does


def test_switched_off_by_the_environment():
    result = _probe(env={"GBLOSS_SHARE_OPENMP": "0"})
    assert result["shared"] is False
    assert result["threads"] == 1
    assert result["same_model"]


@pytest.mark.parametrize("before", [
    "import lightgbm",  # the system libgomp is loaded and bound to LightGBM
    "import numba; numba.get_num_threads()",  # Numba's threading layer has started already
])
def test_not_shared_when_another_runtime_came_first(before):
    result = _probe(before)
    assert result["shared"] is False
    assert result["threads"] == 1


IMPORT_PROBE = r"""
import json, os
import numba
import gbloss, gbloss.xgboost, gbloss.sklearn
from gbloss import _runtime

before = {"numba_started": numba.np.ufunc.parallel._is_initialized,
          "decided": _runtime._shared is not None}
AFTER_IMPORT
import gbloss.lightgbm  # loads the system libgomp, after the decision if one was made
print(json.dumps({**before, "shared": gbloss.xgboost.OPENMP_SHARED}))
"""


def _import_probe(after_import=""):
    script = IMPORT_PROBE.replace("AFTER_IMPORT", after_import)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NUMBA_NUM_THREADS": "2"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_gbloss_has_no_side_effect():
    result = _import_probe()
    assert result == {"numba_started": False, "decided": False,
                      "shared": False}  # lightgbm's libgomp came before the first use


def test_an_explicit_early_call_shares_whatever_is_imported_later():
    result = _import_probe("assert gbloss.xgboost.share_openmp_runtime() is True")
    assert result == {"numba_started": False, "decided": False, "shared": True}
