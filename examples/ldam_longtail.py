"""LDAM on a long-tailed multiclass problem
=========================================

The label-distribution-aware margin loss (LDAM, Cao et al. 2019) next to logit adjustment on a
long-tailed 6-class problem (as in ``logit_adjusted_longtail.py``).

LDAM trains cross-entropy with the true class's score lowered by a margin that grows towards the
tail, ``Delta_j ~ n_j^(-1/4)`` (the rarest class gets ``max_margin``): a tail row must win by a
wider margin. ``predict`` is the argmax of the raw scores; ``predict_proba`` inverts LDAM's
population minimiser (its plain softmax is not calibrated), so the log-loss is comparable with
cross-entropy's. The class counts come from the training labels (``LDAMLoss(counts=None)``).

What to expect: with boosted trees LDAM moves the decision only a little. At the population
optimum two classes tie in raw score where their probabilities differ by the factor
``(1 - p b_k) / (1 - p b_j)``, ``b = 1 - exp(-Delta)``, at most 2 for any margins (derivations
11.2), while logit adjustment moves the tie by the prior ratio (here up to 32). The paper's
gains come with deep networks, normalised logits and deferred re-weighting.

Run: python examples/ldam_longtail.py (about 10 s; GBLOSS_EXAMPLE_SMALL=1: tiny data)
"""

import os

import numpy as np
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score, balanced_accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import label_binarize

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
    "logit-adjusted, tau=1": GBLossXGBClassifier(gbloss.LogitAdjustedLoss(1.0), **budget),
    "LDAM, max_margin=0.5": GBLossXGBClassifier(gbloss.LDAMLoss(0.5), **budget),
    "LDAM, max_margin=2": GBLossXGBClassifier(gbloss.LDAMLoss(2.0), **budget),
}
print(f"{'':>22}  balanced acc.  macro PR-AUC  log-loss")
for name, model in models.items():
    model.fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    pr_auc = average_precision_score(label_binarize(y_test, classes=range(6)), proba,
                                     average="macro")
    print(f"{name:>22}  {balanced_accuracy_score(y_test, model.predict(X_test)):13.3f}  "
          f"{pr_auc:12.3f}  {log_loss(y_test, proba):8.3f}")
margins = models["LDAM, max_margin=2"].loss_.margins(6)
print("LDAM margins (max_margin=2), head to tail:", np.round(margins, 3).tolist())
