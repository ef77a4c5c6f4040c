"""load_model: errors for every way a model directory can be wrong."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import modelyard
from modelyard.errors import (
    ConfigError,
    IntegrityError,
    MalformedMLmodel,
    MLmodelNotFound,
    ModelNotFound,
    UnsafePickle,
)


def test_round_trip_predicts_same(saved_iris: Path, iris_model: Any, iris: Any) -> None:
    X, _ = iris
    model = modelyard.load_model(saved_iris)
    assert (model.predict(X) == iris_model.predict(X)).all()
    assert model.flavor == "sklearn"
    assert model.digest.startswith("sha256:")
    assert type(model.unwrap()) is type(iris_model)
    assert model.input_example.shape == (3, 4)
    assert "sklearn" in repr(model)
    assert "<table>" in model._repr_html_()


def test_altered_file_is_named(saved_iris: Path) -> None:
    with open(saved_iris / "model.pkl", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError) as info:
        modelyard.load_model(saved_iris)
    assert info.value.file == "model.pkl"
    assert "altered" in str(info.value)


def test_deleted_file_is_named(saved_iris: Path) -> None:
    (saved_iris / "conda.yaml").unlink()
    with pytest.raises(IntegrityError, match=r"conda\.yaml") as info:
        modelyard.load_model(saved_iris)
    assert info.value.problem == "is missing"


def test_added_file_is_named(saved_iris: Path) -> None:
    (saved_iris / "evil.py").write_text("import os")
    with pytest.raises(IntegrityError, match=r"evil\.py"):
        modelyard.load_model(saved_iris)


def test_folder_without_mlmodel(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(MLmodelNotFound) as info:
        modelyard.load_model(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no such directory"):
        modelyard.load_model(tmp_path / "nope")


def test_malformed_mlmodel(saved_iris: Path) -> None:
    (saved_iris / "MANIFEST.sha256").unlink()  # as a hand-edited MLflow model would be
    (saved_iris / "MANIFEST.sig").unlink(missing_ok=True)
    (saved_iris / "MLmodel").write_text("flavors: [unclosed")
    with pytest.raises(MalformedMLmodel, match="not valid YAML"):
        modelyard.load_model(saved_iris)
    (saved_iris / "MLmodel").write_text("model_uuid: abc\n")
    with pytest.raises(MalformedMLmodel, match="flavors") as info:
        modelyard.load_model(saved_iris)
    assert info.value.field == "flavors"


def test_garbage_pickle_is_refused_by_the_scan(saved_iris: Path) -> None:
    # the scanner reads it first: what it cannot follow is never unpickled
    (saved_iris / "MANIFEST.sha256").unlink()
    (saved_iris / "MANIFEST.sig").unlink(missing_ok=True)
    (saved_iris / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(UnsafePickle) as info:
        modelyard.load_model(saved_iris)
    assert info.value.offset == 0
    assert "model.pkl" in str(info.value)


def test_unknown_config_key_lists_declared(tmp_path: Path) -> None:
    class Cfg(modelyard.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return context.model_config["scale"] * model_input

    modelyard.save_model(Cfg(), tmp_path / "m", model_config={"scale": 2, "bias": 0})
    with pytest.raises(ConfigError) as info:
        modelyard.load_model(tmp_path / "m", model_config={"scael": 3})
    assert info.value.keys == ("scael",)
    assert info.value.declared == ("bias", "scale")
    assert modelyard.load_model(tmp_path / "m", model_config={"scale": 3}).predict(2) == 6


def test_config_from_yaml_file(tmp_path: Path) -> None:
    class Cfg(modelyard.PythonModel):
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return context.model_config["scale"] * model_input

    modelyard.save_model(Cfg(), tmp_path / "m", model_config={"scale": 2})
    (tmp_path / "c.yaml").write_text("scale: 5\n")
    model = modelyard.load_model(tmp_path / "m", model_config=str(tmp_path / "c.yaml"))
    assert model.predict(2) == 10
    assert model.model_config == {"scale": 5}
    with pytest.raises(ConfigError, match="does not exist"):
        modelyard.load_model(tmp_path / "m", model_config=str(tmp_path / "missing.yaml"))


def test_mlflow_style_model_without_manifest_loads(saved_iris: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(saved_iris, copy)
    (copy / "MANIFEST.sha256").unlink()
    (copy / "MANIFEST.sig").unlink(missing_ok=True)
    model = modelyard.load_model(copy)
    assert model.digest.startswith("sha256:")


def test_code_dir_outside_the_model_is_refused(saved_iris: Path) -> None:
    import sys

    import yaml

    (saved_iris / "MANIFEST.sha256").unlink()
    (saved_iris / "MANIFEST.sig").unlink(missing_ok=True)
    doc = yaml.safe_load((saved_iris / "MLmodel").read_text())
    doc["flavors"]["python_function"]["code"] = "../../elsewhere"
    (saved_iris / "MLmodel").write_text(yaml.safe_dump(doc))
    before = list(sys.path)
    with pytest.raises(MalformedMLmodel, match=r"\.\.") as info:
        modelyard.load_model(saved_iris)
    assert info.value.field == "flavors.python_function.code"
    assert sys.path == before
