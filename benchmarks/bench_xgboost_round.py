"""Where one XGBoost round's time goes, with the built-in objective and with gbloss's.

Wraps the XGBoost C calls of a round (``XGBoosterUpdateOneIter`` for the built-in objective;
``XGBoosterPredictFromDMatrix``, then ``XGBoosterTrainOneIter`` for a custom one), XGBoost's
``Booster.predict`` wrapper, gbloss's objective call and the kernel bound to a training run,
and prints the median of each per round over a few alternating fits, for three ways to train:

* ``binary:logistic`` (built-in);
* gbloss focal through ``xgboost.train(..., obj=gbloss.xgboost.objective(loss))``: XGBoost's
  Python loop (``Booster.update``: a margin copy through ``Booster.predict``, the objective,
  which reads labels and weights back every round, the gradients' array interfaces);
* gbloss focal through ``gbloss.xgboost.train``: its own loop, which after the first round
  calls XGBoost's C functions directly and the kernel bound to the run.

"other" is the round less the timed calls: Python in the loop, callbacks, wrappers. Default:
500k x 50, hist, depth 6, 50 rounds, binary focal (gamma=2, alpha=0.25) as in
``bench_xgboost.py``; ``--rows 2000 --features 20 --rounds 200`` is the small-data regime of
``bench_small.py``.

``--threads 1`` forces the serial kernel; by default the objective uses gbloss's default (all
threads when gbloss's kernels run in XGBoost's OpenMP runtime, ``gbloss.xgboost.OPENMP_SHARED``;
``GBLOSS_SHARE_OPENMP=0`` switches that off).

Usage: python benchmarks/bench_xgboost_round.py [--rows 500000] [--features 50] [--rounds 50]
       [--repeat 3] [--threads N]
"""

import argparse
import os
import platform
import statistics
import time

import xgboost as xgb
import xgboost.core
from common import make_data

import gbloss
import gbloss.xgboost as gbx

CALLS = ("XGBoosterUpdateOneIter", "XGBoosterPredictFromDMatrix", "XGBoosterTrainOneIter")
ROUND = "round (all of it)"


def timed(function, name, log):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        result = function(*args, **kwargs)
        log.setdefault(name, []).append(time.perf_counter() - t0)
        return result
    return wrapper


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="kernel threads")
    args = parser.parse_args(argv)
    gbx.share_openmp_runtime()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"load average {os.getloadavg()[0]:.2f}; xgboost {xgb.__version__}, "
          f"gbloss {gbloss.__version__}")
    print(f"data: {args.rows} x {args.features}, {args.rounds} rounds")

    X, y = make_data(args.rows, args.features)
    dtrain = xgb.DMatrix(X, label=y)
    params = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "min_child_weight": 0}
    loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
    start_params = gbx.params(loss, dtrain, params)
    log = {}
    inside_predict = []

    def c_call(function, name):
        def wrapper(*a):
            suffix = " (in Booster.predict)" if inside_predict else ""
            return timed(function, name + suffix, log)(*a)
        return wrapper

    for name in CALLS:
        setattr(xgboost.core._LIB, name, c_call(getattr(xgboost.core._LIB, name), name))
    predict = xgb.Booster.predict

    def predict_flagged(*a, **kw):
        inside_predict.append(1)
        try:
            return predict(*a, **kw)
        finally:
            inside_predict.pop()

    xgb.Booster.predict = timed(predict_flagged, "Booster.predict (Python and C)", log)
    objective = timed(gbx.objective(loss, n_threads=args.threads), "gbloss objective call",
                      log)
    bind = gbx.Objective.bind
    gbx.Objective.bind = lambda self, key: timed(bind(self, key), "gbloss bound kernel", log)
    fits = {"binary:logistic (built-in)": lambda: xgb.train(
                {**params, "objective": "binary:logistic"}, dtrain, args.rounds),
            "gbloss focal, xgboost.train(obj=)": lambda: xgb.train(
                start_params, dtrain, args.rounds, obj=objective),
            "gbloss focal, gbloss.xgboost.train": lambda: gbx.train(
                params, dtrain, args.rounds, loss=loss, metric=None, n_threads=args.threads)}
    for fit in fits.values():  # warm-up
        fit()
    print(f"gbloss kernels in XGBoost's OpenMP runtime: {gbx.OPENMP_SHARED}; kernel threads: "
          f"{args.threads or 'default'}")
    per_fit = {name: {} for name in fits}
    for rep in range(args.repeat):
        for name in (list(fits) if rep % 2 == 0 else list(fits)[::-1]):
            log.clear()
            t0 = time.perf_counter()
            fits[name]()
            log[ROUND] = [time.perf_counter() - t0]
            for call, values in log.items():
                # per round: calls made once per fit (the first round's objective call in
                # gbloss.xgboost.train) count as their share of a round
                per_fit[name].setdefault(call, []).append(sum(values) / args.rounds)
    base = statistics.median(per_fit["binary:logistic (built-in)"][ROUND])
    for name, calls in per_fit.items():
        medians = {call: statistics.median(values) * 1e3 for call, values in calls.items()}
        top_level = sum(v for c, v in medians.items() if c != ROUND and "(in " not in c)
        print(f"\n{name}: ms per round ({medians[ROUND] / (base * 1e3):.3f}x the built-in)")
        for call, value in medians.items():
            print(f"  {call:<56}{value:>8.3f}")
        print(f"  {'other (Python loop, callbacks, wrappers)':<56}"
              f"{medians[ROUND] - top_level:>8.3f}")

if __name__ == "__main__":
    main()
