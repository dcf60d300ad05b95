"""What the speed benchmarks share: the NumPy focal loss they race against, their data, and the
interleaved timing of the training benchmarks."""

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
            t0, c0 = time.perf_counter(), time.process_time()
            fits[name]()
            times[name].append((time.perf_counter() - t0, time.process_time() - c0))
    return times


def paired_ratio(times, name, reference, column=0):
    """Median over repetitions of ``name``'s time divided by ``reference``'s in the same
    repetition (``column`` 0: wall time, 1: CPU time). The two runs of a repetition are
    neighbours in time, so the slow drifts of a shared machine's speed cancel in each ratio,
    which a ratio of two medians over the whole run does not do."""
    pairs = zip(times[name], times[reference], strict=True)
    return statistics.median(t[column] / r[column] for t, r in pairs)
