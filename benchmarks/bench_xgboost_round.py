"""Where one XGBoost round's time goes, with the built-in objective and with gbloss's.

Wraps the XGBoost C calls of a round (``XGBoosterUpdateOneIter`` for the built-in objective;
``XGBoosterPredictFromDMatrix`` inside ``Booster.predict``, then ``XGBoosterTrainOneIter``
for a custom one) and gbloss's objective call, and prints the median of each over the rounds of
a few alternating fits. 500k x 50, hist, depth 6, 50 rounds, binary focal (gamma=2, alpha=0.25)
as in ``bench_xgboost.py``.

``--threads 1`` forces the serial kernel; by default the objective uses gbloss's default (all
threads when gbloss's kernels run in XGBoost's OpenMP runtime, ``gbloss.xgboost.OPENMP_SHARED``;
``GBLOSS_SHARE_OPENMP=0`` switches that off).

Usage: python benchmarks/bench_xgboost_round.py [--rows 500000] [--rounds 50] [--repeat 3]
       [--threads N]
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
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="kernel threads")
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
          f"xgboost {xgb.__version__}, gbloss {gbloss.__version__}")

    X, y = make_data(args.rows, 50)
    dtrain = xgb.DMatrix(X, label=y)
    params = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "min_child_weight": 0}
    loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
    start_params = gbx.params(loss, dtrain, params)
    log = {}
    for name in CALLS:
        setattr(xgboost.core._LIB, name, timed(getattr(xgboost.core._LIB, name), name, log))
    xgb.Booster.predict = timed(xgb.Booster.predict, "Booster.predict (Python and C)", log)
    objective = timed(gbx.objective(loss, n_threads=args.threads), "gbloss objective", log)
    fits = {"binary:logistic (built-in)": lambda: xgb.train(
                {**params, "objective": "binary:logistic"}, dtrain, args.rounds),
            "gbloss focal": lambda: xgb.train(start_params, dtrain, args.rounds, obj=objective)}
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
            log.setdefault("round (all of it)", []).append(
                (time.perf_counter() - t0) / args.rounds)
            for call, values in log.items():
                per_fit[name].setdefault(call, []).extend(values)
    for name, calls in per_fit.items():
        print(f"\n{name}: median ms per call")
        for call, values in calls.items():
            print(f"  {call:<36}{statistics.median(values) * 1e3:>8.2f}")
    rounds = [statistics.median(per_fit[name]["round (all of it)"]) for name in fits]
    print(f"\nper round, gbloss - built-in: {(rounds[1] - rounds[0]) * 1e3:.2f} ms "
          f"({rounds[1] / rounds[0]:.3f}x)")


if __name__ == "__main__":
    main()
