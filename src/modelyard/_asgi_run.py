"""Running an ASGI app: one process, or pre-forked workers on one inherited socket.

Shared by ``modelyard serve`` (scoring) and ``modelyard server`` (the yard).
SIGTERM or Ctrl-C drains: each worker stops accepting connections, finishes
the requests in flight and exits; the parent waits for its workers and exits
0. A worker that dies is replaced, but not more than a few times a minute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TlsFiles", "bind_socket", "catch_stop_signals", "run_prefork", "run_uvicorn"]

log = logging.getLogger("modelyard")

#: a worker that dies is restarted, but not more often than this many times a minute
_MAX_RESTARTS_PER_MIN = 5


class _StopLatch:
    """This process's stop request: SIGTERM / Ctrl-C, remembered until a server runs."""

    def __init__(self) -> None:
        self.requested = False
        #: this process's uvicorn server, once built (a stop then tells it to exit)
        self.server: Any = None

    def reset(self) -> None:
        self.requested = False
        self.server = None

    def request(self, signum: int = signal.SIGTERM, frame: Any = None) -> None:
        self.requested = True
        if self.server is not None:
            self.server.should_exit = True


_stop = _StopLatch()


def catch_stop_signals() -> None:
    """Remember a SIGTERM / Ctrl-C from now on and honour it once the server runs.

    Called before a server announces its address: a stop sent the moment the
    address is known (a supervisor, a test, a quick Ctrl-C) then drains and
    exits 0 instead of killing a process that has not installed its handlers
    yet, or being lost by a worker that was still starting.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop.request)


@dataclass(frozen=True)
class TlsFiles:
    """A certificate chain and its key, for HTTPS."""

    certfile: str
    keyfile: str


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port=0`` picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # is IPPROTO_TCP, and without it every keep-alive response waits ~40 ms for Nagle
    # (the same cause as uvicorn's "--workers N loses TCP_NODELAY").
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_uvicorn(
    app: Any, sock: socket.socket, *, drain_seconds: int, tls: TlsFiles | None = None
) -> None:
    """Serve ``app`` on ``sock`` in this process until SIGTERM / Ctrl-C (then drain)."""
    import uvicorn

    _larger_body_buffer()

    config = uvicorn.Config(
        app,
        lifespan="on",
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=drain_seconds,
        # a Python-side parser only when the fast ones are missing
        http="auto",
        loop="auto",
        ssl_certfile=tls.certfile if tls else None,
        ssl_keyfile=tls.keyfile if tls else None,
    )
    server = uvicorn.Server(config)
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal against the handler
    # that was installed before it: that one only takes note, so a drained server
    # exits 0; and a stop that came before uvicorn's own handlers reaches it here.
    catch_stop_signals()
    _stop.server = server
    if _stop.requested:
        server.should_exit = True
    server.run(sockets=[sock])


#: request body bytes uvicorn buffers before it stops reading the socket
_BODY_BUFFER = 1 << 20


def _larger_body_buffer() -> None:
    # uvicorn pauses reading once 64 KiB of a body wait for the app, so a 1 GB upload
    # took 16,000 pause/resume turns of the event loop and ran at ~450 MB/s with the
    # loop idle. Its parsers read the limit as a module global; 1 MiB per connection
    # keeps memory bounded and the socket busy.
    import importlib

    for name in ("flow_control", "httptools_impl", "h11_impl"):
        try:
            module = importlib.import_module(f"uvicorn.protocols.http.{name}")
        except ImportError:  # httptools not installed
            continue
        if getattr(module, "HIGH_WATER_LIMIT", 0) < _BODY_BUFFER:
            setattr(module, "HIGH_WATER_LIMIT", _BODY_BUFFER)  # noqa: B010 - a module global


def run_prefork(
    workers: int,
    child: Callable[[int], None],
    *,
    after_spawn: Callable[[], None] | None = None,
) -> None:
    """Fork ``workers`` children each running ``child(index)``; supervise until stopped."""
    import uvicorn  # noqa: F401 - once, before the fork: shared pages, and workers start sooner

    children: dict[int, int] = {}
    stopping = False
    restarts: list[float] = []

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _run_child(child, index, stopped_already=lambda: stopping)
        children[pid] = index

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        if not stopping:
            log.info("draining %d worker(s)", len(children))
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if _stop.requested:
        log.info("stopped before any worker started")
        return
    for i in range(workers):
        spawn(i)
    if after_spawn is not None:
        after_spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:  # pragma: no cover - PEP 475 retries wait()
            continue
        index = children.pop(pid, None)
        if index is None or stopping:
            continue
        now = time.monotonic()
        restarts[:] = [t for t in restarts if now - t < 60] + [now]
        code = os.waitstatus_to_exitcode(status)
        if len(restarts) > _MAX_RESTARTS_PER_MIN:
            log.error("worker %d exited (%d) too often; stopping the server", index, code)
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %d exited (%d); starting a new one", index, code)
        spawn(index)


def _run_child(
    child: Callable[[int], None], index: int, *, stopped_already: Callable[[], bool]
) -> None:  # pragma: no cover - runs in the child
    # The parent's handler came across the fork; a stop it caught here, before this
    # worker's own handler was in place, must still stop this worker.
    _stop.reset()
    catch_stop_signals()
    if stopped_already():
        _stop.request()
    code = 0
    try:
        child(index)
    except BaseException:
        log.exception("worker %d failed", index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)
