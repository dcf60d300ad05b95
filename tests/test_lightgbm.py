"""gbloss.lightgbm: parity with LightGBM's built-in objectives, the start on every Dataset,
metrics and early stopping, the default metric off, save/load, shapes, weights, bad input.
Small data, few rounds and one LightGBM thread throughout.

Tolerances (measured, LightGBM 4.7): raw scores against the built-in ``binary`` objective agree
to 0 (unweighted) and 1.2e-8 (weighted), against ``multiclass`` to 8e-8; asserted at 1e-6.
"""

import copy
import pickle
import warnings

import lightgbm as lgb
import numpy as np
import pytest
from scipy import special
from sklearn import metrics as skm

import gbloss
import gbloss.lightgbm as gbl

N = 400
K = 3
PARAMS = {"num_leaves": 7, "learning_rate": 0.3, "min_data_in_leaf": 5, "verbosity": -1,
          "num_threads": 1}

#: Loss makers by task (multiclass focal alpha needs one weight per class).
LOSSES = {
    "focal": lambda task: gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5] if task == "multiclass" else 0.25),
    "ce": lambda task: gbloss.CrossEntropyLoss(),
    "asl": lambda task: gbloss.AsymmetricLoss(0.0, 4.0, 0.05),
    "la": lambda task: gbloss.LogitAdjustedLoss(1.0),
    "la-posthoc": lambda task: gbloss.LogitAdjustedLoss(1.0, posthoc=True),
}
LOSS_TASKS = [pytest.param(name, task, id=f"{name}-{task}") for name, make in LOSSES.items()
              for task in ("binary", "multiclass") if task in make("binary").tasks]


def _data(task, rng, n=N, *, integer=False):
    X = rng.integers(0, 8, size=(n, 5)).astype(np.float64) if integer else rng.normal(size=(n, 5))
    Xs = (X - 3.5) / 2.3 if integer else X
    z = Xs[:, 0] + 0.5 * Xs[:, 1] + rng.normal(scale=0.8, size=n)
    if task == "binary":
        return X, (z > 1.0).astype(np.float64)  # about 20% positives
    return X, np.digitize(z, [-0.3, 1.0]).astype(np.float64)


def _params(task, **extra):
    return {**PARAMS, **({"num_class": K} if task == "multiclass" else {}), **extra}


def _dataset(X, y, w=None, **kwargs):
    return lgb.Dataset(X, label=y, weight=w, free_raw_data=False, **kwargs)


# -- parity with the built-in objectives -----------------------------------------------------


