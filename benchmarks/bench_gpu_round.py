"""Where one round of gbloss's device-resident XGBoost loop spends its time on the GPU.

Binary focal (gamma=2, alpha=0.25) on ``--rows`` x ``--features`` float32 features on the GPU,
hist, depth 8 (``benchmarks/bench_gpu.py``'s binary configuration). Printed, in ms per round
(medians over ``--rounds`` rounds after two warm-up rounds):

* whole rounds, nothing synchronised inside: ``xgboost.train`` with ``binary:logistic`` and
  ``gbloss.xgboost.train(..., X=X_gpu)``, each divided by its rounds;
* the parts of gbloss's round (:func:`gbloss.cuda.train_xgboost`), each with the GPU
  synchronised before and after it, so that the parts add up to a little more than a round:
  the kernel, ``Booster.boost`` (XGBoost copies the gradients and grows the tree),
  ``inplace_predict`` of the new tree with the margins as base margin, the copy into the
  margins buffer; and, for comparison, ``Booster.update`` with the built-in objective (its
  gradient and tree), the same prediction without a base margin, and the host's cost of one
  kernel launch (100 launches, then one synchronisation).

Needs an NVIDIA GPU with CuPy and numba-cuda (exit status 2 otherwise).

Usage: python benchmarks/bench_gpu_round.py [--rows 4000000] [--features 50] [--rounds 30]
"""

import argparse
import statistics
import time

from bench_gpu import _data, _gpu_or_exit, _versions


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--depth", type=int, default=8)
    args = parser.parse_args()
    cp, gpu_name, gcuda = _gpu_or_exit()
    import xgboost as xgb

    import gbloss
    import gbloss.xgboost as gbx

    print(_versions(cp, gpu_name))
    print(f"binary focal: {args.rows} x {args.features}, hist, depth {args.depth}; ms per round, "
          f"median of {args.rounds} rounds\n")
    X, y = _data(cp, args.rows, args.features, 2, 0)
    dtrain = xgb.QuantileDMatrix(X, label=y)
    base = {"tree_method": "hist", "device": "cuda", "max_depth": args.depth, "eta": 0.1,
            "max_bin": 256}
    loss = gbloss.FocalLoss(2.0, 0.25)
    sync = cp.cuda.Device().synchronize

    def timed(fn):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    def per_round(fit, n):
        fit(2)
        return (timed(lambda: fit(n)) - timed(lambda: fit(1))) / (n - 1)

    n = args.rounds
    rows = {
        "round, built-in binary:logistic (xgboost.train)": [per_round(lambda r: xgb.train(
            {**base, "objective": "binary:logistic"}, dtrain, r), n)],
        "round, gbloss.xgboost.train (device-resident)": [per_round(lambda r: gbx.train(
            base, dtrain, r, loss=loss, X=X, metric=None), n)]}

    builtin = xgb.Booster({**base, "objective": "binary:logistic"}, [dtrain])
    bst = xgb.Booster(gbx.params(loss, dtrain, base), [dtrain])
    margins = cp.ascontiguousarray(gcuda._predict_margin(bst, X, None, (0, 0)), dtype=cp.float32)
    grad, hess = cp.empty_like(margins), cp.empty_like(margins)
    launch = gcuda.DeviceGradient(loss, dtrain.get_label(), margins.shape).bind(margins, grad,
                                                                                 hess)
    parts = {"gbloss kernel (launch and run)": [], "Booster.boost (gradient copy and tree)": [],
             "inplace_predict, new tree, base_margin=margins": [], "copy into margins": [],
             "for comparison: Booster.update, built-in objective": [],
             "for comparison: inplace_predict without base margin": [],
             "for comparison: host cost of one kernel launch": []}

    def one_round(i):
        """The parts' times of round ``i``, in the order of ``parts``."""
        times = [timed(launch), timed(lambda: bst.boost(dtrain, i, grad=grad, hess=hess))]
        done = bst.num_boosted_rounds()
        new = []
        times.append(timed(lambda: new.append(
            gcuda._predict_margin(bst, X, margins, (done - 1, done)))))
        times.append(timed(lambda: cp.copyto(margins, new[0])))
        times.append(timed(lambda: builtin.update(dtrain, i)))
        times.append(timed(lambda: gcuda._predict_margin(bst, X, None, (done - 1, done))))
        sync()
        start = time.perf_counter()
        for _ in range(100):
            launch()
        times.append((time.perf_counter() - start) / 100)
        sync()
        return times

    for i in range(n + 2):
        times = one_round(i)
        if i >= 2:  # two warm-up rounds
            for part, t in zip(parts, times, strict=True):
                parts[part].append(t)
    rows.update(parts)
    for name, values in rows.items():
        print(f"  {name:58s} {statistics.median(values) * 1e3:8.3f}")


if __name__ == "__main__":
    main()
