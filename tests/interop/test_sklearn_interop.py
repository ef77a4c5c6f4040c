"""scikit-learn models move between MLflow 3.17.2 and modelyard in both directions.

MLflow runs in its own cached environment, once per direction for the whole
module (``_scripts/``); this process never has MLflow importable. Iris is the
data on both sides (it ships with scikit-learn), and predictions must be
equal, not close: same library versions, same fitted estimators.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelyard
from modelyard.errors import UntrustedTypes
from modelyard.format.content import MANIFEST_FILE
from modelyard.format.mlmodel import MLmodel
from tests.interop import _scripts

pytestmark = pytest.mark.interop

TREE = "sklearn.tree._tree.Tree"
FORMATS = ("cloudpickle", "pickle", "skops")
MLFLOW_MODELS = [f"{m}-{f}" for m in ("lr", "rf") for f in FORMATS] + ["logged"]


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


# -- MLflow saves, modelyard loads ---------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_saved(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every model MLflow saved, and MLflow's own predictions for them."""
    out = tmp_path_factory.mktemp("mlflow-sklearn")
    return _scripts.run(mlflow_python, "sklearn_mlflow_saves.py", str(out / "m"), cwd=out)


@pytest.mark.parametrize("name", MLFLOW_MODELS)
def test_mlflow_model_predicts_the_same_here(name: str, mlflow_saved: Any, iris: Any) -> None:
    X, _ = iris
    model = modelyard.load_model(mlflow_saved["models"][name], env="strict")
    theirs = mlflow_saved["predictions"][name]
    np.testing.assert_array_equal(model.predict(X), theirs["pyfunc"])
    np.testing.assert_array_equal(model.unwrap().predict_proba(X), theirs["proba"])
    assert model.flavor == "sklearn"


@pytest.mark.parametrize("name", MLFLOW_MODELS)
def test_mlflow_model_metadata_reads_back(name: str, mlflow_saved: Any, iris: Any) -> None:
    X, _ = iris
    model = modelyard.load_model(mlflow_saved["models"][name])
    pd.testing.assert_frame_equal(model.input_example, X.head(3))
    data = model.mlmodel.data
    # Keys modelyard has no use for are kept as MLflow wrote them.
    assert data["mlflow_version"] == mlflow_saved["mlflow_version"]
    assert "prompts" in data
    assert data["is_signature_from_type_hint"] is False
    if name == "logged":
        assert data["model_id"] == data["model_uuid"]
        assert data["artifact_path"].startswith("file://")
    else:
        assert data["model_id"] is None
    inputs = json.loads(data["signature"]["inputs"])
    assert [c["name"] for c in inputs] == list(X.columns)
    assert model.environment.ok, model.environment.summary()
    assert model.environment.mismatches == ()


def test_unknown_mlflow_keys_survive_a_rewrite(
    mlflow_saved: Any, tmp_path: Path, iris: Any
) -> None:
    original = MLmodel.read(mlflow_saved["models"]["rf-skops"])
    original.write(tmp_path)
    again = MLmodel.read(tmp_path)
    assert again.data == original.data
    assert yaml.safe_load((tmp_path / "MLmodel").read_text()) == yaml.safe_load(
        (Path(mlflow_saved["models"]["rf-skops"]) / "MLmodel").read_text()
    )


def test_skops_forest_loads_without_the_list_stored_in_the_file(
    mlflow_saved: Any, tmp_path: Path, iris: Any
) -> None:
    X, _ = iris
    source = Path(mlflow_saved["models"]["rf-skops"])
    assert MLmodel.read(source).flavors["sklearn"]["skops_trusted_types"] == [TREE]
    # Remove the list MLflow wrote: modelyard's own default must be what lets it load.
    copy = tmp_path / "rf"
    shutil.copytree(source, copy)
    doc = yaml.safe_load((copy / "MLmodel").read_text())
    doc["flavors"]["sklearn"]["skops_trusted_types"] = None
    (copy / "MLmodel").write_text(yaml.safe_dump(doc))
    model = modelyard.load_model(copy)
    np.testing.assert_array_equal(
        model.predict(X), mlflow_saved["predictions"]["rf-skops"]["pyfunc"]
    )


