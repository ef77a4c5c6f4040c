"""A real ``modelyard server`` on loopback, over a real PostgreSQL database, for the tests.

``yard_server`` (session scope) starts one server process over a database of
its own (created on ``MODELYARD_TEST_POSTGRES``'s server, dropped at the end)
and a blob folder; its admin's token comes from ``init-admin``. Users with
other roles are made through the API (``server.token("rita", "reader")``).

``http_yard`` makes that server the yard in use for one test, as the admin,
with the metadata tables emptied first (users and tokens kept: the server is
stateless, so emptying tables under it is a fresh yard to its clients).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard import yard as yards
from modelyard.yard import Yard
from tests._process import ServerProcess
from tests._yard import POSTGRES, _admin

KEEP = ("users", "tokens")


@dataclass
class YardServer:
    """A running server and the tokens made for its users."""

    url: str
    database: str
    blobs: Path
    process: ServerProcess
    admin_token: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def backing(self) -> str:
        """The yard URI the server serves."""
        return f"{self.database}?blobs={self.blobs}"

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        """An HTTP client for the server (with ``token`` as Bearer, if given)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def token(self, user: str, role: str = "writer") -> str:
        """A token for ``user`` (made with ``role`` the first time)."""
        if user not in self.tokens:
            with self.client(self.admin_token) as c:
                made = c.post("/api/v1/users", json={"name": user, "role": role})
                assert made.status_code in (201, 409), made.text
                answer = c.post("/api/v1/tokens", json={"user": user, "name": "tests"})
                assert answer.status_code == 201, answer.text
                self.tokens[user] = answer.json()["token"]
        return self.tokens[user]

    def env(self, token: str) -> dict[str, str]:
        """Environment variables that point a client process at this server."""
        return {"MODELYARD_URI": self.url, "MODELYARD_TOKEN": token}

    @contextlib.contextmanager
    def use(self, token: str, cache: Path) -> Iterator[Yard]:
        """This server as the yard in use in this process, acting with ``token``."""
        mp = pytest.MonkeyPatch()
        mp.setenv("MODELYARD_TOKEN", token)
        mp.setenv("MODELYARD_CACHE", str(cache))
        mp.delenv("MODELYARD_URI", raising=False)
        yard = yards.set_yard(self.url)
        try:
            yield yard
        finally:
            yard.close()
            yards.set_yard(None)
            mp.undo()

    def empty(self) -> None:
        """Empty every table but users and tokens."""
        empty_tables(self.database, keep=KEEP)


def empty_tables(url: str, keep: tuple[str, ...] = ()) -> None:
    """Empty the yard's tables in the database at ``url``, but those in ``keep``."""
    import sqlalchemy as sa

    from modelyard.store.sql.schema import metadata

    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            present = set(sa.inspect(conn).get_table_names())
            tables = [t.name for t in metadata.sorted_tables if t.name in present]
            tables = [t for t in tables if t not in keep]
            if tables:
                # not CASCADE: a cascade would reach users/tokens through the grant tables
                conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
    finally:
        engine.dispose()


def start_yard_server(
    database: str, blobs: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[ServerProcess, str]:
    """Start ``modelyard server`` over ``database``; (process, admin token)."""
    from modelyard.server.run import init_admin

    backing = f"{database}?blobs={blobs}"
    yard = Yard(backing)
    try:
        admin = init_admin(yard)
    finally:
        yard.close()
    process = ServerProcess(["--yard", backing, *args], env=env, command="server")
    return process, admin


@pytest.fixture(scope="session")
def server_database() -> Iterator[str]:
    """A PostgreSQL database of its own for the session's yard server."""
    name = f"modelyard_srv_{uuid.uuid4().hex[:12]}"
    conn = _admin(POSTGRES)
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.fixture(scope="session")
def yard_server(
    server_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[YardServer]:
    """One ``modelyard server`` for the session, over PostgreSQL and a blob folder."""
    blobs = tmp_path_factory.mktemp("server-blobs")
    process, admin = start_yard_server(server_database, blobs)
    try:
        yield YardServer(process.url, server_database, blobs, process, admin)
    finally:
        code = process.stop()
        assert code == 0, process.log


@pytest.fixture
def http_yard(yard_server: YardServer, tmp_path: Path) -> Iterator[Yard]:
    """The session's server as the yard in use, emptied, acting as its admin."""
    yard_server.empty()
    with yard_server.use(yard_server.admin_token, tmp_path / "cache") as yard:
        yield yard
