"""Signatures over a model's content manifest, and the check a load runs.

A signature is a DSSE envelope (:mod:`modelyard.trust.dsse`) in the model
directory's ``MANIFEST.sig``. Its payload is an in-toto Statement v1::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "<registered name or 'model'>",
                  "digest": {"sha256": "<hex of the manifest digest>"}}],
     "predicateType": "https://modelyard.dev/signature/v1",
     "predicate": {"manifest": [{"path": ..., "size": ..., "sha256": ...}, ...],
                   "created_at": "<ISO 8601 UTC>", "signer": "<label>",
                   "name": "<registered name or null>"}}

The subject digest is the model's digest (``sha256:`` + sha256 of the
``MANIFEST.sha256`` text), which covers every path, size and content hash, so
renaming a file changes it, even that of a one-file model. The whole file list
is in the predicate too, which turns a failed check into a named file
("``model.pkl`` is not covered by the signature") and makes a signature copied
from another model fail by the file that differs. Exactly one payload type,
statement type and predicate type are accepted: no legacy forms.

Verification is all-or-nothing. Only regular files may be in a signed model:
a symlink, a hard link, a FIFO or a device is refused, and so are two paths
that are equal after NFC normalisation or case folding (one of them would
shadow the other on some file systems). Every file must be listed; the only
files exempt are ``MANIFEST.sha256``, ``MANIFEST.sig`` and MLflow's
``registered_model_meta`` at the top.

Bytecode caches: the content manifest leaves ``__pycache__`` folders out
(Python writes them next to ``code/`` it imports), but Python would import an
unsigned ``.pyc`` there in place of its signed source. A signature check
therefore removes every ``__pycache__`` folder of the model before it
verifies (``remove_bytecode=True``, the default: Python rebuilds them from
the signed sources), or refuses the model if one holds anything
(``remove_bytecode=False``, or when removing fails, e.g. on a read-only copy).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import shutil
import stat
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modelyard.errors import (
    SignatureError,
    SignatureRequired,
    TamperedModel,
    UntrustedKey,
)
from modelyard.format.content import (
    IGNORED_DIRS,
    IGNORED_NAMES,
    MANIFEST_FILE,
    SIGNATURE_FILE,
    ContentManifest,
    FileEntry,
)
from modelyard.trust._names import first_difference, fold, is_safe_name
from modelyard.trust.dsse import Envelope, EnvelopeSignature, strict_json
from modelyard.trust.keys import Algorithm, SigningKey, TrustedKey, TrustStore

__all__ = [
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIGNATURE_FILE",
    "STATEMENT_TYPE",
    "SignatureStatus",
    "UnknownSigner",
    "Verified",
    "VerifyMode",
    "check_signature",
    "read_signature_file",
    "sign_directory",
    "sign_manifest",
    "trusted_signers",
    "verify_directory",
    "verify_envelope",
]

logger = logging.getLogger("modelyard")

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelyard.dev/signature/v1"

VerifyMode = Literal["auto", "required", "off"]
_MODES: tuple[VerifyMode, ...] = ("auto", "required", "off")
_STATEMENT_FIELDS = frozenset({"_type", "subject", "predicateType", "predicate"})
_PREDICATE_FIELDS = frozenset({"manifest", "created_at", "signer", "name"})
_ENTRY_FIELDS = frozenset({"path", "size", "sha256"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Verified:
    """A signature that verified: by which trusted key, over which digest, when."""

    key_id: str
    label: str
    algorithm: Algorithm
    digest: str
    created_at: str
    #: the registered name the signer bound, or ``None``
    name: str | None = None
    #: every distinct trusted key whose signature verified (``key_id`` is the first)
    key_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignatureStatus:
    """What :func:`check_signature` found.

    ``state``: ``"verified"`` (a trusted key signed exactly these files),
    ``"unsigned"``, ``"untrusted"`` (signed, but only by keys the trust store
    does not know, so nothing could be checked) or ``"off"`` (not checked).
    """

    state: Literal["verified", "unsigned", "untrusted", "off"]
    key_id: str | None = None
    label: str | None = None
    reason: str = ""

    @property
    def vouched_by(self) -> str | None:
        """Who vouches for the model's code: the trusted signer, or ``None``."""
        if self.state != "verified":
            return None
        return f"{self.label} ({self.key_id})" if self.label else self.key_id


