"""Fetch: a second load copies nothing; a tampered cache is caught and re-fetched."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

import modelyard as my
from modelyard.errors import IntegrityError
from modelyard.loading.fetch import fetch
from modelyard.loading.resolve import resolve
from modelyard.yard import Yard


def _files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_second_load_copies_nothing(any_yard: Yard, saved_iris: Path) -> None:
    my.register_model(saved_iris, "iris")
    first = fetch(resolve("models:/iris/1"))
    assert first.copied
    before = _files(any_yard.cache_root)
    second = fetch(resolve("models:/iris/1"))
    assert not second.copied
    assert second.path == first.path
    assert _files(any_yard.cache_root) == before  # not a file written or replaced
    # The cache entry is keyed by digest: another name for the same files shares it.
    my.register_model("models:/iris/1", "iris-copy")
    shared = fetch(resolve("models:/iris-copy/1"))
    assert shared.path == first.path
    assert not shared.copied


@pytest.mark.parametrize("how", ["append", "same-size", "extra-file", "deleted"])
def test_tampered_cache_is_detected_and_refetched(
    any_yard: Yard,
    saved_iris: Path,
    iris: Any,
    how: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    my.register_model(saved_iris, "iris")
    model = my.load_model("models:/iris/1")
    expected = model.predict(iris[0])
    pkl = model.path / "model.pkl"
    if how == "append":
        os.chmod(pkl, 0o644)
        with open(pkl, "ab") as fh:
            fh.write(b"\0")
    elif how == "same-size":
        stat = pkl.stat()
        os.chmod(pkl, 0o644)
        data = bytearray(pkl.read_bytes())
        data[len(data) // 2] ^= 0x01
        pkl.write_bytes(bytes(data))
        os.utime(pkl, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif how == "extra-file":
        (model.path / "sitecustomize.py").write_text("raise SystemExit('owned')")
    elif how == "deleted":
        pkl.unlink()
    with caplog.at_level(logging.WARNING, logger="modelyard"):
        again = my.load_model("models:/iris/1")
    assert "was modified" in caplog.text
    assert again.digest == model.digest
    from modelyard.format.content import ContentManifest

    ContentManifest.read(again.path).verify(again.path)  # type: ignore[union-attr]
    assert (again.predict(iris[0]) == expected).all()


def test_a_corrupt_blob_is_refused_not_loaded(
    any_yard: Yard, yard_blobs: Path, saved_iris: Path
) -> None:
    version = my.register_model(saved_iris, "iris")
    from modelyard.store.trees import read_manifest

    manifest = read_manifest(any_yard.artifacts, version.digest)
    entry = next(e for e in manifest.entries if e.path == "model.pkl")
    blob = yard_blobs / "sha256" / entry.sha256[:2] / entry.sha256
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupt"):
        my.load_model("models:/iris/1")
    assert not any_yard.cache.entry_path(version.digest).exists()


def test_local_paths_are_loaded_in_place(saved_iris: Path) -> None:
    fetched = fetch(resolve(saved_iris))
    assert fetched.path == saved_iris.resolve()
    assert not fetched.copied


def _rewrite_same_size_and_mtime(file: Path) -> None:
    """Flip the first byte, keeping size and mtime: only the ctime tells."""
    st = file.stat()
    data = bytearray(file.read_bytes())
    data[0] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """The files hashed during the test, with a cache of its own."""
    from modelyard.format import content

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    seen: list[Path] = []
    real = content.file_sha256

    def counting(path: Path) -> str:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(content, "file_sha256", counting)
    return seen


@pytest.mark.parametrize("manifested", [True, False], ids=["manifest", "mlflow-style"])
def test_a_path_is_hashed_once_until_a_file_changes(
    saved_iris: Path, hashes: list[Path], manifested: bool
) -> None:
    if not manifested:
        (saved_iris / "MANIFEST.sha256").unlink()
    first = fetch(resolve(saved_iris))
    assert first.manifested is manifested
    assert hashes
    hashes.clear()
    again = fetch(resolve(saved_iris))
    assert (again.digest, again.manifested) == (first.digest, manifested)
    assert hashes == []  # the recorded stamp still matched: nothing read
    weights = next(p for p in saved_iris.iterdir() if p.suffix in (".pkl", ".skops"))
    _rewrite_same_size_and_mtime(weights)
    if manifested:
        with pytest.raises(IntegrityError, match=weights.name):
            fetch(resolve(saved_iris))
    else:
        changed = fetch(resolve(saved_iris))
        assert changed.digest != first.digest
    assert hashes


def test_a_new_file_is_noticed(saved_iris: Path, hashes: list[Path]) -> None:
    fetch(resolve(saved_iris))
    (saved_iris / "extra.txt").write_text("x")
    with pytest.raises(IntegrityError, match=r"extra\.txt"):
        fetch(resolve(saved_iris))
