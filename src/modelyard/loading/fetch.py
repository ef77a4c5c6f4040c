"""Step 2, fetch: make the model's files available locally and verify them.

- A local directory with a content manifest is checked file by file against
  it; one without (saved by MLflow) gets its digest computed from its files.
- A registry or run reference is materialised in the local cache under its
  digest: every blob is hashed as it is copied (first use); a later load finds
  the entry, checks it was not touched since, and copies nothing. A tampered
  entry is rebuilt from the blobs (see :mod:`modelyard.store.cache`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import IntegrityError
from modelyard.format.content import ContentManifest
from modelyard.loading.resolve import ModelRef


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
    manifest = ContentManifest.read(path)
    manifested = manifest is not None
    if manifest is None:
        manifest = ContentManifest.build(path)
    else:
        manifest.verify(path)
    if ref.digest is not None and manifest.digest != ref.digest:
        raise IntegrityError(
            path, "MANIFEST.sha256", f"has digest {manifest.digest}, expected {ref.digest}"
        )
    return Fetched(path=path, digest=manifest.digest, manifested=manifested)


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
