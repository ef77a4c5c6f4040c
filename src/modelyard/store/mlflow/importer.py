"""``modelyard import mlflow``: copy an MLflow registry into a yard, whole, numbers kept.

For each registered model (matching a pattern), in version order:

1. the version's files are streamed from the source into a scratch folder and
   hashed on the way; those the yard's artifact store already holds are not
   sent again (content addressing: identical files across versions and models
   are stored once);
2. its producing run is copied (params, the whole metric history with steps
   and times, tags, status and times), once, tagged with its MLflow run id;
3. the version is registered with its MLflow number in one transaction
   (:meth:`MetadataStore.import_model_version`), its files' blobs already stored.

Only step 3 makes a version visible, so a kill at any moment leaves either no
version or a whole one; blobs stored before a kill are content-addressed and
simply found again. A second run finds every version by its number and the
provenance tag it carries, and moves on: imports are idempotent and resumable.
Then descriptions, tags and aliases (at their current targets) are set; these
writes are idempotent too. Anything that cannot be copied is skipped, named in
the report with the reason, and never half-written. The source is only read.
"""

from __future__ import annotations

import contextlib
import fnmatch
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import (
    AlreadyExists,
    InvalidURI,
    MlflowSourceError,
    ModelNotFound,
    ModelyardError,
)
from modelyard.store import ArtifactStore, MetadataStore
from modelyard.store.entities import Metric, RunStatus, from_millis
from modelyard.store.mlflow import MlflowModel, MlflowSource, MlflowVersion
from modelyard.store.mlflow._copy import copy_version_files
from modelyard.uri import validate_alias, validate_name

__all__ = [
    "IMPORTED_FROM",
    "IMPORTED_RUN",
    "ImportReport",
    "Skipped",
    "import_mlflow",
]

#: version tag: ``<source location>#<name>/<version>``, the version's provenance
IMPORTED_FROM = "modelyard.import.mlflow_source"
#: run tag: the MLflow run id a run was copied from
IMPORTED_RUN = "modelyard.import.mlflow_run_id"
#: run tag set last: the copy of the run is whole
_RUN_COMPLETE = "modelyard.import.complete"
_METRIC_BATCH = 1000


