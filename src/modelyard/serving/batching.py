"""Adaptive micro-batching: concurrent requests to one model share one ``predict``.

Requests queue per model. The dispatcher takes whatever is queued (up to
``max_size`` rows' worth of requests), concatenates compatible ones along the
first axis, calls ``predict`` once and hands each request its slice of the
result. It never waits for company when nobody else is arriving: a lone
request is dispatched at once, so batching costs nothing at low concurrency.
Under load, requests pile up while a batch runs, and the next batch takes them
all; when other requests are already being read, it waits for them at most
``max_wait`` seconds.

A request that breaks a batch fails alone: if the combined call raises, each
request of that batch is retried on its own and gets its own answer or error.
Only requests with the same columns, dtypes and trailing shape, the same model
version and no params are combined.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelyard.serving.errors import RequestError
from modelyard.serving.slot import Loaded

__all__ = ["Batcher"]

log = logging.getLogger("modelyard.serving")

# run(loaded, data, params, small) -> predictions
RunFn = Callable[[Loaded, Any, "dict[str, Any] | None", bool], Awaitable[Any]]


@dataclass(eq=False)
class _Item:
    loaded: Loaded
    data: Any
    params: dict[str, Any] | None
    rows: int
    small: bool
    future: asyncio.Future[tuple[Any, Loaded]]
    key: Any = field(default=None)


class Batcher:
    """The micro-batching queue of one model slot."""

    def __init__(self, run: RunFn, *, max_size: int, max_wait: float) -> None:
        self._run = run
        self.max_size = max_size
        self.max_wait = max_wait
        self._queue: deque[_Item] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: requests being read that will probably join the queue
        self.arriving = 0
        #: (batches, requests) dispatched, for /health and tests
        self.batches = 0
        self.batched_requests = 0

    def start(self) -> None:
        """Start the dispatcher on the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._dispatch())

    async def stop(self) -> None:
        """Stop the dispatcher; queued requests are cancelled."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.cancel()

    def can_batch(self, loaded: Loaded, data: Any, params: Any, rows: int | None) -> bool:
        """Whether this request may join a batch at all."""
        return (
            loaded.spec.batchable
            and not params
            and rows is not None
            and 0 < rows < self.max_size
            and isinstance(data, (pd.DataFrame, np.ndarray))
        )

    async def submit(
        self, loaded: Loaded, data: Any, rows: int, *, small: bool
    ) -> tuple[Any, Loaded]:
        """Queue one request; returns its predictions and the version that made them."""
        future: asyncio.Future[tuple[Any, Loaded]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Item(loaded, data, None, rows, small, future, _key(data)))
        self._wake.set()
        return await future

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._gather()
                batch = self._take()
                if not batch:
                    continue
                try:
                    await self._run_batch(batch)
                except Exception as exc:  # never let one batch stop the dispatcher
                    log.exception("batch dispatch failed")
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)

    async def _gather(self) -> None:
        # Requests already being read are a few loop iterations from the queue:
        # give them those iterations (bounded by max_wait) rather than run without them.
        if self.max_wait <= 0 or not self.arriving:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while self.arriving and self._rows_queued() < self.max_size and loop.time() < deadline:
            await asyncio.sleep(0)

    def _rows_queued(self) -> int:
        return sum(i.rows for i in self._queue)

    def _take(self) -> list[_Item]:
        first = self._queue.popleft()
        if first.future.done():  # its caller gave up (timeout, disconnect)
            return []
        batch = [first]
        rows = first.rows
        kept: deque[_Item] = deque()
        while self._queue and rows < self.max_size:
            item = self._queue.popleft()
            if item.future.done():
                continue
            if (
                item.loaded is first.loaded
                and item.key == first.key
                and rows + item.rows <= self.max_size
            ):
                batch.append(item)
                rows += item.rows
            else:
                kept.append(item)
        # whatever could not join keeps its place at the front, in order
        self._queue.extendleft(reversed(kept))
        return batch

    async def _run_batch(self, batch: list[_Item]) -> None:
        loaded = batch[0].loaded
        small = all(i.small for i in batch)
        if len(batch) > 1:
            self.batches += 1
            self.batched_requests += len(batch)
            try:
                combined = _concat([i.data for i in batch])
                result = await self._run(loaded, combined, None, small)
                parts = _split(result, [i.rows for i in batch])
            except Exception as exc:
                if isinstance(exc, RequestError) and exc.error_code == "DEADLINE_EXCEEDED":
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(exc)
                    return
                log.debug("batch of %d failed (%s); retrying one by one", len(batch), exc)
                parts = None
            if parts is not None:
                for item, part in zip(batch, parts, strict=True):
                    if not item.future.done():
                        item.future.set_result((part, loaded))
                return
        for item in batch:
            if item.future.done():
                continue
            try:
                result = await self._run(item.loaded, item.data, None, item.small)
            except Exception as exc:
                if not item.future.done():
                    item.future.set_exception(exc)
            else:
                if not item.future.done():
                    item.future.set_result((result, item.loaded))


def _key(data: Any) -> Any:
    if isinstance(data, np.ndarray):
        return ("nd", data.dtype.str, data.shape[1:])
    frame: pd.DataFrame = data
    return ("df", tuple(frame.columns), tuple(str(t) for t in frame.dtypes))


def _concat(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)
    blocks = [p.to_numpy() for p in parts] if _one_dtype(first) else None
    if blocks is not None:
        # one dtype throughout: stacking the values is far cheaper than pd.concat
        return pd.DataFrame(np.concatenate(blocks), columns=first.columns)
    return pd.concat(parts, ignore_index=True)


def _one_dtype(frame: pd.DataFrame) -> bool:
    dtypes = set(frame.dtypes)
    return len(dtypes) == 1 and next(iter(dtypes)).kind in "biuf"


def _split(result: Any, rows: list[int]) -> list[Any] | None:
    total = sum(rows)
    try:
        n = len(result)
    except TypeError:
        return None
    if n != total or isinstance(result, (dict, str, bytes)):
        return None
    out = []
    start = 0
    for r in rows:
        if isinstance(result, (pd.DataFrame, pd.Series)):
            out.append(result.iloc[start : start + r])
        else:
            out.append(result[start : start + r])
        start += r
    return out
