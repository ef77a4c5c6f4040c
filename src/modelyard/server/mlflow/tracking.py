"""MLflow's tracking routes (``/api/2.0/mlflow/experiments|runs|metrics|artifacts/...``).

They work on the yard's own experiments and runs: a run MLflow's client makes
is a run of ``modelyard runs``, and the other way round. Runs are never written
by a caller who may not edit their experiment; searches see only what the
caller may see, in the query (never filtered page by page afterwards).
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.errors import AlreadyExists
from modelyard.server._pages import page
from modelyard.server._routing import ApiRoute, Call
from modelyard.server.access import SIGNED_IN, on_experiment, on_resource, role
from modelyard.server.errors import ApiError
from modelyard.server.mlflow import _find
from modelyard.server.mlflow.wire import (
    In,
    KeyValue,
    Num,
    experiment_json,
    file_listing,
    key_values,
    metric_json,
    paged,
    run_artifact_uri,
    run_json,
    to_float,
    to_int,
)
from modelyard.store.entities import Metric, Run, RunStatus, from_millis, now_millis
from modelyard.store.sql.logged import SqlLoggedModels
from modelyard.uri import validate_name, validate_relative_path

__all__ = ["ROUTES"]

P = "/api/2.0/mlflow"
_EQUALS_NAME = re.compile(r"^\s*(?:attributes\.)?name\s*=\s*'([^']*)'\s*$")
# MLflow's own limits (mlflow/utils/validation.py): a batch is refused above them
_BATCH = {"metrics": 1000, "params": 100, "tags": 100}


class CreateExperimentIn(In, kw_only=True):
    name: str = ""
    artifact_location: str | None = None
    tags: list[KeyValue] = []


class ExperimentIdQuery(In, kw_only=True):
    experiment_id: str = ""


class ExperimentNameQuery(In, kw_only=True):
    experiment_name: str = ""


class SearchExperimentsIn(In, kw_only=True):
    max_results: Num = 1000
    page_token: str | None = None
    filter: str | None = None
    view_type: str | None = None


class CreateRunIn(In, kw_only=True):
    experiment_id: str = "0"
    user_id: str | None = None
    run_name: str | None = None
    start_time: Num | None = None
    tags: list[KeyValue] = []


class RunQuery(In, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None


class UpdateRunIn(In, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None
    status: str | None = None
    end_time: Num | None = None
    run_name: str | None = None


class SearchRunsIn(In, kw_only=True):
    experiment_ids: list[str] = []
    filter: str | None = None
    run_view_type: str | None = None
    max_results: Num = 1000
    order_by: list[str] = []
    page_token: str | None = None


class MetricIn(In, kw_only=True):
    key: str
    value: float | str
    timestamp: Num | None = None
    step: Num | None = None


class LogMetricIn(MetricIn, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None


class LogParamIn(In, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None
    key: str
    value: str


class SetTagIn(LogParamIn, kw_only=True):
    pass


class LogBatchIn(In, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None
    metrics: list[MetricIn] = []
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class ModelOutput(In, kw_only=True):
    model_id: str
    step: Num | None = None


class RunOutputsIn(In, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None
    models: list[ModelOutput] = []


class HistoryQuery(In, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None
    metric_key: str = ""
    max_results: Num = 25000
    page_token: str | None = None


class ListArtifactsQuery(In, kw_only=True):
    run_id: str | None = None
    run_uuid: str | None = None
    path: str | None = None
    page_token: str | None = None


# -- experiments --------------------------------------------------------------------------


def create_experiment(call: Call) -> dict[str, Any]:
    """A new experiment; its creator gets ``manage``. Where its files go is the server's."""
    body: CreateExperimentIn = call.body
    name = validate_name(body.name, "experiment name")
    if body.artifact_location:
        # A client-chosen location would send the caller's token wherever it points.
        raise ApiError(
            400,
            "invalid_value",
            "artifact_location is chosen by the server; leave it out",
            field="artifact_location",
        )
    if body.tags:
        raise ApiError(501, "not_implemented", "experiment tags are not supported", field="tags")
    auth, store = call.state.auth, call.state.metadata
    found, _ = auth.experiment_access(call.user, name=name)
    if found is not None:
        raise AlreadyExists("experiment", name)
    made = store.get_or_create_experiment(name)
    if not call.user.is_admin:
        auth.set_grant("experiment", made.experiment_id, call.user.name, "manage")
    call.audit("experiment.create", f"experiments/{name}")
    return {"experiment_id": str(made.experiment_id)}


