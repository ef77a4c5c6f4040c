"""Custom Python models move between MLflow 3.17.2 and modelyard in both directions.

The models MLflow saves are classes and functions defined in the MLflow
script's ``__main__`` (``_scripts/pyfunc_mlflow_saves.py``), pickled by value
with cloudpickle and referring to MLflow's base class and to the type-hint
wrapper MLflow puts around ``predict``. They load here, where MLflow is not
installed (the interop conftest asserts it), and predict what MLflow predicts.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard
from modelyard.errors import ConfigError, CorruptModelFile
from modelyard.flavors.function import FunctionModel
from modelyard.format.mlmodel import MLmodel
from tests.interop import _scripts

pytestmark = pytest.mark.interop

LOADABLE = [
    "lookup",
    "no-context",
    "hinted",
    "hinted-no-context",
    "lzma",
    "function",
    "function-signature",
]


def _plain(value: Any) -> Any:
    return np.asarray(value).tolist() if hasattr(value, "shape") else value


# -- MLflow saves, modelyard loads ---------------------------------------------------


@pytest.fixture(scope="module")
def saved(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The models MLflow saved, MLflow's predictions, and the inputs it used."""
    out = tmp_path_factory.mktemp("mlflow-pyfunc")
    report = _scripts.run(mlflow_python, "pyfunc_mlflow_saves.py", str(out / "m"), cwd=out)
    report["frame"] = pd.DataFrame(report["data"])
    return report


# The models in saved["models"] are MLflow's custom Python models: code that MLflow
# signs nowhere, so each load says it trusts them (trust="all"); ours, further down,
# are signed by the suite's own key and load without it.


def _input(saved: Any, name: str) -> Any:
    return list(saved["words"]) if name.startswith("hinted") else saved["frame"]


@pytest.mark.parametrize("name", LOADABLE)
def test_custom_model_predicts_the_same_here(name: str, saved: Any) -> None:
    model = modelyard.load_model(saved["models"][name], trust="all")
    assert model.flavor == "python_model"
    assert isinstance(model.unwrap(), modelyard.PythonModel)
    assert _plain(model.predict(_input(saved, name))) == saved["predictions"][name]["plain"]
    assert "mlflow" not in sys.modules
    assert importlib.util.find_spec("mlflow") is None


def test_params_and_config_overrides_match_mlflow(saved: Any) -> None:
    path = saved["models"]["lookup"]
    theirs = saved["predictions"]["lookup"]
    model = modelyard.load_model(path, trust="all")
    assert model.model_config == {"scale": 2.0}
    assert _plain(model.predict(saved["frame"], params={"shift": 0.5})) == theirs["params"]
    configured = modelyard.load_model(path, model_config={"scale": -1.0}, trust="all")
    assert configured.model_config == {"scale": -1.0}
    assert _plain(configured.predict(saved["frame"])) == theirs["configured"]
    hinted = modelyard.load_model(
        saved["models"]["hinted"], model_config={"suffix": "?"}, trust="all"
    )
    assert hinted.predict(saved["words"]) == saved["predictions"]["hinted"]["configured"]


def test_artifacts_are_read_from_inside_the_model(saved: Any) -> None:
    path = Path(saved["models"]["lookup"])
    conf = MLmodel.read(path).pyfunc["artifacts"]
    assert conf["lookup"]["path"] == "artifacts/lookup.json"
    native = modelyard.load_model(path, trust="all").unwrap()
    assert native.table == json.loads(Path(saved["lookup"]).read_text())
    Path(saved["lookup"]).unlink()  # the original is not what the model reads
    assert modelyard.load_model(path, trust="all").unwrap().table == native.table


def test_unknown_config_key_is_an_error_not_ignored(saved: Any) -> None:
    # MLflow warns and drops the key; a typo must not silently change nothing.
    with pytest.raises(ConfigError, match="scael") as info:
        modelyard.load_model(saved["models"]["lookup"], model_config={"scael": 3.0}, trust="all")
    assert info.value.declared == ("scale",)


def test_type_hinted_predict_is_called_without_mlflows_wrapper(saved: Any) -> None:
    for name in ("hinted", "hinted-no-context"):
        native = modelyard.load_model(saved["models"][name], trust="all").unwrap()
        wrapper = type(native).predict
        # cloudpickle kept MLflow's wrapper on the class; modelyard calls what it wraps.
        assert getattr(wrapper, "_is_pyfunc", False)
        assert wrapper.__wrapped__.__annotations__["model_input"] == list[str]


