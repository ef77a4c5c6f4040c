"""``/api/v1/models/...`` and ``/api/v1/versions``: the registry over HTTP.

A new version is checked on the server before anything is written: its
manifest blob and every blob the manifest names must be stored with the
sizes it says; its ``source`` must be the yard's own (the digest itself, a
run's directory or another version) and must really hold those files. A
version is immutable: no route changes its files.
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import AlreadyExists, InvalidURI, ModelNotFound, ModelyardError
from modelyard.format.content import ContentManifest
from modelyard.server._pages import page
from modelyard.server._routing import ApiRoute, Call, run_not_found
from modelyard.server.access import SIGNED_IN, on_model, role
from modelyard.server.errors import ApiError, forbidden
from modelyard.store.rest import wire
from modelyard.store.rest.wire import Out, Strict
from modelyard.uri import ModelsURI, RunsURI, parse_uri, validate_alias, validate_name

__all__ = ["ROUTES"]

P = wire.API_PREFIX
_MAX_FILES = 100_000
_MAX_MANIFEST_BYTES = 64 * 1024 * 1024


# -- messages ----------------------------------------------------------------------------


class CreateModel(Strict, kw_only=True):
    name: str
    description: str | None = None
    tags: dict[str, str] | None = None
    exist_ok: bool = False


class SearchQuery(Strict, kw_only=True):
    filter: str | None = None
    order_by: list[str] = []
    max_results: int = 100
    page_token: str | None = None


class Describe(Strict, kw_only=True):
    description: str | None


class Rename(Strict, kw_only=True):
    new_name: str


class TagValue(Strict, kw_only=True):
    value: str


class CreateVersion(Strict, kw_only=True):
    digest: str
    source: str
    run_id: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None


class ResolveQuery(Strict, kw_only=True):
    version: int | None = None
    alias: str | None = None


class SetAlias(Strict, kw_only=True):
    version: int
    #: the move's signed alias record (a DSSE envelope's JSON), checked by the store
    record: str | None = None


class AliasSequenceOut(Out, kw_only=True):
    yard_id: str | None = None
    sequence: int = 0


class ModelPage(Out, kw_only=True):
    models: list[wire.ModelOut]
    next_page_token: str | None = None


class VersionPage(Out, kw_only=True):
    versions: list[wire.VersionOut]
    next_page_token: str | None = None


class History(Out, kw_only=True):
    changes: list[wire.AliasChangeOut]


class Files(Out, kw_only=True):
    files: list[wire.FileOut]


# -- registered models -------------------------------------------------------------------


def create_model(call: Call) -> wire.ModelOut:
    """Create a registered model (its creator gets ``manage`` on it)."""
    body: CreateModel = call.body
    name = validate_name(body.name)
    tags = _tags(body.tags)
    store, auth = call.state.metadata, call.state.auth
    try:
        made = store.create_registered_model(name, description=body.description, tags=tags)
    except AlreadyExists:
        model_id, permission = auth.model_access(call.user, name)
        if not body.exist_ok or model_id is None or permission == "none":
            raise
        return wire.model_out(store.get_registered_model(name))
    _grant_creator(call, name)
    call.audit("model.create", f"models:/{name}", description=body.description, tags=tags)
    return wire.model_out(made)


def search_models(call: Call) -> ModelPage:
    """Registered models matching a filter, as far as the caller may see."""
    q: SearchQuery = call.query or SearchQuery()
    found, token = page(
        lambda limit, offset: call.state.metadata.search_registered_models(
            q.filter, q.order_by or None, limit, offset=offset, visible_to=_scope(call)
        ),
        token=q.page_token,
        query=("models", q.filter, q.order_by),
        requested=q.max_results,
        cap=call.state.settings.max_page["models"],
    )
    return ModelPage(models=[wire.model_out(m) for m in found], next_page_token=token)


def get_model(call: Call) -> wire.ModelOut:
    """One registered model with its tags, aliases and protected aliases."""
    return wire.model_out(call.state.metadata.get_registered_model(call.path["name"]))


def update_model(call: Call) -> wire.ModelOut:
    """Set (or clear) a registered model's description."""
    name = call.path["name"]
    old = call.state.metadata.get_registered_model(name).description
    body: Describe = call.body
    done = call.state.metadata.update_registered_model(name, body.description)
    call.audit("model.describe", f"models:/{name}", **{"from": old, "to": body.description})
    return wire.model_out(done)


