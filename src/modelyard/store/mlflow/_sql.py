"""An MLflow database (``sqlite:///mlflow.db``, ``postgresql://…``), read through its tables.

Only the columns modelyard needs are named (SQLAlchemy Core ``table()``
clauses, no reflection), so any MLflow 2.x/3.x schema with these tables reads
the same. Nothing can be written: SQLite is opened ``mode=ro`` through a URI
filename, PostgreSQL runs every transaction ``READ ONLY``. MLflow 3.x keeps a
``workspace`` column beside names; only the ``default`` workspace is read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.errors import (
    MlflowSourceError,
    ModelVersionNotFound,
    RegisteredModelNotFound,
)
from modelyard.store.mlflow import (
    ArtifactFile,
    MlflowMetric,
    MlflowModel,
    MlflowRun,
    MlflowVersion,
)
from modelyard.store.mlflow._local import LocalArtifacts, local_path

__all__ = ["SqlSource"]

_DELETED_STAGE = "Deleted_Internal"
_WORKSPACE = "default"

_experiments = sa.table(
    "experiments",
    sa.column("experiment_id"),
    sa.column("name"),
    sa.column("artifact_location"),
)
_runs = sa.table(
    "runs",
    sa.column("run_uuid"),
    sa.column("name"),
    sa.column("user_id"),
    sa.column("status"),
    sa.column("start_time"),
    sa.column("end_time"),
    sa.column("artifact_uri"),
    sa.column("experiment_id"),
)
_params = sa.table("params", sa.column("key"), sa.column("value"), sa.column("run_uuid"))
_tags = sa.table("tags", sa.column("key"), sa.column("value"), sa.column("run_uuid"))
_metrics = sa.table(
    "metrics",
    sa.column("key"),
    sa.column("value"),
    sa.column("timestamp"),
    sa.column("step"),
    sa.column("is_nan"),
    sa.column("run_uuid"),
)
_models = sa.table(
    "registered_models",
    sa.column("name"),
    sa.column("description"),
    sa.column("creation_time"),
    sa.column("workspace"),
)
_model_tags = sa.table(
    "registered_model_tags",
    sa.column("key"),
    sa.column("value"),
    sa.column("name"),
    sa.column("workspace"),
)
_aliases = sa.table(
    "registered_model_aliases",
    sa.column("alias"),
    sa.column("version"),
    sa.column("name"),
    sa.column("workspace"),
)
_versions = sa.table(
    "model_versions",
    sa.column("name"),
    sa.column("version"),
    sa.column("creation_time"),
    sa.column("description"),
    sa.column("user_id"),
    sa.column("current_stage"),
    sa.column("source"),
    sa.column("run_id"),
    sa.column("status"),
    sa.column("storage_location"),
    sa.column("workspace"),
)
_version_tags = sa.table(
    "model_version_tags",
    sa.column("key"),
    sa.column("value"),
    sa.column("name"),
    sa.column("version"),
    sa.column("workspace"),
)
_logged = sa.table(
    "logged_models",
    sa.column("model_id"),
    sa.column("artifact_location"),
)


class SqlSource:
    """An MLflow tracking/registry database, read-only."""

    def __init__(self, url: str) -> None:
        parsed = sa.engine.make_url(url)
        self.location = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            path = Path(parsed.database or "")
            if not parsed.database or not path.is_file():
                raise MlflowSourceError(self.location, "no MLflow database file there")
            target = f"file:{quote(str(path.absolute()))}?mode=ro"
            # mode=ro: SQLite itself refuses every write, whatever a bug here might try
            self.engine = sa.create_engine(
                "sqlite://",
                creator=lambda: sqlite3.connect(target, uri=True, check_same_thread=False),
            )
        else:
            if parsed.drivername in ("postgresql", "postgres") and not _has("psycopg2"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            self.engine = sa.create_engine(parsed, pool_pre_ping=True)
        self._workspaces = self._check()
        self.files = LocalArtifacts(self.location, self._roots())

    # -- registry ------------------------------------------------------------------------

    def list_models(self) -> list[MlflowModel]:
        """Every registered model, by name."""
        with self._read() as conn:
            names = conn.execute(
                sa.select(_models.c.name).where(self._ws(_models)).order_by(_models.c.name)
            ).scalars()
            return [self._model(conn, n) for n in list(names)]

    def get_model(self, name: str) -> MlflowModel:
        """One registered model."""
        with self._read() as conn:
            return self._model(conn, name)

    def list_versions(self, name: str) -> list[MlflowVersion]:
        """The live versions of ``name``, lowest number first."""
        with self._read() as conn:
            rows = conn.execute(
                sa.select(_versions)
                .where(_versions.c.name == name, self._ws(_versions))
                .order_by(_versions.c.version)
            ).all()
            return [self._version(conn, r) for r in rows if r.current_stage != _DELETED_STAGE]

    def get_version(self, name: str, version: int) -> MlflowVersion:
        """One live version."""
        found = [v for v in self.list_versions(name) if v.version == version]
        if not found:
            numbers = tuple(v.version for v in self.list_versions(name))
            raise ModelVersionNotFound(name, version, versions=numbers)
        return found[0]

    # -- runs ----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> MlflowRun | None:
        """A run with params, metric history and tags."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(_runs, _experiments.c.name.label("experiment"))
                .select_from(
                    _runs.outerjoin(
                        _experiments, _experiments.c.experiment_id == _runs.c.experiment_id
                    )
                )
                .where(_runs.c.run_uuid == run_id)
            ).first()
            if row is None:
                return None
            params = conn.execute(
                sa.select(_params.c.key, _params.c.value).where(_params.c.run_uuid == run_id)
            ).all()
            tags = conn.execute(
                sa.select(_tags.c.key, _tags.c.value).where(_tags.c.run_uuid == run_id)
            ).all()
            metrics = conn.execute(
                sa.select(_metrics)
                .where(_metrics.c.run_uuid == run_id)
                .order_by(_metrics.c.key, _metrics.c.step, _metrics.c.timestamp)
            ).all()
        return MlflowRun(
            run_id=row.run_uuid,
            experiment=row.experiment or "Default",
            name=row.name or None,
            status=str(row.status or "FINISHED"),
            start_ms=row.start_time,
            end_ms=row.end_time,
            user=row.user_id or None,
            params={p.key: p.value for p in params},
            metrics=tuple(
                MlflowMetric(
                    m.key,
                    math.nan if m.is_nan else float(m.value),
                    int(m.step or 0),
                    int(m.timestamp or 0),
                )
                for m in metrics
            ),
            tags={t.key: t.value or "" for t in tags},
        )

    # -- files ---------------------------------------------------------------------------

    def list_files(self, version: MlflowVersion) -> list[ArtifactFile]:
        """Every file of the version, inside the store's artifact roots only."""
        return self.files.list_files(version)

    def open_file(self, version: MlflowVersion, path: str) -> IO[bytes]:
        """One file of the version."""
        return self.files.open_file(version, path)

    def close(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    # -- helpers ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SET TRANSACTION READ ONLY"))
                yield conn
        except sa.exc.DBAPIError as exc:
            raise MlflowSourceError(self.location, _reason(exc)) from None

    def _check(self) -> bool:
        """Whether the tables carry MLflow 3's ``workspace`` column; a database without
        MLflow's registry tables is no MLflow store."""
        try:
            with self._read() as conn:
                columns = {c["name"] for c in sa.inspect(conn).get_columns("registered_models")}
        except sa.exc.NoSuchTableError:
            raise MlflowSourceError(
                self.location, "not an MLflow database (no registered_models table)"
            ) from None
        return "workspace" in columns

    def _ws(self, table: Any) -> Any:
        return table.c.workspace == _WORKSPACE if self._workspaces else sa.true()

    def _roots(self) -> list[Path]:
        with self._read() as conn:
            where = conn.execute(sa.select(_experiments.c.artifact_location)).scalars()
            paths = [local_path(str(w)) for w in where if w]
        return [p for p in paths if p is not None]

    def _model(self, conn: Connection, name: str) -> MlflowModel:
        row = conn.execute(
            sa.select(_models).where(_models.c.name == name, self._ws(_models))
        ).first()
        if row is None:
            names = conn.execute(sa.select(_models.c.name).where(self._ws(_models))).scalars()
            from modelyard.store._suggest import close_matches

            raise RegisteredModelNotFound(name, suggestions=close_matches(name, list(names)))
        tags = conn.execute(
            sa.select(_model_tags.c.key, _model_tags.c.value).where(
                _model_tags.c.name == name, self._ws(_model_tags)
            )
        ).all()
        aliases = conn.execute(
            sa.select(_aliases.c.alias, _aliases.c.version).where(
                _aliases.c.name == name, self._ws(_aliases)
            )
        ).all()
        return MlflowModel(
            name=row.name,
            description=row.description or None,
            created_ms=row.creation_time,
            tags={t.key: t.value or "" for t in tags},
            aliases={a.alias: int(a.version) for a in aliases},
        )

    def _version(self, conn: Connection, row: Any) -> MlflowVersion:
        tags = conn.execute(
            sa.select(_version_tags.c.key, _version_tags.c.value).where(
                _version_tags.c.name == row.name,
                _version_tags.c.version == row.version,
                self._ws(_version_tags),
            )
        ).all()
        return MlflowVersion(
            name=row.name,
            version=int(row.version),
            source=row.source or "",
            run_id=row.run_id or None,
            status=str(row.status or "READY"),
            description=row.description or None,
            created_ms=row.creation_time,
            storage=row.storage_location or self._resolve_source(conn, row.source or ""),
            created_by=row.user_id or None,
            tags={t.key: t.value or "" for t in tags},
        )

    def _resolve_source(self, conn: Connection, source: str) -> str:
        """Where a source without a recorded storage location keeps its files."""
        if source.startswith("models:/m-"):
            found = conn.execute(
                sa.select(_logged.c.artifact_location).where(
                    _logged.c.model_id == source[len("models:/") :].split("/", 1)[0]
                )
            ).scalar()
            return str(found) if found else source
        if source.startswith("runs:/"):
            run_id, _, path = source[len("runs:/") :].partition("/")
            base = conn.execute(
                sa.select(_runs.c.artifact_uri).where(_runs.c.run_uuid == run_id)
            ).scalar()
            return f"{str(base).rstrip('/')}/{path}" if base else source
        return source


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _reason(exc: sa.exc.DBAPIError) -> str:
    text = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return f"the database cannot be read: {text}"
