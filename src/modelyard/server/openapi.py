"""``/openapi.json``: the server's API as an OpenAPI 3.1 document, built from its routes.

Each operation says what it needs of the caller (``x-access``), so the
document doubles as the permission table; schemas come from the same
:mod:`msgspec` types the server decodes with.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import msgspec

from modelyard._version import __version__
from modelyard.server._routing import ApiRoute, Call, json_response
from modelyard.server.access import SIGNED_IN
from modelyard.store.rest.wire import ErrorBody

if TYPE_CHECKING:
    from starlette.responses import Response

    from modelyard.server.app import ServerApp

__all__ = ["openapi_document", "openapi_route"]

_PARAM = re.compile(r"{([^}]+)}")


def openapi_document(routes: list[ApiRoute]) -> dict[str, Any]:
    """The OpenAPI document of ``routes``."""
    types: list[Any] = [ErrorBody]
    for r in routes:
        types += [t for t in (r.body_type, r.response_type) if t is not None]
    unique = list(dict.fromkeys(types))
    refs, components = msgspec.json.schema_components(
        unique, ref_template="#/components/schemas/{name}"
    )
    ref_of = dict(zip(unique, refs, strict=True))
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "summary": r.summary,
            "operationId": f"{r.method.lower()}_{r.handler.__name__}",
            "x-access": r.access.describe(),
            "responses": {
                str(r.status if r.response_type else (204 if r.method != "GET" else 200)): {
                    "description": "success",
                    **(
                        {"content": {"application/json": {"schema": ref_of[r.response_type]}}}
                        if r.response_type
                        else {}
                    ),
                },
                "default": {
                    "description": "an error",
                    "content": {"application/json": {"schema": ref_of[ErrorBody]}},
                },
            },
        }
        if r.access.kind != "public":
            op["security"] = [{"token": []}]
        params = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in _PARAM.findall(r.path)
        ]
        if r.query_type is not None:
            for f in msgspec.structs.fields(r.query_type):
                params.append(
                    {
                        "name": f.name,
                        "in": "query",
                        "required": f.required,
                        "schema": {"type": "string"},
                    }
                )
        if params:
            op["parameters"] = params
        if r.body_type is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref_of[r.body_type]}},
            }
        elif r.raw_body:
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelyard server", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }


def openapi_route(app: ServerApp) -> ApiRoute:
    """The route serving the document of ``app``'s routes (built once, on first use)."""
    cached: list[bytes] = []

    def openapi(call: Call) -> Response:
        """This API as an OpenAPI 3.1 document."""
        if not cached:
            cached.append(msgspec.json.encode(openapi_document(app.routes)))
        return json_response(msgspec.Raw(cached[0]))

    return ApiRoute("/openapi.json", openapi, method="GET", access=SIGNED_IN)
