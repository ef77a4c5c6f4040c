"""Shared fixtures: small real models and data, made in the test process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests._old_sklearn import old_sklearn_models  # noqa: F401  (fixture)
from tests._s3 import s3_bucket, s3_env, s3_server  # noqa: F401  (fixtures)
from tests._server import http_yard, server_database, yard_server  # noqa: F401  (fixtures)
from tests._yard import any_yard, pg_database, yard, yard_blobs  # noqa: F401  (fixtures)

# Keys and trust files are per user: the suite gets its own, so it neither reads nor
# writes the developer's (subprocesses and servers inherit it).
os.environ["MODELYARD_CONFIG_HOME"] = tempfile.mkdtemp(prefix="modelyard-config-")


@pytest.fixture(scope="session")
def iris() -> tuple[pd.DataFrame, pd.Series]:
    """Iris as a DataFrame (ships with scikit-learn, no download)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


@pytest.fixture(scope="session")
def iris_model(iris: tuple[pd.DataFrame, pd.Series]) -> Any:
    """A fitted LogisticRegression on iris."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    return LogisticRegression(max_iter=1000).fit(X, y)


@pytest.fixture
def saved_iris(tmp_path: Path, iris_model: Any, iris: tuple[pd.DataFrame, pd.Series]) -> Path:
    """The iris model saved with an input example."""
    import modelyard

    path = tmp_path / "iris"
    modelyard.save_model(iris_model, path, input_example=iris[0].head(3))
    return path
