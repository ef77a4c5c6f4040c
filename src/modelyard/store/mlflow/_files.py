"""An MLflow file store (``./mlruns``), read from its ``meta.yaml`` files.

The layout MLflow writes::

    mlruns/<experiment_id>/meta.yaml                 name, artifact_location
    mlruns/<experiment_id>/<run_id>/meta.yaml        status (1..5), times, artifact_uri
    mlruns/<experiment_id>/<run_id>/{params,tags}/<key>      one value per file
    mlruns/<experiment_id>/<run_id>/metrics/<key>    "<timestamp> <value> <step>" lines
    mlruns/<experiment_id>/models/<m-id>/meta.yaml   a logged model's artifact_location
    mlruns/models/<name>/meta.yaml                   description, creation_timestamp
    mlruns/models/<name>/{tags,aliases}/<key>        tag value / alias -> version
    mlruns/models/<name>/version-<n>/meta.yaml       source, run_id, storage_location, ...
    mlruns/models/<name>/version-<n>/tags/<key>

Keys may hold ``/`` (a nested file). Files are only opened, never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import yaml

from modelyard.errors import MlflowSourceError, ModelVersionNotFound, RegisteredModelNotFound
from modelyard.store._suggest import close_matches
from modelyard.store.mlflow import (
    ArtifactFile,
    MlflowMetric,
    MlflowModel,
    MlflowRun,
    MlflowVersion,
)
from modelyard.store.mlflow._local import LocalArtifacts, local_path

__all__ = ["FileSource"]

# mlflow.entities.RunStatus as the file store numbers it
_RUN_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_DELETED_STAGE = "Deleted_Internal"
_NOT_EXPERIMENTS = {"models", ".trash"}


class FileSource:
    """An ``mlruns`` folder, read-only."""

    def __init__(self, uri: str) -> None:
        path = local_path(uri)
        if path is None:
            raise MlflowSourceError(uri, "not a file store path")
        self.root = path.expanduser().absolute()
        self.location = str(self.root)
        if not self.root.is_dir():
            raise MlflowSourceError(self.location, "no such folder")
        if not (self.root / "models").is_dir() and not any(self.root.glob("*/meta.yaml")):
            raise MlflowSourceError(
                self.location, "not an MLflow file store (no models/ and no experiments)"
            )
        self._experiments = self._read_experiments()
        roots = [self.root]
        for meta in self._experiments.values():
            where = local_path(str(meta.get("artifact_location") or ""))
            if where is not None and str(where):
                roots.append(where)
        self.files = LocalArtifacts(self.location, roots)

    # -- registry ------------------------------------------------------------------------

    def list_models(self) -> list[MlflowModel]:
        """Every registered model, by name."""
        base = self.root / "models"
        if not base.is_dir():
            return []
        found = [self._model(d) for d in base.iterdir() if (d / "meta.yaml").is_file()]
        return sorted(found, key=lambda m: m.name)

    def get_model(self, name: str) -> MlflowModel:
        """One registered model."""
        folder = self._model_dir(name)
        return self._model(folder)

    def list_versions(self, name: str) -> list[MlflowVersion]:
        """The live versions of ``name``, lowest number first."""
        folder = self._model_dir(name)
        out = []
        for d in folder.glob("version-*"):
            meta = _yaml(d / "meta.yaml")
            if meta is None or meta.get("current_stage") == _DELETED_STAGE:
                continue
            out.append(self._version(name, d, meta))
        return sorted(out, key=lambda v: v.version)

    def get_version(self, name: str, version: int) -> MlflowVersion:
        """One live version."""
        versions = self.list_versions(name)
        for v in versions:
            if v.version == version:
                return v
        raise ModelVersionNotFound(name, version, versions=[v.version for v in versions])

    # -- runs ----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> MlflowRun | None:
        """A run with params, metric history and tags."""
        if not run_id or "/" in run_id or run_id.startswith("."):
            return None
        for exp_id, exp in self._experiments.items():
            folder = self.root / exp_id / run_id
            meta = _yaml(folder / "meta.yaml")
            if meta is None:
                continue
            metrics: list[MlflowMetric] = []
            for key, text in _key_files(folder / "metrics"):
                for line in text.splitlines():
                    parts = line.split()
                    if len(parts) < 2:
                        continue
                    value = float(parts[1])
                    step = int(parts[2]) if len(parts) > 2 else 0
                    metrics.append(MlflowMetric(key, value, step, int(parts[0])))
            # log_model re-logs the run's metrics linked to the model: the same value,
            # step and time twice in the file, once in MLflow's database (its primary key)
            metrics = sorted(set(metrics), key=lambda m: (m.key, m.step, m.timestamp))
            status = meta.get("status")
            return MlflowRun(
                run_id=run_id,
                experiment=str(exp.get("name") or "Default"),
                name=meta.get("run_name") or None,
                status=_RUN_STATUS.get(status, str(status)) if isinstance(status, int) else "",
                start_ms=meta.get("start_time"),
                end_ms=meta.get("end_time"),
                user=meta.get("user_id") or None,
                params=dict(_key_files(folder / "params")),
                metrics=tuple(metrics),
                tags=dict(_key_files(folder / "tags")),
            )
        return None

    # -- files ---------------------------------------------------------------------------

    def list_files(self, version: MlflowVersion) -> list[ArtifactFile]:
        """Every file of the version, inside the store's artifact roots only."""
        return self.files.list_files(version)

    def open_file(self, version: MlflowVersion, path: str) -> IO[bytes]:
        """One file of the version."""
        return self.files.open_file(version, path)

    def close(self) -> None:
        """Nothing to release."""

    # -- helpers ---------------------------------------------------------------------------

    def _read_experiments(self) -> dict[str, dict[str, Any]]:
        out = {}
        for d in self.root.iterdir():
            if d.name in _NOT_EXPERIMENTS or not d.is_dir():
                continue
            meta = _yaml(d / "meta.yaml")
            if meta is not None:
                out[d.name] = meta
        return out

    def _model_dir(self, name: str) -> Path:
        base = self.root / "models"
        folder = base / name
        if "/" in name or name.startswith(".") or not (folder / "meta.yaml").is_file():
            names = [d.name for d in base.iterdir()] if base.is_dir() else []
            raise RegisteredModelNotFound(name, suggestions=close_matches(name, names))
        return folder

    def _model(self, folder: Path) -> MlflowModel:
        meta = _yaml(folder / "meta.yaml") or {}
        aliases = {k: int(v.strip()) for k, v in _key_files(folder / "aliases")}
        return MlflowModel(
            name=str(meta.get("name") or folder.name),
            description=meta.get("description") or None,
            created_ms=meta.get("creation_timestamp"),
            tags=dict(_key_files(folder / "tags")),
            aliases=aliases,
        )

    def _version(self, name: str, folder: Path, meta: dict[str, Any]) -> MlflowVersion:
        source = str(meta.get("source") or "")
        return MlflowVersion(
            name=name,
            version=int(meta["version"]),
            source=source,
            run_id=meta.get("run_id") or None,
            status=str(meta.get("status") or "READY"),
            description=meta.get("description") or None,
            created_ms=meta.get("creation_timestamp"),
            storage=str(meta.get("storage_location") or self._resolve_source(source)),
            created_by=meta.get("user_id") or None,
            tags=dict(_key_files(folder / "tags")),
        )

    def _resolve_source(self, source: str) -> str:
        if source.startswith("models:/m-"):
            model_id = source[len("models:/") :].split("/", 1)[0]
            for exp_id in self._experiments:
                meta = _yaml(self.root / exp_id / "models" / model_id / "meta.yaml")
                if meta is not None and meta.get("artifact_location"):
                    return str(meta["artifact_location"])
        if source.startswith("runs:/"):
            run_id, _, path = source[len("runs:/") :].partition("/")
            for exp_id in self._experiments:
                meta = _yaml(self.root / exp_id / run_id / "meta.yaml")
                if meta is not None and meta.get("artifact_uri"):
                    return f"{str(meta['artifact_uri']).rstrip('/')}/{path}"
        return source


def _yaml(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise MlflowSourceError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MlflowSourceError(str(path), f"is not YAML ({exc})") from None
    return data if isinstance(data, dict) else None


def _key_files(folder: Path) -> list[tuple[str, str]]:
    """(key, content) of every file under ``folder``; nested files are keys with ``/``."""
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out.append((path.relative_to(folder).as_posix(), path.read_text(encoding="utf-8")))
    return out
