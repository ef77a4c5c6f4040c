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


OLD_SKLEARN = "1.5.2"
_SAVE_WITH_OLD_SKLEARN = """
import sys
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
import modelyard

out, requirements = sys.argv[1], sys.argv[2:]
X, y = load_iris(return_X_y=True, as_frame=True)
est = LogisticRegression(max_iter=1000).fit(X, y)
modelyard.save_model(est, out + "/estimator", input_example=X.head(3))
np.save(out + "/expected.npy", est.predict(X))


def which_sklearn(model_input):
    return np.array([sklearn.__version__] * len(model_input), dtype=object)


modelyard.save_model(which_sklearn, out + "/version", pip_requirements=requirements)
"""


@pytest.fixture(scope="session")
def old_sklearn_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Models saved by scikit-learn 1.5.2, inside a uv environment that holds it.

    ``estimator/``: a LogisticRegression on iris, ``expected.npy``: its predictions
    there; ``version/``: a function model returning the scikit-learn version it runs with.
    The environment is the one both models ask for, so scoring them reuses it.
    """
    import subprocess
    import sys

    import cloudpickle

    from modelyard.batch.envs import EnvSpec, _clean_env, build_env

    v = sys.version_info
    requirements = (f"scikit-learn=={OLD_SKLEARN}", f"cloudpickle=={cloudpickle.__version__}")
    env = build_env(EnvSpec(f"{v.major}.{v.minor}", requirements))
    out = tmp_path_factory.mktemp("old-sklearn")
    script = out / "save.py"
    script.write_text(_SAVE_WITH_OLD_SKLEARN)
    subprocess.run(
        [str(env.python), str(script), str(out), *requirements],
        check=True,
        env=_clean_env(),
        timeout=600,
    )
    return out
