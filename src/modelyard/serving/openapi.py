"""``/openapi.json``: every route of the scoring server as an OpenAPI 3.0 document.

Request schemas for ``/invocations`` name the default model's columns, and the
OIP v2 routes list the served model names, so a generated client or a person
reading the document sees what this server takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelyard._version import __version__
from modelyard.serving.protocol_v2 import DATATYPES
from modelyard.serving.slot import ModelSlot

__all__ = ["build_openapi"]

_JSON_TYPES = {
    "boolean": {"type": "boolean"},
    "integer": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "float": {"type": "number", "format": "float"},
    "double": {"type": "number", "format": "double"},
    "string": {"type": "string"},
    "binary": {"type": "string", "format": "byte"},
    "datetime": {"type": "string", "format": "date-time"},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(envelope: str, *codes: int) -> dict[str, Any]:
    text = {
        400: "bad input: the message names the field or column",
        404: "unknown model or version",
        405: "wrong method",
        413: "body larger than --max-body-size",
        415: "missing or unsupported Content-Type",
        500: "the model raised; details are in the server log",
        504: "the model did not answer within --timeout",
    }
    return {str(c): _json_body(_ref(envelope), text[c]) for c in codes}


def _model_headers() -> dict[str, Any]:
    return {
        h: {"description": d, "schema": {"type": "string"}}
        for h, d in (
            ("x-model-name", "name the model is served under"),
            ("x-model-version", "registry version (or short digest) that answered"),
            ("x-model-digest", "content digest of the version that answered"),
        )
    }


def _row_schema(slot: ModelSlot) -> dict[str, Any]:
    spec = slot.current.spec
    if spec.kind != "columns" or not spec.names:
        return {"type": "object", "additionalProperties": True}
    props = {str(s["name"]): _JSON_TYPES.get(str(s.get("type")), {}) for s in spec.inputs}
    required = [str(s["name"]) for s in spec.inputs if s.get("required", True)]
    return {"type": "object", "properties": props, "required": required}


def build_openapi(slots: Sequence[ModelSlot], default: str) -> dict[str, Any]:
    """The OpenAPI document for a server with these model slots."""
    default_slot = next(s for s in slots if s.name == default)
    names = [s.name for s in slots]
    row = _row_schema(default_slot)
    columns = list(default_slot.current.spec.names)
    schemas: dict[str, Any] = {
        "MlflowError": {
            "type": "object",
            "required": ["error_code", "message"],
            "properties": {
                "error_code": {"type": "string", "example": "INVALID_PARAMETER_VALUE"},
                "message": {"type": "string"},
                "error_class": {"type": "string"},
            },
        },
        "V2Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}},
        },
        "Params": {
            "type": "object",
            "additionalProperties": True,
            "description": "inference params declared by the model's signature",
        },
        "InvocationsRequest": {
            "type": "object",
            "description": "exactly one of dataframe_split, dataframe_records, instances, inputs",
            "properties": {
                "dataframe_split": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {
                        "columns": {
                            "type": "array",
                            "items": {"type": "string"},
                            **({"example": columns} if columns else {}),
                        },
                        "index": {"type": "array", "items": {}},
                        "data": {"type": "array", "items": {"type": "array", "items": {}}},
                    },
                },
                "dataframe_records": {"type": "array", "items": row},
                "instances": {"type": "array", "items": {}},
                "inputs": {},
                "params": _ref("Params"),
            },
        },
        "Predictions": {
            "type": "object",
            "required": ["predictions"],
            "properties": {"predictions": {}},
        },
        "Tensor": {
            "type": "object",
            "required": ["name", "shape", "datatype", "data"],
            "properties": {
                "name": {"type": "string"},
                "shape": {"type": "array", "items": {"type": "integer"}},
                "datatype": {"type": "string", "enum": sorted(DATATYPES)},
                "parameters": {"type": "object"},
                "data": {"type": "array", "items": {}},
            },
        },
        "InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": _ref("Params"),
                "inputs": {"type": "array", "items": _ref("Tensor")},
                "outputs": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
        },
        "InferenceResponse": {
            "type": "object",
            "required": ["model_name", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": _ref("Tensor")},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": {"type": "object"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
            },
        },
    }
    name_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": names},
    }
    version_param = {
        "name": "model_version",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "description": "the loaded version number, or a digest prefix of 7+ hex digits",
    }

    def plain(summary: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}

    def model_ops(versioned: bool) -> dict[str, dict[str, Any]]:
        params = [name_param, *([version_param] if versioned else [])]
        return {
            "": {
                "get": {
                    "summary": "Model metadata from its signature",
                    "parameters": params,
                    "responses": {
                        "200": _json_body(_ref("ModelMetadata"), "metadata"),
                        **_errors("V2Error", 404),
                    },
                }
            },
            "/ready": {
                "get": {
                    "summary": "Whether the model is ready",
                    "parameters": params,
                    "responses": {"200": {"description": "ready"}, **_errors("V2Error", 404)},
                }
            },
            "/infer": {
                "post": {
                    "summary": "Inference (Open Inference Protocol v2)",
                    "description": (
                        "Tensors may also travel as raw bytes after the JSON (the binary"
                        " tensor data extension): the Inference-Header-Content-Length"
                        " header gives the JSON's length, parameters.binary_data_size each"
                        " tensor's; binary_data / binary_data_output ask for binary outputs,"
                        " answered the same way."
                    ),
                    "parameters": params,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": _ref("InferenceRequest")},
                            "application/octet-stream": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            **_json_body(_ref("InferenceResponse"), "outputs"),
                            "headers": _model_headers(),
                        },
                        **_errors("V2Error", 400, 404, 413, 415, 500, 504),
                    },
                }
            },
        }

    paths: dict[str, Any] = {
        "/ping": plain("Liveness (MLflow)"),
        "/health": plain("Served versions, and why a new version did not load"),
        "/version": plain("modelyard version"),
        "/openapi.json": plain("This document"),
        "/invocations": {
            "post": {
                "summary": f"Score with {default_slot.name} (MLflow scoring protocol)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref("InvocationsRequest")},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.apache.parquet": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                "responses": {
                    "200": {
                        **_json_body(_ref("Predictions"), "predictions"),
                        "headers": _model_headers(),
                    },
                    **_errors("MlflowError", 400, 405, 413, 415, 500, 504),
                },
            }
        },
        "/v2": plain("Server metadata (OIP v2)"),
        "/v2/health/live": plain("Server liveness (OIP v2)"),
        "/v2/health/ready": plain("Server readiness (OIP v2)"),
    }
    for suffix, ops in model_ops(False).items():
        paths[f"/v2/models/{{model_name}}{suffix}"] = ops
    for suffix, ops in model_ops(True).items():
        paths[f"/v2/models/{{model_name}}/versions/{{model_version}}{suffix}"] = ops
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "modelyard scoring server",
            "version": __version__,
            "description": f"Serving: {', '.join(names)} (default: {default_slot.name})",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
