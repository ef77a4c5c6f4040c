"""MLflow loads xgboost and lightgbm models modelyard saved; prints what it predicts.

Usage: trees_mlflow_loads.py MODELS_JSON, a {name: {"path": ..., "data": "iris"|"cancer"}}
file. Each model is loaded with ``mlflow.pyfunc.load_model`` and with its flavor's
``load_model``; prints {name: {"pyfunc": [...], "native": [...], "native_type": ...}}.
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import mlflow.lightgbm
import mlflow.pyfunc
import mlflow.sklearn
import mlflow.xgboost
import numpy as np
import xgboost as xgb
import yaml
from sklearn.datasets import load_breast_cancer, load_iris

warnings.filterwarnings("ignore")
with open(sys.argv[1]) as fh:
    MODELS = json.load(fh)

iris_X, _ = load_iris(return_X_y=True, as_frame=True)
cancer_X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
DATA = {"iris": iris_X, "cancer": cancer_X.iloc[:, :6]}
FLAVORS = {"xgboost": mlflow.xgboost, "lightgbm": mlflow.lightgbm, "sklearn": mlflow.sklearn}


def _native(native: Any, X: Any) -> dict[str, Any]:
    if isinstance(native, xgb.Booster):
        return {"native": native.predict(xgb.DMatrix(X)).tolist()}
    out = {"native": np.asarray(native.predict(X)).tolist()}
    if hasattr(native, "predict_proba"):
        out["proba"] = native.predict_proba(X).tolist()
    return out


results: dict[str, Any] = {}
for name, spec in MODELS.items():
    X = DATA[spec["data"]]
    with open(f"{spec['path']}/MLmodel") as fh:
        flavor = next(f for f in yaml.safe_load(fh)["flavors"] if f in FLAVORS)
    pyfunc = mlflow.pyfunc.load_model(spec["path"])
    native = FLAVORS[flavor].load_model(spec["path"])
    results[name] = {
        "pyfunc": np.asarray(pyfunc.predict(X)).tolist(),
        "native_type": f"{type(native).__module__}.{type(native).__qualname__}",
        **_native(native, X),
    }

print(json.dumps(results))