# -- signing ----------------------------------------------------------------------------


def sign_manifest(
    manifest: ContentManifest,
    key: SigningKey,
    *,
    name: str | None = None,
    signer: str | None = None,
    created_at: _dt.datetime | None = None,
    extend: Envelope | None = None,
) -> Envelope:
    """An envelope with ``key``'s signature over a statement about ``manifest``.

    ``name`` binds a registered model name into the statement; ``signer`` is
    the label recorded in it (the key's name by default). With ``extend``, an
    envelope whose statement says the same (digest and name) keeps its payload
    and signatures and gains this one (replacing one by the same key); any
    other is superseded, since its signatures cover something else.
    """
    if extend is not None:
        try:
            claim = _parse_statement(extend, source="the envelope to extend")
        except SignatureError:
            claim = None
        if claim is not None and claim.manifest == manifest and claim.name == name:
            signed = extend.signed_bytes()
            return extend.with_signature(EnvelopeSignature(key.key_id, key.sign(signed)))
    when = (created_at or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name or "model", "digest": {"sha256": _hex(manifest.digest)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "manifest": [
                {"path": e.path, "size": e.size, "sha256": e.sha256} for e in manifest.entries
            ],
            "created_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "signer": signer or key.name or key.key_id,
            "name": name,
        },
    }
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    envelope = Envelope(payload.encode("utf-8"), PAYLOAD_TYPE)
    return envelope.with_signature(EnvelopeSignature(key.key_id, key.sign(envelope.signed_bytes())))


def sign_directory(
    path: str | os.PathLike[str],
    key: SigningKey,
    *,
    name: str | None = None,
    signer: str | None = None,
) -> Envelope:
    """Sign the model directory at ``path`` and write (or extend) its ``MANIFEST.sig``.

    The directory is first checked against its ``MANIFEST.sha256`` (an
    :class:`~modelyard.errors.IntegrityError` names a file that differs) and
    the on-disk rules of a signed model; nobody signs files they did not
    check. Signing again with the same key replaces that key's signature.
    The file is replaced atomically.
    """
    root = Path(path)
    manifest = ContentManifest.read(root)
    if manifest is None:
        raise SignatureError(
            f"{str(root)!r} has no {MANIFEST_FILE}: only a model saved by modelyard can be signed",
            path=root,
        )
    manifest.verify(root)
    _check_files(root, manifest, remove_bytecode=True)
    existing: Envelope | None = None
    try:
        existing = read_signature_file(root)
    except SignatureError as exc:
        logger.warning("replacing the unreadable %s: %s", root / SIGNATURE_FILE, exc)
    envelope = sign_manifest(manifest, key, name=name, signer=signer, extend=existing)
    write_signature_file(root, envelope)
    return envelope


def read_signature_file(path: str | os.PathLike[str]) -> Envelope | None:
    """The envelope in ``<path>/MANIFEST.sig``, or ``None`` when there is none."""
    file = Path(path) / SIGNATURE_FILE
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise TamperedModel(Path(path), SIGNATURE_FILE, "is not a regular file")
    return Envelope.from_json(file.read_bytes(), source=str(file))


def write_signature_file(path: str | os.PathLike[str], envelope: Envelope) -> None:
    """Write ``envelope`` as ``<path>/MANIFEST.sig``, replacing it at once."""
    file = Path(path) / SIGNATURE_FILE
    tmp = file.with_name(f".{SIGNATURE_FILE}.{uuid.uuid4().hex}")
    try:
        tmp.write_text(envelope.to_json(), encoding="utf-8")
        os.replace(tmp, file)
    finally:
        tmp.unlink(missing_ok=True)


# -- verifying --------------------------------------------------------------------------


