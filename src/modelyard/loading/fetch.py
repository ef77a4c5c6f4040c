"""Step 2, fetch: make the model's files available locally and verify them.

- A local directory with a content manifest is checked file by file against
  it; one without (saved by MLflow) gets its digest computed from its files.
  Either is done once: the files' stamp is recorded under
  ``<cache>/verified/`` and later loads hash again only if a file changed.
- A registry or run reference is materialised in the local cache under its
  digest: every blob is hashed as it is copied (first use); a later load finds
  the entry, checks it was not touched since, and copies nothing. A tampered
  entry is rebuilt from the blobs (see :mod:`modelyard.store.cache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard._paths import cache_home
from modelyard._stamps import differs, read_json, stamp_of, write_atomic
from modelyard.errors import IntegrityError
from modelyard.format.content import ContentManifest
from modelyard.loading.resolve import ModelRef

if TYPE_CHECKING:
    from modelyard.trust.dsse import Envelope

_RECORD_VERSION = 1


@dataclass(frozen=True)
class Fetched:
    """A verified local copy of a model."""

    path: Path
    digest: str
    #: whether the model carried its own content manifest (False for MLflow-saved models)
    manifested: bool
    #: whether this fetch copied files (a cache miss, or a repair); False for local paths
    copied: bool = False


def fetch(ref: ModelRef) -> Fetched:
    """The verified local directory of ``ref`` and its digest."""
    if ref.location is None:
        return _from_yard(ref)
    path = ref.location
    digest, manifested = _local(path)
    if ref.digest is not None and digest != ref.digest:
        raise IntegrityError(path, "MANIFEST.sha256", f"has digest {digest}, expected {ref.digest}")
    return Fetched(path=path, digest=digest, manifested=manifested)


def _local(path: Path) -> tuple[str, bool]:
    """Digest of a model directory, and whether it carries a manifest.

    Hashing is what costs (seconds for large weights), so a directory's files
    are hashed once and their stamp recorded (see :mod:`modelyard._stamps`);
    while the stamp still matches, later loads reuse the digest.
    """
    record_file = _record_file(path)
    record = read_json(record_file) if record_file is not None else None
    if (
        isinstance(record, dict)
        and record.get("version") == _RECORD_VERSION
        and record.get("root") == str(path)
        and isinstance(record.get("files"), dict)
        and differs(path, record["files"]) is None
    ):
        return str(record["digest"]), bool(record["manifested"])
    before = stamp_of(path)
    manifest = ContentManifest.read(path)
    manifested = manifest is not None
    if manifest is None:
        manifest = ContentManifest.build(path)
    else:
        manifest.verify(path)
    if record_file is not None and stamp_of(path) == before:  # nothing moved while hashing
        record = {
            "version": _RECORD_VERSION,
            "root": str(path),
            "digest": manifest.digest,
            "manifested": manifested,
            "files": before,
        }
        with contextlib.suppress(OSError):  # a read-only cache only costs the next load a hash
            record_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(record_file, json.dumps(record))
    return manifest.digest, manifested


def _record_file(path: Path) -> Path | None:
    try:
        key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    except OSError:
        return None
    return cache_home() / "verified" / f"{key}.json"


def _from_yard(ref: ModelRef) -> Fetched:
    yard, digest = ref.yard, ref.digest
    if yard is None or digest is None:
        raise ValueError(f"{ref.uri!r} was not resolved to a digest in a yard")

    def manifest() -> ContentManifest:
        if ref.manifest is not None:
            return ref.manifest
        from modelyard.store.trees import read_manifest

        return read_manifest(yard.artifacts, digest)

    # A hit needs no store at all: nothing is opened, nothing is copied.
    hit = yard.cache.get(digest)
    if hit is not None:
        return Fetched(path=hit, digest=digest, manifested=True)
    entry = yard.cache.materialize(digest, yard.artifacts, manifest)
    if entry.fetched:
        _keep_signature(ref, digest)
    return Fetched(path=entry.path, digest=digest, manifested=True, copied=entry.fetched)


def _signature_file(digest: str) -> Path:
    return cache_home() / "signatures" / f"{digest.partition(':')[2]}.json"


def _keep_signature(ref: ModelRef, digest: str) -> None:
    # A signature lives beside the version in the yard, not among its files. The
    # fetch that fills the cache asks the yard once and keeps the envelope beside
    # the cache (never inside an entry, whose files are checked), where every later
    # load of that digest finds it: model processes, serving, a second load.
    from modelyard.store.signatures import signature_for

    envelope = signature_for(ref)
    if envelope is None:
        return
    kept = _signature_file(digest)
    with contextlib.suppress(OSError):
        kept.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(kept, envelope.to_json())


def kept_signature(digest: str) -> Envelope | None:
    """The signature a yard gave for ``digest`` when it was fetched, if any.

    Trusting it costs nothing: it is verified against the files like any other.
    """
    from modelyard.trust.dsse import Envelope

    kept = _signature_file(digest)
    try:
        return Envelope.from_json(kept.read_bytes(), source=str(kept))
    except FileNotFoundError:
        return None
