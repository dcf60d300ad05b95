"""All of gbloss's CPU speed benchmarks in one run, summarised in one table of ratios.

Runs, one after the other in this process (each prints its own detailed table first):

* ``bench_kernels.py``: gradient/Hessian kernels vs a NumPy implementation and the fastest
  existing library (binary focal 1e6 rows; softmax focal K=10, 1e5 rows);
* ``bench_xgboost.py``: XGBoost training with gbloss focal vs ``binary:logistic``, a NumPy focal
  objective and imbalance-xgboost (500k x 50, hist, depth 6, 50 rounds);
* ``bench_lightgbm.py``: LightGBM training with gbloss focal vs the built-in ``binary``, a NumPy
  focal objective and imlightgbm (500k x 50, 63 leaves, 50 rounds, 2 threads);
* ``bench_small.py``: small data (2k x 20, 200 trees) through the scikit-learn estimators, fit +
  predict_proba: ``XGBClassifier`` / ``LGBMClassifier`` vs gbloss's cross-entropy (same trees)
  and focal estimators;
* ``bench_multiclass.py``: softmax training, K=10 (50k x 20, 20 rounds) and K=100 (20k x 20,
  10 rounds), both engines: ``multi:softprob`` / ``multiclass`` vs gbloss's cross-entropy
  (same trees) and focal;
* ``bench_multilabel.py``: 10 labels (50k x 20, 50 rounds): XGBoost ``binary:logistic`` on 2-D
  labels (both ``multi_strategy`` values) and LightGBM through ``OneVsRestClassifier`` vs
  gbloss's cross-entropy (same trees) and focal.

Every ratio compares timings measured side by side in the same run (interleaved repetitions;
the training ratios are medians of the ratios within each repetition), so machine noise
affects both sides alike. The GPU benchmark needs the GPU machine:
``benchmarks/bench_gpu.py``.

Usage: python benchmarks/run_all.py [--quick]    (--quick: small sizes, a smoke test)
"""

import argparse
import importlib
import os
import platform
import sys
from pathlib import Path

import numba
import numpy as np

import gbloss

try:  # first, as a script would: before Numba starts its threads (gbloss/_runtime.py)
    import gbloss.xgboost

    gbloss.xgboost.share_openmp_runtime()
except ImportError:
    pass

HERE = Path(__file__).resolve().parent
QUICK = {
    "bench_kernels": ["--rows", "100000", "--softmax-rows", "10000", "--repeat", "3"],
    "bench_xgboost": ["--rows", "20000", "--rounds", "5", "--repeat", "1"],
    "bench_lightgbm": ["--rows", "20000", "--rounds", "5", "--repeat", "1"],
    "bench_small": ["--trees", "50", "--repeat", "3"],
    "bench_multiclass": ["--rows", "10000", "--rounds", "3", "--many-rows", "20000",
                         "--many-rounds", "2", "--repeat", "1"],
    "bench_multilabel": ["--rows", "5000", "--rounds", "5", "--repeat", "1"],
}


def versions():
    found = [f"python {platform.python_version()}", f"numpy {np.__version__}",
             f"numba {numba.__version__}", f"gbloss {gbloss.__version__}"]
    for name in ("xgboost", "lightgbm", "sklearn"):
        try:
            found.append(f"{name} {importlib.import_module(name).__version__}")
        except ImportError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    rows = []
    for name in QUICK:
        if not (HERE / f"{name}.py").exists():
            print(f"\n{name}.py is missing: skipped")
            continue
        print(f"\n===== {name} =====")
        module = importlib.import_module(name)
        rows += module.run(QUICK[name] if args.quick else [])

    print("\n===== summary: time relative to the reference of each benchmark =====")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(versions())
    print(f"{'benchmark':<70}{'implementation':<42}{'ms':>10}{'ratio':>8}")
    for row in rows:
        key = "vs_builtin" if "vs_builtin" in row else "vs_gbloss"
        print(f"{row['benchmark']:<70}{row['implementation']:<42}"
              f"{row['seconds'] * 1e3:>10.1f}{row[key]:>7.2f}x")
    print("ratio: time / time of the built-in objective (training rows) or of gbloss (kernel "
          "rows); lower is faster")


if __name__ == "__main__":
    main()
