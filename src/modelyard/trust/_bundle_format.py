"""The model-signing v1.0 bundle file, read strictly and written as model-signing writes it.

Layers (model-signing 1.1.1, ``_signing/sign_sigstore_pb.py``, ``sign_ec_key.py``,
``sign_certificate.py``, ``signing.py``)::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {
         "publicKey": {"hint": <hex sha256 of the PEM key>}
           | "x509CertificateChain": {"certificates": [{"rawBytes": <b64 DER>}, ...]},
         "tlogEntries": []},
     "dsseEnvelope": {"payload": b64, "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": b64 DER ECDSA, "keyid": ""}]}}

The payload is an in-toto Statement v1 with predicate type
``https://model_signing/signature/v1.0``: one subject (the directory's name and
``sha256`` over the concatenated raw digests of the resources, in their listed
order) and a predicate ``{"serialization": {"method": "files", "hash_type":
"sha256", "allow_symlinks": ..., "ignore_paths": [...]}, "resources": [{"name",
"algorithm", "digest"}]}``.

Only that form is read: no legacy v0.2 predicate, no shards, no blake hashes,
no transparency-log entries (modelyard does not check them, so a bundle that
relies on them is refused rather than half-verified). A field that is not
known, a duplicated JSON key or a non-canonical base64 value is a
:class:`SignatureError` naming it; other fields of the predicate are ignored,
as its v1.0 definition asks of verifiers.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509

from modelyard.errors import SignatureError
from modelyard.trust._bundle_files import is_safe_name
from modelyard.trust.dsse import (
    Envelope,
    EnvelopeSignature,
    b64,
    exact_fields,
    strict_json,
    unb64,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "LEGACY_PREDICATE_TYPE",
    "PREDICATE_TYPE",
    "BundleResource",
    "ModelSigningBundle",
    "bundle_json",
    "pae_envelope",
    "parse_bundle",
    "root_digest",
    "statement_payload",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
#: model-signing 0.2's predicate, which its verifier still takes (unchecked file set)
LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"
_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MATERIAL_FIELDS = frozenset({"publicKey", "x509CertificateChain", "tlogEntries"})
_SERIALIZATION_FIELDS = frozenset({"method", "hash_type", "allow_symlinks", "ignore_paths"})


@dataclass(frozen=True)
class BundleResource:
    """One file a bundle covers: its relative POSIX path and hex sha256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class ModelSigningBundle:
    """A model-signing v1.0 bundle as :func:`parse_bundle` read it; nothing is verified yet.

    ``method`` is ``"key"`` (``key_hint`` may name the key) or
    ``"certificate"`` (``certificates``: the signing certificate, then the
    rest of the chain the signer included).
    """

    source: str
    envelope: Envelope
    model_name: str
    root_digest: str
    resources: tuple[BundleResource, ...]
    ignore_paths: tuple[str, ...]
    allow_symlinks: bool
    key_hint: str | None = None
    certificates: tuple[x509.Certificate, ...] = ()

    @property
    def method(self) -> Literal["key", "certificate"]:
        """How the signer is identified: a bare key, or a certificate chain."""
        return "certificate" if self.certificates else "key"

    @property
    def signature(self) -> bytes:
        """The one DER ECDSA signature over the envelope's PAE."""
        return self.envelope.signatures[0].sig


def root_digest(resources: tuple[BundleResource, ...] | list[BundleResource]) -> str:
    """model-signing's subject digest: hex sha256 over the raw digests, in order.

    Names are not in it (the anchor notes a rename keeps it), but they are in
    the signed statement, and the verifier compares every name.
    """
    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r.sha256))
    return h.hexdigest()


def statement_payload(
    model_name: str, resources: list[BundleResource], ignore_paths: list[str]
) -> bytes:
    """The in-toto statement of a v1.0 bundle over ``resources`` (kept in their order)."""
    statement = {
        "_type": _STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root_digest(resources)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": ignore_paths,
            },
            "resources": [
                {"name": r.name, "algorithm": "sha256", "digest": r.sha256} for r in resources
            ],
        },
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def bundle_json(payload: bytes, signature: bytes, material: dict[str, Any]) -> str:
    """The bundle file's text, in the field layout model-signing writes."""
    doc = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {**material, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": b64(payload),
            "payloadType": _PAYLOAD_TYPE,
            "signatures": [{"sig": b64(signature), "keyid": ""}],
        },
    }
    return json.dumps(doc, indent=2) + "\n"