def test_skops_user_function_is_refused_unless_the_caller_trusts_it(
    mlflow_saved: Any, iris: Any
) -> None:
    X, _ = iris
    path = mlflow_saved["models"]["user-skops"]
    stored = MLmodel.read(path).flavors["sklearn"]["skops_trusted_types"]
    assert stored == ["user_funcs.double"]  # the file vouches for itself: not good enough
    with pytest.raises(UntrustedTypes) as info:
        modelyard.load_model(path)
    assert info.value.types == ("user_funcs.double",)
    model = modelyard.load_model(path, model_config={"skops_trusted_types": ["user_funcs.double"]})
    theirs = mlflow_saved["predictions"]["user-skops"]
    np.testing.assert_array_equal(model.predict(X), theirs["pyfunc"])


def test_registered_model_meta_does_not_change_the_digest(mlflow_saved: Any) -> None:
    downloaded = Path(mlflow_saved["downloaded"])
    assert (downloaded / "registered_model_meta").is_file()
    assert not (downloaded / MANIFEST_FILE).exists()
    first = modelyard.load_model(downloaded)
    second = modelyard.load_model(downloaded)
    logged = modelyard.load_model(mlflow_saved["models"]["logged"])
    assert first.digest == second.digest == logged.digest
    assert not (downloaded / MANIFEST_FILE).exists(), "loading must not write into the model"


def test_mlflow_digest_tracks_content(mlflow_saved: Any, tmp_path: Path) -> None:
    copy = tmp_path / "lr"
    shutil.copytree(mlflow_saved["models"]["lr-pickle"], copy)
    before = modelyard.load_model(copy).digest
    assert modelyard.load_model(copy).digest == before
    with open(copy / "conda.yaml", "a") as fh:
        fh.write("# edited\n")
    assert modelyard.load_model(copy).digest != before


# -- modelyard saves, MLflow loads ---------------------------------------------------


USER_FUNCS = "def double(x):\n    return x * 2\n"


