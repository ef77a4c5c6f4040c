"""Routes that cannot skip their checks: :class:`ApiRoute` and the pipeline every call takes.

A request reaches a handler only through these steps, in this order:

1. authentication (done by :mod:`modelyard.server.app` for the whole app) —
   no valid token on a non-public route is a 401;
2. path parameters, each through the same validator the Python API uses
   (names, aliases, versions, run ids, hashes) — a 400 naming the part;
3. the query string and the JSON body, decoded strictly into the route's
   :mod:`msgspec` types (unknown fields refused) — a 400 naming the field;
4. authorisation against the route's :class:`~modelyard.server.access.Access`
   — 403, or 404 for what the caller may not see;
5. an ``Idempotency-Key`` on a write: a retry gets the first answer again;
6. the handler; then the audit events it noted are written.

Handlers are plain functions run in a worker thread (the stores are
synchronous); streaming handlers are ``async`` and get the same checks.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelyard.errors import ModelyardError
from modelyard.server.access import Access
from modelyard.server.errors import ApiError, forbidden, unauthenticated, validation_error
from modelyard.store.access import ROLES, Permission, Principal, at_least
from modelyard.uri import validate_alias, validate_name, validate_relative_path

if TYPE_CHECKING:
    from modelyard.server.state import ServerState

__all__ = ["MLFLOW_PREFIXES", "ApiRoute", "Call", "Scope", "json_response", "run_not_found"]

log = logging.getLogger("modelyard.server")

Scope = MutableMapping[str, Any]
PRINCIPAL = "modelyard.principal"
REQUEST_ID = "modelyard.request_id"
STATE = "modelyard.state"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TOKEN_ID = re.compile(r"^[0-9a-f]{12}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_\-]{1,32}$")
_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_LOGGED_MODEL = re.compile(r"^m-[0-9a-f]{32}$")
#: paths answered in MLflow's dialect (its error envelope, its lenient decoding)
MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/")
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_ROLE_RANK = {r: i for i, r in enumerate(ROLES)}


def _positive(value: str, what: str) -> int:
    if not value.isdigit() or int(value) < 1 or len(value) > 12:
        raise ApiError(
            400, "invalid_value", f"{what} {value!r} is not a positive integer", field=what
        )
    return int(value)


def _matching(rx: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not rx.match(value):
            raise ApiError(400, "invalid_value", f"{what} {value!r} is malformed", field=what)
        return value

    return check


def _artifact_path(value: str) -> str:
    path = validate_relative_path(value, "artifact path")
    if path != value:
        raise ApiError(
            400,
            "invalid_value",
            f"artifact path {value!r} is not a plain relative path",
            field="path",
        )
    return path


#: every path parameter of every route, and how it is checked
PATH_PARAMS: dict[str, Callable[[str], Any]] = {
    "name": validate_name,
    "alias": validate_alias,
    "version": lambda v: _positive(v, "version"),
    "key": lambda v: validate_name(v, "tag key"),
    "run_id": _matching(_RUN_ID, "run id"),
    "sha256": _matching(_HEX64, "sha256"),
    "user": lambda v: validate_name(v, "user name"),
    "token_id": _matching(_TOKEN_ID, "token id"),
    "experiment_id": lambda v: _positive(v, "experiment id"),
    "experiment": lambda v: validate_name(v, "experiment name"),
    "logged_model": _matching(_LOGGED_MODEL, "logged model id"),
    "path": _artifact_path,
}


@dataclass
class Call:
    """One request as a handler sees it: who, which resource, the decoded input."""

    request: Request
    principal: Principal | None
    path: dict[str, Any]
    query: Any
    body: Any
    state: ServerState
    request_id: str
    #: set by a model check: the model's id (``None`` when it is about to be created)
    model_id: int | None = None
    #: the caller's permission on the checked resource
    permission: Permission | None = None
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    @property
    def user(self) -> Principal:
        """The caller (every non-public route has one)."""
        assert self.principal is not None
        return self.principal

    def audit(self, action: str, target: str, **detail: Any) -> None:
        """Note a change for the audit log (written once the handler succeeded)."""
        self.events.append((action, target, detail))

    def param(self, where: str) -> Any:
        """A path parameter, or ``body.<field>`` / ``query.<field>``."""
        source, _, name = where.partition(".")
        if source == "body" and name:
            return getattr(self.body, name)
        if source == "query" and name:
            return getattr(self.query, name)
        return self.path[where]


Handler = Callable[[Call], Any]


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON answer from a struct, dict or list."""
    return Response(
        msgspec.json.encode(value),
        status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


class ApiRoute(Route):
    """A route with one method, a declared access rule and typed input.

    >>> ApiRoute("/api/v1/models/{name}", get_model, method="GET", access=on_model("read"))
    ... # doctest: +SKIP
    """

    def __init__(
        self,
        path: str,
        handler: Callable[[Call], Any] | Callable[[Call], Awaitable[Any]],
        *,
        method: str,
        access: Access,
        body: type | None = None,
        query: type | None = None,
        status: int = 200,
        summary: str = "",
        response: Any = None,
        raw_body: bool = False,
    ) -> None:
        if not isinstance(access, Access):
            raise TypeError(f"route {method} {path} declares no access rule")
        params = re.findall(r"{([^}:]+)", path)
        unknown = [p for p in params if p not in PATH_PARAMS]
        if unknown:
            raise TypeError(f"route {method} {path}: no validator for path parameter(s) {unknown}")
        for where in (access.param,) if access.param else ():
            source = where.partition(".")[0]
            if source not in ("body", "query") and where not in params:
                raise TypeError(f"route {method} {path}: access names {where!r}, not in the path")
        self.access = access
        self.method = method
        self.handler = handler
        self.body_type = body
        self.query_type = query
        self.status = status
        self.summary = summary or (inspect.getdoc(handler) or "").split("\n")[0]
        self.response_type = response
        self.raw_body = raw_body
        self.is_async = inspect.iscoroutinefunction(handler)
        # MLflow's client sends fields a route may not use (run_uuid beside run_id, newer
        # fields of newer clients): its routes ignore what they do not know.
        self.lenient = path.startswith(MLFLOW_PREFIXES)
        super().__init__(path, self._asgi, methods=[method], name=f"{method} {path}")
        # Starlette wraps a method endpoint as request -> response; ours speaks ASGI.
        self.app = self._asgi

    async def handle(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        """Wrong method on a known path: 405 (401 first for callers without a token)."""
        if scope["method"] not in (self.methods or ()) and not (
            scope["method"] == "HEAD" and "GET" in (self.methods or ())
        ):
            if self.access.kind != "public" and scope.get(PRINCIPAL) is None:
                response = _error_response(unauthenticated("a token is required"), scope)
            else:
                response = _error_response(
                    ApiError(405, "method_not_allowed", f"{scope['method']} is not allowed here"),
                    scope,
                )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _asgi(self, scope: Scope, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            response = await self._run(request, scope)
        except ApiError as exc:
            response = _error_response(exc, scope)
        except ModelyardError as exc:
            response = _modelyard_error(exc, scope)
        await response(scope, receive, send)

    async def _run(self, request: Request, scope: Scope) -> Response:
        principal: Principal | None = scope.get(PRINCIPAL)
        if self.access.kind != "public" and principal is None:
            raise unauthenticated(scope.get("modelyard.auth_problem") or "a token is required")
        state = scope[STATE]
        path = {k: PATH_PARAMS[k](v) for k, v in request.path_params.items()}
        query = self._decode_query(request)
        body: Any = None
        raw: bytes = b""
        if self.body_type is not None:
            raw = await _read_json(request, state.settings.max_json_bytes)
            try:
                body = msgspec.json.decode(raw or b"{}", type=self.body_type)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise validation_error(exc, "request body") from None
        elif not self.raw_body and self.method in _WRITES:
            raw = await _read_json(request, state.settings.max_json_bytes)
            if raw.strip() not in (b"", b"{}") and not self.lenient:
                raise ApiError(400, "invalid_request", "this route takes no request body")
        call = Call(request, principal, path, query, body, state, scope[REQUEST_ID])
        if self.is_async:
            await anyio.to_thread.run_sync(self._authorize, call)
            result = await self.handler(call)
            if call.events:
                await anyio.to_thread.run_sync(self._write_audit, call)
            return self._respond(result)
        return await anyio.to_thread.run_sync(self._sync, call, raw)

    def _decode_query(self, request: Request) -> Any:
        items = request.query_params.multi_items()
        if self.query_type is None:
            if items and not self.lenient:
                raise ApiError(
                    400,
                    "invalid_request",
                    f"unknown query parameter {items[0][0]!r}",
                    field=items[0][0],
                )
            return None
        fields = getattr(self.query_type, "__struct_fields__", ())
        data: dict[str, Any] = {}
        for key, value in items:
            if key not in fields and self.lenient:
                continue
            if key not in fields:
                raise ApiError(
                    400, "invalid_request", f"unknown query parameter {key!r}", field=key
                )
            hint = _list_field(self.query_type, key)
            if hint:
                data.setdefault(key, []).append(value)
            elif key in data:
                raise ApiError(
                    400, "invalid_request", f"query parameter {key!r} given twice", field=key
                )
            else:
                data[key] = value
        try:
            return msgspec.convert(data, self.query_type, strict=False)
        except msgspec.ValidationError as exc:
            raise validation_error(exc, "query") from None

    def _sync(self, call: Call, raw: bytes) -> Response:
        self._authorize(call)
        key = call.request.headers.get("idempotency-key")
        if key is None or self.method not in _WRITES or call.principal is None:
            result = self.handler(call)
            self._write_audit(call)
            return self._respond(result)
        if not _KEY.match(key):
            raise ApiError(
                400,
                "invalid_request",
                "Idempotency-Key must be 1-64 of [A-Za-z0-9_-]",
                field="Idempotency-Key",
            )
        auth = call.state.auth
        digest = hashlib.sha256(
            call.request.url.path.encode()
            + b"\0"
            + (call.request.url.query or "").encode()
            + b"\0"
            + raw
        ).hexdigest()
        earlier = auth.begin_idempotent(call.user.user_id, key, self.name, digest)
        if earlier is not None:
            if earlier.mismatch:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for another request",
                )
            if earlier.pending:
                raise ApiError(
                    409,
                    "request_in_progress",
                    "an earlier attempt with this Idempotency-Key is still running",
                    headers={"retry-after": "1"},
                )
            return Response(
                earlier.response or b"",
                earlier.status or 200,
                media_type="application/json",
                headers={"idempotent-replay": "true"},
            )
        try:
            result = self.handler(call)
            response = self._respond(result)
        except BaseException:
            auth.abandon_idempotent(call.user.user_id, key)
            raise
        self._write_audit(call)
        if response.status_code < 300:
            auth.finish_idempotent(
                call.user.user_id, key, response.status_code, bytes(response.body).decode()
            )
        else:  # pragma: no cover - handlers raise for errors
            auth.abandon_idempotent(call.user.user_id, key)
        return response

    def _respond(self, result: Any) -> Response:
        if isinstance(result, Response):
            return result
        if result is None:
            return Response(status_code=204)
        return json_response(result, self.status)

    def _write_audit(self, call: Call) -> None:
        client = call.request.client.host if call.request.client else None
        for action, target, detail in call.events:
            call.state.auth.record(
                call.principal, action, target, detail, request_id=call.request_id, client=client
            )

    # -- authorisation ------------------------------------------------------------------

    def _authorize(self, call: Call) -> None:
        access, principal = self.access, call.principal
        if access.kind == "public":
            return
        if principal is None:  # pragma: no cover - _run refused it already
            raise unauthenticated("a token is required")
        if access.kind == "signed_in":
            return
        auth = call.state.auth
        if access.kind == "role":
            if _ROLE_RANK[principal.role] < _ROLE_RANK[access.need]:  # type: ignore[index]
                raise forbidden(
                    f"this needs the {access.need} role; {principal.name!r} is a {principal.role}"
                )
            return
        if access.kind == "model":
            name = call.param(access.param)
            model_id, permission = auth.model_access(principal, name)
            if model_id is None and access.create:
                if _ROLE_RANK[principal.role] < _ROLE_RANK["writer"]:
                    raise forbidden(f"creating registered model {name!r} needs the writer role")
                call.model_id, call.permission = None, "manage"
                return
            if model_id is None or permission == "none":
                raise auth.model_not_found(principal, name)
            self._enough(permission, f"registered model {name!r}", principal)
            call.model_id, call.permission = model_id, permission
            return
        if access.kind == "experiment":
            which = call.param(access.param)
            if isinstance(which, int):
                experiment_id, permission = auth.experiment_access(principal, experiment_id=which)
                label = f"experiment {which}"
            else:
                experiment_id, permission = auth.experiment_access(principal, name=which)
                label = f"experiment {which!r}"
            if experiment_id is None or permission == "none":
                suggestions = [] if isinstance(which, int) else _experiment_names(call, which)
                raise ApiError(
                    404,
                    "experiment_not_found",
                    f"no {label}",
                    field="experiment",
                    detail={"name": str(which), "suggestions": suggestions},
                )
            self._enough(permission, label, principal)
            call.permission = permission
            return
        if access.kind == "run":
            run_id = call.param(access.param)
            exists, permission = auth.run_access(principal, run_id)
            if not exists or permission == "none":
                raise run_not_found(call, run_id)
            self._enough(permission, f"run {run_id}", principal)
            call.permission = permission
            return
        if access.kind == "resource":
            self._check_resource(call, principal)
            return
        if access.kind == "blob":
            sha256 = call.param(access.param)
            if not auth.can_read_blob(principal, sha256):
                raise ApiError(
                    404, "blob_not_found", f"no blob {sha256} you may read", field="sha256"
                )
            return
        raise AssertionError(access)  # pragma: no cover

    def _check_resource(self, call: Call, principal: Principal) -> None:
        assert self.access.find is not None
        permission, label = self.access.find(call)
        if permission == "none":  # pragma: no cover - finders raise their 404
            raise ApiError(404, "not_found", f"no {label}")
        self._enough(permission, label, principal)
        call.permission = permission

    def _enough(self, permission: Permission, what: str, principal: Principal) -> None:
        if not at_least(permission, self.access.need):  # type: ignore[arg-type]
            raise forbidden(
                f"{self.access.need} permission on {what} is needed; "
                f"{principal.name!r} has {permission}"
            )


def run_not_found(call: Call, run_id: str, field: str = "run_id") -> ApiError:
    """404 for a run the caller cannot see; an admin is told the ids that start alike
    (others are not: similar ids may be runs they may not see)."""
    suggestions: list[str] = []
    if call.user.is_admin:
        from modelyard.errors import RunNotFound

        try:
            call.state.metadata.get_run(run_id)
        except RunNotFound as exc:
            suggestions = list(exc.suggestions)
    return ApiError(
        404,
        "run_not_found",
        f"no run {run_id!r}",
        field=field,
        detail={"run_id": run_id, "suggestions": suggestions},
    )


def _experiment_names(call: Call, name: str) -> list[str]:
    """Names close to ``name`` among the experiments the caller may see."""
    from modelyard.store._suggest import close_matches

    scope = None if call.user.is_admin else call.user.user_id
    seen = [e.name for e in call.state.metadata.list_experiments(visible_to=scope)]
    return list(close_matches(name, seen))


@functools.lru_cache(maxsize=1024)
def _list_field(struct: type, key: str) -> bool:
    # msgspec resolves the struct's type hints on every fields() call: ~50 us a parameter
    for f in msgspec.structs.fields(struct):
        if f.name == key:
            return "list" in str(f.type).lower()
    return False


async def _read_json(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"the request body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"the request body is over {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if raw.strip():
        kind = request.headers.get("content-type", "")
        if kind.split(";")[0].strip().lower() not in ("application/json", ""):
            # The header's value is the caller's text: never echoed back.
            raise ApiError(
                415, "unsupported_media_type", "the request body must be application/json"
            )
    return raw


def _error_response(exc: ApiError, scope: Scope) -> Response:
    from modelyard.store.rest.wire import error_body

    headers = {**exc.headers, "x-request-id": scope.get(REQUEST_ID, "")}
    if str(scope.get("path", "")).startswith(MLFLOW_PREFIXES):
        from modelyard.server.mlflow.wire import mlflow_error

        status, body = mlflow_error(exc.status, exc.info.code, exc.info.message)
        return Response(body, status, headers=headers, media_type="application/json")
    return Response(
        error_body(exc.info), exc.status, headers=headers, media_type="application/json"
    )


def _modelyard_error(exc: ModelyardError, scope: Scope) -> Response:
    from modelyard.errors import ModelFormatError, RegisteredModelNotFound, RunNotFound
    from modelyard.server.errors import body_for

    state = scope.get(STATE)
    principal = scope.get(PRINCIPAL)
    if isinstance(exc, ModelFormatError):
        # A handler that meets a damaged file in the yard's own store: the server's
        # fault, and its message names the store's location. Client input that does
        # not hash is answered as such by the routes themselves.
        request_id = scope.get(REQUEST_ID, "")
        log.error("request %s: %s", request_id, exc)
        return _error_response(
            ApiError(
                500,
                "internal_error",
                f"the yard's store holds a damaged file (request id {request_id})",
            ),
            scope,
        )
    if isinstance(exc, RegisteredModelNotFound) and state is not None and principal is not None:
        # A store's suggestions come from every name; the caller sees only theirs.
        exc = state.auth.model_not_found(principal, exc.name)
    elif isinstance(exc, RunNotFound) and not (principal and principal.is_admin):
        exc = RunNotFound(exc.run_id)  # similar ids may belong to runs the caller cannot see
    status, body = body_for(exc)
    if str(scope.get("path", "")).startswith(MLFLOW_PREFIXES):
        from modelyard.server.errors import info_for

        info = info_for(exc)
        return _error_response(ApiError(status, info.code, info.message), scope)
    return Response(
        body,
        status,
        headers={"x-request-id": scope.get(REQUEST_ID, "")},
        media_type="application/json",
    )
