"""Alias records in SQL: each alias's move sequence and the signed record of its last move.

The registry's alias writes call :func:`record_move` and :func:`record_removal`
inside their transaction, after the model row is locked, so moves of one model
are ordered and every move takes the next sequence. Rows are keyed by model name
and never deleted: a sequence outlives its alias and its model, so a record
from before a deletion can never be newer than what follows it.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.errors import SignatureError, SignatureRequired, StaleAliasRecord, UntrustedKey
from modelyard.store.entities import AliasSequence
from modelyard.store.sql._sql import insert_ignore, upsert
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import alias_records, model_aliases, model_versions, yard_settings
from modelyard.store.sql.signing import required_policy

__all__ = [
    "AliasRecordQueries",
    "carry_over",
    "ensure_yard_id",
    "record_move",
    "record_removal",
    "stored_yard_id",
]

_R = alias_records.c
_YARD_ID = "yard_id"


def stored_yard_id(conn: Connection) -> str | None:
    """The yard's own id (made by migration 0006)."""
    value = conn.execute(
        sa.select(yard_settings.c.value).where(yard_settings.c.name == _YARD_ID)
    ).scalar()
    return str(value) if value is not None else None


def ensure_yard_id(conn: Connection) -> str:
    """The yard's id, made now if it has none (a yard emptied by hand, or restored)."""
    insert_ignore(conn, yard_settings, {"name": _YARD_ID, "value": uuid.uuid4().hex}, ["name"])
    made = stored_yard_id(conn)
    assert made is not None
    return made


def _sequence(conn: Connection, name: str, alias: str) -> int:
    value = conn.execute(
        sa.select(_R.sequence).where(_R.model_name == name, _R.alias == alias)
    ).scalar()
    return int(value or 0)


def _store(conn: Connection, name: str, alias: str, sequence: int, record: str | None) -> None:
    upsert(
        conn,
        alias_records,
        [{"model_name": name, "alias": alias, "sequence": sequence, "record": record}],
        ["model_name", "alias"],
        ["sequence", "record"],
    )


def record_move(
    conn: Connection, model_id: int, name: str, alias: str, version: int, *, record: str | None
) -> None:
    """Check and keep the record of moving ``alias`` to ``version``; refuse before any write.

    An unsigned move is allowed unless the model requires signatures; it takes the
    next sequence and clears the last record. A signed one must name this yard,
    model, alias, version and its digest, with a sequence above the last; where
    signatures are required, keys the yard trusts must have signed it.
    """
    what = f"moving @{alias} of {name!r} to version {version}"
    policy = required_policy(conn, model_id)
    stored = _sequence(conn, name, alias)
    if record is None:
        if policy is not None:
            raise SignatureRequired(
                f"{what}: {name!r} requires signatures, so an alias move must be a signed "
                "record (modelyard's set_alias signs it with your key)"
            )
        _store(conn, name, alias, stored + 1, None)
        return
    from modelyard.trust.alias_records import open_record, signed_by

    parsed, envelope = open_record(record, source=f"the record {what}")
    digest = conn.execute(
        sa.select(model_versions.c.digest).where(
            model_versions.c.model_id == model_id, model_versions.c.version == version
        )
    ).scalar()
    wrong = parsed.mismatch(
        yard=stored_yard_id(conn), model=name, alias=alias, version=version, digest=digest
    )
    if wrong is not None:
        raise SignatureError(f"the record {what} {wrong}")
    if parsed.sequence <= stored:
        raise StaleAliasRecord(
            f"the record {what} has sequence {parsed.sequence}, but the alias's last move "
            f"was {stored}: a record is used once (sign a new move)"
        )
    if policy is not None and signed_by(envelope, policy.trust, what=what) is None:
        first = envelope.signatures[0].keyid if envelope.signatures else "(none)"
        raise UntrustedKey(first, f"is not a key this yard accepts ({what})")
    _store(conn, name, alias, parsed.sequence, record)


def record_removal(conn: Connection, name: str, alias: str) -> None:
    """An alias was deleted: its sequence moves on, its record is gone."""
    _store(conn, name, alias, _sequence(conn, name, alias) + 1, None)


def carry_over(conn: Connection, model_id: int, old: str, new: str) -> None:
    """After a rename, the model's aliases continue under ``new`` past either name's count.

    Records name the old model, so none is carried: the next move signs one again.
    """
    aliases = conn.execute(
        sa.select(model_aliases.c.alias).where(model_aliases.c.model_id == model_id)
    ).scalars()
    for alias in aliases:
        after = max(_sequence(conn, old, alias), _sequence(conn, new, alias)) + 1
        _store(conn, new, alias, after, None)


class AliasRecordQueries:
    """What a client needs to sign the next move of an alias."""

    db: Database

    def alias_sequence(self, name: str, alias: str) -> AliasSequence:
        """The yard's id and the sequence of the last move of ``name@alias`` (0: none)."""
        with self.db.read() as conn:
            found = AliasSequence(stored_yard_id(conn), _sequence(conn, name, alias))
        if found.yard_id is not None:
            return found
        with self.db.write() as conn:
            return AliasSequence(ensure_yard_id(conn), _sequence(conn, name, alias))
