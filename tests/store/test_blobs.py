"""The folder blob store's own facts: its layout, read-only files, no temporary file left.

What every artifact store does (dedup, verification, ranges, failures) is in
``test_artifact_contract.py``, which runs on this store too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelyard.errors import IntegrityError
from modelyard.store.artifacts import open_artifact_store
from modelyard.store.blobs import LocalBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _stored(store: LocalBlobStore) -> list[Path]:
    return sorted(p for p in (store.root / "sha256").rglob("*") if p.is_file())


def test_blobs_are_read_only_files_named_by_content(blobs: LocalBlobStore, tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(b"weights" * 1000)
    info = blobs.put_file(a)
    assert info.sha256 == hashlib.sha256(b"weights" * 1000).hexdigest()
    assert _stored(blobs) == [blobs.path(info.sha256)]
    assert blobs.path(info.sha256) == blobs.root / "sha256" / info.sha256[:2] / info.sha256
    assert blobs.path(info.sha256).stat().st_mode & 0o222 == 0  # read-only
    assert not any((blobs.root / "tmp").iterdir())  # no temporary file left behind


def test_a_failed_write_leaves_no_temporary_file(blobs: LocalBlobStore, tmp_path: Path) -> None:
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


def test_a_folder_has_no_urls_to_hand_out(blobs: LocalBlobStore) -> None:
    info = blobs.put_bytes(b"x")
    assert blobs.presign(info.sha256, 60) is None


def test_folders_open_by_path_or_file_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for uri in (str(tmp_path / "b"), (tmp_path / "b").as_uri(), "b", " b "):
        store = open_artifact_store(uri)
        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "b"
    assert os.listdir(tmp_path) == []  # opening writes nothing
