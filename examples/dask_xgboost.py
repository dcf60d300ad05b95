"""Logit adjustment on a Dask cluster with XGBoost
===============================================

Logit-adjusted multiclass training on a 2-worker Dask cluster with gbloss.xgboost.dask_train.

The class priors and the start come from all partitions, not one worker's shard.
Run: python examples/dask_xgboost.py   (gbloss must be importable on the workers;
GBLOSS_EXAMPLE_SMALL=1: tiny data, for the tests)
"""

import logging
import os

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from xgboost import dask as dxgb

import gbloss
import gbloss.xgboost as gbx

if __name__ == "__main__":
    SMALL = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
    n = 800 if SMALL else 4000
    X, y = make_classification(n_samples=n, n_features=10, n_informative=6, n_classes=3,
                               weights=[0.8, 0.15, 0.05], random_state=0)
    n_train, chunk = 3 * n // 4, n // 8  # 6 training and 2 validation partitions
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            Client(cluster) as client:
        Xd, yd = da.from_array(X, chunks=(chunk, 10)), da.from_array(y, chunks=chunk)
        w = gbx.dask_class_balanced_weights(yd, beta=0.999)  # global class counts
        print("class-balanced weights per class:",
              np.unique(np.round(w.compute(), 3)).tolist())
        dtrain = dxgb.DaskDMatrix(client, Xd[:n_train], yd[:n_train])
        dvalid = dxgb.DaskDMatrix(client, Xd[n_train:], yd[n_train:])
        result = gbx.dask_train(client, {"num_class": 3, "max_depth": 4, "eta": 0.2}, dtrain,
                                20 if SMALL else 200, loss=gbloss.LogitAdjustedLoss(tau=1.0),
                                metric="balanced_accuracy", evals=[(dvalid, "valid")],
                                early_stopping_rounds=20, verbose_eval=False)
    booster = result["booster"]
    print("priors from all partitions:", booster.attr(gbx.ATTR_LOSS))
    proba = gbx.predict_proba(booster, X[n_train:])
    # logit adjustment: P(y | x) from predict_proba, the balanced decision from the raw margins
    decision = np.argmax(gbx.predict_raw(booster, X[n_train:]), axis=1)
    print(f"best iteration {booster.best_iteration}; balanced accuracy "
          f"{balanced_accuracy_score(y[n_train:], decision):.3f}; "
          f"rows sum to 1: {np.allclose(proba.sum(axis=1), 1)}")
