"""The engine adapters under reuse and bad records: label and weight edits between trainings and
rounds, one objective in two threads, corrupt or foreign model records, strict parameter types
and degenerate weights. Both engines; small data, one engine thread."""

import json
import threading
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gbloss

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
import gbloss.lightgbm as gbl  # noqa: E402
import gbloss.xgboost as gbx  # noqa: E402

N = 240
LOSS = gbloss.FocalLoss(2.0, 0.25)
XGB_PARAMS = {"max_depth": 2, "eta": 0.3, "nthread": 1}
LGB_PARAMS = {"num_leaves": 4, "learning_rate": 0.3, "min_data_in_leaf": 5, "verbosity": -1,
              "num_threads": 1, "deterministic": True}


def _binary(rng, n=N):
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=n) > 0.7).astype(np.float64)
    return X, y


def _xgb_margins(booster, X):
    return booster.predict(xgb.DMatrix(X), output_margin=True)


def _in_threads(*jobs):
    """Run the jobs at once, one thread each (released together); their results in order."""
    barrier = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def run(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


# -- label and weight edits ------------------------------------------------------------------


def test_xgboost_objective_and_metric_see_edits_between_trainings(rng):
    X, y = _binary(rng)
    dtrain, dvalid = xgb.DMatrix(X, label=y), xgb.DMatrix(X[:80], label=y[:80])
    obj, met = gbx.objective(LOSS), gbx.metric(LOSS, "loss")
    xgb.train(gbx.params(LOSS, dtrain, XGB_PARAMS), dtrain, 3, obj=obj, custom_metric=met,
              evals=[(dvalid, "valid")], verbose_eval=False)
    dtrain.set_label(1.0 - y)
    dtrain.set_weight(rng.uniform(0.2, 3.0, N))
    dvalid.set_label(1.0 - y[:80])
    params = gbx.params(LOSS, dtrain, XGB_PARAMS)
    models, histories = [], []
    for o, m in ((obj, met), (gbx.objective(LOSS), gbx.metric(LOSS, "loss"))):
        history = {}
        models.append(xgb.train(params, dtrain, 3, obj=o, custom_metric=m,
                                evals=[(dvalid, "valid")], evals_result=history,
                                verbose_eval=False))
        histories.append(history)
    np.testing.assert_array_equal(_xgb_margins(models[0], X), _xgb_margins(models[1], X))
    assert histories[0] == histories[1]


def test_lightgbm_objective_sees_dataset_edits_between_rounds(rng):
    X, y = _binary(rng)
    dataset = lgb.Dataset(X, label=y, params={"verbosity": -1}).construct()
    obj, raw = gbl.objective(LOSS), np.zeros(N)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the raw scores are not the start
        obj(raw, dataset)
        w = rng.uniform(0.2, 3.0, N)
        dataset.set_label(1.0 - y)
        dataset.set_weight(w)
        grad, hess = obj(raw + 0.25, dataset)
    expected = LOSS.gradient_hessian(1.0 - y, raw + 0.25, w)
    np.testing.assert_allclose(grad, expected[0], rtol=1e-6)
    np.testing.assert_allclose(hess, expected[1], rtol=1e-6)


class _FlipLabelsAt(xgb.callback.TrainingCallback):
    """Sets new labels and weights on the training DMatrix after round ``at``."""

    def __init__(self, dtrain, at, labels, weight):
        self.dtrain, self.at, self.labels, self.weight = dtrain, at, labels, weight

    def after_iteration(self, model, epoch, evals_log):
        if epoch == self.at:
            self.dtrain.set_label(self.labels)
            self.dtrain.set_weight(self.weight)
        return False


def test_xgboost_train_sees_labels_a_callback_sets_between_rounds(rng):
    X, y = _binary(rng)
    w = rng.uniform(0.2, 3.0, N)
    dtrain = xgb.DMatrix(X, label=y)
    flipped = gbx.train(XGB_PARAMS, dtrain, 6, loss=LOSS, metric=None,
                        callbacks=[_FlipLabelsAt(dtrain, 2, 1.0 - y, w)])
    # the same rounds by hand: 3 on the labels, then 3 more on the new labels and weights
    dtrain = xgb.DMatrix(X, label=y)
    params = gbx.params(LOSS, dtrain, XGB_PARAMS)
    obj = gbx.objective(LOSS)
    by_hand = xgb.Booster(params, [dtrain])
    for i in range(6):
        if i == 3:
            dtrain.set_label(1.0 - y)
            dtrain.set_weight(w)
        by_hand.update(dtrain, i, fobj=obj)
    np.testing.assert_array_equal(_xgb_margins(flipped, X), _xgb_margins(by_hand, X))
    unchanged = gbx.train(XGB_PARAMS, xgb.DMatrix(X, label=y), 6, loss=LOSS, metric=None)
    assert np.abs(_xgb_margins(flipped, X) - _xgb_margins(unchanged, X)).max() > 0.1


def test_lightgbm_estimator_refit_with_one_objective_sees_the_new_labels(rng):
    X, y = _binary(rng)
    settings_ = {"n_estimators": 3, "num_leaves": 4, "min_child_samples": 5, "verbosity": -1,
                 "n_jobs": 1, "deterministic": True}
    shared = gbl.objective(LOSS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # LightGBM's estimator starts at 0
        lgb.LGBMClassifier(objective=shared, **settings_).fit(X, y)
        refit = lgb.LGBMClassifier(objective=shared, **settings_).fit(X, 1.0 - y)
        fresh = lgb.LGBMClassifier(objective=gbl.objective(LOSS), **settings_).fit(X, 1.0 - y)
    np.testing.assert_array_equal(refit.predict(X, raw_score=True),
                                  fresh.predict(X, raw_score=True))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.integers(0, 2**32 - 1), st.booleans(), st.booleans()),
                      min_size=1, max_size=5))