def get_experiment(call: Call) -> dict[str, Any]:
    """One experiment by id."""
    found = _experiment_by_id(call, call.path["experiment_id"])
    return {"experiment": experiment_json(found)}


def get_experiment_by_name(call: Call) -> dict[str, Any]:
    """One experiment by name (404 ``RESOURCE_DOES_NOT_EXIST``: the client then creates it)."""
    return {
        "experiment": experiment_json(
            call.state.metadata.get_experiment(call.query.experiment_name)
        )
    }


def search_experiments(call: Call) -> dict[str, Any]:
    """The experiments the caller may see; the only filter is ``name = '...'``."""
    q: SearchExperimentsIn = call.body if call.body is not None else call.query
    name = None
    if q.filter:
        found = _EQUALS_NAME.match(q.filter)
        if not found:
            raise ApiError(
                400,
                "invalid_value",
                "experiments/search filters only by name = '<name>' here",
                field="filter",
            )
        name = found.group(1)
    scope = None if call.user.is_admin else call.user.user_id
    every = [
        e
        for e in call.state.metadata.list_experiments(visible_to=scope)
        if name is None or e.name == name
    ]
    shown, token = page(
        lambda limit, offset: every[offset : offset + limit],
        token=q.page_token,
        query=("experiments", q.filter),
        requested=to_int(q.max_results, "max_results") or 1000,
        cap=50000,
    )
    return paged({"experiments": [experiment_json(e) for e in shown]}, token)


# -- runs ------------------------------------------------------------------------------


def create_run(call: Call) -> dict[str, Any]:
    """A RUNNING run in the experiment, recorded as the caller's (not as ``user_id`` says)."""
    body: CreateRunIn = call.body
    tags = key_values(body.tags, "tag key")
    name = body.run_name or tags.get("mlflow.runName")
    if name:
        name = validate_name(name, "run name")
    store = call.state.metadata
    start = to_int(body.start_time, "start_time")
    run = store.create_run(
        call.path["experiment_id"],
        name=name,
        created_by=call.user.name,
        tags={**tags, **({"mlflow.runName": name} if name else {})} or None,
        start_time=from_millis(start) if start else None,
    )
    call.audit("run.create", f"runs/{run.run_id}", experiment_id=run.experiment_id)
    return {"run": run_json(run)}


def get_run(call: Call) -> dict[str, Any]:
    """A run with its latest metrics, params, tags and the models it logged."""
    return {"run": _run(call, call.path["run_id"])}


def update_run(call: Call) -> dict[str, Any]:
    """End a run (status and end time); a rename is refused rather than ignored."""
    body: UpdateRunIn = call.body
    run_id = call.path["run_id"]
    store = call.state.metadata
    if body.run_name and body.run_name != store.get_run(run_id).name:
        raise ApiError(501, "not_implemented", "renaming a run is not supported", field="run_name")
    if body.status and body.status != RunStatus.RUNNING:
        end = to_int(body.end_time, "end_time")
        store.end_run(run_id, body.status, end_time=from_millis(end) if end else None)
        call.audit("run.end", f"runs/{run_id}", status=body.status)
    elif body.status == RunStatus.RUNNING and store.get_run(run_id).status != RunStatus.RUNNING:
        raise ApiError(
            501, "not_implemented", "restarting an ended run is not supported", field="status"
        )
    run = store.get_run(run_id)
    return {"run_info": run_json(run)["info"]}


