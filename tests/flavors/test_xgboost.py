"""xgboost flavor: the three file formats, Booster and scikit-learn API, MLflow's predict."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelyard
from modelyard.errors import ConfigError, CorruptModelFile, SchemaError
from modelyard.flavors import flavor_for_object
from modelyard.format.content import MANIFEST_FILE
from modelyard.yard import Yard

xgb = pytest.importorskip("xgboost")


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


def _classifier(iris: Any) -> Any:
    X, y = iris
    return xgb.XGBClassifier(n_estimators=4, max_depth=2, random_state=0).fit(X, y)


def _edit_mlmodel(path: Path, **changes: Any) -> None:
    # Edited by hand: no longer what the content manifest says, so drop it (as a
    # directory MLflow wrote, which has none).
    (path / MANIFEST_FILE).unlink(missing_ok=True)
    (path / "MANIFEST.sig").unlink(missing_ok=True)  # nor what was signed
    doc = yaml.safe_load((path / "MLmodel").read_text())
    for key, value in changes.items():
        if value is None:
            doc["flavors"]["xgboost"].pop(key, None)
        else:
            doc["flavors"]["xgboost"][key] = value
    (path / "MLmodel").write_text(yaml.safe_dump(doc))


@pytest.mark.parametrize("fmt", ["ubj", "json", "xgb"])
def test_classifier_round_trips_in_each_format(fmt: str, tmp_path: Path, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    modelyard.save_model(est, tmp_path / "m", model_format=fmt, input_example=X.head(3))
    flavors = _conf(tmp_path / "m")
    assert flavors["xgboost"] == {
        "code": None,
        "data": f"model.{fmt}",
        "model_class": "xgboost.sklearn.XGBClassifier",
        "model_format": fmt,
        "xgb_version": xgb.__version__,
    }
    assert flavors["python_function"]["loader_module"] == "mlflow.xgboost"
    assert flavors["python_function"]["data"] == f"model.{fmt}"
    head = (tmp_path / "m" / f"model.{fmt}").read_bytes()[:2]
    # JSON text for json; UBJSON (xgboost >= 3.1 writes it for the legacy name too).
    assert head == (b'{"' if fmt == "json" else b"{L")
    model = modelyard.load_model(tmp_path / "m")
    assert model.flavor == "xgboost"
    labels = model.predict(X)
    np.testing.assert_array_equal(labels, est.predict(X))  # labels, as MLflow's pyfunc
    assert set(np.unique(labels)) <= {0, 1, 2}
    native = model.unwrap()
    assert isinstance(native, xgb.XGBClassifier)
    np.testing.assert_array_equal(native.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("fmt", ["ubj", "json", "xgb"])
def test_regressor_round_trips_in_each_format(fmt: str, tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    est = xgb.XGBRegressor(n_estimators=5, max_depth=3).fit(X, y.astype(float))
    modelyard.save_model(est, tmp_path / "m", model_format=fmt)
    assert _conf(tmp_path / "m")["xgboost"]["model_class"] == "xgboost.sklearn.XGBRegressor"
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), est.predict(X))


@pytest.mark.parametrize("fmt", ["ubj", "json", "xgb"])
def test_booster_predicts_what_its_objective_says(fmt: str, tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(X, label=y), 4
    )
    modelyard.save_model(booster, tmp_path / "m", model_format=fmt, input_example=X.head(2))
    assert _conf(tmp_path / "m")["xgboost"]["model_class"] == "xgboost.core.Booster"
    model = modelyard.load_model(tmp_path / "m")
    probabilities = model.predict(X)
    np.testing.assert_array_equal(probabilities, booster.predict(xgb.DMatrix(X)))
    assert ((probabilities > 0) & (probabilities < 1)).all()
    assert isinstance(model.unwrap(), xgb.Booster)


def test_params_reach_the_booster_as_in_mlflow(
    tmp_path: Path, cancer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    X, y = cancer
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=y), 3)
    signature = modelyard.infer_signature(
        X, booster.predict(xgb.DMatrix(X)), params={"output_margin": False, "colour": "red"}
    )
    modelyard.save_model(booster, tmp_path / "m", signature=signature)
    model = modelyard.load_model(tmp_path / "m")
    margin = model.predict(X, params={"output_margin": True})
    np.testing.assert_array_equal(margin, booster.predict(xgb.DMatrix(X), output_margin=True))
    with caplog.at_level(logging.WARNING, logger="modelyard"):
        plain = model.predict(X, params={"colour": "blue"})  # not an argument: dropped
    np.testing.assert_array_equal(plain, booster.predict(xgb.DMatrix(X)))
    assert "colour" in caplog.text


def test_predict_proba_through_model_config(tmp_path: Path, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    modelyard.save_model(est, tmp_path / "m")
    model = modelyard.load_model(tmp_path / "m", model_config={"predict_fn": "predict_proba"})
    np.testing.assert_array_equal(model.predict(X), est.predict_proba(X))
    with pytest.raises(ConfigError, match="no method"):
        modelyard.load_model(tmp_path / "m", model_config={"predict_fn": "no_such_method"})


def test_booster_has_only_predict(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    booster = xgb.train({}, xgb.DMatrix(X, label=y), 2)
    modelyard.save_model(booster, tmp_path / "m")
    with pytest.raises(ConfigError, match="only has 'predict'"):
        modelyard.load_model(tmp_path / "m", model_config={"predict_fn": "predict_proba"})


def test_feature_mismatch_is_a_schema_error(tmp_path: Path, iris: Any) -> None:
    X, _ = iris
    modelyard.save_model(_classifier(iris), tmp_path / "m")  # no signature: xgboost checks
    model = modelyard.load_model(tmp_path / "m")
    with pytest.raises(SchemaError, match="features"):
        model.predict(X.rename(columns={X.columns[0]: "other"}))


def test_log_model_picks_the_flavor_from_the_type(iris: Any) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    est = _classifier(iris)
    assert flavor_for_object(est).name == "xgboost"
    assert flavor_for_object(est.get_booster()).name == "xgboost"
    assert flavor_for_object(xgb.XGBRegressor()).name == "xgboost"
    assert flavor_for_object(xgb.XGBRanker()).name == "xgboost"
    # A pipeline is scikit-learn's, whatever its last step: MLflow's sklearn flavor too.
    assert flavor_for_object(make_pipeline(StandardScaler(), est)).name == "sklearn"


def test_pipeline_ending_in_xgboost_round_trips(tmp_path: Path, iris: Any) -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    pipe = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3)).fit(X, y)
    modelyard.save_model(pipe, tmp_path / "m")
    model = modelyard.load_model(tmp_path / "m")
    assert model.flavor == "sklearn"
    np.testing.assert_array_equal(model.predict(X), pipe.predict(X))


def test_mlmodel_without_model_class_is_a_booster(tmp_path: Path, cancer: Any) -> None:
    # MLflow < 1.22 wrote no model_class; its loader defaults to a Booster.
    X, y = cancer
    booster = xgb.train({}, xgb.DMatrix(X, label=y), 2)
    modelyard.save_model(booster, tmp_path / "m", model_format="xgb")
    _edit_mlmodel(tmp_path / "m", model_class=None)
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), booster.predict(xgb.DMatrix(X)))


@pytest.mark.parametrize("model_class", ["os.system", "builtins.dict", "xgboost.DMatrix"])
def test_only_xgboost_model_classes_are_instantiated(
    model_class: str, tmp_path: Path, iris: Any
) -> None:
    modelyard.save_model(_classifier(iris), tmp_path / "m")
    _edit_mlmodel(tmp_path / "m", model_class=model_class)
    with pytest.raises(CorruptModelFile, match="model_class"):
        modelyard.load_model(tmp_path / "m")


def test_data_outside_the_model_is_refused(tmp_path: Path, iris: Any) -> None:
    modelyard.save_model(_classifier(iris), tmp_path / "m")
    _edit_mlmodel(tmp_path / "m", data="../elsewhere/model.ubj")
    with pytest.raises(CorruptModelFile, match="outside the model directory"):
        modelyard.load_model(tmp_path / "m")


# A Booster in XGBoost's old binary format (`binf` header), as xgboost < 3.1 wrote
# model.xgb: made with xgboost-cpu 2.1.4 (`Booster.save_model("model.deprecated")`,
# renamed), 3 trees over features a, b, c.
OLD_BINARY = Path(__file__).parent / "data" / "xgboost-2.1.4-binary.xgb"


def test_old_binary_file_names_its_problem(tmp_path: Path, cancer: Any) -> None:
    X, y = cancer
    booster = xgb.train({}, xgb.DMatrix(X, label=y), 2)
    modelyard.save_model(booster, tmp_path / "m", model_format="xgb")
    _edit_mlmodel(tmp_path / "m")
    file = tmp_path / "m" / "model.xgb"
    file.chmod(0o644)
    file.write_bytes(OLD_BINARY.read_bytes())
    assert OLD_BINARY.read_bytes()[:4] == b"binf"
    # xgboost >= 3.1 cannot read it at all; the error says what the file is.
    with pytest.raises(CorruptModelFile, match=r"old binary format.*xgboost<3\.1"):
        modelyard.load_model(tmp_path / "m")


def test_requirements_pin_the_installed_distribution(tmp_path: Path, iris: Any) -> None:
    from importlib.metadata import version

    modelyard.save_model(_classifier(iris), tmp_path / "m")
    lines = (tmp_path / "m" / "requirements.txt").read_text().split()
    assert f"xgboost-cpu=={version('xgboost-cpu')}" in lines
    assert modelyard.load_model(tmp_path / "m", env="strict").environment.ok


def test_a_pin_on_the_cuda_wheel_is_satisfied_by_the_cpu_one(tmp_path: Path, iris: Any) -> None:
    # MLflow-made models pin `xgboost==X` (and with xgboost-cpu installed, both):
    # the same package, so no mismatch.
    from importlib.metadata import version

    modelyard.save_model(
        _classifier(iris), tmp_path / "m", pip_requirements=[f"xgboost=={version('xgboost-cpu')}"]
    )
    report = modelyard.check_environment(tmp_path / "m")
    assert report.ok, report.summary()


def test_unknown_format_is_refused(tmp_path: Path, iris: Any) -> None:
    with pytest.raises(modelyard.SaveError, match="model_format"):
        modelyard.save_model(_classifier(iris), tmp_path / "m", model_format="bin")


def test_log_model_registers_and_loads_by_alias(yard: Yard, iris: Any) -> None:
    X, _ = iris
    est = _classifier(iris)
    with modelyard.start_run(experiment="trees"):
        info = modelyard.log_model(
            est, "model", registered_model_name="iris-xgb", input_example=X.head(3)
        )
    assert info.flavor == "xgboost"
    assert info.signature is not None  # inferred from the example: labels out
    assert info.registered_version is not None
    modelyard.set_alias("iris-xgb", "champion", info.registered_version.version)
    model = modelyard.load_model("models:/iris-xgb@champion")
    np.testing.assert_array_equal(model.predict(X), est.predict(X))
