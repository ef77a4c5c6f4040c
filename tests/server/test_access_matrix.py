"""Every route of the server, as every kind of caller: the exact status each one gets.

The table below is the access policy written out by hand (``store/access.py``
says it in prose); it is not derived from the routes' own declarations. The
test walks the app's route table: a route that is not in the table fails it,
so nothing new can be reachable without someone deciding who may call it.

Callers: no token, a malformed token, a revoked token, and tokens of

- ``rita``  reader
- ``wanda`` writer with no grant on anything
- ``walt``  writer with ``edit`` on model ``m``
- ``mia``   writer with ``manage`` on model ``m`` and on experiment ``e``
- ``admin``
- ``hugo``  reader with a ``none`` grant on ``m`` and ``e`` (they are hidden from him)

State before each allowed write (reset, so no case depends on another):
model ``m`` with versions 1 and 2, ``@champion`` -> 1 (protected) and
``@staging`` -> 1, a tag ``k``; experiment ``e`` with run ``R`` whose files are
the model's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.server.app import ServerApp
from modelyard.store.sql.auth import SqlAuthStore
from modelyard.store.trees import store_directory
from modelyard.yard import Yard
from tests._server import YardServer

CALLERS = ("anon", "bad", "revoked", "rita", "wanda", "walt", "mia", "admin", "hugo")
SIGNED = ("rita", "wanda", "walt", "mia", "admin", "hugo")
NO_AUTH = {"anon": 401, "bad": 401, "revoked": 401}


def everyone(status: int) -> dict[str, int]:
    """Public: the same for every caller, tokens or not."""
    return dict.fromkeys(CALLERS, status)


def signed_in(status: int) -> dict[str, int]:
    """Any valid token."""
    return {**NO_AUTH, **dict.fromkeys(SIGNED, status)}


def admins(status: int) -> dict[str, int]:
    """Only admins; others are known but refused."""
    return {**signed_in(403), "admin": status}


def writers(status: int) -> dict[str, int]:
    """Writers and admins (readers refused)."""
    return {**signed_in(403), **dict.fromkeys(("wanda", "walt", "mia", "admin"), status)}


def model(level: str, status: int) -> dict[str, int]:
    """``level`` on model ``m``: hidden from hugo (404), refused (403) below the level."""
    have = {"rita": "read", "wanda": "read", "walt": "edit", "mia": "manage", "admin": "manage"}
    rank = ["read", "edit", "manage"]
    out = {**NO_AUTH, "hugo": 404}
    for who, perm in have.items():
        out[who] = status if rank.index(perm) >= rank.index(level) else 403
    return out


def experiment(level: str, status: int) -> dict[str, int]:
    """``level`` on experiment ``e`` (writers edit experiments by default)."""
    have = {"rita": "read", "wanda": "edit", "walt": "edit", "mia": "manage", "admin": "manage"}
    rank = ["read", "edit", "manage"]
    out = {**NO_AUTH, "hugo": 404}
    for who, perm in have.items():
        out[who] = status if rank.index(perm) >= rank.index(level) else 403
    return out


@dataclass
class World:
    """Names the requests need: ids, hashes, tokens."""

    digest: str
    blob: str
    experiment_id: int
    run_id: str
    spare_token: str
    logged_model: str = ""


Request = Callable[[World, str], tuple[str, Any]]


def fixed(path: str, body: Any = None) -> Request:
    return lambda w, who: (path.format(w=w, who=who), body)


def with_body(path: str, make: Callable[[World, str], Any]) -> Request:
    return lambda w, who: (path.format(w=w, who=who), make(w, who))


P = "/api/v1"
M = P + "/models/m"

# (method, route path) -> (the request, expected status by caller)
TABLE: dict[tuple[str, str], tuple[Request, dict[str, int]]] = {
    ("GET", "/health"): (fixed("/health"), everyone(200)),
    ("GET", "/version"): (fixed("/version"), everyone(200)),
    ("GET", "/openapi.json"): (fixed("/openapi.json"), signed_in(200)),
    ("GET", P + "/whoami"): (fixed(P + "/whoami"), signed_in(200)),
    ("POST", P + "/users"): (
        with_body(P + "/users", lambda w, who: {"name": f"new-{who}", "role": "reader"}),
        admins(201),
    ),
    ("GET", P + "/users"): (fixed(P + "/users"), admins(200)),
    ("PATCH", P + "/users/{user}"): (fixed(P + "/users/rita", {"role": "reader"}), admins(200)),
    ("POST", P + "/tokens"): (fixed(P + "/tokens", {"user": "rita"}), admins(201)),
    ("GET", P + "/tokens"): (fixed(P + "/tokens"), signed_in(200)),
    # the spare token is the admin's: anyone else is told there is no such token of theirs
    ("DELETE", P + "/tokens/{token_id}"): (
        fixed(P + "/tokens/{w.spare_token}"),
        {**signed_in(404), "admin": 204},
    ),
    ("GET", P + "/grants"): (fixed(P + "/grants"), signed_in(200)),
    ("GET", P + "/audit"): (fixed(P + "/audit"), admins(200)),
    ("GET", P + "/models/{name}/grants"): (fixed(M + "/grants"), model("manage", 200)),
    ("PUT", P + "/models/{name}/grants/{user}"): (
        fixed(M + "/grants/rita", {"permission": "read"}),
        model("manage", 204),
    ),
    ("DELETE", P + "/models/{name}/grants/{user}"): (
        fixed(M + "/grants/rita"),
        model("manage", 204),
    ),
    ("GET", P + "/experiments/{experiment}/grants"): (
        fixed(P + "/experiments/e/grants"),
        experiment("manage", 200),
    ),
    ("PUT", P + "/experiments/{experiment}/grants/{user}"): (
        fixed(P + "/experiments/e/grants/rita", {"permission": "read"}),
        experiment("manage", 204),
    ),
    ("DELETE", P + "/experiments/{experiment}/grants/{user}"): (
        fixed(P + "/experiments/e/grants/rita"),
        experiment("manage", 204),
    ),
    # -- registry
    ("POST", P + "/models"): (
        with_body(P + "/models", lambda w, who: {"name": f"fresh-{who}"}),
        writers(201),
    ),
    ("GET", P + "/models"): (fixed(P + "/models"), signed_in(200)),
    ("GET", P + "/versions"): (fixed(P + "/versions"), signed_in(200)),
    ("GET", P + "/models/{name}"): (fixed(M), model("read", 200)),
    ("PATCH", P + "/models/{name}"): (fixed(M, {"description": "d"}), model("edit", 200)),
    ("DELETE", P + "/models/{name}"): (fixed(M), model("manage", 204)),
    ("POST", P + "/models/{name}/rename"): (
        fixed(M + "/rename", {"new_name": "m2"}),
        model("manage", 200),
    ),
    ("PUT", P + "/models/{name}/tags/{key}"): (
        fixed(M + "/tags/k", {"value": "v"}),
        model("edit", 204),
    ),
    ("DELETE", P + "/models/{name}/tags/{key}"): (fixed(M + "/tags/k"), model("edit", 204)),
    ("GET", P + "/models/{name}/resolve"): (fixed(M + "/resolve"), model("read", 200)),
    ("POST", P + "/models/{name}/versions"): (
        with_body(M + "/versions", lambda w, who: {"digest": w.digest, "source": w.digest}),
        model("edit", 201),
    ),
    ("GET", P + "/models/{name}/versions/{version}"): (
        fixed(M + "/versions/1"),
        model("read", 200),
    ),
    ("PATCH", P + "/models/{name}/versions/{version}"): (
        fixed(M + "/versions/1", {"description": "d"}),
        model("edit", 200),
    ),
    ("DELETE", P + "/models/{name}/versions/{version}"): (
        fixed(M + "/versions/2"),
        model("manage", 204),
    ),
    # import with a given number: version 1 again with its own files is a repeat (200)
    ("PUT", P + "/models/{name}/versions/{version}"): (
        with_body(M + "/versions/1", lambda w, who: {"digest": w.digest, "source": w.digest}),
        model("edit", 200),
    ),
    ("GET", P + "/models/{name}/versions/{version}/files"): (
        fixed(M + "/versions/1/files"),
        model("read", 200),
    ),
    ("PUT", P + "/models/{name}/versions/{version}/tags/{key}"): (
        fixed(M + "/versions/1/tags/k", {"value": "v"}),
        model("edit", 204),
    ),
    ("DELETE", P + "/models/{name}/versions/{version}/tags/{key}"): (
        fixed(M + "/versions/1/tags/k"),
        model("edit", 204),
    ),
    ("GET", P + "/models/{name}/aliases/{alias}"): (
        fixed(M + "/aliases/champion"),
        model("read", 200),
    ),
    # champion is protected: moving or deleting it needs manage, even for an editor
    ("PUT", P + "/models/{name}/aliases/{alias}"): (
        fixed(M + "/aliases/champion", {"version": 2}),
        model("manage", 204),
    ),
    ("DELETE", P + "/models/{name}/aliases/{alias}"): (
        fixed(M + "/aliases/champion"),
        model("manage", 204),
    ),
    ("GET", P + "/models/{name}/aliases/{alias}/history"): (
        fixed(M + "/aliases/champion/history"),
        model("read", 200),
    ),
    ("GET", P + "/models/{name}/aliases/{alias}/sequence"): (
        fixed(M + "/aliases/champion/sequence"),
        model("read", 200),
    ),
    ("PUT", P + "/models/{name}/protected-aliases/{alias}"): (
        fixed(M + "/protected-aliases/staging"),
        model("manage", 204),
    ),
    ("DELETE", P + "/models/{name}/protected-aliases/{alias}"): (
        fixed(M + "/protected-aliases/champion"),
        model("manage", 204),
    ),
    # -- the signing policy: anyone signed in reads it, admins set it, `manage` per model
    ("GET", P + "/signing"): (fixed(P + "/signing"), signed_in(200)),
    ("PUT", P + "/signing"): (fixed(P + "/signing", {"require": False}), admins(200)),
    ("PUT", P + "/models/{name}/signing"): (fixed(M + "/signing"), model("manage", 200)),
    ("DELETE", P + "/models/{name}/signing"): (fixed(M + "/signing"), model("manage", 200)),
    # -- tracking
    ("POST", P + "/experiments"): (
        with_body(P + "/experiments", lambda w, who: {"name": f"exp-{who}"}),
        writers(200),
    ),
    ("GET", P + "/experiments"): (fixed(P + "/experiments"), signed_in(200)),
    ("GET", P + "/experiments/{experiment}"): (
        fixed(P + "/experiments/e"),
        experiment("read", 200),
    ),
    ("POST", P + "/runs"): (
        with_body(P + "/runs", lambda w, who: {"experiment_id": w.experiment_id}),
        experiment("edit", 201),
    ),
    ("POST", P + "/runs/search"): (fixed(P + "/runs/search", {}), signed_in(200)),
    ("GET", P + "/runs/{run_id}"): (fixed(P + "/runs/{w.run_id}"), experiment("read", 200)),
    ("POST", P + "/runs/{run_id}/end"): (
        fixed(P + "/runs/{w.run_id}/end", {"status": "FINISHED"}),
        experiment("edit", 204),
    ),
    ("POST", P + "/runs/{run_id}/params"): (
        fixed(P + "/runs/{w.run_id}/params", {"params": {"p": "1"}}),
        experiment("edit", 204),
    ),
    ("POST", P + "/runs/{run_id}/metrics"): (
        fixed(P + "/runs/{w.run_id}/metrics", {"metrics": [{"key": "acc", "value": 0.5}]}),
        experiment("edit", 204),
    ),
    ("GET", P + "/runs/{run_id}/metrics"): (
        fixed(P + "/runs/{w.run_id}/metrics?key=acc"),
        experiment("read", 200),
    ),
    ("POST", P + "/runs/{run_id}/tags"): (
        fixed(P + "/runs/{w.run_id}/tags", {"tags": {"t": "1"}}),
        experiment("edit", 204),
    ),
    ("POST", P + "/runs/{run_id}/files"): (
        with_body(
            P + "/runs/{w.run_id}/files",
            lambda w, who: {"files": [{"path": "extra.bin", "size": 7, "sha256": w.blob}]},
        ),
        experiment("edit", 204),
    ),
    ("GET", P + "/runs/{run_id}/files"): (
        fixed(P + "/runs/{w.run_id}/files"),
        experiment("read", 200),
    ),
    # -- blobs
    ("POST", P + "/blobs/missing"): (
        with_body(P + "/blobs/missing", lambda w, who: {"sha256": [w.blob]}),
        writers(200),
    ),
    ("PUT", P + "/blobs/{sha256}"): (
        lambda w, who: (P + "/blobs/" + hashlib.sha256(who.encode()).hexdigest(), who.encode()),
        writers(201),
    ),
    # the blob is held by m (hidden from hugo) and run R of e (hidden from hugo)
    ("GET", P + "/blobs/{sha256}"): (fixed(P + "/blobs/{w.blob}"), model("read", 200)),
    ("GET", P + "/blobs/{sha256}/url"): (fixed(P + "/blobs/{w.blob}/url"), model("read", 200)),
}


# -- MLflow's routes (/api/2.0/mlflow/..., mlflow-artifacts, server-info): the same rules --

ML = "/api/2.0/mlflow"
MA = "/api/2.0/mlflow-artifacts/artifacts"
RUN_FILES = "{w.experiment_id}/{w.run_id}/artifacts"
LM = ML + "/logged-models/{w.logged_model}"


def run_body(extra: dict[str, Any] | None = None) -> Request:
    return lambda w, who: (None, {"run_id": w.run_id, **(extra or {})})


def ml(path: str, make: Request | dict[str, Any] | None = None) -> Request:
    """An MLflow request: ``path`` (formatted) and a JSON body (formatted too)."""

    def build(w: World, who: str) -> tuple[str, Any]:
        body: Any = make(w, who)[1] if callable(make) else make
        if isinstance(body, dict):
            body = {k: v.format(w=w, who=who) if isinstance(v, str) else v for k, v in body.items()}
        return path.format(w=w, who=who), body

    return build


MLFLOW_TABLE: dict[tuple[str, str], tuple[Request, dict[str, int]]] = {
    ("POST", ML + "/experiments/create"): (
        ml(ML + "/experiments/create", {"name": "new-{who}"}),
        writers(200),
    ),
    ("GET", ML + "/experiments/get"): (
        ml(ML + "/experiments/get?experiment_id={w.experiment_id}"),
        experiment("read", 200),
    ),
    ("GET", ML + "/experiments/get-by-name"): (
        ml(ML + "/experiments/get-by-name?experiment_name=e"),
        experiment("read", 200),
    ),
    ("GET", ML + "/experiments/search"): (ml(ML + "/experiments/search"), signed_in(200)),
    ("POST", ML + "/experiments/search"): (ml(ML + "/experiments/search", {}), signed_in(200)),
    ("POST", ML + "/runs/create"): (
        ml(ML + "/runs/create", {"experiment_id": "{w.experiment_id}"}),
        experiment("edit", 200),
    ),
    ("GET", ML + "/runs/get"): (ml(ML + "/runs/get?run_id={w.run_id}"), experiment("read", 200)),
    ("POST", ML + "/runs/update"): (
        ml(ML + "/runs/update", run_body({"status": "FINISHED"})),
        experiment("edit", 200),
    ),
    ("POST", ML + "/runs/search"): (
        ml(ML + "/runs/search", {"experiment_ids": []}),
        signed_in(200),
    ),
    ("POST", ML + "/runs/log-metric"): (
        ml(ML + "/runs/log-metric", run_body({"key": "k", "value": 1.0, "timestamp": 1})),
        experiment("edit", 200),
    ),
    ("POST", ML + "/runs/log-parameter"): (
        ml(ML + "/runs/log-parameter", run_body({"key": "p", "value": "v"})),
        experiment("edit", 200),
    ),
    ("POST", ML + "/runs/set-tag"): (
        ml(ML + "/runs/set-tag", run_body({"key": "t", "value": "v"})),
        experiment("edit", 200),
    ),
    ("POST", ML + "/runs/log-batch"): (
        ml(ML + "/runs/log-batch", run_body({"params": [{"key": "b", "value": "1"}]})),
        experiment("edit", 200),
    ),
    ("POST", ML + "/runs/outputs"): (
        ml(ML + "/runs/outputs", run_body({"models": []})),
        experiment("edit", 200),
    ),
    ("GET", ML + "/metrics/get-history"): (
        ml(ML + "/metrics/get-history?run_id={w.run_id}&metric_key=k"),
        experiment("read", 200),
    ),
    ("GET", ML + "/artifacts/list"): (
        ml(ML + "/artifacts/list?run_id={w.run_id}&path=model"),
        experiment("read", 200),
    ),
    ("POST", ML + "/logged-models"): (
        ml(ML + "/logged-models", {"experiment_id": "{w.experiment_id}", "name": "lm2"}),
        experiment("edit", 200),
    ),
    ("POST", ML + "/logged-models/search"): (
        ml(ML + "/logged-models/search", {"experiment_ids": []}),
        signed_in(200),
    ),
    ("GET", ML + "/logged-models/{logged_model}"): (ml(LM), experiment("read", 200)),
    ("PATCH", ML + "/logged-models/{logged_model}"): (
        ml(LM, {"status": "LOGGED_MODEL_READY"}),
        experiment("edit", 200),
    ),
    ("PATCH", ML + "/logged-models/{logged_model}/tags"): (
        ml(LM + "/tags", {"tags": [{"key": "x", "value": "y"}]}),
        experiment("edit", 200),
    ),
    ("DELETE", ML + "/logged-models/{logged_model}/tags/{key}"): (
        ml(LM + "/tags/k"),
        experiment("edit", 200),
    ),
    ("POST", ML + "/logged-models/{logged_model}/params"): (
        ml(LM + "/params", {"params": [{"key": "p", "value": "v"}]}),
        experiment("edit", 200),
    ),
    ("GET", ML + "/logged-models/{logged_model}/artifacts/directories"): (
        ml(LM + "/artifacts/directories"),
        experiment("read", 200),
    ),
    ("POST", ML + "/registered-models/create"): (
        ml(ML + "/registered-models/create", {"name": "new-{who}"}),
        writers(200),
    ),
    ("GET", ML + "/registered-models/get"): (
        ml(ML + "/registered-models/get?name=m"),
        model("read", 200),
    ),
    ("GET", ML + "/registered-models/search"): (
        ml(ML + "/registered-models/search"),
        signed_in(200),
    ),
    ("PATCH", ML + "/registered-models/update"): (
        ml(ML + "/registered-models/update", {"name": "m", "description": "d"}),
        model("edit", 200),
    ),
    ("POST", ML + "/registered-models/rename"): (
        ml(ML + "/registered-models/rename", {"name": "m", "new_name": "m-{who}"}),
        model("manage", 200),
    ),
    ("DELETE", ML + "/registered-models/delete"): (
        ml(ML + "/registered-models/delete", {"name": "m"}),
        model("manage", 200),
    ),
    ("POST", ML + "/registered-models/set-tag"): (
        ml(ML + "/registered-models/set-tag", {"name": "m", "key": "k", "value": "w"}),
        model("edit", 200),
    ),
    ("DELETE", ML + "/registered-models/delete-tag"): (
        ml(ML + "/registered-models/delete-tag", {"name": "m", "key": "k"}),
        model("edit", 200),
    ),
    # staging is not protected: edit moves it (champion needs manage: a test below)
    ("POST", ML + "/registered-models/alias"): (
        ml(ML + "/registered-models/alias", {"name": "m", "alias": "staging", "version": "2"}),
        model("edit", 200),
    ),
    ("DELETE", ML + "/registered-models/alias"): (
        ml(ML + "/registered-models/alias", {"name": "m", "alias": "staging"}),
        model("edit", 200),
    ),
    ("GET", ML + "/registered-models/alias"): (
        ml(ML + "/registered-models/alias?name=m&alias=champion"),
        model("read", 200),
    ),
    ("POST", ML + "/registered-models/get-latest-versions"): (
        ml(ML + "/registered-models/get-latest-versions", {"name": "m"}),
        model("read", 200),
    ),
    ("GET", ML + "/registered-models/get-latest-versions"): (
        ml(ML + "/registered-models/get-latest-versions?name=m"),
        model("read", 200),
    ),
    ("POST", ML + "/model-versions/create"): (
        ml(ML + "/model-versions/create", {"name": "m", "source": "runs:/{w.run_id}/model"}),
        model("edit", 200),
    ),
    ("GET", ML + "/model-versions/get"): (
        ml(ML + "/model-versions/get?name=m&version=1"),
        model("read", 200),
    ),
    ("PATCH", ML + "/model-versions/update"): (
        ml(ML + "/model-versions/update", {"name": "m", "version": "1", "description": "d"}),
        model("edit", 200),
    ),
    ("DELETE", ML + "/model-versions/delete"): (
        ml(ML + "/model-versions/delete", {"name": "m", "version": "2"}),
        model("manage", 200),
    ),
    ("GET", ML + "/model-versions/search"): (ml(ML + "/model-versions/search"), signed_in(200)),
    ("GET", ML + "/model-versions/get-download-uri"): (
        ml(ML + "/model-versions/get-download-uri?name=m&version=1"),
        model("read", 200),
    ),
    ("POST", ML + "/model-versions/set-tag"): (
        ml(
            ML + "/model-versions/set-tag",
            {"name": "m", "version": "1", "key": "k", "value": "w"},
        ),
        model("edit", 200),
    ),
    ("DELETE", ML + "/model-versions/delete-tag"): (
        ml(ML + "/model-versions/delete-tag", {"name": "m", "version": "1", "key": "k"}),
        model("edit", 200),
    ),
    ("GET", MA): (ml(MA + "?path=" + RUN_FILES + "/model"), experiment("read", 200)),
    ("GET", MA + "/{path:path}"): (
        ml(MA + "/" + RUN_FILES + "/model/weights.bin"),
        experiment("read", 200),
    ),
    ("PUT", MA + "/{path:path}"): (
        lambda w, who: (MA + "/" + RUN_FILES.format(w=w) + f"/new-{who}.txt", who.encode()),
        experiment("edit", 200),
    ),
    # deleting files is refused to everyone who may write there (versions pin them)
    ("DELETE", MA + "/{path:path}"): (
        ml(MA + "/" + RUN_FILES + "/model/weights.bin"),
        experiment("edit", 501),
    ),
    ("GET", "/api/3.0/mlflow/server-info"): (ml("/api/3.0/mlflow/server-info"), everyone(200)),
}
TABLE.update(MLFLOW_TABLE)


# -- the world ------------------------------------------------------------------------------


@dataclass
class Setup:
    server: YardServer
    tokens: dict[str, str]
    world: World
    model_dir: Path
    dirty: bool = False

    def reset(self) -> None:
        """Empty the yard (users and tokens stay) and make the world again."""
        self.dirty = False
        self.server.empty()
        yard = Yard(self.server.backing)
        try:
            store, artifacts = yard.metadata, yard.artifacts
            auth = SqlAuthStore(store.db)  # type: ignore[attr-defined]
            manifest = store_directory(artifacts, self.model_dir)
            for _ in range(2):
                store.create_model_version(
                    "m", digest=manifest.digest, source=manifest.digest, files=manifest.entries
                )
            store.set_model_version_tag("m", 1, "k", "v")
            store.set_registered_model_tag("m", "k", "v")
            store.set_alias("m", "champion", 1)
            store.set_alias("m", "staging", 1)
            model_id, _ = auth.model_access(_admin(auth), "m")
            assert model_id is not None
            auth.protect_alias(model_id, "champion")
            experiment_id = store.get_or_create_experiment("e").experiment_id
            run = store.create_run(experiment_id, created_by="admin")
            store.add_artifacts(
                run.run_id,
                [e.__class__(f"model/{e.path}", e.size, e.sha256) for e in manifest.entries],
            )
            auth.set_grant("model", model_id, "walt", "edit")
            auth.set_grant("model", model_id, "mia", "manage")
            auth.set_grant("model", model_id, "hugo", "none")
            auth.set_grant("experiment", experiment_id, "mia", "manage")
            auth.set_grant("experiment", experiment_id, "hugo", "none")
            from modelyard.store.sql.logged import READY, SqlLoggedModels

            logged = SqlLoggedModels(store.db)
            lm = logged.create(experiment_id, "lm", source_run_id=run.run_id, tags={"k": "v"})
            logged.put_files(lm.model_id, manifest.entries)
            logged.finish(lm.model_id, READY, manifest.digest)
            self.world.logged_model = lm.model_id
            blob = next(e.sha256 for e in manifest.entries if e.path == "weights.bin")
            self.world.digest, self.world.blob = manifest.digest, blob
            self.world.experiment_id, self.world.run_id = experiment_id, run.run_id
        finally:
            yard.close()


def _admin(auth: SqlAuthStore) -> Any:
    from modelyard.store.access import Principal

    user = auth.get_user("admin")
    return Principal(user.user_id, "admin", "admin", "-")


@pytest.fixture(scope="module")
def setup(yard_server: YardServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    model_dir = tmp_path_factory.mktemp("matrix-model")
    (model_dir / "MLmodel").write_text("flavors:\n  python_function:\n    loader_module: x\n")
    (model_dir / "weights.bin").write_bytes(b"weights")
    tokens = {"admin": yard_server.admin_token}
    for user, role in (
        ("rita", "reader"),
        ("wanda", "writer"),
        ("walt", "writer"),
        ("mia", "writer"),
        ("hugo", "reader"),
    ):
        tokens[user] = yard_server.token(user, role)
    yard = Yard(yard_server.backing)
    try:
        auth = SqlAuthStore(yard.metadata.db)  # type: ignore[attr-defined]
        revoked, secret = auth.create_token("rita", name="revoked")
        auth.revoke_token(revoked.token_id)
        tokens["revoked"] = secret
        tokens["bad"] = "myd_" + "x" * 43
        world = World("", "", 0, "", "")
        s = Setup(yard_server, tokens, world, model_dir)
        s.reset()
        yield s
    finally:
        yard.close()


def _spare_token(s: Setup) -> str:
    yard = Yard(s.server.backing)
    try:
        auth = SqlAuthStore(yard.metadata.db)  # type: ignore[attr-defined]
        info, _ = auth.create_token("admin", name="spare")
        return info.token_id
    finally:
        yard.close()


# -- the tests ------------------------------------------------------------------------------


def test_every_route_is_in_the_table(setup: Setup) -> None:
    from modelyard.server.state import ServerState

    yard = Yard(setup.server.backing)
    try:
        app = ServerApp(ServerState.open(yard))
    finally:
        yard.close()
    routes = {(r.method, r.path) for r in app.routes}
    missing = routes - set(TABLE)
    assert not missing, f"routes nobody decided access for: {sorted(missing)}"
    assert set(TABLE) - routes == set(), "the table names routes that do not exist"


CASES = [(method, path, who) for (method, path) in TABLE for who in CALLERS]


@pytest.mark.parametrize(
    ("method", "path", "who"), CASES, ids=[f"{m} {p} {w}" for m, p, w in CASES]
)
def test_status(setup: Setup, method: str, path: str, who: str) -> None:
    make, expected = TABLE[(method, path)]
    status = expected[who]
    if setup.dirty:
        setup.reset()  # an allowed write must not change what the next case sees
    setup.world.spare_token = _spare_token(setup) if "token_id" in path else ""
    url, body = make(setup.world, who)
    headers = {}
    token = setup.tokens.get(who)
    if token:
        headers["authorization"] = f"Bearer {token}"
    content: bytes | None = None
    if isinstance(body, bytes):
        content = body
        headers["content-type"] = "application/octet-stream"
    elif body is not None:
        import json

        content = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    response = httpx.request(
        method, setup.server.url + url, content=content, headers=headers, timeout=30
    )
    assert response.status_code == status, (
        f"{method} {url} as {who}: {response.status_code} {response.text[:300]}"
    )
    setup.dirty = method != "GET" and response.status_code < 300
    if status >= 400:
        assert response.headers["content-type"] == "application/json"
        answer = response.json()
        # MLflow's routes answer in MLflow's envelope, the others in ours
        assert (
            answer["error_code"]
            if url.startswith(("/api/2.0/", "/api/3.0/"))
            else (answer["error"]["code"])
        )
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("who", CALLERS)
def test_unknown_routes_hide_behind_authentication(setup: Setup, who: str) -> None:
    token = setup.tokens.get(who)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    for method, path in (("GET", "/api/v1/nope"), ("POST", "/admin"), ("GET", "/ui/")):
        response = httpx.request(method, setup.server.url + path, headers=headers, timeout=30)
        assert response.status_code == (401 if who in NO_AUTH else 404), (method, path, who)
    # a known path with another method: 405 for a caller, 401 without a token
    response = httpx.request(
        "PATCH", setup.server.url + "/api/v1/whoami", headers=headers, timeout=30
    )
    assert response.status_code == (401 if who in NO_AUTH else 405)


def test_an_editor_moves_an_unprotected_alias_but_not_a_protected_one(setup: Setup) -> None:
    setup.reset()
    walt = {"authorization": f"Bearer {setup.tokens['walt']}"}
    url = setup.server.url + M + "/aliases/"
    assert httpx.put(url + "staging", json={"version": 2}, headers=walt).status_code == 204
    refused = httpx.put(url + "champion", json={"version": 2}, headers=walt)
    assert refused.status_code == 403
    assert "protected" in refused.json()["error"]["message"]
    admin = {"authorization": f"Bearer {setup.tokens['admin']}"}
    got = httpx.get(url + "champion", headers=admin).json()
    assert got["version"] == 1  # nothing moved


def test_a_writer_creates_a_model_by_registering_and_then_manages_it(setup: Setup) -> None:
    setup.reset()
    wanda = {"authorization": f"Bearer {setup.tokens['wanda']}"}
    base = setup.server.url + P + "/models/wanda-model"
    made = httpx.post(
        base + "/versions",
        headers=wanda,
        json={"digest": setup.world.digest, "source": setup.world.digest},
    )
    assert made.status_code == 201, made.text
    assert (
        httpx.put(base + "/aliases/champion", json={"version": 1}, headers=wanda).status_code == 204
    )
    assert httpx.get(base + "/grants", headers=wanda).status_code == 200
    # a reader may not create one that way
    rita = {"authorization": f"Bearer {setup.tokens['rita']}"}
    refused = httpx.post(
        setup.server.url + P + "/models/rita-model/versions",
        headers=rita,
        json={"digest": setup.world.digest, "source": setup.world.digest},
    )
    assert refused.status_code == 403


def test_listings_are_scoped_in_the_query(setup: Setup) -> None:
    setup.reset()
    for who, sees in (("hugo", False), ("rita", True), ("admin", True)):
        headers = {"authorization": f"Bearer {setup.tokens[who]}"}
        models = httpx.get(setup.server.url + P + "/models?max_results=1", headers=headers)
        names = [m["name"] for m in models.json()["models"]]
        # a page of one is full whenever anything is visible: hidden rows are not post-filtered
        assert names == (["m"] if sees else []), (who, names)
        versions = httpx.get(setup.server.url + P + "/versions", headers=headers).json()
        assert bool(versions["versions"]) is sees
        runs = httpx.post(setup.server.url + P + "/runs/search", json={}, headers=headers)
        assert bool(runs.json()["runs"]) is sees
        experiments = httpx.get(setup.server.url + P + "/experiments", headers=headers).json()
        assert ("e" in [e["name"] for e in experiments["experiments"]]) is sees


def test_hidden_names_are_not_suggested(setup: Setup) -> None:
    setup.reset()
    for who, suggested in (("hugo", []), ("rita", ["m"])):
        headers = {"authorization": f"Bearer {setup.tokens[who]}"}
        miss = httpx.get(setup.server.url + P + "/models/m1", headers=headers)
        assert miss.status_code == 404
        assert miss.json()["error"]["detail"]["suggestions"] == suggested
