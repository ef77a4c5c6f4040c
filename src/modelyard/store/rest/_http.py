"""One HTTP session with a yard server: the token, retries, timeouts, errors.

- The token (``MODELYARD_TOKEN``) is sent as ``Authorization: Bearer`` to the
  yard's own origin and nowhere else: requests go only to paths under the
  yard URL, redirects are never followed, and presigned URLs are fetched by
  a separate client that carries no credentials.
- Connection errors, timeouts and 502/503/504 are retried with exponential
  backoff (``MODELYARD_HTTP_RETRIES`` attempts, default 5; ``Retry-After`` is
  honoured); a server certificate TLS does not trust fails at once. A write
  is retried only when it is safe: ``PUT`` and ``DELETE`` are idempotent, and
  every ``POST``/``PATCH`` carries an ``Idempotency-Key`` that the server uses
  to answer a retry with the first attempt's result.
- Timeouts: ``MODELYARD_HTTP_TIMEOUT`` seconds per read (default 60), 10 s to
  connect. An unreachable server is a :class:`~modelyard.errors.YardError`
  naming the URL.
- TLS: the system's CA store, or ``MODELYARD_CA_BUNDLE`` (a PEM file);
  ``MODELYARD_TLS_VERIFY=false`` turns verification off (never the default).
- An error answer becomes the exception it stands for, with its context
  (:func:`modelyard.store.rest.wire.rebuild`); 401/403 are
  :class:`~modelyard.errors.AccessDenied`.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import msgspec

from modelyard._version import __version__
from modelyard.errors import AccessDenied, ServerError, YardError
from modelyard.store.rest._transport import Answer, Timeout, Transport, TransportError
from modelyard.store.rest.wire import API_PREFIX, ErrorBody, rebuild

__all__ = ["ENV_TOKEN", "HttpSession", "seg"]

ENV_TOKEN = "MODELYARD_TOKEN"
_RETRY_STATUS = frozenset({502, 503, 504})
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def seg(value: object) -> str:
    """One path segment, percent-encoded (names may hold spaces, ``%``, ``#``...)."""
    return quote(str(value), safe="")


class HttpSession:
    """Requests to one yard server."""

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise YardError(f"not a yard server URL: {base_url!r}")
        if parts.username or parts.password:
            raise YardError(
                "put the token in MODELYARD_TOKEN, not in the yard URL (URLs end up in logs)"
            )
        self.base_url = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.token = token if token is not None else os.environ.get(ENV_TOKEN) or None
        self.retries = max(1, int(os.environ.get("MODELYARD_HTTP_RETRIES", "5")))
        read = float(os.environ.get("MODELYARD_HTTP_TIMEOUT", "60"))
        self.timeout = read
        self.verify = _verify()
        self._client = self._new_client()

    def _new_client(self) -> Transport:
        headers = {"user-agent": f"modelyard/{__version__}"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return Transport(self.base_url, headers=headers, timeout=self.timeout, verify=self.verify)

    def plain_client(self) -> Transport:
        """A client with no credentials, for presigned URLs on other hosts."""
        return Transport(
            headers={"user-agent": f"modelyard/{__version__}"},
            timeout=self.timeout,
            verify=self.verify,
        )

    def after_fork(self) -> None:
        """In a forked child: a fresh connection pool (the parent's stays the parent's)."""
        self._client = self._new_client()

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    # -- requests ----------------------------------------------------------------------

    def api(self, method: str, path: str, *, into: Any = Any, **kw: Any) -> Any:
        """A JSON API call under ``/api/v1``; the answer decoded as ``into``
        (``None`` for 204)."""
        response = self.request(method, API_PREFIX + path, **kw)
        if response.status_code == 204 or not response.content:
            return None
        return msgspec.json.decode(response.content, type=into)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (),
        replay: Any = None,
    ) -> Answer:
        """Send one request, retrying what is safe to retry; raise for error answers.

        ``ok`` lists error statuses the caller handles itself. ``replay`` makes a
        streamed body again for a retry (a generator cannot be sent twice).
        """
        extra = dict(headers or {})
        if method not in _IDEMPOTENT:
            extra.setdefault("idempotency-key", uuid.uuid4().hex)
        body = msgspec.json.encode(json) if json is not None else content
        if json is not None:
            extra["content-type"] = "application/json"
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.request(
                    method, path + _query(params), headers=extra, body=body
                )
                response.content  # noqa: B018 - API answers are small: read them now
            except TransportError as exc:
                if attempt >= self.retries or not _resendable(body, replay) or _untrusted(exc):
                    raise YardError(
                        f"cannot reach the yard at {self.base_url}: {_reason(exc)} "
                        f"(after {attempt} attempt{'s' if attempt > 1 else ''})"
                    ) from None
                body = replay() if replay is not None else body
                self._pause(attempt, None)
                continue
            retry = response.status_code in _RETRY_STATUS or _in_progress(response)
            if retry and attempt < self.retries and _resendable(body, replay):
                after = response.headers.get("retry-after")
                response.close()
                body = replay() if replay is not None else body
                self._pause(attempt, after)
                continue
            if 300 <= response.status_code < 400:
                # Never followed: the token would go wherever the Location says.
                raise ServerError(
                    f"{self.base_url}{path}",
                    response.status_code,
                    "redirect",
                    "the yard answered with a redirect, which is not followed (is the yard "
                    "URL right, and does it name the server itself?)",
                )
            if response.status_code >= 400 and response.status_code not in set(ok):
                self._raise(response, method, path)
            return response

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        ok: Iterable[int] = (),
    ) -> Iterator[Answer]:
        """A streamed answer (``Range`` for parts); errors raised as :meth:`request` does."""
        attempt = 0
        while True:
            attempt += 1
            try:
                response = self._client.request(method, path, headers=dict(headers or {}))
            except TransportError as exc:
                if attempt >= self.retries or _untrusted(exc):
                    raise YardError(
                        f"cannot reach the yard at {self.base_url}: {_reason(exc)} "
                        f"(after {attempt} attempt{'s' if attempt > 1 else ''})"
                    ) from None
                self._pause(attempt, None)
                continue
            if response.status_code in _RETRY_STATUS and attempt < self.retries:
                after = response.headers.get("retry-after")
                response.close()
                self._pause(attempt, after)
                continue
            try:
                if response.status_code >= 400 and response.status_code not in set(ok):
                    response.read()
                    self._raise(response, method, path)
                yield response
            finally:
                response.close()
            return

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = min(0.2 * 2 ** (attempt - 1), 5.0) * (0.5 + random.random())
        if retry_after and retry_after.isdigit():
            delay = min(float(retry_after), 10.0)
        time.sleep(delay)

    def _raise(self, response: Answer, method: str, path: str) -> None:
        url = f"{self.base_url}{path}"
        status = response.status_code
        try:
            info = msgspec.json.decode(response.content, type=ErrorBody).error
        except (msgspec.DecodeError, msgspec.ValidationError):
            text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
            if status in (401, 403):
                raise AccessDenied(
                    url,
                    status,
                    "unauthenticated" if status == 401 else "permission_denied",
                    text or f"HTTP {status}",
                ) from None
            raise ServerError(
                url,
                status,
                "unknown",
                text or f"{method} answered HTTP {status}",
                request_id=response.headers.get("x-request-id"),
            ) from None
        # a refusal by policy (a signature the yard requires) is its own error, not access
        exc = rebuild(info)
        if status in (401, 403) and exc is None:
            hint = ""
            if status == 401 and not self.token:
                hint = f"; set {ENV_TOKEN}"
            raise AccessDenied(url, status, info.code, info.message + hint)
        if exc is not None:
            raise exc
        raise ServerError(
            url,
            status,
            info.code,
            info.message,
            field=info.field,
            request_id=response.headers.get("x-request-id"),
        )


