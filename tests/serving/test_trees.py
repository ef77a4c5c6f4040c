"""Tree flavors unchanged through the consumers: ``modelyard serve`` over real HTTP (xgboost)
and ``modelyard predict`` on a real CSV file in a subprocess (lightgbm)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelyard
from tests.serving.conftest import IRIS_COLUMNS, ServerProcess, StartServer

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

JSON = {"Content-Type": "application/json"}
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def xgb_models(models_dir: Path, iris: tuple[pd.DataFrame, pd.Series]) -> dict[str, Path]:
    X, y = iris
    clf = xgb.XGBClassifier(n_estimators=4, max_depth=2).fit(X, y)
    modelyard.save_model(clf, models_dir / "xgb-clf", input_example=X.head(3))
    booster = xgb.train({"objective": "multi:softprob", "num_class": 3}, xgb.DMatrix(X, label=y), 3)
    signature = modelyard.infer_signature(
        X, booster.predict(xgb.DMatrix(X)), params={"output_margin": False}
    )
    modelyard.save_model(booster, models_dir / "xgb-booster", signature=signature)
    # Without a signature, xgboost's own feature check is all that guards the input.
    modelyard.save_model(booster, models_dir / "xgb-booster-bare")
    return {
        "xgb-clf": models_dir / "xgb-clf",
        "xgb-booster": models_dir / "xgb-booster",
        "xgb-booster-bare": models_dir / "xgb-booster-bare",
    }


@pytest.fixture(scope="module")
def server(module_server: StartServer, xgb_models: dict[str, Path]) -> ServerProcess:
    return module_server(xgb_models["xgb-clf"])


def _post(url: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}/invocations", content=json.dumps(body), headers=JSON, timeout=30)


def _split(rows: list[list[float]], columns: list[str] = IRIS_COLUMNS) -> dict[str, Any]:
    return {"dataframe_split": {"columns": columns, "data": rows}}


def test_served_xgboost_classifier_answers_labels(
    server: ServerProcess, xgb_models: dict[str, Path]
) -> None:
    local = modelyard.load_model(xgb_models["xgb-clf"])
    r = _post(server.url, _split(ROWS))
    assert r.status_code == 200, r.text
    expected = local.predict(pd.DataFrame(ROWS, columns=IRIS_COLUMNS))
    assert r.json()["predictions"] == [int(v) for v in expected]


def test_served_xgboost_classifier_refuses_a_missing_column(server: ServerProcess) -> None:
    r = _post(server.url, _split([row[:3] for row in ROWS], IRIS_COLUMNS[:3]))
    assert r.status_code == 400
    assert "petal width (cm)" in r.json()["message"]


def test_served_booster_takes_params_as_mlflow(
    start_server: StartServer, xgb_models: dict[str, Path]
) -> None:
    served = start_server(xgb_models["xgb-booster"])
    booster = modelyard.load_model(xgb_models["xgb-booster"]).unwrap()
    frame = pd.DataFrame(ROWS, columns=IRIS_COLUMNS)
    r = _post(served.url, {**_split(ROWS), "params": {"output_margin": True}})
    assert r.status_code == 200, r.text
    margins = booster.predict(xgb.DMatrix(frame), output_margin=True)
    np.testing.assert_allclose(np.asarray(r.json()["predictions"]), margins, rtol=1e-6)


def test_served_booster_without_signature_is_a_400_on_other_features(
    start_server: StartServer, xgb_models: dict[str, Path]
) -> None:
    served = start_server(xgb_models["xgb-booster-bare"])
    ok = _post(served.url, _split(ROWS))
    assert ok.status_code == 200, ok.text
    r = _post(served.url, _split(ROWS, ["a", "b", "c", "d"]))
    assert r.status_code == 400, r.text
    assert "features" in r.json()["message"]


def test_modelyard_predict_scores_a_csv_with_lightgbm(
    tmp_path: Path, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = iris
    clf = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, y)
    modelyard.save_model(clf, tmp_path / "lgb", input_example=X.head(3))
    X.assign(id=[f"r{i}" for i in range(len(X))]).to_csv(tmp_path / "in.csv", index=False)
    exe = Path(sys.executable).with_name("modelyard")
    proc = subprocess.run(
        [str(exe), "predict", "-m", str(tmp_path / "lgb"), "-i", str(tmp_path / "in.csv"),
         "-o", str(tmp_path / "out.csv"), "--keep-columns", "id"],
        capture_output=True,
        check=False,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    got = pd.read_csv(tmp_path / "out.csv")
    assert got["id"].tolist()[:2] == ["r0", "r1"]
    np.testing.assert_array_equal(got["prediction"].to_numpy(), clf.predict(X))
