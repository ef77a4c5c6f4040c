"""The yard's two stores, as interfaces, and the registry that opens them.

A yard is a :class:`MetadataStore` (experiments, runs, registered models,
versions, aliases) plus an :class:`ArtifactStore` (content-addressed blobs).
Which implementation opens a yard URI is decided by its scheme through one
:class:`~modelyard._registry.Registry`; third parties add schemes through the
entry-point group ``modelyard.stores``, whose value is a factory
``(StoreSpec) -> Stores``::

    [project.entry-points."modelyard.stores"]
    myscheme = "my_package.store:open_stores"

Nothing here imports SQLAlchemy: the built-in SQL factory is imported on the
first open, so ``import modelyard`` stays light.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from modelyard._registry import Registry

if TYPE_CHECKING:
    from modelyard.format.content import FileEntry
    from modelyard.store.entities import (
        AliasChange,
        AliasSequence,
        Experiment,
        Metric,
        ModelVersion,
        RegisteredModel,
        ResolvedVersion,
        Run,
    )
    from modelyard.trust.admission import SigningPolicy

__all__ = [
    "ArtifactStore",
    "BlobInfo",
    "MetadataStore",
    "StoreFactory",
    "StoreSpec",
    "Stores",
    "list_store_schemes",
    "open_stores",
    "register_store",
]


@dataclass(frozen=True)
class StoreSpec:
    """Where a yard's stores are: what a store factory needs to open them."""

    #: the yard URI's scheme: ``file`` (embedded folder), ``sqlite``, ``postgresql``, ...
    scheme: str
    #: the database URL handed to the driver (may hold a password: never printed)
    database_url: str = field(repr=False)
    #: the artifact store's URI (see :mod:`modelyard.store.artifacts`): a folder's absolute
    #: path, ``s3://bucket/prefix``, ...; ``""`` when the yard's own scheme decides
    artifacts: str
    #: the URI as shown to people (password masked)
    display: str
    #: create the database when it does not exist yet (writes); reads only open
    create: bool = True


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its sha256 (hex) and size in bytes."""

    sha256: str
    size: int


@runtime_checkable
class ArtifactStore(Protocol):
    """Content-addressed blobs: each file is stored once, under its sha256."""

    @property
    def location(self) -> str:
        """Where the blobs live, for messages."""
        ...

    def put_file(self, path: Path, *, sha256: str | None = None) -> BlobInfo:
        """Store a file's content (once, however many times it is put).

        ``sha256`` is the file's hash when the caller already computed it; the
        store still checks it while copying.
        """
        ...

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Store ``data``."""
        ...

    def exists(self, sha256: str) -> bool:
        """Whether a blob is stored."""
        ...

    def stat(self, sha256: str) -> BlobInfo | None:
        """The blob's size without reading it; ``None`` when it is not stored."""
        ...

    def put_stream(
        self, read: Callable[[int], bytes], *, sha256: str, size: int | None = None
    ) -> BlobInfo:
        """Store the bytes ``read(n)`` yields (``b""`` at the end), verified against
        ``sha256`` (and ``size``) before the blob is visible; nothing is stored otherwise."""
        ...

    def iter_bytes(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes ``start..end`` (end exclusive) of a blob, unverified (for readers that
        verify, such as a server's clients)."""
        ...

    def read_bytes(self, sha256: str) -> bytes:
        """A blob's content, verified against its name."""
        ...

    def copy_to(self, sha256: str, dest: Path, *, size: int | None = None) -> None:
        """Write a blob to ``dest`` (a new file), verifying its sha256 (and size) on the way."""
        ...


@runtime_checkable
class MetadataStore(Protocol):
    """Experiments, runs, registered models, versions and aliases.

    Every name, alias and key reaching a store was validated by the caller
    (:mod:`modelyard.registry`, :mod:`modelyard.tracking`); stores enforce
    uniqueness, atomicity and numbering. Version numbers are allocated by the
    store: unique and gap-free per model under concurrent writers, never reused.
    """

    @property
    def location(self) -> str:
        """The store's URI as shown to people."""
        ...

    def schema_revision(self) -> str | None:
        """The schema revision the database is at."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...

    # -- registry ----------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        """Create a registered model; :class:`AlreadyExists` unless ``exist_ok``."""
        ...

    def get_registered_model(self, name: str) -> RegisteredModel:
        """One registered model; :class:`RegisteredModelNotFound` suggests close names."""
        ...

    def search_registered_models(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
    ) -> list[RegisteredModel]:
        """Registered models matching ``filter_string`` (``name LIKE 'fr%'``, ``tags.k = 'v'``)."""
        ...

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Give a registered model a new name (versions, aliases and history follow)."""
        ...

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set a registered model's description."""
        ...

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model with its versions, aliases and history."""
        ...

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set (or replace) a tag on a registered model."""
        ...

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model (no error if absent)."""
        ...

    def create_model_version(
        self,
        name: str,
        *,
        digest: str,
        source: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        created_by: str | None = None,
        files: Sequence[FileEntry] | None = None,
    ) -> ModelVersion:
        """A new version (next number) of ``name``, created with the model if missing.

        ``files`` is the version's file list, recorded with it (a server computes it
        from the manifest blob itself and ignores what a client says).
        """
        ...

    def import_model_version(
        self,
        name: str,
        version: int,
        *,
        digest: str,
        source: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        created_by: str | None = None,
        files: Sequence[FileEntry] | None = None,
        created_at: int | None = None,
    ) -> ModelVersion:
        """Version ``version`` of ``name`` with exactly that number, for migrations.

        Returns the existing version when it holds ``digest`` (idempotent);
        :class:`AlreadyExists` when it holds other files or the number was given out
        before. ``created_at`` is the original creation time (ms since the epoch).
        """
        ...

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version; :class:`ModelVersionNotFound` lists the versions there are."""
        ...

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at; :class:`AliasNotFound` lists the aliases."""
        ...

    def resolve(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ResolvedVersion:
        """Name + version, or name + alias, or the latest version (neither): one query."""
        ...

    def search_model_versions(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[ModelVersion]:
        """Versions matching ``filter_string`` (``name = 'fraud'``, ``run_id = '...'``)."""
        ...

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Set a version's description (the only mutable field besides tags and aliases)."""
        ...

    def delete_model_version(self, name: str, version: int, *, user: str | None = None) -> None:
        """Delete a version and the aliases on it; its number is never given out again."""
        ...

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set (or replace) a tag on a version."""
        ...

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a tag from a version (no error if absent)."""
        ...

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user: str | None = None,
        record: str | None = None,
    ) -> None:
        """Point ``alias`` at ``version`` (one atomic statement) and record the move.

        ``record`` is the move's signed alias record (the JSON of a DSSE envelope,
        :mod:`modelyard.trust.alias_records`): it must name this yard, model, alias and
        version with the next sequence; a model that requires signatures needs one.
        """
        ...

    def alias_sequence(self, name: str, alias: str) -> AliasSequence:
        """The yard's id and the sequence of ``alias``'s last move (for the next record)."""
        ...

    def delete_alias(self, name: str, alias: str, *, user: str | None = None) -> None:
        """Remove ``alias``; :class:`AliasNotFound` if it does not exist."""
        ...

    def get_alias_history(self, name: str, alias: str) -> list[AliasChange]:
        """Every move of ``alias`` on ``name``, oldest first."""
        ...

    # -- signing policy ----------------------------------------------------------

    def get_signing_policy(self) -> SigningPolicy:
        """Whether signatures are required (yard-wide, per model) and which keys count."""
        ...

    def set_signing_policy(self, policy: SigningPolicy) -> SigningPolicy:
        """Replace the yard-wide part of the policy (``require``, keys); the result."""
        ...

    def require_model_signatures(self, name: str, required: bool = True) -> bool:
        """Make versions of ``name`` require signatures (or not); whether it changed."""
        ...

    # -- tracking ----------------------------------------------------------------

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if missing."""
        ...

    def get_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``; :class:`ExperimentNotFound` suggests close names."""
        ...

    def list_experiments(self) -> list[Experiment]:
        """Every experiment, by name."""
        ...

    def create_run(
        self,
        experiment_id: int,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        created_by: str | None = None,
        tags: Mapping[str, str] | None = None,
        start_time: _dt.datetime | None = None,
    ) -> Run:
        """A new run, RUNNING."""
        ...

    def end_run(self, run_id: str, status: str, *, end_time: _dt.datetime | None = None) -> None:
        """Mark a run finished, failed or killed."""
        ...

    def get_run(self, run_id: str) -> Run:
        """One run with params, latest metrics and tags; :class:`RunNotFound` if none."""
        ...

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[Run]:
        """Runs in the experiments matching ``filter_string``, in ``order_by`` order."""
        ...

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Record params; re-logging a param with another value is a :class:`TrackingError`."""
        ...

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Append metric values (history is kept; the latest is what searches see)."""
        ...

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for ``key``, by step then time."""
        ...

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set (or replace) run tags."""
        ...

    def add_artifacts(self, run_id: str, entries: Iterable[FileEntry]) -> None:
        """Record files of a run (their blobs must be stored first); a path logged again is
        replaced."""
        ...

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[FileEntry]:
        """The run's files under ``prefix`` (a directory path; ``""`` for all), by path."""
        ...