def rename_model(call: Call) -> wire.ModelOut:
    """Give a registered model a new name (grants, versions and history follow its id)."""
    name = call.path["name"]
    body: Rename = call.body
    new_name = validate_name(body.new_name)
    done = call.state.metadata.rename_registered_model(name, new_name)
    call.audit("model.rename", f"models:/{name}", **{"from": name, "to": new_name})
    return wire.model_out(done)


def delete_model(call: Call) -> None:
    """Delete a registered model with its versions, aliases, history and grants."""
    name = call.path["name"]
    call.state.metadata.delete_registered_model(name)
    call.audit("model.delete", f"models:/{name}")


def set_model_tag(call: Call) -> None:
    """Set a tag on a registered model."""
    name, key = call.path["name"], call.path["key"]
    body: TagValue = call.body
    call.state.metadata.set_registered_model_tag(name, key, body.value)
    call.audit("model.tag", f"models:/{name}", key=key, value=body.value)


def delete_model_tag(call: Call) -> None:
    """Remove a tag from a registered model."""
    name, key = call.path["name"], call.path["key"]
    call.state.metadata.delete_registered_model_tag(name, key)
    call.audit("model.untag", f"models:/{name}", key=key)


# -- versions ------------------------------------------------------------------------------


def create_version(call: Call) -> wire.VersionOut:
    """Register a new version: every blob must be stored, the source must be the yard's own."""
    name = call.path["name"]
    body: CreateVersion = call.body
    digest = _digest(body.digest)
    manifest = _stored_manifest(call, digest)
    run_id = _check_source(call, body.source, digest, body.run_id)
    tags = _tags(body.tags)
    store = call.state.metadata
    if call.model_id is None:  # the access check let a writer create it
        try:
            store.create_registered_model(name)
            _grant_creator(call, name)
            call.audit("model.create", f"models:/{name}")
        except AlreadyExists:  # made meanwhile by someone else: their rules apply
            model_id, permission = call.state.auth.model_access(call.user, name)
            if model_id is None or permission in ("none", "read"):
                raise forbidden(f"edit permission on registered model {name!r} is needed") from None
    made = store.create_model_version(
        name,
        digest=digest,
        source=body.source,
        run_id=run_id,
        description=body.description,
        tags=tags,
        created_by=call.user.name,
        files=manifest.entries,
    )
    call.audit(
        "version.create", f"models:/{name}/{made.version}", digest=digest, source=body.source
    )
    return wire.version_out(made)


def get_version(call: Call) -> wire.VersionOut:
    """One version."""
    return wire.version_out(
        call.state.metadata.get_model_version(call.path["name"], call.path["version"])
    )


def version_files(call: Call) -> Files:
    """A version's files: path, size and sha256 of each."""
    version = call.state.metadata.get_model_version(call.path["name"], call.path["version"])
    from modelyard.store.trees import read_manifest

    manifest = read_manifest(call.state.artifacts, version.digest)
    return Files(files=[wire.file_out(f) for f in manifest.entries])


def search_versions(call: Call) -> VersionPage:
    """Versions matching a filter, as far as the caller may see."""
    q: SearchQuery = call.query or SearchQuery(max_results=1000)
    found, token = page(
        lambda limit, offset: call.state.metadata.search_model_versions(
            q.filter, q.order_by or None, limit, offset=offset, visible_to=_scope(call)
        ),
        token=q.page_token,
        query=("versions", q.filter, q.order_by),
        requested=q.max_results,
        cap=call.state.settings.max_page["versions"],
    )
    return VersionPage(versions=[wire.version_out(v) for v in found], next_page_token=token)


def update_version(call: Call) -> wire.VersionOut:
    """Set (or clear) a version's description (its files never change)."""
    name, version = call.path["name"], call.path["version"]
    body: Describe = call.body
    done = call.state.metadata.update_model_version(name, version, body.description)
    call.audit("version.describe", f"models:/{name}/{version}", to=body.description)
    return wire.version_out(done)


def delete_version(call: Call) -> None:
    """Delete a version and the aliases on it."""
    name, version = call.path["name"], call.path["version"]
    held = call.state.metadata.get_model_version(name, version).aliases
    call.state.metadata.delete_model_version(name, version, user=call.user.name)
    call.audit("version.delete", f"models:/{name}/{version}", aliases=list(held))


def set_version_tag(call: Call) -> None:
    """Set a tag on a version."""
    name, version, key = call.path["name"], call.path["version"], call.path["key"]
    body: TagValue = call.body
    call.state.metadata.set_model_version_tag(name, version, key, body.value)
    call.audit("version.tag", f"models:/{name}/{version}", key=key, value=body.value)


