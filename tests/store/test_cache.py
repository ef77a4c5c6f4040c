"""The local model cache: built once per digest, verified, repaired when tampered with."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from modelyard.errors import IntegrityError, ModelFormatError
from modelyard.format.content import ContentManifest, FileEntry
from modelyard.store.blobs import LocalBlobStore
from modelyard.store.cache import ModelCache
from modelyard.store.trees import store_directory


@pytest.fixture
def stored(tmp_path: Path) -> tuple[LocalBlobStore, ContentManifest]:
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "MLmodel").write_text("flavors: {}\n")
    (src / "weights.bin").write_bytes(os.urandom(4096))
    (src / "sub" / "code.py").write_text("x = 1\n")
    blobs = LocalBlobStore(tmp_path / "blobs")
    return blobs, store_directory(blobs, src)


def test_first_use_builds_and_verifies_then_hits(
    tmp_path: Path, stored: tuple[LocalBlobStore, ContentManifest]
) -> None:
    blobs, manifest = stored
    cache = ModelCache(tmp_path / "cache")
    calls = []

    def provider() -> ContentManifest:
        calls.append(1)
        return manifest

    first = cache.materialize(manifest.digest, blobs, provider)
    assert first.fetched
    assert first.path == cache.entry_path(manifest.digest)
    assert ContentManifest.build(first.path).digest == manifest.digest
    assert ContentManifest.read(first.path) == manifest
    inode = (first.path / "weights.bin").stat().st_ino
    second = cache.materialize(manifest.digest, blobs, provider)
    assert not second.fetched
    assert calls == [1]  # a hit needs no manifest and copies nothing
    assert (second.path / "weights.bin").stat().st_ino == inode
    assert cache.get(manifest.digest) == first.path
    # Cache files are copies, not links into the store.
    assert (first.path / "weights.bin").stat().st_nlink == 1
    assert (tmp_path / "cache").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "tamper",
    ["same-size-edit", "append", "delete", "add-file", "drop-stamp", "replace-file"],
)
def test_tampering_is_detected_and_repaired(
    tmp_path: Path,
    stored: tuple[LocalBlobStore, ContentManifest],
    tamper: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blobs, manifest = stored
    cache = ModelCache(tmp_path / "cache")
    path = cache.materialize(manifest.digest, blobs, lambda: manifest).path
    weights = path / "weights.bin"
    if tamper == "same-size-edit":
        before = weights.stat()
        os.chmod(weights, 0o644)
        data = bytearray(weights.read_bytes())
        data[100] ^= 0xFF
        weights.write_bytes(bytes(data))
        os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # hide the edit
        os.chmod(weights, 0o444)
    elif tamper == "append":
        os.chmod(weights, 0o644)
        with open(weights, "ab") as fh:
            fh.write(b"\0")
    elif tamper == "delete":
        weights.unlink()
    elif tamper == "add-file":
        (path / "sub" / "evil.py").write_text("import os")
    elif tamper == "drop-stamp":
        path.with_name(path.name + ".stamp").unlink()
    elif tamper == "replace-file":
        os.chmod(weights, 0o644)
        (path / "new.bin").write_bytes(weights.read_bytes())
        weights.unlink()
        (path / "new.bin").rename(weights)
    assert cache.get(manifest.digest) is None
    with caplog.at_level(logging.WARNING, logger="modelyard"):
        repaired = cache.materialize(manifest.digest, blobs, lambda: manifest)
    assert repaired.fetched
    if tamper != "drop-stamp":
        assert "was modified" in caplog.text
    manifest.verify(repaired.path)
    assert not (repaired.path / "sub" / "evil.py").exists()
    assert cache.get(manifest.digest) == repaired.path


def test_corrupt_blob_leaves_no_entry(
    tmp_path: Path, stored: tuple[LocalBlobStore, ContentManifest]
) -> None:
    blobs, manifest = stored
    entry = next(e for e in manifest.entries if e.path == "weights.bin")
    blob = blobs.path(entry.sha256)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[0] ^= 1
    blob.write_bytes(bytes(data))
    cache = ModelCache(tmp_path / "cache")
    with pytest.raises(IntegrityError, match="corrupt"):
        cache.materialize(manifest.digest, blobs, lambda: manifest)
    assert not cache.entry_path(manifest.digest).exists()
    assert cache.get(manifest.digest) is None
    assert not any((tmp_path / "cache" / "tmp").iterdir())


def test_threads_build_one_entry(
    tmp_path: Path, stored: tuple[LocalBlobStore, ContentManifest]
) -> None:
    blobs, manifest = stored
    cache = ModelCache(tmp_path / "cache")
    results = []
    barrier = threading.Barrier(6)

    def load() -> None:
        barrier.wait()
        results.append(cache.materialize(manifest.digest, blobs, lambda: manifest))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.fetched for r in results) == 1
    assert len({r.path for r in results}) == 1
    manifest.verify(results[0].path)


def test_evict(tmp_path: Path, stored: tuple[LocalBlobStore, ContentManifest]) -> None:
    blobs, manifest = stored
    cache = ModelCache(tmp_path / "cache")
    cache.materialize(manifest.digest, blobs, lambda: manifest)
    assert cache.evict(manifest.digest)
    assert cache.get(manifest.digest) is None
    assert not cache.evict(manifest.digest)
    assert cache.materialize(manifest.digest, blobs, lambda: manifest).fetched


@pytest.mark.parametrize(
    "bad", ["../escape.py", "/etc/cron.d/x", "a/../../b", "C:/x", "a//b", "..\\x"]
)
def test_a_file_list_that_leaves_the_entry_is_refused(
    tmp_path: Path, stored: tuple[LocalBlobStore, ContentManifest], bad: str
) -> None:
    blobs, manifest = stored
    first = manifest.entries[0]
    evil = ContentManifest((FileEntry(bad, first.size, first.sha256),))
    cache = ModelCache(tmp_path / "cache")
    with pytest.raises(ModelFormatError, match="not a plain relative path"):
        cache.materialize(evil.digest, blobs, lambda: evil)
    assert not (tmp_path / "escape.py").exists()
    assert not cache.entry_path(evil.digest).exists()
