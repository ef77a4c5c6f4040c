"""The REST API's wire format: what ``modelyard server`` and its client exchange.

One definition per message, as :mod:`msgspec` structs, used by both sides:
the server decodes requests strictly (an unknown field, a wrong type or a
missing field is a 400 naming the field) and the client decodes answers into
the same types. Times are integer milliseconds since the epoch. Metric values
that JSON cannot spell (NaN, infinities) travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.

Errors travel as ``{"error": {"code", "message", "field", "detail"}}``;
:func:`error_body` builds one from a :class:`~modelyard.errors.ModelyardError`
and :func:`raise_for_error` turns one back into the same exception class with
the same context (``suggestions``, ``aliases``, ``versions``, ...).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from modelyard import errors
from modelyard.format.content import FileEntry
from modelyard.store.entities import (
    AliasChange,
    Experiment,
    Metric,
    ModelVersion,
    RegisteredModel,
    ResolvedVersion,
    Run,
    from_millis,
    to_millis,
)

__all__ = [
    "API_PREFIX",
    "AliasChangeOut",
    "ErrorInfo",
    "ExperimentOut",
    "FileOut",
    "MetricIO",
    "ModelOut",
    "ResolvedOut",
    "RunOut",
    "VersionOut",
    "error_body",
    "raise_for_error",
]

API_PREFIX = "/api/v1"


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are refused."""


class Out(msgspec.Struct, kw_only=True, omit_defaults=False):
    """Base of every answer."""


# -- answers ----------------------------------------------------------------------------


class ModelOut(Out, kw_only=True):
    name: str
    description: str | None = None
    created_at: int
    updated_at: int
    tags: dict[str, str] = {}
    aliases: dict[str, int] = {}
    latest_version: int | None = None
    protected_aliases: list[str] = []


class VersionOut(Out, kw_only=True):
    name: str
    version: int
    digest: str
    source: str
    run_id: str | None = None
    status: str
    description: str | None = None
    created_at: int
    updated_at: int
    created_by: str | None = None
    tags: dict[str, str] = {}
    aliases: list[str] = []


class ResolvedOut(Out, kw_only=True):
    name: str
    version: int
    digest: str
    run_id: str | None = None
    alias_record: str | None = None
    yard_id: str | None = None


class AliasChangeOut(Out, kw_only=True):
    name: str
    alias: str
    from_version: int | None = None
    to_version: int | None = None
    changed_at: int
    changed_by: str | None = None


class ExperimentOut(Out, kw_only=True):
    experiment_id: int
    name: str
    created_at: int


class RunOut(Out, kw_only=True):
    run_id: str
    experiment_id: int
    experiment: str
    name: str | None = None
    status: str
    start_time: int
    end_time: int | None = None
    parent_run_id: str | None = None
    created_by: str | None = None
    params: dict[str, str] = {}
    metrics: dict[str, float | str] = {}
    tags: dict[str, str] = {}


class MetricIO(Strict, kw_only=True):
    key: str
    value: float | str
    step: int = 0
    timestamp: int = 0


class FileOut(Strict, kw_only=True):
    path: str
    size: int
    sha256: str


class ErrorInfo(Out, kw_only=True):
    code: str
    message: str
    field: str | None = None
    detail: dict[str, Any] = {}


class ErrorBody(Out, kw_only=True):
    error: ErrorInfo


# -- conversions ------------------------------------------------------------------------


# Entities and their wire forms have the same field names, so one pair of
# functions converts all of them: times become milliseconds, tuples lists, and a
# run's metric values the spellings of number_out.
_TIMES = frozenset({"created_at", "updated_at", "changed_at", "start_time", "end_time"})
E = TypeVar("E")
W = TypeVar("W", bound=msgspec.Struct)


def to_wire(kind: type[W], entity: Any) -> W:
    """The wire form ``kind`` of an entity (a frozen dataclass with the same field names)."""
    values: dict[str, Any] = {}
    for name in kind.__struct_fields__:
        value = getattr(entity, name)
        if name in _TIMES:
            value = None if value is None else to_millis(value)
        elif name == "metrics":
            value = {k: number_out(v) for k, v in value.items()}
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        values[name] = value
    return kind(**values)


