"""``/api/v1/blobs``: content-addressed files in and out, streamed both ways.

- ``POST /blobs/missing`` tells a writer which of the blobs it is about to
  upload the yard lacks, so only those travel.
- ``PUT /blobs/{sha256}`` streams the body into the artifact store, which
  hashes it on the way: a body that does not hash to its name is a 400 and
  nothing is stored (an interrupted upload stores nothing either).
- ``GET /blobs/{sha256}`` streams a blob (``Range`` for parallel parts) to a
  caller that may read a version or run holding it; the client verifies every
  byte against the name. ``GET /blobs/{sha256}/url`` hands out a presigned URL
  instead when the store can make one (S3) and the blob is big.

Memory stays flat: bodies go through in chunks, never whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio.to_thread
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from modelyard.errors import IntegrityError
from modelyard.server._routing import ApiRoute, Call, json_response
from modelyard.server.access import BLOB_READ, role
from modelyard.server.errors import ApiError
from modelyard.store import BlobInfo
from modelyard.store.rest import wire
from modelyard.store.rest.wire import Out, Strict

__all__ = ["ROUTES"]

P = wire.API_PREFIX
_MAX_ASK = 10_000
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class PutQuery(Strict, kw_only=True):
    #: the blob's size, when the body is streamed without a Content-Length
    size: int | None = None


class Missing(Strict, kw_only=True):
    sha256: list[str]


class MissingOut(Out, kw_only=True):
    missing: list[str]


class Stored(Out, kw_only=True):
    sha256: str
    size: int
    #: False when the yard had the blob already (nothing was written)
    stored: bool


class BlobUrl(Out, kw_only=True):
    sha256: str
    size: int
    #: a presigned URL to GET without a token, or None: GET /blobs/{sha256} instead
    url: str | None = None


def missing(call: Call) -> MissingOut:
    """Which of these blobs the yard does not have."""
    body: Missing = call.body
    if len(body.sha256) > _MAX_ASK:
        raise ApiError(
            413, "payload_too_large", f"ask about at most {_MAX_ASK} blobs a call", field="sha256"
        )
    bad = [s for s in body.sha256 if not _HEX64.match(s)]
    if bad:
        raise ApiError(400, "invalid_value", f"not a sha256: {bad[0]!r}", field="sha256")
    wanted = list(dict.fromkeys(body.sha256))
    stat = call.state.artifacts.stat
    if len(wanted) > 8:
        with ThreadPoolExecutor(16) as pool:
            found = list(pool.map(stat, wanted))
    else:
        found = [stat(s) for s in wanted]
    return MissingOut(missing=[s for s, info in zip(wanted, found, strict=True) if info is None])


async def put_blob(call: Call) -> Response:
    """Store a blob streamed in the body, verified against its name."""
    sha256 = call.path["sha256"]
    limit = call.state.settings.max_blob_bytes
    declared = call.request.headers.get("content-length")
    size = int(declared) if declared is not None and declared.isdigit() else None
    query: PutQuery = call.query or PutQuery()
    if query.size is not None:
        if query.size < 0 or (size is not None and size != query.size):
            raise ApiError(
                400, "invalid_value", "size differs from the body's length", field="size"
            )
        size = query.size
    if size is not None and size > limit:
        raise ApiError(413, "payload_too_large", f"a blob may be at most {limit} bytes")
    artifacts = call.state.artifacts
    existing: BlobInfo | None = await anyio.to_thread.run_sync(artifacts.stat, sha256)
    if existing is not None:
        return json_response(Stored(sha256=sha256, size=existing.size, stored=False))
    reader = _BodyReader(call, limit)
    pump = asyncio.ensure_future(reader.pump())
    try:
        info = await anyio.to_thread.run_sync(
            lambda: artifacts.put_stream(reader.read, sha256=sha256, size=size)
        )
    except IntegrityError as exc:
        raise ApiError(
            400,
            "integrity_error",
            f"the body of blob {sha256} {exc.problem}; nothing was stored",
            field="sha256",
            detail={"file": f"sha256/{sha256}", "problem": exc.problem},
        ) from None
    except _TooBig:
        raise ApiError(413, "payload_too_large", f"a blob may be at most {limit} bytes") from None
    except ClientDisconnect:
        raise ApiError(400, "incomplete_body", "the upload ended before the body did") from None
    finally:
        if not pump.done():  # the store stopped reading early (a mismatch, a blob it had)
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
    return json_response(Stored(sha256=sha256, size=info.size, stored=True), 201)


async def get_blob(call: Call) -> Response:
    """A blob's bytes (or a range of them); the caller verifies them against the name."""
    sha256 = call.path["sha256"]
    artifacts = call.state.artifacts
    info: BlobInfo | None = await anyio.to_thread.run_sync(artifacts.stat, sha256)
    if info is None:
        raise ApiError(404, "blob_not_found", f"blob {sha256} is not stored", field="sha256")
    headers = {
        "accept-ranges": "bytes",
        "x-sha256": sha256,
        "etag": f'"{sha256}"',
        "cache-control": "private, max-age=31536000, immutable",
    }
    start, end = 0, info.size
    status = 200
    wanted = call.request.headers.get("range")
    if wanted:
        start, end = _range(wanted, info.size)
        status = 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{info.size}"
    headers["content-length"] = str(end - start)
    if call.request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    if start == end:
        return Response(b"", status, headers=headers, media_type="application/octet-stream")
    chunks: Iterator[bytes] = artifacts.iter_bytes(sha256, start, end)
    return StreamingResponse(chunks, status, headers=headers, media_type="application/octet-stream")


