"""Yard fixtures: an embedded yard in a temporary folder, and a real PostgreSQL database.

``yard`` is an embedded (SQLite) yard. ``any_yard`` runs a test three times:
on the embedded yard, on PostgreSQL, and over HTTP through the session's real
``modelyard server`` (``tests._server.yard_server``, itself over PostgreSQL),
acting as its admin. The PostgreSQL database (``modelyard_test_<random>``) is
created once per test session on the server at ``MODELYARD_TEST_POSTGRES``
(default ``postgresql://postgres@127.0.0.1:5432/test``) and dropped at the end;
its tables are emptied before each test that uses it. The server's tables
(users and tokens aside) and its blob folder are emptied before each ``http``
run, so every run starts from an empty yard (and its blobs after it too).

``yard_blobs`` is the folder a yard's blobs are in (the server's, over HTTP). A
test that cannot hold over HTTP would run on the SQL backends only with
``@pytest.mark.parametrize("any_yard", SQL_BACKENDS, indirect=True)`` (and say
why); none needs to today.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from modelyard import yard as yards
from modelyard.yard import Yard

if TYPE_CHECKING:
    from tests._server import YardServer

POSTGRES = os.environ.get("MODELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SQL_BACKENDS = ("sqlite", "postgresql")
BACKENDS = (*SQL_BACKENDS, "http")


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
    """The test runs on an embedded (SQLite) yard, on PostgreSQL and over HTTP."""
    if request.param == "sqlite":
        yield from use_yard(str(tmp_path / "yard"), tmp_path / "yard" / "cache")
        return
    if request.param == "http":
        server: YardServer = request.getfixturevalue("yard_server")
        server.empty()
        empty_folder(server.blobs)
        try:
            with server.use(server.admin_token, tmp_path / "cache") as yard:
                yield yard
        finally:
            empty_folder(server.blobs)  # other tests of the session server expect none
        return
    url = request.getfixturevalue("pg_database")
    _empty_tables(url)
    yield from use_yard(f"{url}?blobs={tmp_path / 'blobs'}", tmp_path / "cache")


@pytest.fixture
def yard_blobs(any_yard: Yard, request: pytest.FixtureRequest) -> Path:
    """The folder holding the yard's blobs: its own, or the server's over HTTP."""
    if is_http(any_yard):
        server: YardServer = request.getfixturevalue("yard_server")
        return server.blobs
    return Path(any_yard.spec.artifacts)


def is_http(yard: Yard) -> bool:
    """Whether ``yard`` is reached over HTTP (a ``modelyard server``)."""
    return yard.spec.scheme in ("http", "https")


def empty_folder(folder: Path) -> None:
    """Remove everything inside ``folder`` (blobs are read-only files: that is fine)."""
    if folder.exists():
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def yard_uri(yard: Yard) -> str:
    """A URI that opens ``yard`` again (in another process, say; over HTTP with the same
    ``MODELYARD_TOKEN``, which child processes inherit)."""
    spec = yard.spec
    if spec.scheme == "file":
        return spec.display
    if is_http(yard):
        return spec.database_url
    sep = "&" if "?" in spec.database_url else "?"
    return f"{spec.database_url}{sep}artifacts={spec.artifacts}"
