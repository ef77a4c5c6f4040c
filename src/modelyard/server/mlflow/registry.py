"""MLflow's model-registry routes (``/api/2.0/mlflow/registered-models|model-versions/...``).

The same registry as ``/api/v1``: a version MLflow's client registers is a
version of ``modelyard models``, pinned to the digest of its files, and its
aliases are ours (protected aliases included). A version's ``source`` must
name files this server holds: a logged model (``models:/m-...``), a run's
folder (``runs:/<run_id>/<path>``) or the ``mlflow-artifacts:/`` path of
either; a local path or another store is refused (MLflow's source-validation
failures). Stages are not kept: every version is ``current_stage: "None"``.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.errors import ModelNotFound
from modelyard.format.content import ContentManifest
from modelyard.server._pages import page
from modelyard.server._routing import ApiRoute, Call, run_not_found
from modelyard.server.access import SIGNED_IN, on_model, role
from modelyard.server.api_registry import _check_unprotected, _current, _grant_creator
from modelyard.server.errors import ApiError
from modelyard.server.mlflow import _find
from modelyard.server.mlflow.logged_models import finalize
from modelyard.server.mlflow.wire import (
    In,
    KeyValue,
    Num,
    key_values,
    model_json,
    paged,
    to_int,
    version_json,
)
from modelyard.store.sql.logged import READY, SqlLoggedModels
from modelyard.uri import validate_alias, validate_name, validate_relative_path

__all__ = ["ROUTES"]

P = "/api/2.0/mlflow"


class NameIn(In, kw_only=True):
    name: str = ""


class CreateModelIn(NameIn, kw_only=True):
    tags: list[KeyValue] = []
    description: str | None = None


class UpdateModelIn(NameIn, kw_only=True):
    description: str | None = None


class RenameIn(NameIn, kw_only=True):
    new_name: str = ""


class ModelTagIn(NameIn, kw_only=True):
    key: str = ""
    value: str = ""


class DeleteModelTagIn(NameIn, kw_only=True):
    key: str = ""


class AliasIn(NameIn, kw_only=True):
    alias: str = ""
    version: Num | None = None


class LatestIn(NameIn, kw_only=True):
    stages: list[str] = []


class SearchIn(In, kw_only=True):
    filter: str | None = None
    max_results: Num | None = None
    order_by: list[str] = []
    page_token: str | None = None


class CreateVersionIn(NameIn, kw_only=True):
    source: str = ""
    run_id: str | None = None
    tags: list[KeyValue] = []
    run_link: str | None = None
    description: str | None = None
    model_id: str | None = None


class VersionIn(NameIn, kw_only=True):
    version: Num | None = None


class UpdateVersionIn(VersionIn, kw_only=True):
    description: str | None = None


class VersionTagIn(VersionIn, kw_only=True):
    key: str = ""
    value: str = ""


class DeleteVersionTagIn(VersionIn, kw_only=True):
    key: str = ""


def _version(value: Num | None) -> int:
    number = to_int(value, "version")
    if number is None or number < 1:
        raise ApiError(
            400, "invalid_value", f"version {value!r} is not a version number", field="version"
        )
    return number


def _name(call: Call) -> str:
    source = call.body if call.body is not None else call.query
    return validate_name(source.name)


def _latest(call: Call, name: str) -> Any:
    found = call.state.metadata.get_registered_model(name)
    if found.latest_version is None:
        return found, None
    return found, call.state.metadata.get_model_version(name, found.latest_version)


# -- registered models -----------------------------------------------------------------


def create_model(call: Call) -> dict[str, Any]:
    """A new registered model (its creator gets ``manage``); an existing name is a 400
    ``RESOURCE_ALREADY_EXISTS``, which MLflow's ``register_model`` expects."""
    body: CreateModelIn = call.body
    name = validate_name(body.name)
    tags = key_values(body.tags, "tag key")
    store = call.state.metadata
    made = store.create_registered_model(name, description=body.description, tags=tags or None)
    _grant_creator(call, name)
    call.audit("model.create", f"models:/{name}", description=body.description)
    return {"registered_model": model_json(made)}


def get_model(call: Call) -> dict[str, Any]:
    """A registered model with its aliases and newest version."""
    found, latest = _latest(call, _name(call))
    return {"registered_model": model_json(found, latest)}


