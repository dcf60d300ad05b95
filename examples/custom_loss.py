"""A loss of your own: positively weighted cross-entropy
=====================================================

A loss defined outside gbloss, in this file: cross-entropy with the positive class weighted by
``pos_weight`` (PyTorch's ``BCEWithLogitsLoss(pos_weight=...)``), for binary and multi-label
targets. One scalar function for the sigmoid link, one ``gbloss.Loss`` subclass, one
``register`` line; then it trains with both engines and the estimators, gives calibrated
probabilities, and ``gbloss compare --import custom_loss --losses ce,posweight`` compares it::

    L = -w y log p - (1 - y) log(1 - p)      g = w y (p - 1) + (1 - y) p
    h = (w y + 1 - y) p (1 - p)              (convex: the exact Hessian is positive)

Its population minimiser is ``sigmoid(z) = w eta / (w eta + 1 - eta)``; gbloss's calibration
inverts it from the loss's own gradients (the prior-shift ``logit(eta) = z - log w``).

Run: python examples/custom_loss.py (seconds; GBLOSS_EXAMPLE_SMALL=1: tiny data)
"""

import os

import numpy as np
from sklearn.datasets import make_classification
from sklearn.metrics import average_precision_score, log_loss
from sklearn.model_selection import train_test_split

import gbloss
from gbloss.losses import BINARY, MULTILABEL, primitives, scalar
from gbloss.sklearn import GBLossXGBClassifier


@scalar
def sigmoid_element(y, z, k, theta, mode):
    """Loss, gradient and Hessian of one output; ``theta = (pos_weight,)``."""
    pos_weight, = theta
    p, q, log_p, log_q = primitives.sigmoid_parts(z)  # no 1 - p, no overflow at any margin
    a = pos_weight * y  # weight of the y = 1 term
    b = 1.0 - y
    hess = (a + b) * p * q
    if mode == primitives.HESS_PSD:
        hess += primitives.HESS_FLOOR * (a + b)
    return -a * log_p - b * log_q, b * p - a * q, hess


class PosWeightedCrossEntropy(gbloss.Loss):
    """Cross-entropy with the positive class weighted by ``pos_weight`` (> 0)."""

    tasks = (BINARY, MULTILABEL)
    parameters = ("pos_weight",)
    scalars = {"sigmoid_element": sigmoid_element}
    key = "posweight"  # gbloss compare --losses posweight
    description = "cross-entropy, positives weighted"
    grid = {"pos_weight": (2.0, 5.0, 10.0)}
    fixed = {"pos_weight": 5.0}
    compare_select = "pr_auc"

    def __init__(self, pos_weight=5.0, *, hessian="psd"):
        super().__init__(hessian=hessian)
        if isinstance(pos_weight, bool) or not np.isfinite(pos_weight) or pos_weight <= 0:
            raise ValueError(f"pos_weight must be a finite number > 0, got {pos_weight!r}")
        self.pos_weight = float(pos_weight)

    def kernel_params(self, task, n_out):
        return (self.pos_weight,)

    def is_proper(self, task):
        return self.pos_weight == 1.0


gbloss.register(PosWeightedCrossEntropy)

if __name__ == "__main__":
    small = os.environ.get("GBLOSS_EXAMPLE_SMALL") == "1"
    X, y = make_classification(2000 if small else 20000, 10, n_informative=5,
                               weights=[0.95], flip_y=0.01, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    loss = PosWeightedCrossEntropy(pos_weight=10.0)
    clf = GBLossXGBClassifier(loss, n_estimators=50 if small else 200, max_depth=3,
                              learning_rate=0.1, random_state=0).fit(X_train, y_train)
    calibrated = clf.predict_proba(X_test)[:, 1]
    plain = clf.set_params(calibrate=False).predict_proba(X_test)[:, 1]
    ap = average_precision_score(y_test, calibrated)
    print(f"test positive rate {y_test.mean():.3f}; PR-AUC {ap:.3f}")
    for name, p in (("plain link", plain), ("calibrated", calibrated)):
        print(f"{name:>11}: mean probability {p.mean():.3f}, log-loss {log_loss(y_test, p):.4f}")
