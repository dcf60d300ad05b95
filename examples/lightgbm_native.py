"""Focal loss in plain LightGBM
============================

Focal loss in plain ``lightgbm.train``, early-stopped on average precision (the README recipe).

Run: python examples/lightgbm_native.py   (GBLOSS_EXAMPLE_SMALL=1: tiny data, for the tests)
"""

import os
import tempfile
from pathlib import Path

import lightgbm as lgb
import numpy as np
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split

import gbloss
import gbloss.lightgbm as gbl

SMALL = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
ROUNDS = 40 if SMALL else 300
X, y = make_classification(n_samples=2000 if SMALL else 6000, n_features=20, weights=[0.97],
                           flip_y=0.01, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
X_train, X_valid, y_train, y_valid = train_test_split(X_train, y_train, test_size=0.3,
                                                      stratify=y_train, random_state=0)
train_set = lgb.Dataset(X_train, label=y_train)
valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)

# 1. Plain lightgbm.train: gbloss hands out the params (objective, default metric off, the
#    loss record) and sets the loss's start as init_score on the training and validation sets;
#    the metric says is_higher_better=True, so early stopping maximises average precision.
loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
params = gbl.params(loss, train_set, {"num_leaves": 15, "learning_rate": 0.1, "verbosity": -1},
                    valid_sets=[valid_set])
booster = lgb.train(params, train_set, num_boost_round=ROUNDS, valid_sets=[valid_set],
                    feval=gbl.metric(loss, "average_precision"),
                    callbacks=[lgb.early_stopping(20, verbose=False)])
proba = gbl.predict_proba(booster, X_test)  # probabilities, start included, best iteration
print(f"plain lightgbm.train: best iteration {booster.best_iteration}, "
      f"test average precision {average_precision_score(y_test, proba):.3f}")

# 2. The one-call form puts the start into the trees; the model keeps its loss when saved.
booster = gbl.train({"num_leaves": 15, "learning_rate": 0.1, "verbosity": -1},
                    lgb.Dataset(X_train, label=y_train), ROUNDS, loss=loss,
                    metric=["loss", "average_precision"],
                    valid_sets=[lgb.Dataset(X_valid, label=y_valid)],
                    callbacks=[lgb.early_stopping(20, first_metric_only=False, verbose=False)])
with tempfile.TemporaryDirectory() as tmp:
    booster.save_model(Path(tmp) / "focal.txt")
    loaded = lgb.Booster(model_file=Path(tmp) / "focal.txt")
proba = gbl.predict_proba(loaded, X_test)
print(f"gbloss.lightgbm.train, saved and loaded: test average precision "
      f"{average_precision_score(y_test, proba):.3f}, mean P(y=1) {proba.mean():.3f} "
      f"(positives: {y_test.mean():.3f})")
assert np.all((proba >= 0) & (proba <= 1))
