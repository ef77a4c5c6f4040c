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
from pathlib import Path
from urllib.parse import urlsplit

from modelyard.errors import IntegrityError, YardError
from modelyard.store import BlobInfo
from modelyard.store.rest._http import HttpSession
from modelyard.store.rest._transport import TransportError
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

    def __init__(
        self,
        session: HttpSession,
        *,
        part_size: int | None = None,
        workers: int | None = None,
        parallel_min: int | None = None,
    ) -> None:
        self.session = session
        #: download parts and how many at once (``MODELYARD_HTTP_PART_SIZE``, ``..._WORKERS``)
        self.part_size = part_size or _env_int("MODELYARD_HTTP_PART_SIZE", _PART)
        self.workers = workers or _env_int("MODELYARD_HTTP_WORKERS", _WORKERS)
        #: blobs at least this big come down in parallel parts
        self.parallel_min = parallel_min or max(self.part_size * 2, _PARALLEL_MIN)

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
        self._path(info.sha256)
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

        path = self._path(sha256)
        # The declared size travels beside the body, not as its Content-Length: a
        # reader that yields more or less is the server's to refuse, stored nowhere.
        response = self.session.request(
            "PUT",
            path,
            content=chunks(),
            params={"size": size},
            headers={"content-type": "application/octet-stream"},
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

    def _missing(self, sha256: str) -> IntegrityError:
        return IntegrityError(self.location, f"sha256/{sha256}", "is missing from the yard")

    def read_bytes(self, sha256: str) -> bytes:
        """A blob's content, verified against its name."""
        response = self.session.request("GET", self._path(sha256), ok=(404,))
        if response.status_code == 404:
            raise self._missing(sha256)
        data = response.content
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(
                self.location, f"sha256/{sha256}", "is corrupt (its sha256 differs)"
            )
        return data

    def iter_bytes(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """A byte range of a blob, unverified; a missing blob raises before the first chunk."""
        path = self._path(sha256)
        if end is not None and end <= start:
            if self.stat(sha256) is None:
                raise self._missing(sha256)
            return iter(())
        headers = {}
        if start or end is not None:
            headers["range"] = f"bytes={start}-{'' if end is None else end - 1}"
        opened = self.session.stream("GET", path, headers=headers, ok=(404, 416))
        response = opened.__enter__()
        if response.status_code in (404, 416):
            opened.__exit__(None, None, None)
            if response.status_code == 404:
                raise self._missing(sha256)
            return iter(())  # the range starts past the end

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_bytes(_CHUNK)
            finally:
                opened.__exit__(None, None, None)

        return chunks()

    def copy_to(self, sha256: str, dest: Path, *, size: int | None = None) -> None:
        """Download a blob into the new file ``dest``, verified before this returns.

        Big blobs come down in parallel ranged parts (from a presigned URL when the
        server's store makes one); a blob that does not match is never left in ``dest``.
        """
        path = self._path(sha256)
        if dest.exists():  # a new file only: never write over (or remove) what was there
            raise FileExistsError(dest)
        try:
            if size is not None and size >= self.parallel_min:
                self._parallel(sha256, dest, size)
            else:
                self._single(path, sha256, dest, size)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def _single(self, path: str, sha256: str, dest: Path, size: int | None) -> None:
        h = hashlib.sha256()
        written = 0
        with open(dest, "xb") as out, self.session.stream("GET", path, ok=(404,)) as response:
            if response.status_code == 404:
                raise self._missing(sha256)
            for chunk in response.iter_bytes(_CHUNK):
                h.update(chunk)
                out.write(chunk)
                written += len(chunk)
        if size is not None and written != size:
            raise IntegrityError(
                self.location, f"sha256/{sha256}", f"arrived corrupt: {written} bytes, not {size}"
            )
        if h.hexdigest() != sha256:
            raise IntegrityError(
                self.location, f"sha256/{sha256}", "arrived corrupt (its sha256 differs)"
            )

    def _parallel(self, sha256: str, dest: Path, size: int) -> None:
        from modelyard.store._transfer import fetch_into

        found = self.session.request("GET", f"{API_PREFIX}/blobs/{sha256}/url", ok=(404,))
        if found.status_code == 404:
            raise self._missing(sha256)
        where = found.json()
        if int(where["size"]) != size:
            raise IntegrityError(
                self.location,
                f"sha256/{sha256}",
                f"is corrupt: the yard has {where['size']} bytes, not {size}",
            )
        url = where.get("url")
        plain = self.session.plain_client() if url else None

        def fetch(start: int, end: int) -> Iterator[bytes]:
            headers = {"range": f"bytes={start}-{end - 1}"}
            if plain is not None:  # a presigned URL: no token goes there
                try:
                    with plain.stream("GET", url, headers=headers) as response:
                        if response.status_code != 206:
                            raise IntegrityError(
                                self.location,
                                f"sha256/{sha256}",
                                f"the presigned download answered {response.status_code}",
                            )
                        yield from response.iter_bytes(_CHUNK)
                except TransportError as exc:
                    # the URL's query is a credential: only its origin is named
                    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
                    raise YardError(
                        f"cannot download blob sha256/{sha256} from its presigned URL at "
                        f"{origin}: {str(exc) or type(exc).__name__}"
                    ) from None
            else:
                with self.session.stream("GET", self._path(sha256), headers=headers) as r:
                    yield from r.iter_bytes(_CHUNK)

        try:
            fetch_into(
                dest,
                fetch,
                size=size,
                sha256=sha256,
                part_size=self.part_size,
                workers=self.workers,
                where=self.location,
            )
        finally:
            if plain is not None:
                plain.close()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    return int(text) if text and text.isdigit() and int(text) > 0 else default
