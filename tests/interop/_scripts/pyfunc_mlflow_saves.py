"""MLflow saves custom Python models defined in this script's __main__, as users write them.

Usage: pyfunc_mlflow_saves.py OUT. Prints {"models": {name: path}, "predictions": ...} as JSON.
"""

# No "from __future__ import annotations": type hints stay real objects, as in
# most user scripts, and are pickled with MLflow's predict wrapper.
import json
import os
import sys
import warnings
from pathlib import Path

import cloudpickle
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.types import ColSpec, Schema

warnings.filterwarnings("ignore")
OUT = Path(sys.argv[1])
OUT.mkdir(parents=True)
LOOKUP = OUT / "lookup.json"
LOOKUP.write_text(json.dumps({"a": 100.0, "b": 200.0, "c": 300.0}))

DATA = pd.DataFrame({"x": [1.0, 2.5, -3.0, 4.0], "key": ["a", "b", "c", "a"]})
WORDS = ["alpha", "beta", "gamma"]


class Lookup(mlflow.pyfunc.PythonModel):
    """Reads an artifact and its config in load_context; takes params."""

    def load_context(self, context):
        with open(context.artifacts["lookup"]) as fh:
            self.table = json.load(fh)
        self.scale = context.model_config["scale"]

    def predict(self, context, model_input, params=None):
        shift = (params or {}).get("shift", 0.0)
        return model_input["x"] * self.scale + model_input["key"].map(self.table) + shift


class NoContext(mlflow.pyfunc.PythonModel):
    def predict(self, model_input, params=None):
        return model_input["x"] * 3 - 1


class Hinted(mlflow.pyfunc.PythonModel):
    """Type hints make MLflow wrap predict in its validator (pickled with the class)."""

    def load_context(self, context):
        self.suffix = context.model_config["suffix"]

    def predict(self, context, model_input: list[str], params=None) -> list[str]:
        return [word.upper() + self.suffix for word in model_input]


class HintedNoContext(mlflow.pyfunc.PythonModel):
    def predict(self, model_input: list[str], params=None) -> list[str]:
        return [word[::-1] for word in model_input]


class HoldsSchema(mlflow.pyfunc.PythonModel):
    """Keeps an MLflow object: cannot work without MLflow."""

    def __init__(self):
        self.schema = Schema([ColSpec("double", "x")])

    def predict(self, model_input, params=None):
        return model_input[self.schema.input_names()]


class UsesMlflow(mlflow.pyfunc.PythonModel):
    def predict(self, model_input, params=None):
        return [mlflow.__version__] * len(model_input)


def add_one(model_input):
    return model_input["x"] + 1


models: dict[str, str] = {}


# MLflow's requirement inference (a subprocess loading the model, several
# seconds each) runs for "lookup" only; the others get what it would pin.
PINNED = [f"cloudpickle=={cloudpickle.__version__}", f"pandas=={pd.__version__}"]


def save(name, **kwargs):
    path = OUT / name
    if name != "lookup":
        kwargs.setdefault("pip_requirements", PINNED)
    mlflow.pyfunc.save_model(path, **kwargs)
    models[name] = str(path)


save(
    "lookup",
    python_model=Lookup(),
    artifacts={"lookup": str(LOOKUP)},
    model_config={"scale": 2.0},
    input_example=(DATA.head(2), {"shift": 0.0}),
)
save("no-context", python_model=NoContext(), input_example=DATA.head(2))
save("hinted", python_model=Hinted(), model_config={"suffix": "!"}, input_example=WORDS[:2])
save("hinted-no-context", python_model=HintedNoContext(), input_example=WORDS[:2])
os.environ["MLFLOW_LOG_MODEL_COMPRESSION"] = "lzma"
save("lzma", python_model=NoContext(), input_example=DATA.head(2))
del os.environ["MLFLOW_LOG_MODEL_COMPRESSION"]
save("function", python_model=add_one, input_example=DATA.head(2))
save(
    "function-signature",
    python_model=add_one,
    signature=infer_signature(DATA, add_one(DATA)),
    pip_requirements=["pandas"],  # MLflow's rule for functions: an example or requirements
)
save("holds-schema", python_model=HoldsSchema(), input_example=DATA.head(2))
save("uses-mlflow", python_model=UsesMlflow(), input_example=DATA.head(2))


def plain(value):
    return np.asarray(value).tolist() if hasattr(value, "shape") else value


predictions = {}
for name, path in models.items():
    data = WORDS if name.startswith("hinted") else DATA
    model = mlflow.pyfunc.load_model(path)
    predictions[name] = {"plain": plain(model.predict(data))}
predictions["lookup"]["params"] = plain(
    mlflow.pyfunc.load_model(models["lookup"]).predict(DATA, params={"shift": 0.5})
)
predictions["lookup"]["configured"] = plain(
    mlflow.pyfunc.load_model(models["lookup"], model_config={"scale": -1.0}).predict(DATA)
)
predictions["hinted"]["configured"] = plain(
    mlflow.pyfunc.load_model(models["hinted"], model_config={"suffix": "?"}).predict(WORDS)
)

print(
    json.dumps(
        {
            "models": models,
            "predictions": predictions,
            "data": DATA.to_dict(orient="list"),
            "words": WORDS,
            "lookup": str(LOOKUP),
        }
    )
)