def from_wire(kind: type[E], out: msgspec.Struct) -> E:
    """The entity ``kind`` from its wire form."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):  # type: ignore[arg-type]
        value = getattr(out, f.name)
        if f.name in _TIMES:
            value = from_millis(value)
        elif f.name == "metrics":
            value = {k: number_in(v) for k, v in value.items()}
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, dict):
            value = dict(value)
        values[f.name] = value
    return kind(**values)


def model_out(m: RegisteredModel) -> ModelOut:
    """Wire form of a registered model."""
    return to_wire(ModelOut, m)


def model_in(m: ModelOut) -> RegisteredModel:
    """A registered model from its wire form."""
    return from_wire(RegisteredModel, m)


def version_out(v: ModelVersion) -> VersionOut:
    """Wire form of a model version."""
    return to_wire(VersionOut, v)


def version_in(v: VersionOut) -> ModelVersion:
    """A model version from its wire form."""
    return from_wire(ModelVersion, v)


def resolved_out(r: ResolvedVersion) -> ResolvedOut:
    """Wire form of a resolved reference."""
    return to_wire(ResolvedOut, r)


def resolved_in(r: ResolvedOut) -> ResolvedVersion:
    """A resolved reference from its wire form."""
    return from_wire(ResolvedVersion, r)


def change_out(c: AliasChange) -> AliasChangeOut:
    """Wire form of an alias move."""
    return to_wire(AliasChangeOut, c)


def change_in(c: AliasChangeOut) -> AliasChange:
    """An alias move from its wire form."""
    return from_wire(AliasChange, c)


def experiment_out(e: Experiment) -> ExperimentOut:
    """Wire form of an experiment."""
    return to_wire(ExperimentOut, e)


def experiment_in(e: ExperimentOut) -> Experiment:
    """An experiment from its wire form."""
    return from_wire(Experiment, e)


def run_out(r: Run) -> RunOut:
    """Wire form of a run."""
    return to_wire(RunOut, r)


def run_in(r: RunOut) -> Run:
    """A run from its wire form."""
    return from_wire(Run, r)


def number_out(value: float) -> float | str:
    """A float JSON can carry: NaN and infinities as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def number_in(value: float | str, field: str = "value") -> float:
    """A float from :func:`number_out`'s form; :class:`ValueError` naming ``field``."""
    if isinstance(value, str):
        spelled = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value not in spelled:
            raise ValueError(f"{field}: {value!r} is not a number (nor NaN, Infinity, -Infinity)")
        return spelled[value]
    return float(value)


def metric_out(m: Metric) -> MetricIO:
    """Wire form of a metric value."""
    return MetricIO(key=m.key, value=number_out(m.value), step=m.step, timestamp=m.timestamp)


def metric_in(m: MetricIO) -> Metric:
    """A metric value from its wire form."""
    return Metric(m.key, number_in(m.value, f"metric {m.key!r}"), m.step, m.timestamp)


def file_out(f: FileEntry) -> FileOut:
    """Wire form of a file entry."""
    return FileOut(path=f.path, size=f.size, sha256=f.sha256)


def file_in(f: FileOut) -> FileEntry:
    """A file entry from its wire form."""
    return FileEntry(f.path, f.size, f.sha256)


# -- errors -----------------------------------------------------------------------------

