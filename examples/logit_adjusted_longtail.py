"""Logit adjustment on a long-tailed multiclass problem
====================================================

Logit adjustment (Menon et al. 2021) on a long-tailed 6-class problem.

Plain cross-entropy learns the class priors and so favours the head classes; logit-adjusted
training (``LogitAdjustedLoss``) and post-hoc adjustment (``posthoc=True``) make ``predict``
estimate the balanced-error rule instead, while ``predict_proba`` stays P(y | x). Class
weighting is the usual alternative; it also distorts the probabilities (see the log-loss).
With boosted trees, training-time and post-hoc adjustment give the same model: the adjusted
loss is cross-entropy of ``z + tau log pi``, and from the loss-optimal start every tree is the
one cross-entropy would grow, so only the decision offset differs.

Run: python examples/logit_adjusted_longtail.py (seconds; GBLOSS_EXAMPLE_SMALL=1: tiny data)
"""

import os

import numpy as np
from sklearn.datasets import make_classification
from sklearn.metrics import accuracy_score, balanced_accuracy_score, log_loss, recall_score
from sklearn.model_selection import train_test_split

import gbloss
from gbloss.sklearn import GBLossXGBClassifier

SMALL = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
priors = 0.5 ** np.arange(6)  # head to tail: 1/2, 1/4, ... each class half the one before
X, y = make_classification(1500 if SMALL else 12000, 10, n_informative=6, n_classes=6,
                           n_clusters_per_class=1, weights=priors / priors.sum(),
                           class_sep=0.8, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.4, stratify=y,
                                                    random_state=0)
print("training rows per class:", np.bincount(y_train).tolist())
budget = {"n_estimators": 20 if SMALL else 200, "learning_rate": 0.1, "max_depth": 4,
          "n_jobs": 1, "random_state": 0}
models = {
    "cross-entropy": GBLossXGBClassifier(**budget),
    "cross-entropy, balanced weights": GBLossXGBClassifier(class_weight="balanced", **budget),
    "logit-adjusted training, tau=1": GBLossXGBClassifier(gbloss.LogitAdjustedLoss(1.0),
                                                          **budget),
    "post-hoc logit adjustment, tau=1": GBLossXGBClassifier(
        gbloss.LogitAdjustedLoss(1.0, posthoc=True), **budget),
}
print(f"{'':>33}  accuracy  balanced acc.  recall of 2 tail classes  log-loss")
for name, model in models.items():
    model.fit(X_train, y_train)
    pred = model.predict(X_test)
    tail = recall_score(y_test, pred, labels=[4, 5], average="macro")
    print(f"{name:>33}  {accuracy_score(y_test, pred):8.3f}  "
          f"{balanced_accuracy_score(y_test, pred):13.3f}  {tail:24.3f}  "
          f"{log_loss(y_test, model.predict_proba(X_test)):8.3f}")
