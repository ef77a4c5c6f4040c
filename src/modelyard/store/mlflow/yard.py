"""Read-only yards over MLflow stores: ``mlflow+http://``, ``mlflow+sqlite:///``, ...

=============================================  =====================================
``mlflow+http://host:5000`` (``mlflow+https``)  a running ``mlflow server``
``mlflow+sqlite:///path/mlflow.db``             an MLflow database file
``mlflow+postgresql://user@host/db``            an MLflow PostgreSQL database
``mlflow+file:/path/mlruns``                    an MLflow file store
=============================================  =====================================

``load_model("models:/iris@champion", yard="mlflow+sqlite:///mlflow.db")``
resolves the alias in the MLflow store, then streams the version's files once
into a local content-addressed staging store, hashing them on the way; the
digest is computed from them, and the model is materialised in modelyard's
verified cache like any other. A later resolve lists the version's files
again (a cheap listing) and, while their paths and sizes are what they were,
reuses the digest without reading a file; MLflow versions do not change their
files. The staging store is ``?artifacts=DIR`` if given, else
``<cache home>/mlflow/<store>/``.

Every write raises :class:`~modelyard.errors.ReadOnlyYard`; the MLflow store is
never written to.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl, urlencode

from modelyard._paths import cache_home
from modelyard._stamps import write_atomic
from modelyard.errors import (
    AliasNotFound,
    ExperimentNotFound,
    ModelNotFound,
    ReadOnlyYard,
    RunNotFound,
)
from modelyard.store import BlobInfo, Stores, StoreSpec
from modelyard.store.entities import (
    AliasChange,
    AliasSequence,
    Experiment,
    Metric,
    ModelVersion,
    RegisteredModel,
    ResolvedVersion,
    Run,
    from_millis,
)
from modelyard.store.filters import parse_filter

if TYPE_CHECKING:
    from modelyard.format.content import FileEntry
    from modelyard.store.blobs import LocalBlobStore
    from modelyard.store.mlflow import MlflowModel, MlflowSource, MlflowVersion
    from modelyard.trust.admission import SigningPolicy

__all__ = ["MlflowArtifactStore", "MlflowMetadataStore", "open_stores", "source_uri"]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def source_uri(yard_uri: str) -> str:
    """The MLflow tracking URI inside an ``mlflow+…`` yard URI (``?artifacts=`` dropped)."""
    text = yard_uri.strip()
    if not text.lower().startswith("mlflow+"):
        raise ValueError(f"not an mlflow+ yard URI: {yard_uri!r}")
    inner = text[len("mlflow+") :]
    base, _, query = inner.partition("?")
    rest = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "artifacts"]
    if rest:
        base += "?" + urlencode(rest)
    return base


def open_stores(spec: StoreSpec) -> Stores:
    """The read-only stores of an ``mlflow+…`` yard (registered for the scheme ``mlflow``)."""
    from modelyard.store.blobs import LocalBlobStore
    from modelyard.store.mlflow import open_mlflow_source

    source = open_mlflow_source(source_uri(spec.database_url))
    if spec.artifacts:
        staging_root = Path(spec.artifacts)
    else:
        key = hashlib.sha256(source.location.encode()).hexdigest()[:16]
        staging_root = cache_home() / "mlflow" / key
    staging = LocalBlobStore(staging_root / "blobs")
    metadata = MlflowMetadataStore(source, staging, staging_root, display=spec.display)
    return Stores(metadata=metadata, artifacts=MlflowArtifactStore(staging, spec.display))


class MlflowArtifactStore:
    """The staging blobs, readable; every write is a :class:`ReadOnlyYard`."""

    def __init__(self, staging: LocalBlobStore, display: str) -> None:
        self._staging = staging
        self._display = display

    @property
    def location(self) -> str:
        """The staging folder."""
        return self._staging.location

    def exists(self, sha256: str) -> bool:
        """Whether the blob was staged."""
        return self._staging.exists(sha256)

    def stat(self, sha256: str) -> BlobInfo | None:
        """A staged blob's size."""
        return self._staging.stat(sha256)

    def iter_bytes(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Bytes of a staged blob, unverified."""
        return self._staging.iter_bytes(sha256, start, end)

    def read_bytes(self, sha256: str) -> bytes:
        """A staged blob, verified."""
        return self._staging.read_bytes(sha256)

    def copy_to(self, sha256: str, dest: Path, *, size: int | None = None) -> None:
        """Write a staged blob to ``dest``, verified."""
        self._staging.copy_to(sha256, dest, size=size)

    def put_file(self, path: Path, *, sha256: str | None = None) -> BlobInfo:
        """Refused: the yard is read-only."""
        raise ReadOnlyYard(self._display, "store files")

    def put_bytes(self, data: bytes) -> BlobInfo:
        """Refused: the yard is read-only."""
        raise ReadOnlyYard(self._display, "store files")

    def put_stream(
        self, read: Callable[[int], bytes], *, sha256: str, size: int | None = None
    ) -> BlobInfo:
        """Refused: the yard is read-only."""
        raise ReadOnlyYard(self._display, "store files")


class MlflowMetadataStore:
    """An MLflow registry as a read-only :class:`~modelyard.store.MetadataStore`."""

    def __init__(
        self,
        source: MlflowSource,
        staging: LocalBlobStore,
        staging_root: Path,
        *,
        display: str,
    ) -> None:
        self.source = source
        self._staging = staging
        self._index = staging_root / "index"
        self._display = display
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        """The yard URI as shown to people."""
        return self._display

    def schema_revision(self) -> str | None:
        """MLflow's schema is MLflow's business."""
        return None

    def close(self) -> None:
        """Release the source's connections."""
        self.source.close()

    # -- reads -----------------------------------------------------------------------------

    def get_registered_model(self, name: str) -> RegisteredModel:
        """One registered model."""
        model = self.source.get_model(name)
        return self._model(model, [v.version for v in self.source.list_versions(name)])

    def search_registered_models(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
    ) -> list[RegisteredModel]:
        """Registered models; a filter may name ``name`` (``=``, ``LIKE``) only."""
        names = _names_matching(filter_string)
        found = [m for m in self.source.list_models() if names(m.name)]
        return [
            self._model(m, [v.version for v in self.source.list_versions(m.name)])
            for m in found[:max_results]
        ]

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version, pinned to the digest of its files (fetched once to compute it)."""
        found = self.source.get_version(name, version)
        aliases = self.source.get_model(name).aliases
        return self._version(found, self._digest(found), aliases)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version ``alias`` points at in MLflow now."""
        model = self.source.get_model(name)
        if alias not in model.aliases:
            raise AliasNotFound(name, alias, aliases=model.aliases)
        return self.get_model_version(name, model.aliases[alias])

    def resolve(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ResolvedVersion:
        """Name + version, name + alias, or the latest version: its digest, from its files."""
        if alias is not None:
            model = self.source.get_model(name)
            if alias not in model.aliases:
                raise AliasNotFound(name, alias, aliases=model.aliases)
            version = model.aliases[alias]
        if version is None:
            versions = self.source.list_versions(name)
            if not versions:
                raise ModelNotFound(f"models:/{name}/latest", "the model has no versions")
            found = versions[-1]
        else:
            found = self.source.get_version(name, version)
        return ResolvedVersion(name, found.version, self._digest(found), None)

    def search_model_versions(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[ModelVersion]:
        """Versions, newest first; a filter may name ``name`` only. Versions never fetched
        show an empty digest (listing does not download models)."""
        names = _names_matching(filter_string)
        out: list[ModelVersion] = []
        for model in self.source.list_models():
            if not names(model.name):
                continue
            for v in reversed(self.source.list_versions(model.name)):
                out.append(self._version(v, self._known_digest(v) or "", model.aliases))
        return out[:max_results]

    def get_alias_history(self, name: str, alias: str) -> list[AliasChange]:
        """MLflow keeps no alias history: empty."""
        self.source.get_model(name)
        return []

    def get_experiment(self, name: str) -> Experiment:
        """Experiments are not listed through an mlflow+ yard."""
        raise ExperimentNotFound(name)

    def list_experiments(self) -> list[Experiment]:
        """Experiments are not listed through an mlflow+ yard."""
        return []

    def get_run(self, run_id: str) -> Run:
        """A run, with its latest metric values."""
        run = self.source.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        latest: dict[str, tuple[int, int, float]] = {}
        for m in run.metrics:
            if m.key not in latest or (m.step, m.timestamp) >= latest[m.key][:2]:
                latest[m.key] = (m.step, m.timestamp, m.value)
        return Run(
            run_id=run.run_id,
            experiment_id=0,
            experiment=run.experiment,
            name=run.name,
            status=run.status,
            start_time=from_millis(run.start_ms) or _EPOCH,
            end_time=from_millis(run.end_ms),
            parent_run_id=run.tags.get("mlflow.parentRunId"),
            created_by=run.user,
            params=dict(run.params),
            metrics={k: v[2] for k, v in latest.items()},
            tags=dict(run.tags),
        )

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[Run]:
        """Runs are reached by id only through an mlflow+ yard: empty."""
        return []

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for ``key``."""
        run = self.source.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return [Metric(m.key, m.value, m.step, m.timestamp) for m in run.metrics if m.key == key]

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[FileEntry]:
        """Run files are not read through an mlflow+ yard (MLflow 3 keeps models apart
        from runs): load by ``models:/`` instead."""
        raise ModelNotFound(
            f"runs:/{run_id}/{prefix}",
            "runs:/ references are not resolved on an mlflow+ yard; use models:/<name>/<version>",
        )

    # -- writes: all refused -------------------------------------------------------------------

    def _refuse(self, action: str) -> NoReturn:
        raise ReadOnlyYard(self._display, action)

    def create_registered_model(self, name: str, **_: Any) -> RegisteredModel:
        """Refused: read-only."""
        self._refuse(f"create registered model {name!r}")

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Refused: read-only."""
        self._refuse(f"rename registered model {name!r}")

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Refused: read-only."""
        self._refuse(f"describe registered model {name!r}")

    def delete_registered_model(self, name: str) -> None:
        """Refused: read-only."""
        self._refuse(f"delete registered model {name!r}")

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Refused: read-only."""
        self._refuse(f"tag registered model {name!r}")

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Refused: read-only."""
        self._refuse(f"untag registered model {name!r}")

    def create_model_version(self, name: str, **_: Any) -> ModelVersion:
        """Refused: read-only."""
        self._refuse(f"register a version of {name!r}")

    def import_model_version(self, name: str, version: int, **_: Any) -> ModelVersion:
        """Refused: read-only."""
        self._refuse(f"register version {version} of {name!r}")

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Refused: read-only."""
        self._refuse(f"describe {name} version {version}")

    def delete_model_version(self, name: str, version: int, *, user: str | None = None) -> None:
        """Refused: read-only."""
        self._refuse(f"delete {name} version {version}")

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Refused: read-only."""
        self._refuse(f"tag {name} version {version}")

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Refused: read-only."""
        self._refuse(f"untag {name} version {version}")

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user: str | None = None,
        record: str | None = None,
    ) -> None:
        """Refused: read-only."""
        self._refuse(f"set alias {name}@{alias}")

    def alias_sequence(self, name: str, alias: str) -> AliasSequence:
        """None: MLflow's store keeps no alias records (``yard_id`` is ``None``)."""
        return AliasSequence(None, 0)

    def delete_alias(self, name: str, alias: str, *, user: str | None = None) -> None:
        """Refused: read-only."""
        self._refuse(f"delete alias {name}@{alias}")

    def get_signing_policy(self) -> SigningPolicy:
        """Nothing required: MLflow's store has no signing policy."""
        from modelyard.trust.admission import SigningPolicy

        return SigningPolicy()

    def set_signing_policy(self, policy: SigningPolicy) -> SigningPolicy:
        """Refused: read-only."""
        self._refuse("set the signing policy")

    def require_model_signatures(self, name: str, required: bool = True) -> bool:
        """Refused: read-only."""
        self._refuse(f"require signatures on {name!r}")

    def get_or_create_experiment(self, name: str) -> Experiment:
        """Refused: read-only (runs cannot be logged here)."""
        self._refuse(f"create experiment {name!r} (log runs)")

    def create_run(self, experiment_id: int, **_: Any) -> Run:
        """Refused: read-only."""
        self._refuse("start a run")

    def end_run(self, run_id: str, status: str, *, end_time: _dt.datetime | None = None) -> None:
        """Refused: read-only."""
        self._refuse(f"end run {run_id}")

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Refused: read-only."""
        self._refuse(f"log params to run {run_id}")

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Refused: read-only."""
        self._refuse(f"log metrics to run {run_id}")

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Refused: read-only."""
        self._refuse(f"tag run {run_id}")

    def add_artifacts(self, run_id: str, entries: Iterable[FileEntry]) -> None:
        """Refused: read-only."""
        self._refuse(f"add files to run {run_id}")

    # -- helpers -----------------------------------------------------------------------------

    def _digest(self, version: MlflowVersion) -> str:
        """The digest of the version's files, staging them the first time (hashed on the
        way); later, while the listing is unchanged and the blobs are staged, no file is
        read."""
        from modelyard.store.mlflow._copy import copy_version_files, model_files

        files = model_files(self.source, version)
        listing = sorted((f.path, f.size) for f in files)
        record = self._record_file(version)
        with self._lock:
            known = _read_record(record)
            if (
                known is not None
                and known.get("listing") == [list(x) for x in listing]
                and self._staging.exists(str(known["digest"]).split(":", 1)[1])
            ):
                return str(known["digest"])
            self._staging.root.mkdir(parents=True, exist_ok=True)
            copied = copy_version_files(
                self.source, version, self._staging, files=files, scratch_parent=self._staging.root
            )
            record.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(record, json.dumps({"digest": copied.digest, "listing": listing}))
            return copied.digest

    def _known_digest(self, version: MlflowVersion) -> str | None:
        known = _read_record(self._record_file(version))
        return str(known["digest"]) if known else None

    def _record_file(self, version: MlflowVersion) -> Path:
        key = f"{self.source.location}\n{version.name}\n{version.version}\n{version.storage}"
        return self._index / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def _model(self, model: MlflowModel, versions: list[int]) -> RegisteredModel:
        created = from_millis(model.created_ms) or _EPOCH
        return RegisteredModel(
            name=model.name,
            description=model.description,
            created_at=created,
            updated_at=created,
            tags=dict(model.tags),
            aliases=dict(model.aliases),
            latest_version=max(versions) if versions else None,
        )

    def _version(self, v: MlflowVersion, digest: str, aliases: Mapping[str, int]) -> ModelVersion:
        created = from_millis(v.created_ms) or _EPOCH
        return ModelVersion(
            name=v.name,
            version=v.version,
            digest=digest,
            source=v.source,
            run_id=v.run_id,
            status=v.status,
            description=v.description,
            created_at=created,
            updated_at=created,
            created_by=v.created_by,
            tags=dict(v.tags),
            aliases=tuple(sorted(a for a, n in aliases.items() if n == v.version)),
        )


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("digest"), str) else None


def _names_matching(filter_string: str | None) -> Callable[[str], bool]:
    """A predicate on model names from a filter naming only ``name``."""
    if not filter_string:
        return lambda _name: True
    import fnmatch

    from modelyard.store.filters import Fields

    conds = parse_filter(
        filter_string,
        Fields(attributes={"name": "string"}, entities=frozenset({"attribute"})),
    )

    def matches(name: str) -> bool:
        for c in conds:
            value = str(c.value)
            if c.op == "=" and name != value:
                return False
            if c.op == "!=" and name == value:
                return False
            if c.op in ("LIKE", "ILIKE"):
                pattern = value.replace("%", "*").replace("_", "?")
                text, pat = (name.lower(), pattern.lower()) if c.op == "ILIKE" else (name, pattern)
                if not fnmatch.fnmatchcase(text, pat):
                    return False
        return True

    return matches