def search_models(call: Call) -> dict[str, Any]:
    """Registered models matching MLflow's filter grammar, as far as the caller may see."""
    q: SearchIn = call.query
    scope = None if call.user.is_admin else call.user.user_id
    wanted = _without_prompt_clause(q.filter)
    found, token = page(
        lambda limit, offset: call.state.metadata.search_registered_models(
            wanted, q.order_by or None, limit, offset=offset, visible_to=scope
        ),
        token=q.page_token,
        query=("models", q.filter, q.order_by),
        requested=to_int(q.max_results, "max_results") or 100,
        cap=1000,
    )
    models = []
    for m in found:
        if m.tags.get(_PROMPT_TAG) == "true":
            continue
        latest = (
            call.state.metadata.get_model_version(m.name, m.latest_version)
            if m.latest_version
            else None
        )
        models.append(model_json(m, latest))
    return paged({"registered_models": models}, token)


_PROMPT_TAG = "mlflow.prompt.is_prompt"
# MLflow's client adds this to every registered-model search to leave its prompts out;
# a tag filter here needs the tag to exist, so the clause would leave out every model.
_PROMPT_CLAUSE = re.compile(
    r"(?:\s+AND\s+)?tags?\.`mlflow\.prompt\.is_prompt`\s*!=\s*'true'", re.IGNORECASE
)


def _without_prompt_clause(text: str | None) -> str | None:
    """The filter without the client's "not a prompt" clause (prompts are left out after)."""
    if not text:
        return None
    rest = _PROMPT_CLAUSE.sub("", text).strip()
    return re.sub(r"^AND\s+", "", rest, flags=re.IGNORECASE) or None


def update_model(call: Call) -> dict[str, Any]:
    """Change the description."""
    body: UpdateModelIn = call.body
    made = call.state.metadata.update_registered_model(_name(call), body.description)
    call.audit("model.update", f"models:/{made.name}")
    return {"registered_model": model_json(made)}


def rename_model(call: Call) -> dict[str, Any]:
    """Rename (``manage``): every ``models:/<old>`` URI stops resolving."""
    body: RenameIn = call.body
    new = validate_name(body.new_name)
    made = call.state.metadata.rename_registered_model(_name(call), new)
    call.audit("model.rename", f"models:/{body.name}", to=new)
    return {"registered_model": model_json(made)}


def delete_model(call: Call) -> dict[str, Any]:
    """Delete the model, its versions and aliases (``manage``)."""
    name = _name(call)
    call.state.metadata.delete_registered_model(name)
    call.audit("model.delete", f"models:/{name}")
    return {}


def set_model_tag(call: Call) -> dict[str, Any]:
    """Set a tag."""
    body: ModelTagIn = call.body
    call.state.metadata.set_registered_model_tag(
        _name(call), validate_name(body.key, "tag key"), body.value
    )
    return {}


def delete_model_tag(call: Call) -> dict[str, Any]:
    """Remove a tag."""
    body: DeleteModelTagIn = call.body
    call.state.metadata.delete_registered_model_tag(_name(call), validate_name(body.key, "tag key"))
    return {}


def set_alias(call: Call) -> dict[str, Any]:
    """Point an alias at a version (a protected alias needs ``manage``)."""
    body: AliasIn = call.body
    name, alias, version = _name(call), validate_alias(body.alias), _version(body.version)
    _check_unprotected(call, name, alias, "moving")
    old = _current(call, name, alias)
    call.state.metadata.set_alias(name, alias, version, user=call.user.name)
    if old != version:
        call.audit("alias.set", f"models:/{name}@{alias}", **{"from": old, "to": version})
    return {}


def delete_alias(call: Call) -> dict[str, Any]:
    """Remove an alias (a protected alias needs ``manage``)."""
    body: AliasIn = call.body
    name, alias = _name(call), validate_alias(body.alias)
    _check_unprotected(call, name, alias, "deleting")
    old = _current(call, name, alias)
    call.state.metadata.delete_alias(name, alias, user=call.user.name)
    call.audit("alias.delete", f"models:/{name}@{alias}", **{"from": old, "to": None})
    return {}


def get_alias(call: Call) -> dict[str, Any]:
    """The version an alias points at (an unknown alias is a 400, as in MLflow)."""
    q: AliasIn = call.query
    found = call.state.metadata.get_model_version_by_alias(_name(call), validate_alias(q.alias))
    return {"model_version": version_json(found)}


