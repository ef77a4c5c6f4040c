"""A version's files from an MLflow store into a content-addressed artifact store.

Each file is streamed into a scratch folder and hashed on the way; the files
the store already holds are not sent again; the manifest blob goes last, so a
digest whose manifest is stored always names blobs that are all there.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import MlflowSourceError
from modelyard.format.content import IGNORED_NAMES, ContentManifest, FileEntry
from modelyard.store import ArtifactStore, BlobInfo
from modelyard.store.mlflow import ArtifactFile, MlflowSource, MlflowVersion
from modelyard.store.trees import store_manifest
from modelyard.uri import validate_relative_path

__all__ = ["CopiedFiles", "copy_version_files", "model_files"]

# what MLflow (or Python) adds to a model folder after it was written, and our manifest
# and its signature: never part of a model's files
_NOT_MODEL_FILES = IGNORED_NAMES
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CopiedFiles:
    """A version's files, stored: their manifest and what copying them cost."""

    manifest: ContentManifest
    #: ``sha256:<hex>`` of the manifest: the version's digest
    digest: str
    #: files whose content the store already held
    deduplicated: int
    bytes_read: int
    bytes_stored: int


def model_files(source: MlflowSource, version: MlflowVersion) -> list[ArtifactFile]:
    """The version's files that make up the model (checked: safe paths, an MLmodel)."""
    files = [f for f in source.list_files(version) if _is_model_file(f)]
    for f in files:
        validate_relative_path(f.path, "artifact path")
    if "MLmodel" not in {f.path for f in files}:
        raise MlflowSourceError(
            source.location,
            f"{version.name} version {version.version}: its artifacts hold no MLmodel file "
            "(not a model directory)",
        )
    return files


def copy_version_files(
    source: MlflowSource,
    version: MlflowVersion,
    artifacts: ArtifactStore,
    *,
    files: list[ArtifactFile] | None = None,
    scratch_parent: Path | None = None,
) -> CopiedFiles:
    """Stream, hash and store the version's files (``files``: its listing, if known)."""
    listed = files if files is not None else model_files(source, version)
    scratch = Path(tempfile.mkdtemp(prefix="modelyard-mlflow-", dir=scratch_parent))
    try:
        entries = [_download(source, version, f, scratch) for f in listed]
        manifest = ContentManifest(tuple(sorted(entries, key=lambda e: e.path)))
        dedup, stored = _store(artifacts, scratch, manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    digest = store_manifest(artifacts, manifest)
    return CopiedFiles(manifest, digest, dedup, manifest.total_size, stored)


def _download(
    source: MlflowSource, version: MlflowVersion, file: ArtifactFile, scratch: Path
) -> FileEntry:
    """Stream one file into the scratch folder, hashing it on the way."""
    target = scratch / file.path
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with source.open_file(version, file.path) as stream, open(target, "wb") as out:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if file.size is not None and size != file.size:
        raise MlflowSourceError(
            source.location,
            f"{version.name} version {version.version}: {file.path!r} was {size} bytes, "
            f"the listing said {file.size}",
        )
    return FileEntry(file.path, size, digest.hexdigest())


def _store(artifacts: ArtifactStore, scratch: Path, manifest: ContentManifest) -> tuple[int, int]:
    """Put the files the store lacks: (files already there, bytes sent)."""
    entries = manifest.entries
    missing_of = getattr(artifacts, "missing", None)
    if missing_of is not None:  # a server: one question for the whole version
        lacking = set(missing_of([e.sha256 for e in entries]))
    else:
        lacking = {e.sha256 for e in entries if not artifacts.exists(e.sha256)}
    todo: dict[str, FileEntry] = {}
    dedup = 0
    for e in entries:
        if e.sha256 in lacking and e.sha256 not in todo:
            todo[e.sha256] = e
        else:
            dedup += 1
    put_files = getattr(artifacts, "put_files", None)
    if put_files is not None:
        put_files([(scratch / e.path, BlobInfo(e.sha256, e.size)) for e in todo.values()])
    else:
        for e in todo.values():
            artifacts.put_file(scratch / e.path, sha256=e.sha256)
    return dedup, sum(e.size for e in todo.values())


def _is_model_file(f: ArtifactFile) -> bool:
    return f.path not in _NOT_MODEL_FILES and "__pycache__" not in f.path.split("/")
