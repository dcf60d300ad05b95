"""Calibrated probabilities of a focal-loss model
==============================================

Calibrated probabilities from a focal-trained model, on data whose true P(y=1 | x) is known.

The plain link ``sigmoid(raw)`` of a focal-loss model is not P(y=1 | x) (Mukhoti et al. 2020):
focal loss is minimised by a distorted probability. ``predict_proba`` of the gbloss estimators
inverts that distortion (``calibrate=True``, the default); ``calibrate=False`` gives the plain
link. This script prints the expected calibration error (10 equal-mass bins, from
``sklearn.calibration.calibration_curve``), the log-loss and the mean absolute error against the
true probabilities, for both, on held-out data, and draws their reliability diagram.

Run: python examples/calibration.py   (GBLOSS_EXAMPLE_SMALL=1: tiny data, seconds)
"""

import os

import matplotlib.pyplot as plt
import numpy as np
from scipy import special
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss

from gbloss.sklearn import FocalXGBClassifier

SMALL = bool(os.environ.get("GBLOSS_EXAMPLE_SMALL"))
n = 4_000 if SMALL else 40_000
rng = np.random.default_rng(0)


def draw(n):
    """Five features, a known P(y=1 | x) with about 9% positives, labels drawn from it."""
    x = rng.normal(size=(n, 5))
    eta = special.expit(-3.0 + x @ np.array([1.0, -0.8, 0.6, 0.0, 0.0]) + 0.5 * np.sin(2 * x[:, 3]))
    return x, eta, rng.binomial(1, eta)


def expected_calibration_error(y, proba, n_bins=10):
    observed, predicted = calibration_curve(y, proba, n_bins=n_bins, strategy="quantile")
    return float(np.mean(np.abs(observed - predicted)))  # equal-mass bins: a plain mean


X_train, _, y_train = draw(n)
X_test, eta_test, y_test = draw(n)
clf = FocalXGBClassifier(gamma=2.0, alpha=0.25, n_estimators=30 if SMALL else 300,
                         learning_rate=0.05, max_depth=3, random_state=0)
clf.fit(X_train, y_train)

print(f"FocalLoss(gamma=2, alpha=0.25), XGBoost, {n} training rows, "
      f"{y_train.mean():.1%} positives; held-out:")
print(f"{'probabilities':<28}{'ECE':>8}{'log-loss':>10}{'mean |p - true|':>17}")
for name, calibrate in (("plain link (calibrate=False)", False),
                        ("calibrated (default)", True)):
    proba = clf.set_params(calibrate=calibrate).predict_proba(X_test)[:, 1]
    print(f"{name:<28}{expected_calibration_error(y_test, proba):>8.4f}"
          f"{log_loss(y_test, proba):>10.4f}{np.mean(np.abs(proba - eta_test)):>17.4f}")
print(f"{'true P(y=1 | x)':<28}{expected_calibration_error(y_test, eta_test):>8.4f}"
      f"{log_loss(y_test, eta_test):>10.4f}{0.0:>17.4f}")

# %%
# The reliability diagram: observed positive rate against the mean predicted probability, in 10
# equal-mass bins of the held-out rows. The calibrated probabilities lie on the diagonal.
fig, ax = plt.subplots(figsize=(5, 5))
ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
for name, calibrate in (("plain link", False), ("calibrated", True)):
    proba = clf.set_params(calibrate=calibrate).predict_proba(X_test)[:, 1]
    observed, predicted = calibration_curve(y_test, proba, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, "o-", label=name)
ax.set(xlabel="mean predicted P(y=1)", ylabel="observed positive rate",
       title="FocalLoss(gamma=2, alpha=0.25), held-out rows")
ax.legend(loc="upper left")
plt.show()