def pae_envelope(payload: bytes, signature: bytes = b"") -> Envelope:
    """An envelope of the in-toto payload type, for its PAE (keyid is empty, as theirs)."""
    signatures = (EnvelopeSignature("", signature),) if signature else ()
    return Envelope(payload, _PAYLOAD_TYPE, signatures)


def parse_bundle(data: bytes, *, source: str) -> ModelSigningBundle:
    """Parse a bundle file's bytes strictly (module docstring); no signature is checked."""
    doc = _object(strict_json(data, source=source), source, "the bundle")
    exact_fields(
        doc, frozenset({"mediaType", "verificationMaterial", "dsseEnvelope"}), source, "bundle"
    )
    if doc["mediaType"] != BUNDLE_MEDIA_TYPE:
        raise SignatureError(
            f"{source}: mediaType {doc['mediaType']!r} is not {BUNDLE_MEDIA_TYPE!r}"
        )
    hint, certificates = _material(doc["verificationMaterial"], source)
    envelope = _envelope(doc["dsseEnvelope"], source)
    statement = _object(
        strict_json(envelope.payload, source=f"{source} payload"), source, "the statement"
    )
    exact_fields(
        statement,
        frozenset({"_type", "subject", "predicateType", "predicate"}),
        source,
        "statement",
    )
    if statement["_type"] != _STATEMENT_TYPE:
        raise SignatureError(
            f"{source}: statement _type {statement['_type']!r} is not {_STATEMENT_TYPE!r}"
        )
    if statement["predicateType"] == LEGACY_PREDICATE_TYPE:
        raise SignatureError(
            f"{source}: predicateType {LEGACY_PREDICATE_TYPE!r} is model-signing's legacy v0.2 "
            "format, which does not fix the set of files; re-sign with model-signing>=1.0"
        )
    if statement["predicateType"] != PREDICATE_TYPE:
        raise SignatureError(
            f"{source}: predicateType {statement['predicateType']!r} is not {PREDICATE_TYPE!r}"
        )
    name, digest = _subject(statement["subject"], source)
    predicate = _object(statement["predicate"], source, "field 'predicate'")
    for needed in ("serialization", "resources"):
        if needed not in predicate:
            raise SignatureError(f"{source}: predicate lacks field {needed!r}")
    ignore_paths, allow_symlinks = _serialization(predicate["serialization"], source)
    resources = _resources(predicate["resources"], source)
    if root_digest(resources) != digest:
        raise SignatureError(
            f"{source}: the statement is inconsistent: its subject digest is not the digest of "
            "its resources"
        )
    return ModelSigningBundle(
        source, envelope, name, digest, resources, ignore_paths, allow_symlinks, hint, certificates
    )


def _material(raw: Any, source: str) -> tuple[str | None, tuple[x509.Certificate, ...]]:
    material = _object(raw, source, "field 'verificationMaterial'")
    for name in sorted(material.keys() - _MATERIAL_FIELDS):
        raise SignatureError(f"{source}: verificationMaterial has unknown field {name!r}")
    if material.get("tlogEntries", []) != []:
        raise SignatureError(
            f"{source}: the bundle carries transparency-log entries, which modelyard does not "
            "verify (keyless Sigstore bundles are not supported; use the key or certificate method)"
        )
    kinds = [k for k in ("publicKey", "x509CertificateChain") if k in material]
    if len(kinds) != 1:
        raise SignatureError(
            f"{source}: verificationMaterial must hold exactly one of 'publicKey' and "
            "'x509CertificateChain'"
        )
    if kinds[0] == "publicKey":
        key = _object(material["publicKey"], source, "field 'publicKey'")
        exact_fields(key, frozenset({"hint"}) & key.keys(), source, "publicKey")
        hint = key.get("hint")
        if hint is not None and (not isinstance(hint, str) or not _HEX64.match(hint)):
            raise SignatureError(f"{source}: field 'publicKey.hint' must be 64 hex digits")
        return hint, ()
    chain = _object(material["x509CertificateChain"], source, "field 'x509CertificateChain'")
    exact_fields(chain, frozenset({"certificates"}), source, "x509CertificateChain")
    items = chain["certificates"]
    if not isinstance(items, list) or not items:
        raise SignatureError(
            f"{source}: field 'x509CertificateChain.certificates' must be a non-empty list"
        )
    certificates = []
    for i, item in enumerate(items):
        where = f"x509CertificateChain.certificates[{i}]"
        entry = _object(item, source, f"field {where!r}")
        exact_fields(entry, frozenset({"rawBytes"}), source, where)
        try:
            certificates.append(
                x509.load_der_x509_certificate(unb64(entry["rawBytes"], source, where))
            )
        except ValueError:
            raise SignatureError(
                f"{source}: field '{where}.rawBytes' is not a DER certificate"
            ) from None
    return None, tuple(certificates)


