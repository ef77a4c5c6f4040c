"""xgboost and lightgbm models move between MLflow 3.17.2 and modelyard in both directions.

MLflow runs in its cached environment (which holds xgboost-cpu and lightgbm at
the versions this venv has), once per direction for the module. Trees are
deterministic, so predictions must be equal, not close.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard
from tests.interop import _scripts

pytestmark = pytest.mark.interop
xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

# name -> (flavor modelyard loads it with, the data it scores)
MLFLOW_MODELS = {
    "xgb-clf-ubj": ("xgboost", "iris"),
    "xgb-clf-json": ("xgboost", "iris"),
    "xgb-clf-xgb": ("xgboost", "iris"),
    "xgb-reg": ("xgboost", "cancer"),
    "xgb-booster": ("xgboost", "cancer"),
    "xgb-booster-xgb": ("xgboost", "cancer"),
    "sklearn-pipeline-xgb": ("sklearn", "iris"),
    "sklearn-pipeline-xgb-skops": ("sklearn", "iris"),
    "lgb-booster": ("lightgbm", "cancer"),
    "lgb-clf-skops": ("lightgbm", "iris"),
    "lgb-clf-cloudpickle": ("lightgbm", "iris"),
    "lgb-reg-pickle": ("lightgbm", "cancer"),
}


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer, load_iris

    iris_X, _ = load_iris(return_X_y=True, as_frame=True)
    cancer_X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    return {"iris": iris_X, "cancer": cancer_X.iloc[:, :6]}


@pytest.fixture(scope="module")
def targets() -> dict[str, pd.Series]:
    from sklearn.datasets import load_breast_cancer, load_iris

    return {
        "iris": load_iris(return_X_y=True, as_frame=True)[1],
        "cancer": load_breast_cancer(return_X_y=True, as_frame=True)[1],
    }


def _same(ours: Any, theirs: Any) -> None:
    ours = np.asarray(ours)
    # JSON carried MLflow's float32 through float64 and back without loss.
    np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=ours.dtype))


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


# -- MLflow saves, modelyard loads ---------------------------------------------------

TRUSTED_FOR_PIPELINE = [
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
]


@pytest.fixture(scope="module")
def mlflow_saved(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("mlflow-trees")
    return _scripts.run(mlflow_python, "trees_mlflow_saves.py", str(out / "m"), cwd=out)


@pytest.mark.parametrize("name", list(MLFLOW_MODELS))
def test_mlflow_model_predicts_the_same_here(
    name: str, mlflow_saved: Any, data: dict[str, pd.DataFrame]
) -> None:
    flavor, which = MLFLOW_MODELS[name]
    X = data[which]
    # strict: MLflow pinned xgboost==, xgboost-cpu==, lightgbm==, ... as installed here.
    config = {"skops_trusted_types": TRUSTED_FOR_PIPELINE} if name.endswith("-xgb-skops") else None
    model = modelyard.load_model(mlflow_saved["models"][name], env="strict", model_config=config)
    theirs = mlflow_saved["predictions"][name]
    assert model.flavor == flavor
    _same(model.predict(X), theirs["pyfunc"])
    native = model.unwrap()
    assert _type_name(native) == theirs["native_type"]
    if isinstance(native, xgb.Booster):
        _same(native.predict(xgb.DMatrix(X)), theirs["native"])
    else:
        _same(native.predict(X), theirs["native"])
    if "proba" in theirs:
        _same(native.predict_proba(X), theirs["proba"])


def test_xgboost_inside_an_sklearn_skops_file_needs_the_callers_trust(
    mlflow_saved: Any, data: dict[str, pd.DataFrame]
) -> None:
    # The list MLflow stored in the file is the saver's word, not the loader's: as for
    # any skops file, types outside modelyard's default need model_config.
    path = mlflow_saved["models"]["sklearn-pipeline-xgb-skops"]
    with pytest.raises(modelyard.UntrustedTypes) as info:
        modelyard.load_model(path)
    assert set(info.value.types) == {"xgboost.core.Booster", "xgboost.sklearn.XGBClassifier"}


def test_mlflow_xgboost_model_validates_features(
    mlflow_saved: Any, data: dict[str, pd.DataFrame]
) -> None:
    # MLflow's signature names the columns: a missing one is refused before xgboost.
    model = modelyard.load_model(mlflow_saved["models"]["xgb-clf-ubj"])
    with pytest.raises(modelyard.SchemaError):
        model.predict(data["iris"].drop(columns=data["iris"].columns[0]))


# -- modelyard saves, MLflow loads ---------------------------------------------------


@pytest.fixture(scope="module")
def ours(
    mlflow_python: Path,
    tmp_path_factory: pytest.TempPathFactory,
    data: dict[str, pd.DataFrame],
    targets: dict[str, pd.Series],
) -> dict[str, Any]:
    """Models saved here, what MLflow predicted with them, and the originals."""
    iris, cancer = data["iris"], data["cancer"]
    y_iris, y_cancer = targets["iris"], targets["cancer"]
    out = tmp_path_factory.mktemp("ours-trees")
    xgb_clf = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(iris, y_iris)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(cancer, label=y_cancer), 4)
    lgb_clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(iris, y_iris)
    lgb_booster = lgb.train(
        {"objective": "binary", "verbose": -1}, lgb.Dataset(cancer, label=y_cancer), 5
    )
    lgb_reg = lgb.LGBMRegressor(n_estimators=5, verbose=-1).fit(cancer, y_cancer.astype(float))
    xgb_reg = xgb.XGBRegressor(n_estimators=5).fit(cancer, y_cancer.astype(float))
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=3)).fit(iris, y_iris)
    plan: dict[str, tuple[Any, str, dict[str, Any]]] = {
        "xgb-clf-ubj": (xgb_clf, "iris", {}),
        "xgb-clf-json": (xgb_clf, "iris", {"model_format": "json"}),
        "xgb-clf-xgb": (xgb_clf, "iris", {"model_format": "xgb"}),
        "xgb-reg": (xgb_reg, "cancer", {}),
        "xgb-booster": (booster, "cancer", {}),
        "lgb-booster": (lgb_booster, "cancer", {}),
        "lgb-clf-cloudpickle": (lgb_clf, "iris", {}),
        "lgb-clf-pickle": (lgb_clf, "iris", {"serialization_format": "pickle"}),
        "lgb-clf-skops": (lgb_clf, "iris", {"serialization_format": "skops"}),
        "lgb-reg": (lgb_reg, "cancer", {}),
        "sklearn-pipeline-xgb": (pipeline, "iris", {}),
    }
    spec: dict[str, dict[str, str]] = {}
    for name, (obj, which, options) in plan.items():
        path = out / name
        modelyard.save_model(obj, path, input_example=data[which].head(3), **options)
        spec[name] = {"path": str(path), "data": which}
    (out / "models.json").write_text(json.dumps(spec))
    loaded = _scripts.run(mlflow_python, "trees_mlflow_loads.py", str(out / "models.json"), cwd=out)
    return {"spec": spec, "mlflow": loaded, "objects": {n: p[0] for n, p in plan.items()}}


@pytest.mark.parametrize(
    "name",
    [
        "xgb-clf-ubj",
        "xgb-clf-json",
        "xgb-clf-xgb",
        "xgb-reg",
        "xgb-booster",
        "lgb-booster",
        "lgb-clf-cloudpickle",
        "lgb-clf-pickle",
        "lgb-clf-skops",
        "lgb-reg",
        "sklearn-pipeline-xgb",
    ],
)
def test_our_model_predicts_the_same_in_mlflow(
    name: str, ours: dict[str, Any], data: dict[str, pd.DataFrame]
) -> None:
    spec = ours["spec"][name]
    X = data[spec["data"]]
    theirs = ours["mlflow"][name]
    model = modelyard.load_model(spec["path"])
    _same(model.predict(X), theirs["pyfunc"])  # mlflow.pyfunc.load_model(...).predict
    original = ours["objects"][name]
    assert theirs["native_type"] == _type_name(original)  # mlflow.<flavor>.load_model
    if isinstance(original, xgb.Booster):
        _same(original.predict(xgb.DMatrix(X)), theirs["native"])
    else:
        _same(original.predict(X), theirs["native"])
    if "proba" in theirs:
        _same(original.predict_proba(X), theirs["proba"])
