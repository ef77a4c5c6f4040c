"""What every artifact store does: one suite, run on each (a folder, and a real Ceph RGW).

Each store comes as a :class:`Harness`: the store plus ways to look behind its
back (what a reader could see, what unfinished writes left, how many writes it
made, and a way to corrupt a stored blob). A new store joins by adding a
fixture that returns one and naming it in ``ARTIFACT_STORES`` (with its marks in
``MARKS``).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelyard.errors import IntegrityError
from modelyard.store import ArtifactStore, BlobInfo
from modelyard.store.blobs import LocalBlobStore
from tests._s3 import S3Server
from tests._server import start_yard_server
from tests._yard import POSTGRES, _admin

MIB = 1024 * 1024


@dataclass
class Harness:
    """An artifact store and what a test needs to check it from outside."""

    store: ArtifactStore
    #: replace a stored blob's bytes behind the store's back
    corrupt: Callable[[str, bytes], None]
    #: the sha256 of every blob a reader could see
    visible: Callable[[], set[str]]
    #: leftovers of unfinished writes (temporary files, open multipart uploads)
    pending: Callable[[], int]
    #: how many writes the store has made so far (a count that only grows)
    writes: Callable[[], int]
    #: a size that takes the store's multi-part path (several parts or chunks)
    big: int


class _LocalWrites:
    """Every blob file ever seen, by inode: a blob written again gets a new one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: set[tuple[str, int, int]] = set()

    def __call__(self) -> int:
        for p in (self.root / "sha256").rglob("*"):
            if p.is_file():
                st = p.stat()
                self.seen.add((p.name, st.st_ino, st.st_mtime_ns))
        return len(self.seen)


@pytest.fixture
def local_store(tmp_path: Path) -> Harness:
    """A folder."""
    store = LocalBlobStore(tmp_path / "blobs")

    def corrupt(sha256: str, data: bytes) -> None:
        target = store.path(sha256)
        os.chmod(target, 0o644)
        target.write_bytes(data)

    def visible() -> set[str]:
        return {p.name for p in (store.root / "sha256").rglob("*") if p.is_file()}

    def pending() -> int:
        tmp = store.root / "tmp"
        return len(list(tmp.iterdir())) if tmp.exists() else 0

    return Harness(store, corrupt, visible, pending, _LocalWrites(store.root), 3 * MIB + 17)


@pytest.fixture
def s3_store(s3_env: S3Server, s3_bucket: str) -> Harness:
    """A bucket of the session's Ceph RGW, through the standard AWS_* variables."""
    import boto3

    from modelyard.store.s3 import S3BlobStore

    session = boto3.session.Session()
    counter = itertools.count()
    writes = [0]
    lock = threading.Lock()

    def on_write(**_: object) -> None:
        with lock:
            writes[0] = next(counter) + 1

    for op in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        session.events.register(f"before-call.s3.{op}", on_write)
    store = S3BlobStore(s3_bucket, "yard", session=session, part_size=5 * MIB, concurrency=4)
    raw = s3_env.client()

    def corrupt(sha256: str, data: bytes) -> None:
        raw.put_object(Bucket=s3_bucket, Key=store.key(sha256), Body=data)

    def visible() -> set[str]:
        found = raw.list_objects_v2(Bucket=s3_bucket, Prefix="yard/").get("Contents", [])
        return {o["Key"].rsplit("/", 1)[1] for o in found}

    def pending() -> int:
        return len(raw.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []))

    return Harness(store, corrupt, visible, pending, lambda: writes[0], 12 * MIB + 17)