def search_runs(call: Call) -> dict[str, Any]:
    """Runs of the given experiments matching MLflow's filter grammar, as far as visible."""
    body: SearchRunsIn = call.body
    if body.run_view_type not in (None, "", "ACTIVE_ONLY", "ALL"):
        return {}  # there are no deleted runs to show
    experiment_ids = _find.experiments_in(call, body.experiment_ids)
    if not experiment_ids:
        return {}
    scope = None if call.user.is_admin else call.user.user_id
    found, token = page(
        lambda limit, offset: call.state.metadata.search_runs(
            experiment_ids,
            body.filter or None,
            body.order_by or None,
            limit,
            offset=offset,
            visible_to=scope,
        ),
        token=body.page_token,
        query=("runs", experiment_ids, body.filter, body.order_by),
        requested=to_int(body.max_results, "max_results") or 1000,
        cap=50000,
    )
    runs = _runs_json(call, found)
    return paged({"runs": runs}, token)


def log_metric(call: Call) -> dict[str, Any]:
    """One metric value at a step."""
    body: LogMetricIn = call.body
    _log(call, [_metric(body)], {}, {})
    return {}


def log_param(call: Call) -> dict[str, Any]:
    """One param (logging it again with another value is a 400, as in MLflow)."""
    body: LogParamIn = call.body
    _log(call, [], {validate_name(body.key, "param key"): body.value}, {})
    return {}


def set_tag(call: Call) -> dict[str, Any]:
    """One run tag."""
    body: SetTagIn = call.body
    _log(call, [], {}, {validate_name(body.key, "tag key"): body.value})
    return {}


def log_batch(call: Call) -> dict[str, Any]:
    """Metrics, params and tags at once, within MLflow's limits per batch."""
    body: LogBatchIn = call.body
    for what, cap in _BATCH.items():
        if len(getattr(body, what)) > cap:
            raise ApiError(400, "invalid_value", f"a batch holds at most {cap} {what}", field=what)
    params = key_values(body.params, "param key")
    _log(call, [_metric(m) for m in body.metrics], params, key_values(body.tags, "tag key"))
    return {}


def run_outputs(call: Call) -> dict[str, Any]:
    """Link logged models to the run as outputs: each must be a model this run logged."""
    body: RunOutputsIn = call.body
    run_id = call.path["run_id"]
    logged = SqlLoggedModels(call.state.metadata.db)
    for m in body.models:
        found = logged.get(m.model_id)
        if found is None or found.source_run_id != run_id:
            raise ApiError(
                400,
                "invalid_value",
                f"logged model {m.model_id!r} was not logged by run {run_id}",
                field="models",
            )
    return {}


def metric_history(call: Call) -> dict[str, Any]:
    """Every value of one metric, by step then time."""
    q: HistoryQuery = call.query
    key = validate_name(q.metric_key, "metric key")
    every = call.state.metadata.get_metric_history(call.path["run_id"], key)
    shown, token = page(
        lambda limit, offset: every[offset : offset + limit],
        token=q.page_token,
        query=("history", call.path["run_id"], key),
        requested=to_int(q.max_results, "max_results") or 25000,
        cap=25000,
    )
    return paged({"metrics": [metric_json(m) for m in shown]}, token)


def list_artifacts(call: Call) -> dict[str, Any]:
    """A run's files and folders directly under ``path`` (full relative paths)."""
    q: ListArtifactsQuery = call.query
    run_id = call.path["run_id"]
    run = call.state.metadata.get_run(run_id)
    prefix = validate_relative_path(q.path or "", "artifact path")
    files = call.state.metadata.list_artifacts(run_id, prefix)
    out = file_listing(files, prefix, full_paths=True)
    return {"root_uri": run_artifact_uri(run.experiment_id, run_id)} | (
        {"files": out} if out else {}
    )


# -- helpers ----------------------------------------------------------------------------------


def _runs_json(call: Call, runs: list[Run]) -> list[dict[str, Any]]:
    """Runs as MLflow shows them: latest metrics and logged models of the page, two queries."""
    ids = [r.run_id for r in runs]
    metrics = call.state.metadata.latest_metrics(ids)
    outputs = SqlLoggedModels(call.state.metadata.db).ids_for_runs(ids)
    return [run_json(r, metrics[r.run_id], outputs[r.run_id]) for r in runs]


def _run(call: Call, run_id: str) -> dict[str, Any]:
    return _runs_json(call, [call.state.metadata.get_run(run_id)])[0]


