"""Errors the scoring server returns, and how they are rendered.

MLflow's scoring routes answer errors with ``{"error_code": NAME, "message":
...}`` and the HTTP status MLflow maps the name to; Open Inference Protocol
routes answer ``{"error": message}``. A :class:`RequestError` carries both the
status and the code, so handlers raise one thing and the route decides the
envelope.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["ERROR_CODE_TO_STATUS", "RequestError", "mlflow_envelope", "v2_envelope"]

#: MLflow's ``ERROR_CODE_TO_HTTP_STATUS`` (``mlflow/exceptions.py``), plus the
#: names this server adds for statuses MLflow never sends (413, 415, 405).
ERROR_CODE_TO_STATUS: dict[str, int] = {
    "BAD_REQUEST": 400,
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "CUSTOMER_UNAUTHORIZED": 401,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "METHOD_NOT_ALLOWED": 405,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "REQUEST_ENTITY_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "DATA_LOSS": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class RequestError(Exception):
    """A request that gets an error response; never carries a stack trace out."""

    def __init__(
        self,
        error_code: str,
        message: str,
        *,
        status: int | None = None,
        error_class: str | None = None,
        field: str | None = None,
    ) -> None:
        self.error_code = error_code
        self.message = message
        self.status = status or ERROR_CODE_TO_STATUS.get(error_code, 500)
        self.error_class = error_class
        #: the part of the request that was wrong (a column, a JSON key, a header)
        self.field = field
        super().__init__(message)


def mlflow_envelope(err: RequestError) -> bytes:
    """``{"error_code": ..., "message": ...}`` as MLflow's scoring server writes it."""
    body: dict[str, Any] = {"error_code": err.error_code, "message": err.message}
    if err.error_class:
        body["error_class"] = err.error_class
    return json.dumps(body).encode()


def v2_envelope(err: RequestError) -> bytes:
    """``{"error": ...}`` as the Open Inference Protocol specifies."""
    return json.dumps({"error": err.message}).encode()
