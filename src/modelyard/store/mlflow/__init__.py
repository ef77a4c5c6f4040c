"""Reading MLflow stores, read-only, without MLflow: one small interface, three readers.

:func:`open_mlflow_source` takes an MLflow tracking URI and returns an
:class:`MlflowSource`:

==============================================  ==========================================
``sqlite:///mlflow.db``, ``postgresql://…``     MLflow's own tables, through SQLAlchemy
                                                Core (SQLite opened ``mode=ro``; PostgreSQL
                                                in a READ ONLY transaction)
``file:/path/mlruns``, ``./mlruns``             a file store: ``meta.yaml`` files and the
                                                ``models/`` registry folder
``http(s)://host:5000``                         a running ``mlflow server``: its REST API and
                                                ``mlflow-artifacts`` proxy (Bearer
                                                ``MLFLOW_TRACKING_TOKEN`` or basic
                                                ``MLFLOW_TRACKING_USERNAME/PASSWORD``)
==============================================  ==========================================

A source yields registered models, their versions (numbers, source, run, tags,
aliases, where the files are), the runs that produced them, and a version's
files, listed and streamed. Nothing is ever written to it. A version whose files
lie on a local path outside the store's own artifact roots is refused
(:class:`~modelyard.errors.MlflowArtifactsRefused`), never read: a registry entry
must not make modelyard copy ``/etc`` or ``~/.ssh`` into a yard.

Used by ``modelyard import mlflow`` (:mod:`modelyard.store.mlflow.importer`) and
by read-only ``mlflow+…`` yards (:mod:`modelyard.store.mlflow.yard`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import IO, Protocol, runtime_checkable

__all__ = [
    "ArtifactFile",
    "MlflowMetric",
    "MlflowModel",
    "MlflowRun",
    "MlflowSource",
    "MlflowVersion",
    "open_mlflow_source",
]


@dataclass(frozen=True)
class MlflowModel:
    """A registered model as MLflow keeps it."""

    name: str
    description: str | None
    created_ms: int | None
    tags: dict[str, str] = field(default_factory=dict)
    #: alias -> the version it points at now
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowVersion:
    """One model version: its number, where it came from, and where its files are."""

    name: str
    version: int
    #: the URI given at registration (``models:/m-…``, ``runs:/…``, a path, ...)
    source: str
    run_id: str | None
    status: str
    description: str | None
    created_ms: int | None
    #: where the files are: MLflow's ``storage_location`` (or the resolved source)
    storage: str
    created_by: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MlflowMetric:
    """One logged metric value, with its step and time (ms since the epoch)."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True)
class MlflowRun:
    """A run with its whole metric history."""

    run_id: str
    experiment: str
    name: str | None
    status: str
    start_ms: int | None
    end_ms: int | None
    user: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: tuple[MlflowMetric, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactFile:
    """A file of a version, relative to the version's root; ``size`` when known up front."""

    path: str
    size: int | None


@runtime_checkable
class MlflowSource(Protocol):
    """An MLflow store, read-only."""

    @property
    def location(self) -> str:
        """The store as shown to people (passwords masked)."""
        ...

    def list_models(self) -> list[MlflowModel]:
        """Every registered model, by name."""
        ...

    def get_model(self, name: str) -> MlflowModel:
        """One registered model; :class:`RegisteredModelNotFound` if there is none."""
        ...

    def list_versions(self, name: str) -> list[MlflowVersion]:
        """The live (not deleted) versions of ``name``, lowest number first."""
        ...

    def get_version(self, name: str, version: int) -> MlflowVersion:
        """One live version; :class:`ModelVersionNotFound` if there is none."""
        ...

    def get_run(self, run_id: str) -> MlflowRun | None:
        """A run with params, metric history and tags; ``None`` if the store has none."""
        ...

    def list_files(self, version: MlflowVersion) -> list[ArtifactFile]:
        """Every file of the version (recursively), by path; refused or missing files
        raise :class:`MlflowArtifactsRefused` / :class:`MlflowSourceError`."""
        ...

    def open_file(self, version: MlflowVersion, path: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream of one of the version's files."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def open_mlflow_source(uri: str) -> MlflowSource:
    """The reader for the MLflow tracking URI ``uri`` (see the module doc).

    >>> source = open_mlflow_source("sqlite:///mlflow.db")  # doctest: +SKIP
    >>> [m.name for m in source.list_models()]               # doctest: +SKIP
    ['iris']
    """
    from modelyard.errors import InvalidURI

    text = uri.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    base = scheme.split("+", 1)[0]
    if base in ("http", "https"):
        from modelyard.store.mlflow._rest import RestSource

        return RestSource(text)
    if base == "sqlite" or base in ("postgresql", "postgres"):
        from modelyard.store.mlflow._sql import SqlSource

        return SqlSource(text)
    if base == "file" or len(scheme) <= 1:
        from modelyard.store.mlflow._files import FileSource

        return FileSource(text)
    raise InvalidURI(
        text,
        f"no MLflow store reader for scheme {scheme!r}: give http(s)://…, sqlite:///…, "
        "postgresql://… or a ./mlruns folder",
        part="scheme",
    )


def iter_chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """The stream's bytes in pieces of ``size``."""
    while chunk := stream.read(size):
        yield chunk
