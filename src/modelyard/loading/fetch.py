"""Step 2, fetch: make the model's files available locally and verify them.

A directory with a content manifest is checked file by file against it; one
without (saved by MLflow) gets its digest computed from its files.
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


def fetch(ref: ModelRef) -> Fetched:
    """Verify ``ref``'s local directory and return its digest."""
    assert ref.location is not None, "only local models are fetched so far"
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