def latest_versions(call: Call) -> dict[str, Any]:
    """The newest version, for stage ``None`` or no stage (no other stages exist here)."""
    q: LatestIn = call.body if call.body is not None else call.query
    _, latest = _latest(call, _name(call))
    if latest is None or (q.stages and "None" not in q.stages):
        return {}
    return {"model_versions": [version_json(latest)]}


# -- versions ------------------------------------------------------------------------------


def create_version(call: Call) -> dict[str, Any]:
    """Register a version from files this server holds; it is READY at once."""
    body: CreateVersionIn = call.body
    name = _name(call)
    manifest, source, run_id = _source_files(call, body)
    call.state.artifacts.put_bytes(manifest.to_text().encode())
    tags = key_values(body.tags, "tag key")
    made = call.state.metadata.create_model_version(
        name,
        digest=manifest.digest,
        source=source,
        run_id=run_id,
        description=body.description,
        tags=tags or None,
        created_by=call.user.name,
        files=manifest.entries,
    )
    call.audit(
        "version.create", f"models:/{name}/{made.version}", digest=manifest.digest, source=source
    )
    return {"model_version": version_json(made)}


def _source_files(call: Call, body: CreateVersionIn) -> tuple[ContentManifest, str, str | None]:
    """(manifest, source, run id) of what ``source`` / ``model_id`` name on this server."""
    source = body.source.strip()
    model_id = body.model_id or None
    if source.startswith("models:/m-") and model_id is None:
        model_id = source[len("models:/") :]
    if source.startswith("mlflow-artifacts:"):
        target = _find.parse_target(source[len("mlflow-artifacts:") :].lstrip("/"))
        if target.kind == "logged" and not target.rest:
            model_id = target.owner
        elif target.kind == "run":
            source = f"runs:/{target.owner}/{target.rest}".rstrip("/")
    if model_id is not None:
        return _from_logged(call, model_id)
    if source.startswith("runs:/"):
        run_id, _, path = source[len("runs:/") :].partition("/")
        if body.run_id and body.run_id != run_id:
            raise ApiError(
                400, "invalid_value", "run_id differs from the source's run", field="run_id"
            )
        exists, permission = call.state.auth.run_access(call.user, run_id)
        if not exists or permission == "none":
            raise run_not_found(call, run_id)
        from modelyard.store.trees import run_tree

        path = validate_relative_path(path, "source path")
        try:
            tree = run_tree(call.state.metadata, run_id, path, uri=source)
        except ModelNotFound as exc:
            raise ApiError(400, "invalid_value", f"source: {exc.reason}", field="source") from None
        return tree, f"runs:/{run_id}/{path}" if path else f"runs:/{run_id}", run_id
    raise ApiError(
        400,
        "invalid_value",
        f"Invalid model version source {body.source!r}: a version's files must be on this "
        "server: models:/m-<id> (a logged model), runs:/<run_id>/<path> or their "
        "mlflow-artifacts:/ paths",
        field="source",
    )


def _from_logged(call: Call, model_id: str) -> tuple[ContentManifest, str, str | None]:
    from modelyard.store.trees import read_manifest

    call.path["logged_model"] = model_id
    _find.logged_model()(call)  # 404 unless the caller may see it
    logged = SqlLoggedModels(call.state.metadata.db)
    found = logged.get(model_id)
    assert found is not None
    digest = found.digest
    if found.status != READY or digest is None:
        # MLflow's client finalizes first; a client that did not gets the files as they are
        digest = finalize(call, found)
    return read_manifest(call.state.artifacts, digest), f"models:/{model_id}", found.source_run_id


def get_version(call: Call) -> dict[str, Any]:
    """One version."""
    q: VersionIn = call.query
    return {
        "model_version": version_json(
            call.state.metadata.get_model_version(_name(call), _version(q.version))
        )
    }


def update_version(call: Call) -> dict[str, Any]:
    """Change a version's description."""
    body: UpdateVersionIn = call.body
    made = call.state.metadata.update_model_version(
        _name(call), _version(body.version), body.description
    )
    return {"model_version": version_json(made)}


def delete_version(call: Call) -> dict[str, Any]:
    """Delete a version (``manage``); aliases on it go with it."""
    body: VersionIn = call.body
    name, version = _name(call), _version(body.version)
    call.state.metadata.delete_model_version(name, version, user=call.user.name)
    call.audit("version.delete", f"models:/{name}/{version}")
    return {}