# code -> (exception class, HTTP status). The status is what a client could
# retry on: every client mistake is a 4xx.
_ERRORS: dict[str, tuple[type[errors.ModelyardError], int]] = {
    "registered_model_not_found": (errors.RegisteredModelNotFound, 404),
    "model_version_not_found": (errors.ModelVersionNotFound, 404),
    "alias_not_found": (errors.AliasNotFound, 404),
    "experiment_not_found": (errors.ExperimentNotFound, 404),
    "run_not_found": (errors.RunNotFound, 404),
    "artifact_not_found": (errors.ArtifactNotFound, 404),
    "not_found": (errors.ModelNotFound, 404),
    "already_exists": (errors.AlreadyExists, 409),
    "invalid_value": (errors.InvalidURI, 400),
    "invalid_filter": (errors.InvalidFilter, 400),
    "tracking_error": (errors.TrackingError, 400),
    "schema_error": (errors.SchemaError, 400),
    "integrity_error": (errors.IntegrityError, 400),
    "model_format_error": (errors.ModelFormatError, 400),
    # the yard's signing policy refused a version or an alias move: not the caller's role
    "signature_required": (errors.SignatureRequired, 403),
    # a signed record (an alias move) by a key the yard does not accept, or one that is
    # malformed, foreign or used already
    "untrusted_key": (errors.UntrustedKey, 403),
    "stale_alias_record": (errors.StaleAliasRecord, 409),
    "bad_signature": (errors.SignatureError, 400),
}


def error_status(code: str) -> int | None:
    """The HTTP status of a known error code."""
    found = _ERRORS.get(code)
    return found[1] if found else None


def error_info(exc: errors.ModelyardError) -> ErrorInfo:
    """The wire form of a modelyard error: a stable code, the message, the context."""
    e = errors
    if isinstance(exc, e.AliasNotFound):
        return ErrorInfo(
            code="alias_not_found",
            message=str(exc),
            field="alias",
            detail={
                "name": exc.name,
                "alias": exc.alias,
                "aliases": exc.aliases,
                "suggestions": list(exc.suggestions),
            },
        )
    if isinstance(exc, e.ModelVersionNotFound):
        return ErrorInfo(
            code="model_version_not_found",
            message=str(exc),
            field="version",
            detail={"name": exc.name, "version": exc.version, "versions": list(exc.versions)},
        )
    if isinstance(exc, e.RegisteredModelNotFound):
        return ErrorInfo(
            code="registered_model_not_found",
            message=str(exc),
            field="name",
            detail={"name": exc.name, "suggestions": list(exc.suggestions)},
        )
    if isinstance(exc, e.ExperimentNotFound):
        return ErrorInfo(
            code="experiment_not_found",
            message=str(exc),
            field="experiment",
            detail={"name": exc.name, "suggestions": list(exc.suggestions)},
        )
    if isinstance(exc, e.RunNotFound):
        return ErrorInfo(
            code="run_not_found",
            message=str(exc),
            field="run_id",
            detail={"run_id": exc.run_id, "suggestions": list(exc.suggestions)},
        )
    if isinstance(exc, e.ArtifactNotFound):
        return ErrorInfo(
            code="artifact_not_found",
            message=str(exc),
            field="path",
            detail={
                "owner": exc.owner,
                "path": exc.path,
                "suggestions": list(exc.suggestions),
                "uri": exc.uri,
            },
        )
    if isinstance(exc, e.ModelNotFound):
        return ErrorInfo(
            code="not_found", message=str(exc), detail={"uri": exc.uri, "reason": exc.reason}
        )
    if isinstance(exc, e.AlreadyExists):
        return ErrorInfo(
            code="already_exists",
            message=str(exc),
            field="name",
            detail={"kind": exc.kind, "name": exc.name},
        )
    if isinstance(exc, e.InvalidURI):
        return ErrorInfo(
            code="invalid_value",
            message=str(exc),
            field=exc.part,
            detail={"uri": exc.uri, "reason": exc.reason, "part": exc.part},
        )
    if isinstance(exc, e.InvalidFilter):
        return ErrorInfo(
            code="invalid_filter",
            message=str(exc),
            field="filter",
            detail={"text": exc.text, "reason": exc.reason, "position": exc.position},
        )
    if isinstance(exc, e.TrackingError):
        return ErrorInfo(code="tracking_error", message=str(exc))
    if isinstance(exc, e.SchemaError):
        return ErrorInfo(
            code="schema_error",
            message=str(exc),
            field=exc.column,
            detail={"column": exc.column, "expected": exc.expected, "received": exc.received},
        )
    if isinstance(exc, e.IntegrityError):
        return ErrorInfo(
            code="integrity_error",
            message=str(exc),
            field="sha256",
            detail={"file": exc.file, "problem": exc.problem},
        )
    if isinstance(exc, e.ModelFormatError):
        return ErrorInfo(code="model_format_error", message=str(exc))
    if isinstance(exc, e.SignatureRequired):
        return ErrorInfo(code="signature_required", message=str(exc))
    if isinstance(exc, e.StaleAliasRecord):
        return ErrorInfo(code="stale_alias_record", message=str(exc))
    if isinstance(exc, e.UntrustedKey):
        return ErrorInfo(
            code="untrusted_key",
            message=str(exc),
            detail={"key_id": exc.key_id, "reason": exc.reason},
        )
    if isinstance(exc, e.SignatureError):
        return ErrorInfo(code="bad_signature", message=str(exc))
    raise TypeError(f"no wire form for {type(exc).__name__}")


