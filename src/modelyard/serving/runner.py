"""Where a ``predict`` call runs: on the event loop when it is tiny, in a thread otherwise.

Handing a 1 ms predict to a thread costs about as much again (a queue put, a
GIL hand-over and a loop wake-up each way), and buys no parallelism for
GIL-bound Python, so calls that recently took little CPU run inline on the
event loop. The decision uses CPU time, not wall time, so a busy machine (where
every call's wall time stretches) does not push cheap calls into the pool; a
call that waits (I/O, sleeps, another process) shows a long wall time with
little CPU, and goes to the pool too.

Anything else, or a large body, runs in a small thread pool, where the request
timeout applies: the caller gets a 504 at the deadline. Python cannot interrupt
a running thread, so an overrun call finishes in the background and its result
is dropped; the pool is small, so overruns cannot pile up without bound. The
cost of running inline is the first call that is unexpectedly slow: it cannot
be cut short, so its caller gets the 504 only when it returns, and the jump in
the means sends later calls to the pool, where the deadline holds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from modelyard.serving.errors import RequestError

T = TypeVar("T")

#: a call runs inline when its recent mean CPU time is under this (seconds) ...
INLINE_CPU_BUDGET_S = 0.005
#: ... its recent mean wall time under this (longer: waiting calls go to the pool) ...
INLINE_WALL_BUDGET_S = 0.05
#: ... and the request body is at most this large (bytes)
INLINE_MAX_BODY = 64 * 1024
_ALPHA = 0.2


class Timing:
    """Exponentially weighted means of one model version's predict calls: wall and CPU."""

    __slots__ = ("cpu", "wall")

    def __init__(self, wall: float | None, cpu: float | None = None) -> None:
        #: ``None`` until the first measurement: run in a thread until known
        self.wall = wall
        self.cpu = cpu if cpu is not None else wall

    def observe(self, wall: float, cpu: float) -> None:
        """Fold one call's wall and CPU seconds in."""
        if self.wall is None or self.cpu is None:
            self.wall, self.cpu = wall, cpu
            return
        self.wall += _ALPHA * (wall - self.wall)
        self.cpu += _ALPHA * (cpu - self.cpu)

    def inline_ok(self) -> bool:
        """Whether calls have recently been cheap enough to run on the loop."""
        return (
            self.wall is not None
            and self.cpu is not None
            and self.cpu < INLINE_CPU_BUDGET_S
            and self.wall < INLINE_WALL_BUDGET_S
        )


class PredictRunner:
    """Runs predict callables inline or in a thread pool, with a timeout."""

    def __init__(self, timeout: float, *, threads: int = 4, inline: bool = True) -> None:
        self.timeout = timeout
        self._threads = threads
        self._inline = inline
        # created on first use, so a pre-forked parent never owns threads
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[[], T], timing: Timing, *, small: bool) -> T:
        """Call ``fn``; 504 (``DEADLINE_EXCEEDED``) if it runs past the timeout in a thread."""
        if self._inline and small and timing.inline_ok():
            start, cpu_start = time.perf_counter(), time.thread_time()
            try:
                result = fn()
            finally:
                took = time.perf_counter() - start
                timing.observe(took, time.thread_time() - cpu_start)
            if took > self.timeout:
                # A call that had always been fast overran: its caller still gets the
                # 504 it asked for, and the jump in the mean sends later calls to the pool.
                raise self._deadline()
            return result
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor(), _timed, fn, timing)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except asyncio.TimeoutError:
            raise self._deadline() from None

    def _deadline(self) -> RequestError:
        return RequestError(
            "DEADLINE_EXCEEDED",
            f"the model did not answer within the request timeout ({self.timeout:g} s)",
        )

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="modelyard-predict")
        return self._pool

    def close(self) -> None:
        """Stop the pool; calls still running finish on their own."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _timed(fn: Callable[[], Any], timing: Timing) -> Any:
    start, cpu_start = time.perf_counter(), time.thread_time()
    try:
        return fn()
    finally:
        timing.observe(time.perf_counter() - start, time.thread_time() - cpu_start)
