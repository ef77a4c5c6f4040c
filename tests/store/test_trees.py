"""Directories in and out of the blob store: manifests, digests, and refused links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelyard.errors import IntegrityError, ModelFormatError
from modelyard.format.content import ContentManifest, FileEntry
from modelyard.store.blobs import LocalBlobStore
from modelyard.store.trees import (
    digest_hex,
    manifest_from_entries,
    read_manifest,
    store_directory,
    subtree,
)


def _model(root: Path) -> Path:
    (root / "code").mkdir(parents=True)
    (root / "MLmodel").write_text("flavors: {}\n")
    (root / "code" / "m.py").write_text("x = 1\n")
    return root


def test_store_directory_digest_is_the_manifest_digest(tmp_path: Path) -> None:
    src = _model(tmp_path / "m")
    blobs = LocalBlobStore(tmp_path / "blobs")
    manifest = store_directory(blobs, src)
    assert manifest.digest == ContentManifest.build(src).digest
    assert read_manifest(blobs, manifest.digest) == manifest
    assert all(blobs.exists(e.sha256) for e in manifest.entries)
    assert blobs.exists(digest_hex(manifest.digest))


def test_a_directory_that_differs_from_its_manifest_is_refused(tmp_path: Path) -> None:
    src = _model(tmp_path / "m")
    ContentManifest.build(src).write(src)
    (src / "code" / "m.py").write_text("x = 2\n")
    blobs = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(IntegrityError, match=r"m\.py"):
        store_directory(blobs, src)


def test_links_leaving_the_directory_are_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    src = _model(tmp_path / "m")
    os.symlink(secret, src / "leak.txt")
    blobs = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(ModelFormatError, match="pointing outside"):
        store_directory(blobs, src)
    (src / "leak.txt").unlink()
    os.symlink(tmp_path, src / "dirlink")
    with pytest.raises(ModelFormatError, match="symlinked directory"):
        store_directory(blobs, src)
    (src / "dirlink").unlink()
    os.symlink(src / "MLmodel", src / "alias")  # inside: stored as a file
    manifest = store_directory(blobs, src)
    assert "alias" in {e.path for e in manifest.entries}


def test_subtrees_and_run_entries() -> None:
    entries = [
        FileEntry("model/MLmodel", 3, "a" * 64),
        FileEntry("model/data/w.bin", 5, "b" * 64),
    ]
    manifest = manifest_from_entries(entries, "model")
    assert [e.path for e in manifest.entries] == ["MLmodel", "data/w.bin"]
    assert subtree(manifest, "data").entries[0].path == "w.bin"
    assert subtree(manifest, "").digest == manifest.digest
    assert subtree(manifest, "missing").entries == ()
    with pytest.raises(ValueError, match="sha256"):
        digest_hex("md5:abc")