class _Linked:
    """The HTTP store, each blob it stores recorded as a file of a run, as tracking does.

    A server hands a blob only to a caller who may read a version or run that holds
    it; a blob nothing names is refused, whoever asks (test_mlflow_failures #6). So
    the suite's bare puts are followed by the one call ``log_artifact`` makes.
    """

    def __init__(self, store: Any, run_id: str) -> None:
        self._store = store
        self._run = run_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _link(self, info: BlobInfo) -> BlobInfo:
        self._store.session.api(
            "POST",
            f"/runs/{self._run}/files",
            json={
                "files": [{"path": f"b/{info.sha256}", "size": info.size, "sha256": info.sha256}]
            },
        )
        return info

    def put_file(self, path: Path, *, sha256: str | None = None) -> BlobInfo:
        return self._link(self._store.put_file(path, sha256=sha256))

    def put_bytes(self, data: bytes) -> BlobInfo:
        return self._link(self._store.put_bytes(data))

    def put_stream(
        self, read: Callable[[int], bytes], *, sha256: str, size: int | None = None
    ) -> BlobInfo:
        return self._link(self._store.put_stream(read, sha256=sha256, size=size))


@pytest.fixture(scope="module")
def _http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, Path]]:
    """A server of its own (its blob folder is emptied for every test)."""
    name = f"modelyard_art_{uuid.uuid4().hex[:10]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    blobs = tmp_path_factory.mktemp("http-blobs")
    process, token = start_yard_server(f"{POSTGRES.rsplit('/', 1)[0]}/{name}", blobs)
    try:
        yield process, token, blobs
    finally:
        process.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def http_store(_http_server: tuple[Any, str, Path]) -> Iterator[Harness]:
    """The HTTP artifact store of a real ``modelyard server`` over a blob folder."""
    from modelyard.store.rest._http import HttpSession
    from modelyard.store.rest.artifacts import HttpArtifactStore

    process, token, blobs = _http_server
    for part in ("sha256", "tmp"):
        shutil.rmtree(blobs / part, ignore_errors=True)
    session = HttpSession(process.url, token=token)
    experiment = session.api("POST", "/experiments", json={"name": "artifacts"})
    run = session.api("POST", "/runs", json={"experiment_id": experiment["experiment_id"]})
    # small parts, so the "big" size takes the parallel ranged path
    store = HttpArtifactStore(session, part_size=MIB, workers=4, parallel_min=2 * MIB)
    backing = LocalBlobStore(blobs)

    def corrupt(sha256: str, data: bytes) -> None:
        target = backing.path(sha256)
        os.chmod(target, 0o644)
        target.write_bytes(data)

    def visible() -> set[str]:
        root = blobs / "sha256"
        return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()

    def pending() -> int:
        tmp = blobs / "tmp"
        return len(list(tmp.iterdir())) if tmp.exists() else 0

    try:
        yield Harness(
            _Linked(store, run["run_id"]),  # type: ignore[arg-type]
            corrupt,
            visible,
            pending,
            _LocalWrites(blobs),
            3 * MIB + 17,
        )
    finally:
        session.close()


ARTIFACT_STORES = {"local": "local_store", "s3": "s3_store", "http": "http_store"}
MARKS = {"s3": [pytest.mark.s3]}


@pytest.fixture(params=[pytest.param(n, marks=MARKS.get(n, ())) for n in ARTIFACT_STORES])
def artifacts(request: pytest.FixtureRequest) -> Harness:
    """Each artifact store in turn."""
    harness: Harness = request.getfixturevalue(ARTIFACT_STORES[request.param])
    return harness


@pytest.fixture(params=["small", "big"])
def size(request: pytest.FixtureRequest, artifacts: Harness) -> int:
    """A blob size: a few bytes, or one the store sends in parts."""
    return 7000 if request.param == "small" else artifacts.big


