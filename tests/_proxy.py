"""A real HTTP/1.1 proxy on loopback, between a client and a yard server, for the tests.

``HttpProxy(upstream)`` listens on ``127.0.0.1`` (``proxy.url``) and relays
each request it reads, whole, to ``upstream`` over a connection of its own,
then the answer back. Every request is recorded (``proxy.seen``: method, path,
headers, body, which client connection it came on, the status answered), and
``rule`` decides per request what happens to it:

- ``FORWARD`` (the default): relay it and its answer;
- ``DROP``: relay it, read the whole answer, then close the client's
  connection without a byte of it (the server did the work; the client never
  hears of it);
- ``Answer(status, ...)``: answer it here, without the server;
- ``Stall(seconds)``: hold it that long, then relay it (``math.inf``: never, the
  connection is closed when the proxy stops);
- ``Rewrite(fn)``: relay it, and pass the answer's body through ``fn``.

Threads and blocking sockets; bodies by ``Content-Length`` or chunked.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import urlsplit

__all__ = ["DROP", "FORWARD", "Answer", "HttpProxy", "Rewrite", "Seen", "Stall"]


@dataclass
class Seen:
    """One request the proxy read."""

    conn: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    #: the status the client was answered (``None``: it got no answer)
    status: int | None = None
    answer_headers: dict[str, str] = field(default_factory=dict)
    #: the body the server answered (also when it was dropped or rewritten)
    answer_body: bytes = b""

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class Answer:
    """Answer the request from the proxy."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Stall:
    """Hold the request ``seconds`` before relaying it."""

    seconds: float


@dataclass(frozen=True)
class Rewrite:
    """Relay the request; the client gets ``fn(body)`` as the answer's body."""

    fn: Callable[[bytes], bytes]


FORWARD = "forward"
DROP = "drop"
Action = str | Answer | Stall | Rewrite
Rule = Callable[[Seen], Action]

_REASONS = {200: "OK", 302: "Found", 502: "Bad Gateway", 503: "Service Unavailable"}


class _Closed(Exception):
    pass


def _read_head(reader: BinaryIO) -> tuple[str, list[tuple[str, str]]]:
    first = reader.readline()
    if not first:
        raise _Closed
    lines = []
    while True:
        line = reader.readline()
        if not line:
            raise _Closed
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line)
    headers = []
    for raw in lines:
        key, _, value = raw.decode("latin-1").partition(":")
        headers.append((key.strip(), value.strip()))
    return first.decode("latin-1").rstrip("\r\n"), headers


def _read_body(reader: BinaryIO, headers: dict[str, str], *, until_close: bool) -> bytes:
    """The body, decoded (chunks joined)."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size_line = reader.readline()
            if not size_line:
                raise _Closed
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += reader.read(size)
            reader.readline()
    if "content-length" in headers:
        return reader.read(int(headers["content-length"]))
    return reader.read() if until_close else b""


def _message(first: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """A message with its body sent by Content-Length (chunked framing dropped)."""
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
    kept.append(("Content-Length", str(len(body))))
    head = first + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept) + "\r\n"
    return head.encode("latin-1") + body


class HttpProxy:
    """A recording, misbehaving-on-demand HTTP proxy in front of ``upstream``."""

    def __init__(self, upstream: str, rule: Rule | None = None) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname, upstream
        assert parts.port, upstream
        self.upstream = (parts.hostname, parts.port)
        self.rule: Rule = rule or (lambda seen: FORWARD)
        self.seen: list[Seen] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self) -> HttpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def requests(self, method: str | None = None, contains: str = "") -> list[Seen]:
        """The requests seen so far (of ``method``, whose target holds ``contains``)."""
        with self._lock:
            return [
                s
                for s in self.seen
                if (method is None or s.method == method) and contains in s.target
            ]

    def close(self) -> None:
        """Stop listening and close every connection."""
        self._stop.set()
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._thread.join(5)

    # -- relaying ----------------------------------------------------------------------

    def _accept(self) -> None:
        # a timeout, so that close() is noticed (closing a socket does not wake accept())
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self.connections += 1
                number = self.connections
                self._open.append(client)
            threading.Thread(target=self._serve, args=(client, number), daemon=True).start()

    def _serve(self, client: socket.socket, number: int) -> None:
        upstream: socket.socket | None = None
        up_reader: BinaryIO | None = None
        reader = client.makefile("rb")
        try:
            while not self._stop.is_set():
                try:
                    first, headers = _read_head(reader)
                except (_Closed, OSError, ValueError):
                    return
                low = {k.lower(): v for k, v in headers}
                body = _read_body(reader, low, until_close=False)
                method, target, _ = first.split(" ", 2)
                seen = Seen(number, method, target, low, body)
                with self._lock:
                    self.seen.append(seen)
                action = self.rule(seen)
                if isinstance(action, Answer):
                    reply = [(k, v) for k, v in action.headers.items()]
                    reason = _REASONS.get(action.status, "Status")
                    client.sendall(
                        _message(f"HTTP/1.1 {action.status} {reason}", reply, action.body)
                    )
                    seen.status, seen.answer_headers = action.status, dict(action.headers)
                    continue
                if isinstance(action, Stall) and not self._sleep(action.seconds):
                    return
                if upstream is None:
                    upstream = socket.create_connection(self.upstream)
                    with self._lock:
                        self._open.append(upstream)
                    up_reader = upstream.makefile("rb")
                assert up_reader is not None
                upstream.sendall(_message(first, headers, body))
                status_line, answer = _read_head(up_reader)
                answer_low = {k.lower(): v for k, v in answer}
                status = int(status_line.split(" ", 2)[1])
                no_body = method == "HEAD" or status in (204, 304) or status < 200
                payload = b"" if no_body else _read_body(up_reader, answer_low, until_close=True)
                seen.answer_body = payload
                if action == DROP:
                    return  # the server answered; the client never hears it
                if isinstance(action, Rewrite):
                    payload = action.fn(payload)
                if no_body:
                    head = status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in answer)
                    client.sendall(head.encode("latin-1") + b"\r\n")
                else:
                    client.sendall(_message(status_line, answer, payload))
                seen.status, seen.answer_headers = status, answer_low
                if answer_low.get("connection", "").lower() == "close":
                    return
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    sock.close()

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` (or until the proxy stops); whether to go on."""
        deadline = math.inf if math.isinf(seconds) else time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self._stop.wait(0.05):
                return False
        return True
