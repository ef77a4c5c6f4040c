"""Errors as the server answers them: a status, a stable code, a message, the field.

Every answer that is not a success has the body
``{"error": {"code": ..., "message": ..., "field": ..., "detail": {...}}}``.
A client's mistake is always a 4xx (clients retry 5xx); a fault of the server
is a 500 whose message carries only the request id (the traceback goes to the
server's log, never to the client: no SQL, paths or secrets).
"""

from __future__ import annotations

import re

import msgspec

from modelyard import errors
from modelyard.store.rest.wire import ErrorInfo, error_body, error_info, error_status

__all__ = ["ApiError", "body_for", "info_for", "status_for", "validation_error"]

_FIELD = re.compile(r"`\$\.([^`]+)`|field `([^`]+)`")


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        detail: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.info = ErrorInfo(code=code, message=message, field=field, detail=dict(detail or {}))
        self.headers = dict(headers or {})
        super().__init__(message)


def unauthenticated(reason: str) -> ApiError:
    """401, with the challenge clients expect."""
    return ApiError(
        401,
        "unauthenticated",
        reason,
        headers={"www-authenticate": 'Bearer realm="modelyard"'},
    )


def forbidden(message: str) -> ApiError:
    """403: the caller is known but may not do this."""
    return ApiError(403, "permission_denied", message)


def validation_error(exc: msgspec.ValidationError | msgspec.DecodeError, where: str) -> ApiError:
    """400 for a body or query that does not fit its schema, naming the field."""
    text = str(exc)
    found = _FIELD.search(text)
    field = (found.group(1) or found.group(2)) if found else None
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        return ApiError(400, "invalid_request", f"the {where} is not valid JSON: {text}")
    return ApiError(400, "invalid_request", f"invalid {where}: {text}", field=field)


def status_for(exc: errors.ModelyardError) -> int:
    """The status of a modelyard error raised by a store or validator."""
    try:
        info = error_info(exc)
    except TypeError:
        return 400
    return error_status(info.code) or 400


def info_for(exc: errors.ModelyardError) -> ErrorInfo:
    """The wire form of a modelyard error (a plain ``bad_request`` when it has none)."""
    try:
        return error_info(exc)
    except TypeError:
        return ErrorInfo(code="bad_request", message=str(exc))


def body_for(exc: errors.ModelyardError) -> tuple[int, bytes]:
    """(status, body) for a modelyard error; errors without a wire form are a plain 400."""
    info = info_for(exc)
    return error_status(info.code) or 400, error_body(info)
