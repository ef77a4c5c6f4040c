"""MLflow 3's logged-model routes (``/api/2.0/mlflow/logged-models/...``).

``mlflow.<flavor>.log_model`` creates a logged model, PUTs its files and marks
it READY. At READY the server fixes the model's files: it writes their content
manifest (the file list with the sha256 it computed for each upload) and
records the digest, so a version registered from it is content-addressed like
one logged by modelyard. The files are also recorded in the producing run
under the model's name, so ``runs:/<run_id>/<name>`` names the same model for
both clients.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.format.content import MANIFEST_FILE, ContentManifest, FileEntry
from modelyard.server._pages import page
from modelyard.server._routing import ApiRoute, Call, run_not_found
from modelyard.server.access import SIGNED_IN, on_resource
from modelyard.server.errors import ApiError
from modelyard.server.mlflow import _find
from modelyard.server.mlflow.artifacts import files_of
from modelyard.server.mlflow.wire import (
    In,
    KeyValue,
    Num,
    file_listing,
    key_values,
    logged_model_json,
    logged_model_uri,
    paged,
    to_int,
)
from modelyard.store.sql.logged import READY, SEARCH_FIELDS, STATUSES, LoggedModel, SqlLoggedModels
from modelyard.uri import validate_name, validate_relative_path

__all__ = ["ROUTES", "finalize"]

P = "/api/2.0/mlflow/logged-models"
_CLAUSE = re.compile(r"^\s*(?:attributes\.)?(\w+)\s*=\s*'([^']*)'\s*$")
_AND = re.compile(r"\s+AND\s+", re.IGNORECASE)


class CreateIn(In, kw_only=True):
    experiment_id: str = "0"
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = []
    tags: list[KeyValue] = []


class FinalizeIn(In, kw_only=True):
    model_id: str | None = None
    status: str = ""


class TagsIn(In, kw_only=True):
    tags: list[KeyValue] = []


class ParamsIn(In, kw_only=True):
    params: list[KeyValue] = []


class SearchIn(In, kw_only=True):
    experiment_ids: list[str] = []
    filter: str | None = None
    max_results: Num = 100
    page_token: str | None = None


class DirectoryQuery(In, kw_only=True):
    artifact_directory_path: str | None = None
    page_token: str | None = None


def _store(call: Call) -> SqlLoggedModels:
    return SqlLoggedModels(call.state.metadata.db)


def _get(call: Call) -> LoggedModel:
    found = _store(call).get(call.path["logged_model"])
    assert found is not None  # the access check found it
    return found


def create(call: Call) -> dict[str, Any]:
    """A PENDING logged model of the experiment (its run, if named, must be of it too)."""
    body: CreateIn = call.body
    experiment_id = call.path["experiment_id"]
    name = validate_name(body.name or "model", "model name")
    if body.source_run_id:
        exists, permission = call.state.auth.run_access(call.user, body.source_run_id)
        if not exists or permission == "none":
            raise run_not_found(call, body.source_run_id, "source_run_id")
        if call.state.metadata.get_run(body.source_run_id).experiment_id != experiment_id:
            raise ApiError(
                400,
                "invalid_value",
                f"run {body.source_run_id} is not in experiment {experiment_id}",
                field="source_run_id",
            )
    made = _store(call).create(
        experiment_id,
        name,
        source_run_id=body.source_run_id or None,
        model_type=body.model_type,
        params=key_values(body.params, "param key"),
        tags=key_values(body.tags, "tag key"),
        created_by=call.user.name,
    )
    call.audit("logged_model.create", made.model_id, experiment_id=experiment_id)
    return {"model": logged_model_json(made)}


def get(call: Call) -> dict[str, Any]:
    """One logged model."""
    return {"model": logged_model_json(_get(call))}


def finish(call: Call) -> dict[str, Any]:
    """Mark the upload done (READY fixes the files and the digest) or failed."""
    body: FinalizeIn = call.body
    if body.status not in STATUSES:
        raise ApiError(
            400, "invalid_value", f"status must be one of {', '.join(STATUSES)}", field="status"
        )
    found = _get(call)
    if found.status == READY:
        if body.status != READY:
            raise ApiError(
                400,
                "invalid_value",
                f"logged model {found.model_id} is READY already",
                field="status",
            )
    elif body.status == READY:
        finalize(call, found)
    else:
        _store(call).finish(found.model_id, body.status, None)
    call.audit("logged_model.finish", found.model_id, status=body.status)
    return {"model": logged_model_json(_get(call))}


def finalize(call: Call, found: LoggedModel) -> str:
    """Fix a logged model's files: store their manifest, record the digest, and record
    the files in the producing run under the model's name. The digest."""
    store = _store(call)
    entries = [e for e in store.files(found.model_id) if e.path != MANIFEST_FILE]
    if not entries:
        raise ApiError(
            400, "invalid_value", f"logged model {found.model_id} has no files", field="status"
        )
    manifest = ContentManifest(tuple(sorted(entries, key=lambda e: e.path)))
    call.state.artifacts.put_bytes(manifest.to_text().encode())
    if found.source_run_id:
        call.state.metadata.add_artifacts(
            found.source_run_id,
            [FileEntry(f"{found.name}/{e.path}", e.size, e.sha256) for e in entries],
        )
    store.finish(found.model_id, READY, manifest.digest)
    return manifest.digest


