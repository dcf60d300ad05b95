"""Focal loss in plain XGBoost
===========================

Focal loss in plain ``xgboost.train``, early-stopped on average precision (the README recipe).

Run: python examples/xgboost_native.py  (GBLOSS_EXAMPLE_SMALL=1: tiny data, for the tests)
"""

import os
import tempfile
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split

import gbloss
import gbloss.xgboost as gbx

SMALL = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
ROUNDS = 30 if SMALL else 300
X, y = make_classification(n_samples=1500 if SMALL else 6000, n_features=20, weights=[0.97],
                           flip_y=0.01, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
X_train, X_valid, y_train, y_valid = train_test_split(X_train, y_train, test_size=0.3,
                                                      stratify=y_train, random_state=0)
dtrain = xgb.DMatrix(X_train, label=y_train)
dvalid = xgb.DMatrix(X_valid, label=y_valid)

# 1. Plain xgboost.train: gbloss hands out the params (with the loss's start), the objective
#    and the metric; "auc_pr" makes early stopping maximise.
loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
params = gbx.params(loss, dtrain, {"max_depth": 4, "eta": 0.1, "min_child_weight": 0})
booster = xgb.train(params, dtrain, num_boost_round=ROUNDS, obj=gbx.objective(loss),
                    custom_metric=gbx.metric(loss, "average_precision"),
                    evals=[(dvalid, "valid")], early_stopping_rounds=20, verbose_eval=False)
proba = gbx.predict_proba(booster, X_test, loss=loss)  # probabilities, up to best_iteration
print(f"plain xgboost.train: best iteration {booster.best_iteration}, "
      f"test average precision {average_precision_score(y_test, proba):.3f}")

# 2. The one-call form: the booster remembers its loss and start, also after saving.
booster = gbx.train({"max_depth": 4, "eta": 0.1, "min_child_weight": 0}, dtrain, ROUNDS, loss=loss,
                    metric=["loss", "average_precision"],
                    evals=[(dvalid, "valid")], early_stopping_rounds=20, verbose_eval=False)
with tempfile.TemporaryDirectory() as tmp:
    booster.save_model(Path(tmp) / "focal.ubj")
    loaded = xgb.Booster(model_file=Path(tmp) / "focal.ubj")
proba = gbx.predict_proba(loaded, X_test, calibrate=False)  # the focal link: biased as P(y=1|x)
calibrated = gbx.predict_proba(loaded, X_test)  # calibrated (the default)
print(f"gbloss.xgboost.train, saved and loaded: test average precision "
      f"{average_precision_score(y_test, proba):.3f}; mean P(y=1): link {proba.mean():.3f}, "
      f"calibrated {calibrated.mean():.3f} (positives: {y_test.mean():.3f})")
assert np.all((proba >= 0) & (proba <= 1))
