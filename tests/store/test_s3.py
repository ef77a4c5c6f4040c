"""The S3 store against a real Ceph RGW: parallel parts both ways, flat memory, nothing
visible after a failure, clear errors, and yards whose artifacts live in a bucket."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import modelyard as my
from modelyard.errors import ArtifactStoreError, IntegrityError
from modelyard.store.s3 import S3BlobStore
from modelyard.yard import Yard
from tests._s3 import S3Server
from tests._yard import _empty_tables, use_yard

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

pytestmark = pytest.mark.s3

MIB = 1024 * 1024


class _Calls:
    """Every S3 call a store makes: how many of each, how many at once, which ranges."""

    def __init__(self) -> None:
        import boto3

        self.session = boto3.session.Session()
        self.count: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.ranges: list[str] = []
        self.hooks: dict[str, Any] = {}
        self._now: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.session.events.register("before-call.s3", self._before)
        self.session.events.register("after-call.s3", self._after)
        self.session.events.register("after-call-error.s3", self._after)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.count[model.name] += 1
            self._now[model.name] += 1
            self.peak[model.name] = max(self.peak[model.name], self._now[model.name])
            if model.name == "GetObject" and "Range" in params.get("headers", {}):
                self.ranges.append(params["headers"]["Range"])
        hook = self.hooks.pop(model.name, None)
        if hook is not None:
            hook()

    def _after(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._now[model.name] -= 1


def _store(bucket: str, calls: _Calls, **kw: Any) -> S3BlobStore:
    kw.setdefault("part_size", 5 * MIB)
    kw.setdefault("concurrency", 4)
    return S3BlobStore(bucket, "yard", session=calls.session, **kw)


def _write_random(path: Path, mib: int) -> str:
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(mib):
            block = os.urandom(MIB)
            h.update(block)
            fh.write(block)
    return h.hexdigest()


def _keys(raw: S3Client, bucket: str) -> list[str]:
    return [o["Key"] for o in raw.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _uploads(raw: S3Client, bucket: str) -> list[Any]:
    return list(raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def test_big_files_go_up_in_parallel_parts_and_come_down_in_parallel_ranges(
    s3_env: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    calls = _Calls()
    store = _store(s3_bucket, calls)
    src = tmp_path / "big"
    sha = _write_random(src, 40)
    info = store.put_file(src)
    assert info.sha256 == sha
    assert calls.count["CreateMultipartUpload"] == 1
    assert calls.count["UploadPart"] == 8
    assert calls.count["CompleteMultipartUpload"] == 1
    assert calls.count["PutObject"] == 0
    assert calls.peak["UploadPart"] >= 2  # parts really were on the wire together
    assert calls.peak["UploadPart"] <= 4
    raw = s3_env.client()
    head = raw.head_object(Bucket=s3_bucket, Key=f"yard/sha256/{sha[:2]}/{sha}")
    assert head["ContentLength"] == 40 * MIB
    store.copy_to(sha, tmp_path / "back", size=40 * MIB)
    assert (tmp_path / "back").read_bytes() == src.read_bytes()
    assert sorted(calls.ranges) == sorted(
        f"bytes={s}-{s + 5 * MIB - 1}" for s in range(0, 40 * MIB, 5 * MIB)
    )
    assert calls.peak["GetObject"] >= 2


def test_memory_stays_flat_both_ways(s3_env: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    calls = _Calls()
    store = _store(s3_bucket, calls, concurrency=2)
    src = tmp_path / "big"
    sha = _write_random(src, 96)
    # two 5 MiB parts in flight and botocore's own buffers (it measured 13.2 MiB)
    bound = 16 * MIB
    assert src.stat().st_size >= 6 * bound
    store.stat(sha)  # the client is made (its service model loaded) before measuring
    tracemalloc.start()
    try:
        store.put_file(src, sha256=sha)
        _, up = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        store.copy_to(sha, tmp_path / "back", size=96 * MIB)
        _, down = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert calls.count["UploadPart"] == 20
    assert up < bound, f"upload peaked at {up / MIB:.1f} MiB"
    # a 1 MiB chunk (and its read buffer) per worker, one being verified: not even a part
    assert down < 8 * MIB, f"download peaked at {down / MIB:.1f} MiB"
    assert hashlib.sha256((tmp_path / "back").read_bytes()).hexdigest() == sha


def test_an_interrupted_multipart_upload_is_aborted(
    s3_env: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    calls = _Calls()
    store = _store(s3_bucket, calls)
    data = os.urandom(30 * MIB)
    sent = 0

    def read(n: int) -> bytes:
        nonlocal sent
        if sent >= 15 * MIB:
            raise KeyboardInterrupt  # Ctrl-C while parts are on their way
        chunk = data[sent : sent + n]
        sent += len(chunk)
        return chunk

    with pytest.raises(KeyboardInterrupt):
        store.put_stream(read, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    assert calls.count["CreateMultipartUpload"] == 1
    assert calls.count["UploadPart"] == 3
    assert calls.count["AbortMultipartUpload"] == 1
    assert calls.count["CompleteMultipartUpload"] == 0
    raw = s3_env.client()
    assert _keys(raw, s3_bucket) == []
    assert _uploads(raw, s3_bucket) == []


def test_a_file_changing_during_its_upload_never_becomes_a_blob(
    s3_env: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    calls = _Calls()
    store = _store(s3_bucket, calls, concurrency=2)
    src = tmp_path / "big"
    sha = _write_random(src, 40)

    def scribble() -> None:  # someone rewrites the file's last part while part 1 goes up
        with open(src, "r+b") as fh:
            fh.seek(38 * MIB)
            fh.write(b"\0" * MIB)

    calls.hooks["UploadPart"] = scribble
    with pytest.raises(IntegrityError, match="changed while it was being stored"):
        store.put_file(src, sha256=sha)
    assert calls.count["AbortMultipartUpload"] == 1
    raw = s3_env.client()
    assert _keys(raw, s3_bucket) == []
    assert _uploads(raw, s3_bucket) == []


def test_an_object_replaced_during_a_download_leaves_no_file(
    s3_env: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    calls = _Calls()
    store = _store(s3_bucket, calls, concurrency=1)  # one range after another
    data = os.urandom(20 * MIB)
    info = store.put_bytes(data)
    raw = s3_env.client()

    def replace() -> None:
        other = bytearray(data)
        other[-1] ^= 0xFF
        raw.put_object(Bucket=s3_bucket, Key=store.key(info.sha256), Body=bytes(other))

    calls.hooks["GetObject"] = replace
    with pytest.raises(IntegrityError, match="corrupt"):
        store.copy_to(info.sha256, tmp_path / "out", size=len(data))
    assert not (tmp_path / "out").exists()
    raw.put_object(Bucket=s3_bucket, Key=store.key(info.sha256), Body=data[:-MIB])
    with pytest.raises(IntegrityError, match=f"has {19 * MIB} bytes, not {20 * MIB}"):
        store.copy_to(info.sha256, tmp_path / "out", size=len(data))
    assert not (tmp_path / "out").exists()


def test_presigned_urls_fetch_the_blob_without_credentials(
    s3_env: S3Server, s3_bucket: str
) -> None:
    import httpx

    store = _store(s3_bucket, _Calls())
    info = store.put_bytes(b"presigned bytes")
    url = store.presign(info.sha256, 60)
    assert url is not None
    assert url.startswith(s3_env.endpoint)
    assert "X-Amz-Signature" in url  # SigV4, which every S3 accepts
    with httpx.Client() as client:
        assert client.get(url).content == b"presigned bytes"
        assert client.get(url + "x").status_code == 403


def _refused(store: S3BlobStore) -> ArtifactStoreError:
    with pytest.raises(ArtifactStoreError) as err:
        store.stat("0" * 64)
    assert err.value.__cause__ is None
    assert err.value.__suppress_context__  # no botocore traceback attached
    return err.value


def test_a_missing_bucket_is_named(s3_env: S3Server) -> None:
    err = _refused(S3BlobStore("no-such-bucket", "p"))
    assert "the bucket 'no-such-bucket' does not exist" in str(err)
    assert s3_env.endpoint in str(err)
    assert err.location == "s3://no-such-bucket/p"
    with pytest.raises(ArtifactStoreError, match="no-such-bucket"):
        S3BlobStore("no-such-bucket").put_bytes(b"x")


@pytest.mark.parametrize("variable", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"])
def test_bad_credentials_are_refused_clearly(
    s3_env: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "wrong")
    err = _refused(S3BlobStore(s3_bucket))
    assert "refused" in err.reason
    assert "AWS_ACCESS_KEY_ID" in err.reason
    assert s3_env.endpoint in str(err)


def test_no_credentials_at_all(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    err = _refused(S3BlobStore("anything"))
    assert "no S3 credentials found" in err.reason


def test_an_unreachable_endpoint_is_named(
    s3_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    t0 = time.monotonic()
    err = _refused(S3BlobStore("models"))
    assert time.monotonic() - t0 < 10
    assert "cannot reach the S3 endpoint" in err.reason
    assert f"127.0.0.1:{port}" in str(err)


def test_settings_come_from_the_environment(
    s3_env: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELYARD_S3_PART_SIZE", "6MiB")
    monkeypatch.setenv("MODELYARD_S3_CONCURRENCY", "3")
    calls = _Calls()
    store = S3BlobStore(s3_bucket, session=calls.session)
    assert (store.part_size, store.concurrency) == (6 * MIB, 3)
    store.put_bytes(os.urandom(13 * MIB))
    assert calls.count["UploadPart"] == 3


@pytest.fixture(params=["sqlite", "postgresql"])
def s3_yard(
    request: pytest.FixtureRequest, s3_env: S3Server, s3_bucket: str, tmp_path: Path
) -> Iterator[Yard]:
    """A database yard whose artifacts are in the test's bucket."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path}/yard.db?artifacts=s3://{s3_bucket}/yard"
    else:
        url = request.getfixturevalue("pg_database")
        _empty_tables(url)
        uri = f"{url}?artifacts=s3://{s3_bucket}/yard"
    yield from use_yard(uri, tmp_path / "cache")