def _data(size: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB, not repetitive in 1 MiB
    return (block * (size // len(block) + 1))[:size]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _reader(
    data: bytes, *, fail_at: int | None = None, error: BaseException | None = None
) -> Callable[[int], bytes]:
    """``read(n)`` over ``data`` in 1 MiB pieces, raising ``error`` once ``fail_at`` bytes went."""
    buf = io.BytesIO(data)

    def read(n: int) -> bytes:
        if fail_at is not None and buf.tell() >= fail_at:
            assert error is not None
            raise error
        return buf.read(min(n, MIB))

    return read


def test_satisfies_the_protocol(artifacts: Harness) -> None:
    assert isinstance(artifacts.store, ArtifactStore)
    assert artifacts.store.location


def test_a_blob_is_named_by_content_and_stored_once(
    artifacts: Harness, size: int, tmp_path: Path
) -> None:
    store, data = artifacts.store, _data(size)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(data)
    b.write_bytes(data)
    before = artifacts.writes()
    info = store.put_file(a)
    assert info == BlobInfo(_sha(data), size)
    written = artifacts.writes()
    assert written > before
    # however it comes again, nothing is written a second time
    assert store.put_file(b) == info
    assert store.put_file(b, sha256=info.sha256) == info
    assert store.put_bytes(data) == info
    assert store.put_stream(_reader(data), sha256=info.sha256, size=size) == info
    assert artifacts.writes() == written
    assert artifacts.visible() == {info.sha256}
    assert artifacts.pending() == 0


def test_reads_and_copies_give_back_the_content(
    artifacts: Harness, size: int, tmp_path: Path
) -> None:
    store, data = artifacts.store, _data(size, 1)
    info = store.put_bytes(data)
    assert store.exists(info.sha256)
    assert store.stat(info.sha256) == BlobInfo(info.sha256, size)
    assert store.read_bytes(info.sha256) == data
    store.copy_to(info.sha256, tmp_path / "sized", size=size)
    assert (tmp_path / "sized").read_bytes() == data
    store.copy_to(info.sha256, tmp_path / "unsized")
    assert (tmp_path / "unsized").read_bytes() == data
    # copy_to makes a new file: it never writes over one
    (tmp_path / "there").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        store.copy_to(info.sha256, tmp_path / "there")
    assert (tmp_path / "there").read_bytes() == b"keep"


def test_an_empty_blob(artifacts: Harness, tmp_path: Path) -> None:
    info = artifacts.store.put_bytes(b"")
    assert info == BlobInfo(_sha(b""), 0)
    assert artifacts.store.read_bytes(info.sha256) == b""
    artifacts.store.copy_to(info.sha256, tmp_path / "e", size=0)
    assert (tmp_path / "e").read_bytes() == b""
    assert list(artifacts.store.iter_bytes(info.sha256)) == []


def test_corruption_in_the_store_is_caught_on_read_and_copy(
    artifacts: Harness, size: int, tmp_path: Path
) -> None:
    store, data = artifacts.store, _data(size, 2)
    info = store.put_bytes(data)
    flipped = bytearray(data)
    flipped[size // 2] ^= 0xFF
    artifacts.corrupt(info.sha256, bytes(flipped))  # same size: only the hash can tell
    with pytest.raises(IntegrityError, match="corrupt"):
        store.read_bytes(info.sha256)
    with pytest.raises(IntegrityError, match="corrupt"):
        store.copy_to(info.sha256, tmp_path / "out", size=size)
    assert not (tmp_path / "out").exists()  # no file that looks fine
    with pytest.raises(IntegrityError, match="corrupt"):
        store.copy_to(info.sha256, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    artifacts.corrupt(info.sha256, data + b"tail")
    with pytest.raises(IntegrityError):
        store.copy_to(info.sha256, tmp_path / "longer", size=size)
    assert not (tmp_path / "longer").exists()
    with pytest.raises(IntegrityError, match="corrupt"):
        store.read_bytes(info.sha256)


def test_a_wrong_size_and_a_missing_blob(artifacts: Harness, tmp_path: Path) -> None:
    store = artifacts.store
    info = store.put_bytes(b"abc")
    for wrong in (2, 4):
        with pytest.raises(IntegrityError):
            store.copy_to(info.sha256, tmp_path / "x", size=wrong)
        assert not (tmp_path / "x").exists()
    missing = "0" * 64
    assert not store.exists(missing)
    assert store.stat(missing) is None
    with pytest.raises(IntegrityError, match="missing") as err:
        store.read_bytes(missing)
    assert missing in err.value.file
    for size in (None, 10):
        with pytest.raises(IntegrityError, match="missing"):
            store.copy_to(missing, tmp_path / "y", size=size)
        assert not (tmp_path / "y").exists()
    with pytest.raises(IntegrityError, match="missing"):
        store.iter_bytes(missing)  # before the first chunk is asked for
    with pytest.raises(IntegrityError, match="missing"):
        store.iter_bytes(missing, 2, 2)


def test_a_file_that_changed_since_it_was_hashed_stores_nothing(
    artifacts: Harness, size: int, tmp_path: Path
) -> None:
    f = tmp_path / "f"
    f.write_bytes(_data(size, 3))
    claimed = _sha(_data(size, 4))  # as if the file changed between hashing and copying
    with pytest.raises(IntegrityError, match="changed while"):
        artifacts.store.put_file(f, sha256=claimed)
    assert artifacts.visible() == set()
    assert artifacts.pending() == 0


def test_put_stream_verifies_before_the_blob_is_visible(artifacts: Harness, size: int) -> None:
    store, data = artifacts.store, _data(size, 5)
    wrong = _sha(b"something else")
    with pytest.raises(IntegrityError) as err:
        store.put_stream(_reader(data), sha256=wrong)
    assert wrong in err.value.file
    for declared in (size - 1, size + 1):
        with pytest.raises(IntegrityError, match=r"bytes|longer"):
            store.put_stream(_reader(data), sha256=_sha(data), size=declared)
    assert artifacts.visible() == set()
    assert artifacts.pending() == 0
    assert store.put_stream(_reader(data), sha256=_sha(data), size=size) == BlobInfo(
        _sha(data), size
    )
    assert store.read_bytes(_sha(data)) == data


@pytest.mark.parametrize("error", [OSError("disk gone"), KeyboardInterrupt()])
def test_a_reader_failing_midway_stores_nothing(
    artifacts: Harness, size: int, error: BaseException
) -> None:
    data = _data(size, 6)
    with pytest.raises(type(error)) as raised:
        artifacts.store.put_stream(
            _reader(data, fail_at=size // 2, error=error), sha256=_sha(data), size=size
        )
    assert raised.value is error  # the reader's own error, not a wrapped one
    assert artifacts.visible() == set()
    assert artifacts.pending() == 0
    assert artifacts.store.stat(_sha(data)) is None


def test_iter_bytes_streams_ranges(artifacts: Harness) -> None:
    data = _data(3 * MIB + 5, 7)
    info = artifacts.store.put_bytes(data)
    n = len(data)
    for start, end in [
        (0, None),
        (1, 3),
        (0, 1),
        (MIB - 1, 2 * MIB + 1),
        (n - 5, None),
        (n - 1, n),
        (5, 5),
        (n, None),
        (n + 10, None),
        (n - 2, n + 100),
    ]:
        got = b"".join(artifacts.store.iter_bytes(info.sha256, start, end))
        assert got == data[start:end], (start, end)


def test_concurrent_puts_of_the_same_content(artifacts: Harness, size: int) -> None:
    store, data = artifacts.store, _data(size, 8)
    sha = _sha(data)
    start = threading.Barrier(6)

    def put(i: int) -> BlobInfo:
        start.wait()
        if i % 2:
            return store.put_bytes(data)
        return store.put_stream(_reader(data), sha256=sha, size=size)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(put, range(6)))
    assert results == [BlobInfo(sha, size)] * 6
    assert artifacts.visible() == {sha}
    assert artifacts.pending() == 0
    assert store.read_bytes(sha) == data


def test_names_must_be_sha256_hex(artifacts: Harness, tmp_path: Path) -> None:
    store = artifacts.store
    for bad in ("../../etc/passwd", "abc", "G" * 64, "/" + "a" * 63, "A" * 64):
        calls: list[Callable[[], object]] = [
            lambda b=bad: store.stat(b),  # type: ignore[misc]
            lambda b=bad: store.read_bytes(b),  # type: ignore[misc]
            lambda b=bad: store.put_stream(_reader(b"x"), sha256=b),  # type: ignore[misc]
            lambda b=bad: store.copy_to(b, tmp_path / "d"),  # type: ignore[misc]
        ]
        for call in calls:
            with pytest.raises(ValueError, match="sha256"):
                call()
    assert not (tmp_path / "d").exists()
    assert artifacts.visible() == set()