def _query(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    out: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            out.extend((key, str(v)) for v in value)
        elif isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        else:
            out.append((key, str(value)))
    return "?" + urlencode(out) if out else ""


def _resendable(body: Any, replay: Any) -> bool:
    return body is None or isinstance(body, bytes) or replay is not None


def _in_progress(response: Answer) -> bool:
    return response.status_code == 409 and b"request_in_progress" in response.content[:200]


def _reason(exc: TransportError) -> str:
    if exc.refused:
        return "connection refused (is `modelyard server` running there?)"
    if isinstance(exc, Timeout):
        return "timed out"
    if exc.untrusted:
        return (
            f"{exc.reason}; the server's certificate is not trusted here: set "
            "MODELYARD_CA_BUNDLE to the PEM file of the CA that signed it"
        )
    return exc.reason


def _untrusted(exc: TransportError) -> bool:
    """Whether TLS refused the server's certificate (asking again cannot help)."""
    return exc.untrusted


def _verify() -> Any:
    bundle = os.environ.get("MODELYARD_CA_BUNDLE")
    if bundle:
        import ssl

        return ssl.create_default_context(cafile=bundle)
    flag = os.environ.get("MODELYARD_TLS_VERIFY", "true").strip().lower()
    return flag not in ("0", "false", "no", "off")
