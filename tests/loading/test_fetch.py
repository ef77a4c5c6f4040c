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


def test_a_corrupt_blob_is_refused_not_loaded(any_yard: Yard, saved_iris: Path) -> None:
    version = my.register_model(saved_iris, "iris")
    from modelyard.store.trees import read_manifest

    manifest = read_manifest(any_yard.artifacts, version.digest)
    entry = next(e for e in manifest.entries if e.path == "model.pkl")
    blob = any_yard.spec.blob_root / "sha256" / entry.sha256[:2] / entry.sha256
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