def error_body(info: ErrorInfo) -> bytes:
    """The JSON body of an error answer."""
    return msgspec.json.encode(ErrorBody(error=info))


def _strs(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def rebuild(info: ErrorInfo) -> errors.ModelyardError | None:
    """The exception an error answer stands for, with its context; ``None`` if unknown."""
    d: Mapping[str, Any] = info.detail or {}
    e = errors
    code = info.code
    try:
        if code == "alias_not_found":
            return e.AliasNotFound(
                str(d["name"]),
                str(d["alias"]),
                aliases={str(k): int(v) for k, v in dict(d.get("aliases") or {}).items()},
                suggestions=_strs(d.get("suggestions")),
            )
        if code == "model_version_not_found":
            version = d.get("version")
            return e.ModelVersionNotFound(
                str(d["name"]),
                int(version) if version is not None else None,
                versions=[int(v) for v in d.get("versions") or []],
            )
        if code == "registered_model_not_found":
            return e.RegisteredModelNotFound(
                str(d["name"]), suggestions=_strs(d.get("suggestions"))
            )
        if code == "experiment_not_found":
            return e.ExperimentNotFound(str(d["name"]), suggestions=_strs(d.get("suggestions")))
        if code == "run_not_found":
            return e.RunNotFound(str(d["run_id"]), suggestions=_strs(d.get("suggestions")))
        if code == "artifact_not_found":
            return e.ArtifactNotFound(
                str(d["owner"]),
                str(d["path"]),
                suggestions=_strs(d.get("suggestions")),
                uri=str(d["uri"]) if d.get("uri") else None,
            )
        if code == "not_found":
            return e.ModelNotFound(str(d.get("uri", "")), str(d.get("reason", info.message)))
        if code == "already_exists":
            return e.AlreadyExists(str(d["kind"]), str(d["name"]))
        if code == "invalid_value":
            return e.InvalidURI(
                str(d.get("uri", "")), str(d.get("reason", info.message)), part=info.field
            )
        if code == "invalid_filter":
            position = d.get("position")
            return e.InvalidFilter(
                str(d.get("text", "")),
                str(d.get("reason", info.message)),
                position=int(position) if position is not None else None,
            )
        if code == "tracking_error":
            return e.TrackingError(info.message)
        if code == "schema_error":
            return e.SchemaError(
                info.message,
                column=d.get("column"),
                expected=d.get("expected"),
                received=d.get("received"),
            )
        if code == "integrity_error":
            return e.IntegrityError(
                "the yard server", str(d.get("file", "")), str(d.get("problem", info.message))
            )
        if code == "model_format_error":
            return e.ModelFormatError(info.message)
        if code == "signature_required":
            return e.SignatureRequired(info.message)
        if code == "stale_alias_record":
            return e.StaleAliasRecord(info.message)
        if code == "untrusted_key":
            return e.UntrustedKey(str(d["key_id"]), str(d["reason"]))
        if code == "bad_signature":
            return e.SignatureError(info.message)
    except (KeyError, TypeError, ValueError):
        return None
    return None


def raise_for_error(info: ErrorInfo) -> None:
    """Raise the exception an error answer stands for (known codes only)."""
    exc = rebuild(info)
    if exc is not None:
        raise exc
