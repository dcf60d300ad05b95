"""Write the saved-model fixtures of tests/test_saved_models.py: tiny models trained by gbloss
0.1.0 (the release before the adapter core), their data and their plain-link probabilities.

Run from the repository root, with the release's code: ``python tests/data/make_fixtures.py``.
The files are the compatibility contract: later versions must load them and predict the same
probabilities. Do not regenerate them with a newer gbloss.
"""

import pathlib

import lightgbm as lgb
import numpy as np
import xgboost as xgb

import gbloss
import gbloss.lightgbm as gbl
import gbloss.xgboost as gbx

HERE = pathlib.Path(__file__).parent
N, K = 120, 3
XGB_PARAMS = {"max_depth": 2, "eta": 0.3, "nthread": 1, "seed": 0}
LGB_PARAMS = {"num_leaves": 4, "learning_rate": 0.3, "min_data_in_leaf": 5, "verbosity": -1,
              "num_threads": 1, "seed": 0, "deterministic": True}
ROUNDS = 4


def data(rng):
    X = np.round(rng.normal(size=(N, 4)), 3)
    z = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=N)
    y_binary = (z > 0.8).astype(np.float64)
    y_multiclass = np.digitize(z, [-0.3, 1.0]).astype(np.float64)
    y_multilabel = (X[:, :K] + rng.normal(scale=0.8, size=(N, K)) > [1.0, 0.5, 0.0]).astype(
        np.float64)
    return X, y_binary, y_multiclass, y_multilabel


def xgboost_models(X, y_binary, y_multiclass, y_multilabel):
    cases = {
        "xgb_binary_focal": (gbloss.FocalLoss(2.0, 0.25), y_binary, {}),
        "xgb_multiclass_la": (gbloss.LogitAdjustedLoss(1.0), y_multiclass, {"num_class": K}),
        "xgb_multilabel_asl": (gbloss.AsymmetricLoss(0.0, 4.0, 0.05), y_multilabel,
                               {"multi_strategy": "multi_output_tree"}),
    }
    proba = {}
    for name, (loss, y, extra) in cases.items():
        booster = gbx.train({**XGB_PARAMS, **extra}, xgb.DMatrix(X, label=y), ROUNDS, loss=loss,
                            metric=None)
        booster.save_model(HERE / f"{name}.json")
        booster.save_model(HERE / f"{name}.ubj")
        proba[name] = gbx.predict_proba(booster, X)
    return proba


def lightgbm_models(X, y_binary, y_multiclass):
    proba = {}
    cases = {
        "lgb_binary_focal": (gbloss.FocalLoss(2.0, 0.25), y_binary, {}),
        "lgb_multiclass_ce": (gbloss.CrossEntropyLoss(), y_multiclass, {"num_class": K}),
    }
    for name, (loss, y, extra) in cases.items():
        booster = gbl.train({**LGB_PARAMS, **extra}, lgb.Dataset(X, label=y), ROUNDS, loss=loss,
                            metric=None)
        booster.save_model(HERE / f"{name}.txt")
        proba[name] = gbl.predict_proba(booster, X)
    # plain lightgbm.train with gbl.params: the start stays in the record
    loss = gbloss.FocalLoss(2.0, 0.25)
    train_set = lgb.Dataset(X, label=y_binary)
    booster = lgb.train(gbl.params(loss, train_set, LGB_PARAMS), train_set, ROUNDS)
    booster.save_model(HERE / "lgb_binary_focal_params.txt")
    proba["lgb_binary_focal_params"] = gbl.predict_proba(booster, X)
    return proba


def main():
    X, y_binary, y_multiclass, y_multilabel = data(np.random.default_rng(20240611))
    proba = xgboost_models(X, y_binary, y_multiclass, y_multilabel)
    proba.update(lightgbm_models(X, y_binary, y_multiclass))
    np.savez_compressed(HERE / "saved_models.npz", X=X, **proba)


if __name__ == "__main__":
    main()
