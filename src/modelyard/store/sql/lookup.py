"""The light path for ``load_model`` on SQLite: one lookup with the standard library.

Resolving ``models:/name@alias`` needs one ``SELECT``; importing SQLAlchemy to
run it would cost a cold process more than everything else the yard does. So
on a SQLite yard the lookup runs through :mod:`sqlite3`, on the same tables,
and only in the case it can answer alone: the database exists, its schema is
the current revision, and the row is there. Anything else returns ``None`` and
the caller goes through the full store, which upgrades an older schema and
explains a miss with close matches. Tests check both paths give the same answer.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote, unquote

from modelyard.store.entities import ResolvedVersion
from modelyard.store.sql.revision import SCHEMA_REVISION

__all__ = ["lookup", "sqlite_file"]

_BASE = (
    "SELECT m.name, v.version, v.digest, v.run_id, {record} "
    "FROM registered_models AS m JOIN model_versions AS v ON v.model_id = m.model_id "
)
# an alias's answer carries its signed record and the yard's id (alias_records)
_BY_ALIAS = (
    _BASE.format(record="r.record, ys.value")
    + "JOIN model_aliases AS a ON a.model_id = v.model_id AND a.version = v.version "
    "LEFT JOIN alias_records AS r ON r.model_name = m.name AND r.alias = a.alias "
    "LEFT JOIN yard_settings AS ys ON ys.name = 'yard_id' AND r.record IS NOT NULL "
    "WHERE m.name = ? AND a.alias = ?"
)
_NO_RECORD = _BASE.format(record="NULL, NULL")
_BY_VERSION = _NO_RECORD + "WHERE m.name = ? AND v.version = ?"
_LATEST = _NO_RECORD + "WHERE m.name = ? ORDER BY v.version DESC LIMIT 1"
_TIMEOUT_S = 60.0


def sqlite_file(database_url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL, or ``None`` for anything else."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = unquote(database_url[len(prefix) :].split("?", 1)[0])
    return Path(path) if path and path != ":memory:" else None


def lookup(
    db_file: Path, name: str, *, version: int | None = None, alias: str | None = None
) -> ResolvedVersion | None:
    """What ``name`` + ``version``/``alias``/latest points at, or ``None`` (ask the store)."""
    if not db_file.is_file():
        return None
    params: tuple[object, ...]
    if alias is not None:
        query, params = _BY_ALIAS, (name, alias)
    elif version is not None:
        query, params = _BY_VERSION, (name, version)
    else:
        query, params = _LATEST, (name,)
    try:
        # mode=rw: never create a database file on a read.
        con = sqlite3.connect(f"file:{quote(str(db_file))}?mode=rw", uri=True, timeout=_TIMEOUT_S)
    except sqlite3.Error:
        return None
    try:
        revision = con.execute("SELECT version_num FROM alembic_version").fetchone()
        if revision is None or revision[0] != SCHEMA_REVISION:
            return None
        row = con.execute(query, params).fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    if row is None:
        return None
    return ResolvedVersion(str(row[0]), int(row[1]), str(row[2]), row[3], row[4], row[5])