@dataclass(frozen=True)
class Skipped:
    """Something not imported, and why."""

    item: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    """What an import did: counts, and every item it skipped with the reason."""

    source: str
    yard: str
    models: int = 0
    versions: int = 0
    #: versions found already imported (a repeated or resumed import)
    versions_present: int = 0
    runs: int = 0
    aliases: int = 0
    files: int = 0
    #: files whose content the yard already held (not sent again)
    deduplicated: int = 0
    #: bytes read from the source
    bytes_read: int = 0
    #: bytes sent to the yard's artifact store
    bytes_stored: int = 0
    seconds: float = 0.0
    skipped: tuple[Skipped, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether nothing was skipped."""
        return not self.skipped

    def lines(self) -> list[str]:
        """The report as people read it."""
        out = [
            f"imported from {self.source} into {self.yard} in {self.seconds:.1f} s",
            f"  models:    {self.models}",
            f"  versions:  {self.versions} new, {self.versions_present} already there",
            f"  runs:      {self.runs}",
            f"  aliases:   {self.aliases}",
            f"  files:     {self.files} ({self.deduplicated} de-duplicated: already stored)",
            f"  bytes:     {_size(self.bytes_read)} read, {_size(self.bytes_stored)} stored",
        ]
        if self.skipped:
            out.append(f"  skipped:   {len(self.skipped)}")
            out.extend(f"    - {s.item}: {s.reason}" for s in self.skipped)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "source": self.source,
            "yard": self.yard,
            "models": self.models,
            "versions": self.versions,
            "versions_present": self.versions_present,
            "runs": self.runs,
            "aliases": self.aliases,
            "files": self.files,
            "deduplicated": self.deduplicated,
            "bytes_read": self.bytes_read,
            "bytes_stored": self.bytes_stored,
            "seconds": round(self.seconds, 3),
            "skipped": [{"item": s.item, "reason": s.reason} for s in self.skipped],
        }


@dataclass
class _Tally:
    models: int = 0
    versions: int = 0
    present: int = 0
    runs: int = 0
    aliases: int = 0
    files: int = 0
    dedup: int = 0
    read: int = 0
    stored: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    #: MLflow run id -> yard run id (None: not in the source)
    run_ids: dict[str, str | None] = field(default_factory=dict)


def import_mlflow(
    source: MlflowSource,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    *,
    models: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> ImportReport:
    """Copy ``source``'s registered models (those whose name matches the glob ``models``)
    into a yard's stores; see the module doc. Never raises for one bad item: it is skipped
    and named in the report. An unreachable or refusing source raises
    :class:`MlflowSourceError` before anything is written."""
    started = time.perf_counter()
    say = progress or (lambda _line: None)
    tally = _Tally()
    listed = source.list_models()
    chosen = [m for m in listed if models is None or fnmatch.fnmatchcase(m.name, models)]
    for model in chosen:
        try:
            validate_name(model.name)
        except InvalidURI as exc:
            tally.skipped.append(Skipped(f"model {model.name!r}", exc.reason))
            continue
        _import_model(source, metadata, artifacts, model, tally=tally, say=say)
    return ImportReport(
        source=source.location,
        yard=metadata.location,
        models=tally.models,
        versions=tally.versions,
        versions_present=tally.present,
        runs=tally.runs,
        aliases=tally.aliases,
        files=tally.files,
        deduplicated=tally.dedup,
        bytes_read=tally.read,
        bytes_stored=tally.stored,
        seconds=time.perf_counter() - started,
        skipped=tuple(tally.skipped),
    )


def _import_model(
    source: MlflowSource,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    model: MlflowModel,
    *,
    tally: _Tally,
    say: Callable[[str], None],
) -> None:
    name = model.name
    imported: set[int] = set()
    versions = source.list_versions(name)
    for version in versions:
        item = f"{name} version {version.version}"
        try:
            done = _import_version(source, metadata, artifacts, version, tally)
        except (ModelyardError, OSError) as exc:
            why = _why(exc).removeprefix(f"{item}: ")  # the item is named beside it
            tally.skipped.append(Skipped(item, why))
            say(f"skipped {item}: {why}")
            continue
        imported.add(version.version)
        say(f"{item}: {'already there' if done == 'present' else 'imported'}")
    if versions and not imported:
        # no entry for a model none of whose versions came across: no empty shell
        return
    # after the versions: the model, its description, tags and aliases (idempotent writes)
    metadata.create_registered_model(name, exist_ok=True)
    tally.models += 1
    if model.description is not None:
        metadata.update_registered_model(name, model.description)
    held = metadata.get_registered_model(name)
    for key, value in model.tags.items():
        if _valid_key(key, f"{name}: tag", tally) and held.tags.get(key) != value:
            metadata.set_registered_model_tag(name, key, value)
    for alias, number in sorted(model.aliases.items()):
        item = f"{name}@{alias}"
        try:
            validate_alias(alias)
        except InvalidURI as exc:
            tally.skipped.append(Skipped(item, exc.reason))
            continue
        if number not in imported:
            tally.skipped.append(
                Skipped(item, f"points at version {number}, which was not imported")
            )
            continue
        if held.aliases.get(alias) != number:
            metadata.set_alias(name, alias, number, user="modelyard-import")
        tally.aliases += 1


def _import_version(
    source: MlflowSource,
    metadata: MetadataStore,
    artifacts: ArtifactStore,
    version: MlflowVersion,
    tally: _Tally,
) -> str:
    """``"present"`` when an earlier import brought it; ``"new"`` when this one did."""
    name, number = version.name, version.version
    provenance = f"{source.location}#{name}/{number}"
    with contextlib.suppress(ModelNotFound):
        held = metadata.get_model_version(name, number)
        if held.tags.get(IMPORTED_FROM) == provenance:
            tally.present += 1
            return "present"
        raise AlreadyExists(
            "model version", f"{name}/{number} in the yard, not imported from this source"
        )
    if version.status != "READY":
        raise MlflowSourceError(
            source.location, f"its status in MLflow is {version.status}, not READY"
        )
    copied = copy_version_files(source, version, artifacts)
    manifest, digest = copied.manifest, copied.digest
    tally.files += len(manifest.entries)
    tally.dedup += copied.deduplicated
    tally.read += copied.bytes_read
    tally.stored += copied.bytes_stored
    run_id = _import_run(source, metadata, version.run_id, tally)
    tags = {k: v for k, v in version.tags.items() if _valid_key(k, f"{name}/{number}", tally)}
    tags[IMPORTED_FROM] = provenance
    if version.source:
        tags.setdefault("mlflow.source", version.source[:5000])
    metadata.import_model_version(
        name,
        number,
        digest=digest,
        source=digest,
        run_id=run_id,
        description=version.description,
        tags=tags,
        created_by=version.created_by,
        files=manifest.entries,
        created_at=version.created_ms,
    )
    tally.versions += 1
    return "new"


def _import_run(
    source: MlflowSource, metadata: MetadataStore, mlflow_run_id: str | None, tally: _Tally
) -> str | None:
    """The yard's copy of an MLflow run (made, or finished, on first need)."""
    if not mlflow_run_id:
        return None
    if mlflow_run_id in tally.run_ids:
        return tally.run_ids[mlflow_run_id]
    run = source.get_run(mlflow_run_id)
    if run is None:
        tally.skipped.append(
            Skipped(f"run {mlflow_run_id}", "not in the MLflow store; versions keep no run link")
        )
        tally.run_ids[mlflow_run_id] = None
        return None
    found = metadata.search_runs(
        filter_string=f"tags.`{IMPORTED_RUN}` = '{mlflow_run_id}'", max_results=2
    )
    if found and found[0].tags.get(_RUN_COMPLETE) == "true":
        tally.run_ids[mlflow_run_id] = found[0].run_id
        return found[0].run_id
    experiment = metadata.get_or_create_experiment(run.experiment)
    if found:  # a copy a killed import began: finish it (every write below is idempotent)
        yard_run = found[0]
    else:
        yard_run = metadata.create_run(
            experiment.experiment_id,
            name=run.name,
            created_by=run.user,
            tags={IMPORTED_RUN: mlflow_run_id},
            start_time=from_millis(run.start_ms),
        )
    run_id = yard_run.run_id
    params = {k: v for k, v in run.params.items() if _valid_key(k, f"run {mlflow_run_id}", tally)}
    if params:
        metadata.log_params(run_id, params)
    _log_metrics(metadata, run_id, run.metrics)
    tags = {k: v for k, v in run.tags.items() if _valid_key(k, f"run {mlflow_run_id}", tally)}
    if tags:
        metadata.set_tags(run_id, tags)
    if run.status in RunStatus.ALL and run.status != RunStatus.RUNNING:
        metadata.end_run(run_id, run.status, end_time=from_millis(run.end_ms))
    metadata.set_tags(run_id, {_RUN_COMPLETE: "true"})
    tally.runs += 1
    tally.run_ids[mlflow_run_id] = run_id
    return run_id


def _log_metrics(metadata: MetadataStore, run_id: str, metrics: Iterable[Any]) -> None:
    """Log the values the yard's run does not hold yet (a resumed copy logs the rest)."""
    wanted = [Metric(m.key, m.value, m.step, m.timestamp) for m in metrics]
    held: set[tuple[str, int, int]] = set()
    for key in {m.key for m in wanted}:
        held.update((key, h.step, h.timestamp) for h in metadata.get_metric_history(run_id, key))
    todo = [m for m in wanted if (m.key, m.step, m.timestamp) not in held]
    for i in range(0, len(todo), _METRIC_BATCH):
        metadata.log_metrics(run_id, todo[i : i + _METRIC_BATCH])


def _valid_key(key: str, owner: str, tally: _Tally) -> bool:
    try:
        validate_name(key, "tag key")
    except InvalidURI as exc:
        tally.skipped.append(Skipped(f"{owner} key {key!r}", exc.reason))
        return False
    return True


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason) if isinstance(reason, str) and reason else str(exc)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover
