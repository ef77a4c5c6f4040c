"""The light SQLite lookup answers exactly as the store does, or defers to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from modelyard.store.sql.lookup import lookup, sqlite_file
from modelyard.yard import Yard

D = [f"sha256:{c * 64}" for c in "123"]


@pytest.fixture
def filled(yard: Yard) -> Path:
    store = yard.metadata
    for i, digest in enumerate(D):
        store.create_model_version("fraud", digest=digest, source=digest, run_id=f"r{i}")
    store.create_model_version("churn", digest=D[0], source=D[0])
    store.set_alias("fraud", "champion", 2)
    store.set_alias("churn", "champion", 1)
    store.delete_model_version("fraud", 3)
    db = sqlite_file(yard.spec.database_url)
    assert db is not None
    return db


@pytest.mark.parametrize(
    ("name", "version", "alias"),
    [
        ("fraud", None, "champion"),
        ("fraud", 1, None),
        ("fraud", 2, None),
        ("fraud", None, None),
        ("churn", None, "champion"),
        ("churn", None, None),
    ],
)
def test_same_answer_as_the_store(
    yard: Yard, filled: Path, name: str, version: int | None, alias: str | None
) -> None:
    light = lookup(filled, name, version=version, alias=alias)
    assert light is not None
    assert light == yard.metadata.resolve(name, version=version, alias=alias)


@pytest.mark.parametrize(
    ("name", "version", "alias"),
    [("frod", None, "champion"), ("fraud", 3, None), ("fraud", None, "challenger")],
)
def test_misses_defer_to_the_store(
    filled: Path, name: str, version: int | None, alias: str | None
) -> None:
    assert lookup(filled, name, version=version, alias=alias) is None


def test_an_older_schema_or_no_database_defers(tmp_path: Path, filled: Path) -> None:
    assert lookup(tmp_path / "missing.db", "fraud", alias="champion") is None
    assert not (tmp_path / "missing.db").exists()  # a read never creates a database
    con = sqlite3.connect(filled)
    con.execute("UPDATE alembic_version SET version_num = '0001'")
    con.commit()
    con.close()
    assert lookup(filled, "fraud", alias="champion") is None


def test_sqlite_file() -> None:
    assert sqlite_file("sqlite:////abs/yard.db") == Path("/abs/yard.db")
    assert sqlite_file("sqlite:///rel/y%20d.db?x=1") == Path("rel/y d.db")
    assert sqlite_file("sqlite:///:memory:") is None
    assert sqlite_file("postgresql://h/db") is None
