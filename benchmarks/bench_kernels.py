"""Speed of gbloss's gradient/Hessian kernels against NumPy and the fastest existing library.

Prints, from one run (interleaved repetitions; the median and the fastest call of each):
  * binary focal (gamma=2, alpha=0.25), 1e6 rows: gbloss, a straightforward NumPy implementation
    of the same formulas, and imbalance-xgboost's ``Focal_Binary_Loss`` objective (it has no
    alpha; if the package is missing the column says so);
  * softmax focal (gamma=2, K=10), 1e5 rows: gbloss vs NumPy;
  * the same rows through the CPU's blocked softmax loops against the row-by-row templates they
    replace (the loops the GPU compiles, compiled here for the CPU): focal's gradient and its
    loss (the metric), without and with label smoothing (0.1).

Calls that allocate their outputs run slower for about the first second of a process (about 12
repetitions here: the freshly mapped pages of the outputs fault in every call, 19 ms against
6 ms later for the softmax call), so the default 50 repetitions put the medians in the steady
state that a training loop sees.

Usage: python benchmarks/bench_kernels.py [--rows 1000000] [--repeat 50] [--threads N]
"""

import argparse
import os
import platform
import statistics
import time

import numba
import numpy as np
from common import numpy_focal_binary

import gbloss
from gbloss.losses import _loops


def numpy_focal_softmax(y, z, gamma):
    """derivations 3.1-3.3 with NumPy: one-vs-rest margin, r_k, focal core, PSD diagonal."""
    n, k = z.shape
    rows = np.arange(n)
    others = z.copy()
    others[rows, y] = -np.inf
    z_max = others.max(axis=1, keepdims=True)
    e = np.exp(others - z_max)
    s = e.sum(axis=1, keepdims=True)
    r = e / s
    t = z[rows, y] - (z_max[:, 0] + np.log(s[:, 0]))
    p = 1.0 / (1.0 + np.exp(-t))
    q = 1.0 / (1.0 + np.exp(t))
    lp = -np.logaddexp(0.0, -t)
    qg = np.exp(gamma * -np.logaddexp(0.0, t))
    f1 = qg * (gamma * p * lp - q)
    f2 = p * qg * ((2 * gamma + 1) * q + gamma * (q - gamma * p) * lp)
    f2 = np.maximum(f2, (2 * gamma + 1) * p * q * qg)
    grad = -f1[:, None] * r
    grad[rows, y] = f1
    hess = r * r * f2[:, None] - f1[:, None] * r * (1.0 - r)
    hess[rows, y] = f2
    return grad, hess + 1e-16


class _Labels:
    """The ``dtrain`` stand-in imbalance-xgboost's objective reads labels from."""

    def __init__(self, y):
        self.y = y

    def get_label(self):
        return self.y.astype(np.float32)  # DMatrix.get_label copies to float32 every call


def median_times(functions, repeat):
    """Run each function once to warm up, then ``repeat`` interleaved rounds; median seconds."""
    for fn in functions.values():
        fn()
    times = {name: [] for name in functions}
    for _ in range(repeat):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(v), min(v)) for name, v in times.items()}


def report(title, times, rows, base="NumPy"):
    """Print one benchmark's table (medians, and the fastest call, whose ratio is less exposed
    to the other core being busy) and append its rows (median time / gbloss's) to ``rows``."""
    print(f"\n{title} (ratio: time of {base} / time of each)")
    print(f"  {'implementation':<36}{'median ms':>10}{'ratio':>12}{'min ms':>9}{'ratio':>12}")
    for name, (sec, fastest) in times.items():
        print(f"  {name:<36}{sec * 1e3:>10.2f}{times[base][0] / sec:>11.1f}x"
              f"{fastest * 1e3:>9.2f}{times[base][1] / fastest:>11.1f}x")
        rows.append({"benchmark": f"kernel: {title}", "implementation": name, "seconds": sec,
                     "vs_gbloss": sec / times["gbloss"][0]})