def verify_envelope(
    envelope: Envelope,
    manifest: ContentManifest,
    store: TrustStore,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Verified:
    """Check that ``envelope`` is a trusted signature over exactly ``manifest``.

    Checked: the payload type, statement type and predicate type (one of each
    is accepted); the statement's own consistency (its subject digest is the
    digest of its file list); that file list against ``manifest`` (a
    :class:`TamperedModel` names the first file that was added, removed,
    renamed or changed, so a signature from another model fails); and at
    least ``store.threshold`` distinct trusted, non-revoked keys whose
    signature verifies (signatures by one key id count once).

    :class:`UntrustedKey` names a key that is revoked or unknown;
    :class:`SignatureError` is anything else. ``path`` is for messages.
    """
    root = Path(path) if path is not None else None
    outcome = _assess(envelope, manifest, store, path=root, source="signature")
    if isinstance(outcome, UnknownSigner):
        raise outcome.error()
    return outcome


def check_signature(
    path: str | os.PathLike[str],
    digest: str,
    *,
    envelopes: Iterable[Envelope] = (),
    verify: VerifyMode = "auto",
    store: TrustStore | None = None,
    manifest: ContentManifest | None = None,
    remove_bytecode: bool = True,
) -> SignatureStatus:
    """The signature check of a load, after the model's files were verified.

    Call it once the files at ``path`` were checked against the content
    manifest whose digest is ``digest`` (``manifest``, else the directory's
    ``MANIFEST.sha256``; a directory without one has it built). The
    signatures are ``MANIFEST.sig`` in the directory plus ``envelopes``.

    - ``"auto"``: verify what is signed. A bad signature, tampering or a
      revoked key raises; signatures only by unknown keys give
      ``state="untrusted"``; no signature gives ``"unsigned"``.
    - ``"required"``: anything but ``"verified"`` raises
      (:class:`SignatureRequired` when unsigned, :class:`UntrustedKey` for an
      unknown key).
    - ``"off"``: nothing is checked.

    ``store`` defaults to :meth:`TrustStore.load` (the user's trust file and
    own key). See the module docstring for the on-disk rules and
    ``remove_bytecode``.
    """
    if verify not in _MODES:
        raise ValueError(f"verify must be one of {', '.join(_MODES)}, got {verify!r}")
    if verify == "off":
        return SignatureStatus("off", reason="signature check turned off")
    root = Path(path)
    found = read_signature_file(root)
    candidates = ([found] if found is not None else []) + list(envelopes)
    if not candidates:
        if verify == "required":
            raise SignatureRequired(
                f"{str(root)!r} is not signed, and a trusted signature is required", path=root
            )
        return SignatureStatus("unsigned", reason="the model carries no signature")
    if manifest is None:
        manifest = ContentManifest.read(root) or ContentManifest.build(root)
    if manifest.digest != digest:
        raise TamperedModel(
            root, MANIFEST_FILE, f"has digest {manifest.digest}, not {digest} as it was fetched by"
        )
    _check_files(root, manifest, remove_bytecode=remove_bytecode)
    resolved = store if store is not None else TrustStore.load()
    outcome = _first_verified(candidates, manifest, resolved, root, from_file=found is not None)
    if isinstance(outcome, Verified):
        return SignatureStatus("verified", outcome.key_id, outcome.label, "")
    if verify == "required":
        raise outcome.error()
    return SignatureStatus(
        "untrusted", outcome.key_id, None, f"key {outcome.key_id} {outcome.reason}"
    )


def verify_directory(
    path: str | os.PathLike[str],
    *,
    store: TrustStore | None = None,
    envelopes: Iterable[Envelope] = (),
) -> Verified:
    """Hash every file at ``path`` and require a trusted signature over exactly them.

    Unlike :func:`check_signature` this trusts no earlier check: the files
    are read again (``modelyard verify`` uses it). Unsigned is
    :class:`SignatureRequired`; an unknown key :class:`UntrustedKey`.
    """
    root = Path(path)
    if not root.is_dir():
        raise SignatureError(f"{str(root)!r} is not a model directory", path=root)
    found = read_signature_file(root)
    candidates = ([found] if found is not None else []) + list(envelopes)
    if not candidates:
        raise SignatureRequired(f"{str(root)!r} is not signed (no {SIGNATURE_FILE})", path=root)
    # Walk first: a FIFO or a link is refused before anything opens it.
    _check_files(root, None, remove_bytecode=True)
    fresh = ContentManifest.build(root)
    resolved = store if store is not None else TrustStore.load()
    outcome = _first_verified(candidates, fresh, resolved, root, from_file=found is not None)
    if isinstance(outcome, UnknownSigner):
        raise outcome.error()
    recorded = ContentManifest.read(root)
    if recorded is not None and recorded != fresh:
        raise TamperedModel(root, MANIFEST_FILE, "differs from the signed files it should list")
    return outcome


# -- internals --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Statement:
    manifest: ContentManifest
    subject_name: str
    name: str | None
    created_at: str
    signer: str


@dataclass(frozen=True)
class UnknownSigner:
    """Signed only by keys the store does not know: nothing could be verified."""

    key_id: str
    path: str | None

    @property
    def reason(self) -> str:
        return "is not in the trust store (trust it with `modelyard keys trust`)"

    def error(self) -> UntrustedKey:
        return UntrustedKey(self.key_id, self.reason, path=self.path)


def _first_verified(
    candidates: Sequence[Envelope],
    manifest: ContentManifest,
    store: TrustStore,
    root: Path,
    *,
    from_file: bool,
) -> Verified | UnknownSigner:
    """The first envelope that verifies; else the first failure is raised, and only
    when every envelope is by unknown keys alone is that the answer."""
    unknown: UnknownSigner | None = None
    failure: SignatureError | None = None
    for i, envelope in enumerate(candidates):
        source = SIGNATURE_FILE if from_file and i == 0 else f"signature {i + 1}"
        try:
            outcome = _assess(envelope, manifest, store, path=root, source=source)
        except SignatureError as exc:
            failure = failure or exc
            continue
        if isinstance(outcome, Verified):
            return outcome
        unknown = unknown or outcome
    if failure is not None:
        raise failure
    if unknown is None:  # no candidates: the callers handle that before
        raise SignatureError(f"{str(root)!r} is not signed", path=root)
    return unknown


def _assess(
    envelope: Envelope,
    manifest: ContentManifest,
    store: TrustStore,
    *,
    path: Path | None,
    source: str,
) -> Verified | UnknownSigner:
    where = str(path) if path is not None else "the model"
    claim = _parse_statement(envelope, source=source)
    if claim.manifest != manifest:
        file, problem = _difference(claim.manifest, manifest)
        raise TamperedModel(where, file, problem)
    signers = trusted_signers(envelope, store, source=source, where=where, path=path)
    if isinstance(signers, UnknownSigner):
        return signers
    first = signers[0]
    return Verified(
        key_id=first.key_id,
        label=first.label,
        algorithm=first.public_key.algorithm,
        digest=manifest.digest,
        created_at=claim.created_at,
        name=claim.name,
        key_ids=tuple(k.key_id for k in signers),
    )


def trusted_signers(
    envelope: Envelope,
    store: TrustStore,
    *,
    source: str,
    where: str,
    path: Path | None = None,
) -> tuple[TrustedKey, ...] | UnknownSigner:
    """The distinct trusted keys whose signature over ``envelope`` verifies, at least
    ``store.threshold`` of them; :class:`UnknownSigner` when only unknown keys signed.

    A signature by a trusted key that does not verify, too few trusted keys, or
    a revoked key raises (:class:`SignatureError`, :class:`UntrustedKey`).
    """
    signed = envelope.signed_bytes()
    good: dict[str, TrustedKey] = {}
    bad: list[str] = []
    revoked: list[str] = []
    unknown: list[str] = []
    for sig in envelope.signatures:
        if sig.keyid in good:
            continue  # one key counts once, however often it signed
        if store.is_revoked(sig.keyid):
            revoked.append(sig.keyid)
            continue
        trusted = store.trusted(sig.keyid)
        if trusted is None:
            unknown.append(sig.keyid)
        elif trusted.public_key.verify(sig.sig, signed):
            good[sig.keyid] = trusted
        else:
            bad.append(sig.keyid)
    if len(good) >= store.threshold:
        return tuple(good.values())
    if bad:
        raise SignatureError(
            f"{source} of {where!r}: the signature by trusted key {bad[0]} does not verify "
            "(the envelope was altered, or another key made it)",
            path=path,
        )
    if good:
        raise SignatureError(
            f"{source} of {where!r}: {len(good)} distinct trusted key(s) signed, "
            f"{store.threshold} are required",
            path=path,
        )
    if revoked:
        raise UntrustedKey(revoked[0], "was revoked", path=path)
    if unknown:
        return UnknownSigner(unknown[0], str(path) if path is not None else None)
    raise SignatureError(f"{source} of {where!r} holds no signature", path=path)


def _parse_statement(envelope: Envelope, *, source: str) -> _Statement:
    if envelope.payload_type != PAYLOAD_TYPE:
        raise SignatureError(
            f"{source}: payloadType {envelope.payload_type!r} is not {PAYLOAD_TYPE!r}"
        )
    doc = strict_json(envelope.payload, source=f"{source} payload")
    if not isinstance(doc, dict):
        raise SignatureError(f"{source}: the statement must be a JSON object")
    _exact(doc, _STATEMENT_FIELDS, source, "statement")
    if doc["_type"] != STATEMENT_TYPE:
        raise SignatureError(
            f"{source}: statement _type {doc['_type']!r} is not {STATEMENT_TYPE!r}"
        )
    if doc["predicateType"] != PREDICATE_TYPE:
        raise SignatureError(
            f"{source}: predicateType {doc['predicateType']!r} is not {PREDICATE_TYPE!r}"
        )
    subjects = doc["subject"]
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise SignatureError(f"{source}: field 'subject' must hold exactly one subject")
    subject = subjects[0]
    _exact(subject, frozenset({"name", "digest"}), source, "subject[0]")
    digests = subject["digest"]
    if not isinstance(digests, dict):
        raise SignatureError(f"{source}: field 'subject[0].digest' must be an object")
    _exact(digests, frozenset({"sha256"}), source, "subject[0].digest")
    if not isinstance(digests["sha256"], str) or not _HEX64.match(digests["sha256"]):
        raise SignatureError(f"{source}: field 'subject[0].digest.sha256' must be 64 hex digits")
    predicate = doc["predicate"]
    if not isinstance(predicate, dict):
        raise SignatureError(f"{source}: field 'predicate' must be an object")
    _exact(predicate, _PREDICATE_FIELDS, source, "predicate")
    name, created_at, signer = predicate["name"], predicate["created_at"], predicate["signer"]
    if name is not None and (not isinstance(name, str) or not name):
        raise SignatureError(f"{source}: field 'predicate.name' must be a string or null")
    if not isinstance(signer, str):
        raise SignatureError(f"{source}: field 'predicate.signer' must be a string")
    if not isinstance(created_at, str) or not _is_timestamp(created_at):
        raise SignatureError(f"{source}: field 'predicate.created_at' must be an ISO 8601 time")
    if subject["name"] != (name or "model"):
        raise SignatureError(
            f"{source}: field 'subject[0].name' {subject['name']!r} does not match "
            f"predicate.name {name!r}"
        )
    signed = ContentManifest(_entries(predicate["manifest"], source))
    if _hex(signed.digest) != digests["sha256"]:
        raise SignatureError(
            f"{source}: the statement is inconsistent: its subject digest is not the digest "
            "of its file list"
        )
    return _Statement(signed, subject["name"], name, created_at, signer)


def _entries(raw: Any, source: str) -> tuple[FileEntry, ...]:
    if not isinstance(raw, list):
        raise SignatureError(f"{source}: field 'predicate.manifest' must be a list")
    entries: list[FileEntry] = []
    folded: dict[str, str] = {}
    for i, item in enumerate(raw):
        where = f"predicate.manifest[{i}]"
        if not isinstance(item, dict):
            raise SignatureError(f"{source}: field {where!r} must be an object")
        _exact(item, _ENTRY_FIELDS, source, where)
        rel, size, sha = item["path"], item["size"], item["sha256"]
        if not isinstance(rel, str) or not is_safe_name(rel):
            raise SignatureError(f"{source}: field '{where}.path' is not a safe relative path")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise SignatureError(f"{source}: field '{where}.size' must be a whole number >= 0")
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise SignatureError(f"{source}: field '{where}.sha256' must be 64 hex digits")
        if fold(rel) in folded:
            raise SignatureError(f"{source}: the signed file list names {rel!r} twice")
        folded[fold(rel)] = rel
        entries.append(FileEntry(rel, size, sha))
    return tuple(sorted(entries, key=lambda e: e.path))


def _exact(doc: dict[str, Any], expected: frozenset[str], source: str, what: str) -> None:
    for name in sorted(expected - doc.keys()):
        raise SignatureError(f"{source}: {what} lacks field {name!r}")
    for name in sorted(doc.keys() - expected):
        raise SignatureError(f"{source}: {what} has unknown field {name!r}")


def _difference(signed: ContentManifest, actual: ContentManifest) -> tuple[str, str]:
    """The first file that differs, and how (see :func:`~._names.first_difference`)."""
    found = first_difference(
        {e.path: (e.size, e.sha256) for e in signed.entries},
        {e.path: (e.size, e.sha256) for e in actual.entries},
    )
    return found or (MANIFEST_FILE, "differs from the signed file list")


def _check_files(root: Path, manifest: ContentManifest | None, *, remove_bytecode: bool) -> None:
    """The on-disk rules of a signed model (module docstring); with ``manifest``, also
    that the files on disk are exactly those it lists, at their sizes."""
    found: dict[str, int] = {}
    folded: dict[str, str] = {}
    listed = {e.path: e.size for e in manifest.entries} if manifest is not None else {}

    def visit(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            rel = prefix + item.name
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise TamperedModel(
                    root, rel, "is a symbolic link: a signed model holds regular files only"
                )
            if stat.S_ISDIR(st.st_mode):
                # A cache folder the manifest lists files in (a yard may) is model content.
                if item.name in IGNORED_DIRS and not any(p.startswith(rel + "/") for p in listed):
                    _bytecode(root, rel, remove=remove_bytecode)
                else:
                    visit(Path(item.path), rel + "/")
                continue
            if not stat.S_ISREG(st.st_mode):
                raise TamperedModel(root, rel, f"is a {_kind(st.st_mode)}, not a regular file")
            if st.st_nlink > 1:
                raise TamperedModel(
                    root,
                    rel,
                    f"is a hard link ({st.st_nlink} names for one file), not a file of its own",
                )
            twin = folded.setdefault(fold(rel), rel)
            if twin != rel:
                raise TamperedModel(
                    root,
                    rel,
                    f"and {twin!r} are one name after Unicode normalisation or case folding",
                )
            if not (prefix == "" and item.name in IGNORED_NAMES):
                found[rel] = st.st_size

    visit(root, "")
    if manifest is None:
        return
    for rel in sorted(found.keys() - listed.keys()):
        raise TamperedModel(root, rel, "is not listed in the content manifest (added)")
    for rel in sorted(listed.keys() - found.keys()):
        raise TamperedModel(root, rel, "is missing")
    for rel, size in sorted(listed.items()):
        if found[rel] != size:
            raise TamperedModel(root, rel, f"has {found[rel]} bytes, not {size} as listed")


def _bytecode(root: Path, rel: str, *, remove: bool) -> None:
    folder = root / rel
    if remove:
        try:
            shutil.rmtree(folder)
            return
        except OSError as exc:
            reason = f"; it could not be removed ({exc.strerror or exc})"
    else:
        reason = ""
    inside = next((p for p in sorted(folder.rglob("*")) if not p.is_dir()), None)
    if inside is None:
        return  # an empty cache folder holds nothing Python could import
    raise TamperedModel(
        root,
        inside.relative_to(root).as_posix(),
        "is compiled bytecode no signature covers (Python would import it in place of the "
        f"signed source){reason}",
    )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


def _is_timestamp(text: str) -> bool:
    try:
        _dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")
