"""``/api/v1/experiments`` and ``/api/v1/runs``: tracking over HTTP.

Keys and values go through the same checks as the Python API
(:mod:`modelyard._keys`, :func:`~modelyard.uri.validate_relative_path`). A
run's files must be stored (every blob present with the size given) before
they are recorded.
"""

from __future__ import annotations

from typing import Any

from modelyard._keys import check_key, check_strings
from modelyard.errors import AlreadyExists, TrackingError
from modelyard.format.content import FileEntry
from modelyard.server._pages import page
from modelyard.server._routing import ApiRoute, Call, run_not_found
from modelyard.server.access import SIGNED_IN, on_experiment, on_run, role
from modelyard.server.errors import ApiError
from modelyard.store.entities import RunStatus, from_millis
from modelyard.store.rest import wire
from modelyard.store.rest.wire import Out, Strict
from modelyard.uri import validate_name, validate_relative_path

__all__ = ["ROUTES"]

P = wire.API_PREFIX
_MAX_METRICS = 10_000
_MAX_FILES = 100_000


class CreateExperiment(Strict, kw_only=True):
    name: str


class Experiments(Out, kw_only=True):
    experiments: list[wire.ExperimentOut]


class CreateRun(Strict, kw_only=True):
    experiment_id: int
    name: str | None = None
    parent_run_id: str | None = None
    tags: dict[str, str] | None = None
    start_time: int | None = None


class EndRun(Strict, kw_only=True):
    status: str
    end_time: int | None = None


class SearchRuns(Strict, kw_only=True):
    experiment_ids: list[int] | None = None
    filter: str | None = None
    order_by: list[str] = []
    max_results: int = 1000
    page_token: str | None = None


class RunPage(Out, kw_only=True):
    runs: list[wire.RunOut]
    next_page_token: str | None = None


class Params(Strict, kw_only=True):
    params: dict[str, str]


class Metrics(Strict, kw_only=True):
    metrics: list[wire.MetricIO]


class MetricQuery(Strict, kw_only=True):
    key: str


class MetricHistory(Out, kw_only=True):
    metrics: list[wire.MetricIO]


class Tags(Strict, kw_only=True):
    tags: dict[str, str]


class AddFiles(Strict, kw_only=True):
    files: list[wire.FileOut]


class PrefixQuery(Strict, kw_only=True):
    prefix: str = ""


class RunFiles(Out, kw_only=True):
    files: list[wire.FileOut]


# -- experiments --------------------------------------------------------------------------


def get_or_create_experiment(call: Call) -> wire.ExperimentOut:
    """The experiment of that name, created if missing (its creator gets ``manage``)."""
    body: CreateExperiment = call.body
    name = validate_name(body.name, "experiment name")
    auth = call.state.auth
    experiment_id, permission = auth.experiment_access(call.user, name=name)
    if experiment_id is not None:
        if permission == "none":
            # Hidden from the caller: as if it existed under no name they may use.
            raise AlreadyExists("experiment", name)
        return wire.experiment_out(call.state.metadata.get_experiment(name))
    made = call.state.metadata.get_or_create_experiment(name)
    if not call.user.is_admin:
        auth.set_grant("experiment", made.experiment_id, call.user.name, "manage")
    call.audit("experiment.create", f"experiments/{name}")
    return wire.experiment_out(made)


def list_experiments(call: Call) -> Experiments:
    """Every experiment the caller may see."""
    scope = None if call.user.is_admin else call.user.user_id
    found = call.state.metadata.list_experiments(visible_to=scope)
    return Experiments(experiments=[wire.experiment_out(e) for e in found])


def get_experiment(call: Call) -> wire.ExperimentOut:
    """One experiment by name."""
    return wire.experiment_out(call.state.metadata.get_experiment(call.path["experiment"]))


# -- runs -----------------------------------------------------------------------------------


def create_run(call: Call) -> wire.RunOut:
    """A new RUNNING run, recorded as the caller's."""
    body: CreateRun = call.body
    store = call.state.metadata
    if body.parent_run_id is not None:
        exists, permission = call.state.auth.run_access(call.user, body.parent_run_id)
        if not exists or permission == "none":
            raise run_not_found(call, body.parent_run_id, "parent_run_id")
    name = validate_name(body.name, "run name") if body.name else None
    run = store.create_run(
        body.experiment_id,
        name=name,
        parent_run_id=body.parent_run_id,
        created_by=call.user.name,
        tags=check_strings(body.tags, "tag") if body.tags else None,
        start_time=from_millis(body.start_time),
    )
    call.audit("run.create", f"runs/{run.run_id}", experiment_id=body.experiment_id)
    return wire.run_out(run)


def get_run(call: Call) -> wire.RunOut:
    """One run with params, latest metrics and tags."""
    return wire.run_out(call.state.metadata.get_run(call.path["run_id"]))


def search_runs(call: Call) -> RunPage:
    """Runs matching a filter in experiments the caller may see."""
    body: SearchRuns = call.body
    scope = None if call.user.is_admin else call.user.user_id
    found, token = page(
        lambda limit, offset: call.state.metadata.search_runs(
            body.experiment_ids,
            body.filter,
            body.order_by or None,
            limit,
            offset=offset,
            visible_to=scope,
        ),
        token=body.page_token,
        query=("runs", body.experiment_ids, body.filter, body.order_by),
        requested=body.max_results,
        cap=call.state.settings.max_page["runs"],
    )
    return RunPage(runs=[wire.run_out(r) for r in found], next_page_token=token)


