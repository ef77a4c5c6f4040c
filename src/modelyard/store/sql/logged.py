"""Logged models: how MLflow 3's client logs a model before it is registered.

MLflow's client makes a *logged model* (``m-<32 hex>``) in an experiment,
uploads the model's files under it, marks it ``LOGGED_MODEL_READY`` and only
then registers a version from it (``source="models:/m-..."``). The server keeps
them here, beside the yard's own tables; every file row is what the server
hashed while storing the upload. When a logged model becomes READY its files
are fixed: their content manifest gives it a digest, and a version made from
it is pinned to that digest like any other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from modelyard.format.content import FileEntry
from modelyard.store.entities import now_millis
from modelyard.store.sql._sql import key_values, upsert
from modelyard.store.sql.auth import visible_experiment
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import (
    logged_model_files,
    logged_model_params,
    logged_model_tags,
    logged_models,
)

__all__ = ["PENDING", "READY", "STATUSES", "LoggedModel", "SqlLoggedModels"]

PENDING = "LOGGED_MODEL_PENDING"
READY = "LOGGED_MODEL_READY"
FAILED = "LOGGED_MODEL_UPLOAD_FAILED"
STATUSES = (PENDING, READY, FAILED)
#: the fields a logged-model search may compare (``field = 'value'``)
SEARCH_FIELDS = ("name", "source_run_id", "model_id", "status", "model_type")

_L = logged_models.c
_F = logged_model_files.c


@dataclass(frozen=True)
class LoggedModel:
    """One logged model and what was recorded with it."""

    model_id: str
    experiment_id: int
    name: str
    source_run_id: str | None
    model_type: str | None
    status: str
    digest: str | None
    created_at: int
    updated_at: int
    created_by: str | None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


class SqlLoggedModels:
    """The logged-model tables of a yard's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        experiment_id: int,
        name: str,
        *,
        source_run_id: str | None = None,
        model_type: str | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        created_by: str | None = None,
    ) -> LoggedModel:
        """A new PENDING logged model with a fresh ``m-<32 hex>`` id."""
        model_id = "m-" + uuid.uuid4().hex
        now = now_millis()
        with self.db.write() as conn:
            conn.execute(
                sa.insert(logged_models).values(
                    model_id=model_id,
                    experiment_id=experiment_id,
                    name=name,
                    source_run_id=source_run_id,
                    model_type=model_type,
                    status=PENDING,
                    created_at=now,
                    updated_at=now,
                    created_by=created_by,
                )
            )
            self._put_kv(conn, logged_model_params, model_id, params or {})
            self._put_kv(conn, logged_model_tags, model_id, tags or {})
        found = self.get(model_id)
        assert found is not None
        return found

    def get(self, model_id: str) -> LoggedModel | None:
        """The logged model, or ``None``."""
        found = self._select(sa.select(logged_models).where(_L.model_id == model_id))
        return found[0] if found else None

    def search(
        self,
        experiment_ids: Sequence[int],
        equal: Mapping[str, str],
        *,
        limit: int,
        offset: int = 0,
        visible_to: int | None = None,
    ) -> list[LoggedModel]:
        """Logged models of those experiments whose fields equal ``equal``, newest first."""
        query = sa.select(logged_models).where(_L.experiment_id.in_(list(experiment_ids)))
        for key, value in equal.items():
            query = query.where(_L[key] == value)
        if visible_to is not None:
            query = query.where(visible_experiment(visible_to, _L.experiment_id))
        query = query.order_by(_L.created_at.desc(), _L.model_id).limit(limit).offset(offset)
        return self._select(query)

    def ids_for_runs(self, run_ids: Sequence[str]) -> dict[str, list[str]]:
        """The ids of the logged models each run produced, oldest first (one query)."""
        out: dict[str, list[str]] = {r: [] for r in run_ids}
        query = (
            sa.select(_L.source_run_id, _L.model_id)
            .where(_L.source_run_id.in_(list(run_ids)))
            .order_by(_L.created_at, _L.model_id)
        )
        with self.db.read() as conn:
            for run_id, model_id in conn.execute(query):
                out[run_id].append(model_id)
        return out

    def finish(self, model_id: str, status: str, digest: str | None) -> None:
        """Set the status (and, on READY, the digest its files fix)."""
        with self.db.write() as conn:
            conn.execute(
                sa.update(logged_models)
                .where(_L.model_id == model_id)
                .values(status=status, digest=digest, updated_at=now_millis())
            )

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        """Set (or replace) tags."""
        with self.db.write() as conn:
            self._put_kv(conn, logged_model_tags, model_id, tags)
            self._touch(conn, model_id)

    def delete_tag(self, model_id: str, key: str) -> bool:
        """Remove a tag; whether it was there."""
        t = logged_model_tags.c
        with self.db.write() as conn:
            gone = conn.execute(
                sa.delete(logged_model_tags).where(t.model_id == model_id, t.key == key)
            ).rowcount
            self._touch(conn, model_id)
        return bool(gone)

    def add_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Record params (a param logged again keeps its newest value)."""
        with self.db.write() as conn:
            self._put_kv(conn, logged_model_params, model_id, params)
            self._touch(conn, model_id)

    def put_files(self, model_id: str, entries: Iterable[FileEntry]) -> None:
        """Record uploaded files (a path uploaded again takes the new content)."""
        rows = [
            {"model_id": model_id, "path": e.path, "size": e.size, "sha256": e.sha256}
            for e in entries
        ]
        with self.db.write() as conn:
            upsert(conn, logged_model_files, rows, ["model_id", "path"], ["size", "sha256"])
            self._touch(conn, model_id)

    def files(self, model_id: str, prefix: str = "") -> list[FileEntry]:
        """The files under the directory ``prefix`` (``""``: all), by path."""
        query = sa.select(_F.path, _F.size, _F.sha256).where(_F.model_id == model_id)
        if prefix:
            # "0" sorts right after "/": the range is the directory, by primary key
            query = query.where(_F.path >= prefix + "/", _F.path < prefix + "0")
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_F.path))
            return [FileEntry(r.path, int(r.size), r.sha256) for r in rows]

    # -- helpers ---------------------------------------------------------------------

    def _select(self, query: sa.Select[Any]) -> list[LoggedModel]:
        with self.db.read() as conn:
            rows = list(conn.execute(query))
            ids = [r.model_id for r in rows]
            tags = key_values(conn, logged_model_tags, "model_id", ids)
            params = key_values(conn, logged_model_params, "model_id", ids)
        return [
            LoggedModel(
                model_id=r.model_id,
                experiment_id=int(r.experiment_id),
                name=r.name,
                source_run_id=r.source_run_id,
                model_type=r.model_type,
                status=r.status,
                digest=r.digest,
                created_at=int(r.created_at),
                updated_at=int(r.updated_at),
                created_by=r.created_by,
                tags=tags[r.model_id],
                params=params[r.model_id],
            )
            for r in rows
        ]

    @staticmethod
    def _put_kv(conn: Any, table: sa.Table, model_id: str, values: Mapping[str, str]) -> None:
        rows = [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()]
        upsert(conn, table, rows, ["model_id", "key"], ["value"])

    @staticmethod
    def _touch(conn: Any, model_id: str) -> None:
        conn.execute(
            sa.update(logged_models).where(_L.model_id == model_id).values(updated_at=now_millis())
        )
