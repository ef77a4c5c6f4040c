"""Which artifact store a URI opens: the built-ins, registered schemes, and bad URIs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import modelyard as my
from modelyard.errors import InvalidURI
from modelyard.store import ArtifactStore
from modelyard.store.artifacts import (
    _registry,
    list_artifact_store_schemes,
    open_artifact_store,
    register_artifact_store,
)
from modelyard.store.blobs import LocalBlobStore


def test_builtin_schemes() -> None:
    assert {"file", "s3"} <= set(list_artifact_store_schemes())


def test_s3_uris_open_an_s3_store_without_a_request() -> None:
    from modelyard.store.s3 import S3BlobStore

    store = open_artifact_store("s3://models/team/yard/")
    assert isinstance(store, S3BlobStore)
    assert isinstance(store, ArtifactStore)
    assert (store.bucket, store.prefix, store.location) == ("models", "team/yard", store.location)
    assert store.location == "s3://models/team/yard"
    assert store.key("ab" * 32) == f"team/yard/sha256/ab/{'ab' * 32}"
    assert open_artifact_store("s3://models").location == "s3://models"  # type: ignore[attr-defined]


def test_opening_a_yard_imports_boto3_only_for_an_s3_store(tmp_path: Path) -> None:
    code = (
        "import sys, modelyard; "
        f"y = modelyard.set_yard('sqlite:///{tmp_path}/y.db?artifacts={tmp_path}/b'); "
        "y.metadata; print('boto3' in sys.modules, end=' '); "
        f"modelyard.set_yard('sqlite:///{tmp_path}/y.db?artifacts=s3://bkt/p').metadata; "
        "print('boto3' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False True"


def test_a_registered_scheme_opens_through_its_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []

    def factory(uri: str) -> ArtifactStore:
        opened.append(uri)
        return LocalBlobStore(tmp_path / "mem")

    monkeypatch.setattr(_registry, "_items", dict(_registry._items))
    register_artifact_store("memtest", factory)
    assert "memtest" in list_artifact_store_schemes()
    with pytest.raises(ValueError, match="already registered"):
        register_artifact_store("memtest", factory)
    with pytest.raises(TypeError, match="not callable"):
        register_artifact_store("other", "nope", replace=True)  # type: ignore[arg-type]
    store = open_artifact_store("memtest://x/y")
    assert isinstance(store, LocalBlobStore)
    assert opened == ["memtest://x/y"]
    # a yard URI may name it too
    yard = my.set_yard(f"sqlite:///{tmp_path}/y.db?artifacts=memtest://x/y")
    try:
        yard.metadata  # creates the yard
        assert yard.artifacts.location == str(tmp_path / "mem")
    finally:
        yard.close()
        my.set_yard(None)


def test_unknown_schemes_and_bad_s3_uris_are_named() -> None:
    with pytest.raises(InvalidURI, match=r"no artifact store for scheme 'gcs'.*known: ") as err:
        open_artifact_store("gcs://b/p")
    assert err.value.part == "scheme"
    with pytest.raises(InvalidURI, match="needs a bucket") as err:
        open_artifact_store("s3:///p")
    assert err.value.part == "bucket"
    with pytest.raises(InvalidURI, match="AWS_ENDPOINT_URL") as err:
        open_artifact_store("s3://b/p?endpoint=http://x")
    assert err.value.part == "query"
    with pytest.raises(InvalidURI, match="must not be empty"):
        open_artifact_store("  ")
