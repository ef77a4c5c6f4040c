"""Directories as tree manifests over content-addressed blobs.

A model directory is stored as its files' blobs plus one more blob: its
``MANIFEST.sha256`` text (see :mod:`modelyard.format.content`). The sha256 of
that text is the model's digest, so the digest names the manifest blob and the
manifest names every file: ``sha256:<hex>`` is all a fetch needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from modelyard.errors import ArtifactNotFound, IntegrityError, ModelFormatError, ModelNotFound
from modelyard.format.content import ContentManifest, FileEntry
from modelyard.store import ArtifactStore, BlobInfo, MetadataStore
from modelyard.store._suggest import close_matches

__all__ = [
    "check_no_escaping_links",
    "digest_hex",
    "manifest_from_entries",
    "read_manifest",
    "run_tree",
    "store_directory",
    "store_manifest",
    "subtree",
]


def digest_hex(digest: str) -> str:
    """The hex part of ``sha256:<hex>``."""
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64:
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hexpart


def check_no_escaping_links(root: Path) -> None:
    """Refuse a directory holding symlinked directories or links that leave it.

    Storing follows file links; a link to ``/etc/passwd`` or ``~/.ssh`` would
    copy a file the user never meant to publish into a shared yard.
    """
    real_root = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath) / name
            if not path.is_symlink():
                continue
            rel = path.relative_to(root).as_posix()
            if path.is_dir():
                raise ModelFormatError(
                    f"{str(root)!r} holds a symlinked directory {rel!r}; copy its files instead",
                    path=root,
                )
            target = path.resolve()
            if not target.is_relative_to(real_root):
                raise ModelFormatError(
                    f"{str(root)!r} holds a symlink {rel!r} pointing outside it ({str(target)!r})",
                    path=root,
                )


def store_directory(artifacts: ArtifactStore, root: Path) -> ContentManifest:
    """Put every file of ``root`` and its manifest into ``artifacts``; returns the manifest.

    A directory that carries a ``MANIFEST.sha256`` is verified against it first:
    an altered model is refused, never stored under its old digest.
    """
    check_no_escaping_links(root)
    manifest = ContentManifest.read(root)
    if manifest is None:
        manifest = ContentManifest.build(root)
    else:
        manifest.verify(root)
    put_files = getattr(artifacts, "put_files", None)
    if put_files is not None:  # a remote store: one question for which blobs it lacks
        put_files([(root / e.path, BlobInfo(e.sha256, e.size)) for e in manifest.entries])
    else:
        for entry in manifest.entries:
            artifacts.put_file(root / entry.path, sha256=entry.sha256)
    store_manifest(artifacts, manifest)
    return manifest


def store_manifest(artifacts: ArtifactStore, manifest: ContentManifest) -> str:
    """Store the manifest text as a blob; returns the digest (``sha256:<hex>``)."""
    info = artifacts.put_bytes(manifest.to_text().encode())
    return "sha256:" + info.sha256


def read_manifest(artifacts: ArtifactStore, digest: str) -> ContentManifest:
    """The manifest named by ``digest``, read from the blob store and verified."""
    data = artifacts.read_bytes(digest_hex(digest))
    manifest = ContentManifest.from_text(data.decode(), source=f"{artifacts.location}:{digest}")
    if manifest.digest != digest:  # pragma: no cover - read_bytes verified the bytes
        raise IntegrityError(artifacts.location, digest, "does not hash to its name")
    return manifest


def manifest_from_entries(entries: Iterable[FileEntry], prefix: str = "") -> ContentManifest:
    """The manifest of the files under ``prefix`` (paths made relative to it)."""
    cut = len(prefix) + 1 if prefix else 0
    files = [FileEntry(e.path[cut:], e.size, e.sha256) for e in entries]
    return ContentManifest(tuple(sorted(files, key=lambda f: f.path)))


def subtree(manifest: ContentManifest, prefix: str) -> ContentManifest:
    """The files of ``manifest`` under the directory ``prefix``, relative to it."""
    if not prefix:
        return manifest
    head = prefix + "/"
    files = [
        FileEntry(e.path[len(head) :], e.size, e.sha256)
        for e in manifest.entries
        if e.path.startswith(head)
    ]
    return ContentManifest(tuple(files))


def run_tree(metadata: MetadataStore, run_id: str, path: str, *, uri: str) -> ContentManifest:
    """The manifest of the directory ``path`` among a run's files.

    :class:`RunNotFound` for an unknown run; :class:`ArtifactNotFound` (with
    close paths) when the run has no such directory; a file is not a directory.
    """
    entries = metadata.list_artifacts(run_id, path)
    if entries:
        return manifest_from_entries(entries, path)
    files = {e.path for e in metadata.list_artifacts(run_id)}
    owner = f"run {run_id}"
    if path in files:
        raise ModelNotFound(uri, f"{path!r} in {owner} is a file, not a model directory")
    if not path:
        raise ModelNotFound(uri, f"{owner} has no files")
    dirs = {p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)}
    raise ArtifactNotFound(owner, path, suggestions=close_matches(path, files | dirs), uri=uri)