def search_versions(call: Call) -> dict[str, Any]:
    """Versions matching MLflow's filter grammar (``name = 'iris'``, ``run_id = '...'``)."""
    q: SearchIn = call.query
    scope = None if call.user.is_admin else call.user.user_id
    found, token = page(
        lambda limit, offset: call.state.metadata.search_model_versions(
            q.filter or None, q.order_by or None, limit, offset=offset, visible_to=scope
        ),
        token=q.page_token,
        query=("versions", q.filter, q.order_by),
        requested=to_int(q.max_results, "max_results") or 10000,
        cap=200000,
    )
    return paged({"model_versions": [version_json(v) for v in found]}, token)


def download_uri(call: Call) -> dict[str, Any]:
    """Where the version's files are read: its own immutable folder on this server."""
    q: VersionIn = call.query
    name, version = _name(call), _version(q.version)
    call.state.metadata.get_model_version(name, version)
    return {"artifact_uri": f"mlflow-artifacts:/registry/{name}/{version}"}


def set_version_tag(call: Call) -> dict[str, Any]:
    """Set a version tag."""
    body: VersionTagIn = call.body
    call.state.metadata.set_model_version_tag(
        _name(call), _version(body.version), validate_name(body.key, "tag key"), body.value
    )
    return {}


def delete_version_tag(call: Call) -> dict[str, Any]:
    """Remove a version tag."""
    body: DeleteVersionTagIn = call.body
    call.state.metadata.delete_model_version_tag(
        _name(call), _version(body.version), validate_name(body.key, "tag key")
    )
    return {}


def _route(path: str, handler: Any, method: str, access: Any, **kw: Any) -> ApiRoute:
    return ApiRoute(P + path, handler, method=method, access=access, **kw)


R, V = "/registered-models", "/model-versions"
_BODY, _QUERY = "body.name", "query.name"

ROUTES = [
    _route(R + "/create", create_model, "POST", role("writer"), body=CreateModelIn),
    _route(R + "/get", get_model, "GET", on_model("read", _QUERY), query=NameIn),
    _route(R + "/search", search_models, "GET", SIGNED_IN, query=SearchIn),
    _route(R + "/update", update_model, "PATCH", on_model("edit", _BODY), body=UpdateModelIn),
    _route(R + "/rename", rename_model, "POST", on_model("manage", _BODY), body=RenameIn),
    _route(R + "/delete", delete_model, "DELETE", on_model("manage", _BODY), body=NameIn),
    _route(R + "/set-tag", set_model_tag, "POST", on_model("edit", _BODY), body=ModelTagIn),
    _route(
        R + "/delete-tag",
        delete_model_tag,
        "DELETE",
        on_model("edit", _BODY),
        body=DeleteModelTagIn,
    ),
    _route(R + "/alias", set_alias, "POST", on_model("edit", _BODY), body=AliasIn),
    _route(R + "/alias", delete_alias, "DELETE", on_model("edit", _BODY), body=AliasIn),
    _route(R + "/alias", get_alias, "GET", on_model("read", _QUERY), query=AliasIn),
    _route(
        R + "/get-latest-versions", latest_versions, "POST", on_model("read", _BODY), body=LatestIn
    ),
    _route(
        R + "/get-latest-versions", latest_versions, "GET", on_model("read", _QUERY), query=LatestIn
    ),
    _route(V + "/create", create_version, "POST", on_model("edit", _BODY), body=CreateVersionIn),
    _route(V + "/get", get_version, "GET", on_model("read", _QUERY), query=VersionIn),
    _route(V + "/update", update_version, "PATCH", on_model("edit", _BODY), body=UpdateVersionIn),
    _route(V + "/delete", delete_version, "DELETE", on_model("manage", _BODY), body=VersionIn),
    _route(V + "/search", search_versions, "GET", SIGNED_IN, query=SearchIn),
    _route(V + "/get-download-uri", download_uri, "GET", on_model("read", _QUERY), query=VersionIn),
    _route(V + "/set-tag", set_version_tag, "POST", on_model("edit", _BODY), body=VersionTagIn),
    _route(
        V + "/delete-tag",
        delete_version_tag,
        "DELETE",
        on_model("edit", _BODY),
        body=DeleteVersionTagIn,
    ),
]