def test_compressed_pickle(saved: Any) -> None:
    path = Path(saved["models"]["lzma"])
    conf = MLmodel.read(path).pyfunc
    assert conf["python_model_compression"] == "lzma"
    assert (path / conf["python_model"]).name == "python_model.pkl.xz"
    assert not (path / "python_model.pkl").exists()


@pytest.mark.parametrize("name", ["function", "function-signature"])
def test_function_model_gives_back_the_function(name: str, saved: Any) -> None:
    native = modelyard.load_model(saved["models"][name], trust="all").unwrap()
    assert isinstance(native, FunctionModel)
    assert native.func.__name__ == "add_one"
    assert not getattr(native.func, "_is_pyfunc", False)


def test_model_holding_an_mlflow_object_names_it(saved: Any) -> None:
    with pytest.raises(CorruptModelFile, match=r"mlflow\.types\.schema\.Schema") as info:
        modelyard.load_model(saved["models"]["holds-schema"], trust="all")
    assert "needs MLflow" in str(info.value)


def test_model_importing_mlflow_names_it(saved: Any) -> None:
    with pytest.raises(CorruptModelFile, match=r"imports the MLflow module 'mlflow'"):
        modelyard.load_model(saved["models"]["uses-mlflow"], trust="all")


def test_examples_and_environment_read_back(saved: Any) -> None:
    lookup = modelyard.load_model(saved["models"]["lookup"], env="strict", trust="all")
    pd.testing.assert_frame_equal(lookup.input_example, saved["frame"].head(2))
    assert lookup.environment.ok, lookup.environment.summary()
    hinted = modelyard.load_model(saved["models"]["hinted"], trust="all")
    assert hinted.input_example == saved["words"][:2]
    assert hinted.mlmodel.data["is_signature_from_type_hint"] is True


def test_mlflow_saved_digest_is_stable(saved: Any) -> None:
    path = saved["models"]["lookup"]
    assert (
        modelyard.load_model(path, trust="all").digest
        == modelyard.load_model(path, trust="all").digest
    )


# -- modelyard saves, MLflow loads ---------------------------------------------------


def _custom_models(lookup_file: Path) -> dict[str, tuple[Any, dict[str, Any]]]:
    """A PythonModel subclass and a plain function, defined here so cloudpickle stores them."""

    class Lookup(modelyard.PythonModel):
        def load_context(self, context: Any) -> None:
            self.table = json.loads(Path(context.artifacts["lookup"]).read_text())
            self.scale = context.model_config["scale"]

        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return model_input["x"] * self.scale + model_input["key"].map(self.table)

    def add_one(model_input: Any) -> Any:
        return model_input["x"] + 1

    return {
        "lookup": (
            Lookup(),
            {"artifacts": {"lookup": str(lookup_file)}, "model_config": {"scale": 2.0}},
        ),
        "function": (add_one, {}),
    }


@pytest.fixture(scope="module")
def ours(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("ours-pyfunc")
    lookup = out / "lookup.json"
    lookup.write_text(json.dumps({"a": 1.0, "b": -2.0}))
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "key": ["a", "b", "a"]})
    models = {}
    for name, (obj, kwargs) in _custom_models(lookup).items():
        models[name] = out / name
        modelyard.save_model(obj, models[name], input_example=frame.head(2), **kwargs)
    split = frame.to_dict(orient="split")
    split.pop("index")
    spec = {
        "models": {
            "lookup": {
                "path": str(models["lookup"]),
                "input": {"split": split},
                "model_config": {"scale": 10.0},
            },
            "function": {"path": str(models["function"]), "input": {"split": split}},
        }
    }
    (out / "spec.json").write_text(json.dumps(spec))
    report = _scripts.run(
        mlflow_python, "mlflow_loads.py", str(out / "spec.json"), cwd=out, with_modelyard=True
    )
    return {"models": models, "report": report, "frame": frame}


@pytest.mark.parametrize("name", ["lookup", "function"])
def test_mlflow_predicts_the_same_as_we_do(name: str, ours: Any) -> None:
    mine = modelyard.load_model(ours["models"][name])
    theirs = ours["report"][name]
    assert theirs["pyfunc"] == _plain(mine.predict(ours["frame"]))
    assert theirs["loader_module"] == "mlflow.pyfunc.model"
    assert theirs["input_names"] == ["x", "key"]
    assert theirs["model_uuid"] == mine.mlmodel.model_uuid


def test_mlflow_applies_our_saved_config_and_its_override(ours: Any) -> None:
    configured = modelyard.load_model(ours["models"]["lookup"], model_config={"scale": 10.0})
    assert ours["report"]["lookup"]["configured"] == _plain(configured.predict(ours["frame"]))
    assert ours["report"]["lookup"]["configured"] != ours["report"]["lookup"]["pyfunc"]
