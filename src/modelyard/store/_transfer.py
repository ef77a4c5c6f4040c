"""Moving big blobs in parallel parts with flat memory, for any remote store.

- :func:`fetch_into` downloads a blob into a new file as parallel ranged reads,
  each written at its offset, and verifies the file's sha256 and size before it
  returns; on any failure (or Ctrl-C) the file is removed.
- :func:`read_parts` and :func:`send_parts` upload: parts are pulled from a
  reader in order (so the caller can hash them as they pass) and sent a few at
  a time, never more than ``workers`` parts held in memory.

Nothing here knows a storage protocol: the caller supplies ``fetch_range`` or
``send``, so the S3 and HTTP stores share it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from modelyard.errors import IntegrityError

__all__ = ["DEFAULT_PART_SIZE", "DEFAULT_WORKERS", "fetch_into", "read_parts", "send_parts"]

DEFAULT_PART_SIZE = 16 * 1024 * 1024
DEFAULT_WORKERS = 8
_CHUNK = 1 << 20

T = TypeVar("T")


class _Stopped(Exception):
    """Another part failed: this one gives up between chunks."""


def fetch_into(
    dest: Path,
    fetch_range: Callable[[int, int], Iterable[bytes]],
    *,
    size: int,
    sha256: str,
    part_size: int = DEFAULT_PART_SIZE,
    workers: int = DEFAULT_WORKERS,
    where: str = "",
    name: str | None = None,
) -> None:
    """Download ``size`` bytes into the new file ``dest`` and verify them against ``sha256``.

    ``fetch_range(start, end)`` yields the bytes ``start..end`` (end exclusive) of
    the blob; it is called once per part of ``part_size`` bytes, up to ``workers``
    at a time, and each chunk is written at its offset as it arrives (memory:
    one chunk per worker). The parts are hashed in order while later ones are
    still coming. A part that comes back short or long, a digest that differs,
    or any error: ``dest`` is removed and :class:`IntegrityError` (or the error)
    raised. ``where`` and ``name`` (default ``sha256/<hex>``) go into messages.
    """
    if size < 0 or part_size <= 0 or workers <= 0:
        raise ValueError(f"bad transfer: size={size}, part_size={part_size}, workers={workers}")
    fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    job = _Fetch(fd, fetch_range, where, name or f"sha256/{sha256}")
    try:
        bounds = [(s, min(s + part_size, size)) for s in range(0, size, part_size)] or [(0, 0)]
        digest = (
            job.in_order(bounds)
            if len(bounds) == 1 or workers == 1
            else job.parallel(bounds, workers)
        )
        if digest != sha256:
            raise IntegrityError(where, job.label, "arrived corrupt (its sha256 differs)")
    except BaseException:
        os.close(fd)
        dest.unlink(missing_ok=True)
        raise
    os.close(fd)


class _Fetch:
    """One download into an open file: parts written at their offsets, hashed in order."""

    def __init__(
        self, fd: int, fetch_range: Callable[[int, int], Iterable[bytes]], where: str, label: str
    ) -> None:
        self.fd = fd
        self.fetch_range = fetch_range
        self.where = where
        self.label = label
        self.stop = threading.Event()

    def in_order(self, bounds: list[tuple[int, int]]) -> str:
        h = hashlib.sha256()
        for start, end in bounds:
            self.part(start, end, h)
        return h.hexdigest()

    def parallel(self, bounds: list[tuple[int, int]], workers: int) -> str:
        h = hashlib.sha256()
        pool = ThreadPoolExecutor(workers, thread_name_prefix="modelyard-fetch")
        try:
            futures = [(s, e, pool.submit(self.part, s, e, None)) for s, e in bounds]
            # Hash each part once it and those before it are written: its bytes are
            # still in the page cache, and the digest is ready when the last lands.
            for start, end, future in futures:
                future.result()
                self.hash_back(start, end, h)
            return h.hexdigest()
        finally:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def part(self, start: int, end: int, h: hashlib._Hash | None) -> None:
        chunks = self.fetch_range(start, end)
        at = start
        try:
            for chunk in chunks:
                if self.stop.is_set():
                    raise _Stopped
                if at + len(chunk) > end:
                    raise IntegrityError(
                        self.where, self.label, f"sent more than the bytes {start}-{end - 1}"
                    )
                os.pwrite(self.fd, chunk, at)
                if h is not None:
                    h.update(chunk)
                at += len(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator holding a connection lets it go now
        if at != end:
            raise IntegrityError(
                self.where,
                self.label,
                f"came back short: {at - start} of the bytes {start}-{end - 1}",
            )

    def hash_back(self, start: int, end: int, h: hashlib._Hash) -> None:
        at = start
        while at < end:
            chunk = os.pread(self.fd, min(_CHUNK, end - at), at)
            if not chunk:
                raise OSError(f"the file ended at byte {at} while it was being verified")
            h.update(chunk)
            at += len(chunk)


def read_parts(read: Callable[[int], bytes], part_size: int) -> Iterator[bytes]:
    """Parts of exactly ``part_size`` bytes pulled from ``read(n)`` (``b""`` at the end);
    the last part may be shorter, and no part is empty (nothing at all for empty input)."""
    if part_size <= 0:
        raise ValueError(f"part_size must be positive, not {part_size}")
    # Every part is let go of as soon as it is yielded: a part held here while the
    # next is read would be one more part in memory than the caller allows for.
    while True:
        first = read(part_size)
        if len(first) == part_size:
            yield first
            del first
            continue
        if not first:
            return
        # A reader that hands out less than asked (a socket): gather a whole part.
        pieces, have = [first], len(first)
        del first
        while have < part_size:
            more = read(part_size - have)
            if not more:
                break
            pieces.append(more)
            have += len(more)
            del more
        part = b"".join(pieces)
        del pieces
        yield part
        del part
        if have < part_size:
            return


def send_parts(
    parts: Iterable[bytes], send: Callable[[int, bytes], T], *, workers: int = DEFAULT_WORKERS
) -> list[T]:
    """``send(number, data)`` for every part (numbered from 1), up to ``workers`` at a time.

    The next part is pulled from ``parts`` only when a worker is free, so at most
    ``workers`` parts are in memory, and ``parts`` is consumed in order in the
    calling thread (it may hash what passes). Returns what ``send`` returned, in
    part order. On the first failure (of ``send`` or of ``parts``) or an
    interrupt, no new part is sent, those on the way finish, and the error is
    raised: the caller then aborts whatever it started.
    """
    if workers <= 0:
        raise ValueError(f"workers must be positive, not {workers}")
    slots = threading.Semaphore(workers)
    failed = threading.Event()
    futures: list[Future[T]] = []

    def one(number: int, box: list[bytes]) -> T:
        try:
            data = box.pop()
            result = send(number, data)
            del data  # freed before the slot is: the next part may be read now
            return result
        except BaseException:
            failed.set()
            raise
        finally:
            slots.release()

    pool = ThreadPoolExecutor(workers, thread_name_prefix="modelyard-send")
    try:
        number = 0
        it = iter(parts)
        while True:
            slots.acquire()
            if failed.is_set():
                break
            data = next(it, None)
            if data is None:
                slots.release()
                break
            number += 1
            # in a box the worker empties: no reference stays with the pool's work item
            futures.append(pool.submit(one, number, [data]))
            del data
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
