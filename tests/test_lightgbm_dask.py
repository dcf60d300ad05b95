"""gbloss.lightgbm on Dask: the objective in lightgbm.DaskLGBMClassifier on a 2-worker
LocalCluster, against single-process training on the same data.

Each half of the data is placed on its own worker, so LightGBM really trains on two machines.
The halves have very different class mixes, so any statistic computed per shard (start, priors)
would be visibly wrong.

Tolerances (measured in brackets): binary probabilities match single-process training to 1e-6
(0 to 1e-15). The features take few distinct values, so every worker finds the same histogram
bins as the single process. Multiclass: LightGBM's *own* ``multiclass`` objective on two
machines parts from its single-process fit after the first round on some data (0.37 in raw
score from round 2 on, seed 1 here), so multiclass gbloss on Dask is compared with LightGBM's
built-in ``multiclass`` on Dask (softmax cross-entropy with the K/(K-1) Hessian factor; 1e-6,
measured 4e-8) and with single-process training after one round (the global start and priors;
1e-9).
"""


import numpy as np
import pytest

pytest.importorskip("dask.distributed")
import dask.array as da  # noqa: E402
import lightgbm as lgb  # noqa: E402

import gbloss  # noqa: E402
import gbloss.lightgbm as gbl  # noqa: E402

pytestmark = pytest.mark.dask

N = 400
K = 3
#: LightGBM's Dask estimators run one thread per worker thread (num_threads is ignored there);
#: the single-process fits add num_threads=1. Four leaves: with 7, LightGBM's own built-in
#: ``multiclass`` objective on this data already parts from its single-process fit after a few
#: rounds (0.7 in raw score: a near-tie between leaves, summed in another order).
PARAMS = {"num_leaves": 4, "learning_rate": 0.3, "min_data_in_leaf": 5, "verbosity": -1}


