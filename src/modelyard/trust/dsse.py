"""DSSE envelopes: a payload, its type, and signatures over both.

The protocol is secure-systems-lab/dsse v1 (``protocol.md``). A signature is
made over the *pre-authentication encoding*::

    PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body

where ``LEN`` is the byte length in ASCII decimal with no leading zeros and
``SP`` one space. Only this encoding is signed and verified: there is no
second, "compatible" form (model-signing still accepts one, a downgrade path).

The JSON form is read strictly: exactly the fields ``payload``,
``payloadType`` and ``signatures`` (each ``{"keyid", "sig"}``), standard
base64, no duplicate keys. Anything else is a :class:`SignatureError` naming
the field, so a crafted envelope never reaches a verifier half-understood.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from typing import Any

from modelyard.errors import SignatureError

__all__ = ["Envelope", "EnvelopeSignature", "b64", "exact_fields", "pae", "strict_json", "unb64"]

_ENVELOPE_FIELDS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_FIELDS = frozenset({"keyid", "sig"})


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True)
class EnvelopeSignature:
    """One signature in an envelope: the signer's key id and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class Envelope:
    """A DSSE envelope: ``payload`` (raw bytes), ``payload_type`` and its signatures."""

    payload: bytes
    payload_type: str
    signatures: tuple[EnvelopeSignature, ...] = ()

    def signed_bytes(self) -> bytes:
        """What every signature of this envelope is made over (the PAE)."""
        return pae(self.payload_type, self.payload)

    def with_signature(self, signature: EnvelopeSignature) -> Envelope:
        """This envelope with ``signature`` added; one by the same key id is replaced.

        Replacing keeps a re-signed model from piling up signatures of one key,
        which a threshold must count once anyway.
        """
        kept = tuple(s for s in self.signatures if s.keyid != signature.keyid)
        return replace(self, signatures=(*kept, signature))

    def to_json(self) -> str:
        """The standard JSON form (base64 payload and signatures), one line, newline-terminated."""
        doc = {
            "payload": b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": b64(s.sig)} for s in self.signatures],
        }
        return json.dumps(doc, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "envelope") -> Envelope:
        """Parse the JSON form strictly; any deviation is a :class:`SignatureError`.

        ``source`` names where the text came from in error messages.
        """
        doc = strict_json(text, source=source)
        if not isinstance(doc, dict):
            raise SignatureError(f"{source}: a DSSE envelope must be a JSON object")
        exact_fields(doc, _ENVELOPE_FIELDS, source, "envelope")
        payload_type = doc["payloadType"]
        if not isinstance(payload_type, str):
            raise SignatureError(f"{source}: field 'payloadType' must be a string")
        payload = unb64(doc["payload"], source, "payload")
        raw_sigs = doc["signatures"]
        if not isinstance(raw_sigs, list):
            raise SignatureError(f"{source}: field 'signatures' must be a list")
        return cls(
            payload, payload_type, tuple(_signature(s, source, i) for i, s in enumerate(raw_sigs))
        )


def strict_json(text: str | bytes, *, source: str) -> Any:
    """``json.loads`` that refuses duplicate object keys and non-finite numbers.

    Two parsers that keep different copies of a duplicated key would see two
    different documents behind one signature.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise SignatureError(f"{source}: duplicate JSON key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise SignatureError(f"{source}: {name} is not valid JSON")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except SignatureError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(f"{source}: not valid JSON ({exc})") from None


def _signature(raw: Any, source: str, index: int) -> EnvelopeSignature:
    where = f"signatures[{index}]"
    if not isinstance(raw, dict):
        raise SignatureError(f"{source}: {where} must be an object")
    exact_fields(raw, _SIGNATURE_FIELDS, source, where)
    keyid = raw["keyid"]
    if not isinstance(keyid, str) or not keyid:
        raise SignatureError(f"{source}: field '{where}.keyid' must be a non-empty string")
    return EnvelopeSignature(keyid, unb64(raw["sig"], source, f"{where}.sig"))


def exact_fields(doc: dict[str, Any], expected: frozenset[str], source: str, what: str) -> None:
    """Refuse a JSON object whose fields are not exactly ``expected``, naming the first."""
    for name in sorted(expected - doc.keys()):
        raise SignatureError(f"{source}: {what} lacks field {name!r}")
    for name in sorted(doc.keys() - expected):
        raise SignatureError(f"{source}: {what} has unknown field {name!r}")


def b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")


def unb64(value: Any, source: str, field: str) -> bytes:
    """Decode canonical standard base64 (one spelling per byte string), or refuse it."""
    # Standard alphabet with padding only: one spelling per byte string.
    if not isinstance(value, str):
        raise SignatureError(f"{source}: field {field!r} must be a base64 string")
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SignatureError(f"{source}: field {field!r} is not valid base64") from None
    if b64(data) != value:
        raise SignatureError(f"{source}: field {field!r} is not canonical base64")
    return data
