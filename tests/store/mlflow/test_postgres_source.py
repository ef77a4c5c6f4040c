"""An MLflow PostgreSQL database as a source: read through MLflow's tables in READ ONLY
transactions, imported whole, and read in place as an ``mlflow+postgresql`` yard.

MLflow needs ``psycopg2`` for PostgreSQL, which the interop tests' MLflow venv does not
hold; the bench's MLflow venv does (``make bench`` builds it). Without it this module
is skipped, saying so.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import modelyard as my
from modelyard.errors import MlflowSourceError
from modelyard.store.mlflow import open_mlflow_source
from modelyard.store.mlflow._sql import SqlSource
from modelyard.store.mlflow.importer import import_mlflow
from modelyard.yard import Yard
from tests._yard import POSTGRES, _admin
from tests.interop.conftest import CACHE
from tests.store.mlflow.conftest import SCRIPT, mlflow_env
from tests.store.mlflow.test_mlflow_import import iris_frame

BENCH_MLFLOW = CACHE / "bench" / "mlflow-server-3.17.2" / "bin" / "python"


@pytest.fixture(scope="module")
def mlflow_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, list]]]:
    """A PostgreSQL database MLflow filled (its URL), and MLflow's predictions."""
    if not BENCH_MLFLOW.exists():
        pytest.skip(f"needs an MLflow venv with psycopg2 at {BENCH_MLFLOW} (make bench)")
    root = tmp_path_factory.mktemp("mlflow-pg")
    (root / "outside").mkdir()
    name = f"mlflow_src_{uuid.uuid4().hex[:12]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    try:
        proc = subprocess.run(
            [
                BENCH_MLFLOW,
                SCRIPT,
                root / "outside",
                root / "art",
                url.replace("://", "+psycopg2://", 1),
            ],
            cwd=root,
            env=mlflow_env(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        made = json.loads(proc.stdout.strip().splitlines()[-1])
        yield url, next(iter(made.values()))["predictions"]
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_postgres_source_is_read_only_and_imports_whole(
    mlflow_pg: tuple[str, dict[str, list]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, predictions = mlflow_pg
    reader = SqlSource(url)
    with pytest.raises(MlflowSourceError, match="read-only transaction"), reader._read() as conn:
        conn.execute(sa.text("DELETE FROM registered_model_tags"))
    assert reader.get_model("iris").aliases == {"champion": 2, "challenger": 3}
    reader.close()

    yard = Yard(tmp_path / "yard")
    source = open_mlflow_source(url)
    report = import_mlflow(source, yard.metadata, yard.artifacts)
    assert (report.models, report.versions, report.runs) == (2, 4, 3)
    assert {s.item for s in report.skipped} == {"broken version 1", "outside version 1"}
    X = iris_frame()
    model = my.load_model("models:/iris@champion", yard=yard)
    assert list(model.predict(X)) == predictions["iris/2"]
    source.close()
    yard.close()

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MODELYARD_CACHE", str(tmp_path / "models"))
    in_place = my.load_model("models:/iris/3", yard="mlflow+" + url)
    assert list(in_place.predict(X)) == predictions["iris/3"]
