"""Tracking queries: experiments, runs, params, metrics, tags and run files."""

from __future__ import annotations

import datetime as _dt
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.errors import ExperimentNotFound, RunNotFound, TrackingError
from modelyard.format.content import FileEntry
from modelyard.store.entities import (
    Experiment,
    Metric,
    Run,
    RunStatus,
    from_millis,
    now_millis,
    to_millis,
)
from modelyard.store.filters import Condition, Fields, OrderKey, parse_filter, parse_order_by
from modelyard.store.sql._sql import (
    close_matches,
    compare,
    insert_ignore,
    key_values,
    keyed_exists,
    upsert,
)
from modelyard.store.sql.auth import visible_experiment
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import (
    experiments,
    run_artifacts,
    run_latest_metrics,
    run_metrics,
    run_params,
    run_tags,
    runs,
)

__all__ = ["RUN_FIELDS", "RunQueries"]

RUN_FIELDS = Fields(
    attributes={
        "run_id": "string",
        "run_name": "string",
        "name": "string",
        "status": "string",
        "start_time": "number",
        "end_time": "number",
        "created_by": "string",
        "user_id": "string",
        "parent_run_id": "string",
    },
    entities=frozenset({"attribute", "param", "metric", "tag"}),
)

_R = runs.c
_RUN_COLUMNS = {
    "run_id": _R.run_id,
    "run_name": _R.name,
    "name": _R.name,
    "status": _R.status,
    "start_time": _R.start_time,
    "end_time": _R.end_time,
    "created_by": _R.created_by,
    "user_id": _R.created_by,
    "parent_run_id": _R.parent_run_id,
}


