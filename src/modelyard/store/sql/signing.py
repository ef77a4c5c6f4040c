"""The yard's signing policy in SQL, and the check registry writes run inside their transaction.

The policy document (``require``, trusted keys, revocations, threshold) is the
``signing`` row of ``yard_settings``; models that require signatures on their
own are rows of ``signed_models``. :func:`check_version` and
:func:`check_alias_target` are called by the registry's writes with their open
connection, after the model row is locked and before anything is written, so a
refusal leaves the yard as it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.errors import RegisteredModelNotFound
from modelyard.format.content import FileEntry
from modelyard.store.signatures import VERSION_TAG
from modelyard.store.sql._sql import insert_ignore, upsert
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import (
    registered_models,
    signed_models,
    version_files,
    version_tags,
    yard_settings,
)

if TYPE_CHECKING:  # the trust modules (and cryptography) load only when a policy is set
    from modelyard.trust.admission import SigningPolicy

__all__ = [
    "SigningQueries",
    "check_alias_target",
    "check_tag_change",
    "check_version",
    "required_policy",
]

_SETTING = "signing"
_M = registered_models.c
_S = signed_models.c


def _policy(conn: Connection, text: str | None = None) -> SigningPolicy:
    from modelyard.trust.admission import SigningPolicy

    models = conn.execute(
        sa.select(_M.name).join_from(signed_models, registered_models, _S.model_id == _M.model_id)
    ).scalars()
    return SigningPolicy.from_json(text or _setting(conn), models=sorted(models))


def _setting(conn: Connection) -> str | None:
    value = conn.execute(
        sa.select(yard_settings.c.value).where(yard_settings.c.name == _SETTING)
    ).scalar()
    return str(value) if value is not None else None


def required_policy(conn: Connection, model_id: int) -> SigningPolicy | None:
    """The policy when versions of ``model_id`` must be signed, else ``None``; a yard
    with no policy at all answers with two indexed lookups and imports nothing."""
    text = _setting(conn)
    listed = conn.execute(sa.select(_S.model_id).where(_S.model_id == model_id)).first()
    if text is None and listed is None:
        return None
    from modelyard.trust.admission import SigningPolicy

    policy = SigningPolicy.from_json(text)
    return policy if (policy.require or listed is not None) else None


def _files(conn: Connection, model_id: int, version: int) -> list[FileEntry]:
    f = version_files.c
    rows = conn.execute(
        sa.select(f.path, f.size, f.sha256)
        .where(f.model_id == model_id, f.version == version)
        .order_by(f.path)
    )
    return [FileEntry(r.path, int(r.size), r.sha256) for r in rows]


def check_version(
    conn: Connection,
    model_id: int,
    name: str,
    version: int,
    *,
    tags: Mapping[str, str] | None,
    files: Sequence[FileEntry] | None,
) -> None:
    """Refuse a new version of a model that requires signatures unless it is signed so."""
    policy = required_policy(conn, model_id)
    if policy is not None:
        from modelyard.trust.admission import admit_signed

        admit_signed(
            policy,
            name=name,
            what=f"version {version} of {name!r}",
            files=files,
            pointer=(tags or {}).get(VERSION_TAG),
        )


def check_alias_target(
    conn: Connection, model_id: int, name: str, alias: str, version: int
) -> None:
    """Refuse to point ``alias`` at a version that is not signed as the policy requires."""
    t = version_tags.c
    pointer = conn.execute(
        sa.select(t.value).where(t.model_id == model_id, t.version == version, t.key == VERSION_TAG)
    ).scalar()
    what = f"moving @{alias} of {name!r} to version {version}"
    _admit_stored(conn, model_id, name, version, what=what, pointer=pointer)


def check_tag_change(
    conn: Connection, model_id: int, name: str, version: int, *, key: str, value: str | None
) -> None:
    """A version's signature tag may not be removed or replaced by one that does not hold."""
    if key == VERSION_TAG:
        what = f"the signature of version {version} of {name!r}"
        _admit_stored(conn, model_id, name, version, what=what, pointer=value)


def _admit_stored(
    conn: Connection, model_id: int, name: str, version: int, *, what: str, pointer: str | None
) -> None:
    """Check a stored version's files against ``pointer`` when the policy requires it."""
    policy = required_policy(conn, model_id)
    if policy is None:
        return
    from modelyard.trust.admission import admit_signed

    admit_signed(
        policy, name=name, what=what, files=_files(conn, model_id, version), pointer=pointer
    )


class SigningQueries:
    """Reading and changing the yard's signing policy (admins only, on a server)."""

    db: Database

    def get_signing_policy(self) -> SigningPolicy:
        """The yard's policy: whether signatures are required, for which models, by whom."""
        with self.db.read() as conn:
            return _policy(conn)

    def set_signing_policy(self, policy: SigningPolicy) -> SigningPolicy:
        """Replace the yard-wide part (``require`` and the keys); ``models`` are kept, and
        so is every revocation already stored."""
        from modelyard.trust.admission import SigningPolicy

        with self.db.write() as conn:
            # Revocation is for good: an edit made from an older read (a concurrent
            # trust_signer, a stale client) cannot bring a revoked key back.
            stored = SigningPolicy.from_json(_setting(conn))
            for key_id in stored.trust.revoked - policy.trust.revoked:
                policy = policy.revoking(key_id)
            text = policy.to_json()
            SigningPolicy.from_json(text)  # what is stored always parses
            upsert(conn, yard_settings, [{"name": _SETTING, "value": text}], ["name"], ["value"])
            return _policy(conn, text)

    def require_model_signatures(self, name: str, required: bool = True) -> bool:
        """Make versions of ``name`` require signatures (or not); whether anything changed."""
        with self.db.write() as conn:
            model_id = conn.execute(sa.select(_M.model_id).where(_M.name == name)).scalar()
            if model_id is None:
                raise RegisteredModelNotFound(name)
            if required:
                return bool(
                    insert_ignore(conn, signed_models, {"model_id": model_id}, ["model_id"])
                )
            done = conn.execute(sa.delete(signed_models).where(_S.model_id == model_id))
            return bool(done.rowcount)
