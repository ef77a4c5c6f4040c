"""``modelyard.spark.udf`` on a real Spark session in local mode.

Every test compares with ``Model.predict`` on the same rows, on DataFrames
split over several partitions.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard

pytest.importorskip("pyspark")
pytestmark = pytest.mark.spark

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="module")
def iris_setup(
    tmp_path_factory: pytest.TempPathFactory, iris_model: Any, iris: tuple[pd.DataFrame, Any]
) -> tuple[Path, pd.DataFrame]:
    path = tmp_path_factory.mktemp("spark") / "iris"
    modelyard.save_model(iris_model, path, input_example=iris[0].head(3))
    frame = iris[0].copy()
    frame.insert(0, "id", range(len(frame)))
    return path, frame


def test_predictions_equal_model_predict_across_partitions(
    spark: Any, iris_setup: tuple[Path, pd.DataFrame]
) -> None:
    from pyspark.sql import functions as F

    from modelyard.spark import udf

    path, frame = iris_setup
    df = spark.createDataFrame(frame).repartition(3)
    assert df.rdd.getNumPartitions() == 3
    as_long = udf(spark, str(path), result_type="long")
    as_double = udf(spark, str(path))
    as_string = udf(spark, str(path), result_type="string")
    renamed = [F.col(c).alias(f"f{i}") for i, c in enumerate(IRIS_COLUMNS)]
    out = (
        df.select(
            "id",
            as_long(*IRIS_COLUMNS).alias("by_name"),
            as_long(F.struct(*IRIS_COLUMNS)).alias("by_struct"),
            as_double().alias("by_signature"),  # no columns: the signature's input names
            as_string(*reversed(IRIS_COLUMNS)).alias("as_string"),  # order does not matter
            as_long(*renamed).alias("by_position"),
        )
        .toPandas()
        .sort_values("id")
    )
    expected = modelyard.load_model(path).predict(frame[IRIS_COLUMNS])
    np.testing.assert_array_equal(out["by_name"].to_numpy(), expected)
    np.testing.assert_array_equal(out["by_struct"].to_numpy(), expected)
    np.testing.assert_array_equal(out["by_signature"].to_numpy(), expected.astype(float))
    assert out["as_string"].tolist() == [str(v) for v in expected]
    np.testing.assert_array_equal(out["by_position"].to_numpy(), expected)
    assert out["by_name"].dtype == np.int64


def test_multi_output_as_struct_and_array(spark: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from modelyard.spark import udf

    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7})
    reg = LinearRegression().fit(X, np.column_stack([X["a"] * 2 + 1, X["b"] - X["a"]]))
    modelyard.save_model(reg, tmp_path / "m", input_example=X.head(2))
    df = spark.createDataFrame(X).repartition(2)
    as_struct = udf(spark, str(tmp_path / "m"), "struct<low:double,high:double>")
    as_array = udf(spark, str(tmp_path / "m"), "array<double>")
    out = df.select("a", as_struct("a", "b").alias("s"), as_array("a", "b").alias("v"))
    got = out.toPandas().sort_values("a")
    expected = reg.predict(X)
    np.testing.assert_allclose([r["low"] for r in got["s"]], expected[:, 0])
    np.testing.assert_allclose([r["high"] for r in got["s"]], expected[:, 1])
    np.testing.assert_allclose(np.stack(got["v"].to_list()), expected)


def test_impossible_result_type_is_a_clear_error(spark: Any, tmp_path: Path) -> None:
    from sklearn.tree import DecisionTreeClassifier

    from modelyard.spark import udf

    X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    clf = DecisionTreeClassifier().fit(X, ["low", "low", "high", "high"])
    modelyard.save_model(clf, tmp_path / "m", input_example=X.head(2))
    df = spark.createDataFrame(X)
    with pytest.raises(Exception, match="cannot be returned as double") as err:
        df.select(udf(spark, str(tmp_path / "m"))("x")).collect()
    assert "result_type='string'" in str(err.value)
    got = df.select(udf(spark, str(tmp_path / "m"), "string")("x").alias("p")).toPandas()
    assert got["p"].tolist() == ["low", "low", "high", "high"]


def test_bad_result_type_and_config_fail_on_the_driver(
    spark: Any, iris_setup: tuple[Path, pd.DataFrame]
) -> None:
    from modelyard.errors import ConfigError, ResultTypeError
    from modelyard.spark import udf

    path, _ = iris_setup
    with pytest.raises(ResultTypeError, match="map<string,double>"):
        udf(spark, str(path), "map<string,double>")
    with pytest.raises(ConfigError, match="not declared"):
        udf(spark, str(path), model_config={"no_such_key": 1})


def test_the_digest_is_pinned_when_the_udf_is_made(
    spark: Any, tmp_path: Path, iris_setup: tuple[Path, pd.DataFrame]
) -> None:
    from sklearn.dummy import DummyRegressor

    from modelyard.spark import udf

    X = pd.DataFrame({"x": np.arange(10.0)})
    target = tmp_path / "model"
    modelyard.save_model(DummyRegressor(constant=1.0, strategy="constant").fit(X, X["x"]), target)
    predict = udf(spark, str(target))
    # The directory is replaced after the UDF was made (think: an alias moved).
    shutil.rmtree(target)
    modelyard.save_model(DummyRegressor(constant=2.0, strategy="constant").fit(X, X["x"]), target)
    got = spark.createDataFrame(X).repartition(2).select(predict("x").alias("p")).toPandas()
    assert set(got["p"]) == {1.0}
    assert udf(spark, str(target)).digest != predict.digest


def test_an_alias_is_resolved_once_on_the_driver(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.dummy import DummyRegressor

    from modelyard.registry import register_model, set_alias
    from modelyard.spark import udf

    monkeypatch.setenv("MODELYARD_URI", str(tmp_path / "yard"))
    X = pd.DataFrame({"x": np.arange(10.0)})
    for constant in (1.0, 2.0):
        model = DummyRegressor(strategy="constant", constant=constant).fit(X, X["x"])
        modelyard.save_model(model, tmp_path / f"m{constant}")
        register_model(str(tmp_path / f"m{constant}"), "dummy")
    set_alias("dummy", "champion", 1)
    predict = udf(spark, "models:/dummy@champion")
    set_alias("dummy", "champion", 2)  # moves while the job is being set up
    df = spark.createDataFrame(X).repartition(2)
    assert set(df.select(predict("x").alias("p")).toPandas()["p"]) == {1.0}
    moved = udf(spark, "models:/dummy@champion")
    assert set(df.select(moved("x").alias("p")).toPandas()["p"]) == {2.0}


def test_env_uv_scores_in_the_models_own_environment(spark: Any, old_sklearn_models: Path) -> None:
    import sklearn

    from modelyard.spark import udf
    from tests._old_sklearn import OLD_SKLEARN

    assert sklearn.__version__ != OLD_SKLEARN
    df = spark.createDataFrame(pd.DataFrame({"x": np.arange(20.0)})).repartition(2)
    which = udf(spark, str(old_sklearn_models / "version"), "string", env="uv")
    got = df.select(which("x").alias("v")).toPandas()
    assert got["v"].tolist() == [OLD_SKLEARN] * 20


def test_a_udf_over_a_yard_server(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MODELYARD_URI=http://...``: resolved and fetched on the driver through the server."""
    from sklearn.dummy import DummyRegressor

    from modelyard.registry import register_model, set_alias
    from modelyard.spark import udf
    from modelyard.yard import set_yard
    from tests._server import start_yard_server

    process, token = start_yard_server(f"sqlite:///{tmp_path / 'yard.db'}", tmp_path / "blobs")
    try:
        monkeypatch.setenv("MODELYARD_TOKEN", token)
        monkeypatch.setenv("MODELYARD_CACHE", str(tmp_path / "cache"))
        set_yard(process.url)
        X = pd.DataFrame({"x": np.arange(10.0)})
        model = DummyRegressor(strategy="constant", constant=3.0).fit(X, X["x"])
        modelyard.save_model(model, tmp_path / "m")
        set_alias("dummy", "champion", register_model(str(tmp_path / "m"), "dummy").version)
        predict = udf(spark, "models:/dummy@champion")
        got = spark.createDataFrame(X).repartition(2).select(predict("x").alias("p")).toPandas()
        assert set(got["p"]) == {3.0}
    finally:
        set_yard(None)
        process.stop()
