"""What an MLflow request names, and the caller's permission on it.

MLflow's client names experiments by string id (``"0"`` is its default
experiment), runs by ``run_id`` or ``run_uuid``, logged models by ``m-<hex>``
and files by artifact paths. Each finder here turns one of those into the
resource it is, checks the caller may see it (a 404 otherwise, as if it did
not exist) and returns the caller's permission for the route's
:func:`~modelyard.server.access.on_resource` check. Artifact paths map to
exactly one owner; a path that names none is refused, never given a default
(MLflow's ``DELETE artifacts/.`` and ``GET artifacts?path=`` failures).

Path grammar under ``mlflow-artifacts:/``:

==========================================  =========================================
``<experiment id>/<run id>/artifacts/...``  a run's files
``<experiment id>/models/<m-id>/artifacts``  a logged model's files
``registry/<model name>/<version>/...``     a registered version's files (read only)
==========================================  =========================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.errors import ExperimentNotFound
from modelyard.server._routing import Call, run_not_found
from modelyard.server.errors import ApiError
from modelyard.store.access import Permission, at_least
from modelyard.uri import validate_name

__all__ = [
    "Target",
    "artifact_target",
    "experiment",
    "experiments_in",
    "logged_model",
    "run",
]

DEFAULT_EXPERIMENT = "Default"  # the experiment MLflow's client calls "0"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_LOGGED = re.compile(r"^m-[0-9a-f]{32}$")
Finder = Callable[[Call], tuple[Permission, str]]


def _missing(what: str, field: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} does not exist", field=field)


def experiment_id_of(call: Call, raw: str | None) -> int:
    """Our experiment id for MLflow's string id (``"0"``/empty: the default experiment)."""
    if raw in (None, "", "0"):
        store = call.state.metadata
        try:
            return store.get_experiment(DEFAULT_EXPERIMENT).experiment_id
        except ExperimentNotFound:
            if call.user.role == "reader":
                raise _missing("Experiment with id=0", "experiment_id") from None
            return store.get_or_create_experiment(DEFAULT_EXPERIMENT).experiment_id
    if not raw.isdigit() or len(raw) > 12:
        raise ApiError(
            400,
            "invalid_value",
            f"experiment_id {raw!r} is not an experiment id",
            field="experiment_id",
        )
    return int(raw)


def _experiment_permission(call: Call, experiment_id: int, label: str) -> Permission:
    found, permission = call.state.auth.experiment_access(call.user, experiment_id=experiment_id)
    if found is None or permission == "none":
        raise _missing(label, "experiment_id")
    return permission


def experiment(where: str) -> Finder:
    """The experiment whose MLflow id is at ``where`` (``body.x`` / ``query.x``)."""

    def find(call: Call) -> tuple[Permission, str]:
        raw = call.param(where)
        experiment_id = experiment_id_of(call, raw)
        label = f"Experiment with id={raw or '0'}"
        permission = _experiment_permission(call, experiment_id, label)
        call.path["experiment_id"] = experiment_id
        return permission, label

    return find


def experiments_in(call: Call, raw: list[str]) -> list[int]:
    """Experiment ids of a search: those the caller may see (a hidden one is skipped)."""
    out = []
    for one in raw:
        experiment_id = experiment_id_of(call, one)
        found, permission = call.state.auth.experiment_access(
            call.user, experiment_id=experiment_id
        )
        if found is not None and permission != "none":
            out.append(experiment_id)
    return out


def run_id_of(call: Call, source: str) -> str:
    """``run_id`` (or MLflow's older ``run_uuid``) from the body or the query."""
    value = getattr(call.body if source == "body" else call.query, "run_id", None)
    value = value or getattr(call.body if source == "body" else call.query, "run_uuid", None)
    if not value:
        raise ApiError(
            400, "invalid_value", "Missing value for required parameter 'run_id'", field="run_id"
        )
    if not _RUN_ID.match(value):
        raise ApiError(400, "invalid_value", f"run id {value!r} is malformed", field="run_id")
    return str(value)


