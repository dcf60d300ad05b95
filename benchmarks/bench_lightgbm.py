"""LightGBM training time with gbloss's binary focal objective, as a ratio to ``binary``.

One run, interleaved repetitions (the built-in and gbloss next to each other in each, in
alternating order; ``common.interleaved_times``). The ratio is the median over
repetitions of gbloss's time over the built-in's time in the same repetition
(``common.paired_ratio``); the seconds are medians. Configurations (same data, same parameters:
63 leaves, learning rate 0.1, LightGBM's defaults otherwise, one constructed Dataset each):

* ``binary``: LightGBM's built-in objective with ``boost_from_average`` (the reference, 1.00);
* gbloss focal (gamma=2, alpha=0.25) through ``gbloss.lightgbm.train`` (start, validation of
  labels and weights, moving the start into the trees: all included);
* a NumPy focal objective with the same formulas, written straightforwardly (labels read with
  ``get_label()`` every round, temporaries everywhere);
* imlightgbm 0.1.2's ``binary_focal_lgb_objective`` (gamma=2; it has no alpha), the fastest
  existing LightGBM focal library of the survey in pitfalls.md; skipped with a note when not
  installed.

The custom objectives all start from gbloss's start (``init_score`` from
``gbloss.lightgbm.params``) so that the trees grow under the same conditions; the mean number
of leaves per tree is printed next to each time, since tree sizes (not only the objective)
decide the cost of a round. gbloss's objective refills the same float32 gradient buffers every
round; LightGBM copies them right away.

Usage: python benchmarks/bench_lightgbm.py [--rows 500000] [--features 50] [--rounds 50]
       [--leaves 63] [--repeat 9] [--threads 2]
"""

import argparse
import functools
import importlib.metadata
import os
import platform
import statistics

import lightgbm as lgb
import numba
import numpy as np
from common import interleaved_times, make_data, numpy_focal_binary, paired_ratio

import gbloss
import gbloss.lightgbm as gbl

GAMMA, ALPHA = 2.0, 0.25


def numpy_focal_objective(preds, train_set):
    """Binary focal loss (derivations 2.3-2.4, PSD Hessian of section 8) in plain NumPy, with
    the labels read from the engine's container every round."""
    return numpy_focal_binary(train_set.get_label(), preds, GAMMA, ALPHA)


def leaves_per_tree(booster):
    info = booster.dump_model()["tree_info"]
    return sum(t["num_leaves"] for t in info) / len(info)


def run(argv=None):
    """Run the benchmark, print its table and return its rows (for benchmarks/run_all.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--leaves", type=int, default=63)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads")
    args = parser.parse_args(argv)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
          f" (threading layer {numba.config.THREADING_LAYER}, {numba.config.NUMBA_NUM_THREADS} "
          f"threads), lightgbm {lgb.__version__}, gbloss {gbloss.__version__}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"data: {args.rows} rows x {args.features} features; {args.leaves} leaves, "
          f"{args.rounds} rounds, {args.threads} LightGBM threads; {args.repeat} interleaved "
          "repetitions")

    X, y = make_data(args.rows, args.features)
    params = {"num_leaves": args.leaves, "learning_rate": 0.1, "num_threads": args.threads,
              "verbosity": -1}
    loss = gbloss.FocalLoss(gamma=GAMMA, alpha=ALPHA)
    d_builtin = lgb.Dataset(X, label=y, params={"verbosity": -1}).construct()
    d_gbloss = lgb.Dataset(X, label=y, params={"verbosity": -1}).construct()
    d_custom = lgb.Dataset(X, label=y, params={"verbosity": -1}).construct()
    start_params = gbl.params(loss, d_custom, params)  # init_score = the start on d_custom
    del start_params["objective"]

    # the NumPy objective computes what gbloss computes
    probe = d_custom.get_init_score() + X[:, 0]
    ref_g, ref_h = numpy_focal_objective(probe, d_custom)
    ours_g, ours_h = gbl.objective(loss)(probe, d_custom)
    np.testing.assert_allclose(ours_g, ref_g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours_h, ref_h, rtol=1e-5, atol=1e-7)

    fits = {
        "binary (built-in)": lambda: lgb.train(
            {**params, "objective": "binary"}, d_builtin, args.rounds),
        "gbloss focal": lambda: gbl.train(params, d_gbloss, args.rounds, loss=loss,
                                          metric=None),
        "NumPy focal": lambda: lgb.train({**start_params, "objective": numpy_focal_objective},
                                         d_custom, args.rounds),
    }
    try:
        from imlightgbm.objective import binary_focal_lgb_objective
    except ImportError:
        print("imlightgbm is not installed (pip install imlightgbm==0.1.2): its row is skipped")
    else:
        peer = functools.partial(binary_focal_lgb_objective, gamma=GAMMA)
        version = importlib.metadata.version("imlightgbm")
        fits[f"imlightgbm {version} focal (no alpha)"] = lambda: lgb.train(
            {**start_params, "objective": peer}, d_custom, args.rounds)

    leaves = {name: leaves_per_tree(fit()) for name, fit in fits.items()}  # warm-up
    print(f"numba threading layer in use: {numba.threading_layer()}")
    times = interleaved_times(fits, args.repeat)
    reference = "binary (built-in)"
    median = {name: statistics.median(t for t, *_ in v) for name, v in times.items()}
    median_cpu = {name: statistics.median(c for _, c, *_ in v) for name, v in times.items()}
    ratio = {name: paired_ratio(times, name, reference) for name in fits}
    ratio_cpu = {name: paired_ratio(times, name, reference, column=1) for name in fits}

    # CPU seconds of this process: less disturbed than wall time when other processes share the
    # cores (but they include OpenMP's spin-waiting)
    print(f"\n  {'objective':<36}{'median s':>10}{'vs built-in':>13}{'cpu s':>9}"
          f"{'cpu vs built-in':>17}{'leaves/tree':>13}{'min..max s':>16}")
    for name in fits:
        wall = [t for t, *_ in times[name]]
        print(f"  {name:<36}{median[name]:>10.3f}{ratio[name]:>12.2f}x"
              f"{median_cpu[name]:>9.2f}{ratio_cpu[name]:>16.2f}x"
              f"{leaves[name]:>13.1f}{min(wall):>8.2f}..{max(wall):.2f}")
    print("  vs built-in: median over repetitions of the time over the built-in's in the same "
          "repetition")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end; target: gbloss focal <= 1.05x")
    title = (f"LightGBM training: {args.rows} x {args.features}, {args.leaves} leaves, "
             f"{args.rounds} rounds, {args.threads} threads")
    return [{"benchmark": title, "implementation": name, "seconds": median[name],
             "vs_builtin": ratio[name]} for name in fits]


if __name__ == "__main__":
    run()
