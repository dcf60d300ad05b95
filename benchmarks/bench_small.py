"""Small data through the scikit-learn estimators: gbloss's against the engines' own.

Fit + ``predict_proba`` on 2,000 rows x 20 features (``common.make_data``, about 5% positives),
200 trees, ``n_jobs=2``, where a fit takes a fraction of a second and fixed costs per fit
(validation of the data, the loss's start, compilation caches, the estimator's bookkeeping)
weigh most. Per engine, one interleaved run (the built-in estimator and gbloss's
cross-entropy estimator next to each other in each repetition, in alternating order;
``common.interleaved_times``); the ratio is the median over repetitions of the time over the
built-in's time in the same repetition (``common.paired_ratio``); the seconds are medians.

* XGBoost (``learning_rate=0.3``, ``max_depth=6``, ``tree_method="hist"`` passed to all three:
  XGBoost's defaults): ``xgboost.XGBClassifier`` (the reference, 1.00);
  ``gbloss.sklearn.GBLossXGBClassifier(loss=CrossEntropyLoss())``, which grows the same trees
  (checked below: same leaves per tree, probabilities equal within 1e-4);
  ``gbloss.sklearn.FocalXGBClassifier()`` (gamma=2, with the focal loss's engine defaults
  ``min_child_weight=1e-3``, ``max_delta_step=1``: different trees, informative).
* LightGBM (``learning_rate=0.1``, ``num_leaves=31``: LightGBM's defaults):
  ``lightgbm.LGBMClassifier`` (the reference); ``GBLossLGBMClassifier(loss=CrossEntropyLoss())``
  (same trees, checked); ``FocalLGBMClassifier()`` (gamma=2, its engine defaults; informative).

Usage: python benchmarks/bench_small.py [--rows 2000] [--features 20] [--trees 200]
       [--repeat 15] [--n-jobs 2]
"""

# ruff: noqa: E402 (the OpenMP runtime is chosen before the other imports)
import gbloss.xgboost as gbx

gbx.share_openmp_runtime()  # before LightGBM loads the system libgomp and Numba starts threads

import argparse

import lightgbm as lgb
import xgboost as xgb
from common import (
    compare_fits,
    leaves_per_tree,
    make_data,
    print_end,
    print_environment,
)

import gbloss
from gbloss.sklearn import (
    FocalLGBMClassifier,
    FocalXGBClassifier,
    GBLossLGBMClassifier,
    GBLossXGBClassifier,
)


def booster_of(estimator):
    return estimator.get_booster() if hasattr(estimator, "get_booster") else estimator.booster_


def fit_predict(make, X, y):
    """A timed unit: a new estimator, fitted, then its probabilities on the training rows."""
    def fit():
        estimator = make().fit(X, y)
        return estimator, estimator.predict_proba(X)
    return fit


def run(argv=None):
    """Run the benchmark, print its tables and return its rows (for benchmarks/run_all.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--n-jobs", type=int, default=2, help="engine threads")
    args = parser.parse_args(argv)

    print_environment()
    print(f"data: {args.rows} rows x {args.features} features; {args.trees} trees, "
          f"n_jobs={args.n_jobs}; fit + predict_proba; {args.repeat} interleaved repetitions")

    X, y = make_data(args.rows, args.features)
    ce = gbloss.CrossEntropyLoss()
    n, jobs = args.trees, args.n_jobs
    xgb_common = {"n_estimators": n, "learning_rate": 0.3, "max_depth": 6, "tree_method": "hist",
                  "n_jobs": jobs}
    lgb_common = {"n_estimators": n, "learning_rate": 0.1, "num_leaves": 31, "n_jobs": jobs}
    configurations = {
        "XGBoost": {
            "xgboost.XGBClassifier (built-in)": lambda: xgb.XGBClassifier(**xgb_common),
            "GBLossXGBClassifier(CrossEntropyLoss)": lambda: GBLossXGBClassifier(
                loss=ce, **xgb_common),
            "FocalXGBClassifier (gamma=2)": lambda: FocalXGBClassifier(**xgb_common),
        },
        "LightGBM": {
            "lightgbm.LGBMClassifier (built-in)": lambda: lgb.LGBMClassifier(
                verbosity=-1, **lgb_common),
            "GBLossLGBMClassifier(CrossEntropyLoss)": lambda: GBLossLGBMClassifier(
                loss=ce, **lgb_common),
            "FocalLGBMClassifier (gamma=2)": lambda: FocalLGBMClassifier(**lgb_common),
        },
    }

    rows = []
    for engine, makers in configurations.items():
        fits = {name: fit_predict(make, X, y) for name, make in makers.items()}
        title = (f"small data, {engine} estimators: {args.rows} x {args.features}, {n} trees, "
                 "fit+proba")
        rows += compare_fits(title, fits, lambda est: leaves_per_tree(booster_of(est)),
                             args.repeat, label="estimator")
    print_end()
    return rows


if __name__ == "__main__":
    run()
