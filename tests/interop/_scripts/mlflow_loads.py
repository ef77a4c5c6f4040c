"""MLflow loads model directories modelyard saved; reports what it predicts and reads.

Usage: mlflow_loads.py SPEC.json, where SPEC is
{"models": {name: {"path": dir, "input": {"split": <DataFrame split dict>},
                   "sklearn": bool, "model_config": {...} | null}}}.
Prints {name: {...}} as JSON.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import Model

warnings.filterwarnings("ignore")


def _plain(value: object) -> object:
    if isinstance(value, (pd.DataFrame, pd.Series, np.ndarray)):
        return np.asarray(value).tolist()
    return value


spec = json.loads(Path(sys.argv[1]).read_text())
report: dict[str, dict] = {}
for name, entry in spec["models"].items():
    path = entry["path"]
    data = pd.DataFrame(**entry["input"]["split"])
    meta = Model.load(path)
    schema = meta.get_input_schema()
    pyfunc_model = mlflow.pyfunc.load_model(path)
    out: dict = {
        "pyfunc": _plain(pyfunc_model.predict(data)),
        "input_names": schema.input_names() if schema is not None else None,
        "input_types": [str(t) for t in schema.input_types()] if schema is not None else None,
        "model_uuid": meta.model_uuid,
        "flavors": sorted(meta.flavors),
        "loader_module": meta.flavors["python_function"]["loader_module"],
        "example": _plain(pyfunc_model.input_example),
        "example_columns": list(getattr(pyfunc_model.input_example, "columns", [])),
    }
    if entry.get("model_config"):
        configured = mlflow.pyfunc.load_model(path, model_config=entry["model_config"])
        out["configured"] = _plain(configured.predict(data))
    if entry.get("sklearn"):
        native = mlflow.sklearn.load_model(path)
        out["native_type"] = type(native).__name__
        out["proba"] = native.predict_proba(data).tolist()
    report[name] = out
print(json.dumps(report))
