"""Engines for SQLite and PostgreSQL, transactions, and the schema check on open.

SQLite specifics (everything else is the same code for both databases):

- WAL journal, so readers never wait for a writer;
- the driver's own transaction handling is turned off and this module emits
  ``BEGIN`` itself: ``BEGIN IMMEDIATE`` for write transactions, so two writers
  queue on the database lock (``timeout`` seconds) instead of one failing
  when both try to upgrade a read lock;
- ``foreign_keys`` and case-sensitive ``LIKE`` (as in PostgreSQL) per connection.

Opening checks the ``alembic_version`` row with one query and imports Alembic
only when the database is older than this code (or new).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from modelyard.errors import SchemaMismatch, YardNotFound
from modelyard.store.sql.revision import SCHEMA_REVISION, SCHEMA_REVISIONS

__all__ = ["Database", "sqlite_path"]

logger = logging.getLogger("modelyard")
_WRITE = "modelyard_write"
# Any fixed 64-bit number: the advisory lock PostgreSQL migrations queue on.
_PG_MIGRATION_LOCK = zlib.crc32(b"modelyard.migrations")
_SQLITE_TIMEOUT_S = 60.0


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (``None`` for other databases)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


class Database:
    """One engine plus read/write transaction helpers."""

    def __init__(self, url: str, *, display: str, create: bool = True) -> None:
        self.display = display
        parsed = sa.engine.make_url(url)
        self.dialect = parsed.get_backend_name()
        path = sqlite_path(url)
        if path is not None:
            if not path.exists():
                if not create:
                    raise YardNotFound(display)
                path.parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                parsed, connect_args={"timeout": _SQLITE_TIMEOUT_S, "check_same_thread": False}
            )
            _sqlite_events(self.engine)
        else:
            self.engine = sa.create_engine(parsed, pool_pre_ping=True)
        self.url = parsed

    def serve(self, threads: int) -> None:
        """Tune the pool for a server answering from ``threads`` threads.

        One pooled connection per thread, so a burst never opens and closes
        connections (each costs PostgreSQL a process); no ping before each use (a
        round trip per query): a connection that died answers with an error, which
        invalidates it and the pool replaces it, and the server's 503 is retried.
        """
        if self.dialect == "sqlite":
            return
        self.engine.dispose()
        self.engine = sa.create_engine(
            self.url, pool_size=threads, max_overflow=threads, pool_use_lifo=True
        )

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reads: one consistent snapshot, no write lock."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    # -- schema ------------------------------------------------------------------

    def revision(self) -> str | None:
        """The schema revision recorded in the database (``None``: no schema yet)."""
        with self.engine.connect() as conn:
            return _revision(conn)

    def ensure_schema(self) -> tuple[str | None, str] | None:
        """Upgrade the schema if it is older than the code's; cheap when it is current.

        Returns (from, to) when it upgraded, ``None`` when the schema was current.
        """
        current = self.revision()
        if current == SCHEMA_REVISION:
            return None
        return self.upgrade(_checked=current)

    def upgrade(self, *, _checked: str | None = "?") -> tuple[str | None, str]:
        """Migrate to the newest revision; returns (from, to). Safe to run concurrently."""
        if _checked not in (None, "?") and _checked not in SCHEMA_REVISIONS:
            raise SchemaMismatch(self.display, _checked, SCHEMA_REVISIONS)
        from modelyard.store import migrations

        with self.write() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            # Someone else may have migrated while we waited for the lock.
            current = _revision(conn, savepoint=True)
            if current is not None and current not in SCHEMA_REVISIONS:
                raise SchemaMismatch(self.display, current, SCHEMA_REVISIONS)
            if current == SCHEMA_REVISION:
                return SCHEMA_REVISION, SCHEMA_REVISION
            logger.info(
                "upgrading the yard schema at %s from %s to %s",
                self.display,
                current or "nothing",
                SCHEMA_REVISION,
            )
            migrations.upgrade(conn)
        return current, SCHEMA_REVISION


def _revision(conn: Connection, *, savepoint: bool = False) -> str | None:
    # A missing table is an error that aborts a PostgreSQL transaction, so the
    # probe runs in a savepoint when inside one.
    query = sa.text("SELECT version_num FROM alembic_version")
    try:
        if savepoint:
            with conn.begin_nested():
                rows = conn.execute(query).all()
        else:
            rows = conn.execute(query).all()
    except sa.exc.DBAPIError:
        if not savepoint:
            conn.rollback()
        return None
    return str(rows[0][0]) if rows else None


def _switch_to_wal(cur: Any) -> None:
    # Switching the journal mode needs the file to itself, and SQLite answers
    # "database is locked" at once instead of calling the busy handler while
    # another connection is creating the same new file; so wait here, as the
    # busy timeout would. WAL is recorded in the file: later opens find it set.
    deadline = time.monotonic() + _SQLITE_TIMEOUT_S
    delay = 0.002
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see module doc)
        cur = dbapi_conn.cursor()
        _switch_to_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA case_sensitive_like=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
