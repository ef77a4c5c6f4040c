"""MLflow's JSON: request bodies as its client sends them, answers as it reads them.

The shapes follow MLflow 3.17's REST API (``../shared/anchors/mlflow-rest.md``):
ids and versions are strings, times are integer milliseconds, empty fields are
left out, a run carries ``run_uuid`` beside ``run_id``. Request structs ignore
fields they do not know (a newer client may send more); integers may come as
JSON strings (protobuf's int64 form) and metric values as ``"NaN"``.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from modelyard.format.content import FileEntry
from modelyard.store.entities import Experiment, Metric, ModelVersion, RegisteredModel, Run
from modelyard.store.entities import to_millis as _ms
from modelyard.store.sql.logged import LoggedModel

__all__ = [
    "KeyValue",
    "experiment_json",
    "file_listing",
    "key_values",
    "logged_model_json",
    "mlflow_error",
    "model_json",
    "paged",
    "run_json",
    "version_json",
]

Num = int | str


class In(msgspec.Struct, kw_only=True):
    """A request body: unknown fields are ignored, as MLflow's server does."""


class KeyValue(In, kw_only=True):
    key: str
    value: str = ""


# -- errors ---------------------------------------------------------------------------

_BY_STATUS = {
    400: "INVALID_PARAMETER_VALUE",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    405: "BAD_REQUEST",
    409: "ABORTED",
    413: "INVALID_PARAMETER_VALUE",
    415: "BAD_REQUEST",
    416: "INVALID_PARAMETER_VALUE",
    422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
}


def mlflow_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    """(status, body) of an error in MLflow's envelope ``{error_code, message}``.

    Two of MLflow's codes differ from ours in status, and its client depends on
    them: a name that exists is a 400 ``RESOURCE_ALREADY_EXISTS`` (``register_model``
    tolerates exactly that), an unknown alias a 400 ``INVALID_PARAMETER_VALUE``.
    """
    if code == "already_exists":
        status, name = 400, "RESOURCE_ALREADY_EXISTS"
    elif code == "alias_not_found":
        status, name = 400, "INVALID_PARAMETER_VALUE"
    elif code == "not_implemented":
        status, name = 501, "NOT_IMPLEMENTED"
    else:
        name = _BY_STATUS.get(status, "INTERNAL_ERROR")
        if name == "INTERNAL_ERROR":
            status = 500 if status < 500 or status > 599 else status
    return status, msgspec.json.encode({"error_code": name, "message": message})


# -- answers ------------------------------------------------------------------------------


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """MLflow leaves out what is not set."""
    return {k: v for k, v in d.items() if v is not None and v not in ([], {})}


def _kv(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in sorted(values.items())]


def _number(value: float) -> float | str:
    # JSON has no NaN or infinities: protobuf's JSON spells them as strings
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def metric_json(m: Metric) -> dict[str, Any]:
    """One metric value."""
    return {"key": m.key, "value": _number(m.value), "timestamp": m.timestamp, "step": m.step}


def experiment_json(e: Experiment) -> dict[str, Any]:
    """An experiment; its artifacts live under the server's ``mlflow-artifacts:/<id>``."""
    created = _ms(e.created_at)
    return {
        "experiment_id": str(e.experiment_id),
        "name": e.name,
        "artifact_location": f"mlflow-artifacts:/{e.experiment_id}",
        "lifecycle_stage": "active",
        "creation_time": created,
        "last_update_time": created,
    }


def run_artifact_uri(experiment_id: int, run_id: str) -> str:
    """Where MLflow's client reads and writes a run's files on this server."""
    return f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"


def run_json(
    run: Run, metrics: list[Metric] | None = None, outputs: list[str] | None = None
) -> dict[str, Any]:
    """A run: ``info``, ``data`` (latest metrics, params, tags), logged models as outputs."""
    info = _clean(
        {
            "run_id": run.run_id,
            "run_uuid": run.run_id,
            "experiment_id": str(run.experiment_id),
            "run_name": run.name,
            "user_id": run.created_by,
            "status": run.status,
            "start_time": _ms(run.start_time),
            "end_time": _ms(run.end_time) if run.end_time else None,
            "artifact_uri": run_artifact_uri(run.experiment_id, run.run_id),
            "lifecycle_stage": "active",
        }
    )
    data = _clean(
        {
            "metrics": [metric_json(m) for m in metrics or ()],
            "params": _kv(run.params),
            "tags": _kv(run.tags),
        }
    )
    out: dict[str, Any] = {"info": info, "data": data, "inputs": {}}
    out["outputs"] = _clean({"model_outputs": [{"model_id": m, "step": 0} for m in outputs or ()]})
    return out


