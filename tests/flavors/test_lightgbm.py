"""lightgbm flavor: Booster text files, the scikit-learn API in three serializations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelyard
from modelyard.errors import ConfigError, CorruptModelFile, UntrustedTypes
from modelyard.flavors import flavor_for_object
from modelyard.format.content import MANIFEST_FILE
from modelyard.yard import Yard

lgb = pytest.importorskip("lightgbm")

FORMATS = ("cloudpickle", "pickle", "skops")


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X.iloc[:, :6], y


def _conf(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((path / "MLmodel").read_text())
    return doc["flavors"]


def _edit_mlmodel(path: Path, **changes: Any) -> None:
    (path / MANIFEST_FILE).unlink(missing_ok=True)  # edited by hand: no longer as manifested
    (path / "MANIFEST.sig").unlink(missing_ok=True)  # ... nor as signed
    doc = yaml.safe_load((path / "MLmodel").read_text())
    for key, value in changes.items():
        if value is None:
            doc["flavors"]["lightgbm"].pop(key, None)
        else:
            doc["flavors"]["lightgbm"][key] = value
    (path / "MLmodel").write_text(yaml.safe_dump(doc))


def _classifier(iris: Any) -> Any:
    X, y = iris
    return lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, y)


def test_booster_is_lightgbms_text_format(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    booster = lgb.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1}, lgb.Dataset(X, label=y), 5
    )
    modelyard.save_model(booster, tmp_path / "m", input_example=X.head(2))
    flavors = _conf(tmp_path / "m")
    assert flavors["lightgbm"] == {
        "code": None,
        "data": "model.lgb",
        "lgb_version": lgb.__version__,
        "model_class": "lightgbm.basic.Booster",
    }
    assert flavors["python_function"]["loader_module"] == "mlflow.lightgbm"
    assert flavors["python_function"]["data"] == "model.lgb"
    assert (tmp_path / "m" / "model.lgb").read_text().startswith("tree\nversion=v")
    model = modelyard.load_model(tmp_path / "m")
    probabilities = model.predict(X)
    np.testing.assert_array_equal(probabilities, booster.predict(X))
    assert ((probabilities > 0) & (probabilities < 1)).all()  # raw scores, as MLflow
    assert isinstance(model.unwrap(), lgb.Booster)


def test_booster_takes_no_serialization_format(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    booster = lgb.train({"verbose": -1}, lgb.Dataset(X, label=y), 2)
    with pytest.raises(modelyard.SaveError, match="always saved in LightGBM's text format"):
        modelyard.save_model(booster, tmp_path / "m", serialization_format="pickle")


@pytest.mark.parametrize("fmt", FORMATS)
def test_classifier_round_trips_in_each_format(fmt: str, tmp_path: Path, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    modelyard.save_model(est, tmp_path / "m", serialization_format=fmt, input_example=X.head(3))
    conf = _conf(tmp_path / "m")["lightgbm"]
    file = "model.skops" if fmt == "skops" else "model.pkl"
    assert conf["data"] == file
    assert conf["model_class"] == "lightgbm.sklearn.LGBMClassifier"
    assert conf["serialization_format"] == fmt
    if fmt == "skops":  # what MLflow needs to load it (modelyard never reads it)
        assert "lightgbm.sklearn.LGBMClassifier" in conf["skops_trusted_types"]
    else:
        assert conf["skops_trusted_types"] is None
    model = modelyard.load_model(tmp_path / "m")
    assert model.flavor == "lightgbm"
    np.testing.assert_array_equal(model.predict(X), est.predict(X))  # labels
    np.testing.assert_array_equal(model.unwrap().predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("fmt", FORMATS)
def test_regressor_round_trips_in_each_format(fmt: str, tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    est = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(X, y.astype(float))
    modelyard.save_model(est, tmp_path / "m", serialization_format=fmt)
    assert _conf(tmp_path / "m")["lightgbm"]["model_class"] == "lightgbm.sklearn.LGBMRegressor"
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), est.predict(X))


def test_params_are_ignored_as_in_mlflow(tmp_path: Path, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    signature = modelyard.infer_signature(X, est.predict(X), params={"raw_score": False})
    modelyard.save_model(est, tmp_path / "m", signature=signature)
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X, params={"raw_score": True}), est.predict(X))


def test_predict_proba_through_model_config(tmp_path: Path, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    modelyard.save_model(est, tmp_path / "m")
    model = modelyard.load_model(tmp_path / "m", model_config={"predict_fn": "predict_proba"})
    np.testing.assert_array_equal(model.predict(X), est.predict_proba(X))
    with pytest.raises(ConfigError, match="no method"):
        modelyard.load_model(tmp_path / "m", model_config={"predict_fn": "no_such_method"})


def test_skops_trusts_lightgbm_unless_the_caller_says_otherwise(tmp_path: Path, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    modelyard.save_model(est, tmp_path / "m", serialization_format="skops")
    with pytest.raises(UntrustedTypes) as info:
        modelyard.load_model(tmp_path / "m", model_config={"skops_trusted_types": []})
    assert "lightgbm.sklearn.LGBMClassifier" in info.value.types
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), est.predict(X))


def test_missing_serialization_format_means_cloudpickle(tmp_path: Path, iris: Any) -> None:
    # MLflow's loader default, for files written before it recorded the format.
    X, _ = iris
    est = _classifier(iris)
    modelyard.save_model(est, tmp_path / "m", serialization_format="pickle")
    _edit_mlmodel(tmp_path / "m", serialization_format=None, skops_trusted_types=None)
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), est.predict(X))


def test_missing_or_outside_file_is_refused(tmp_path: Path, iris: Any) -> None:
    modelyard.save_model(_classifier(iris), tmp_path / "m")
    _edit_mlmodel(tmp_path / "m", data="../other/model.pkl")
    with pytest.raises(CorruptModelFile, match="outside the model directory"):
        modelyard.load_model(tmp_path / "m")
    _edit_mlmodel(tmp_path / "m", data="gone.pkl")
    with pytest.raises(CorruptModelFile, match="missing"):
        modelyard.load_model(tmp_path / "m")


def test_log_model_picks_the_flavor_from_the_type(iris: Any, cancer: Any) -> None:
    X, y = cancer
    assert flavor_for_object(_classifier(iris)).name == "lightgbm"
    assert flavor_for_object(lgb.LGBMRegressor()).name == "lightgbm"
    assert flavor_for_object(lgb.LGBMRanker()).name == "lightgbm"
    booster = lgb.train({"verbose": -1}, lgb.Dataset(X, label=y), 1)
    assert flavor_for_object(booster).name == "lightgbm"


def test_requirements_pin_lightgbm_and_the_serializer(tmp_path: Path, iris: Any) -> None:
    from importlib.metadata import version

    modelyard.save_model(_classifier(iris), tmp_path / "m", serialization_format="skops")
    lines = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert f"lightgbm=={version('lightgbm')}" in lines
    assert f"skops=={version('skops')}" in lines
    assert modelyard.load_model(tmp_path / "m", env="strict").environment.ok


def test_log_model_registers_and_loads_by_alias(yard: Yard, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    with modelyard.start_run(experiment="trees"):
        info = modelyard.log_model(
            est, "model", registered_model_name="iris-lgb", input_example=X.head(3)
        )
    assert info.flavor == "lightgbm"
    assert info.signature is not None
    assert info.registered_version is not None
    modelyard.set_alias("iris-lgb", "champion", info.registered_version.version)
    model = modelyard.load_model("models:/iris-lgb@champion")
    np.testing.assert_array_equal(model.predict(X), est.predict(X))