def end_run(call: Call) -> None:
    """Mark a run FINISHED, FAILED or KILLED."""
    body: EndRun = call.body
    if body.status not in RunStatus.ALL:
        # what the store raises: the client gets a TrackingError, as on a SQL yard
        raise TrackingError(
            f"unknown run status {body.status!r}; use one of {', '.join(RunStatus.ALL)}"
        )
    run_id = call.path["run_id"]
    call.state.metadata.end_run(run_id, body.status, end_time=from_millis(body.end_time))
    call.audit("run.end", f"runs/{run_id}", status=body.status)


def log_params(call: Call) -> None:
    """Record params (a param never changes once logged)."""
    body: Params = call.body
    run_id = call.path["run_id"]
    call.state.metadata.log_params(run_id, check_strings(body.params, "param"))
    call.audit("run.params", f"runs/{run_id}", keys=sorted(body.params))


def log_metrics(call: Call) -> None:
    """Append metric values."""
    body: Metrics = call.body
    if len(body.metrics) > _MAX_METRICS:
        raise ApiError(
            413,
            "payload_too_large",
            f"at most {_MAX_METRICS} metric values a call",
            field="metrics",
        )
    values = []
    for m in body.metrics:
        check_key(m.key, "metric")
        try:
            values.append(wire.metric_in(m))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "invalid_value", str(exc), field="metrics") from None
    run_id = call.path["run_id"]
    call.state.metadata.log_metrics(run_id, values)
    call.audit("run.metrics", f"runs/{run_id}", keys=sorted({m.key for m in values}))


def metric_history(call: Call) -> MetricHistory:
    """Every value logged for one metric key."""
    q: MetricQuery = call.query
    key = check_key(q.key, "metric")
    found = call.state.metadata.get_metric_history(call.path["run_id"], key)
    return MetricHistory(metrics=[wire.metric_out(m) for m in found])


def set_tags(call: Call) -> None:
    """Set (or replace) run tags."""
    body: Tags = call.body
    run_id = call.path["run_id"]
    call.state.metadata.set_tags(run_id, check_strings(body.tags, "tag"))
    call.audit("run.tags", f"runs/{run_id}", keys=sorted(body.tags))


def add_files(call: Call) -> None:
    """Record files of a run; each blob must be stored already, with the size given."""
    body: AddFiles = call.body
    if len(body.files) > _MAX_FILES:
        raise ApiError(
            413, "payload_too_large", f"at most {_MAX_FILES} files a call", field="files"
        )
    entries = []
    artifacts = call.state.artifacts
    for f in body.files:
        path = validate_relative_path(f.path, "artifact path")
        if not path or path != f.path:
            raise ApiError(
                400,
                "invalid_value",
                f"artifact path {f.path!r} is not a plain relative path",
                field="files",
            )
        entry = wire.file_in(f)
        if not _is_hex64(entry.sha256) or entry.size < 0:
            raise ApiError(
                400, "invalid_value", f"file {path!r}: bad sha256 or size", field="files"
            )
        stored = artifacts.stat(entry.sha256)
        if stored is None or stored.size != entry.size:
            raise ApiError(
                400,
                "blob_missing",
                f"file {path!r} was never uploaded "
                f"(sha256 {entry.sha256[:12]}…, {entry.size} bytes)",
                field="files",
            )
        entries.append(FileEntry(path, entry.size, entry.sha256))
    run_id = call.path["run_id"]
    call.state.metadata.add_artifacts(run_id, entries)
    call.audit("run.files", f"runs/{run_id}", count=len(entries))


def list_files(call: Call) -> RunFiles:
    """A run's files under a directory (all of them without ``prefix``)."""
    q: PrefixQuery = call.query or PrefixQuery()
    prefix = validate_relative_path(q.prefix, "artifact path") if q.prefix else ""
    found = call.state.metadata.list_artifacts(call.path["run_id"], prefix)
    return RunFiles(files=[wire.file_out(f) for f in found])


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _route(path: str, handler: Any, method: str, access: Any, **kw: Any) -> ApiRoute:
    return ApiRoute(P + path, handler, method=method, access=access, **kw)


R = "/runs/{run_id}"

ROUTES = [
    _route(
        "/experiments",
        get_or_create_experiment,
        "POST",
        role("writer"),
        body=CreateExperiment,
        response=wire.ExperimentOut,
    ),
    _route("/experiments", list_experiments, "GET", SIGNED_IN, response=Experiments),
    _route(
        "/experiments/{experiment}",
        get_experiment,
        "GET",
        on_experiment("read", "experiment"),
        response=wire.ExperimentOut,
    ),
    _route(
        "/runs",
        create_run,
        "POST",
        on_experiment("edit", "body.experiment_id"),
        body=CreateRun,
        status=201,
        response=wire.RunOut,
    ),
    _route("/runs/search", search_runs, "POST", SIGNED_IN, body=SearchRuns, response=RunPage),
    _route(R, get_run, "GET", on_run("read"), response=wire.RunOut),
    _route(R + "/end", end_run, "POST", on_run("edit"), body=EndRun),
    _route(R + "/params", log_params, "POST", on_run("edit"), body=Params),
    _route(R + "/metrics", log_metrics, "POST", on_run("edit"), body=Metrics),
    _route(
        R + "/metrics",
        metric_history,
        "GET",
        on_run("read"),
        query=MetricQuery,
        response=MetricHistory,
    ),
    _route(R + "/tags", set_tags, "POST", on_run("edit"), body=Tags),
    _route(R + "/files", add_files, "POST", on_run("edit"), body=AddFiles),
    _route(R + "/files", list_files, "GET", on_run("read"), query=PrefixQuery, response=RunFiles),
]
