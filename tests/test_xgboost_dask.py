"""gbloss.xgboost on Dask: the same objective and metrics through xgboost.dask.train on a
2-worker LocalCluster, against single-process training on the same data.

Tolerance: probabilities and eval histories agree to 1e-6. The features take few distinct values,
so both runs find the same histogram cuts; what remains is float32 summation order.
The labels are sorted before chunking, so the two shards have very different class mixes and any
statistic computed per shard (start, priors, class counts) would be visibly wrong.
"""

import json

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from xgboost import dask as dxgb  # noqa: E402

import gbloss  # noqa: E402
import gbloss.xgboost as gbx  # noqa: E402
from gbloss import _metrics  # noqa: E402

pytestmark = pytest.mark.dask

N = 400
K = 3
PARAMS = {"max_depth": 3, "eta": 0.3, "nthread": 1}


def _data(task, seed, weighted=False):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 8, size=(N, 4)).astype(np.float64)
    z = X[:, 0] + X[:, 1] + rng.normal(scale=2.0, size=N)
    if task == "binary":
        y = (z > 10.0).astype(np.float64)
    elif task == "multiclass":
        y = np.digitize(z, [6.0, 9.0]).astype(np.float64)
    else:
        y = (X[:, :K] + rng.normal(scale=2.0, size=(N, K)) > [5.0, 4.0, 3.0]).astype(np.float64)
    order = np.argsort(y if y.ndim == 1 else y[:, 0], kind="stable")
    w = rng.uniform(0.2, 3.0, N) if weighted else None
    return X[order], y[order], None if w is None else w[order]


def _dask_dmatrix(client, X, y, w):
    chunks = N // 2
    return dxgb.DaskDMatrix(client, da.from_array(X, chunks=(chunks, X.shape[1])),
                            da.from_array(y, chunks=(chunks,) + y.shape[1:]),
                            weight=None if w is None else da.from_array(w, chunks=chunks))


def _both(client, task, loss, *, weighted=False, params=None, metric=("loss", "roc_auc"),
          seed=0):
    X, y, w = _data(task, seed, weighted)
    params = {**PARAMS, **(params or {})}
    dtrain = _dask_dmatrix(client, X, y, w)
    result = gbx.dask_train(client, params, dtrain, 8, loss=loss, metric=list(metric),
                            evals=[(dtrain, "train")], verbose_eval=False)
    local_history = {}
    local_d = xgb.DMatrix(X, label=y, weight=w)
    local = gbx.train(params, local_d, 8, loss=loss, metric=list(metric),
                      evals=[(local_d, "train")], evals_result=local_history, verbose_eval=False)
    return X, y, w, result, local, local_history


