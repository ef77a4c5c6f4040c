"""HTTP/1.1 on the standard library, for the yard client: keep-alive, streaming, TLS.

Why not httpx here: a cold process loading one model from a server spent
~0.13 s importing httpx and httpcore and building an SSL context it never used
on ``http://``, and its 64 KiB reads capped parallel downloads on two cores.
:mod:`http.client` is already loaded, reads in 1 MiB, and is all a client of
one known server needs. What this adds to it:

- a pool of idle connections per host, shared by threads, reused while the
  server keeps them open; a reused connection that turns out closed is retried once
  on a fresh one when the body can be sent again;
- bodies as bytes or any iterable of bytes (chunked unless a length is given);
  an exception raised by the caller's iterable comes out unchanged, never as a
  transport error;
- :class:`TransportError` for everything the network did (refused, reset,
  timed out, a broken reply), which the session retries;
- TLS with the system's CAs, a CA bundle or verification off; a context is
  made only for ``https``.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Answer", "Timeout", "Transport", "TransportError"]

_CHUNK = 1 << 20


class TransportError(Exception):
    """The request did not get an answer: the connection failed, broke or timed out."""

    def __init__(self, reason: str, *, refused: bool = False, untrusted: bool = False) -> None:
        self.reason = reason
        #: nothing listens there
        self.refused = refused
        #: TLS refused the server's certificate (asking again cannot help)
        self.untrusted = untrusted
        super().__init__(reason)


class Timeout(TransportError):
    """No answer (or no more of it) within the timeout."""


class Answer:
    """A response: status, headers, and the body read on demand."""

    def __init__(self, response: http.client.HTTPResponse, release: Any) -> None:
        self._response = response
        self._release = release
        self.status_code = response.status
        self.headers = response.headers
        self._content: bytes | None = None

    @property
    def content(self) -> bytes:
        """The whole body."""
        if self._content is None:
            try:
                self._content = self._response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._release(False)
                raise _error(exc) from None
            self._release(True)
        return self._content

    def read(self) -> bytes:
        """The whole body (as :attr:`content`)."""
        return self.content

    @property
    def text(self) -> str:
        """The body as text."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.content)

    def iter_bytes(self, size: int = _CHUNK) -> Iterator[bytes]:
        """The body in pieces of up to ``size`` bytes."""
        if self._content is not None:
            yield self._content
            return
        try:
            while chunk := self._response.read(size):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            self._release(False)
            raise _error(exc) from None
        self._content = b""
        self._release(True)

    def close(self) -> None:
        """Let the connection go: back to the pool if the body was read, else closed."""
        if self._content is None:
            self._release(False)


class Transport:
    """Requests to one base URL (or to absolute URLs, for presigned downloads)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.verify = verify
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def get(self, url: str, *, headers: dict[str, str] | None = None) -> Answer:
        """A GET, its body read."""
        answer = self.request("GET", url, headers=headers)
        answer.content  # noqa: B018 - reads the body and frees the connection
        return answer

    @contextmanager
    def stream(
        self, method: str, url: str, *, headers: dict[str, str] | None = None
    ) -> Iterator[Answer]:
        """A request whose body is read by the caller (:meth:`Answer.iter_bytes`)."""
        answer = self.request(method, url, headers=headers)
        try:
            yield answer
        finally:
            answer.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
    ) -> Answer:
        """Send one request; the answer's body is not read yet (see :class:`Answer`)."""
        scheme, host, port, target = self._where(url)
        sent = {**self.headers, **(headers or {})}
        if isinstance(body, (bytes, bytearray)):
            sent["content-length"] = str(len(body))
        elif body is not None and "content-length" not in {k.lower() for k in sent}:
            sent["transfer-encoding"] = "chunked"
        guarded = _Guarded(body) if body is not None and not isinstance(body, bytes) else None
        for attempt in (1, 2):
            conn, reused = self._connection(scheme, host, port)
            try:
                conn.putrequest(method, target, skip_accept_encoding=True)
                for key, value in sent.items():
                    conn.putheader(key, value)
                conn.endheaders()
                if isinstance(body, (bytes, bytearray)):
                    if body:
                        conn.send(body)
                elif guarded is not None:
                    chunked = sent.get("transfer-encoding") == "chunked"
                    for piece in guarded:
                        if piece:
                            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    if chunked:
                        conn.send(b"0\r\n\r\n")
                response = conn.getresponse()
            except BaseException as exc:
                conn.close()
                if guarded is not None and guarded.raised is not None:
                    raise guarded.raised from None  # the caller's own error, unchanged
                if not isinstance(exc, (OSError, http.client.HTTPException)):
                    raise
                stale = reused and isinstance(
                    exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if stale and attempt == 1 and guarded is None:
                    continue  # the server had closed an idle connection: once more, fresh
                raise _error(exc) from None
            return Answer(response, self._releaser(scheme, host, port, conn, response))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- connections ---------------------------------------------------------------------

    def _where(self, url: str) -> tuple[str, str, int, str]:
        if url.startswith(("http://", "https://")):
            parts = urlsplit(url)
        else:
            assert self.base_url is not None, "a relative URL needs a base URL"
            parts = urlsplit(self.base_url + url)
        scheme = parts.scheme
        host = parts.hostname or ""
        port = parts.port or (443 if scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return scheme, host, port, target

    def _connection(
        self, scheme: str, host: str, port: int
    ) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            pool = self._idle.get((scheme, host, port))
            if pool:
                return pool.pop(), True
        if scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self._ssl()
            )
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _error(exc) from None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, False

    def _releaser(
        self,
        scheme: str,
        host: str,
        port: int,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
    ) -> Any:
        done = [False]

        def release(reusable: bool) -> None:
            if done[0]:
                return
            done[0] = True
            if reusable and not response.will_close:
                with self._lock:
                    self._idle.setdefault((scheme, host, port), []).append(conn)
            else:
                conn.close()

        if response.length == 0 or response.status in (204, 304) or response._method == "HEAD":  # type: ignore[attr-defined]
            response.read()
            release(True)
        return release

    def _ssl(self) -> ssl.SSLContext:
        if self._context is None:
            if isinstance(self.verify, ssl.SSLContext):
                self._context = self.verify
            elif self.verify:
                self._context = ssl.create_default_context()
            else:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                self._context = context
        return self._context


class _Guarded:
    """An iterable body that remembers an exception it raised itself."""

    def __init__(self, body: Iterable[bytes]) -> None:
        self.body = body
        self.raised: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        it = iter(self.body)
        while True:
            try:
                piece = next(it)
            except StopIteration:
                return
            except BaseException as exc:
                self.raised = exc
                raise
            yield piece


def _error(exc: BaseException) -> TransportError:
    if isinstance(exc, TimeoutError | socket.timeout):
        return Timeout("timed out")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TransportError(f"TLS failed: {exc.verify_message or exc}", untrusted=True)
    if isinstance(exc, ssl.SSLError):
        return TransportError(f"TLS failed: {exc.reason or exc}")
    if isinstance(exc, ConnectionRefusedError):
        return TransportError("connection refused", refused=True)
    if isinstance(exc, http.client.HTTPException):
        return TransportError(f"broken answer ({type(exc).__name__})")
    return TransportError(str(exc) or type(exc).__name__)
