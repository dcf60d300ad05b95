"""XGBoost training time with gbloss's binary focal objective, as a ratio to ``binary:logistic``.

One run, interleaved repetitions (the built-in and gbloss next to each other in each, in
alternating order; ``common.interleaved_times``). The ratio is the median over
repetitions of gbloss's time over the built-in's time in the same repetition
(``common.paired_ratio``); the seconds are medians. Configurations (same data, same parameters:
hist, depth 6, ``min_child_weight=0`` as derivations 8.4 recommends for focal-type losses):

* ``binary:logistic``: XGBoost's built-in objective (the reference, ratio 1.00);
* gbloss focal (gamma=2, alpha=0.25) through ``gbloss.xgboost.train`` (start, validation and
  all included);
* a NumPy focal objective with the same formulas, written straightforwardly (labels read with
  ``get_label()`` every round, temporaries everywhere);
* imbalance-xgboost 0.8.1's ``Focal_Binary_Loss`` (gamma=2; it has no alpha), the existing
  library the survey in pitfalls.md measured; skipped with a note when not installed.

The custom objectives all start from gbloss's start (``base_score`` of ``gbloss.xgboost.params``)
so that the trees grow under the same conditions; the mean number of leaves per tree is printed
next to each time, since tree sizes (not only the objective) decide the cost of a round.

Usage: python benchmarks/bench_xgboost.py [--rows 500000] [--features 50] [--rounds 50]
       [--depth 6] [--repeat 9] [--nthread N]
"""

import argparse
import os
import platform
import statistics

import numba
import numpy as np
import xgboost as xgb
from common import interleaved_times, make_data, numpy_focal_binary, paired_ratio

import gbloss
import gbloss.xgboost as gbx

gbx.share_openmp_runtime()  # before anything starts Numba's threads (gbloss/_runtime.py)

GAMMA, ALPHA = 2.0, 0.25


def numpy_focal_objective(predt, dtrain):
    """Binary focal loss (derivations 2.3-2.4, PSD Hessian of section 8) in plain NumPy, with
    the labels read from the engine's container every round."""
    return numpy_focal_binary(dtrain.get_label(), predt.astype(np.float64), GAMMA, ALPHA)


def leaves_per_tree(booster):
    dump = booster.get_dump()
    return sum(tree.count("leaf=") for tree in dump) / len(dump)


def run(argv=None):
    """Run the benchmark, print its table and return its rows (for benchmarks/run_all.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--nthread", type=int, default=None, help="XGBoost threads (all cores)")
    args = parser.parse_args(argv)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
          f" (threading layer {numba.config.THREADING_LAYER}, {numba.config.NUMBA_NUM_THREADS} "
          f"threads), xgboost {xgb.__version__}, gbloss {gbloss.__version__}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; gbloss kernels in "
          f"XGBoost's OpenMP runtime: {gbx.OPENMP_SHARED}")
    print(f"data: {args.rows} rows x {args.features} features; hist, depth {args.depth}, "
          f"{args.rounds} rounds; {args.repeat} interleaved repetitions")

    X, y = make_data(args.rows, args.features)
    dtrain = xgb.DMatrix(X, label=y)
    params = {"tree_method": "hist", "max_depth": args.depth, "eta": 0.1, "min_child_weight": 0}
    if args.nthread:
        params["nthread"] = args.nthread
    loss = gbloss.FocalLoss(gamma=GAMMA, alpha=ALPHA)
    start_params = gbx.params(loss, dtrain, params)

    # the NumPy objective computes what gbloss computes
    probe = np.full(args.rows, start_params["base_score"], np.float32) + X[:, 0]
    ref_g, ref_h = numpy_focal_objective(probe, dtrain)
    ours_g, ours_h = gbx.objective(loss)(probe, dtrain)
    np.testing.assert_allclose(ours_g, ref_g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours_h, ref_h, rtol=1e-5, atol=1e-7)

    fits = {
        "binary:logistic (built-in)": lambda: xgb.train(
            {**params, "objective": "binary:logistic"}, dtrain, args.rounds),
        "gbloss focal": lambda: gbx.train(params, dtrain, args.rounds, loss=loss, metric=None),
        "NumPy focal": lambda: xgb.train(start_params, dtrain, args.rounds,
                                         obj=numpy_focal_objective),
    }
    try:
        from imxgboost.focal_loss import Focal_Binary_Loss
    except ImportError:
        print("imbalance-xgboost is not installed (pip install imbalance-xgboost --no-deps): "
              "its row is skipped")
    else:
        peer = Focal_Binary_Loss(gamma_indct=GAMMA)
        fits["imbalance-xgboost 0.8.1 focal (no alpha)"] = lambda: xgb.train(
            start_params, dtrain, args.rounds, obj=peer.focal_binary_object)

    leaves = {name: leaves_per_tree(fit()) for name, fit in fits.items()}  # warm-up
    times = interleaved_times(fits, args.repeat)
    reference = "binary:logistic (built-in)"
    median = {name: statistics.median(t for t, *_ in v) for name, v in times.items()}
    ratio = {name: paired_ratio(times, name, reference) for name in fits}

    print(f"\n  {'objective':<42}{'median s':>10}{'vs built-in':>13}{'leaves/tree':>13}"
          f"{'min..max s':>16}")
    for name in fits:
        wall = [t for t, *_ in times[name]]
        print(f"  {name:<42}{median[name]:>10.3f}{ratio[name]:>12.2f}x"
              f"{leaves[name]:>13.1f}{min(wall):>8.2f}..{max(wall):.2f}")
    print("  vs built-in: median over repetitions of the time over the built-in's in the same "
          "repetition")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end; target: gbloss focal <= 1.10x")
    title = (f"XGBoost training: {args.rows} x {args.features}, hist, depth {args.depth}, "
             f"{args.rounds} rounds")
    return [{"benchmark": title, "implementation": name, "seconds": median[name],
             "vs_builtin": ratio[name]} for name in fits]


if __name__ == "__main__":
    run()
