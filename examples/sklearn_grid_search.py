"""Focal loss in scikit-learn: pipeline and grid search
====================================================

Imbalance losses inside scikit-learn: a pipeline, a grid search over the focal parameters
scored by average precision, a generic estimator with the asymmetric loss, and early stopping.

Run: python examples/sklearn_grid_search.py (seconds; GBLOSS_EXAMPLE_SMALL=1: tiny data)
"""

import os

from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score, log_loss
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import gbloss
from gbloss.sklearn import FocalXGBClassifier, GBLossLGBMClassifier

SMALL = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
TREES = 10 if SMALL else 100
# 5% positives, a little label noise
X, y = make_classification(800 if SMALL else 3000, 12, n_informative=6, weights=[0.95],
                           flip_y=0.01, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.25, stratify=y_train,
                                              random_state=0)

# 1. Grid search over the focal parameters, scored by average precision (PR-AUC)
clf = FocalXGBClassifier(n_estimators=TREES, learning_rate=0.1, max_depth=3, n_jobs=1)
search = GridSearchCV(clf, {"gamma": [0.0, 1.0, 2.0], "alpha": [0.25, 0.5]},
                      scoring="average_precision", cv=3)
search.fit(X_train, y_train)
print(f"best focal parameters {search.best_params_}, CV average precision "
      f"{search.best_score_:.3f}")
proba = search.predict_proba(X_test)[:, 1]
print(f"  test average precision {average_precision_score(y_test, proba):.3f}")

# 2. The asymmetric loss with LightGBM, in a pipeline; loss parameters are loss__<name>
pipe = make_pipeline(StandardScaler(),
                     GBLossLGBMClassifier(gbloss.AsymmetricLoss(gamma_neg=4.0),
                                          n_estimators=TREES, learning_rate=0.05, num_leaves=15,
                                          n_jobs=1))
pipe.set_params(gblosslgbmclassifier__loss__gamma_neg=2.0)
pipe.fit(X_train, y_train)
proba = pipe.predict_proba(X_test)[:, 1]
print(f"ASL (gamma_neg=2) + LightGBM: test average precision "
      f"{average_precision_score(y_test, proba):.3f}")

# 3. Early stopping on average precision; predictions use the best iteration
clf = FocalXGBClassifier(gamma=2.0, n_estimators=5 * TREES, learning_rate=0.1, max_depth=3,
                         n_jobs=1, eval_metric="average_precision", early_stopping_rounds=20)
clf.fit(X_fit, y_fit, eval_set=[(X_val, y_val)])
print(f"focal with early stopping: best iteration {clf.best_iteration_}")

# 4. Calibrated probabilities (default) against the plain sigmoid link
calibrated = clf.predict_proba(X_test)[:, 1]
plain = clf.set_params(calibrate=False).predict_proba(X_test)[:, 1]
print(f"  test log-loss: calibrated {log_loss(y_test, calibrated):.4f}, "
      f"plain link {log_loss(y_test, plain):.4f}")
