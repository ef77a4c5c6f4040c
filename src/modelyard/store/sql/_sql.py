"""Small SQL helpers shared by the store's queries: upserts and filter translation."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from modelyard.store._suggest import close_matches
from modelyard.store.filters import Condition

__all__ = ["close_matches", "compare", "insert_ignore", "key_values", "upsert"]


def _insert(conn: Connection, table: sa.Table) -> Any:
    # Both dialects spell ON CONFLICT the same way; only the construct's module differs.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def upsert(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows``; on a key conflict update the ``update`` columns (one statement)."""
    if not rows:
        return
    stmt = _insert(conn, table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: getattr(stmt.excluded, c) for c in update}
    )
    conn.execute(stmt, list(rows))


def insert_ignore(
    conn: Connection, table: sa.Table, row: Mapping[str, Any], keys: Sequence[str]
) -> int:
    """Insert ``row`` unless its key exists; the number of rows inserted (0 or 1)."""
    stmt = (
        _insert(conn, table)
        .values(**row)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(table.c[keys[0]])
    )
    # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
    return len(conn.execute(stmt).all())


def compare(column: Any, cond: Condition) -> ColumnElement[bool]:
    """``column <op> value`` for a parsed :class:`Condition`."""
    value = cond.value
    op = cond.op
    if op == "=":
        return column == value  # type: ignore[no-any-return]
    if op == "!=":
        return column != value  # type: ignore[no-any-return]
    if op == "<":
        return column < value  # type: ignore[no-any-return]
    if op == "<=":
        return column <= value  # type: ignore[no-any-return]
    if op == ">":
        return column > value  # type: ignore[no-any-return]
    if op == ">=":
        return column >= value  # type: ignore[no-any-return]
    if op == "LIKE":
        return column.like(value)  # type: ignore[no-any-return]
    if op == "ILIKE":
        return column.ilike(value)  # type: ignore[no-any-return]
    if op == "IN":
        return column.in_(list(value if isinstance(value, tuple) else (value,)))  # type: ignore[no-any-return]
    if op == "NOT IN":
        return column.not_in(list(value if isinstance(value, tuple) else (value,)))  # type: ignore[no-any-return]
    raise ValueError(f"unknown operator {op!r}")  # pragma: no cover - the parser checks


def keyed_exists(
    table: sa.Table, owner: Callable[[sa.Table], ColumnElement[bool]], cond: Condition
) -> ColumnElement[bool]:
    """``EXISTS`` a row of a key/value ``table`` (params, tags) satisfying ``cond``."""
    return sa.exists().where(owner(table), table.c.key == cond.key, compare(table.c.value, cond))


def key_values(
    conn: Connection, table: sa.Table, owner: str, ids: Sequence[Hashable]
) -> defaultdict[Any, dict[str, str]]:
    """The ``key -> value`` rows of ``table`` (params, tags) for each owner id in ``ids``.

    One query for a whole page of owners; an owner without rows maps to ``{}``.
    """
    out: defaultdict[Any, dict[str, str]] = defaultdict(dict)
    column = table.c[owner]
    for r in conn.execute(sa.select(column, table.c.key, table.c.value).where(column.in_(ids))):
        out[r[0]][r.key] = r.value
    return out
