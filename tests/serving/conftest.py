"""Real scoring servers on loopback ports, and small real models to serve.

``start_server(*args)`` runs ``modelyard serve ... --port 0`` in a subprocess
(:mod:`tests._process`) and stops it when the test ends. Everything talks HTTP
to it with httpx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pytest

import modelyard
from tests._process import (  # noqa: F401  (fixtures, and names other tests import)
    ServerProcess,
    StartServer,
    module_server,
    start_server,
)
from tests.serving import _models

# the servers run without the test suite on their path
cloudpickle.register_pickle_by_value(_models)

# -- models -----------------------------------------------------------------------

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of small saved models, made once per session."""
    return tmp_path_factory.mktemp("served-models")


@pytest.fixture(scope="session")
def iris_frame_model(models_dir: Path, iris: tuple[pd.DataFrame, pd.Series]) -> Path:
    """LogisticRegression fitted on a DataFrame: a column signature of 4 doubles."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    path = models_dir / "iris"
    modelyard.save_model(LogisticRegression(max_iter=1000).fit(X, y), path, input_example=X.head(3))
    return path


@pytest.fixture(scope="session")
def iris_array_model(models_dir: Path, iris: tuple[pd.DataFrame, pd.Series]) -> Path:
    """LogisticRegression fitted on a numpy array: a tensor signature float64 (-1, 4)."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    arr = X.to_numpy()
    path = models_dir / "iris-array"
    modelyard.save_model(
        LogisticRegression(max_iter=1000).fit(arr, y.to_numpy()), path, input_example=arr[:3]
    )
    return path


@pytest.fixture(scope="session")
def doubler_model(models_dir: Path) -> Path:
    """A custom model with a one-column signature ``x: double``."""
    path = models_dir / "doubler"
    modelyard.save_model(_models.Doubler(), path, input_example=pd.DataFrame({"x": [1.0, 2.0]}))
    return path


@pytest.fixture(scope="session")
def sleeper_model(models_dir: Path) -> Path:
    """A custom model that sleeps as long as its ``seconds`` param says."""
    path = models_dir / "sleeper"
    modelyard.save_model(
        _models.Sleeper(),
        path,
        input_example=(pd.DataFrame({"x": [1.0]}), {"seconds": 0.0}),
    )
    return path


@pytest.fixture(scope="session")
def echo_model(models_dir: Path) -> Path:
    """A custom model without a signature that describes its input."""
    path = models_dir / "echo"
    modelyard.save_model(_models.Echo(), path)
    return path


def iris_split(rows: list[list[float]]) -> dict[str, Any]:
    """A ``dataframe_split`` body for the iris columns."""
    return {"dataframe_split": {"columns": IRIS_COLUMNS, "data": rows}}