@dataclass(frozen=True)
class Stores:
    """An opened yard: its metadata and artifact stores."""

    metadata: MetadataStore
    artifacts: ArtifactStore


StoreFactory = Callable[[StoreSpec], Stores]

_BUILTINS = {
    "file": "modelyard.store.sql:open_stores",
    "sqlite": "modelyard.store.sql:open_stores",
    "postgresql": "modelyard.store.sql:open_stores",
    "http": "modelyard.store.rest:open_stores",
    "https": "modelyard.store.rest:open_stores",
    # mlflow+http(s)://, mlflow+sqlite:///, mlflow+postgresql://, mlflow+file: (read-only)
    "mlflow": "modelyard.store.mlflow.yard:open_stores",
}


def _validate(name: str, item: object) -> StoreFactory:
    if not callable(item):
        raise TypeError(f"store factory for scheme {name!r} is not callable: {item!r}")
    return item


_registry: Registry[StoreFactory] = Registry("store", "modelyard.stores", _BUILTINS, _validate)


def register_store(scheme: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Open yard URIs with scheme ``scheme`` through ``factory`` (entry points are the usual way).

    >>> register_store("memory", open_memory_stores)  # doctest: +SKIP
    """
    _registry.register(scheme, factory, replace=replace)


def list_store_schemes() -> list[str]:
    """Every yard URI scheme a store is registered for."""
    return _registry.names()


def open_stores(spec: StoreSpec) -> Stores:
    """Open the stores for ``spec`` through the factory registered for its scheme."""
    from modelyard.errors import InvalidURI

    try:
        factory = _registry.get(spec.scheme)
    except KeyError:
        close = _registry.suggest(spec.scheme)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidURI(
            spec.display,
            f"no store for scheme {spec.scheme!r}{hint} (known: {', '.join(_registry.names())})",
            part="scheme",
        ) from None
    return factory(spec)
