"""Focal loss on the GPU with XGBoost
==================================

Focal loss on the GPU with XGBoost, device-resident: nothing goes back to the host per round.

gbloss.xgboost.train with ``device="cuda"`` and ``X=`` (the feature matrix the DMatrix was built
from) computes gradients with the GPU kernels of gbloss.cuda, compiled from the same source as
the CPU kernels, and keeps margins, labels, weights, gradients and Hessians on the GPU. Without
``X=`` it warns and falls back to host gradients (several times slower).

Needs an NVIDIA GPU, CuPy, numba-cuda and a CUDA-enabled XGBoost.
Usage: python examples/gpu_xgboost.py   (GBLOSS_EXAMPLE_SMALL=1: 20k rows, 30 rounds)
"""

import os
import sys

try:
    import cupy as cp

    import gbloss.cuda  # noqa: F401  (numba-cuda; raises GPUUnavailableError without a GPU)
except (ImportError, RuntimeError) as exc:
    sys.exit(f"this example needs an NVIDIA GPU with CuPy and numba-cuda: {exc}")

import xgboost as xgb

import gbloss
import gbloss.xgboost as gbx

SMALL = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
n, d, rounds = (20_000, 20, 30) if SMALL else (1_000_000, 20, 500)
rs = cp.random.RandomState(0)
X = rs.standard_normal((n, d), dtype=cp.float32)
y = (X[:, 0] + 0.5 * X[:, 1] + rs.standard_normal(n, dtype=cp.float32) > 2.0).astype(cp.float32)
cut = 3 * n // 4
X_train, y_train, X_valid, y_valid = X[:cut], y[:cut], X[cut:], y[cut:]

dtrain = xgb.QuantileDMatrix(X_train, label=y_train)
dvalid = xgb.QuantileDMatrix(X_valid, label=y_valid, ref=dtrain)
loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)

booster = gbx.train({"device": "cuda", "tree_method": "hist", "max_depth": 6, "eta": 0.1,
                     "min_child_weight": 1e-3, "max_delta_step": 1.0},
                    dtrain, rounds, loss=loss, X=X_train,  # X: device-resident training
                    metric="average_precision", evals=[(dvalid, "valid")],
                    early_stopping_rounds=20, verbose_eval=50)

proba = gbx.predict_proba(booster, dvalid)  # NumPy out; loss and start come from the booster
print(f"positives: {float(y.mean()):.1%}; best iteration {booster.best_iteration}, "
      f"valid PR-AUC {booster.best_score:.4f}; mean P(y=1) {float(proba.mean()):.4f}")
