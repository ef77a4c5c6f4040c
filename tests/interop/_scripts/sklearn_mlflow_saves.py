"""MLflow saves scikit-learn models the ways users do; writes MLflow's own predictions.

Usage: sklearn_mlflow_saves.py OUT. Prints {"models": {name: path}, ...} as JSON.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import mlflow
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

warnings.filterwarnings("ignore")
OUT = Path(sys.argv[1])
TREE = "sklearn.tree._tree.Tree"

# A function of the user's own, shipped with the model through code_paths.
src = OUT / "src"
src.mkdir(parents=True)
(src / "user_funcs.py").write_text("def double(x):\n    return x * 2\n")
sys.path.insert(0, str(src))
import user_funcs  # noqa: E402

X, y = load_iris(return_X_y=True, as_frame=True)
example = X.head(3)
estimators = {
    "lr": LogisticRegression(max_iter=1000).fit(X, y),
    "rf": make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)
    ).fit(X, y),
}
models: dict[str, str] = {}
for name, est in estimators.items():
    signature = infer_signature(X, est.predict(X))
    for fmt in ("cloudpickle", "pickle", "skops"):
        path = OUT / f"{name}-{fmt}"
        extra: dict = {"skops_trusted_types": [TREE]} if fmt == "skops" and name == "rf" else {}
        if (name, fmt) != ("lr", "skops"):
            # MLflow's requirement inference (a subprocess loading the model, ~15 s)
            # runs for MLflow's default format and the logged model; the others
            # get the list it falls back to.
            extra["pip_requirements"] = mlflow.sklearn.get_default_pip_requirements(
                include_cloudpickle=fmt == "cloudpickle", include_skops=fmt == "skops"
            )
        mlflow.sklearn.save_model(
            est,
            path,
            serialization_format=fmt,
            signature=signature,
            input_example=example,
            **extra,
        )
        models[f"{name}-{fmt}"] = str(path)

# skops with a user function: MLflow stores the list the writer chose.
user = make_pipeline(FunctionTransformer(user_funcs.double), LogisticRegression(max_iter=1000)).fit(
    X, y
)
mlflow.sklearn.save_model(
    user,
    OUT / "user-skops",
    serialization_format="skops",
    skops_trusted_types=["user_funcs.double"],
    code_paths=[str(src / "user_funcs.py")],
    input_example=example,
    pip_requirements=mlflow.sklearn.get_default_pip_requirements(include_skops=True),
)
models["user-skops"] = str(OUT / "user-skops")

# Logged to a SQLite tracking store, then registered and downloaded by models:/ URI.
mlflow.set_tracking_uri(f"sqlite:///{OUT / 'mlflow.db'}")
experiment = mlflow.create_experiment("interop", artifact_location=(OUT / "artifacts").as_uri())
with mlflow.start_run(experiment_id=experiment):
    info = mlflow.sklearn.log_model(
        estimators["lr"],
        name="model",
        input_example=example,
        serialization_format="cloudpickle",
    )
logged = mlflow.artifacts.download_artifacts(info.model_uri)  # the store's own directory
models["logged"] = logged
version = mlflow.register_model(info.model_uri, "iris")
downloaded = OUT / "downloaded"
downloaded.mkdir()
mlflow.artifacts.download_artifacts(f"models:/iris/{version.version}", dst_path=str(downloaded))

predictions: dict[str, dict[str, list]] = {}
for name, path in models.items():
    pyfunc_model = mlflow.pyfunc.load_model(path)
    native = mlflow.sklearn.load_model(path)
    predictions[name] = {
        "pyfunc": pyfunc_model.predict(X).tolist(),
        "proba": native.predict_proba(X).tolist(),
    }

print(
    json.dumps(
        {
            "models": models,
            "downloaded": str(downloaded),
            "model_uri": info.model_uri,
            "predictions": predictions,
            "mlflow_version": mlflow.__version__,
        }
    )
)
