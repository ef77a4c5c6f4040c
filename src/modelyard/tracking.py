"""Runs: what was trained, with which params, how well, and the files it produced.

>>> import modelyard as my
>>> with my.start_run(experiment="fraud", run_name="baseline") as run:   # doctest: +SKIP
...     my.log_params({"C": 1.0, "max_iter": 1000})
...     my.log_metric("auc", 0.93)
...     info = my.log_model(estimator, "model", registered_model_name="fraud")
>>> my.load_model(f"runs:/{run.run_id}/model")                             # doctest: +SKIP

A run ends FINISHED when its ``with`` block completes and FAILED when the
block raises. Runs nest: ``start_run(nested=True)`` inside an active run
records the outer one as its parent. The active run is per thread (and per
asyncio task).

A run's files live in the yard's blob store, content-addressed: logging the
same file twice (in any run) stores it once. Artifact paths are checked:
``log_artifact(..., artifact_path="../x")`` is refused, and no path can
leave the run.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard._keys import check_key, check_strings
from modelyard.errors import TrackingError
from modelyard.format.content import FileEntry
from modelyard.format.signature import Signature
from modelyard.registry import current_user, register_model
from modelyard.store.entities import Metric, ModelVersion, Run, RunStatus, to_millis
from modelyard.uri import validate_name, validate_relative_path
from modelyard.yard import Yard, get_yard

if TYPE_CHECKING:
    from modelyard.trust.keys import SigningKey

__all__ = [
    "ActiveRun",
    "LoggedModel",
    "active_run",
    "end_run",
    "get_run",
    "list_artifacts",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "start_run",
]

DEFAULT_EXPERIMENT = "Default"

_stack: contextvars.ContextVar[tuple[ActiveRun, ...]] = contextvars.ContextVar(
    "modelyard_active_runs", default=()
)


class _Defaults:
    experiment: str | None = None


@dataclass(frozen=True)
class LoggedModel:
    """What :func:`log_model` stored: the run, the path in it, and the model's digest."""

    run_id: str
    artifact_path: str
    digest: str
    flavor: str
    signature: Signature | None
    #: the version created when ``registered_model_name`` was given
    registered_version: ModelVersion | None = None

    @property
    def model_uri(self) -> str:
        """``runs:/<run_id>/<artifact_path>``: what :func:`modelyard.load_model` takes."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


class ActiveRun:
    """A run being recorded; use as a context manager (see :func:`start_run`).

    The methods log to this run whichever run is innermost.
    """

    def __init__(self, run: Run, yard: Yard) -> None:
        self._run = run
        self.run_id = run.run_id
        #: the yard the run lives in (a later set_yard does not move it)
        self.yard = yard
        self._ended = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.run_id} experiment={self._run.experiment!r}>"

    @property
    def info(self) -> Run:
        """The run as stored now (params, latest metrics, tags, status)."""
        return self.yard.reader().get_run(self.run_id)

    @property
    def experiment(self) -> str:
        """The run's experiment name."""
        return self._run.experiment

    def uri(self, path: str = "") -> str:
        """``runs:/<run_id>/<path>``."""
        return f"runs:/{self.run_id}/{path}"

    def log_param(self, key: str, value: Any) -> None:
        """Record a param of this run."""
        _log_params(self, {key: value})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record params of this run."""
        _log_params(self, params)

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: _dt.datetime | None = None
    ) -> None:
        """Record a metric value of this run."""
        _log_metrics(self, {key: value}, step, timestamp)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int = 0, timestamp: _dt.datetime | None = None
    ) -> None:
        """Record metric values of this run."""
        _log_metrics(self, metrics, step, timestamp)

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag on this run."""
        _set_tags(self, {key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags on this run."""
        _set_tags(self, tags)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> str:
        """Store a file in this run; returns its path in the run."""
        return _log_files(self, Path(local_path), artifact_path, directory=False)[0]

    def log_artifacts(
        self, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[str]:
        """Store a directory's files in this run; returns their paths in the run."""
        return _log_files(self, Path(local_dir), artifact_path, directory=True)

    def end(self, status: str = RunStatus.FINISHED) -> None:
        """End the run now (a ``with`` block does it for you)."""
        if self._ended:
            return
        self._ended = True
        self.yard.metadata.end_run(self.run_id, status)
        stack = _stack.get()
        if self in stack:
            _stack.set(tuple(r for r in stack if r is not self))

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        self.end(status)


def set_experiment(name: str) -> None:
    """Make ``name`` the experiment new runs go to in this process (created on first run)."""
    _Defaults.experiment = validate_name(name, "experiment name")


def start_run(
    *,
    experiment: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
) -> ActiveRun:
    """Start a run in ``experiment`` (default: :func:`set_experiment`'s, else ``Default``).

    Inside an active run, pass ``nested=True``: the new run records the active
    one as its parent. Use it as a context manager; the run ends FINISHED, or
    FAILED when the block raises.

    >>> with start_run(experiment="fraud") as run:  # doctest: +SKIP
    ...     log_metric("auc", 0.93)
    """
    stack = _stack.get()
    if stack and not nested:
        raise TrackingError(
            f"run {stack[-1].run_id} is already active; end it first, or pass nested=True "
            "to start a child run"
        )
    name = experiment or _Defaults.experiment or os.environ.get("MODELYARD_EXPERIMENT")
    name = validate_name(name or DEFAULT_EXPERIMENT, "experiment name")
    yard = get_yard()
    store = yard.metadata
    exp = store.get_or_create_experiment(name)
    run = store.create_run(
        exp.experiment_id,
        name=run_name,
        parent_run_id=stack[-1].run_id if stack else None,
        created_by=current_user(),
        tags=check_strings(tags, "tag") if tags else None,
    )
    active = ActiveRun(run, yard)
    _stack.set((*stack, active))
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, if any."""
    stack = _stack.get()
    return stack[-1] if stack else None


def end_run(status: str = RunStatus.FINISHED) -> None:
    """End the innermost active run (nothing happens when there is none)."""
    run = active_run()
    if run is not None:
        run.end(status)


def log_param(key: str, value: Any) -> None:
    """Record a param of the active run (params never change once logged)."""
    _log_params(_require_run("log_param"), {key: value})


def log_params(params: Mapping[str, Any]) -> None:
    """Record params of the active run."""
    _log_params(_require_run("log_params"), params)


def log_metric(
    key: str, value: float, step: int = 0, timestamp: _dt.datetime | None = None
) -> None:
    """Record a metric value of the active run (history is kept per step)."""
    _log_metrics(_require_run("log_metric"), {key: value}, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int = 0, timestamp: _dt.datetime | None = None
) -> None:
    """Record metric values of the active run."""
    _log_metrics(_require_run("log_metrics"), metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _set_tags(_require_run("set_tag"), {key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    """Set tags on the active run."""
    _set_tags(_require_run("set_tags"), tags)


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> str:
    """Store a file in the active run, under ``artifact_path/<file name>``; returns that path."""
    run = _require_run("log_artifact")
    return _log_files(run, Path(local_path), artifact_path, directory=False)[0]


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> list[str]:
    """Store every file under ``local_dir`` in the active run, under ``artifact_path``."""
    run = _require_run("log_artifacts")
    return _log_files(run, Path(local_dir), artifact_path, directory=True)


def log_model(
    obj: Any,
    artifact_path: str = "model",
    *,
    registered_model_name: str | None = None,
    signature: Signature | Mapping[str, Any] | None = None,
    input_example: Any = None,
    sign: bool | str | os.PathLike[str] | SigningKey | None = None,
    **save_options: Any,
) -> LoggedModel:
    """Save ``obj`` as a model directory in the active run (see :func:`save_model`).

    Without an active run, one is created for it and finished. With
    ``registered_model_name`` the model is also registered as a new version.
    Takes every option :func:`modelyard.save_model` takes; ``sign`` as there.

    >>> info = log_model(estimator, "model", registered_model_name="fraud")  # doctest: +SKIP
    >>> info.registered_version.version                                       # doctest: +SKIP
    3
    """
    from modelyard.saving import save_model
    from modelyard.store.signatures import pointer_from_directory, run_tag
    from modelyard.store.trees import store_directory

    path = validate_relative_path(artifact_path, "artifact path")
    if not path:
        raise TrackingError("log_model needs a non-empty artifact_path, e.g. 'model'")
    if registered_model_name is not None:
        validate_name(registered_model_name)
    run = active_run()
    own = run is None
    if run is None:
        run = start_run()
    try:
        yard = run.yard
        with tempfile.TemporaryDirectory(prefix="modelyard-log-") as tmp:
            info = save_model(
                obj,
                Path(tmp) / "model",
                signature=signature,
                input_example=input_example,
                sign=sign,
                **save_options,
            )
            manifest = store_directory(yard.artifacts, info.path)
            signed = pointer_from_directory(info.path)
        if signed is not None:
            yard.metadata.set_tags(run.run_id, {run_tag(path): signed})
        yard.metadata.add_artifacts(
            run.run_id,
            [FileEntry(f"{path}/{e.path}", e.size, e.sha256) for e in manifest.entries],
        )
        version = None
        if registered_model_name is not None:
            version = register_model(f"runs:/{run.run_id}/{path}", registered_model_name, yard=yard)
    except BaseException:
        if own:
            run.end(RunStatus.FAILED)
        raise
    if own:
        run.end()
    return LoggedModel(
        run_id=run.run_id,
        artifact_path=path,
        digest=manifest.digest,
        flavor=info.flavor,
        signature=info.signature,
        registered_version=version,
    )


def get_run(run_id: str) -> Run:
    """A run with its params, latest metrics and tags; :class:`RunNotFound` if none."""
    return get_yard().reader().get_run(run_id)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    filter_string: str | None = None,
    *,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
) -> list[Run]:
    """Runs of ``experiment`` (one name, several, or ``None`` for all) matching a filter.

    >>> search_runs("fraud", "params.C = '1.0' AND metrics.auc > 0.9",
    ...             order_by=["metrics.auc DESC"])  # doctest: +SKIP
    """
    store = get_yard().reader()
    ids = None
    if experiment is not None:
        names = [experiment] if isinstance(experiment, str) else list(experiment)
        ids = [
            store.get_experiment(validate_name(n, "experiment name")).experiment_id for n in names
        ]
    return store.search_runs(ids, filter_string, order_by=order_by, max_results=max_results)


def list_artifacts(run_id: str, path: str = "") -> list[FileEntry]:
    """The files of a run under ``path`` (all when empty), with their sha256 and size."""
    prefix = validate_relative_path(path, "artifact path")
    return get_yard().reader().list_artifacts(run_id, prefix)


# -- helpers ---------------------------------------------------------------------------


def _require_run(what: str) -> ActiveRun:
    run = active_run()
    if run is None:
        raise TrackingError(
            f"{what} needs an active run: use `with modelyard.start_run(): ...` "
            "(or the run's own methods)"
        )
    return run


def _log_params(run: ActiveRun, params: Mapping[str, Any]) -> None:
    run.yard.metadata.log_params(run.run_id, check_strings(params, "param"))


def _log_metrics(
    run: ActiveRun, metrics: Mapping[str, float], step: int, timestamp: _dt.datetime | None
) -> None:
    if isinstance(step, bool) or not isinstance(step, int):
        raise TrackingError(f"metric step must be an integer, got {step!r}")
    when = to_millis(timestamp or _dt.datetime.now(_dt.timezone.utc))
    values = []
    for key, value in metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TrackingError(
                f"metric {key!r} must be a number, got {type(value).__name__}"
            ) from None
        values.append(Metric(check_key(key, "metric"), number, step, when))
    run.yard.metadata.log_metrics(run.run_id, values)


def _set_tags(run: ActiveRun, tags: Mapping[str, Any]) -> None:
    run.yard.metadata.set_tags(run.run_id, check_strings(tags, "tag"))


def _log_files(
    run: ActiveRun, local: Path, artifact_path: str | None, *, directory: bool
) -> list[str]:
    from modelyard.store.trees import check_no_escaping_links

    prefix = validate_relative_path(artifact_path or "", "artifact path")
    if directory:
        if not local.is_dir():
            raise TrackingError(f"log_artifacts needs a directory; {str(local)!r} is not one")
        check_no_escaping_links(local)
        files = sorted(p for p in local.rglob("*") if p.is_file())
        rels = [p.relative_to(local).as_posix() for p in files]
    else:
        if not local.is_file():
            raise TrackingError(f"log_artifact needs a file; {str(local)!r} is not one")
        files, rels = [local], [local.name]
    paths = [
        validate_relative_path(f"{prefix}/{rel}" if prefix else rel, "artifact path")
        for rel in rels
    ]
    artifacts = run.yard.artifacts
    entries = []
    for file, path in zip(files, paths, strict=True):
        blob = artifacts.put_file(file)
        entries.append(FileEntry(path, blob.size, blob.sha256))
    run.yard.metadata.add_artifacts(run.run_id, entries)
    return paths
