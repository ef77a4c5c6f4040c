"""Yard fixtures: an embedded yard in a temporary folder, and a real PostgreSQL database.

``yard`` is an embedded (SQLite) yard. ``any_yard`` runs a test on both the
embedded yard and PostgreSQL. The PostgreSQL database (``modelyard_test_<random>``)
is created once per test session on the server at ``MODELYARD_TEST_POSTGRES``
(default ``postgresql://postgres@127.0.0.1:5432/test``) and dropped at the end;
its tables are emptied before each test that uses it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelyard import yard as yards
from modelyard.yard import Yard

POSTGRES = os.environ.get("MODELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def _admin(url: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {url} ({exc}). Start it "
            "(`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`) "
            "or point MODELYARD_TEST_POSTGRES at a server"
        )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; its URL (no blob folder)."""
    name = f"modelyard_test_{uuid.uuid4().hex[:12]}"
    conn = _admin(POSTGRES)
    conn.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        for yard in list(yards._by_uri.values()):
            yard.close()
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def _empty_tables(url: str) -> None:
    import sqlalchemy as sa

    from modelyard.store.sql.schema import metadata

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            tables = [t.name for t in metadata.sorted_tables if t.name in present]
            if tables:
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


def use_yard(uri: str, cache: Path) -> Iterator[Yard]:
    """Make ``uri`` the yard in use (its cache in ``cache``) until the generator finishes."""
    mp = pytest.MonkeyPatch()
    mp.setenv("MODELYARD_CACHE", str(cache))
    mp.delenv("MODELYARD_URI", raising=False)
    yard = yards.set_yard(uri)
    try:
        yield yard
    finally:
        yard.close()
        yards.set_yard(None)
        mp.undo()


@pytest.fixture
def yard(tmp_path: Path) -> Iterator[Yard]:
    """An embedded yard in a temporary folder, in use for the test."""
    yield from use_yard(str(tmp_path / "yard"), tmp_path / "yard" / "cache")


@pytest.fixture(params=BACKENDS)
def any_yard(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Yard]:
    """The test runs twice: on an embedded (SQLite) yard and on PostgreSQL."""
    if request.param == "sqlite":
        yield from use_yard(str(tmp_path / "yard"), tmp_path / "yard" / "cache")
        return
    url = request.getfixturevalue("pg_database")
    _empty_tables(url)
    yield from use_yard(f"{url}?blobs={tmp_path / 'blobs'}", tmp_path / "cache")


def yard_uri(yard: Yard) -> str:
    """A URI that opens ``yard`` again (in another process, say)."""
    spec = yard.spec
    if spec.scheme == "file":
        return spec.display
    sep = "&" if "?" in spec.database_url else "?"
    return f"{spec.database_url}{sep}artifacts={spec.artifacts}"
