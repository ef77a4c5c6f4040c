"""Fixtures for batch scoring: a saved iris model and its data in every format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest


def with_ids(X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with an ``id`` column first (not a model input)."""
    df = X.copy()
    df.insert(0, "id", [f"r{i}" for i in range(len(df))])
    return df


def write_formats(tmp_path: Path, iris_frame: pd.DataFrame) -> dict[str, Path]:
    """``iris_frame`` as Parquet, CSV and JSON lines."""
    files = {
        "parquet": tmp_path / "in.parquet",
        "csv": tmp_path / "in.csv",
        "jsonl": tmp_path / "in.jsonl",
    }
    iris_frame.to_parquet(files["parquet"], index=False)
    iris_frame.to_csv(files["csv"], index=False)
    iris_frame.to_json(files["jsonl"], orient="records", lines=True)
    return files


@pytest.fixture
def iris_frame(iris: tuple[pd.DataFrame, pd.Series]) -> pd.DataFrame:
    """Iris features with an ``id`` column first."""
    return with_ids(iris[0])


@pytest.fixture
def iris_files(tmp_path: Path, iris_frame: pd.DataFrame) -> dict[str, Path]:
    """The iris frame as Parquet, CSV and JSON lines."""
    return write_formats(tmp_path, iris_frame)


def read_any(path: Path) -> pd.DataFrame:
    """Read an output file back with pandas, by extension."""
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith(".csv"):
        return pd.read_csv(path)
    return pd.read_json(path, lines=True)


@pytest.fixture
def expected(iris_model: Any, iris: tuple[pd.DataFrame, pd.Series]) -> Any:
    """What the estimator itself predicts on iris."""
    return iris_model.predict(iris[0])