def run(argv=None):
    """Run the benchmark, print its tables and return its rows (for benchmarks/run_all.py)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--softmax-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    rows = []

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__} "
          f"(threading layer {numba.config.THREADING_LAYER}), gbloss {gbloss.__version__}")

    rng = np.random.default_rng(0)
    n = args.rows
    y = (rng.random(n) < 0.1).astype(np.float64)
    z = rng.normal(-2.0, 2.0, n)
    loss = gbloss.FocalLoss(gamma=2.0, alpha=0.25)
    out = (np.empty(n), np.empty(n))
    g_ref, h_ref = numpy_focal_binary(y, z, 2.0, 0.25)
    g, h = loss.gradient_hessian(y, z)
    np.testing.assert_allclose(g, g_ref, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(h, h_ref, rtol=1e-9, atol=1e-15)

    functions = {
        "gbloss": lambda: loss.gradient_hessian(y, z, n_threads=args.threads),
        "gbloss, out= buffers": lambda: loss.gradient_hessian(y, z, out=out,
                                                               n_threads=args.threads),
        "NumPy": lambda: numpy_focal_binary(y, z, 2.0, 0.25),
    }
    try:
        from imxgboost.focal_loss import Focal_Binary_Loss
    except ImportError:
        print("imbalance-xgboost not installed: its column is skipped")
    else:
        peer = Focal_Binary_Loss(gamma_indct=2.0)
        labels = _Labels(y)
        functions["imbalance-xgboost 0.8.1 (no alpha)"] = (
            lambda: peer.focal_binary_object(z.astype(np.float32), labels))
    report(f"binary focal, gamma=2, alpha=0.25, {n:.0e} rows",
           median_times(functions, args.repeat), rows)

    n_soft, k = args.softmax_rows, 10
    ys = rng.integers(0, k, n_soft)
    zs = rng.normal(0.0, 2.0, (n_soft, k))
    soft = gbloss.FocalLoss(gamma=2.0)
    g_ref, h_ref = numpy_focal_softmax(ys, zs, 2.0)
    g, h = soft.gradient_hessian(ys.astype(np.float64), zs)
    np.testing.assert_allclose(g, g_ref, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(h, h_ref, rtol=1e-8, atol=1e-14)
    yf = ys.astype(np.float64)
    out_soft = (np.empty_like(zs), np.empty_like(zs))
    functions = {
        "gbloss": lambda: soft.gradient_hessian(yf, zs, n_threads=args.threads),
        "gbloss, out= buffers": lambda: soft.gradient_hessian(yf, zs, out=out_soft,
                                                               n_threads=args.threads),
        "NumPy": lambda: numpy_focal_softmax(ys, zs, 2.0),
    }
    report(f"softmax focal, gamma=2, K={k}, {n_soft:.0e} rows",
           median_times(functions, args.repeat), rows)

    row_template = "row-by-row template"
    values = np.empty(n_soft)
    for smoothing in (0.0, 0.1):
        loss = gbloss.FocalLoss(gamma=2.0, label_smoothing=smoothing)
        theta = loss.kernel_params("multiclass", k)
        link = "soft_softmax" if smoothing else "softmax"
        (gradient_template, loss_template), slot_names = _loops.TEMPLATES[link]
        slots = {name: loss.scalars[name] for name in slot_names}
        row_gradient = _loops.compile_loop(gradient_template, slots, variant="_rows")
        row_loss = _loops.compile_loop(loss_template, slots, variant="_rows")
        with gbloss._jit.thread_limit(args.threads):
            gradient_calls = {
                "gbloss": lambda loss=loss: loss.gradient_hessian(
                    yf, zs, out=out_soft, n_threads=args.threads),
                row_template: lambda theta=theta, loop=row_gradient: loop(
                    yf, zs, np.empty(0), theta, 1, *out_soft)}
            loss_calls = {
                "gbloss": lambda loss=loss: loss.loss(yf, zs, n_threads=args.threads),
                row_template: lambda theta=theta, loop=row_loss: loop(
                    yf, zs, np.empty(0), theta, values)}
            label = f"softmax focal{', label_smoothing=0.1' if smoothing else ''}, K={k}, " \
                f"{n_soft:.0e} rows"
            for what, calls in (("gradient (out= buffers)", gradient_calls),
                                ("loss", loss_calls)):
                report(f"{label}, {what}", median_times(calls, args.repeat), rows,
                       base=row_template)
    return rows


if __name__ == "__main__":
    run()
