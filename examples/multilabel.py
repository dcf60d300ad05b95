"""Multi-label: native multi-output trees against one-vs-rest
==========================================================

Multi-label targets two ways: a native estimator fitting the 0/1 label matrix with XGBoost
multi-output trees, and one-vs-rest (one model per label) with the same budget.

Run: python examples/multilabel.py (seconds; GBLOSS_EXAMPLE_SMALL=1: tiny data, for the tests)
"""

import os

from sklearn.datasets import make_multilabel_classification
from sklearn.metrics import average_precision_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.multiclass import OneVsRestClassifier

import gbloss
from gbloss.sklearn import FocalLGBMClassifier, GBLossXGBClassifier

SMALL = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
X, Y = make_multilabel_classification(300 if SMALL else 1000, 10, n_classes=5, n_labels=2,
                                      random_state=0)
X_train, X_test, Y_train, Y_test = train_test_split(X, Y, test_size=0.5, random_state=0)
budget = {"n_estimators": 10 if SMALL else 50, "learning_rate": 0.1, "max_depth": 3,
          "n_jobs": 1}


def report(name, model):
    ap = average_precision_score(Y_test, model.predict_proba(X_test), average="macro")
    f1 = f1_score(Y_test, model.predict(X_test), average="macro")
    print(f"{name:>34}: macro average precision {ap:.3f}, macro F1 {f1:.3f}")


for name, loss in [("focal", gbloss.FocalLoss(gamma=2.0)),
                   ("asymmetric", gbloss.AsymmetricLoss(gamma_neg=4.0, clip=0.05))]:
    native = GBLossXGBClassifier(loss, **budget).fit(X_train, Y_train)  # Y: (n, 5) 0/1
    report(f"{name}, native multi-output trees", native)
    report(f"{name}, one-vs-rest", OneVsRestClassifier(GBLossXGBClassifier(loss, **budget))
           .fit(X_train, Y_train))

# LightGBM has no multi-output trees: one-vs-rest
budget.pop("max_depth")
report("focal, LightGBM one-vs-rest",
       OneVsRestClassifier(FocalLGBMClassifier(gamma=2.0, num_leaves=8, **budget))
       .fit(X_train, Y_train))
print("per-label P(y_k = 1) of the first test row:", native.predict_proba(X_test[:1]).round(2))