def _experiment_by_id(call: Call, experiment_id: int) -> Any:
    for e in call.state.metadata.list_experiments():
        if e.experiment_id == experiment_id:
            return e
    raise ApiError(404, "not_found", f"No Experiment with id={experiment_id} exists")


def _metric(m: MetricIn) -> Metric:
    return Metric(
        validate_name(m.key, "metric key"),
        to_float(m.value, "value"),
        to_int(m.step, "step") or 0,
        to_int(m.timestamp, "timestamp") or now_millis(),
    )


def _log(call: Call, metrics: list[Metric], params: dict[str, str], tags: dict[str, str]) -> None:
    run_id = call.path["run_id"]
    store = call.state.metadata
    if params:
        store.log_params(run_id, params)
    if metrics:
        # MLflow keeps one row per (key, step, time, value): its client re-logs a run's
        # metrics when it logs a model (to link them to it); they must not double up.
        seen = {
            (m.key, m.step, m.timestamp, m.value)
            for key in {m.key for m in metrics}
            for m in store.get_metric_history(run_id, key)
        }
        metrics = [m for m in metrics if (m.key, m.step, m.timestamp, m.value) not in seen]
    if metrics:
        store.log_metrics(run_id, metrics)
    if tags:
        store.set_tags(run_id, tags)
    call.audit(
        "run.log",
        f"runs/{run_id}",
        metrics=len(metrics),
        params=sorted(params),
        tags=sorted(tags),
    )


def _route(path: str, handler: Any, method: str, access: Any, **kw: Any) -> ApiRoute:
    return ApiRoute(P + path, handler, method=method, access=access, **kw)


_EXP_BODY = _find.experiment("body.experiment_id")
_EXP_QUERY = _find.experiment("query.experiment_id")
_RUN_BODY = _find.run("body")
_RUN_QUERY = _find.run("query")

ROUTES = [
    _route(
        "/experiments/create", create_experiment, "POST", role("writer"), body=CreateExperimentIn
    ),
    _route(
        "/experiments/get",
        get_experiment,
        "GET",
        on_resource("read", "experiment", _EXP_QUERY),
        query=ExperimentIdQuery,
    ),
    _route(
        "/experiments/get-by-name",
        get_experiment_by_name,
        "GET",
        on_experiment("read", "query.experiment_name"),
        query=ExperimentNameQuery,
    ),
    _route("/experiments/search", search_experiments, "GET", SIGNED_IN, query=SearchExperimentsIn),
    _route("/experiments/search", search_experiments, "POST", SIGNED_IN, body=SearchExperimentsIn),
    _route(
        "/runs/create",
        create_run,
        "POST",
        on_resource("edit", "experiment", _EXP_BODY),
        body=CreateRunIn,
    ),
    _route("/runs/get", get_run, "GET", on_resource("read", "run", _RUN_QUERY), query=RunQuery),
    _route(
        "/runs/update", update_run, "POST", on_resource("edit", "run", _RUN_BODY), body=UpdateRunIn
    ),
    _route("/runs/search", search_runs, "POST", SIGNED_IN, body=SearchRunsIn),
    _route(
        "/runs/log-metric",
        log_metric,
        "POST",
        on_resource("edit", "run", _RUN_BODY),
        body=LogMetricIn,
    ),
    _route(
        "/runs/log-parameter",
        log_param,
        "POST",
        on_resource("edit", "run", _RUN_BODY),
        body=LogParamIn,
    ),
    _route("/runs/set-tag", set_tag, "POST", on_resource("edit", "run", _RUN_BODY), body=SetTagIn),
    _route(
        "/runs/log-batch", log_batch, "POST", on_resource("edit", "run", _RUN_BODY), body=LogBatchIn
    ),
    _route(
        "/runs/outputs",
        run_outputs,
        "POST",
        on_resource("edit", "run", _RUN_BODY),
        body=RunOutputsIn,
    ),
    _route(
        "/metrics/get-history",
        metric_history,
        "GET",
        on_resource("read", "run", _RUN_QUERY),
        query=HistoryQuery,
    ),
    _route(
        "/artifacts/list",
        list_artifacts,
        "GET",
        on_resource("read", "run", _RUN_QUERY),
        query=ListArtifactsQuery,
    ),
]
