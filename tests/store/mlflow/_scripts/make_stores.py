"""Real MLflow builds registries the way its users do, for the import and read-only tests.

Usage: make_stores.py OUTSIDE_DIR ARTIFACTS_DEST URI [URI ...]. For each tracking URI
(``sqlite:///…``, ``file:/…/mlruns``, ``http://…`` of a running ``mlflow server``
whose ``--artifacts-destination`` is ARTIFACTS_DEST) it logs runs with params, stepped
metrics and tags; logs and registers three sklearn versions of ``iris``; registers ``iris``
version 3's logged model again as ``twin`` version 1 (the same files); sets aliases
(one moved), descriptions and tags. Two bad entries follow: ``broken``, whose files
are deleted after registration, and (not through a server, which refuses it)
``outside``, whose source is a model directory in OUTSIDE_DIR, outside the store.
Prints ``{uri: {"predictions": {"iris/1": [...]}, "runs": {...}}}`` as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from sklearn.datasets import load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

outside_dir, artifacts_dest, uris = sys.argv[1], sys.argv[2], sys.argv[3:]
data = load_iris(as_frame=True)
X, y = data.data, data.target
X.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in X.columns]
results: dict[str, object] = {}


def build(uri: str) -> dict[str, object]:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    mlflow.set_experiment("iris-training")
    predictions: dict[str, list[float]] = {}
    runs: dict[str, str] = {}

    def logged(model: object, C: float, name: str) -> object:
        with mlflow.start_run(run_name=f"{name}-C{C}") as run:
            mlflow.log_params({"C": C, "solver": "lbfgs"})
            for step in range(3):
                mlflow.log_metric("loss", 1.0 / (step + 1 + C), step=step)
            mlflow.log_metric("accuracy", 0.9 + C / 100)
            mlflow.set_tags({"team": "vision", "purpose": f"{name} C={C}"})
            info = mlflow.sklearn.log_model(
                model, name="model", registered_model_name=name, input_example=X.head(3)
            )
        key = f"{name}/{info.registered_model_version}"
        runs[key] = run.info.run_id
        predictions[key] = np.asarray(model.predict(X)).tolist()  # type: ignore[attr-defined]
        return info

    for C in (0.1, 1.0):
        logged(LogisticRegression(C=C, max_iter=300).fit(X, y), C, "iris")
    third = logged(LogisticRegression(C=5.0, max_iter=300).fit(X, y), 5.0, "iris")
    # twin: the very files of iris/3, registered under another name (stored once)
    client.create_registered_model("twin")
    client.create_model_version(
        "twin", source=third.model_uri, run_id=runs["iris/3"], model_id=third.model_id
    )
    runs["twin/1"], predictions["twin/1"] = runs["iris/3"], predictions["iris/3"]
    client.update_registered_model("iris", description="iris classifiers")
    client.set_registered_model_tag("iris", "owner", "ana")
    client.update_model_version("iris", "2", description="the good one")
    client.set_model_version_tag("iris", "2", "validated", "yes")
    client.set_registered_model_alias("iris", "champion", "1")
    client.set_registered_model_alias("iris", "champion", "2")  # moved: the import keeps "2"
    client.set_registered_model_alias("iris", "challenger", "3")
    client.set_registered_model_alias("twin", "champion", "1")

    # broken: registered, then its files are gone
    logged(LogisticRegression(C=0.5, max_iter=300).fit(X, y), 0.5, "broken")
    where = client.get_model_version_download_uri("broken", "1")
    if where.startswith("mlflow-artifacts:"):
        gone = Path(artifacts_dest) / where.split(":", 1)[1].lstrip("/")
    else:
        gone = Path(where.removeprefix("file://"))
    shutil.rmtree(gone)
    if not uri.startswith("http"):
        # outside: a real model directory, registered by path, outside the store
        model_dir = Path(outside_dir) / "model"
        if not model_dir.exists():
            mlflow.sklearn.save_model(LogisticRegression().fit(X, y), str(model_dir))
            (model_dir / "secret.txt").write_text(f"not for the yard {os.getpid()}")
        client.create_registered_model("outside")
        client.create_model_version("outside", source=str(model_dir))
    return {"predictions": predictions, "runs": runs}


for uri in uris:
    results[uri] = build(uri)
print(json.dumps(results))