def delete_version_tag(call: Call) -> None:
    """Remove a tag from a version."""
    name, version, key = call.path["name"], call.path["version"], call.path["key"]
    call.state.metadata.delete_model_version_tag(name, version, key)
    call.audit("version.untag", f"models:/{name}/{version}", key=key)


def resolve(call: Call) -> wire.ResolvedOut:
    """What ``models:/name/<version>``, ``@alias`` or ``/latest`` points at: one query."""
    q: ResolveQuery = call.query or ResolveQuery()
    if q.version is not None and q.alias is not None:
        raise ApiError(400, "invalid_request", "give version or alias, not both", field="alias")
    alias = validate_alias(q.alias) if q.alias is not None else None
    if q.version is not None and q.version < 1:
        raise ApiError(400, "invalid_value", "version must be a positive integer", field="version")
    found = call.state.metadata.resolve(call.path["name"], version=q.version, alias=alias)
    return wire.resolved_out(found)


# -- aliases ----------------------------------------------------------------------------------


def get_alias(call: Call) -> wire.VersionOut:
    """The version an alias points at."""
    return wire.version_out(
        call.state.metadata.get_model_version_by_alias(call.path["name"], call.path["alias"])
    )


def set_alias(call: Call) -> None:
    """Point an alias at a version (a protected alias needs ``manage``)."""
    name, alias = call.path["name"], call.path["alias"]
    body: SetAlias = call.body
    if body.version < 1:
        raise ApiError(400, "invalid_value", "version must be a positive integer", field="version")
    _check_unprotected(call, name, alias, "moving")
    old = _current(call, name, alias)
    call.state.metadata.set_alias(
        name, alias, body.version, user=call.user.name, record=body.record
    )
    if old != body.version:
        call.audit("alias.set", f"models:/{name}@{alias}", **{"from": old, "to": body.version})


def delete_alias(call: Call) -> None:
    """Remove an alias (a protected alias needs ``manage``)."""
    name, alias = call.path["name"], call.path["alias"]
    _check_unprotected(call, name, alias, "deleting")
    old = _current(call, name, alias)
    call.state.metadata.delete_alias(name, alias, user=call.user.name)
    call.audit("alias.delete", f"models:/{name}@{alias}", **{"from": old, "to": None})


def alias_sequence(call: Call) -> AliasSequenceOut:
    """The yard's id and the sequence of the alias's last move, to sign the next one."""
    found = call.state.metadata.alias_sequence(call.path["name"], call.path["alias"])
    return AliasSequenceOut(yard_id=found.yard_id, sequence=found.sequence)


def alias_history(call: Call) -> History:
    """Every move of an alias: who, when, from and to which version."""
    changes = call.state.metadata.get_alias_history(call.path["name"], call.path["alias"])
    return History(changes=[wire.change_out(c) for c in changes])


def protect_alias(call: Call) -> None:
    """Mark an alias as protected: only ``manage`` may move or delete it."""
    name, alias = call.path["name"], call.path["alias"]
    assert call.model_id is not None
    if call.state.auth.protect_alias(call.model_id, alias, True):
        call.audit("alias.protect", f"models:/{name}@{alias}")


def unprotect_alias(call: Call) -> None:
    """Stop protecting an alias."""
    name, alias = call.path["name"], call.path["alias"]
    assert call.model_id is not None
    if call.state.auth.protect_alias(call.model_id, alias, False):
        call.audit("alias.unprotect", f"models:/{name}@{alias}")


# -- helpers ------------------------------------------------------------------------------------


def _scope(call: Call) -> int | None:
    return None if call.user.is_admin else call.user.user_id


def _grant_creator(call: Call, name: str) -> None:
    model_id, _ = call.state.auth.model_access(call.user, name)
    if model_id is not None and not call.user.is_admin:
        call.state.auth.set_grant("model", model_id, call.user.name, "manage")


def _tags(tags: dict[str, str] | None) -> dict[str, str] | None:
    if not tags:
        return None
    return {validate_name(k, "tag key"): v for k, v in tags.items()}


