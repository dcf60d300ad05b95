"""Models saved by gbloss 0.1.0 (tests/data, written by tests/data/make_fixtures.py) still load
and predict the probabilities they predicted then (0.1.0's predict_proba was the plain link,
``calibrate=False`` now)."""

import pathlib

import numpy as np
import pytest

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def stored():
    with np.load(DATA / "saved_models.npz") as npz:
        return dict(npz)


@pytest.mark.parametrize("suffix", ["json", "ubj"])
@pytest.mark.parametrize("name", ["xgb_binary_focal", "xgb_multiclass_la", "xgb_multilabel_asl"])
def test_xgboost_models_of_the_release_predict_the_same(stored, name, suffix):
    xgb = pytest.importorskip("xgboost")
    import gbloss.xgboost as gbx

    booster = xgb.Booster(model_file=DATA / f"{name}.{suffix}")
    proba = gbx.predict_proba(booster, stored["X"], calibrate=False)
    np.testing.assert_allclose(proba, stored[name], rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", ["lgb_binary_focal", "lgb_multiclass_ce",
                                  "lgb_binary_focal_params"])
def test_lightgbm_models_of_the_release_predict_the_same(stored, name):
    lgb = pytest.importorskip("lightgbm")
    import gbloss.lightgbm as gbl

    booster = lgb.Booster(model_file=DATA / f"{name}.txt")
    proba = gbl.predict_proba(booster, stored["X"], calibrate=False)
    np.testing.assert_allclose(proba, stored[name], rtol=1e-12, atol=0)