def run(source: str) -> Finder:
    """The run named by ``run_id``/``run_uuid`` in the ``body`` or the ``query``."""

    def find(call: Call) -> tuple[Permission, str]:
        run_id = run_id_of(call, source)
        exists, permission = call.state.auth.run_access(call.user, run_id)
        if not exists or permission == "none":
            raise run_not_found(call, run_id)
        call.path["run_id"] = run_id
        return permission, f"run {run_id}"

    return find


def logged_model(where: str = "logged_model") -> Finder:
    """The logged model whose id is at ``where``; the permission is its experiment's."""

    def find(call: Call) -> tuple[Permission, str]:
        model_id = call.param(where)
        if not isinstance(model_id, str) or not _LOGGED.match(model_id):
            raise ApiError(
                400,
                "invalid_value",
                f"logged model id {model_id!r} is malformed",
                field="model_id",
            )
        label = f"Logged model with ID '{model_id}'"
        experiment_id, permission = call.state.auth.logged_model_access(call.user, model_id)
        if experiment_id is None or permission == "none":
            raise _missing(label, "model_id")
        call.path["logged_model"] = model_id
        call.path["experiment_id"] = experiment_id
        return permission, label

    return find


@dataclass(frozen=True)
class Target:
    """What an artifact path names: an owner and a path inside its files."""

    kind: Literal["run", "logged", "version"]
    #: the run id, logged model id or model name
    owner: str
    #: the path inside the owner's files (``""``: its root)
    rest: str
    experiment_id: int | None = None
    version: int | None = None


def parse_target(path: str) -> Target:
    """The owner of an artifact path (400 for a path that names none)."""
    parts = path.split("/") if path else []
    if (
        len(parts) >= 3
        and parts[0].isdigit()
        and _RUN_ID.match(parts[1])
        and parts[2] == "artifacts"
    ):
        return Target("run", parts[1], "/".join(parts[3:]), int(parts[0]))
    if (
        len(parts) >= 4
        and parts[0].isdigit()
        and parts[1] == "models"
        and _LOGGED.match(parts[2])
        and parts[3] == "artifacts"
    ):
        return Target("logged", parts[2], "/".join(parts[4:]), int(parts[0]))
    if len(parts) >= 3 and parts[0] == "registry" and parts[2].isdigit() and len(parts[2]) < 10:
        name = validate_name(parts[1])
        return Target("version", name, "/".join(parts[3:]), version=int(parts[2]))
    raise ApiError(
        404,
        "not_found",
        f"artifact path {path!r} names no run, logged model or model version of this server",
        field="path",
    )


def artifact_target(where: str) -> Finder:
    """The owner of the artifact path at ``where``, checked: its experiment (a run's, a
    logged model's) must be the one the path names; a version is its model's."""

    def find(call: Call) -> tuple[Permission, str]:
        raw = call.param(where)
        target = parse_target(raw or "")
        auth = call.state.auth
        label = f"artifact path {raw!r}"
        permission: Permission
        if target.kind == "run":
            exists, permission = auth.run_access(call.user, target.owner)
            if exists and permission != "none":
                experiment_id = call.state.metadata.get_run(target.owner).experiment_id
                exists = experiment_id == target.experiment_id
            if not exists or permission == "none":
                raise _missing(label, "path")
        elif target.kind == "logged":
            owner, permission = auth.logged_model_access(call.user, target.owner)
            if owner is None or permission == "none" or owner != target.experiment_id:
                raise _missing(label, "path")
        else:
            model_id, permission = auth.model_access(call.user, target.owner)
            if model_id is None or permission == "none":
                raise _missing(label, "path")
        call.path["target"] = target
        return permission, label

    return find


def may(call: Call, need: Permission) -> bool:
    """Whether the permission the route's check found is at least ``need``."""
    return call.permission is not None and at_least(call.permission, need)


def body_or_query(call: Call) -> Any:
    """The request's input, whichever half carries it."""
    return call.body if call.body is not None else call.query
