"""How gbloss's Numba kernels share the cores with the engines' OpenMP threads.

Each configuration runs in a fresh subprocess (OpenMP reads its settings at start-up) and times
training with the built-in logistic objective and with gbloss's binary focal objective, side by
side in that process. Configurations: quiet machine vs one core kept busy by another process;
gbloss kernels on all threads vs one thread; ``OMP_WAIT_POLICY`` unset vs PASSIVE.

Usage: python benchmarks/bench_threads.py [--rows 200000] [--rounds 20]
"""

import argparse
import itertools
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, os, statistics, sys, time
import numpy as np
import gbloss
engine, rows, rounds, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(0)
X = rng.normal(size=(rows, 50)).astype(np.float32)
y = (X[:, 0] + rng.normal(size=rows) > 2.0).astype(np.float64)
loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
n_threads = None if threads == "all" else int(threads)
out = (np.empty(rows), np.empty(rows))

def focal(preds, labels):
    return loss.gradient_hessian(labels, preds, out=out, n_threads=n_threads, check_input=False)

if engine == "xgboost":
    import xgboost as xgb
    dtrain = xgb.DMatrix(X, y, nthread=2)
    params = {"tree_method": "hist", "max_depth": 6, "nthread": 2, "min_child_weight": 1e-3}
    def builtin():
        xgb.train({**params, "objective": "binary:logistic"}, dtrain, rounds)
    def custom():
        xgb.train(params, dtrain, rounds, obj=lambda p, d: focal(p, y))
else:
    import lightgbm as lgb
    data = lgb.Dataset(X, y, params={"verbose": -1}).construct()
    params = {"num_leaves": 63, "num_threads": 2, "verbose": -1, "min_sum_hessian_in_leaf": 1e-6}
    def builtin():
        lgb.train({**params, "objective": "binary"}, data, rounds)
    def custom():
        lgb.train({**params, "objective": lambda p, d: focal(p, y)}, data, rounds)

builtin(); custom()
times = {"builtin": [], "gbloss": []}
for _ in range(3):
    for name, fn in (("builtin", builtin), ("gbloss", custom)):
        t = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t)
print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
"""


def busy():
    while True:
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    import lightgbm
    import numba
    import xgboost

    print(f"machine: {os.cpu_count()} cores, {platform.platform()}; python "
          f"{platform.python_version()}, numba {numba.__version__}, xgboost {xgboost.__version__}, "
          f"lightgbm {lightgbm.__version__}")
    print(f"{args.rows} rows x 50 features, {args.rounds} rounds, 2 engine threads; "
          "seconds per fit (median of 3) and ratio gbloss/builtin")
    print(f"{'engine':<10}{'busy core':<11}{'kernel threads':<16}{'OMP_WAIT_POLICY':<17}"
          f"{'builtin':>9}{'gbloss':>9}{'ratio':>8}")
    for busy_core, engine, threads, policy in itertools.product(
            (False, True), ("lightgbm", "xgboost"), ("all", "1"), ("", "PASSIVE")):
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        load = multiprocessing.Process(target=busy, daemon=True) if busy_core else None
        if load:
            load.start()
        try:
            start = time.perf_counter()
            res = subprocess.run([sys.executable, "-c", CHILD, engine, str(args.rows),
                                  str(args.rounds), threads], env=env, capture_output=True,
                                 text=True, timeout=900)
        finally:
            if load:
                load.terminate()
                load.join()
        if res.returncode:
            print(res.stderr[-2000:])
            continue
        t = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"{engine:<10}{str(busy_core):<11}{threads:<16}{policy or 'unset':<17}"
              f"{t['builtin']:>9.3f}{t['gbloss']:>9.3f}{t['gbloss'] / t['builtin']:>8.2f}"
              f"   ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
