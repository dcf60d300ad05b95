"""gbloss.xgboost: parity with XGBoost's built-in objectives, every task, the start, metrics and
early stopping, save/load, bad input. Small data and few rounds throughout."""

import json
import pickle
import warnings

import numpy as np
import pytest
import xgboost as xgb
from scipy import special

import gbloss
import gbloss.xgboost as gbx
from gbloss import _metrics

STRATEGIES = ("one_output_per_tree", "multi_output_tree")
N = 400
K = 3
#: XGBoost on one thread: on a loaded 2-core machine, OpenMP barriers between two threads make
#: these tiny fits up to 10x slower.
ONE_THREAD = {"nthread": 1}


def _features(rng, n=N):
    return rng.normal(size=(n, 5))


def _labels(task, X, rng):
    z = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=X.shape[0])
    if task == "binary":
        return (z > 1.0).astype(np.float64)  # about 20% positives
    if task == "multiclass":
        return np.digitize(z, [-0.3, 1.0]).astype(np.float64)
    noise = rng.normal(scale=0.8, size=(X.shape[0], K))
    return (X[:, :K] + noise > [1.2, 0.5, 0.0]).astype(np.float64)


def _dmatrix(task, rng, *, weighted=False, n=N):
    X = _features(rng, n)
    y = _labels(task, X, rng)
    w = rng.uniform(0.2, 3.0, n) if weighted else None
    return xgb.DMatrix(X, label=y, weight=w), X, y, w


def _task_params(task, strategy=None):
    params = {"max_depth": 3, "eta": 0.3, **ONE_THREAD}
    if task == "multiclass":
        params["num_class"] = K
    if strategy is not None:
        params["multi_strategy"] = strategy
    return params


#: Loss makers by task (multiclass focal alpha needs one weight per class).
LOSSES = {
    "focal": lambda task: gbloss.FocalLoss(2.0, [0.2, 0.3, 0.5] if task == "multiclass" else 0.25),
    "focal-noalpha": lambda task: gbloss.FocalLoss(2.0),
    "ce": lambda task: gbloss.CrossEntropyLoss(),
    "asl": lambda task: gbloss.AsymmetricLoss(0.0, 4.0, 0.05),
    "la": lambda task: gbloss.LogitAdjustedLoss(1.0),
    "la-posthoc": lambda task: gbloss.LogitAdjustedLoss(1.0, posthoc=True),
}


def _loss_task_params():
    cases = []
    for name, make in LOSSES.items():
        for task in make("binary").tasks:
            strategies = (None,) if task == "binary" else STRATEGIES
            cases += [pytest.param(name, task, s, id=f"{name}-{task}" + (f"-{s}" if s else ""))
                      for s in strategies]
    return cases


# -- parity with the built-in objectives -----------------------------------------------------


