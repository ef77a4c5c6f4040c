"""The ``modelyard server`` ASGI application: one auth layer in front of every route.

Everything the app answers goes through :class:`ServerApp`, in this order:

1. the request is given an id (``x-request-id`` on every answer);
2. the ``Host`` header must be one the server was told to answer to (DNS
   rebinding), and the raw path may hold no encoded separators or dots
   (``%2f``, ``%5c``, ``%2e``), no NUL, no ``.``/``..`` segments: the path is
   decoded once, by the server, and routing and the handler see the same text;
3. ``Authorization: Bearer <token>`` (or ``Basic`` with the user name and the
   token as password, as MLflow's client sends) names the caller;
4. the router: each route is an :class:`~modelyard.server._routing.ApiRoute`
   with its own access rule; an unknown path is a 401 without a token, else
   a JSON 404. A fault of the server is a 500 carrying only the request id;
   an unreachable database a 503 (clients retry those).

There are no CORS headers (browsers on other origins are refused by default)
and no route echoes request headers back.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import secrets
from collections.abc import MutableMapping, Sequence
from typing import Any

import anyio.to_thread
from starlette.responses import Response
from starlette.routing import Router

from modelyard.server import _hot, api_admin, api_blobs, api_registry, api_signing, api_tracking
from modelyard.server._routing import (
    MLFLOW_PREFIXES,
    PRINCIPAL,
    REQUEST_ID,
    STATE,
    ApiRoute,
    Scope,
    _error_response,
)
from modelyard.server.errors import ApiError, unauthenticated
from modelyard.server.state import ServerState
from modelyard.store.access import Principal

__all__ = ["ServerApp", "all_routes"]

log = logging.getLogger("modelyard.server")

_BAD_ENCODINGS = (b"%2f", b"%5c", b"%2e", b"%00")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def all_routes() -> list[ApiRoute]:
    """Every route of the API (the OpenAPI document is added by the app)."""
    from modelyard.server import mlflow

    return [
        *api_admin.ROUTES,
        *api_registry.ROUTES,
        *api_signing.ROUTES,
        *api_tracking.ROUTES,
        *api_blobs.ROUTES,
        *mlflow.routes(),
    ]


class ServerApp:
    """The server's ASGI app over one yard.

    >>> app = ServerApp(ServerState.open(Yard("postgresql://...")))  # doctest: +SKIP
    """

    def __init__(self, state: ServerState, routes: Sequence[ApiRoute] | None = None) -> None:
        self.state = state
        from modelyard.server.openapi import openapi_route

        chosen = list(routes) if routes is not None else all_routes()
        chosen.append(openapi_route(self))
        seen: set[tuple[str, str]] = set()
        for route in chosen:
            if not isinstance(route, ApiRoute):
                raise TypeError(f"{route!r} is not an ApiRoute: every route declares its access")
            key = (route.method, route.path)
            if key in seen:
                raise TypeError(f"two routes for {route.method} {route.path}")
            seen.add(key)
        self.routes: list[ApiRoute] = chosen
        # No slash redirects: a path is served as written or not at all.
        self.router = Router(routes=list(chosen), default=self._not_found, redirect_slashes=False)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - no websockets here
            return
        request_id = secrets.token_hex(8)
        scope[REQUEST_ID] = request_id
        scope[STATE] = self.state
        started = False

        async def tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            self._check_request(scope)
            if scope["method"] == "GET" and await self._answered_hot(scope, receive, tracked):
                return
            await self._authenticate(scope)
            await self.router(scope, receive, tracked)
        except ApiError as exc:
            if not started:
                await _error_response(exc, scope)(scope, receive, tracked)
        except Exception as exc:
            if started:
                log.exception("request %s failed after its answer started", request_id)
                return
            await self._fault(exc, scope)(scope, receive, tracked)

    # -- the layers ------------------------------------------------------------------

    def _check_request(self, scope: Scope) -> None:
        allowed = self.state.settings.allowed_hosts
        if "*" not in allowed:
            host = _host(scope)
            if host is None or host not in allowed:
                # The value is not echoed: it is the attacker's text.
                raise ApiError(400, "host_not_allowed", "this server does not answer to that Host")
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        low = raw.lower()
        if any(bad in low for bad in _BAD_ENCODINGS) or b"\\" in raw:
            raise ApiError(
                400,
                "invalid_path",
                "the path holds an encoded '/', '\\', '.' or NUL; name things plainly",
            )
        path: str = scope["path"]
        if _CONTROL.search(path) or "//" in path:
            raise ApiError(400, "invalid_path", "the path holds control characters or '//'")
        if any(seg in (".", "..") for seg in path.split("/")):
            raise ApiError(400, "invalid_path", "the path holds a '.' or '..' segment")

    async def _answered_hot(self, scope: Scope, receive: Any, send: Any) -> bool:
        """Whether the one-statement resolve (:mod:`modelyard.server._hot`) answered."""
        asked = _hot.match(
            scope["path"], scope.get("query_string", b""), _header(scope, b"authorization")
        )
        if asked is None:
            return False
        body = await anyio.to_thread.run_sync(_hot.resolve, self.state, asked)
        if body is None:
            return False
        await Response(body, 200, media_type="application/json")(scope, receive, send)
        return True

    async def _authenticate(self, scope: Scope) -> None:
        scope[PRINCIPAL] = None
        header = _header(scope, b"authorization")
        if header is None:
            return
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        user: str | None = None
        if scheme.lower() == "bearer":
            secret = value
        elif scheme.lower() == "basic":
            try:
                user, _, secret = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                scope["modelyard.auth_problem"] = "the Basic credentials are not base64"
                return
        else:
            scope["modelyard.auth_problem"] = "use Authorization: Bearer <token>"
            return
        principal: Principal | None = await anyio.to_thread.run_sync(
            self.state.auth.authenticate, secret
        )
        if principal is not None and user not in (None, "", principal.name):
            principal = None  # a token presented under another user's name
        if principal is None:
            scope["modelyard.auth_problem"] = "the token is not valid (unknown, revoked or expired)"
            return
        scope[PRINCIPAL] = principal

    async def _not_found(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get(PRINCIPAL) is None:
            exc = unauthenticated(scope.get("modelyard.auth_problem") or "a token is required")
        elif str(scope["path"]).startswith(MLFLOW_PREFIXES):
            # MLflow's client retries a 5xx for minutes and gives up on a 501 at once
            exc = ApiError(
                501,
                "not_implemented",
                f"{scope['method']} {scope['path']} is not implemented by modelyard server "
                "(see docs/mlflow.md for the MLflow routes it serves)",
            )
        else:
            exc = ApiError(404, "route_not_found", "no such route; see /openapi.json")
        await _error_response(exc, scope)(scope, receive, send)

    def _fault(self, exc: Exception, scope: Scope) -> Any:
        request_id = scope.get(REQUEST_ID, "")
        if _database_down(exc):
            log.error("request %s: the database is unavailable: %s", request_id, type(exc).__name__)
            return _error_response(
                ApiError(
                    503,
                    "unavailable",
                    "the yard's database is unavailable; retry later",
                    headers={"retry-after": "1"},
                ),
                scope,
            )
        log.exception("request %s failed", request_id)
        return _error_response(
            ApiError(500, "internal_error", f"internal error (request id {request_id})"), scope
        )

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # as many request threads as pooled connections (see Database.serve)
                limiter = anyio.to_thread.current_default_thread_limiter()
                limiter.total_tokens = self.state.settings.threads
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.state.yard.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _host(scope: Scope) -> str | None:
    host = _header(scope, b"host")
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:5000
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _database_down(exc: Exception) -> bool:
    try:
        import sqlalchemy as sa
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or (
        isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated
    )
