"""A content-addressed blob store in a local (or shared) folder.

Each blob is a file named by the sha256 of its content::

    <root>/sha256/<first two hex digits>/<sha256 hex>

A blob is written to a private temporary file in ``<root>/tmp``, flushed to
disk, then renamed into place, so a reader never sees half a blob and two
writers of the same content simply both land the same bytes. Stored blobs are
made read-only. Every read is checked against the blob's name.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from modelyard.errors import IntegrityError
from modelyard.store import BlobInfo

__all__ = ["LocalBlobStore", "hash_file"]

_CHUNK = 1 << 20
#: blobs from this size on (or of unknown size) are hashed and written in two threads
_OVERLAP_FROM = 16 * _CHUNK
#: what a big blob's reader is asked for at a time (it may hand over less)
_BIG_READ = 8 * _CHUNK
_HEX = re.compile(r"^[0-9a-f]{64}$")


def hash_file(path: Path) -> BlobInfo:
    """sha256 and size of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return BlobInfo(h.hexdigest(), size)


class LocalBlobStore:
    """Blobs in a folder; safe for several processes (and machines on a shared folder)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def location(self) -> str:
        """The blob folder."""
        return str(self.root)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def path(self, sha256: str) -> Path:
        """Where a blob lives (whether or not it is stored)."""
        if not _HEX.match(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / "sha256" / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha256).is_file()

    def put_file(self, path: Path, *, sha256: str | None = None) -> BlobInfo:
        """Store the content of ``path``; a blob already stored is not written again.

        The file is hashed first (unless the caller already did: ``sha256``), so
        logging the same large file again costs a read, not a write. The copy is
        hashed too: if the file changed meanwhile, nothing is stored.
        """
        info = BlobInfo(sha256, path.stat().st_size) if sha256 else hash_file(path)
        if self.exists(info.sha256):
            return info
        with open(path, "rb") as src:
            self._write(src.read, info, size=info.size)
        return info

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data``."""
        info = BlobInfo(hashlib.sha256(data).hexdigest(), len(data))
        if not self.exists(info.sha256):
            chunks = iter([data, b""])
            self._write(lambda _n: next(chunks), info, size=info.size)
        return info

    def stat(self, sha256: str) -> BlobInfo | None:
        """The blob's size without reading it; ``None`` when it is not stored."""
        try:
            return BlobInfo(sha256, self.path(sha256).stat().st_size)
        except FileNotFoundError:
            return None

    def put_stream(
        self, read: Callable[[int], bytes], *, sha256: str, size: int | None = None
    ) -> BlobInfo:
        """Store bytes pulled from ``read`` (``b""`` at the end), verified before they are
        visible: :class:`IntegrityError` and nothing stored if they do not hash to ``sha256``
        (or add up to ``size``). A blob already stored is not written again."""
        existing = self.stat(sha256)
        if existing is not None:
            return existing
        counted = 0

        def counting(n: int) -> bytes:
            nonlocal counted
            chunk = read(n)
            counted += len(chunk)
            if size is not None and counted > size:
                raise IntegrityError(self.root, f"sha256/{sha256}", "is longer than declared")
            return chunk

        self.path(sha256)  # checks the name before anything is read
        self._write(counting, BlobInfo(sha256, size or 0), size=size)
        return BlobInfo(sha256, counted)

    def presign(self, sha256: str, expires_s: int) -> str | None:
        """``None``: a folder has no URLs to hand out (an S3 store presigns GETs)."""
        return None

    def iter_bytes(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` (end exclusive) of a blob, unverified: for a reader who
        verifies (a client of the server)."""
        try:
            fh = open(self.path(sha256), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError:
            raise IntegrityError(
                self.root, f"sha256/{sha256}", "is missing from the blob store"
            ) from None
        return _chunks(fh, start, end)

    def read_bytes(self, sha256: str) -> bytes:
        """The blob's content; :class:`IntegrityError` if it does not match its name."""
        target = self.path(sha256)
        try:
            data = target.read_bytes()
        except FileNotFoundError:
            raise IntegrityError(
                self.root, f"sha256/{sha256}", "is missing from the blob store"
            ) from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(self.root, f"sha256/{sha256}", "is corrupt (its sha256 differs)")
        return data

    def copy_to(self, sha256: str, dest: Path, *, size: int | None = None) -> None:
        """Copy a blob to the new file ``dest``, hashing it on the way.

        A blob that does not hash to its name (or has the wrong size) is
        :class:`IntegrityError` and ``dest`` is removed: a corrupt store never
        yields a file that looks fine.
        """
        source = self.path(sha256)
        h = hashlib.sha256()
        written = 0
        try:
            with open(source, "rb") as src, open(dest, "xb") as out:
                while chunk := src.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
        except FileNotFoundError:
            if not source.exists():
                dest.unlink(missing_ok=True)
                raise IntegrityError(
                    self.root, f"sha256/{sha256}", "is missing from the blob store"
                ) from None
            raise
        if h.hexdigest() != sha256 or (size is not None and written != size):
            dest.unlink(missing_ok=True)
            raise IntegrityError(self.root, f"sha256/{sha256}", "is corrupt (its sha256 differs)")

    def _write(
        self, read: Callable[[int], bytes], info: BlobInfo, *, size: int | None = None
    ) -> None:
        target = self.path(info.sha256)
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_dir / f"{info.sha256[:16]}-{uuid.uuid4().hex}"
        h = hashlib.sha256()
        try:
            written = 0
            with open(tmp, "xb") as out:
                if size is not None and size < _OVERLAP_FROM:
                    while chunk := read(_CHUNK):
                        h.update(chunk)
                        out.write(chunk)
                        written += len(chunk)
                else:
                    written = _hash_while_writing(read, h, out)
                out.flush()
                os.fsync(out.fileno())
            if size is not None and written != size:
                raise IntegrityError(
                    self.root, f"sha256/{info.sha256}", f"has {written} bytes, not {size}"
                )
            if h.hexdigest() != info.sha256:
                raise IntegrityError(
                    self.root, f"sha256/{info.sha256}", "changed while it was being stored"
                )
            os.chmod(tmp, 0o444)
            # Same content under the same name: whichever writer renames last, the
            # blob is the same bytes, and readers only ever see whole files.
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)


def _hash_while_writing(read: Callable[[int], bytes], h: Any, out: BinaryIO) -> int:
    """Copy ``read``'s bytes to ``out`` hashing them, the writes in a second thread.

    Hashing and writing both let go of the GIL, so a big blob takes about as long
    as the slower of the two instead of their sum. At most a few chunks wait.
    """
    written = 0
    pending: deque[Future[int]] = deque()
    with ThreadPoolExecutor(1, thread_name_prefix="modelyard-blob-write") as pool:
        try:
            while chunk := read(_BIG_READ):
                pending.append(pool.submit(out.write, chunk))
                h.update(chunk)
                written += len(chunk)
                while len(pending) > 4:
                    pending.popleft().result()
        finally:
            while pending:
                pending.popleft().result()
    return written


def _chunks(fh: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with fh:
        fh.seek(start)
        left = None if end is None else max(end - start, 0)
        while left is None or left > 0:
            chunk = fh.read(_CHUNK if left is None else min(_CHUNK, left))
            if not chunk:
                return
            if left is not None:
                left -= len(chunk)
            yield chunk