@pytest.fixture(scope="module")
def ours(
    mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory, iris: Any
) -> dict[str, Any]:
    """Models saved here, what MLflow made of them, and the estimators themselves."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    X, y = iris
    out = tmp_path_factory.mktemp("ours-sklearn")
    src = out / "src"
    src.mkdir()
    (src / "user_funcs.py").write_text(USER_FUNCS)
    sys.path.insert(0, str(src))
    try:
        import user_funcs

        user = make_pipeline(
            FunctionTransformer(user_funcs.double), LogisticRegression(max_iter=1000)
        )
    finally:
        sys.path.remove(str(src))
    estimators = {
        "lr": LogisticRegression(max_iter=1000).fit(X, y),
        "rf": make_pipeline(
            StandardScaler(), RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0)
        ).fit(X, y),
    }
    saved: dict[str, Path] = {}
    for name, est in estimators.items():
        for fmt in FORMATS:
            saved[f"{name}-{fmt}"] = out / f"{name}-{fmt}"
            modelyard.save_model(
                est, saved[f"{name}-{fmt}"], serialization_format=fmt, input_example=X.head(3)
            )
    estimators["user"] = user.fit(X, y)
    saved["user-skops"] = out / "user-skops"
    modelyard.save_model(
        estimators["user"],
        saved["user-skops"],
        serialization_format="skops",
        code_paths=[src / "user_funcs.py"],
        input_example=X.head(3),
    )
    split = X.to_dict(orient="split")
    split.pop("index")
    spec = {
        "models": {
            name: {"path": str(path), "input": {"split": split}, "sklearn": True}
            for name, path in saved.items()
        }
    }
    (out / "spec.json").write_text(json.dumps(spec))
    report = _scripts.run(mlflow_python, "mlflow_loads.py", str(out / "spec.json"), cwd=out)
    return {"saved": saved, "report": report, "estimators": estimators}


OUR_MODELS = [f"{m}-{f}" for m in ("lr", "rf") for f in FORMATS] + ["user-skops"]


@pytest.mark.parametrize("name", OUR_MODELS)
def test_mlflow_predicts_the_same_as_our_estimator(name: str, ours: Any, iris: Any) -> None:
    X, _ = iris
    est = ours["estimators"][name.split("-", maxsplit=1)[0]]
    theirs = ours["report"][name]
    np.testing.assert_array_equal(theirs["pyfunc"], est.predict(X))
    np.testing.assert_array_equal(theirs["proba"], est.predict_proba(X))
    assert theirs["native_type"] == type(est).__name__
    assert theirs["loader_module"] == "mlflow.sklearn"


@pytest.mark.parametrize("name", OUR_MODELS)
def test_mlflow_reads_our_manifest(name: str, ours: Any, iris: Any) -> None:
    X, _ = iris
    theirs = ours["report"][name]
    mlmodel = MLmodel.read(ours["saved"][name])
    assert theirs["model_uuid"] == mlmodel.model_uuid
    assert theirs["flavors"] == ["python_function", "sklearn"]
    assert theirs["input_names"] == list(X.columns)
    assert theirs["input_types"] == ["DataType.double"] * 4
    assert theirs["example_columns"] == list(X.columns)
    np.testing.assert_array_equal(theirs["example"], X.head(3).to_numpy())


def test_skops_trusted_types_we_write_are_what_mlflow_needs(ours: Any) -> None:
    # MLflow loaded both (above); this pins down what let it.
    conf = {
        name: MLmodel.read(ours["saved"][name]).flavors["sklearn"]["skops_trusted_types"]
        for name in ("lr-skops", "rf-skops", "user-skops")
    }
    assert conf == {"lr-skops": None, "rf-skops": [TREE], "user-skops": ["user_funcs.double"]}
    assert MLmodel.read(ours["saved"]["user-skops"]).flavors["sklearn"]["code"] == "code"


def test_our_model_registered_and_downloaded_by_mlflow_verifies(
    ours: Any, mlflow_python: Path, tmp_path: Path, iris: Any
) -> None:
    X, _ = iris
    path = ours["saved"]["rf-skops"]
    digest = modelyard.load_model(path).digest
    result = _scripts.run(
        mlflow_python, "mlflow_registers.py", str(path), str(tmp_path / "mlflow"), cwd=tmp_path
    )
    downloaded = Path(result["downloaded"])
    assert (downloaded / "registered_model_meta").is_file()
    assert (downloaded / MANIFEST_FILE).is_file()
    model = modelyard.load_model(downloaded)  # verified against our manifest
    assert model.digest == digest
    np.testing.assert_array_equal(model.predict(X), ours["estimators"]["rf"].predict(X))


def test_code_shipped_with_an_mlflow_model_keeps_its_digest(
    mlflow_saved: Any, tmp_path: Path, iris: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _ = iris
    copy = tmp_path / "user"
    shutil.copytree(mlflow_saved["models"]["user-skops"], copy)
    monkeypatch.delitem(sys.modules, "user_funcs", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as on a user's machine
    trust = {"skops_trusted_types": ["user_funcs.double"]}
    first = modelyard.load_model(copy, model_config=trust)
    # Loading imported user_funcs from the model's code/ and wrote bytecode there.
    assert sys.modules["user_funcs"].__file__ == str(copy / "code" / "user_funcs.py")
    assert any((copy / "code" / "__pycache__").iterdir())
    assert modelyard.load_model(copy, model_config=trust).digest == first.digest
    np.testing.assert_array_equal(
        first.predict(X), mlflow_saved["predictions"]["user-skops"]["pyfunc"]
    )
