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

from modelyard._paths import cache_home
from modelyard._stamps import differs, read_json, stamp_of, write_atomic
from modelyard.errors import IntegrityError
from modelyard.format.content import ContentManifest
from modelyard.loading.resolve import ModelRef

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
    return Fetched(path=entry.path, digest=digest, manifested=True, copied=entry.fetched)
