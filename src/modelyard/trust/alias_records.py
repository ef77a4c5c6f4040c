"""Signed alias records: who pointed ``@alias`` at which version, as the n-th move.

An alias is the one mutable pointer a loader follows, so whoever answers
"which version is @champion" decides what runs. A record is a DSSE envelope
(one PAE, like a model's signature) around a small JSON document naming the
yard, model, alias, version, the version's digest and a **sequence**: the
alias's move count, one more than the last. The yard refuses a record that is
not newer than the last it stored; the loader remembers, per yard and alias,
the highest sequence it verified and refuses an older one, so an answer
replayed from the past (a restored database, a cache, a hostile proxy) cannot
roll a scoring host back to a withdrawn version.

>>> record = AliasRecord.now(yard="9f3c", model="fraud", alias="champion",
...                         version=7, digest="sha256:...", sequence=12)
>>> envelope = sign_record(record, key)            # doctest: +SKIP
>>> open_record(envelope.to_json())[0] == record   # doctest: +SKIP
True
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from modelyard.errors import RollbackRefused, SignatureError, SignatureRequired
from modelyard.trust.dsse import Envelope, EnvelopeSignature, strict_json
from modelyard.trust.keys import SigningKey, TrustStore
from modelyard.trust.signing import UnknownSigner, trusted_signers

__all__ = [
    "PAYLOAD_TYPE",
    "RECORD_TYPE",
    "AliasCheck",
    "AliasRecord",
    "SeenSequences",
    "check_resolved",
    "open_record",
    "sign_record",
]

log = logging.getLogger("modelyard")

PAYLOAD_TYPE = "application/vnd.modelyard.alias-record+json"
RECORD_TYPE = "https://modelyard.dev/alias-record/v1"
#: where a machine keeps the highest sequence it verified per yard and alias
SEEN_FILE = "alias-sequences.json"


@dataclass(frozen=True)
class AliasRecord:
    """One signed move of an alias."""

    yard: str
    model: str
    alias: str
    version: int
    digest: str
    sequence: int
    moved_at: str

    def to_payload(self) -> bytes:
        """The signed bytes' JSON document (sorted keys, no spaces)."""
        doc = {"_type": RECORD_TYPE, **asdict(self)}
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes, *, source: str) -> AliasRecord:
        """Parse a record strictly: every field present, of its type, and nothing else."""
        doc = strict_json(payload, source=source)
        expected = {f.name for f in fields(cls)} | {"_type"}
        if not isinstance(doc, dict) or set(doc) != expected:
            got = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
            raise SignatureError(
                f"{source}: an alias record has fields {sorted(expected)}, not {got}"
            )
        if doc["_type"] != RECORD_TYPE:
            raise SignatureError(f"{source}: record type {doc['_type']!r} is not {RECORD_TYPE!r}")
        for name in ("version", "sequence"):
            value = doc[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SignatureError(f"{source}: field {name!r} must be a positive integer")
        for name in ("yard", "model", "alias", "digest", "moved_at"):
            if not isinstance(doc[name], str) or not doc[name]:
                raise SignatureError(f"{source}: field {name!r} must be a non-empty string")
        return cls(**{k: v for k, v in doc.items() if k != "_type"})

    @classmethod
    def now(
        cls, *, yard: str, model: str, alias: str, version: int, digest: str, sequence: int
    ) -> AliasRecord:
        """A record of a move made now."""
        moved_at = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(yard, model, alias, version, digest, sequence, moved_at)

    def mismatch(self, **facts: Any) -> str | None:
        """The first field whose value is not the one given, described; ``None`` if all match."""
        for name, value in facts.items():
            if getattr(self, name) != value:
                return f"names {name} {getattr(self, name)!r}, not {value!r}"
        return None


def sign_record(record: AliasRecord, key: SigningKey) -> Envelope:
    """``record`` in a DSSE envelope signed by ``key``."""
    envelope = Envelope(record.to_payload(), PAYLOAD_TYPE)
    return envelope.with_signature(EnvelopeSignature(key.key_id, key.sign(envelope.signed_bytes())))


def open_record(text: str, *, source: str = "alias record") -> tuple[AliasRecord, Envelope]:
    """Parse an envelope's JSON and the record inside (not yet verified)."""
    envelope = Envelope.from_json(text, source=source)
    if envelope.payload_type != PAYLOAD_TYPE:
        raise SignatureError(
            f"{source}: payload type {envelope.payload_type!r} is not {PAYLOAD_TYPE!r}"
        )
    return AliasRecord.from_payload(envelope.payload, source=source), envelope


def signed_by(envelope: Envelope, store: TrustStore, *, what: str) -> str | None:
    """The label of the first trusted signer (threshold met), or ``None`` if only unknown
    keys signed; a bad, revoked or too-thin signature raises."""
    signers = trusted_signers(envelope, store, source="alias record", where=what)
    if isinstance(signers, UnknownSigner):
        return None
    return f"{signers[0].label} ({signers[0].key_id})"


# -- what a loader checks -----------------------------------------------------------------


@dataclass(frozen=True)
class AliasCheck:
    """The outcome of checking an alias's record on load."""

    state: Literal["verified", "unsigned", "untrusted", "off"]
    sequence: int | None = None
    signer: str | None = None


def check_resolved(
    *,
    yard_id: str | None,
    model: str,
    alias: str,
    version: int,
    digest: str,
    record: str | None,
    verify: str,
    store: TrustStore | None = None,
    seen: SeenSequences | None = None,
) -> AliasCheck:
    """Check the record a yard answered for ``model@alias`` against what it resolved to.

    ``verify="auto"``: a record must match the answer (yard, model, alias, version,
    digest) and, if a trusted key signed it, be no older than the newest this
    machine has seen; an absent record is fine. ``"required"``: a record signed by
    a trusted key must be there. ``"off"``: nothing is checked.
    """
    what = f"@{alias} of {model!r}"
    if verify == "off":
        return AliasCheck("off")
    if record is None or yard_id is None:
        if verify == "required":
            raise SignatureRequired(
                f"{what} points at version {version}, but its move carries no signed record, "
                "and a trusted signature is required"
            )
        return AliasCheck("unsigned")
    parsed, envelope = open_record(record, source=f"the record of {what}")
    wrong = parsed.mismatch(yard=yard_id, model=model, alias=alias, version=version, digest=digest)
    if wrong is not None:
        raise SignatureError(f"the signed record of {what} {wrong}: it is not this move's record")
    signer = signed_by(envelope, store if store is not None else TrustStore.load(), what=what)
    if signer is None:
        if verify == "required":
            raise SignatureRequired(
                f"the record of {what} is signed only by keys this machine does not trust "
                "(trust one with `modelyard keys trust`)"
            )
        return AliasCheck("untrusted", parsed.sequence)
    (seen or SeenSequences()).check_and_remember(
        f"{yard_id}/{model}@{alias}", parsed.sequence, what=f"the record of {what}"
    )
    return AliasCheck("verified", parsed.sequence, signer)


class SeenSequences:
    """The highest verified sequence per yard and alias, in a JSON file under a lock."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None:
            from modelyard._paths import config_home

            path = config_home() / SEEN_FILE
        self.path = path

    def check_and_remember(self, key: str, sequence: int, *, what: str) -> None:
        """Refuse ``sequence`` if an older one than already seen for ``key``; else keep it."""
        from modelyard._locks import file_lock

        with file_lock(self.path.with_name(self.path.name + ".lock")):
            seen = self._read()
            highest = seen.get(key, 0)
            if sequence < highest:
                raise RollbackRefused(what, highest, sequence)
            if sequence > highest:
                seen[key] = sequence
                self._write(seen)

    def highest(self, key: str) -> int:
        """The highest sequence seen for ``key`` (0: none)."""
        return self._read().get(key, 0)

    def _read(self) -> dict[str, int]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # Forgetting what was seen would let a rollback through: refuse instead.
            raise SignatureError(
                f"cannot read {str(self.path)!r}, where alias sequences seen here are kept: {exc}"
            ) from None
        if not isinstance(doc, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in doc.values()
        ):
            raise SignatureError(f"{str(self.path)!r} does not hold alias sequences")
        return {str(k): int(v) for k, v in doc.items()}

    def _write(self, seen: dict[str, int]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(seen, sort_keys=True, indent=1), encoding="utf-8")
        tmp.replace(self.path)
