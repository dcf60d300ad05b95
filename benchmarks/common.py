"""What the speed benchmarks share: the NumPy focal loss they race against, their data, and the
interleaved timing of the training benchmarks."""

import resource
import statistics
import time

import numpy as np


def numpy_focal_binary(y, z, gamma, alpha):
    """derivations 2.3-2.4 written with NumPy arrays (stable, temporaries everywhere)."""
    s = 2.0 * y - 1.0
    t = s * z
    p = 1.0 / (1.0 + np.exp(-t))
    q = 1.0 / (1.0 + np.exp(t))
    lp = -np.logaddexp(0.0, -t)
    lq = -np.logaddexp(0.0, t)
    qg = np.exp(gamma * lq)
    a = np.where(y > 0, alpha, 1.0 - alpha)
    f1 = qg * (gamma * p * lp - q)
    f2 = p * qg * ((2 * gamma + 1) * q + gamma * (q - gamma * p) * lp)
    h_gn = (2 * gamma + 1) * p * q * qg
    return a * s * f1, a * (np.maximum(f2, h_gn) + 1e-16)


def make_data(rows, features, seed=0):
    """Imbalanced binary data (about 5% positives) with a few informative features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    logit = X[:, :5] @ np.array([1.0, -0.8, 0.6, 0.5, -0.4]) + 0.5 * X[:, 5] * X[:, 6] - 3.3
    y = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return X, y


def minor_page_faults():
    """Minor page faults of this process so far: each is a fresh page the kernel zeroes, which
    engines pay when their allocator hands memory back to the system and takes it again
    (``getrusage``; XGBoost's histogram buffers are the large case)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def interleaved_times(fits, repeat):
    """Time every fit once per repetition, ``repeat`` repetitions.

    The first two fits (the reference and gbloss) run next to each other in every repetition,
    in alternating order, so that their ratio compares runs seconds apart; the others follow in
    rotating order. Returns ``{name: [(wall seconds, CPU seconds of this process), ...]}``.
    One untimed warm-up call of each fit must come before (compilation, caches).
    """
    times = {name: [] for name in fits}
    pair, others = list(fits)[:2], list(fits)[2:]
    for rep in range(repeat):
        k = rep % len(others) if others else 0
        for name in (pair if rep % 2 == 0 else pair[::-1]) + others[k:] + others[:k]:
            t0, c0, f0 = time.perf_counter(), time.process_time(), minor_page_faults()
            fits[name]()
            times[name].append((time.perf_counter() - t0, time.process_time() - c0,
                                minor_page_faults() - f0))
    return times


def paired_ratio(times, name, reference, column=0):
    """Median over repetitions of ``name``'s time divided by ``reference``'s in the same
    repetition (``column`` 0: wall time, 1: CPU time). The two runs of a repetition are
    neighbours in time, so the slow drifts of a shared machine's speed cancel in each ratio,
    which a ratio of two medians over the whole run does not do."""
    pairs = zip(times[name], times[reference], strict=True)
    return statistics.median(t[column] / r[column] for t, r in pairs)


def make_multiclass_data(rows, features, classes, seed=0):
    """Imbalanced multiclass data: class priors falling as 1/(k+1) (the rarest of 10 classes
    about 3%, of 100 about 0.2%), classes drawn from a softmax of linear scores of the
    first ten features plus the log priors. Labels 0..classes-1 as float32."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    informative = min(features, 10)
    W = rng.normal(scale=0.7, size=(informative, classes))
    priors = 1.0 / np.arange(1, classes + 1)
    scores = X[:, :informative] @ W + np.log(priors / priors.sum())
    y = np.argmax(scores + rng.gumbel(size=(rows, classes)), axis=1).astype(np.float32)
    return X, y


def make_multilabel_data(rows, features, labels, seed=0):
    """Multi-label data: ``labels`` 0/1 columns (float32, shape (rows, labels)), each a logistic
    model of the first ten features with its own prevalence, from about 2% to 30%."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features)).astype(np.float32)
    informative = min(features, 10)
    W = rng.normal(scale=0.6, size=(informative, labels))
    bias = np.log(np.linspace(0.02, 0.3, labels) / (1 - np.linspace(0.02, 0.3, labels)))
    logit = X[:, :informative] @ W + bias
    Y = (rng.random((rows, labels)) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return X, Y


def leaves_per_tree(booster):
    """Mean number of leaves per tree of an XGBoost or LightGBM booster."""
    if hasattr(booster, "get_dump"):
        dump = booster.get_dump()
        return sum(tree.count("leaf=") for tree in dump) / len(dump)
    info = booster.dump_model()["tree_info"]
    return sum(t["num_leaves"] for t in info) / len(info)


def print_timings(fits, times, reference, leaves, label="model"):
    """The detailed table of one configuration; returns ``{name: (median s, ratio)}``."""
    median = {name: statistics.median(t for t, *_ in v) for name, v in times.items()}
    ratio = {name: paired_ratio(times, name, reference) for name in fits}
    faults = {name: statistics.median(f for *_, f in v) / 1e3 for name, v in times.items()}
    width = max(42, max(len(name) for name in fits) + 2)
    print(f"\n  {label:<{width}}{'median s':>10}{'vs built-in':>13}{'leaves/tree':>13}"
          f"{'min..max s':>16}{'page faults':>13}")
    for name in fits:
        wall = [t for t, *_ in times[name]]
        print(f"  {name:<{width}}{median[name]:>10.3f}{ratio[name]:>12.2f}x"
              f"{leaves[name]:>13.1f}{min(wall):>8.2f}..{max(wall):.2f}{faults[name]:>12.0f}k")
    return {name: (median[name], ratio[name]) for name in fits}


#: Largest probability difference of two models said to grow the same trees.
SAME_TREES_TOLERANCE = 1e-4
#: Rounds of the tie-free refit of :func:`check_same_trees`.
CHECK_ROUNDS = 5


def check_same_trees(title, warm, leaves, tie_free=None):
    """Check that the first two fits (the built-in and gbloss's cross-entropy) grew the same
    trees: ``warm`` maps each name to (model, probabilities), ``leaves`` to leaves per tree.
    From a constant start all rows of a class share one gradient, so splits of small nodes can
    tie exactly in gain, and float32 rounding may break a tie the other way; when the
    probabilities differ by more than the tolerance, ``tie_free()`` refits the pair for
    ``CHECK_ROUNDS`` rounds from a per-row jittered start and returns both probabilities,
    which must then agree."""
    reference, paired = list(warm)[:2]
    gap = float(np.max(np.abs(warm[reference][1] - warm[paired][1])))
    print(f"{title}: same trees? leaves per tree {leaves[reference]:.2f} (built-in) vs "
          f"{leaves[paired]:.2f} (gbloss cross-entropy); max |probability difference| "
          f"{gap:.2e}")
    if gap < SAME_TREES_TOLERANCE:
        assert leaves[reference] == leaves[paired], f"{title}: leaves per tree differ"
        return
    assert tie_free is not None, f"{title}: gbloss's cross-entropy grew other trees"
    a, b = tie_free()
    tie_gap = float(np.max(np.abs(a - b)))
    print(f"  above {SAME_TREES_TOLERANCE:g}: tied splits broken the other way; from a per-row "
          f"jittered start, {CHECK_ROUNDS} rounds: max |probability difference| {tie_gap:.2e}")
    assert tie_gap < SAME_TREES_TOLERANCE, \
        f"{title}: gbloss's cross-entropy does not grow the built-in's trees"


def print_environment():
    """The machine, its load and the versions, as every training benchmark prints them first
    (the engines and ``gbloss.xgboost`` already imported by the script)."""
    import os
    import platform

    import lightgbm
    import numba
    import xgboost

    import gbloss
    import gbloss.xgboost as gbx

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
          f" (threading layer {numba.config.THREADING_LAYER}, {numba.config.NUMBA_NUM_THREADS} "
          f"threads), xgboost {xgboost.__version__}, lightgbm {lightgbm.__version__}, "
          f"gbloss {gbloss.__version__}; gbloss kernels in XGBoost's OpenMP runtime: "
          f"{gbx.OPENMP_SHARED}")


def compare_fits(title, fits, count_leaves, repeat, tie_free=None, label="objective"):
    """One configuration of a training benchmark: warm every fit up (each returns ``(model,
    probabilities)``), check that the first two grow the same trees (:func:`check_same_trees`),
    time them interleaved, print the table; returns the rows for ``run_all.py``."""
    warm = {name: fit() for name, fit in fits.items()}
    leaves = {name: count_leaves(model) for name, (model, _) in warm.items()}
    check_same_trees(title, warm, leaves, tie_free)
    times = interleaved_times(fits, repeat)
    result = print_timings(fits, times, list(fits)[0], leaves, label=label)
    return [{"benchmark": title, "implementation": name, "seconds": s, "vs_builtin": r}
            for name, (s, r) in result.items()]


def print_end():
    """The last lines of a training benchmark: how to read its ratios, and the load."""
    import os

    print("  vs built-in: median over repetitions of the time over the built-in's in the same "
          "repetition; page faults: median minor page faults per fit (fresh pages zeroed)")
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")