def test_random_edits_give_the_gradients_of_a_fresh_objective(edits):
    """After any sequence of label/weight edits, both engines' objectives return what the loss
    computes on the current labels and weights."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    dmatrix = xgb.DMatrix(X, label=np.zeros(40))
    dataset = lgb.Dataset(X, label=np.zeros(40), params={"verbosity": -1}).construct()
    objectives = gbx.objective(LOSS), gbl.objective(LOSS)
    for seed, soft, weighted in edits:
        draw = np.random.default_rng(seed)
        y = draw.uniform(size=40) if soft else draw.integers(0, 2, 40).astype(np.float64)
        w = draw.uniform(0.0, 2.0, 40) if weighted else None
        raw = draw.normal(size=40)
        dmatrix.set_label(y)
        dataset.set_label(y)
        if w is not None:
            dmatrix.set_weight(w)
            dataset.set_weight(w)
        current_w = dmatrix.get_weight() if dmatrix.get_weight().size else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            got = (objectives[0](raw.astype(np.float32), dmatrix), objectives[1](raw, dataset))
        expected_x = LOSS.gradient_hessian(y, raw.astype(np.float32), current_w)
        expected_l = LOSS.gradient_hessian(y, raw, dataset.get_weight())
        for (g, h), (eg, eh) in zip(got, (expected_x, expected_l), strict=True):
            np.testing.assert_allclose(g, eg, rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(h, eh, rtol=1e-6, atol=1e-7)


# -- threads ---------------------------------------------------------------------------------


def _xgboost_fit(X, labels):
    """A training of ``labels[i]`` with objective ``obj``, as a function of (i, obj)."""
    sets = [xgb.DMatrix(X, label=y) for y in labels]
    params = [gbx.params(LOSS, d, XGB_PARAMS) for d in sets]
    return lambda i, obj: _xgb_margins(xgb.train(params[i], sets[i], 15, obj=obj), X)


def _lightgbm_fit(X, labels):
    def fit(i, obj):
        dataset = lgb.Dataset(X, label=labels[i], params={"verbosity": -1})
        params = {**gbl.params(LOSS, dataset, LGB_PARAMS), "objective": obj}
        return lgb.train(params, dataset, 15).predict(X, raw_score=True)
    return fit


@pytest.mark.parametrize(("fit", "make"), [(_xgboost_fit, gbx.objective),
                                           (_lightgbm_fit, gbl.objective)],
                         ids=["xgboost", "lightgbm"])
def test_one_objective_in_two_threads_gives_the_serial_models(fit, make, rng):
    X, y = _binary(rng)
    fit = fit(X, [y, 1.0 - y])
    serial = [fit(i, make(LOSS)) for i in range(2)]
    shared = make(LOSS)
    for _ in range(3):
        threaded = _in_threads(*(lambda i=i: fit(i, shared) for i in (0, 1, 0)))
        for got, i in zip(threaded, (0, 1, 0), strict=True):
            np.testing.assert_array_equal(got, serial[i])


@pytest.mark.parametrize("engine", ["xgboost", "lightgbm"])
def test_each_thread_gets_its_own_buffers(engine, rng):
    X, y = _binary(rng)
    if engine == "xgboost":
        obj, data, dtype = gbx.objective(LOSS), xgb.DMatrix(X, label=y), np.float32
    else:
        obj = gbl.objective(LOSS)
        data, dtype = lgb.Dataset(X, label=y, params={"verbosity": -1}).construct(), np.float64
    raws = [np.full(N, 0.5, dtype), np.full(N, -1.0, dtype)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        here = obj(raws[0], data)
        there = _in_threads(lambda: obj(raws[1], data))[0]
    assert not np.shares_memory(here[0], there[0])
    for (g, h), raw in ((here, raws[0]), (there, raws[1])):
        expected = LOSS.gradient_hessian(y, raw)
        np.testing.assert_allclose(g, expected[0], rtol=1e-6)
        np.testing.assert_allclose(h, expected[1], rtol=1e-6)


# -- model records ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def xgb_booster():
    X, y = _binary(np.random.default_rng(1))
    return gbx.train(XGB_PARAMS, xgb.DMatrix(X, label=y), 2, loss=LOSS, metric=None), X


@pytest.mark.parametrize(("attrs", "match"), [
    ({"gbloss_loss": "{not json"}, r"gbloss_\*.*\(gbloss_loss\) is corrupt: not JSON"),
    ({"gbloss_start": "[" * 100_000}, r"\(gbloss_start\) is corrupt: not JSON"),
    ({"gbloss_version": "2"}, r"has version 2, but this gbloss reads version 1.*newer gbloss"),
    ({"gbloss_version": "true"}, "has version True"),
    ({"gbloss_task": None}, r"lacks \['task'\]"),
    ({"gbloss_loss": json.dumps({"name": "NoSuchLoss", "params": {}})}, "holds no valid loss"),
    ({"gbloss_loss": json.dumps({"name": "FocalLoss", "params": {"gamma": -1}})},
     "holds no valid loss"),
    ({"gbloss_start": "[0.1, 0.2]"}, r"has start \[0.1, 0.2\], not 1 finite number"),
    ({"gbloss_start": '["a"]'}, "has start"),
    ({"gbloss_start": "[NaN]"}, "not 1 finite number"),
    ({"gbloss_task": "multilabel"}, "has num_class=1 for a multilabel task"),
    ({"gbloss_task": "multiclass", "gbloss_num_class": "3", "gbloss_start": "[0, 0, 0]"},
     "multiclass model with 3 output.*but the model has 1"),
    ({"gbloss_task": "multilabel", "gbloss_loss": json.dumps(
        {"name": "LogitAdjustedLoss", "params": {"tau": 1.0, "priors": [0.5, 0.5]}})},
     "has task 'multilabel', not one of LogitAdjustedLoss's"),
])
def test_corrupt_xgboost_records_are_refused_naming_the_record(xgb_booster, attrs, match):
    booster, X = xgb_booster
    corrupt = booster.copy()
    corrupt.set_attr(**attrs)
    for call in (lambda: gbx.predict_proba(corrupt, X), lambda: gbx.record(corrupt)):
        with pytest.raises(ValueError, match=r"the gbloss record in the booster's attributes"):
            call()
        with pytest.raises(ValueError, match=match):
            call()


@pytest.fixture(scope="module")
def lgb_model():
    X, y = _binary(np.random.default_rng(2))
    booster = gbl.train(LGB_PARAMS, lgb.Dataset(X, label=y), 2, loss=LOSS, metric=None)
    return booster.model_to_string(), X


def _with_record_value(model_text, value):
    begin = model_text.index("\n[valid: ") + len("\n[valid: ")
    return model_text[:begin] + value + model_text[model_text.index("]", begin):]


def _hex(text):
    return "gbloss-" + text.encode("utf-8").hex()


@pytest.mark.parametrize(("edit", "match"), [
    (lambda rec: "gbloss-zz", "is corrupt: not hex-encoded text"),
    (lambda rec: _hex("{"), "is corrupt: not JSON"),
    (lambda rec: _hex("[" * 100_000), "is corrupt: not JSON"),
    (lambda rec: _hex("[1, 2]"), "is not a JSON object but list"),
    (lambda rec: _hex(json.dumps({k: v for k, v in rec.items() if k != "start_in_trees"})),
     r"lacks \['start_in_trees'\]"),
    (lambda rec: _hex(json.dumps({**rec, "version": 7})), "has version 7.*newer gbloss"),
    (lambda rec: _hex(json.dumps({**rec, "start": [0.0, 1.0]})), "not 1 finite number"),
    (lambda rec: _hex(json.dumps({**rec, "start_in_trees": "yes"})), "not a bool"),
    (lambda rec: _hex(json.dumps({**rec, "task": "multiclass", "num_class": 3,
                                  "start": [0.0, 0.0, 0.0]})),
     "multiclass model with 3 output.*but the model has 1"),
])
def test_corrupt_lightgbm_records_are_refused_naming_the_record(lgb_model, edit, match):
    text, X = lgb_model
    rec = gbl.record(lgb.Booster(model_str=text))
    corrupt = lgb.Booster(model_str=_with_record_value(text, edit(rec)))
    for call in (lambda: gbl.predict_proba(corrupt, X), lambda: gbl.predict_raw(corrupt, X),
                 lambda: gbl.record(corrupt)):
        with pytest.raises(ValueError, match="the gbloss record in the model's 'valid' "
                                             "parameter"):
            call()
        with pytest.raises(ValueError, match=match):
            call()


# -- strict parameters -----------------------------------------------------------------------


@pytest.mark.parametrize("make", [gbx.objective, gbl.objective], ids=["xgboost", "lightgbm"])
@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_threads": 1.5}, "n_threads must be None or an integer >= 1, got 1.5"),
    ({"n_threads": True}, "n_threads must be None or an integer >= 1, got True"),
    ({"n_threads": 0}, "n_threads must be None or an integer >= 1, got 0"),
    ({"n_threads": "2"}, "n_threads must be None or an integer >= 1, got '2'"),
    ({"hessian_scale": "2"}, "hessian_scale must be a finite number > 0, got '2'"),
    ({"hessian_scale": True}, "hessian_scale must be a finite number > 0, got True"),
    ({"hessian_scale": float("inf")}, "hessian_scale must be a finite number > 0, got inf"),
])
def test_wrong_parameter_types_are_refused_by_name(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(LOSS, **kwargs)


def test_integer_like_parameters_are_accepted():
    obj = gbx.objective(LOSS, n_threads=np.int64(2), hessian_scale=np.float32(2.0))
    assert obj.n_threads == 2 and obj.hessian_scale == 2.0
    assert gbl.objective(LOSS, hessian_scale=3).hessian_scale == 3.0


def test_train_refuses_wrong_parameter_types(rng):
    X, y = _binary(rng)
    with pytest.raises(ValueError, match="n_threads must be"):
        gbx.train(XGB_PARAMS, xgb.DMatrix(X, label=y), 1, loss=LOSS, n_threads=1.5)
    with pytest.raises(ValueError, match="hessian_scale must be"):
        gbl.train(LGB_PARAMS, lgb.Dataset(X, label=y), 1, loss=LOSS, hessian_scale="2")


# -- degenerate weights ----------------------------------------------------------------------


def _loss_for(params):
    return gbloss.FocalLoss(2.0) if "num_class" in params else LOSS


def _train_xgboost(X, y, w, **params):
    return gbx.train({**XGB_PARAMS, **params}, xgb.DMatrix(X, label=y, weight=w), 2,
                     loss=_loss_for(params), metric=None)


def _train_lightgbm(X, y, w, **params):
    return gbl.train({**LGB_PARAMS, **params}, lgb.Dataset(X, label=y, weight=w), 2,
                     loss=_loss_for(params), metric=None)


@pytest.mark.parametrize("train", [_train_xgboost, _train_lightgbm], ids=["xgboost", "lightgbm"])
@pytest.mark.parametrize(("case", "match"), [
    ("all-zero-weights", "the training labels have zero total weight"),
    ("one-class", r"weight in only one label value \(0 or 1\)"),
    ("zero-weight-class", r"weight in only one label value \(0 or 1\)"),
    ("multiclass-one-weighted-class", "weight in only one class"),
    ("multiclass-all-zero", "the training labels have zero total weight"),
])
def test_degenerate_weights_get_one_clear_error(train, case, match, rng):
    X, y = _binary(rng)
    w, params = np.ones(N), {}
    if case == "all-zero-weights":
        w = np.zeros(N)
    elif case == "one-class":
        y = np.zeros(N)
    elif case == "zero-weight-class":
        w = np.where(y == 1, 0.0, 1.0)
    else:
        y, params = np.arange(N) % 3, {"num_class": 3}
        w = np.zeros(N) if case == "multiclass-all-zero" else np.where(y == 2, 1.0, 0.0)
    with pytest.raises(ValueError, match=match):
        train(X, y, w, **params)


@pytest.mark.parametrize("train", [_train_xgboost, _train_lightgbm], ids=["xgboost", "lightgbm"])
def test_a_multiclass_class_without_weight_is_legitimate(train, rng):
    X, _ = _binary(rng)
    y = np.arange(N) % 3
    booster = train(X, y, np.where(y == 2, 0.0, 1.0), num_class=3)
    module = gbx if train is _train_xgboost else gbl
    start = module.record(booster)["start"]
    assert start[2] < -20 < max(start[:2])  # the bound, not -inf


def test_plain_objective_applies_the_same_rule(rng):
    X, _ = _binary(rng)
    dtrain = xgb.DMatrix(X, label=np.zeros(N))
    with pytest.raises(ValueError, match="weight in only one label value"):
        xgb.train(XGB_PARAMS, dtrain, 1, obj=gbx.objective(LOSS))
    with pytest.raises(ValueError, match="weight in only one label value"):
        gbx.params(LOSS, dtrain)


def test_multilabel_column_without_positives_is_legitimate(rng):
    X, _ = _binary(rng)
    y = (X[:, :3] > [0.0, 0.5, 99.0]).astype(np.float64)  # no positives in the last column
    booster = gbx.train({**XGB_PARAMS, "multi_strategy": "multi_output_tree"},
                        xgb.DMatrix(X, label=y), 2, loss=LOSS, metric=None)
    start = gbx.record(booster)["start"]
    assert start[2] < -20 and np.all(np.isfinite(start))
    proba = gbx.predict_proba(booster, X)
    assert proba.shape == (N, 3) and proba[:, 2].max() < 1e-6
    with pytest.raises(ValueError, match="the training labels have zero total weight"):
        gbx.train({**XGB_PARAMS, "multi_strategy": "multi_output_tree"},
                  xgb.DMatrix(X, label=y, weight=np.zeros(N)), 2, loss=LOSS, metric=None)


# -- probabilities ---------------------------------------------------------------------------


def test_predict_proba_calibrates_by_default(xgb_booster, lgb_model):
    xgb_model, X = xgb_booster
    lgb_booster = lgb.Booster(model_str=lgb_model[0])
    for module, booster in ((gbx, xgb_model), (gbl, lgb_booster)):
        raw = module.predict_raw(booster, X)
        calibrated, plain = LOSS.predict_proba(raw), LOSS.predict_proba(raw, calibrate=False)
        assert np.abs(calibrated - plain).max() > 0.05  # focal: the link is biased
        np.testing.assert_allclose(module.predict_proba(booster, X), calibrated, rtol=1e-12)
        np.testing.assert_allclose(module.predict_proba(booster, X, calibrate=False), plain,
                                   rtol=1e-12)
        with pytest.raises(ValueError, match="calibrate must be True or False, got 'no'"):
            module.predict_proba(booster, X, calibrate="no")
