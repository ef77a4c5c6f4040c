"""save_model: layout, atomicity, requirements."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import modelyard
from modelyard.errors import SaveError, UnknownFlavor
from modelyard.format.content import MANIFEST_FILE, ContentManifest


def test_writes_mlflow_layout(saved_iris: Path) -> None:
    names = {p.name for p in saved_iris.iterdir()}
    assert {
        "MLmodel",
        "model.pkl",
        "requirements.txt",
        "python_env.yaml",
        "conda.yaml",
        "input_example.json",
        "serving_input_example.json",
        MANIFEST_FILE,
    } <= names
    doc = yaml.safe_load((saved_iris / "MLmodel").read_text())
    assert doc["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert doc["flavors"]["sklearn"]["serialization_format"] == "cloudpickle"
    assert len(doc["model_uuid"]) == 32
    assert isinstance(doc["utc_time_created"], str)
    assert doc["saved_input_example_info"]["type"] == "dataframe"
    assert list(doc) == sorted(doc)


def test_requirements_pin_framework_and_merge_user_lines(tmp_path: Path, iris_model: Any) -> None:
    import sklearn

    modelyard.save_model(
        iris_model, tmp_path / "m", extra_pip_requirements=["scikit-learn>=1.0", "requests==2.0"]
    )
    reqs = (tmp_path / "m" / "requirements.txt").read_text().splitlines()
    assert "scikit-learn>=1.0" in reqs
    assert f"scikit-learn=={sklearn.__version__}" not in reqs
    assert "requests==2.0" in reqs
    assert any(r.startswith("cloudpickle==") for r in reqs)
    env = yaml.safe_load((tmp_path / "m" / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"]


def test_pip_requirements_replace_defaults(tmp_path: Path, iris_model: Any) -> None:
    modelyard.save_model(iris_model, tmp_path / "m", pip_requirements=["scikit-learn"])
    assert (tmp_path / "m" / "requirements.txt").read_text() == "scikit-learn"


def test_manifest_fixes_digest(saved_iris: Path) -> None:
    manifest = ContentManifest.read(saved_iris)
    assert manifest is not None
    assert manifest == ContentManifest.build(saved_iris)
    assert modelyard.load_model(saved_iris).digest == manifest.digest


class _Unpicklable(modelyard.PythonModel):
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


def test_failed_save_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "m"
    with pytest.raises(SaveError) as info:
        modelyard.save_model(_Unpicklable(), dest)
    assert "lock" in str(info.value).lower()
    assert info.value.__cause__ is not None
    assert list(tmp_path.iterdir()) == []


def test_non_empty_destination_refused(tmp_path: Path, iris_model: Any) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "keep.txt").write_text("mine")
    with pytest.raises(SaveError, match="not an empty directory"):
        modelyard.save_model(iris_model, tmp_path / "m")
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["keep.txt"]


def test_empty_destination_accepted(tmp_path: Path, iris_model: Any) -> None:
    (tmp_path / "m").mkdir()
    modelyard.save_model(iris_model, tmp_path / "m")
    assert (tmp_path / "m" / "MLmodel").exists()


def test_unknown_type_lists_known_types(tmp_path: Path) -> None:
    with pytest.raises(UnknownFlavor) as info:
        modelyard.save_model(object(), tmp_path / "m")
    assert "sklearn" in str(info.value)
    assert "PythonModel" in str(info.value)
    assert not (tmp_path / "m").exists()


def test_unknown_flavor_name_lists_known(tmp_path: Path, iris_model: Any) -> None:
    with pytest.raises(UnknownFlavor, match="did you mean 'sklearn'") as info:
        modelyard.save_model(iris_model, tmp_path / "m", flavor="sklern")
    assert "sklearn" in info.value.known


def test_misspelled_flavor_option_is_an_error(tmp_path: Path, iris_model: Any) -> None:
    with pytest.raises(SaveError, match="serialisation_format"):
        modelyard.save_model(iris_model, tmp_path / "m", serialisation_format="pickle")
    assert not (tmp_path / "m").exists()


def test_code_paths_copied_and_importable(tmp_path: Path, iris: Any) -> None:
    pkg = tmp_path / "src" / "myfeatures_xyz"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("def double(df):\n    return df * 2\n")
    import sys

    sys.path.insert(0, str(tmp_path / "src"))
    try:
        import myfeatures_xyz  # type: ignore[import-not-found]

        modelyard.save_model(myfeatures_xyz.double, tmp_path / "m", code_paths=[pkg])
    finally:
        sys.path.remove(str(tmp_path / "src"))
        sys.modules.pop("myfeatures_xyz", None)
    assert (tmp_path / "m" / "code" / "myfeatures_xyz" / "__init__.py").exists()
    model = modelyard.load_model(tmp_path / "m")
    out = model.predict(pd.DataFrame({"a": [1, 2]}))
    assert out["a"].tolist() == [2, 4]