@pytest.mark.parametrize("loss", [gbloss.CrossEntropyLoss(), gbloss.FocalLoss(gamma=0.0)],
                         ids=["ce", "focal-g0"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_binary_matches_builtin_binary_with_boost_from_average(loss, weighted, rng):
    X, y = _data("binary", rng)
    w = rng.uniform(0.2, 3.0, N) if weighted else None
    builtin = lgb.train({**PARAMS, "objective": "binary", "boost_from_average": True},
                        _dataset(X, y, w), 10)
    ours = gbl.train(PARAMS, _dataset(X, y, w), 10, loss=loss, metric=None)
    expected = builtin.predict(X, raw_score=True)
    np.testing.assert_allclose(gbl.predict_raw(ours, X), expected, rtol=0, atol=1e-6)
    # the start lives in the trees: plain LightGBM raw scores match too
    np.testing.assert_allclose(ours.predict(X, raw_score=True), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(gbl.predict_proba(ours, X), special.expit(expected), atol=1e-6)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_multiclass_matches_builtin_multiclass_with_the_k_over_k_minus_1_hessian(weighted, rng):
    X, y = _data("multiclass", rng)
    w = rng.uniform(0.2, 3.0, N) if weighted else None
    builtin = lgb.train({**_params("multiclass"), "objective": "multiclass"}, _dataset(X, y, w),
                        10)
    ours = gbl.train(_params("multiclass"), _dataset(X, y, w), 10, loss=gbloss.CrossEntropyLoss(),
                     metric=None, hessian_scale=K / (K - 1))
    expected = builtin.predict(X, raw_score=True)
    np.testing.assert_allclose(gbl.predict_raw(ours, X), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(gbl.predict_proba(ours, X), builtin.predict(X), atol=1e-6)
    # without the factor the leaf steps are K/(K-1) times larger: a visibly different model
    plain = gbl.train(_params("multiclass"), _dataset(X, y, w), 10,
                      loss=gbloss.CrossEntropyLoss(), metric=None)
    assert np.max(np.abs(gbl.predict_raw(plain, X) - expected)) > 1e-2


def test_plain_lgb_train_with_params_matches_builtin(rng):
    X, y = _data("binary", rng)
    w = rng.uniform(0.2, 3.0, N)
    builtin = lgb.train({**PARAMS, "objective": "binary"}, _dataset(X, y, w), 10)
    dtrain = _dataset(X, y, w)
    booster = lgb.train(gbl.params(gbloss.CrossEntropyLoss(), dtrain, PARAMS), dtrain, 10)
    np.testing.assert_allclose(gbl.predict_raw(booster, X), builtin.predict(X, raw_score=True),
                               rtol=0, atol=1e-6)


# -- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_weights_are_applied_and_equal_duplicated_rows(task, rng):
    # integer features: duplicating rows cannot move LightGBM's histogram bins; small trees:
    # with 7 leaves even the built-in objective's weighted and duplicated fits can part at a
    # near-tie between two leaves (seen with float32 gradient sums)
    X, y = _data(task, rng, 200, integer=True)
    counts = rng.integers(1, 4, 200)
    loss = LOSSES["focal"](task)
    params = _params(task, min_data_in_leaf=1, min_sum_hessian_in_leaf=0.0, min_data_in_bin=1,
                     num_leaves=3)
    weighted = gbl.train(params, _dataset(X, y, counts.astype(float)), 8, loss=loss, metric=None)
    duplicated = gbl.train(params, _dataset(np.repeat(X, counts, axis=0), np.repeat(y, counts)),
                           8, loss=loss, metric=None)
    unweighted = gbl.train(params, _dataset(X, y), 8, loss=loss, metric=None)
    np.testing.assert_allclose(gbl.predict_raw(weighted, X), gbl.predict_raw(duplicated, X),
                               rtol=0, atol=1e-5)
    assert np.max(np.abs(gbl.predict_raw(weighted, X) - gbl.predict_raw(unweighted, X))) > 1e-2
    # the start is the weighted one
    np.testing.assert_allclose(gbl.record(weighted)["start"], gbl.record(duplicated)["start"],
                               atol=1e-9)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_objective_shapes_buffers_and_weights(task, rng):
    X, y = _data(task, rng)
    w = rng.uniform(0.2, 3.0, N)
    loss = LOSSES["focal"](task)
    dtrain = _dataset(X, y, w).construct()
    obj = gbl.objective(loss)
    shape = (N,) if task == "binary" else (N, K)
    preds = np.asfortranarray(rng.normal(size=shape))  # what LightGBM passes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not the start: this test is about the buffers
        grad, hess = obj(preds, dtrain)
    assert grad.shape == hess.shape == shape and grad.dtype == hess.dtype == np.float32
    if task == "multiclass":  # LightGBM's ravel(order="F") is then a view, no copy
        assert grad.flags.f_contiguous and hess.flags.f_contiguous
    ref_g, ref_h = loss.gradient_hessian(y, np.ascontiguousarray(preds), w)
    np.testing.assert_allclose(grad, ref_g, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(hess, ref_h, rtol=1e-6, atol=1e-7)
    unweighted_g, _ = loss.gradient_hessian(y, np.ascontiguousarray(preds))
    w_col = w if task == "binary" else w[:, None]
    np.testing.assert_allclose(grad, unweighted_g * w_col, rtol=1e-6, atol=1e-7)
    # same buffers next round, refilled; the scores are never kept
    preds2 = np.asfortranarray(preds + 0.5)
    grad2, hess2 = obj(preds2, dtrain)
    assert grad2 is grad and hess2 is hess
    assert not any(np.shares_memory(v, preds2) for v in (grad2, hess2))
    np.testing.assert_allclose(grad2, loss.gradient_hessian(y, np.ascontiguousarray(preds2), w)[0],
                               rtol=1e-6, atol=1e-7)
    # the estimators' convention (y_true, y_pred, weight) gives the same (LightGBM hands
    # both the Dataset's float32 weights)
    g3, h3 = gbl.objective(loss)(y, preds2, dtrain.get_weight())
    np.testing.assert_array_equal(g3, grad2)
    np.testing.assert_array_equal(h3, hess2)


def test_hessian_scale_multiplies_the_hessian_only(rng):
    X, y = _data("binary", rng)
    dtrain = _dataset(X, y).construct()
    preds = rng.normal(size=N)
    loss = gbloss.FocalLoss(2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g1, h1 = (a.copy() for a in gbl.objective(loss)(preds, dtrain))
        g2, h2 = gbl.objective(loss, hessian_scale=2.5)(preds, dtrain)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_allclose(h2, 2.5 * h1, rtol=1e-6)


def test_lgbm_classifier_with_the_objective_applies_weights(rng):
    X, y = _data("binary", rng)
    w = rng.uniform(0.2, 3.0, N)
    loss = gbloss.CrossEntropyLoss()
    start = loss.init_score(y, w)
    model = lgb.LGBMClassifier(objective=gbl.objective(loss), n_estimators=10, num_leaves=7,
                               learning_rate=0.3, min_child_samples=5, verbosity=-1, n_jobs=1)
    model.fit(X, y, sample_weight=w, init_score=np.full(N, start))
    builtin = lgb.train({**PARAMS, "objective": "binary"}, _dataset(X, y, w), 10)
    np.testing.assert_allclose(model.predict(X, raw_score=True) + start,
                               builtin.predict(X, raw_score=True), rtol=0, atol=1e-6)


# -- the start -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "task"), LOSS_TASKS)
def test_training_starts_from_the_loss_start_on_train_and_valid_sets(name, task, rng):
    X, y = _data(task, rng)
    loss = LOSSES[name](task).prepare(y, n_classes=K if task == "multiclass" else None)
    dtrain, dvalid = _dataset(X[:300], y[:300]), _dataset(X[300:], y[300:])
    params = gbl.params(loss, dtrain, _params(task), valid_sets=[dvalid])
    expected = np.asarray(loss.init_score(y[:300], n_classes=K if task == "multiclass" else None))
    for ds, n in ((dtrain, 300), (dvalid, 100)):
        init = np.asarray(ds.get_init_score()).reshape(n, -1, order="F")
        np.testing.assert_allclose(init, np.broadcast_to(np.atleast_1d(expected),
                                                         init.shape), rtol=1e-12)
    seen = []
    inner = params["objective"]

    def spy(preds, ds):
        seen.append(np.array(preds))
        return inner(preds, ds)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "training starts from" warning
        lgb.train({**params, "objective": spy}, dtrain, 2, valid_sets=[dvalid],
                  feval=gbl.metric(loss))
    first = seen[0].reshape(300, -1)
    np.testing.assert_allclose(first, np.broadcast_to(np.atleast_1d(expected), first.shape),
                               rtol=1e-12)
    if name != "la":  # logit adjustment's link carries the priors: its start is about 0
        assert np.max(np.abs(expected)) > 0.1  # not LightGBM's 0


def test_first_validation_value_is_the_loss_at_the_start(rng):
    X, y = _data("binary", rng)
    loss = gbloss.FocalLoss(2.0, 0.25)
    dtrain, dvalid = _dataset(X[:300], y[:300]), _dataset(X[300:], y[300:])
    history = {}
    gbl.train({**PARAMS, "learning_rate": 1e-12}, dtrain, 1, loss=loss, metric="loss",
              valid_sets=[dvalid], valid_names=["valid"],
              callbacks=[lgb.record_evaluation(history)])
    start = loss.init_score(y[:300])
    expected = loss.loss(y[300:], np.full(100, start)).mean()
    np.testing.assert_allclose(history["valid"]["loss"][0], expected, rtol=1e-9)


def test_predictions_include_the_start(rng):
    X, y = _data("binary", rng)
    loss = gbloss.FocalLoss(2.0, 0.25)
    start = loss.init_score(y)
    booster = gbl.train({**PARAMS, "learning_rate": 1e-12}, _dataset(X, y), 1, loss=loss,
                        metric=None)
    np.testing.assert_allclose(gbl.predict_raw(booster, X), start, atol=1e-9)
    np.testing.assert_allclose(gbl.predict_proba(booster, X, calibrate=False),
                               special.expit(start), atol=1e-9)


@pytest.mark.parametrize("extra", [{"boosting": "dart"}, {"linear_tree": True}],
                         ids=["dart", "linear"])
def test_boostings_that_keep_the_start_out_of_the_trees(extra, rng, tmp_path):
    X, y = _data("binary", rng)
    loss = gbloss.FocalLoss(2.0, 0.25)
    booster = gbl.train({**PARAMS, **extra}, _dataset(X, y), 5, loss=loss, metric=None)
    rec = gbl.record(booster)
    assert rec["start_in_trees"] is False
    np.testing.assert_allclose(gbl.predict_raw(booster, X),
                               booster.predict(X, raw_score=True) + loss.init_score(y),
                               rtol=0, atol=1e-12)
    booster.save_model(tmp_path / "m.txt")
    np.testing.assert_allclose(gbl.predict_proba(lgb.Booster(model_file=tmp_path / "m.txt"), X),
                               gbl.predict_proba(booster, X), rtol=0, atol=1e-12)
    # trained from the start: the fit beats the start's loss
    assert loss.loss(y, gbl.predict_raw(booster, X)).mean() < loss.loss(
        y, np.full(N, loss.init_score(y))).mean()


def test_plain_objective_without_params_warns_about_the_start(rng):
    X, y = _data("binary", rng)
    dtrain = _dataset(X, y)
    with pytest.warns(UserWarning, match="training starts from the score"):
        lgb.train({**PARAMS, "objective": gbl.objective(gbloss.FocalLoss())}, dtrain, 1)


def test_metric_warns_for_a_valid_set_without_the_start(rng):
    X, y = _data("binary", rng)
    loss = gbloss.FocalLoss()
    dtrain, dvalid = _dataset(X[:300], y[:300]), _dataset(X[300:], y[300:])
    params = gbl.params(loss, dtrain, PARAMS)  # valid set forgotten
    with pytest.warns(UserWarning, match="no init_score"):
        lgb.train(params, dtrain, 1, valid_sets=[dvalid], feval=gbl.metric(loss))


# -- metrics and early stopping --------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_metric_values_are_the_sklearn_metrics_on_probabilities(task, weighted, rng):
    X, y = _data(task, rng)
    w = rng.uniform(0.2, 3.0, N) if weighted else None
    loss = LOSSES["focal"](task)
    dvalid = _dataset(X, y, w).construct()
    if weighted:
        w = dvalid.get_weight().astype(np.float64)  # LightGBM stores weights as float32
    raw = rng.normal(size=(N,) if task == "binary" else (N, K))
    names = ["loss", "average_precision", "roc_auc", "log_loss", "balanced_accuracy"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no init_score on this Dataset
        values = gbl.metric(loss, names)(np.asfortranarray(raw), dvalid)
    got = {name: (value, better) for name, value, better in values}
    proba = loss.link(raw, None if task == "binary" else task)
    if task == "binary":
        ap = skm.average_precision_score(y, proba, sample_weight=w)
        auc = skm.roc_auc_score(y, proba, sample_weight=w)
        bacc = skm.balanced_accuracy_score(y, raw > 0, sample_weight=w)
    else:
        onehot = np.eye(K)[y.astype(int)]
        ap = np.mean([skm.average_precision_score(onehot[:, k], proba[:, k], sample_weight=w)
                      for k in range(K)])
        auc = np.mean([skm.roc_auc_score(onehot[:, k], proba[:, k], sample_weight=w)
                       for k in range(K)])
        bacc = skm.balanced_accuracy_score(y, raw.argmax(axis=1), sample_weight=w)
    expected = {
        "loss": (np.average(loss.loss(y, raw), weights=w), False),
        "average_precision": (ap, True),
        "roc_auc": (auc, True),
        "log_loss": (skm.log_loss(y, proba, sample_weight=w), False),
        "balanced_accuracy": (bacc, True),
    }
    assert list(got) == names
    for name, (value, better) in expected.items():
        assert got[name][1] is better, name
        np.testing.assert_allclose(got[name][0], value, rtol=1e-9, err_msg=name)
    # the estimators' convention gives the same values
    again = gbl.metric(loss, names)(y, raw, w)
    np.testing.assert_allclose([v for _, v, _ in again], [v for _, v, _ in values], rtol=1e-12)


@pytest.mark.parametrize("name", ["average_precision", "roc_auc", "loss", "log_loss"])
def test_early_stopping_goes_the_right_way_with_plain_lgb_train(name, rng):
    X, y = _data("binary", rng, 600)
    y = np.where(rng.uniform(size=600) < 0.15, 1 - y, y)  # label noise: a real optimum
    loss = gbloss.FocalLoss(2.0, 0.25)
    dtrain, dvalid = _dataset(X[:300], y[:300]), _dataset(X[300:], y[300:])
    params = gbl.params(loss, dtrain, {**PARAMS, "learning_rate": 0.5, "num_leaves": 15,
                                       "min_data_in_leaf": 2}, valid_sets=[dvalid])
    history = {}
    booster = lgb.train(params, dtrain, 300, valid_sets=[dvalid], valid_names=["valid"],
                        feval=gbl.metric(loss, name),
                        callbacks=[lgb.early_stopping(10, verbose=False),
                                   lgb.record_evaluation(history)])
    values = np.array(history["valid"][name])
    assert 0 < booster.best_iteration < len(values)  # it stopped early
    best = values[booster.best_iteration - 1]
    maximise = gbloss._metrics.higher_is_better(name)
    assert best == (values.max() if maximise else values.min())
    assert len(values) == booster.best_iteration + 10


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_default_raw_score_metric_is_off(task, rng):
    X, y = _data(task, rng)
    dtrain, dvalid = _dataset(X[:300], y[:300]), _dataset(X[300:], y[300:])
    history = {}
    gbl.train(_params(task), dtrain, 3, loss=gbloss.FocalLoss(), metric=["loss", "roc_auc"],
              valid_sets=[dtrain, dvalid], valid_names=["train", "valid"],
              callbacks=[lgb.record_evaluation(history)])
    assert {k: list(v) for k, v in history.items()} == {"train": ["loss", "roc_auc"],
                                                        "valid": ["loss", "roc_auc"]}
    params = gbl.params(gbloss.FocalLoss(), dtrain, _params(task))
    assert params["metric"] == "None"
    history = {}
    lgb.train(params, dtrain, 2, valid_sets=[dvalid], callbacks=[lgb.record_evaluation(history)])
    assert history == {}  # nothing computed on raw scores


# -- saving and loading ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["file", "string", "pickle"])
@pytest.mark.parametrize("path", ["train", "params"])
@pytest.mark.parametrize(("name", "task"), LOSS_TASKS)
def test_save_load_round_trip(name, task, path, how, rng, tmp_path):
    X, y = _data(task, rng)
    loss = LOSSES[name](task)
    dtrain, dvalid = _dataset(X[:300], y[:300]), _dataset(X[300:], y[300:])
    if path == "train":
        booster = gbl.train(_params(task), dtrain, 30, loss=loss, metric="loss",
                            valid_sets=[dvalid], callbacks=[lgb.early_stopping(5, verbose=False)])
    else:
        params = gbl.params(loss, dtrain, _params(task), valid_sets=[dvalid])
        booster = lgb.train(params, dtrain, 30, valid_sets=[dvalid], feval=gbl.metric(
            params["objective"].loss), callbacks=[lgb.early_stopping(5, verbose=False)])
    proba = gbl.predict_proba(booster, X, calibrate=False)
    if how == "file":
        booster.save_model(tmp_path / "model.txt")
        loaded = lgb.Booster(model_file=tmp_path / "model.txt")
    elif how == "string":
        loaded = lgb.Booster(model_str=booster.model_to_string())
    else:
        loaded = pickle.loads(pickle.dumps(booster))
    np.testing.assert_allclose(gbl.predict_proba(loaded, X, calibrate=False), proba, rtol=0,
                               atol=1e-12)
    # the probabilities are the loss's link of the raw scores with the start
    rec = gbl.record(loaded)
    stored = gbloss.loss_from_dict(rec["loss"])
    start = np.asarray(rec["start"])
    assert rec["task"] == task and rec["start_in_trees"] is (path == "train")
    raw = loaded.predict(X, raw_score=True) + (0 if rec["start_in_trees"] else
                                               (start[0] if task == "binary" else start))
    task_arg = None if task == "binary" else task
    np.testing.assert_allclose(proba, stored.link(raw, task_arg), rtol=0, atol=1e-12)
    # by default, the calibrated probabilities of the stored loss
    np.testing.assert_allclose(gbl.predict_proba(loaded, X), stored.predict_proba(raw, task_arg),
                               rtol=0, atol=1e-12)
    if task == "multiclass":
        assert proba.shape == (N, K)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    else:
        assert proba.shape == (N,)


def test_logit_adjustment_record_holds_the_training_priors(rng):
    X, y = _data("multiclass", rng)
    booster = gbl.train(_params("multiclass"), _dataset(X, y), 3, loss=gbloss.LogitAdjustedLoss(),
                        metric=None)
    priors = gbl.record(lgb.Booster(model_str=booster.model_to_string()))["loss"]["params"]
    np.testing.assert_allclose(priors["priors"], gbloss.class_frequencies(y), rtol=1e-12)


def test_predict_proba_of_a_plain_booster_needs_the_loss(rng):
    X, y = _data("binary", rng)
    loss = gbloss.FocalLoss()
    booster = lgb.train({**PARAMS, "objective": "binary"}, _dataset(X, y), 3)
    with pytest.raises(ValueError, match="carries no gbloss loss.*pass loss="):
        gbl.predict_proba(booster, X)
    np.testing.assert_allclose(gbl.predict_proba(booster, X, loss=loss, calibrate=False),
                               special.expit(booster.predict(X, raw_score=True)))
    ours = gbl.train(PARAMS, _dataset(X, y), 3, loss=loss, metric=None)
    with pytest.raises(ValueError, match="differs from the loss the booster was trained with"):
        gbl.predict_proba(ours, X, loss=gbloss.FocalLoss(3.0))


def test_objective_and_metric_pickle_and_deepcopy_without_caches(rng):
    X, y = _data("binary", rng)
    dtrain = _dataset(X, y).construct()
    obj, met = gbl.objective(gbloss.FocalLoss(2.0, 0.25)), gbl.metric(gbloss.FocalLoss(), "loss")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g, _ = obj(np.zeros(N), dtrain)
        met(np.zeros(N), dtrain)
    for clone in (pickle.loads(pickle.dumps(obj)), copy.deepcopy(obj)):
        assert len(clone._runs()) == 0 and clone.loss == obj.loss
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_array_equal(clone(np.zeros(N), dtrain)[0], g)
    assert len(met._warned) == 1  # warned once for dtrain (no init_score)
    assert len(pickle.loads(pickle.dumps(met))._warned) == 0


# -- bad input -------------------------------------------------------------------------------


def test_binary_only_loss_with_num_class(rng):
    X, y = _data("multiclass", rng)
    with pytest.raises(ValueError, match="AsymmetricLoss does not support multiclass.*remove "
                                         "num_class.*FocalLoss, CrossEntropyLoss.*"
                                         "LogitAdjustedLoss"):
        gbl.train(_params("multiclass"), _dataset(X, y), 2, loss=gbloss.AsymmetricLoss())
    with pytest.raises(ValueError, match="AsymmetricLoss has no multiclass form"):
        gbl.train(PARAMS, _dataset(X, y), 2, loss=gbloss.AsymmetricLoss())


@pytest.mark.parametrize(("task", "labels", "params", "match"), [
    ("binary", lambda y: y * 2, {}, r"class ids up to 2: for a multiclass target set "
                                    r"params\['num_class'\] = 3"),
    ("binary", lambda y: y - 0.5, {}, r"binary labels must lie in \[0, 1\]"),
    ("multiclass", lambda y: y + 1, {"num_class": K}, r"integers in 0\.\.2 \(num_class=3\)"),
    ("multiclass", lambda y: y + 0.5, {"num_class": K}, r"integers in 0\.\.2"),
    ("binary", lambda y: np.where(y > 0, np.nan, y), {}, "contain NaN"),
])
def test_labels_outside_the_domain(task, labels, params, match, rng):
    X, y = _data(task, rng)
    with pytest.raises(ValueError, match=match):
        gbl.train({**PARAMS, **params}, _dataset(X, labels(y)), 2, loss=gbloss.FocalLoss())


def test_missing_labels_and_bad_weights(rng):
    X, y = _data("binary", rng)
    with pytest.raises(ValueError, match=r"has no labels: create it with lightgbm\.Dataset\(X, "
                                         r"label=y\)"):
        gbl.train(PARAMS, lgb.Dataset(X), 2, loss=gbloss.FocalLoss())
    with pytest.raises(ValueError, match="validation Dataset has no labels"):
        gbl.train(PARAMS, _dataset(X, y), 2, loss=gbloss.FocalLoss(), valid_sets=[lgb.Dataset(X)])
    w = np.ones(N)
    w[3] = -1.0
    with pytest.raises(ValueError, match="sample_weight must be finite and >= 0"):
        gbl.train(PARAMS, _dataset(X, y, w), 2, loss=gbloss.FocalLoss())


@pytest.mark.parametrize(("params", "match"), [
    ({"objective": "binary"}, r"remove params\['objective'\]"),
    ({"metric": "binary_logloss"}, r"remove params\['metric'\] = 'binary_logloss'.*raw scores"),
    ({"metrics": ["auc"]}, r"remove params\['metric'\]"),
    ({"valid": "x.txt"}, r"remove params\['valid'\]"),
    ({"boosting": "rf"}, "boosting='rf' is not supported.*takes no init_score"),
])
def test_parameters_gbloss_sets_are_refused(params, match, rng):
    X, y = _data("binary", rng)
    with pytest.raises(ValueError, match=match):
        gbl.params(gbloss.FocalLoss(), _dataset(X, y), {**PARAMS, **params})
    with pytest.raises(ValueError, match=match):
        gbl.train({**PARAMS, **params}, _dataset(X, y), 2, loss=gbloss.FocalLoss())


def test_bad_arguments(rng):
    X, y = _data("binary", rng)
    with pytest.raises(ValueError, match="no class priors yet.*loss.prepare"):
        gbl.objective(gbloss.LogitAdjustedLoss())
    with pytest.raises(ValueError, match="unknown metric name"):
        gbl.metric(gbloss.FocalLoss(), "auc_pr")
    with pytest.raises(ValueError, match="hessian_scale must be a finite number > 0"):
        gbl.objective(gbloss.FocalLoss(), hessian_scale=0)
    with pytest.raises(TypeError, match="feval= is set by gbloss"):
        gbl.train(PARAMS, _dataset(X, y), 2, loss=gbloss.FocalLoss(), feval=lambda p, d: None)
    with pytest.raises(TypeError, match="expected a lightgbm.Booster"):
        gbl.predict_proba(object(), X)
    with pytest.raises(ValueError, match="multi-label target"):
        gbl.objective(gbloss.FocalLoss())(np.zeros((N, 2)), np.zeros((N, 2)), None)


def test_too_few_rows_for_any_split_gets_a_clear_error(rng):
    """LightGBM drops every feature of a 20-row Dataset (min_data_in_leaf=20) and then fails a
    C++ check with any custom objective; gbloss says what to change."""
    X, y = rng.normal(size=(20, 3)), (np.arange(20) % 2).astype(float)
    with pytest.raises(ValueError, match="feature_pre_filter"):
        gbl.train({"verbosity": -1}, lgb.Dataset(X, y), 3, loss=gbloss.FocalLoss(), metric=None)
    kept = lgb.Dataset(X, y, params={"feature_pre_filter": False, "verbosity": -1})
    booster = gbl.train({"verbosity": -1}, kept, 3, loss=gbloss.FocalLoss(), metric=None)
    assert gbl.predict_proba(booster, X).shape == (20,)
