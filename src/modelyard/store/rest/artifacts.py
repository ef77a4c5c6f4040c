"""The artifact store of a yard reached over HTTP: blobs by sha256, streamed both ways.

- Uploads ask the server first which blobs it lacks (one request for a whole
  model directory through :meth:`HttpArtifactStore.missing`), then stream
  only those; the server hashes what it receives and refuses a mismatch.
- Downloads stream into the destination file, hashing on the way: a blob that
  does not match its name never leaves :meth:`copy_to` (the file is removed).
  Big blobs come down in parallel ranged parts, from a presigned URL when the
  server's store can make one (no token is sent there) or from the server.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelyard.errors import IntegrityError
from modelyard.store import BlobInfo
from modelyard.store.rest._http import HttpSession
from modelyard.store.rest.wire import API_PREFIX

__all__ = ["HttpArtifactStore"]

_CHUNK = 1 << 20
#: blobs at least this big come down in parallel parts
_PARALLEL_MIN = 32 * 1024 * 1024
_PART = 16 * 1024 * 1024
_WORKERS = 8
_ASK_AT_ONCE = 10_000


class HttpArtifactStore:
    """Blobs of a ``modelyard server``."""

    def __init__(self, session: HttpSession) -> None:
        self.session = session

    @property
    def location(self) -> str:
        """The server's URL."""
        return self.session.base_url

    def __repr__(self) -> str:
        return f"HttpArtifactStore({self.location!r})"

    def _path(self, sha256: str) -> str:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{API_PREFIX}/blobs/{sha256}"

    # -- asking ---------------------------------------------------------------------------

    def missing(self, sha256s: Iterable[str]) -> set[str]:
        """Which of these blobs the server lacks (for writers: one request per 10,000)."""
        wanted = list(dict.fromkeys(sha256s))
        out: set[str] = set()
        for i in range(0, len(wanted), _ASK_AT_ONCE):
            found = self.session.api(
                "POST", "/blobs/missing", json={"sha256": wanted[i : i + _ASK_AT_ONCE]}
            )
            out.update(found["missing"])
        return out

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored and readable with this token."""
        return self.stat(sha256) is not None

    def stat(self, sha256: str) -> BlobInfo | None:
        """The blob's size, or ``None`` when it is absent (or not readable with this token)."""
        response = self.session.request("HEAD", self._path(sha256), ok=(404,))
        if response.status_code == 404:
            return None
        return BlobInfo(sha256, int(response.headers["content-length"]))

    # -- writing ----------------------------------------------------------------------------

    def put_file(self, path: Path, *, sha256: str | None = None) -> BlobInfo:
        """Upload a file's content unless the server has it already."""
        from modelyard.store.blobs import hash_file

        info = BlobInfo(sha256, path.stat().st_size) if sha256 else hash_file(path)
        if info.sha256 not in self.missing([info.sha256]):
            return info
        self._upload(info, lambda: _file_chunks(path))
        return info

    def put_files(self, files: Iterable[tuple[Path, BlobInfo]]) -> None:
        """Upload many files, asking once which the server lacks."""
        todo = list(files)
        lacking = self.missing(i.sha256 for _, i in todo)
        sent: set[str] = set()
        for path, info in todo:
            if info.sha256 in lacking and info.sha256 not in sent:
                self._upload(info, lambda p=path: _file_chunks(p))  # type: ignore[misc]
                sent.add(info.sha256)

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Upload ``data`` unless the server has it already."""
        info = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if info.sha256 in self.missing([info.sha256]):
            self.session.request(
                "PUT",
                self._path(info.sha256),
                content=data,
                headers={"content-type": "application/octet-stream"},
            )
        return info

    def put_stream(
        self, read: Callable[[int], bytes], *, sha256: str, size: int | None = None
    ) -> BlobInfo:
        """Upload bytes pulled from ``read``; the server verifies them against ``sha256``."""

        def chunks() -> Iterator[bytes]:
            while chunk := read(_CHUNK):
                yield chunk

        headers = {"content-type": "application/octet-stream"}
        if size is not None:
            headers["content-length"] = str(size)
        response = self.session.request(
            "PUT", self._path(sha256), content=chunks(), headers=headers
        )
        return BlobInfo(sha256, int(response.json()["size"]))

    def _upload(self, info: BlobInfo, chunks: Callable[[], Iterator[bytes]]) -> None:
        self.session.request(
            "PUT",
            self._path(info.sha256),
            content=chunks(),
            headers={"content-type": "application/octet-stream", "content-length": str(info.size)},
            replay=chunks,
        )

    # -- reading ----------------------------------------------------------------------------

    def read_bytes(self, sha256: str) -> bytes:
        """A blob's content, verified against its name."""
        response = self.session.request("GET", self._path(sha256), ok=(404,))
        if response.status_code == 404:
            raise IntegrityError(self.location, f"sha256/{sha256}", "is missing from the yard")
        data = response.content
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(
                self.location, f"sha256/{sha256}", "is corrupt (its sha256 differs)"
            )
        return data

    def iter_bytes(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """A byte range of a blob, unverified."""
        headers = {}
        if start or end is not None:
            headers["range"] = f"bytes={start}-{'' if end is None else end - 1}"
        with self.session.stream("GET", self._path(sha256), headers=headers) as response:
            yield from response.iter_bytes(_CHUNK)

    def copy_to(self, sha256: str, dest: Path, *, size: int | None = None) -> None:
        """Download a blob into the new file ``dest``, verified before this returns."""
        try:
            if size is not None and size >= _PARALLEL_MIN:
                self._parallel(sha256, dest, size)
            else:
                self._single(sha256, dest, size)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _single(self, sha256: str, dest: Path, size: int | None) -> None:
        h = hashlib.sha256()
        written = 0
        with self.session.stream("GET", self._path(sha256)) as response, open(dest, "xb") as out:
            for chunk in response.iter_bytes(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                written += len(chunk)
        if h.hexdigest() != sha256 or (size is not None and written != size):
            raise IntegrityError(
                self.location, f"sha256/{sha256}", "arrived corrupt (its sha256 or size differs)"
            )

    def _parallel(self, sha256: str, dest: Path, size: int) -> None:
        url = self.session.api("GET", f"/blobs/{sha256}/url").get("url")
        plain = self.session.plain_client() if url else None

        def fetch(start: int, end: int) -> Iterator[bytes]:
            headers = {"range": f"bytes={start}-{end - 1}"}
            if plain is not None and url:
                with plain.stream("GET", url, headers=headers) as response:
                    response.raise_for_status()
                    yield from response.iter_bytes(_CHUNK)
            else:
                with self.session.stream("GET", self._path(sha256), headers=headers) as r:
                    yield from r.iter_bytes(_CHUNK)

        try:
            _ranges_into(dest, size, fetch)
        finally:
            if plain is not None:
                plain.close()
        if _hash_file(dest) != sha256:
            raise IntegrityError(
                self.location, f"sha256/{sha256}", "arrived corrupt (its sha256 differs)"
            )


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _ranges_into(dest: Path, size: int, fetch: Callable[[int, int], Iterator[bytes]]) -> None:
    """Write ``size`` bytes into ``dest`` from parallel ranged fetches (memory: one chunk each)."""
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)

        def part(start: int) -> None:
            end = min(start + _PART, size)
            at = start
            for chunk in fetch(start, end):
                if at + len(chunk) > end:
                    raise IntegrityError(dest, dest.name, "a ranged part came back too long")
                os.pwrite(fd, chunk, at)
                at += len(chunk)
            if at != end:
                raise IntegrityError(dest, dest.name, "a ranged part came back short")

        with ThreadPoolExecutor(_WORKERS) as pool:
            for future in [pool.submit(part, s) for s in range(0, size, _PART)]:
                future.result()
    finally:
        os.close(fd)