@pytest.mark.parametrize("loss", [gbloss.CrossEntropyLoss(), gbloss.FocalLoss(gamma=0.0)],
                         ids=["ce", "focal-g0"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_binary_matches_binary_logistic(loss, weighted, rng):
    dtrain, X, _, _ = _dmatrix("binary", rng, weighted=weighted)
    params = {"max_depth": 3, "eta": 0.3, **ONE_THREAD}
    builtin = xgb.train({**params, "objective": "binary:logistic"}, dtrain, 15)
    ours = xgb.train(gbx.params(loss, dtrain, params), dtrain, 15, obj=gbx.objective(loss))
    np.testing.assert_allclose(gbx.predict_proba(ours, X, loss=loss), builtin.predict(dtrain),
                               rtol=0, atol=1e-5)
    wrapped = gbx.train(params, dtrain, 15, loss=loss)
    np.testing.assert_allclose(gbx.predict_proba(wrapped, dtrain), builtin.predict(dtrain),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_multiclass_matches_softprob_with_hessian_scale_2(strategy, weighted, rng):
    dtrain, X, _, _ = _dmatrix("multiclass", rng, weighted=weighted)
    params = _task_params("multiclass", strategy)
    builtin = xgb.train({**params, "objective": "multi:softprob"}, dtrain, 10).predict(dtrain)
    loss = gbloss.CrossEntropyLoss()
    ours = gbx.train(params, dtrain, 10, loss=loss, hessian_scale=2.0)
    np.testing.assert_allclose(gbx.predict_proba(ours, X), builtin, rtol=0, atol=1e-5)
    # the default (exact diagonal, twice the built-in step) is a different, documented model
    exact = gbx.train(params, dtrain, 10, loss=loss)
    assert np.abs(gbx.predict_proba(exact, X) - builtin).max() > 1e-3


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_multilabel_matches_multi_target_logistic(strategy, weighted, rng):
    dtrain, X, _, _ = _dmatrix("multilabel", rng, weighted=weighted)
    params = _task_params("multilabel", strategy)
    builtin = xgb.train({**params, "objective": "binary:logistic"}, dtrain, 10).predict(dtrain)
    ours = gbx.train(params, dtrain, 10, loss=gbloss.CrossEntropyLoss())
    np.testing.assert_allclose(gbx.predict_proba(ours, X), builtin, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("task", "strategy"), [("binary", None), ("multiclass", None),
                                              ("multilabel", "one_output_per_tree"),
                                              ("multilabel", "multi_output_tree")])
@pytest.mark.parametrize("native", [True, False], ids=["c-api", "python-api"])
def test_train_grows_the_model_of_xgboost_train_with_the_objective(task, strategy, native, rng,
                                                                   monkeypatch):
    """gbx.train's own loop (rounds after the first through XGBoost's C functions, or through
    Booster.update where they are missing) against xgboost.train with the same objective:
    the same bytes, the same evaluation history and early-stopping round."""
    if not native:
        monkeypatch.setattr(gbx._NativeRound, "available", staticmethod(lambda: False))
    dtrain, X, _, _ = _dmatrix(task, rng, weighted=True)
    dvalid, _, _, _ = _dmatrix(task, rng, n=150)
    params = _task_params(task, strategy)
    loss = gbloss.FocalLoss(2.0)
    histories = [{}, {}]
    ours = gbx.train(params, dtrain, 40, loss=loss, hessian_scale=1.5, evals=[(dvalid, "v")],
                     early_stopping_rounds=3, evals_result=histories[0], verbose_eval=False)
    reference = xgb.train(gbx.params(loss, dtrain, params), dtrain, 40,
                          obj=gbx.objective(loss, hessian_scale=1.5),
                          custom_metric=gbx.metric(loss), evals=[(dvalid, "v")],
                          early_stopping_rounds=3, evals_result=histories[1], verbose_eval=False)
    for booster in (ours, reference):
        for key in [k for k in booster.attributes() if k.startswith("gbloss_")]:
            booster.set_attr(**{key: None})
    assert bytes(ours.save_raw()) == bytes(reference.save_raw())
    assert histories[0] == histories[1]
    assert ours.best_iteration == reference.best_iteration


def test_train_calls_the_python_objective_once_then_the_bound_kernel(rng, monkeypatch):
    dtrain, _, _, _ = _dmatrix("binary", rng)
    calls = []
    original = gbx.Objective.__call__
    monkeypatch.setattr(gbx.Objective, "__call__",
                        lambda self, *a: calls.append(1) or original(self, *a))
    gbx.train(_task_params("binary"), dtrain, 8, loss=gbloss.FocalLoss(), metric=None)
    assert len(calls) == 1


# -- every task ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "task", "strategy"), _loss_task_params())
def test_every_loss_and_task_trains_and_predicts_probabilities(name, task, strategy, rng):
    dtrain, X, y, _ = _dmatrix(task, rng)
    loss = LOSSES[name](task)
    history = {}
    booster = gbx.train(_task_params(task, strategy), dtrain, 8, loss=loss,
                        evals=[(dtrain, "train")], evals_result=history, verbose_eval=False)
    proba = gbx.predict_proba(booster, X)
    assert proba.shape == ((N,) if task == "binary" else (N, K))
    assert np.all((proba >= 0) & (proba <= 1))
    if task == "multiclass":
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    losses = history["train"]["loss"]
    assert losses[-1] < losses[0]  # the objective descends its own loss


@pytest.mark.parametrize(("task", "strategy"), [("binary", None)] + [
    (task, s) for task in ("multiclass", "multilabel") for s in STRATEGIES])
def test_gradients_have_xgboost_shapes_and_weights_are_applied(task, strategy, rng):
    dtrain, X, y, w = _dmatrix(task, rng, weighted=True)
    loss = gbloss.FocalLoss(2.0)
    seen = []
    inner = gbx.objective(loss)

    def spy(predt, dmat):
        grad, hess = inner(predt, dmat)
        seen.append((predt.copy(), grad.copy(), hess.copy()))
        return grad, hess

    xgb.train(gbx.params(loss, dtrain, _task_params(task, strategy)), dtrain, 2, obj=spy)
    predt, grad, hess = seen[1]
    assert grad.shape == hess.shape == predt.shape
    assert grad.dtype == np.float32
    expected_g, expected_h = loss.gradient_hessian(y, predt.astype(np.float64), w)
    np.testing.assert_allclose(grad, expected_g, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hess, expected_h, rtol=1e-5, atol=1e-7)
    unweighted, _ = loss.gradient_hessian(y, predt.astype(np.float64))
    assert not np.allclose(grad, unweighted, rtol=1e-3)


def test_gradient_buffers_are_reused_and_label_changes_are_seen(rng):
    dtrain, X, y, _ = _dmatrix("binary", rng)
    loss = gbloss.FocalLoss()
    obj = gbx.objective(loss)
    predt = np.full(N, gbx.params(loss, dtrain)["base_score"], dtype=np.float32)
    g1, h1 = obj(predt, dtrain)
    g2, h2 = obj(predt + 0.5, dtrain)
    assert np.shares_memory(g1, g2) and np.shares_memory(h1, h2)
    dtrain.set_label(1.0 - y)  # between rounds: the next round sees the new labels
    with pytest.warns(UserWarning, match="training starts from the margin"):
        g3, _ = obj(predt + 0.5, dtrain)  # a new run: validated and start-checked again
    np.testing.assert_allclose(g3, loss.gradient_hessian(1.0 - y, predt + 0.5)[0], rtol=1e-6)


def test_hessian_scale_multiplies_the_hessian_only(rng):
    dtrain, *_ = _dmatrix("multiclass", rng)
    predt = rng.normal(size=(N, K)).astype(np.float32)
    g1, h1 = (a.copy() for a in gbx.objective(gbloss.CrossEntropyLoss())(predt, dtrain))
    g2, h2 = gbx.objective(gbloss.CrossEntropyLoss(), hessian_scale=2.0)(predt, dtrain)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_allclose(h2, 2.0 * h1, rtol=1e-7)


def test_objective_and_metric_pickle(rng):
    dtrain, X, _, _ = _dmatrix("binary", rng)
    loss = gbloss.FocalLoss(2.0, 0.25)
    obj, met = gbx.objective(loss), gbx.metric(loss, "roc_auc")
    predt = np.full(N, gbx.params(loss, dtrain)["base_score"], dtype=np.float32)
    obj(predt, dtrain)  # fills the cache, which must not travel
    obj2, met2 = pickle.loads(pickle.dumps(obj)), pickle.loads(pickle.dumps(met))
    np.testing.assert_array_equal(obj2(predt, dtrain)[0], obj(predt, dtrain)[0])
    assert met2(predt + 0.1, dtrain) == met(predt + 0.1, dtrain)
    assert met2.__name__ == "auc_roc"


# -- the start -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "task", "strategy"), _loss_task_params())
def test_training_starts_from_the_loss_start_and_eval_sets_get_it(name, task, strategy, rng):
    dtrain, _, y, w = _dmatrix(task, rng, weighted=True)
    dvalid, *_ = _dmatrix(task, rng, n=50)
    loss = LOSSES[name](task)
    prepared = loss.prepare(y, n_classes=K if task == "multiclass" else None)
    start = prepared.init_score(y, w, n_classes=K if task == "multiclass" else None)
    first = []
    inner = gbx.objective(prepared)

    def spy(predt, dmat):
        first.append(predt.copy())
        return inner(predt, dmat)

    params = gbx.params(prepared, dtrain, _task_params(task, strategy))
    xgb.train(params, dtrain, 1, obj=spy)
    expected = np.broadcast_to(start, first[0].shape)
    np.testing.assert_allclose(first[0], expected, rtol=1e-6, atol=1e-6)
    # the eval set gets the start as well: no trees -> every row predicts it
    untrained = xgb.train(params, dtrain, 0, obj=spy)
    np.testing.assert_allclose(gbx.predict_raw(untrained, dvalid),
                               np.broadcast_to(start, (50,) + expected.shape[1:]),
                               rtol=1e-6, atol=1e-6)
    wrapped = gbx.train(_task_params(task, strategy), dtrain, 1, loss=loss)
    np.testing.assert_allclose(json.loads(wrapped.attr(gbx.ATTR_START)), np.atleast_1d(start),
                               rtol=0, atol=1e-7)  # the DMatrix holds float32 weights


def test_first_eval_value_uses_the_start(rng):
    dtrain, X, y, _ = _dmatrix("binary", rng)
    loss = gbloss.FocalLoss(2.0, 0.25)
    history = {}
    booster = gbx.train({"max_depth": 2, **ONE_THREAD}, dtrain, 3, loss=loss,
                        evals=[(dtrain, "train")], evals_result=history, verbose_eval=False)
    raw0 = gbx.predict_raw(booster, X, iteration_range=(0, 1))
    assert history["train"]["loss"][0] == pytest.approx(
        _metrics.metric_value("loss", loss, y, raw0), abs=2e-6)
    zero_start = booster.predict(dtrain, output_margin=True, iteration_range=(0, 1)) \
        - float(booster.attr(gbx.ATTR_START).strip("[]"))
    assert history["train"]["loss"][0] != pytest.approx(
        _metrics.metric_value("loss", loss, y, zero_start), abs=1e-3)


def test_plain_train_without_params_warns_about_the_start(rng):
    dtrain, *_ = _dmatrix("binary", rng)
    with pytest.warns(UserWarning, match=r"gbloss\.xgboost\.params"):
        xgb.train({"max_depth": 2, **ONE_THREAD}, dtrain, 1, obj=gbx.objective(gbloss.FocalLoss()))
    loss = gbloss.FocalLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xgb.train(gbx.params(loss, dtrain, {"max_depth": 2, **ONE_THREAD}), dtrain, 1,
                  obj=gbx.objective(loss))


# -- metrics and early stopping --------------------------------------------------------------


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_metric_values_are_the_sklearn_metrics_on_probabilities(task, rng):
    dtrain, X, y, w = _dmatrix(task, rng, weighted=True)
    loss = gbloss.FocalLoss(1.0)
    names = list(gbx.METRIC_NAMES)
    history = {}
    booster = gbx.train(_task_params(task), dtrain, 4, loss=loss, metric=names,
                        evals=[(dtrain, "train")], evals_result=history, verbose_eval=False)
    raw = gbx.predict_raw(booster, X)
    for name in names:
        expected = _metrics.metric_value(name, loss, y, raw, w)
        if name == "balanced_accuracy":
            expected = 1.0 - expected
        assert history["train"][gbx.METRIC_NAMES[name]][-1] == pytest.approx(expected, abs=2e-6)


def test_metric_directions():
    loss = gbloss.FocalLoss()
    for name in gbx.METRIC_NAMES:
        met = gbx.metric(loss, ["loss", name])
        assert met.maximize == (_metrics.higher_is_better(name) and name != "balanced_accuracy")
        assert ":" not in met.__name__ and " " not in met.__name__
    assert gbx.metric(loss, ["average_precision", "loss"]).maximize is False


def _overfitting_data(rng):
    """Noisy labels and deep trees: validation scores rise, then fall."""
    X = rng.normal(size=(600, 5))
    y = ((X[:, 0] + rng.normal(scale=2.0, size=600)) > 1.5).astype(np.float64)
    return xgb.DMatrix(X[:300], label=y[:300]), xgb.DMatrix(X[300:], label=y[300:])


@pytest.mark.parametrize("name", ["average_precision", "roc_auc", "loss", "balanced_accuracy"])
def test_early_stopping_goes_the_right_way_with_plain_xgboost_train(name, rng):
    dtrain, dvalid = _overfitting_data(rng)
    loss = gbloss.CrossEntropyLoss()
    params = gbx.params(loss, dtrain,
                        {"max_depth": 6, "eta": 0.5, "min_child_weight": 0, **ONE_THREAD})
    history = {}
    booster = xgb.train(params, dtrain, 60, obj=gbx.objective(loss),
                        custom_metric=gbx.metric(loss, name), evals=[(dvalid, "valid")],
                        early_stopping_rounds=60, evals_result=history, verbose_eval=False)
    values = np.array(history["valid"][gbx.METRIC_NAMES[name]])
    best, worst = (np.argmax, np.argmin) if _metrics.higher_is_better(name) \
        and name != "balanced_accuracy" else (np.argmin, np.argmax)
    assert best(values) != worst(values)  # the direction matters on this data
    assert booster.best_iteration == best(values)
    # predict_proba follows best_iteration by default, like XGBoost's scikit-learn API
    X = dvalid.get_data().toarray()
    expected = special.expit(booster.predict(dvalid, output_margin=True,
                                             iteration_range=(0, booster.best_iteration + 1)))
    np.testing.assert_allclose(gbx.predict_proba(booster, X, loss=loss), expected, rtol=1e-6)


def test_train_passes_maximize_and_refuses_a_contradiction(rng):
    dtrain, dvalid = _overfitting_data(rng)
    history = {}
    booster = gbx.train({"max_depth": 6, "eta": 0.5, **ONE_THREAD}, dtrain, 40,
                        loss=gbloss.CrossEntropyLoss(), metric=["loss", "average_precision"],
                        evals=[(dvalid, "valid")], early_stopping_rounds=40,
                        evals_result=history, verbose_eval=False)
    assert booster.best_iteration == int(np.argmax(history["valid"]["auc_pr"]))
    with pytest.raises(ValueError, match="contradicts metric 'loss'.*drop maximize"):
        gbx.train(ONE_THREAD, dtrain, 2, loss=gbloss.CrossEntropyLoss(), metric="loss",
                  maximize=True, evals=[(dvalid, "valid")], early_stopping_rounds=2)


def test_default_margin_metric_is_disabled(rng):
    dtrain, *_ = _dmatrix("binary", rng)
    history = {}
    gbx.train(ONE_THREAD, dtrain, 2, loss=gbloss.FocalLoss(), metric=None,
              evals=[(dtrain, "train")], evals_result=history, verbose_eval=False)
    assert history == {} or history["train"] == {}
    history = {}
    gbx.train(ONE_THREAD, dtrain, 2, loss=gbloss.FocalLoss(), evals=[(dtrain, "train")],
              evals_result=history, verbose_eval=False)
    assert list(history["train"]) == ["loss"]


# -- models that remember their loss ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "ubj"])
@pytest.mark.parametrize(("name", "task", "strategy"), _loss_task_params())
def test_save_load_round_trip(name, task, strategy, fmt, rng, tmp_path):
    dtrain, X, _, _ = _dmatrix(task, rng)
    dvalid, *_ = _dmatrix(task, rng, n=100)
    booster = gbx.train(_task_params(task, strategy), dtrain, 12, loss=LOSSES[name](task),
                        evals=[(dvalid, "valid")], early_stopping_rounds=3, verbose_eval=False)
    before = gbx.predict_proba(booster, X, calibrate=False)
    path = tmp_path / f"model.{fmt}"
    booster.save_model(path)
    loaded = xgb.Booster(model_file=path)
    np.testing.assert_array_equal(gbx.predict_proba(loaded, X, calibrate=False), before)
    np.testing.assert_array_equal(gbx.predict_proba(loaded, xgb.DMatrix(X), calibrate=False),
                                  before)
    stored = gbloss.loss_from_dict(json.loads(loaded.attr(gbx.ATTR_LOSS)))
    assert type(stored) is type(LOSSES[name](task))
    raw = loaded.predict(xgb.DMatrix(X), output_margin=True,
                         iteration_range=(0, loaded.best_iteration + 1))
    task_arg = None if task == "binary" else task
    np.testing.assert_allclose(before, stored.predict_proba(raw, task=task_arg, calibrate=False),
                               rtol=1e-12)
    # by default, the calibrated probabilities of the stored loss
    np.testing.assert_allclose(gbx.predict_proba(loaded, X),
                               stored.predict_proba(raw, task=task_arg), rtol=1e-12)


def test_predict_proba_refuses_a_different_loss(rng):
    dtrain, X, _, _ = _dmatrix("binary", rng)
    booster = gbx.train(ONE_THREAD, dtrain, 2, loss=gbloss.FocalLoss(2.0))
    np.testing.assert_array_equal(gbx.predict_proba(booster, X, loss=gbloss.FocalLoss(2.0)),
                                  gbx.predict_proba(booster, X))
    with pytest.raises(ValueError, match="differs from the loss the booster was trained with"):
        gbx.predict_proba(booster, X, loss=gbloss.FocalLoss(1.0))
    plain = xgb.train(ONE_THREAD, dtrain, 1)
    with pytest.raises(ValueError, match="pass loss="):
        gbx.predict_proba(plain, X)


# -- bad input -------------------------------------------------------------------------------


def test_binary_only_loss_given_multiclass_margins(rng):
    dtrain, *_ = _dmatrix("multiclass", rng)
    loss = gbloss.AsymmetricLoss()
    match = r"AsymmetricLoss does not support multiclass.*remove num_class"
    with pytest.raises(ValueError, match=match):
        gbx.params(loss, dtrain, {"num_class": K})
    with pytest.raises(ValueError, match=match):  # plain xgboost.train, the objective itself
        xgb.train({"num_class": K}, dtrain, 1, obj=gbx.objective(loss))
    binary_priors = gbloss.LogitAdjustedLoss(priors=[0.8, 0.2])
    with pytest.raises(ValueError, match="priors has 2 entries but the target has 3 classes"):
        gbx.train({"num_class": K}, dtrain, 1, loss=binary_priors)


def test_missing_num_class(rng):
    dtrain, *_ = _dmatrix("multiclass", rng)
    match = r"set params\['num_class'\] = 3"
    with pytest.raises(ValueError, match=match):
        gbx.train({}, dtrain, 1, loss=gbloss.FocalLoss())
    with pytest.raises(ValueError, match=match):
        xgb.train({}, dtrain, 1, obj=gbx.objective(gbloss.FocalLoss()))
    with pytest.raises(ValueError, match="AsymmetricLoss has no multiclass form"):
        gbx.params(gbloss.AsymmetricLoss(), dtrain)


@pytest.mark.parametrize(("task", "labels", "params", "match"), [
    ("binary", [-1.0, 0.5], {}, r"labels in \[0, 1\]"),
    ("binary", [0.0, 1.5], {}, r"labels in \[0, 1\]"),
    ("multiclass", [0.0, 3.0], {"num_class": K}, r"integer class labels in 0\.\.2"),
    ("multiclass", [0.0, 1.5], {"num_class": K}, r"integer class labels in 0\.\.2"),
])
def test_labels_outside_the_domain(task, labels, params, match, rng):
    X = _features(rng, 20)
    y = np.resize(np.array(labels), 20)
    dtrain = xgb.DMatrix(X, label=y)
    loss = gbloss.FocalLoss()
    with pytest.raises(ValueError, match=match):
        gbx.train(params, dtrain, 1, loss=loss)
    with pytest.raises(ValueError, match=match):
        xgb.train({**params, "base_score": 0.0}, dtrain, 1, obj=gbx.objective(loss))


def test_multilabel_with_num_class(rng):
    dtrain, *_ = _dmatrix("multilabel", rng)
    with pytest.raises(ValueError, match="multi-label target, which takes no num_class"):
        gbx.params(gbloss.FocalLoss(), dtrain, {"num_class": K})
    with pytest.raises(ValueError, match="LogitAdjustedLoss does not support multilabel"):
        gbx.params(gbloss.LogitAdjustedLoss(priors=[0.5, 0.5]), dtrain)


@pytest.mark.parametrize(("task", "params", "match"), [
    ("multilabel", {"multi_strategy": "vector"}, "multi_strategy must be one of"),
    ("multilabel", {"multi_strategy": "multi_output_tree", "tree_method": "exact"},
     "needs tree_method='hist'"),
    ("binary", {"multi_strategy": "multi_output_tree"}, "remove multi_strategy"),
    ("binary", {"objective": "binary:logistic"}, r"remove params\['objective'\]"),
    ("binary", {"base_score": 0.5}, r"remove params\['base_score'\]"),
])
def test_parameters_the_loss_cannot_serve(task, params, match, rng):
    dtrain, *_ = _dmatrix(task, rng)
    with pytest.raises(ValueError, match=match):
        gbx.params(gbloss.FocalLoss(), dtrain, params)
    with pytest.raises(ValueError, match=match):
        gbx.train(params, dtrain, 1, loss=gbloss.FocalLoss())


def test_unprepared_logit_adjustment_and_bad_arguments(rng):
    dtrain, *_ = _dmatrix("binary", rng)
    loss = gbloss.LogitAdjustedLoss()
    for make in (gbx.objective, gbx.metric, lambda lo: gbx.params(lo, dtrain)):
        with pytest.raises(ValueError, match=r"loss = loss\.prepare\(y_train\)"):
            make(loss)
    with pytest.raises(ValueError, match="hessian_scale must be"):
        gbx.objective(gbloss.FocalLoss(), hessian_scale=0.0)
    with pytest.raises(ValueError, match="unknown metric"):
        gbx.metric(gbloss.FocalLoss(), "auc")
    with pytest.raises(TypeError, match="obj= is set by gbloss"):
        gbx.train({}, dtrain, 1, loss=gbloss.FocalLoss(), obj=gbx.objective(gbloss.FocalLoss()))
    with pytest.warns(UserWarning, match="eval_metric.*raw margins"):
        gbx.params(gbloss.FocalLoss(), dtrain, {"eval_metric": "logloss"})
