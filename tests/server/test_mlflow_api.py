"""MLflow's routes as an attacker and as a careful client would use them.

The route x role matrix (``test_access_matrix``) covers who may call what;
here: the wire details MLflow's client depends on, and the ways MLflow's own
server was beaten (``../shared/anchors/mlflow-rest.md`` §3.2): artifact paths
that name no owner or another experiment's run, sources outside the server,
client-chosen artifact locations, protected aliases, searches that leak.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._server import YardServer

ML = "/api/2.0/mlflow"
MA = "/api/2.0/mlflow-artifacts/artifacts"


def _client(server: YardServer, user: str, role: str) -> httpx.Client:
    token = server.token(user, role)
    return httpx.Client(
        base_url=server.url, headers={"authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.fixture(scope="module")
def world(yard_server: YardServer) -> Iterator[dict[str, Any]]:
    """Two experiments of two writers, a run in each, a READY logged model with files,
    a registered version from it with a protected champion, and a hidden watcher."""
    yard_server.empty()
    ann = _client(yard_server, "ml-ann", "writer")
    bob = _client(yard_server, "ml-bob", "writer")
    admin = httpx.Client(
        base_url=yard_server.url,
        headers={"authorization": f"Bearer {yard_server.admin_token}"},
        timeout=30,
    )
    out: dict[str, Any] = {"ann": ann, "bob": bob, "admin": admin}
    for who, c in (("ann", ann), ("bob", bob)):
        exp = ok(c.post(ML + "/experiments/create", json={"name": f"exp-{who}"}))["experiment_id"]
        run = ok(c.post(ML + "/runs/create", json={"experiment_id": exp}))["run"]["info"]
        out[f"{who}_exp"], out[f"{who}_run"] = exp, run["run_id"]
    model = ok(
        ann.post(
            ML + "/logged-models",
            json={
                "experiment_id": out["ann_exp"],
                "name": "model",
                "source_run_id": out["ann_run"],
            },
        )
    )["model"]["info"]
    out["lm"] = model["model_id"]
    root = f"{out['ann_exp']}/models/{model['model_id']}/artifacts"
    assert model["artifact_uri"] == f"mlflow-artifacts:/{root}"
    out["files"] = {"MLmodel": b"flavors: {}\n", "weights/w.bin": b"\x00\x01" * 1000}
    for path, data in out["files"].items():
        ok(ann.put(f"{MA}/{root}/{path}", content=data))
    ok(ann.patch(f"{ML}/logged-models/{out['lm']}", json={"status": "LOGGED_MODEL_READY"}))
    ok(ann.post(ML + "/registered-models/create", json={"name": "fraud"}))
    version = ok(
        ann.post(
            ML + "/model-versions/create",
            json={"name": "fraud", "source": f"models:/{out['lm']}", "model_id": out["lm"]},
        )
    )["model_version"]
    assert version["version"] == "1"
    ok(
        ann.post(
            ML + "/registered-models/alias",
            json={"name": "fraud", "alias": "champion", "version": "1"},
        )
    )
    ok(admin.put("/api/v1/models/fraud/protected-aliases/champion"))
    ok(admin.put("/api/v1/models/fraud/grants/ml-bob", json={"permission": "edit"}))
    out["hidden"] = _client(yard_server, "ml-hidden", "reader")
    ok(admin.put("/api/v1/models/fraud/grants/ml-hidden", json={"permission": "none"}))
    ok(admin.put("/api/v1/experiments/exp-ann/grants/ml-hidden", json={"permission": "none"}))
    yield out
    for c in (ann, bob, admin, out["hidden"]):
        c.close()


def ok(response: httpx.Response) -> Any:
    assert response.status_code < 300, f"{response.request.method} {response.url}: {response.text}"
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert set(body) == {"error_code", "message"}
    return str(body["message"])


def test_the_server_hashes_what_it_stores(world: dict[str, Any]) -> None:
    ann = world["ann"]
    files = ok(ann.get(MA, params={"path": f"{world['ann_exp']}/models/{world['lm']}/artifacts"}))
    assert files == {
        "files": [
            {"path": "MLmodel", "is_dir": False, "file_size": len(world["files"]["MLmodel"])},
            {"path": "weights", "is_dir": True},
        ]
    }
    got = ann.get(f"{MA}/registry/fraud/1/weights/w.bin")
    assert got.content == world["files"]["weights/w.bin"]
    assert got.headers["x-sha256"] == hashlib.sha256(world["files"]["weights/w.bin"]).hexdigest()
    uri = ok(
        ann.get(ML + "/model-versions/get-download-uri", params={"name": "fraud", "version": 1})
    )
    assert uri == {"artifact_uri": "mlflow-artifacts:/registry/fraud/1"}
    # the version's digest is the manifest of what the server hashed
    v1 = ok(ann.get("/api/v1/models/fraud/versions/1/files"))["files"]
    assert {f["path"]: f["sha256"] for f in v1} == {
        p: hashlib.sha256(d).hexdigest() for p, d in world["files"].items()
    }
    # a folder is not a file: MLflow's client probes folders with a GET and expects a 404
    refused(ann.get(f"{MA}/registry/fraud/1/weights"), 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize(
    "path",
    ["", ".", "1", "registry", "registry/fraud", "x/y/artifacts", "models/m-" + "0" * 32],
)
def test_an_artifact_path_that_names_no_owner_is_refused(world: dict[str, Any], path: str) -> None:
    for client in (world["ann"], world["admin"]):
        response = client.get(MA, params={"path": path})
        assert response.status_code in (400, 404), response.text
        assert "error_code" in response.json()
    response = world["admin"].delete(f"{MA}/{path}" if path else MA)
    assert response.status_code in (400, 404, 405, 501)


def test_a_run_is_reached_only_under_its_own_experiment(world: dict[str, Any]) -> None:
    bob, ann = world["bob"], world["ann"]
    # bob's run under ann's experiment id: no such path (not "bob may write there")
    wrong = f"{MA}/{world['ann_exp']}/{world['bob_run']}/artifacts/x.txt"
    refused(bob.put(wrong, content=b"x"), 404, "RESOURCE_DOES_NOT_EXIST")
    right = f"{MA}/{world['bob_exp']}/{world['bob_run']}/artifacts/x.txt"
    ok(bob.put(right, content=b"x"))
    # writers edit experiments by default (as in /api/v1); readers do not
    reader = world["hidden"]
    refused(reader.put(right, content=b"y"), 403, "PERMISSION_DENIED")
    assert ann.get(right).content == b"x"


def test_files_of_a_version_or_a_ready_logged_model_cannot_change(world: dict[str, Any]) -> None:
    ann = world["ann"]
    refused(
        ann.put(f"{MA}/registry/fraud/1/MLmodel", content=b"evil"), 400, "INVALID_PARAMETER_VALUE"
    )
    root = f"{world['ann_exp']}/models/{world['lm']}/artifacts"
    msg = refused(ann.put(f"{MA}/{root}/MLmodel", content=b"evil"), 400, "INVALID_PARAMETER_VALUE")
    assert "finalized" in msg
    refused(ann.delete(f"{MA}/{root}/MLmodel"), 501, "NOT_IMPLEMENTED")
    assert ann.get(f"{MA}/{root}/MLmodel").content == world["files"]["MLmodel"]


@pytest.mark.parametrize(
    "source",
    [
        "/etc",
        "file:///etc/passwd",
        "s3://bucket/x",
        "mlflow-artifacts://evil.example/1/x",
        "runs:/" + "0" * 32 + "/model",
        "models:/m-" + "0" * 32,
        "../../etc",
        "http://127.0.0.1:1/x",
    ],
)
def test_a_version_source_must_be_files_this_server_holds(
    world: dict[str, Any], source: str
) -> None:
    response = world["ann"].post(
        ML + "/model-versions/create", json={"name": "fraud", "source": source}
    )
    assert response.status_code in (400, 404), response.text
    assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    versions = ok(
        world["ann"].get(ML + "/model-versions/search", params={"filter": "name='fraud'"})
    )
    assert [v["version"] for v in versions["model_versions"]] == ["1"]


def test_the_server_owns_artifact_locations(world: dict[str, Any]) -> None:
    response = world["ann"].post(
        ML + "/experiments/create",
        json={"name": "elsewhere", "artifact_location": "mlflow-artifacts://evil.example/x"},
    )
    refused(response, 400, "INVALID_PARAMETER_VALUE")
    refused(
        world["ann"].get(ML + "/experiments/get-by-name", params={"experiment_name": "elsewhere"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


def test_a_protected_alias_needs_manage_through_mlflow_too(world: dict[str, Any]) -> None:
    bob = world["bob"]  # edit on fraud
    body = {"name": "fraud", "alias": "champion", "version": "1"}
    msg = refused(bob.post(ML + "/registered-models/alias", json=body), 403, "PERMISSION_DENIED")
    assert "protected" in msg
    refused(
        bob.request("DELETE", ML + "/registered-models/alias", json=body), 403, "PERMISSION_DENIED"
    )
    ok(bob.post(ML + "/registered-models/alias", json={**body, "alias": "staging"}))


def test_searches_never_show_what_the_caller_may_not_see(world: dict[str, Any]) -> None:
    hidden, ann = world["hidden"], world["ann"]
    assert ok(hidden.get(ML + "/registered-models/search")) == {}
    assert ok(hidden.get(ML + "/model-versions/search")) == {}
    runs = ok(hidden.post(ML + "/runs/search", json={"experiment_ids": [world["ann_exp"]]}))
    assert runs == {}
    logged = ok(
        hidden.post(ML + "/logged-models/search", json={"experiment_ids": [world["ann_exp"]]})
    )
    assert logged == {}
    refused(hidden.get(f"{ML}/logged-models/{world['lm']}"), 404, "RESOURCE_DOES_NOT_EXIST")
    refused(hidden.get(f"{MA}/registry/fraud/1/MLmodel"), 404, "RESOURCE_DOES_NOT_EXIST")
    mine = ok(
        ann.post(
            ML + "/logged-models/search",
            json={"experiment_ids": [world["ann_exp"]], "filter": "name = 'model'"},
        )
    )
    assert [m["info"]["model_id"] for m in mine["models"]] == [world["lm"]]


def test_wire_quirks_the_client_relies_on(world: dict[str, Any]) -> None:
    ann = world["ann"]
    again = ann.post(ML + "/registered-models/create", json={"name": "fraud"})
    refused(again, 400, "RESOURCE_ALREADY_EXISTS")
    refused(
        ann.get(ML + "/registered-models/alias", params={"name": "fraud", "alias": "nope"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    refused(
        ann.get(ML + "/registered-models/get", params={"name": "nope"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    run = ok(
        ann.get(ML + "/runs/get", params={"run_id": world["ann_run"], "run_uuid": world["ann_run"]})
    )
    info = run["run"]["info"]
    assert info["run_uuid"] == info["run_id"] == world["ann_run"]
    assert info["experiment_id"] == world["ann_exp"]
    assert run["run"]["outputs"] == {"model_outputs": [{"model_id": world["lm"], "step": 0}]}
    model = ok(ann.get(ML + "/registered-models/get", params={"name": "fraud"}))["registered_model"]
    assert {"alias": "champion", "version": "1"} in model["aliases"]
    assert model["latest_versions"][0]["current_stage"] == "None"
    # the default experiment is "0" to MLflow's client
    made = ok(ann.post(ML + "/runs/create", json={"experiment_id": "0"}))["run"]["info"]
    assert (
        ok(ann.get(ML + "/experiments/get", params={"experiment_id": "0"}))["experiment"]["name"]
        == "Default"
    )
    assert made["status"] == "RUNNING"
    # NaN metrics travel as protobuf spells them
    ok(
        ann.post(
            ML + "/runs/log-metric",
            json={"run_id": made["run_id"], "key": "m", "value": "NaN", "timestamp": 5},
        )
    )
    history = ok(
        ann.get(ML + "/metrics/get-history", params={"run_id": made["run_id"], "metric_key": "m"})
    )
    assert history == {"metrics": [{"key": "m", "value": "NaN", "timestamp": 5, "step": 0}]}
    info = ok(httpx.get(world["ann"].base_url.join("/api/3.0/mlflow/server-info")))
    assert info["multipart_uploads_enabled"] is False


def test_bad_input_is_a_4xx_naming_the_field(world: dict[str, Any]) -> None:
    ann = world["ann"]
    msg = refused(
        ann.post(
            ML + "/runs/log-metric", json={"run_id": world["ann_run"], "key": "m", "value": "lots"}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "value" in msg
    msg = refused(
        ann.post(
            ML + "/runs/log-batch",
            json={
                "run_id": world["ann_run"],
                "params": [{"key": f"p{i}", "value": "1"} for i in range(101)],
            },
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "100 params" in msg
    refused(ann.post(ML + "/runs/get", json={}), 405, "BAD_REQUEST")
    refused(
        ann.get(ML + "/runs/get", params={"run_id": "../../etc"}), 400, "INVALID_PARAMETER_VALUE"
    )
    refused(ann.get(MA + "/1/%2e%2e/x"), 400, "INVALID_PARAMETER_VALUE")
    refused(
        ann.post(
            ML + "/registered-models/alias",
            json={"name": "fraud", "alias": "latest", "version": "1"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    refused(
        ann.post(
            ML + "/registered-models/alias", json={"name": "fraud", "alias": "x", "version": "one"}
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    refused(
        ann.post(
            ML + "/runs/log-parameter",
            content=b"{not json",
            headers={"content-type": "application/json"},
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_mlflow_clients_meet_a_required_signature_as_permission_denied(
    world: dict[str, Any],
) -> None:
    # MLflow's client cannot sign: a model that requires signatures refuses its
    # registrations and alias moves with MLflow's own error shape, and keeps nothing.
    ann, admin = world["ann"], world["admin"]
    before = ok(ann.get(ML + "/registered-models/get", params={"name": "fraud"}))
    ok(admin.put("/api/v1/models/fraud/signing"))
    try:
        r = ann.post(
            ML + "/model-versions/create",
            json={"name": "fraud", "source": f"models:/{world['lm']}", "model_id": world["lm"]},
        )
        assert r.status_code == 403, r.text
        assert r.json()["error_code"] == "PERMISSION_DENIED"
        assert "requires signatures" in r.json()["message"]
        r = ann.post(
            ML + "/registered-models/alias",
            json={"name": "fraud", "alias": "needs-signature", "version": "1"},
        )
        assert r.status_code == 403, r.text
        assert "requires signatures" in r.json()["message"]
        after = ok(ann.get(ML + "/registered-models/get", params={"name": "fraud"}))
        assert after["registered_model"].get("latest_versions") == before["registered_model"].get(
            "latest_versions"
        )
        assert after["registered_model"].get("aliases") == before["registered_model"].get("aliases")
    finally:
        ok(admin.delete("/api/v1/models/fraud/signing"))
