"""Multiclass training (softmax, K=10 and K=100) with gbloss against the engines' built-ins.

Data: ``common.make_multiclass_data`` (20 features, class priors falling as 1/(k+1)); by
default K=10 on 50,000 rows with 20 rounds and K=100 on 20,000 rows with 10 rounds (every
round grows K trees), 9 interleaved repetitions, 2 engine threads: about 5 minutes on 2 cores.
One repetition's ratio varies by about ±10% on a shared 2-core machine (0.87 to 1.19 in one
run), hence 9 repetitions for the median.
Per engine and K, one interleaved run (the built-in and gbloss's cross-entropy next to each
other in each repetition, in alternating order; ``common.interleaved_times``); the ratio is the
median over repetitions of the time over the built-in's time in the same repetition
(``common.paired_ratio``); the seconds are medians.

* XGBoost (hist, depth 6, eta 0.1): ``multi:softprob`` (the reference, 1.00), started from
  gbloss's start (``base_score`` = the log class frequencies; XGBoost's own intercept estimate
  differs from them by ~1e-5, enough to flip near-tied splits); gbloss
  ``CrossEntropyLoss`` through ``gbloss.xgboost.train(..., hessian_scale=2.0, metric=None)``
  (XGBoost's softmax Hessian is ``2 p(1 - p)``: the same trees); gbloss ``FocalLoss(gamma=2)``
  (different trees, informative).
* LightGBM (31 leaves, learning rate 0.1): ``multiclass`` (the reference; it starts from the log
  class frequencies, as gbloss does); gbloss ``CrossEntropyLoss`` through
  ``gbloss.lightgbm.train(..., hessian_scale=K/(K-1), metric=None)`` (LightGBM's Hessian is
  ``K/(K-1) p(1 - p)``: the same trees); gbloss ``FocalLoss(gamma=2)`` (informative).

Same trees: from the constant start, every row of a class has the same gradient, so splits of
small nodes can tie exactly in gain and float32 rounding (gbloss computes the softmax in
float64) may break a tie the other way, after which the models drift apart. The check
compares leaves per tree and probabilities of the fitted pair; when those differ by more than
1e-4 it refits both for a few rounds from a per-row jittered start (no ties) and requires the
probabilities to agree within 1e-4 there.

Usage: python benchmarks/bench_multiclass.py [--rows 50000] [--rounds 20] [--many-rows 20000]
       [--many-rounds 10] [--classes 10] [--many-classes 100] [--features 20] [--repeat 9]
       [--threads 2]
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
    make_multiclass_data,
    print_end,
    print_environment,
)

import gbloss
import gbloss.lightgbm as gbl


def softmax(raw):
    e = np.exp(raw - raw.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def xgboost_fits(X, y, k, rounds, depth, threads):
    """{name: fit returning (booster, probabilities)}, and the tie-free check of the pair."""
    params = {"tree_method": "hist", "max_depth": depth, "eta": 0.1, "num_class": k,
              "nthread": threads}
    ce, focal = gbloss.CrossEntropyLoss(), gbloss.FocalLoss(gamma=2.0)
    start = [float(s) for s in ce.init_score(y, n_classes=k)]
    d_builtin, d_gbloss, d_focal = (xgb.DMatrix(X, label=y, nthread=threads) for _ in range(3))

    def builtin():
        booster = xgb.train({**params, "objective": "multi:softprob", "base_score": start},
                            d_builtin, rounds)
        return booster, booster.predict(d_builtin)

    def ours(loss, data, scale):
        def fit():
            booster = gbx.train(params, data, rounds, loss=loss, hessian_scale=scale,
                                metric=None)
            return booster, gbx.predict_proba(booster, data)
        return fit

    def tie_free():
        margin = np.asarray(start) + np.random.default_rng(1).normal(0, 0.1, (len(y), k))
        d = xgb.DMatrix(X, label=y, base_margin=margin.astype(np.float32), nthread=threads)
        a = xgb.train({**params, "objective": "multi:softprob"}, d, CHECK_ROUNDS)
        b = gbx.train(params, d, CHECK_ROUNDS, loss=ce, hessian_scale=2.0, metric=None)
        return a.predict(d), softmax(b.predict(d, output_margin=True))

    fits = {"multi:softprob (built-in)": builtin,
            "gbloss cross-entropy (hessian_scale=2)": ours(ce, d_gbloss, 2.0),
            "gbloss focal (gamma=2)": ours(focal, d_focal, 1.0)}
    return fits, tie_free


def lightgbm_fits(X, y, k, rounds, leaves, threads):
    params = {"num_leaves": leaves, "learning_rate": 0.1, "num_class": k, "num_threads": threads,
              "verbosity": -1}
    ce, focal = gbloss.CrossEntropyLoss(), gbloss.FocalLoss(gamma=2.0)
    scale = k / (k - 1)
    d_builtin, d_gbloss, d_focal = (
        lgb.Dataset(X, label=y, params={"verbosity": -1}).construct() for _ in range(3))

    def builtin():
        booster = lgb.train({**params, "objective": "multiclass"}, d_builtin, rounds)
        return booster, booster.predict(X)

    def ours(loss, data, hessian_scale):
        def fit():
            booster = gbl.train(params, data, rounds, loss=loss, hessian_scale=hessian_scale,
                                metric=None)
            return booster, gbl.predict_proba(booster, X)
        return fit

    def tie_free():
        start = ce.init_score(y, n_classes=k)
        margin = start + np.random.default_rng(1).normal(0, 0.1, (len(y), k))
        d_a = lgb.Dataset(X, label=y, init_score=margin, params={"verbosity": -1})
        d_b = lgb.Dataset(X, label=y, init_score=margin, params={"verbosity": -1})
        a = lgb.train({**params, "objective": "multiclass"}, d_a, CHECK_ROUNDS)
        b = lgb.train({**params, "objective": gbl.objective(ce, hessian_scale=scale),
                       "metric": "None"}, d_b, CHECK_ROUNDS)
        return (softmax(a.predict(X, raw_score=True) + margin),
                softmax(b.predict(X, raw_score=True) + margin))

    fits = {"multiclass (built-in)": builtin,
            f"gbloss cross-entropy (x{k}/{k - 1} Hessian)": ours(ce, d_gbloss, scale),
            "gbloss focal (gamma=2)": ours(focal, d_focal, 1.0)}
    return fits, tie_free


def run(argv=None):
    """Run the benchmark, print its tables and return its rows (for benchmarks/run_all.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--many-rows", type=int, default=20_000)
    parser.add_argument("--many-rounds", type=int, default=10)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--many-classes", type=int, default=100)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--depth", type=int, default=6, help="XGBoost max_depth")
    parser.add_argument("--leaves", type=int, default=31, help="LightGBM num_leaves")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2, help="engine threads")
    args = parser.parse_args(argv)

    print_environment()
    print(f"XGBoost hist, depth {args.depth}; LightGBM {args.leaves} leaves; learning rate 0.1; "
          f"{args.threads} engine threads; {args.repeat} interleaved repetitions")

    rows = []
    for k, n, rounds in ((args.classes, args.rows, args.rounds),
                         (args.many_classes, args.many_rows, args.many_rounds)):
        X, y = make_multiclass_data(n, args.features, k)
        counts = np.bincount(y.astype(int), minlength=k)
        print(f"\n== K={k}: {n} rows x {args.features} features, {rounds} rounds "
              f"({rounds * k} trees); class sizes {counts.min()}..{counts.max()}")
        for engine, (fits, tie_free) in (
                ("XGBoost", xgboost_fits(X, y, k, rounds, args.depth, args.threads)),
                ("LightGBM", lightgbm_fits(X, y, k, rounds, args.leaves, args.threads))):
            title = f"{engine} multiclass K={k}: {n} x {args.features}, {rounds} rounds"
            rows += compare_fits(title, fits, leaves_per_tree, args.repeat, tie_free)
    print_end()
    return rows


if __name__ == "__main__":
    run()
