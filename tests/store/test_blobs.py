"""The content-addressed blob store: written once, atomically, verified on every read."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelyard.errors import IntegrityError
from modelyard.store import ArtifactStore
from modelyard.store.blobs import LocalBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _stored(store: LocalBlobStore) -> list[Path]:
    return sorted(p for p in (store.root / "sha256").rglob("*") if p.is_file())


def test_satisfies_protocol(blobs: LocalBlobStore) -> None:
    assert isinstance(blobs, ArtifactStore)


def test_put_file_is_named_by_content_and_stored_once(
    blobs: LocalBlobStore, tmp_path: Path
) -> None:
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"weights" * 1000)
    b.write_bytes(b"weights" * 1000)
    info = blobs.put_file(a)
    assert info.sha256 == hashlib.sha256(b"weights" * 1000).hexdigest()
    assert info.size == 7000
    assert blobs.put_file(b) == info
    assert blobs.put_bytes(b"weights" * 1000) == info
    assert _stored(blobs) == [blobs.path(info.sha256)]
    assert blobs.path(info.sha256).parent.name == info.sha256[:2]
    assert not os.access(blobs.path(info.sha256), os.W_OK) or os.geteuid() == 0
    assert blobs.path(info.sha256).stat().st_mode & 0o222 == 0  # read-only
    assert not any((blobs.root / "tmp").iterdir())  # no temporary file left behind


def test_read_and_copy_verify_content(blobs: LocalBlobStore, tmp_path: Path) -> None:
    info = blobs.put_bytes(b"hello")
    assert blobs.exists(info.sha256)
    assert blobs.read_bytes(info.sha256) == b"hello"
    blobs.copy_to(info.sha256, tmp_path / "out", size=5)
    assert (tmp_path / "out").read_bytes() == b"hello"
    # Same-size corruption in the store is caught on read and on copy.
    target = blobs.path(info.sha256)
    os.chmod(target, 0o644)
    target.write_bytes(b"jello")
    with pytest.raises(IntegrityError, match="corrupt"):
        blobs.read_bytes(info.sha256)
    with pytest.raises(IntegrityError, match="corrupt"):
        blobs.copy_to(info.sha256, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()  # no file that looks fine


def test_size_mismatch_and_missing_blob(blobs: LocalBlobStore, tmp_path: Path) -> None:
    info = blobs.put_bytes(b"abc")
    with pytest.raises(IntegrityError):
        blobs.copy_to(info.sha256, tmp_path / "x", size=4)
    assert not (tmp_path / "x").exists()
    missing = "0" * 64
    assert not blobs.exists(missing)
    with pytest.raises(IntegrityError, match="missing"):
        blobs.read_bytes(missing)
    with pytest.raises(IntegrityError, match="missing"):
        blobs.copy_to(missing, tmp_path / "y")
    assert not (tmp_path / "y").exists()


def test_a_wrong_claimed_hash_stores_nothing(blobs: LocalBlobStore, tmp_path: Path) -> None:
    # As if the file changed between hashing and copying.
    f = tmp_path / "f"
    f.write_bytes(b"new content")
    with pytest.raises(IntegrityError, match="changed while"):
        blobs.put_file(f, sha256="1" * 64)
    assert _stored(blobs) == []
    assert not any((blobs.root / "tmp").iterdir())


def test_names_must_be_sha256_hex(blobs: LocalBlobStore) -> None:
    for bad in ("../../etc/passwd", "abc", "G" * 64, "/" + "a" * 63):
        with pytest.raises(ValueError, match="sha256"):
            blobs.path(bad)