def _envelope(raw: Any, source: str) -> Envelope:
    doc = _object(raw, source, "field 'dsseEnvelope'")
    exact_fields(doc, frozenset({"payload", "payloadType", "signatures"}), source, "dsseEnvelope")
    if doc["payloadType"] != _PAYLOAD_TYPE:
        raise SignatureError(
            f"{source}: payloadType {doc['payloadType']!r} is not {_PAYLOAD_TYPE!r}"
        )
    signatures = doc["signatures"]
    # model-signing writes and checks exactly one; a second would go unchecked by it.
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise SignatureError(f"{source}: dsseEnvelope must hold exactly one signature")
    sig = _object(signatures[0], source, "field 'signatures[0]'")
    exact_fields(
        sig, frozenset({"sig"}) | (frozenset({"keyid"}) & sig.keys()), source, "signatures[0]"
    )
    keyid = sig.get("keyid", "")
    if not isinstance(keyid, str):
        raise SignatureError(f"{source}: field 'signatures[0].keyid' must be a string")
    payload = unb64(doc["payload"], source, "payload")
    return Envelope(
        payload, _PAYLOAD_TYPE, (EnvelopeSignature(keyid, unb64(sig["sig"], source, "sig")),)
    )


def _subject(raw: Any, source: str) -> tuple[str, str]:
    if not isinstance(raw, list) or len(raw) != 1:
        raise SignatureError(f"{source}: field 'subject' must hold exactly one subject")
    subject = _object(raw[0], source, "field 'subject[0]'")
    exact_fields(subject, frozenset({"name", "digest"}), source, "subject[0]")
    digest = _object(subject["digest"], source, "field 'subject[0].digest'")
    exact_fields(digest, frozenset({"sha256"}), source, "subject[0].digest")
    if not isinstance(subject["name"], str):
        raise SignatureError(f"{source}: field 'subject[0].name' must be a string")
    if not isinstance(digest["sha256"], str) or not _HEX64.match(digest["sha256"]):
        raise SignatureError(f"{source}: field 'subject[0].digest.sha256' must be 64 hex digits")
    return subject["name"], digest["sha256"]


def _serialization(raw: Any, source: str) -> tuple[tuple[str, ...], bool]:
    doc = _object(raw, source, "field 'predicate.serialization'")
    for name in sorted(doc.keys() - _SERIALIZATION_FIELDS):
        raise SignatureError(f"{source}: predicate.serialization has unknown field {name!r}")
    if doc.get("method") != "files":
        raise SignatureError(
            f"{source}: serialization method {doc.get('method')!r} is not supported "
            "(modelyard verifies 'files' only; sign without shards)"
        )
    if doc.get("hash_type") != "sha256":
        raise SignatureError(
            f"{source}: hash_type {doc.get('hash_type')!r} is not supported (sha256 only)"
        )
    allow = doc.get("allow_symlinks", False)
    paths = doc.get("ignore_paths", [])
    if not isinstance(allow, bool):
        raise SignatureError(f"{source}: field 'serialization.allow_symlinks' must be a boolean")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise SignatureError(
            f"{source}: field 'serialization.ignore_paths' must be a list of strings"
        )
    return tuple(paths), allow


def _resources(raw: Any, source: str) -> tuple[BundleResource, ...]:
    if not isinstance(raw, list):
        raise SignatureError(f"{source}: field 'predicate.resources' must be a list")
    seen: set[str] = set()
    out: list[BundleResource] = []
    for i, item in enumerate(raw):
        where = f"predicate.resources[{i}]"
        entry = _object(item, source, f"field {where!r}")
        exact_fields(entry, frozenset({"name", "algorithm", "digest"}), source, where)
        name, algorithm, digest = entry["name"], entry["algorithm"], entry["digest"]
        if not isinstance(name, str) or not is_safe_name(name):
            raise SignatureError(f"{source}: field '{where}.name' is not a canonical relative path")
        if algorithm != "sha256":
            raise SignatureError(
                f"{source}: field '{where}.algorithm' {algorithm!r} is not 'sha256'"
            )
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise SignatureError(f"{source}: field '{where}.digest' must be 64 hex digits")
        if name in seen:
            raise SignatureError(f"{source}: the resources name {name!r} twice")
        seen.add(name)
        out.append(BundleResource(name, digest))
    return tuple(out)


def _object(value: Any, source: str, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SignatureError(f"{source}: {what} must be a JSON object")
    return value
