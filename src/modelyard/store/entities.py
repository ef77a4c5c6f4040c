"""Values the yard hands out: registered models, versions, aliases, runs.

All are frozen dataclasses built by a metadata store; changing one means a
call on the store, never an attribute assignment. Times are timezone-aware
UTC datetimes (stored as integer milliseconds since the epoch).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AliasChange",
    "AliasSequence",
    "Experiment",
    "Metric",
    "ModelVersion",
    "RegisteredModel",
    "ResolvedVersion",
    "Run",
    "RunStatus",
    "from_millis",
    "now_millis",
    "to_millis",
]


class RunStatus:
    """The states a run goes through (MLflow's names)."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ALL = (RUNNING, FINISHED, FAILED, KILLED)


def now_millis() -> int:
    """Milliseconds since the epoch, now."""
    return int(_dt.datetime.now(_dt.timezone.utc).timestamp() * 1000)


def to_millis(when: _dt.datetime) -> int:
    """Milliseconds since the epoch; a naive datetime is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return int(when.timestamp() * 1000)


def from_millis(ms: int | None) -> _dt.datetime | None:
    """The UTC datetime of ``ms`` milliseconds since the epoch (``None`` stays ``None``)."""
    if ms is None:
        return None
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)


@dataclass(frozen=True)
class RegisteredModel:
    """A named model in the registry, with its aliases and the newest version number."""

    name: str
    description: str | None
    created_at: _dt.datetime
    updated_at: _dt.datetime
    tags: dict[str, str] = field(default_factory=dict)
    #: alias -> version number
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None
    #: aliases only a caller with ``manage`` may move or delete (enforced by the server)
    protected_aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "name": self.name,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "tags": dict(self.tags),
            "aliases": dict(self.aliases),
            "latest_version": self.latest_version,
            "protected_aliases": list(self.protected_aliases),
        }


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model, pinned to a content digest."""

    name: str
    version: int
    digest: str
    #: where the files came from, always inside the yard (``runs:/...``, ``models:/...``
    #: or the digest itself for a directory copied in)
    source: str
    run_id: str | None
    status: str
    description: str | None
    created_at: _dt.datetime
    updated_at: _dt.datetime
    created_by: str | None
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        """``models:/<name>/<version>``."""
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "source": self.source,
            "run_id": self.run_id,
            "status": self.status,
            "description": self.description,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "created_by": self.created_by,
            "tags": dict(self.tags),
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class ResolvedVersion:
    """What a ``models:/`` reference points at, read in one query."""

    name: str
    version: int
    digest: str
    run_id: str | None
    #: for an alias: the signed record of its last move (a DSSE envelope's JSON), if any
    alias_record: str | None = None
    #: the yard's own id, which alias records name
    yard_id: str | None = None


@dataclass(frozen=True)
class AliasSequence:
    """Where an alias's moves stand: the yard's id and the last move's sequence (0: none).

    A signed move must carry the next sequence; see :mod:`modelyard.trust.alias_records`.
    """

    yard_id: str | None
    sequence: int


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias: who moved it when, from which version to which.

    ``from_version`` is ``None`` when the alias was created; ``to_version`` is
    ``None`` when it was deleted (directly, or with the version it pointed at).
    """

    name: str
    alias: str
    from_version: int | None
    to_version: int | None
    changed_at: _dt.datetime
    changed_by: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "name": self.name,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "changed_at": self.changed_at.isoformat(),
            "changed_by": self.changed_by,
        }


@dataclass(frozen=True)
class Experiment:
    """A named group of runs."""

    experiment_id: int
    name: str
    created_at: _dt.datetime


@dataclass(frozen=True)
class Metric:
    """One logged metric value."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0  # ms since the epoch

    def __post_init__(self) -> None:
        if not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
            raise TypeError(
                f"metric {self.key!r} must be a number, got {type(self.value).__name__}"
            )

    @property
    def is_nan(self) -> bool:
        """Whether the value is NaN (stored as NULL)."""
        return math.isnan(self.value)


@dataclass(frozen=True)
class Run:
    """A run with its params, latest metrics and tags."""

    run_id: str
    experiment_id: int
    experiment: str
    name: str | None
    status: str
    start_time: _dt.datetime
    end_time: _dt.datetime | None
    parent_run_id: str | None
    created_by: str | None
    params: dict[str, str] = field(default_factory=dict)
    #: key -> latest value (highest step, then newest timestamp)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    def uri(self, path: str = "") -> str:
        """``runs:/<run_id>/<path>``."""
        return f"runs:/{self.run_id}/{path}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "run_id": self.run_id,
            "experiment_id": self.experiment_id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status,
            "start_time": self.start_time.isoformat(),
            "end_time": self.end_time.isoformat() if self.end_time else None,
            "parent_run_id": self.parent_run_id,
            "created_by": self.created_by,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
        }
