"""Multi-label training (10 labels) with gbloss against the engines' built-ins.

Data: ``common.make_multilabel_data`` (20 features, 10 labels of different prevalences); by
default 50,000 rows, 50 rounds, 9 interleaved repetitions, 2 engine threads: about 5 minutes
on 2 cores. Per configuration, one interleaved run (the built-in and gbloss's cross-entropy
next to each other in each repetition, in alternating order; ``common.interleaved_times``);
the ratio is the median over repetitions of the time over the built-in's time in the same
repetition (``common.paired_ratio``); the seconds are medians.
One repetition's ratio varies by about ±10% on a shared 2-core machine (0.87 to 1.19 in one
run), hence 9 repetitions for the median.

* XGBoost (hist, depth 6, eta 0.1), once per ``multi_strategy`` (``"one_output_per_tree"``:
  one tree per label and round; ``"multi_output_tree"``: one tree with vector leaves):
  built-in ``binary:logistic`` on the 2-D labels (n, 10) (the reference, 1.00); gbloss
  ``CrossEntropyLoss`` through ``gbloss.xgboost.train`` on the same labels (the same trees:
  XGBoost's per-label intercept is gbloss's start); gbloss ``FocalLoss(gamma=2)`` (informative).
* LightGBM (no multi-output objective): ``OneVsRestClassifier(lightgbm.LGBMClassifier(...))``
  (the reference); ``OneVsRestClassifier(GBLossLGBMClassifier(loss=CrossEntropyLoss(), ...))``
  (the same trees); ``OneVsRestClassifier(FocalLGBMClassifier(...))`` (gamma=2 with its engine
  defaults; informative). 31 leaves, learning rate 0.1, ``n_jobs`` threads per estimator,
  one label after the other; fit + ``predict_proba``.

The same-trees check (``common.check_same_trees``) compares leaves per tree and probabilities
of each pair, with a tie-free refit from a jittered start when they differ.

Usage: python benchmarks/bench_multilabel.py [--rows 50000] [--features 20] [--labels 10]
       [--rounds 50] [--repeat 9] [--threads 2]
"""

# ruff: noqa: E402 (the OpenMP runtime is chosen before the other imports)
import gbloss.xgboost as gbx

gbx.share_openmp_runtime()  # before LightGBM loads the system libgomp and Numba starts threads

import argparse

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from common import (
    CHECK_ROUNDS,
    compare_fits,
    leaves_per_tree,
    make_multilabel_data,
    print_end,
    print_environment,
)
from sklearn.multiclass import OneVsRestClassifier

import gbloss
from gbloss.sklearn import FocalLGBMClassifier, GBLossLGBMClassifier


def sigmoid(raw):
    return 1.0 / (1.0 + np.exp(-raw))


def xgboost_fits(X, Y, strategy, rounds, threads):
    """{name: fit returning (booster, probabilities)}, and the tie-free check of the pair."""
    params = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "multi_strategy": strategy,
              "nthread": threads}
    ce, focal = gbloss.CrossEntropyLoss(), gbloss.FocalLoss(gamma=2.0)
    d_builtin, d_gbloss, d_focal = (xgb.DMatrix(X, label=Y, nthread=threads) for _ in range(3))

    def builtin():
        booster = xgb.train({**params, "objective": "binary:logistic"}, d_builtin, rounds)
        return booster, booster.predict(d_builtin)

    def ours(loss, data):
        def fit():
            booster = gbx.train(params, data, rounds, loss=loss, metric=None)
            return booster, gbx.predict_proba(booster, data)
        return fit

    def tie_free():
        margin = ce.init_score(Y) + np.random.default_rng(1).normal(0, 0.1, Y.shape)
        d = xgb.DMatrix(X, label=Y, base_margin=margin.astype(np.float32), nthread=threads)
        a = xgb.train({**params, "objective": "binary:logistic"}, d, CHECK_ROUNDS)
        b = gbx.train(params, d, CHECK_ROUNDS, loss=ce, metric=None)
        return a.predict(d), sigmoid(b.predict(d, output_margin=True))

    fits = {"binary:logistic, 2-D labels (built-in)": builtin,
            "gbloss cross-entropy": ours(ce, d_gbloss),
            "gbloss focal (gamma=2)": ours(focal, d_focal)}
    return fits, tie_free


def lightgbm_fits(X, Y, rounds, threads):
    common = {"n_estimators": rounds, "learning_rate": 0.1, "num_leaves": 31, "n_jobs": threads}
    makers = {
        "OvR LGBMClassifier (built-in)": lambda: lgb.LGBMClassifier(verbosity=-1,
                                                                          **common),
        "OvR GBLossLGBMClassifier(cross-entropy)": lambda: GBLossLGBMClassifier(
            loss=gbloss.CrossEntropyLoss(), **common),
        "OvR FocalLGBMClassifier (gamma=2)": lambda: FocalLGBMClassifier(**common),
    }

    def fit_predict(make):
        def fit():
            model = OneVsRestClassifier(make()).fit(X, Y)
            return model, model.predict_proba(X)
        return fit

    return {name: fit_predict(make) for name, make in makers.items()}


def ovr_leaves_per_tree(model):
    boosters = [estimator.booster_ for estimator in model.estimators_]
    return float(np.mean([leaves_per_tree(booster) for booster in boosters]))


def run(argv=None):
    """Run the benchmark, print its tables and return its rows (for benchmarks/run_all.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2, help="engine threads")
    args = parser.parse_args(argv)

    print_environment()
    X, Y = make_multilabel_data(args.rows, args.features, args.labels)
    prevalence = Y.mean(axis=0)
    print(f"data: {args.rows} rows x {args.features} features, {args.labels} labels (prevalence "
          f"{prevalence.min():.1%}..{prevalence.max():.1%}); {args.rounds} rounds, learning rate "
          f"0.1, {args.threads} engine threads; {args.repeat} interleaved repetitions")

    configurations = [
        (f"XGBoost {args.labels} labels, {strategy}", *xgboost_fits(X, Y, strategy, args.rounds,
                                                           args.threads), leaves_per_tree)
        for strategy in ("one_output_per_tree", "multi_output_tree")]
    configurations.append((f"LightGBM {args.labels} labels, OneVsRest, fit+proba",
                           lightgbm_fits(X, Y, args.rounds, args.threads), None,
                           ovr_leaves_per_tree))
    rows = []
    for label, fits, tie_free, count_leaves in configurations:
        title = f"{label}: {args.rows} x {args.features}, {args.rounds} rounds"
        print()
        rows += compare_fits(title, fits, count_leaves, args.repeat, tie_free)
    print_end()
    return rows


if __name__ == "__main__":
    run()