def blob_url(call: Call) -> BlobUrl:
    """A presigned URL for a big blob when the store can make one."""
    sha256 = call.path["sha256"]
    artifacts = call.state.artifacts
    info = artifacts.stat(sha256)
    if info is None:
        raise ApiError(404, "blob_not_found", f"blob {sha256} is not stored", field="sha256")
    settings = call.state.settings
    url = None
    presign = getattr(artifacts, "presign", None)
    if presign is not None and info.size >= settings.presign_min_bytes:
        url = presign(sha256, settings.presign_seconds)
    return BlobUrl(sha256=sha256, size=info.size, url=url)


def _range(text: str, size: int) -> tuple[int, int]:
    found = _RANGE.match(text.strip())
    if not found or (not found.group(1) and not found.group(2)):
        raise ApiError(
            416,
            "range_not_satisfiable",
            "Range must be one bytes=start-end range",
            headers={"content-range": f"bytes */{size}"},
        )
    first, last = found.group(1), found.group(2)
    if not first:  # the last N bytes
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    if start >= size or end <= start:
        raise ApiError(
            416,
            "range_not_satisfiable",
            f"the blob has {size} bytes",
            headers={"content-range": f"bytes */{size}"},
        )
    return start, end


class _TooBig(Exception):
    pass


class _BodyReader:
    """``read(n)`` for a store in a worker thread, fed by the request body as it arrives.

    The event loop keeps receiving while the store hashes and writes: blocks of
    1 MiB go through a queue of a few blocks (memory stays flat; a full queue
    pauses the receiving, which pauses the client). Without it each side waited
    for the other and an upload ran at half speed.
    """

    _BLOCK = 1 << 20
    _AHEAD = 8

    def __init__(self, call: Call, limit: int) -> None:
        self._request = call.request
        self._limit = limit
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(self._AHEAD)
        self._left = b""
        self._ended = False

    async def pump(self) -> None:
        """Receive the body into the queue (runs on the event loop)."""
        pieces: list[bytes] = []
        have = seen = 0
        try:
            async for chunk in self._request.stream():
                seen += len(chunk)
                if seen > self._limit:
                    raise _TooBig
                pieces.append(chunk)
                have += len(chunk)
                if have >= self._BLOCK:
                    await self._put(b"".join(pieces))
                    pieces, have = [], 0
            if pieces:
                await self._put(b"".join(pieces))
            await self._put(None)
        except BaseException as exc:  # the store sees it and stops; nothing is stored
            await self._put(exc, force=True)
            if not isinstance(exc, Exception):
                raise

    async def _put(self, item: bytes | BaseException | None, *, force: bool = False) -> None:
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                if force:  # make room: what is queued will not be stored anyway
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()
                    continue
                await asyncio.sleep(0.0005)

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes of the body (``b""`` at its end); runs in the store's thread.

        A whole block is handed over as it came when it fits: no copy.
        """
        if n <= 0:
            return b""
        if not self._left:
            if self._ended:
                return b""
            item = self._queue.get()
            if item is None:
                self._ended = True
                return b""
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            if len(item) <= n:
                return item
            self._left = item
        out, self._left = self._left[:n], self._left[n:]
        return out


def _route(path: str, handler: Any, method: str, access: Any, **kw: Any) -> ApiRoute:
    return ApiRoute(P + path, handler, method=method, access=access, **kw)


B = "/blobs/{sha256}"

ROUTES = [
    _route("/blobs/missing", missing, "POST", role("writer"), body=Missing, response=MissingOut),
    _route(B, put_blob, "PUT", role("writer"), raw_body=True, query=PutQuery, response=Stored),
    _route(B, get_blob, "GET", BLOB_READ),
    _route(B + "/url", blob_url, "GET", BLOB_READ, response=BlobUrl),
]
