"""MLflow saves xgboost and lightgbm models the ways users do; writes MLflow's own predictions.

Usage: trees_mlflow_saves.py OUT. Prints {"models": {name: path}, "predictions": {...}}.
Iris for classifiers, six columns of breast_cancer for binary Boosters and
regressors: both ship with scikit-learn, so the test process rebuilds the same data.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import mlflow.lightgbm
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

warnings.filterwarnings("ignore")
OUT = Path(sys.argv[1])

iris_X, iris_y = load_iris(return_X_y=True, as_frame=True)
cancer_X, cancer_y = load_breast_cancer(return_X_y=True, as_frame=True)
cancer_X = cancer_X.iloc[:, :6]

xgb_clf = xgb.XGBClassifier(n_estimators=4, max_depth=2, random_state=0).fit(iris_X, iris_y)
xgb_reg = xgb.XGBRegressor(n_estimators=5, max_depth=3).fit(cancer_X, cancer_y.astype(float))
xgb_booster = xgb.train(
    {"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(cancer_X, label=cancer_y), 4
)
pipeline = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3, max_depth=2)).fit(
    iris_X, iris_y
)
lgb_clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(iris_X, iris_y)
lgb_reg = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(cancer_X, cancer_y.astype(float))
lgb_booster = lgb.train(
    {"objective": "binary", "num_leaves": 4, "verbose": -1},
    lgb.Dataset(cancer_X, label=cancer_y),
    5,
)

XGB_REQS = mlflow.xgboost.get_default_pip_requirements()
LGB_REQS = mlflow.lightgbm.get_default_pip_requirements()
XGB_SKOPS_TYPES = ["xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"]

# name -> (saver, model, data, saver kwargs). One model (xgb-clf-ubj) lets MLflow
# infer its requirements (a ~15 s subprocess): with xgboost-cpu installed that
# pins both xgboost-cpu and xgboost, which must pass modelyard's strict check.
MODELS: dict[str, tuple[Any, Any, Any, dict[str, Any]]] = {
    "xgb-clf-ubj": (mlflow.xgboost.save_model, xgb_clf, iris_X, {"model_format": "ubj"}),
    "xgb-clf-json": (
        mlflow.xgboost.save_model,
        xgb_clf,
        iris_X,
        {"model_format": "json", "pip_requirements": XGB_REQS},
    ),
    # MLflow's default before 3.x: most registries hold model.xgb files.
    "xgb-clf-xgb": (
        mlflow.xgboost.save_model,
        xgb_clf,
        iris_X,
        {"model_format": "xgb", "pip_requirements": XGB_REQS},
    ),
    "xgb-reg": (mlflow.xgboost.save_model, xgb_reg, cancer_X, {"pip_requirements": XGB_REQS}),
    "xgb-booster": (
        mlflow.xgboost.save_model,
        xgb_booster,
        cancer_X,
        {"pip_requirements": XGB_REQS},
    ),
    "xgb-booster-xgb": (
        mlflow.xgboost.save_model,
        xgb_booster,
        cancer_X,
        {"model_format": "xgb", "pip_requirements": XGB_REQS},
    ),
    # A pipeline ending in an XGBClassifier is scikit-learn's flavor in MLflow.
    "sklearn-pipeline-xgb": (
        mlflow.sklearn.save_model,
        pipeline,
        iris_X,
        {
            "serialization_format": "cloudpickle",
            "pip_requirements": [*XGB_REQS, "scikit-learn", "cloudpickle"],
        },
    ),
    # MLflow 3.x's default for sklearn is skops, which refuses XGBoost's classes
    # unless the saver lists them.
    "sklearn-pipeline-xgb-skops": (
        mlflow.sklearn.save_model,
        pipeline,
        iris_X,
        {
            "serialization_format": "skops",
            "skops_trusted_types": XGB_SKOPS_TYPES,
            "pip_requirements": [*XGB_REQS, "scikit-learn", "skops"],
        },
    ),
    "lgb-booster": (
        mlflow.lightgbm.save_model,
        lgb_booster,
        cancer_X,
        {"pip_requirements": LGB_REQS},
    ),
    # MLflow's default outside Databricks: skops.
    "lgb-clf-skops": (mlflow.lightgbm.save_model, lgb_clf, iris_X, {"pip_requirements": LGB_REQS}),
    "lgb-clf-cloudpickle": (
        mlflow.lightgbm.save_model,
        lgb_clf,
        iris_X,
        {"serialization_format": "cloudpickle", "pip_requirements": LGB_REQS},
    ),
    "lgb-reg-pickle": (
        mlflow.lightgbm.save_model,
        lgb_reg,
        cancer_X,
        {"serialization_format": "pickle", "pip_requirements": LGB_REQS},
    ),
}


def _native_predictions(native: Any, X: Any) -> dict[str, Any]:
    if isinstance(native, xgb.Booster):
        return {"native": native.predict(xgb.DMatrix(X)).tolist()}
    out = {"native": np.asarray(native.predict(X)).tolist()}
    if hasattr(native, "predict_proba"):
        out["proba"] = native.predict_proba(X).tolist()
    return out


models: dict[str, str] = {}
predictions: dict[str, Any] = {}
for name, (save, model, X, kwargs) in MODELS.items():
    path = OUT / name
    example = X.head(3)
    save(model, str(path), input_example=example, **kwargs)
    models[name] = str(path)
    pyfunc = mlflow.pyfunc.load_model(str(path))
    flavor = {
        mlflow.xgboost.save_model: mlflow.xgboost,
        mlflow.lightgbm.save_model: mlflow.lightgbm,
        mlflow.sklearn.save_model: mlflow.sklearn,
    }[save]
    native = flavor.load_model(str(path))
    predictions[name] = {
        "pyfunc": np.asarray(pyfunc.predict(X)).tolist(),
        "native_type": f"{type(native).__module__}.{type(native).__qualname__}",
        **_native_predictions(native, X),
    }

print(json.dumps({"models": models, "predictions": predictions, "mlflow": mlflow.__version__}))