def search(call: Call) -> dict[str, Any]:
    """Logged models of the experiments, matching ``field = 'value' AND ...``."""
    body: SearchIn = call.body
    equal: dict[str, str] = {}
    for clause in _AND.split(body.filter.strip()) if body.filter and body.filter.strip() else []:
        found = _CLAUSE.match(clause)
        if not found or found.group(1) not in SEARCH_FIELDS:
            raise ApiError(
                400,
                "invalid_value",
                f"logged-models/search filters by {', '.join(SEARCH_FIELDS)} = '<value>' "
                f"joined by AND; not {clause.strip()!r}",
                field="filter",
            )
        equal[found.group(1)] = found.group(2)
    experiment_ids = _find.experiments_in(call, body.experiment_ids)
    if not experiment_ids:
        return {}
    scope = None if call.user.is_admin else call.user.user_id
    shown, token = page(
        lambda limit, offset: _store(call).search(
            experiment_ids, equal, limit=limit, offset=offset, visible_to=scope
        ),
        token=body.page_token,
        query=("logged", experiment_ids, body.filter),
        requested=to_int(body.max_results, "max_results") or 100,
        cap=1000,
    )
    return paged({"models": [logged_model_json(m) for m in shown]}, token)


def set_tags(call: Call) -> dict[str, Any]:
    """Set tags (MLflow's client records ``mlflow.modelVersions`` here)."""
    body: TagsIn = call.body
    tags = key_values(body.tags, "tag key")
    _store(call).set_tags(call.path["logged_model"], tags)
    return {}


def delete_tag(call: Call) -> dict[str, Any]:
    """Remove a tag."""
    if not _store(call).delete_tag(call.path["logged_model"], call.path["key"]):
        raise ApiError(404, "not_found", f"no tag {call.path['key']!r}", field="key")
    return {}


def log_params(call: Call) -> dict[str, Any]:
    """Record params."""
    body: ParamsIn = call.body
    if len(body.params) > 100:
        raise ApiError(400, "invalid_value", "a batch holds at most 100 params", field="params")
    params = key_values(body.params, "param key")
    _store(call).add_params(call.path["logged_model"], params)
    return {}


def directories(call: Call) -> dict[str, Any]:
    """The files and folders directly under a folder of the logged model."""
    q: DirectoryQuery = call.query
    found = _get(call)
    rest = validate_relative_path(q.artifact_directory_path or "", "artifact path")
    target = _find.Target("logged", found.model_id, rest, found.experiment_id)
    files = file_listing(files_of(call, target), rest, full_paths=True)
    return {"root_uri": logged_model_uri(found)} | ({"files": files} if files else {})


_MODEL = _find.logged_model()
M = P + "/{logged_model}"

ROUTES = [
    ApiRoute(
        P,
        create,
        method="POST",
        access=on_resource("edit", "experiment", _find.experiment("body.experiment_id")),
        body=CreateIn,
    ),
    ApiRoute(P + "/search", search, method="POST", access=SIGNED_IN, body=SearchIn),
    ApiRoute(M, get, method="GET", access=on_resource("read", "logged model", _MODEL)),
    ApiRoute(
        M,
        finish,
        method="PATCH",
        access=on_resource("edit", "logged model", _MODEL),
        body=FinalizeIn,
    ),
    ApiRoute(
        M + "/tags",
        set_tags,
        method="PATCH",
        access=on_resource("edit", "logged model", _MODEL),
        body=TagsIn,
    ),
    ApiRoute(
        M + "/tags/{key}",
        delete_tag,
        method="DELETE",
        access=on_resource("edit", "logged model", _MODEL),
    ),
    ApiRoute(
        M + "/params",
        log_params,
        method="POST",
        access=on_resource("edit", "logged model", _MODEL),
        body=ParamsIn,
    ),
    ApiRoute(
        M + "/artifacts/directories",
        directories,
        method="GET",
        access=on_resource("read", "logged model", _MODEL),
        query=DirectoryQuery,
    ),
]