def _data(task, seed, weighted=False):
    """Integer features; the first half has a much rarer positive class (or class 2) than the
    second, and every half holds every class."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 8, size=(N, 4)).astype(np.float64)
    shift = np.where(np.arange(N) < N // 2, -3.0, 2.0)
    z = X[:, 0] + X[:, 1] - 7.0 + shift + rng.normal(scale=2.0, size=N)
    y = (z > 2.0).astype(np.float64) if task == "binary" else np.digitize(z, [-2.0, 2.0]) * 1.0
    w = rng.uniform(0.2, 3.0, N) if weighted else None
    return X, y, w


def _spread(client, arr):
    """A Dask array whose two halves live on the two workers."""
    if arr is None:
        return None
    # nthreads asks the scheduler; scheduler_info() returns a cache that the client's periodic
    # refresh (which carries no per-worker entries) can overwrite between its fetch and return
    workers = sorted(client.nthreads())
    half = arr.shape[0] // 2
    parts = [client.scatter(arr[i * half:(i + 1) * half], workers=[w], hash=False)
             for i, w in enumerate(workers)]
    return da.concatenate([da.from_delayed(p, shape=(half,) + arr.shape[1:], dtype=arr.dtype)
                           for p in parts])


def _fit_both(client, task, loss, *, weighted=False, rounds=8, seed=0, hessian_scale=1.0):
    X, y, w = _data(task, seed, weighted)
    dX, dy, dw = _spread(client, X), _spread(client, y), _spread(client, w)
    assert len({w for ws in client.who_has(dX).values() for w in ws}) == 2
    model = gbl.dask_train(client, PARAMS, dX, dy, rounds, loss=loss, sample_weight=dw,
                           hessian_scale=hessian_scale)
    params = {**PARAMS, "num_threads": 1, **({"num_class": K} if task == "multiclass" else {})}
    local = gbl.train(params, lgb.Dataset(X, label=y, weight=w), rounds, loss=loss, metric=None,
                      hessian_scale=hessian_scale)
    return X, y, w, model, local


def _assert_same(X, model, local, atol=1e-6):
    rec, local_rec = gbl.record(model), gbl.record(local)
    assert rec["loss"] == local_rec["loss"] and rec["task"] == local_rec["task"]
    np.testing.assert_allclose(rec["start"], local_rec["start"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(gbl.predict_proba(model, X), gbl.predict_proba(local, X),
                               rtol=0, atol=atol)
    # the model trained: not the constant start
    assert np.ptp(gbl.predict_raw(model, X)) > 0.1


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_binary_focal_matches_single_process_with_the_global_start(client, weighted):
    loss = gbloss.FocalLoss(2.0, 0.25)
    X, y, w, model, local = _fit_both(client, "binary", loss, weighted=weighted)
    assert isinstance(model, lgb.DaskLGBMClassifier)
    half = N // 2
    shard_start = loss.init_score(y[half:], None if w is None else w[half:])
    global_start = loss.init_score(y, w)
    assert abs(shard_start - global_start) > 0.3  # a per-shard start would be far off
    np.testing.assert_allclose(gbl.record(model)["start"], [global_start], atol=1e-7)
    _assert_same(X, model, local)
    np.testing.assert_allclose(gbl.predict_raw(model, _spread(client, X)).compute(),
                               gbl.predict_raw(local, X), rtol=0, atol=1e-6)


def test_multiclass_logit_adjustment_uses_global_priors(client):
    X, y, _, model, local = _fit_both(client, "multiclass", gbloss.LogitAdjustedLoss(), rounds=1)
    priors = gbl.record(model)["loss"]["params"]["priors"]
    np.testing.assert_allclose(priors, gbloss.class_frequencies(y), rtol=1e-12)
    shard = np.bincount(y[N // 2:].astype(int), minlength=K) / (N // 2)
    assert abs(shard[0] - priors[0]) > 0.1  # the shards differ
    _assert_same(X, model, local, atol=1e-9)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_multiclass_focal_first_round_matches_single_process(client, weighted):
    loss = gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5])
    X, _, _, model, local = _fit_both(client, "multiclass", loss, weighted=weighted, rounds=1)
    assert gbl.predict_proba(model, X).shape == (N, K)
    _assert_same(X, model, local, atol=1e-9)
    lazy = gbl.predict_proba(model, _spread(client, X))  # Dask data: predicted on the workers
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), gbl.predict_proba(local, X), rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_multiclass_cross_entropy_matches_lightgbm_multiclass_on_dask(client, seed, weighted):
    X, y, w = _data("multiclass", seed, weighted)
    dX, dy, dw = _spread(client, X), _spread(client, y), _spread(client, w)
    builtin = lgb.DaskLGBMClassifier(client=client, n_estimators=8, **PARAMS)
    builtin.fit(dX, dy, sample_weight=dw)
    model = gbl.dask_train(client, PARAMS, dX, dy, 8, loss=gbloss.CrossEntropyLoss(),
                           sample_weight=dw, hessian_scale=K / (K - 1))
    np.testing.assert_allclose(gbl.predict_raw(model, X),
                               builtin.booster_.predict(X, raw_score=True), rtol=0, atol=1e-6)
    np.testing.assert_allclose(gbl.predict_proba(model, X), builtin.booster_.predict(X),
                               atol=1e-6)


def test_bad_dask_input_is_refused(client):
    X, y, _ = _data("multiclass", 0)
    dX, dy = da.from_array(X, chunks=(N // 2, 4)), da.from_array(y, chunks=N // 2)
    with pytest.raises(ValueError, match="AsymmetricLoss has no multiclass form"):
        gbl.dask_train(client, PARAMS, dX, dy, 2, loss=gbloss.AsymmetricLoss())
    with pytest.raises(ValueError, match="AsymmetricLoss does not support multiclass"):
        gbl.dask_train(client, {**PARAMS, "num_class": K}, dX, dy, 2,
                       loss=gbloss.AsymmetricLoss())
    order = np.argsort(y, kind="stable")  # the first partition lacks class 2
    with pytest.raises(ValueError, match="every partition needs every class"):
        gbl.dask_train(client, PARAMS, da.from_array(X[order], chunks=(N // 2, 4)),
                       da.from_array(y[order], chunks=N // 2), 2, loss=gbloss.FocalLoss())