def _assert_same(X, result, local, local_history):
    booster = result["booster"]
    np.testing.assert_allclose(json.loads(booster.attr(gbx.ATTR_START)),
                               json.loads(local.attr(gbx.ATTR_START)), rtol=0, atol=1e-7)
    assert booster.attr(gbx.ATTR_LOSS) == local.attr(gbx.ATTR_LOSS)
    np.testing.assert_allclose(gbx.predict_proba(booster, X), gbx.predict_proba(local, X),
                               rtol=0, atol=1e-6)
    for name, values in local_history["train"].items():
        np.testing.assert_allclose(result["history"]["train"][name], values, rtol=0, atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_binary_focal_matches_single_process_with_the_global_start(client, weighted):
    loss = gbloss.FocalLoss(2.0, 0.25)
    X, y, w, result, local, history = _both(client, "binary", loss, weighted=weighted)
    half = N // 2
    shard_start = loss.init_score(y[half:], None if w is None else w[half:])
    global_start = loss.init_score(y, w)
    assert abs(shard_start - global_start) > 0.3  # a per-shard start would be far off
    np.testing.assert_allclose(json.loads(result["booster"].attr(gbx.ATTR_START)),
                               [global_start], atol=1e-6)
    _assert_same(X, result, local, history)


def test_multiclass_logit_adjustment_uses_global_priors(client):
    X, y, w, result, local, history = _both(client, "multiclass", gbloss.LogitAdjustedLoss(),
                                            params={"num_class": K})
    stored = json.loads(result["booster"].attr(gbx.ATTR_LOSS))
    np.testing.assert_allclose(stored["params"]["priors"], gbloss.class_frequencies(y),
                               rtol=1e-12)
    shard_counts = np.bincount(y[N // 2:].astype(int), minlength=K)
    assert shard_counts[0] / (N // 2) < stored["params"]["priors"][0] / 2  # shards differ
    _assert_same(X, result, local, history)


def test_multiclass_ldam_counts_come_from_every_partition(client):
    """LDAM's class sizes (weighted) are the totals over all workers' partitions."""
    X, y, w, result, local, history = _both(client, "multiclass", gbloss.LDAMLoss(),
                                            weighted=True, params={"num_class": K})
    stored = json.loads(result["booster"].attr(gbx.ATTR_LOSS))
    masses = np.bincount(y.astype(int), weights=w, minlength=K)
    np.testing.assert_allclose(stored["params"]["counts"], masses, rtol=1e-12)
    shard = np.bincount(y[N // 2:].astype(int), weights=w[N // 2:], minlength=K)
    assert not np.allclose(shard / shard.sum(), masses / masses.sum(), rtol=0.05)  # shards differ
    # the single-process model reads the DMatrix's float32 weights: counts agree to float32
    local_counts = json.loads(local.attr(gbx.ATTR_LOSS))["params"]["counts"]
    np.testing.assert_allclose(stored["params"]["counts"], local_counts, rtol=1e-6)
    np.testing.assert_allclose(gbx.predict_proba(result["booster"], X),
                               gbx.predict_proba(local, X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("strategy", ["one_output_per_tree", "multi_output_tree"])
def test_multilabel_asymmetric_matches_single_process(client, strategy):
    X, _, _, result, local, history = _both(client, "multilabel", gbloss.AsymmetricLoss(),
                                            weighted=True, params={"multi_strategy": strategy})
    _assert_same(X, result, local, history)


def test_early_stopping_direction_and_gathered_metrics(client):
    X, y, _ = _data("binary", 1)
    dtrain = _dask_dmatrix(client, X[::2], y[::2], None)
    # one chunk: one worker holds no validation rows and must still join the gathering
    dvalid = dxgb.DaskDMatrix(client, da.from_array(X[1::2]), da.from_array(y[1::2]))
    params = {**PARAMS, "max_depth": 6, "eta": 0.8, "min_child_weight": 0}
    result = gbx.dask_train(client, params, dtrain, 40, loss=gbloss.CrossEntropyLoss(),
                            metric="average_precision", evals=[(dvalid, "valid")],
                            early_stopping_rounds=40, verbose_eval=False)
    values = np.array(result["history"]["valid"]["auc_pr"])
    assert np.argmax(values) != np.argmin(values)
    assert result["booster"].best_iteration == int(np.argmax(values))
    # the value is the metric over both workers' rows, not one shard's
    raw = gbx.predict_raw(result["booster"], X[1::2], iteration_range=(0, len(values)))
    assert values[-1] == pytest.approx(
        _metrics.metric_value("average_precision", gbloss.CrossEntropyLoss(), y[1::2], raw),
        abs=2e-6)


def test_class_balanced_weights_use_global_counts(client):
    _, y, _ = _data("multiclass", 2)
    expected = gbloss.class_balanced_weights(y, beta=0.99)
    got = gbx.dask_class_balanced_weights(da.from_array(y, chunks=N // 2), beta=0.99)
    np.testing.assert_allclose(got.compute(), expected, rtol=1e-12)
    series = dd.from_pandas(pd.Series(y, name="y"), npartitions=2)
    np.testing.assert_allclose(gbx.dask_class_balanced_weights(series, 0.99).compute(),
                               expected, rtol=1e-12)
    shard = gbloss.class_balanced_weights(y[N // 2:], beta=0.99)
    assert not np.allclose(shard, expected[N // 2:])  # per-shard counts would differ