def _digest(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ApiError(
            400, "invalid_value", f"digest {digest!r} is not sha256:<64 hex>", field="digest"
        )
    return digest


def _stored_manifest(call: Call, digest: str) -> ContentManifest:
    """The version's manifest, read from the store, with every blob it names present."""
    artifacts = call.state.artifacts
    hexpart = digest.split(":", 1)[1]
    info = artifacts.stat(hexpart)
    if info is None:
        raise ApiError(
            400, "blob_missing", f"the manifest blob {digest} was never uploaded", field="digest"
        )
    if info.size > _MAX_MANIFEST_BYTES:
        raise ApiError(413, "payload_too_large", "the manifest is too large", field="digest")
    try:
        text = artifacts.read_bytes(hexpart).decode("utf-8")
        # named by its digest only: the store's location is the server's business
        manifest = ContentManifest.from_text(text, source=digest)
    except (ModelyardError, ValueError, UnicodeDecodeError):
        raise ApiError(
            400,
            "invalid_manifest",
            f"the manifest blob {digest} is not a content manifest (lines of "
            "'<sha256>  <size>  <path>')",
            field="digest",
        ) from None
    if manifest.digest != digest:
        raise ApiError(
            400,
            "invalid_manifest",
            f"the manifest blob {digest} is not in canonical form (sorted by path, one "
            "line per file, as modelyard writes it)",
            field="digest",
        )
    if len(manifest.entries) > _MAX_FILES:
        raise ApiError(413, "payload_too_large", f"a version may hold at most {_MAX_FILES} files")
    if "MLmodel" not in {e.path for e in manifest.entries}:
        raise ApiError(400, "invalid_manifest", "the version has no MLmodel file", field="digest")
    missing = []
    for entry in manifest.entries:
        found = artifacts.stat(entry.sha256)
        if found is None or found.size != entry.size:
            missing.append(entry.path)
    if missing:
        shown = ", ".join(repr(p) for p in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ApiError(
            400,
            "blob_missing",
            f"{len(missing)} file(s) of the version were never uploaded: {shown}",
            field="digest",
            detail={"paths": missing[:100]},
        )
    return manifest


def _check_source(call: Call, source: str, digest: str, run_id: str | None) -> str | None:
    """The run id to record; 400 unless ``source`` is the yard's own and holds ``digest``."""
    if source.startswith("sha256:"):
        if source != digest:
            raise ApiError(
                400,
                "invalid_value",
                "a sha256: source must be the version's digest",
                field="source",
            )
        if run_id is not None:
            _readable_run(call, run_id)
        return run_id
    try:
        target = parse_uri(source)
    except InvalidURI as exc:
        raise ApiError(400, "invalid_value", f"source: {exc.reason}", field="source") from None
    if isinstance(target, RunsURI):
        from modelyard.store.trees import run_tree

        if run_id is not None and run_id != target.run_id:
            raise ApiError(
                400, "invalid_value", "run_id differs from the source's run", field="run_id"
            )
        _readable_run(call, target.run_id)
        try:
            tree = run_tree(call.state.metadata, target.run_id, target.path, uri=source)
        except ModelNotFound as exc:
            raise ApiError(400, "invalid_value", f"source: {exc.reason}", field="source") from None
        if tree.digest != digest:
            raise ApiError(
                400,
                "invalid_value",
                f"{source} does not hold the files of {digest}",
                field="source",
            )
        return target.run_id
    if isinstance(target, ModelsURI) and target.version is not None:
        from modelyard.store.trees import read_manifest, subtree

        model_id, permission = call.state.auth.model_access(call.user, target.name)
        if model_id is None or permission == "none":
            raise call.state.auth.model_not_found(call.user, target.name)
        found = call.state.metadata.get_model_version(target.name, target.version)
        held = found.digest
        if target.subpath:
            held = subtree(read_manifest(call.state.artifacts, found.digest), target.subpath).digest
        if held != digest:
            raise ApiError(
                400,
                "invalid_value",
                f"{source} does not hold the files of {digest}",
                field="source",
            )
        return run_id if run_id is not None else found.run_id
    raise ApiError(
        400,
        "invalid_value",
        "source must be the version's digest, runs:/<run_id>/<path> or "
        "models:/<name>/<version> in this yard",
        field="source",
    )


def _readable_run(call: Call, run_id: str) -> None:
    exists, permission = call.state.auth.run_access(call.user, run_id)
    if not exists or permission == "none":
        raise run_not_found(call, run_id)


def _check_unprotected(call: Call, name: str, alias: str, doing: str) -> None:
    assert call.model_id is not None
    if call.permission != "manage" and call.state.auth.is_protected(call.model_id, alias):
        raise forbidden(
            f"alias {alias!r} of registered model {name!r} is protected: {doing} it needs "
            f"manage permission; {call.user.name!r} has {call.permission}"
        )


def _current(call: Call, name: str, alias: str) -> int | None:
    aliases: dict[str, int] = call.state.metadata.get_registered_model(name).aliases
    return aliases.get(alias)


def _route(path: str, handler: Any, method: str, access: Any, **kw: Any) -> ApiRoute:
    return ApiRoute(P + path, handler, method=method, access=access, **kw)


M = "/models/{name}"
V = M + "/versions/{version}"
A = M + "/aliases/{alias}"

ROUTES = [
    _route(
        "/models",
        create_model,
        "POST",
        role("writer"),
        body=CreateModel,
        status=201,
        response=wire.ModelOut,
    ),
    _route("/models", search_models, "GET", SIGNED_IN, query=SearchQuery, response=ModelPage),
    _route(M, get_model, "GET", on_model("read"), response=wire.ModelOut),
    _route(M, update_model, "PATCH", on_model("edit"), body=Describe, response=wire.ModelOut),
    _route(M, delete_model, "DELETE", on_model("manage")),
    _route(
        M + "/rename", rename_model, "POST", on_model("manage"), body=Rename, response=wire.ModelOut
    ),
    _route(M + "/tags/{key}", set_model_tag, "PUT", on_model("edit"), body=TagValue),
    _route(M + "/tags/{key}", delete_model_tag, "DELETE", on_model("edit")),
    _route(
        M + "/resolve",
        resolve,
        "GET",
        on_model("read"),
        query=ResolveQuery,
        response=wire.ResolvedOut,
    ),
    _route(
        M + "/versions",
        create_version,
        "POST",
        on_model("edit", create=True),
        body=CreateVersion,
        status=201,
        response=wire.VersionOut,
    ),
    _route(V, get_version, "GET", on_model("read"), response=wire.VersionOut),
    _route(V, update_version, "PATCH", on_model("edit"), body=Describe, response=wire.VersionOut),
    _route(V, delete_version, "DELETE", on_model("manage")),
    _route(V + "/files", version_files, "GET", on_model("read"), response=Files),
    _route(V + "/tags/{key}", set_version_tag, "PUT", on_model("edit"), body=TagValue),
    _route(V + "/tags/{key}", delete_version_tag, "DELETE", on_model("edit")),
    _route("/versions", search_versions, "GET", SIGNED_IN, query=SearchQuery, response=VersionPage),
    _route(A, get_alias, "GET", on_model("read"), response=wire.VersionOut),
    _route(A, set_alias, "PUT", on_model("edit"), body=SetAlias),
    _route(A, delete_alias, "DELETE", on_model("edit")),
    _route(A + "/history", alias_history, "GET", on_model("read"), response=History),
    _route(A + "/sequence", alias_sequence, "GET", on_model("read"), response=AliasSequenceOut),
    _route(M + "/protected-aliases/{alias}", protect_alias, "PUT", on_model("manage")),
    _route(M + "/protected-aliases/{alias}", unprotect_alias, "DELETE", on_model("manage")),
]


# -- import with a given number (modelyard import mlflow) ---------------------------------


class ImportVersion(CreateVersion, kw_only=True):
    created_at: int | None = None


def import_version(call: Call) -> wire.VersionOut:
    """Register version ``{version}`` with exactly that number (a migration keeps numbers);
    the same checks as a new version, and a repeat with the same digest returns it."""
    name = call.path["name"]
    number: int = call.path["version"]
    body: ImportVersion = call.body
    digest = _digest(body.digest)
    manifest = _stored_manifest(call, digest)
    run_id = _check_source(call, body.source, digest, body.run_id)
    store = call.state.metadata
    if call.model_id is None:
        try:
            store.create_registered_model(name)
            _grant_creator(call, name)
            call.audit("model.create", f"models:/{name}")
        except AlreadyExists:
            model_id, permission = call.state.auth.model_access(call.user, name)
            if model_id is None or permission in ("none", "read"):
                raise forbidden(f"edit permission on registered model {name!r} is needed") from None
    made = store.import_model_version(
        name,
        number,
        digest=digest,
        source=body.source,
        run_id=run_id,
        description=body.description,
        tags=_tags(body.tags),
        created_by=call.user.name,
        files=manifest.entries,
        created_at=body.created_at,
    )
    call.audit("version.import", f"models:/{name}/{number}", digest=digest, source=body.source)
    return wire.version_out(made)


ROUTES.append(
    _route(
        V,
        import_version,
        "PUT",
        on_model("edit", create=True),
        body=ImportVersion,
        response=wire.VersionOut,
    )
)