class RunQueries:
    """The tracking half of the SQL metadata store."""

    db: Database

    # -- experiments -----------------------------------------------------------

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if missing (safe under races)."""
        with self.db.write() as conn:
            insert_ignore(conn, experiments, {"name": name, "created_at": now_millis()}, ["name"])
            row = conn.execute(sa.select(experiments).where(experiments.c.name == name)).one()
        return _experiment(row)

    def get_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``; :class:`ExperimentNotFound` suggests close names."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(experiments).where(experiments.c.name == name)).first()
            if row is None:
                names = conn.execute(sa.select(experiments.c.name)).scalars()
                raise ExperimentNotFound(name, suggestions=close_matches(name, names))
        return _experiment(row)

    def list_experiments(self, *, visible_to: int | None = None) -> list[Experiment]:
        """Every experiment (not hidden from the user ``visible_to``), by name."""
        query = sa.select(experiments).order_by(experiments.c.name)
        if visible_to is not None:
            query = query.where(visible_experiment(visible_to, experiments.c.experiment_id))
        with self.db.read() as conn:
            rows = conn.execute(query)
            return [_experiment(r) for r in rows]

    # -- runs ----------------------------------------------------------------------

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
        """A new RUNNING run in ``experiment_id``."""
        run_id = uuid.uuid4().hex
        start = to_millis(start_time) if start_time else now_millis()
        with self.db.write() as conn:
            if parent_run_id is not None:
                self._check_run(conn, parent_run_id)
            conn.execute(
                sa.insert(runs).values(
                    run_id=run_id,
                    experiment_id=experiment_id,
                    name=name,
                    status=RunStatus.RUNNING,
                    start_time=start,
                    parent_run_id=parent_run_id,
                    created_by=created_by,
                )
            )
            if tags:
                conn.execute(
                    sa.insert(run_tags),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                )
        return self.get_run(run_id)

    def end_run(self, run_id: str, status: str, *, end_time: _dt.datetime | None = None) -> None:
        """Mark a run FINISHED, FAILED or KILLED."""
        if status not in RunStatus.ALL:
            raise TrackingError(f"unknown run status {status!r}; use one of {RunStatus.ALL}")
        end = to_millis(end_time) if end_time else now_millis()
        with self.db.write() as conn:
            result = conn.execute(
                sa.update(runs).where(_R.run_id == run_id).values(status=status, end_time=end)
            )
            if not result.rowcount:
                raise self._run_not_found(conn, run_id)

    def get_run(self, run_id: str) -> Run:
        """One run with its params, latest metrics and tags; :class:`RunNotFound` if none."""
        with self.db.read() as conn:
            row = conn.execute(self._run_select().where(_R.run_id == run_id)).first()
            if row is None:
                raise self._run_not_found(conn, run_id)
            return self._runs(conn, [row])[0]

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        *,
        offset: int = 0,
        visible_to: int | None = None,
    ) -> list[Run]:
        """Runs matching ``filter_string``; newest first unless ``order_by`` says otherwise.

        ``visible_to`` (a user id) leaves out runs of experiments hidden from that user,
        in the query; ``offset`` skips that many matches.
        """
        conds = parse_filter(filter_string, RUN_FIELDS)
        keys = parse_order_by(order_by, RUN_FIELDS)
        query = self._run_select()
        if experiment_ids is not None:
            query = query.where(_R.experiment_id.in_(list(experiment_ids)))
        if visible_to is not None:
            query = query.where(visible_experiment(visible_to, _R.experiment_id))
        for cond in conds:
            query = query.where(_run_condition(cond))
        ordering = [_run_order(k) for k in keys]
        query = (
            query.order_by(*ordering, _R.start_time.desc(), _R.run_id)
            .limit(max_results)
            .offset(offset)
        )
        with self.db.read() as conn:
            return self._runs(conn, list(conn.execute(query)))

    # -- params, metrics, tags ----------------------------------------------------

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Record params; logging a param again with another value is a :class:`TrackingError`."""
        if not params:
            return
        with self.db.write() as conn:
            self._check_run(conn, run_id)
            p = run_params.c
            existing = {
                r.key: r.value
                for r in conn.execute(
                    sa.select(p.key, p.value).where(p.run_id == run_id, p.key.in_(list(params)))
                )
            }
            changed = {k: (existing[k], v) for k, v in params.items() if existing.get(k, v) != v}
            if changed:
                key, (old, new) = next(iter(sorted(changed.items())))
                raise TrackingError(
                    f"param {key!r} of run {run_id} is already {old!r}; params cannot change "
                    f"(tried {new!r}). Log a metric or a tag for values that change"
                )
            new_rows = [
                {"run_id": run_id, "key": k, "value": v}
                for k, v in params.items()
                if k not in existing
            ]
            if new_rows:
                conn.execute(sa.insert(run_params), new_rows)

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Append metric values; the latest per key (step, then time) is what searches see."""
        values = list(metrics)
        if not values:
            return
        rows: list[dict[str, Any]] = [
            {
                "run_id": run_id,
                "key": m.key,
                "value": None if m.is_nan else float(m.value),
                "step": m.step,
                "timestamp": m.timestamp,
            }
            for m in values
        ]
        with self.db.write() as conn:
            self._check_run(conn, run_id)
            conn.execute(sa.insert(run_metrics), rows)
            lm = run_latest_metrics.c
            latest = {
                r.key: (r.step, r.timestamp)
                for r in conn.execute(
                    sa.select(lm.key, lm.step, lm.timestamp).where(
                        lm.run_id == run_id, lm.key.in_({m.key for m in values})
                    )
                )
            }
            newest: dict[str, dict[str, Any]] = {}
            for row in rows:
                at = (row["step"], row["timestamp"])
                if at >= latest.get(row["key"], (-math.inf, -math.inf)):
                    latest[row["key"]] = at
                    newest[row["key"]] = row
            upsert(
                conn,
                run_latest_metrics,
                list(newest.values()),
                ["run_id", "key"],
                ["value", "step", "timestamp"],
            )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for ``key``, by step then time."""
        m = run_metrics.c
        with self.db.read() as conn:
            self._check_run(conn, run_id)
            rows = conn.execute(
                sa.select(m.key, m.value, m.step, m.timestamp)
                .where(m.run_id == run_id, m.key == key)
                .order_by(m.step, m.timestamp, m.metric_id)
            )
            return [
                Metric(r.key, math.nan if r.value is None else r.value, r.step, r.timestamp)
                for r in rows
            ]

    def latest_metrics(self, run_ids: Sequence[str]) -> dict[str, list[Metric]]:
        """Each run's metrics at their latest value, with step and time (what MLflow shows
        on a run), by key; one query for a whole page of runs."""
        m = run_latest_metrics.c
        out: dict[str, list[Metric]] = {r: [] for r in run_ids}
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(m.run_id, m.key, m.value, m.step, m.timestamp)
                .where(m.run_id.in_(list(run_ids)))
                .order_by(m.run_id, m.key)
            )
            for r in rows:
                value = math.nan if r.value is None else r.value
                out[r.run_id].append(Metric(r.key, value, r.step, r.timestamp))
        return out

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set (or replace) run tags."""
        if not tags:
            return
        with self.db.write() as conn:
            self._check_run(conn, run_id)
            upsert(
                conn,
                run_tags,
                [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                ["run_id", "key"],
                ["value"],
            )

    # -- files -----------------------------------------------------------------------

    def add_artifacts(self, run_id: str, entries: Iterable[FileEntry]) -> None:
        """Record files of a run; a path logged again is replaced.

        A path may not be both a file and a directory: logging ``model`` as a
        file after ``model/MLmodel`` (or the other way round) is refused.
        """
        new = {e.path: e for e in entries}
        if not new:
            return
        with self.db.write() as conn:
            self._check_run(conn, run_id)
            a = run_artifacts.c
            paths = set(conn.execute(sa.select(a.path).where(a.run_id == run_id)).scalars())
            paths.update(new)
            dirs = {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}
            for path in new:
                if path in dirs:
                    raise TrackingError(
                        f"cannot log the file {path!r} in run {run_id}: it is a directory there"
                    )
                parts = path.split("/")
                for i in range(1, len(parts)):
                    parent = "/".join(parts[:i])
                    if parent in paths:
                        raise TrackingError(
                            f"cannot log {path!r} in run {run_id}: {parent!r} is a file there"
                        )
            upsert(
                conn,
                run_artifacts,
                [
                    {"run_id": run_id, "path": e.path, "sha256": e.sha256, "size": e.size}
                    for e in new.values()
                ],
                ["run_id", "path"],
                ["sha256", "size"],
            )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[FileEntry]:
        """The run's files under the directory ``prefix`` (``""``: all), by path."""
        a = run_artifacts.c
        query = sa.select(a.path, a.sha256, a.size).where(a.run_id == run_id)
        if prefix:
            # A range, not LIKE: no escaping of % and _, and it uses the primary key.
            # "0" is the character after "/".
            query = query.where(a.path >= prefix + "/", a.path < prefix + "0")
        with self.db.read() as conn:
            rows = list(conn.execute(query.order_by(a.path)))
            if not rows:
                self._check_run(conn, run_id)
        return [FileEntry(r.path, int(r.size), r.sha256) for r in rows]

    # -- helpers -------------------------------------------------------------------

    def _run_select(self) -> sa.Select[Any]:
        return sa.select(runs, experiments.c.name.label("experiment_name")).join_from(
            runs, experiments, experiments.c.experiment_id == _R.experiment_id
        )

    def _check_run(self, conn: Connection, run_id: str) -> None:
        if conn.execute(sa.select(_R.run_id).where(_R.run_id == run_id)).first() is None:
            raise self._run_not_found(conn, run_id)

    def _run_not_found(self, conn: Connection, run_id: str) -> RunNotFound:
        head = run_id[:6]
        like = list(
            conn.execute(
                sa.select(_R.run_id).where(_R.run_id.startswith(head, autoescape=True)).limit(3)
            ).scalars()
        )
        return RunNotFound(run_id, suggestions=like)

    def _runs(self, conn: Connection, rows: Sequence[Any]) -> list[Run]:
        ids = [r.run_id for r in rows]
        if not ids:
            return []
        params = key_values(conn, run_params, "run_id", ids)
        metrics: dict[str, dict[str, float]] = defaultdict(dict)
        lm = run_latest_metrics.c
        for r in conn.execute(sa.select(lm.run_id, lm.key, lm.value).where(lm.run_id.in_(ids))):
            metrics[r.run_id][r.key] = math.nan if r.value is None else r.value
        tags = key_values(conn, run_tags, "run_id", ids)
        out = []
        for r in rows:
            start = from_millis(r.start_time)
            assert start is not None
            out.append(
                Run(
                    run_id=r.run_id,
                    experiment_id=r.experiment_id,
                    experiment=r.experiment_name,
                    name=r.name,
                    status=r.status,
                    start_time=start,
                    end_time=from_millis(r.end_time),
                    parent_run_id=r.parent_run_id,
                    created_by=r.created_by,
                    params=dict(sorted(params[r.run_id].items())),
                    metrics=dict(sorted(metrics[r.run_id].items())),
                    tags=dict(sorted(tags[r.run_id].items())),
                )
            )
        return out