def version_json(v: ModelVersion) -> dict[str, Any]:
    """A model version: string version number, no stages (``current_stage`` is ``None``)."""
    return _clean(
        {
            "name": v.name,
            "version": str(v.version),
            "creation_timestamp": _ms(v.created_at),
            "last_updated_timestamp": _ms(v.updated_at),
            "user_id": v.created_by,
            "current_stage": "None",
            "description": v.description or "",
            "source": v.source,
            "run_id": v.run_id or "",
            "status": v.status,
            "run_link": "",
            "tags": _kv(v.tags),
            "aliases": sorted(v.aliases),
        }
    )


def model_json(m: RegisteredModel, latest: ModelVersion | None = None) -> dict[str, Any]:
    """A registered model with its aliases and its newest version as ``latest_versions``."""
    return _clean(
        {
            "name": m.name,
            "creation_timestamp": _ms(m.created_at),
            "last_updated_timestamp": _ms(m.updated_at),
            "description": m.description or "",
            "latest_versions": [version_json(latest)] if latest else [],
            "tags": _kv(m.tags),
            "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(m.aliases.items())],
        }
    )


def logged_model_uri(lm: LoggedModel) -> str:
    """Where MLflow's client uploads a logged model's files on this server."""
    return f"mlflow-artifacts:/{lm.experiment_id}/models/{lm.model_id}/artifacts"


def logged_model_json(lm: LoggedModel) -> dict[str, Any]:
    """A logged model (MLflow 3): ``info`` and ``data.params``."""
    info = _clean(
        {
            "model_id": lm.model_id,
            "experiment_id": str(lm.experiment_id),
            "name": lm.name,
            "artifact_uri": logged_model_uri(lm),
            "status": lm.status,
            "model_type": lm.model_type,
            "source_run_id": lm.source_run_id,
            "creation_timestamp_ms": lm.created_at,
            "last_updated_timestamp_ms": lm.updated_at,
            "tags": _kv(lm.tags),
        }
    )
    return {"info": info, "data": _clean({"params": _kv(lm.params)})}


def to_int(value: Num | None, field: str) -> int | None:
    """An integer sent as a JSON number or as protobuf's string form."""
    from modelyard.server.errors import ApiError

    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    text = value.strip()
    if text.lstrip("-").isdigit() and len(text) <= 20:
        return int(text)
    raise ApiError(400, "invalid_value", f"{field} {value!r} is not an integer", field=field)


def to_float(value: float | str, field: str) -> float:
    """A metric value: a number, or ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``."""
    from modelyard.server.errors import ApiError

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    special = {"nan": float("nan"), "infinity": float("inf"), "-infinity": float("-inf")}
    if isinstance(value, str) and value.lower() in special:
        return special[value.lower()]
    raise ApiError(400, "invalid_value", f"{field} {value!r} is not a number", field=field)


def key_values(items: list[KeyValue], what: str) -> dict[str, str]:
    """``[{key, value}]`` (tags, params) as a dict, every key checked like a tag key."""
    from modelyard.uri import validate_name

    return {validate_name(i.key, what): i.value for i in items}


def paged(out: dict[str, Any], token: str | None) -> dict[str, Any]:
    """A search answer: empty lists left out (as MLflow does), the next page's token."""
    out = {k: v for k, v in out.items() if v}
    if token:
        out["next_page_token"] = token
    return out


def file_listing(files: list[FileEntry], prefix: str, *, full_paths: bool) -> list[dict[str, Any]]:
    """The files and folders directly under ``prefix`` among ``files`` (all under it), sorted:
    ``{path, is_dir, file_size}`` with the path in full or as the name alone (the artifact
    proxy answers names; the tracking listings answer paths)."""
    cut = len(prefix) + 1 if prefix else 0
    children: dict[str, int | None] = {}
    for f in files:
        head, sep, _ = f.path[cut:].partition("/")
        children[head] = None if sep else f.size
    out = []
    for name, size in sorted(children.items()):
        path = f"{prefix}/{name}" if prefix and full_paths else name
        entry: dict[str, Any] = {"path": path, "is_dir": size is None}
        if size is not None:
            entry["file_size"] = size
        out.append(entry)
    return out