def test_a_yard_keeps_its_models_in_s3(
    s3_yard: Yard, s3_env: S3Server, s3_bucket: str, tmp_path: Path, iris_model: Any
) -> None:
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True, as_frame=True)
    with my.start_run(experiment="iris"):
        logged = my.log_model(iris_model, "model", registered_model_name="iris")
    assert logged.registered_version is not None
    my.set_alias("iris", "champion", logged.registered_version.version)
    model = my.load_model("models:/iris@champion")
    assert (model.predict(X) == iris_model.predict(X)).all()
    assert s3_yard.describe()["artifacts"] == f"s3://{s3_bucket}/yard"
    assert isinstance(s3_yard.artifacts, S3BlobStore)
    keys = _keys(s3_env.client(), s3_bucket)
    assert keys
    assert all(k.startswith("yard/sha256/") for k in keys)
    assert not (tmp_path / "blobs").exists()  # nothing went to a folder beside the database
    # another process, with only the URI and the AWS_* variables, loads it from the bucket
    code = (
        "import modelyard as my; m = my.load_model('models:/iris@champion'); "
        "print(m.version, my.get_yard().artifacts)"
    )
    env = {
        **os.environ,
        "MODELYARD_URI": s3_yard.uri if "***" not in s3_yard.uri else "",
        "MODELYARD_CACHE": str(tmp_path / "other-cache"),
    }
    if not env["MODELYARD_URI"]:
        pytest.fail("the yard URI is masked")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        str(logged.registered_version.version),
        f"S3BlobStore('s3://{s3_bucket}/yard')",
    ]
    assert any((tmp_path / "other-cache").rglob("MLmodel"))