def _experiment(row: Any) -> Experiment:
    created = from_millis(row.created_at)
    assert created is not None
    return Experiment(int(row.experiment_id), row.name, created)


def _run_condition(cond: Condition) -> Any:
    if cond.entity == "param":
        return keyed_exists(run_params, lambda t: t.c.run_id == _R.run_id, cond)
    if cond.entity == "tag":
        return keyed_exists(run_tags, lambda t: t.c.run_id == _R.run_id, cond)
    if cond.entity == "metric":
        lm = run_latest_metrics.c
        return (
            sa.exists()
            .where(lm.run_id == _R.run_id, lm.key == cond.key)
            .where(compare(lm.value, cond))
        )
    return compare(_RUN_COLUMNS[cond.key], cond)


def _run_order(key: OrderKey) -> Any:
    if key.entity == "attribute":
        column: Any = _RUN_COLUMNS[key.key]
    else:
        table = {"metric": run_latest_metrics, "param": run_params, "tag": run_tags}[key.entity]
        column = (
            sa.select(table.c.value)
            .where(table.c.run_id == _R.run_id, table.c.key == key.key)
            .scalar_subquery()
        )
    # Runs without the metric (or param) sort last either way, as people expect.
    return (column.desc() if key.descending else column.asc()).nulls_last()
