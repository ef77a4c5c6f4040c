"""The 15 ways MLflow's server auth failed (``mlflow-rest.md`` §3.2), each tried here.

Each test is named after the failure it checks and attacks the real server on
loopback the way the original report did. Raw paths go through
:mod:`http.client`, which sends them byte for byte (httpx would normalise them).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from modelyard.store.sql.auth import SqlAuthStore
from modelyard.store.trees import store_directory
from modelyard.yard import Yard
from tests._server import YardServer, start_yard_server
from tests._yard import POSTGRES, _admin

P = "/api/v1"


def raw(
    server: YardServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent exactly as given."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        hdrs = {"Host": f"127.0.0.1:{parts.port}", **(headers or {})}
        if body is not None:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def world(yard_server: YardServer, tmp_path: Path) -> dict[str, Any]:
    """A model ``m`` (v1) and run in experiment ``e``, made by the admin; users rita and walt."""
    yard_server.empty()
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "w.bin").write_bytes(b"secret weights")
    yard = Yard(yard_server.backing)
    try:
        manifest = store_directory(yard.artifacts, model_dir)
        yard.metadata.create_model_version(
            "m", digest=manifest.digest, source=manifest.digest, files=manifest.entries
        )
        exp = yard.metadata.get_or_create_experiment("e")
        run = yard.metadata.create_run(exp.experiment_id, created_by="admin")
    finally:
        yard.close()
    return {
        "digest": manifest.digest,
        "blob": next(e.sha256 for e in manifest.entries if e.path == "w.bin"),
        "run_id": run.run_id,
        "experiment_id": exp.experiment_id,
        "rita": yard_server.token("rita", "reader"),
        "walt": yard_server.token("walt", "writer"),
        "admin": yard_server.admin_token,
    }


# 1 ---------------------------------------------------------------------------------------


def test_01_no_self_signup_cve_2023_6014(yard_server: YardServer, world: dict[str, Any]) -> None:
    body = {"name": "mallory", "role": "admin"}
    for path in (P + "/users", "/signup", "/api/2.0/mlflow/users/create"):
        assert httpx.post(yard_server.url + path, json=body).status_code == 401
    for who in ("rita", "walt"):
        made = httpx.post(yard_server.url + P + "/users", json=body, headers=bearer(world[who]))
        assert made.status_code == 403
        token = httpx.post(
            yard_server.url + P + "/tokens", json={"user": who}, headers=bearer(world[who])
        )
        assert token.status_code == 403
    listed = httpx.get(yard_server.url + P + "/users", headers=bearer(world["admin"])).json()
    assert "mallory" not in [u["name"] for u in listed["users"]]


# 2 ---------------------------------------------------------------------------------------


def test_02_no_default_credentials_ghsa_gq3w_7jj3_x7gr(
    yard_server: YardServer, tmp_path: Path
) -> None:
    # A yard with no users: the server refuses to start rather than run with a known login.
    fresh = tmp_path / "fresh"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from modelyard.cli import main; main()",
            "server",
            "--yard",
            str(fresh),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert "no users yet" in proc.stderr
    assert "init-admin" in proc.stderr
    assert "Traceback" not in proc.stderr
    # init-admin makes a new random token each time; the yard keeps only its hash.
    from modelyard.server.run import init_admin

    yard = Yard(str(fresh))
    try:
        one, two = init_admin(yard), init_admin(yard)
        assert one != two
        auth = SqlAuthStore(yard.metadata.db)  # type: ignore[attr-defined]
        with auth.db.read() as conn:
            import sqlalchemy as sa

            rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM tokens"))]
        stored = json.dumps(rows, default=str)
        assert one not in stored
        assert two not in stored
        assert hashlib.sha256(one.encode()).hexdigest() in stored
    finally:
        yard.close()


# 3 ---------------------------------------------------------------------------------------


def test_03_no_weak_secrets_cve_2025_11200(yard_server: YardServer, world: dict[str, Any]) -> None:
    # Nobody chooses a secret: a token cannot be given, only made, 256 random bits.
    chosen = httpx.post(
        yard_server.url + P + "/tokens",
        headers=bearer(world["admin"]),
        json={"user": "rita", "token": "x"},
    )
    assert chosen.status_code == 400
    assert chosen.json()["error"]["field"] == "token"
    made = httpx.post(
        yard_server.url + P + "/tokens", headers=bearer(world["admin"]), json={"user": "rita"}
    ).json()["token"]
    assert re.fullmatch(r"myd_[A-Za-z0-9_\-]{43}", made)
    for weak in (
        "Bearer ",
        "Bearer a",
        "Bearer myd_",
        "Bearer password1234",
        "Basic Og==",
        "Basic YWRtaW46",
        "Token x",
    ):
        status, _, _ = raw(yard_server, "GET", P + "/whoami", {"Authorization": weak})
        assert status == 401, weak


# 4 ---------------------------------------------------------------------------------------


def test_04_fail_closed_dispatcher_cve_2025_14297() -> None:
    from starlette.routing import Route

    from modelyard.server._routing import ApiRoute
    from modelyard.server.app import ServerApp

    def handler(call: Any) -> None:
        return None

    with pytest.raises(TypeError, match="access"):
        ApiRoute("/x", handler, method="GET", access=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ApiRoute"):
        ServerApp(object(), routes=[Route("/x", handler)])  # type: ignore[arg-type, list-item]
    from modelyard.server.access import SIGNED_IN

    # a path parameter nobody validates is refused too
    with pytest.raises(TypeError, match="validator"):
        ApiRoute("/x/{anything}", handler, method="GET", access=SIGNED_IN)


def test_04_mlflow_unguarded_routes_are_closed(yard_server: YardServer) -> None:
    for path in (
        "/get-artifact?path=x&run_uuid=y",
        "/model-versions/get-artifact?path=x",
        "/ajax-api/2.0/mlflow/upload-artifact",
        "/ajax-api/2.0/mlflow/metrics/get-history-bulk",
    ):
        status, _, _ = raw(yard_server, "GET", path)
        assert status == 401, path


# 5 ---------------------------------------------------------------------------------------


def test_05_no_sub_app_outside_auth_cve_2026_2652(yard_server: YardServer) -> None:
    for path in (
        "/ajax-api/3.0/jobs/",
        "/v1/traces",
        "/api/3.0/mlflow/traces",
        "/static/x",
        "/api/v1",
        "/api/v2/models",
        "/ui/",
        "/metrics",
    ):
        for method in ("GET", "POST", "DELETE"):
            status, _, _ = raw(yard_server, method, path)
            assert status == 401, (method, path)
    # public as in MLflow (its client probes it before signing in): capability flags only
    status, _, body = raw(yard_server, "GET", "/api/3.0/mlflow/server-info")
    assert status == 200
    assert all(
        k.endswith(("_enabled", "_supported", "_type", "_version")) for k in json.loads(body)
    )
    assert raw(yard_server, "POST", "/api/3.0/mlflow/server-info")[0] == 405


# 6 ---------------------------------------------------------------------------------------


def test_06_artifacts_cannot_be_overwritten_deleted_or_read_unmapped_cve_2026_2651(
    yard_server: YardServer, world: dict[str, Any]
) -> None:
    url = yard_server.url + P + "/blobs/"
    blob = world["blob"]
    # anonymous and readers cannot upload at all
    assert httpx.put(url + blob, content=b"evil").status_code == 401
    assert httpx.put(url + blob, content=b"evil", headers=bearer(world["rita"])).status_code == 403
    # a writer cannot overwrite: the name is the content's hash
    evil = httpx.put(url + blob, content=b"evil", headers=bearer(world["walt"]))
    assert evil.status_code in (200, 400)
    got = httpx.get(url + blob, headers=bearer(world["rita"]))
    assert got.content == b"secret weights"
    other = hashlib.sha256(b"evil").hexdigest()
    wrong = httpx.put(url + other, content=b"not evil", headers=bearer(world["walt"]))
    assert wrong.status_code == 400
    # there is no delete at all
    assert httpx.delete(url + blob, headers=bearer(world["admin"])).status_code == 405
    # a blob nothing readable holds is refused, even to the writer who uploaded it
    mine = b"uploaded but never registered"
    sha = hashlib.sha256(mine).hexdigest()
    assert httpx.put(url + sha, content=mine, headers=bearer(world["walt"])).status_code == 201
    assert httpx.get(url + sha, headers=bearer(world["walt"])).status_code == 404


# 7 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        P + "/blobs/",
        P + "/blobs/.",
        P + "/blobs/..",
        P + "/blobs/%2e%2e",
        P + "/blobs/%2E",
        P + "/blobs//",
        P + "/blobs/x;y",
        P + "/models/%2e%2e/versions/1",
        P + "/models/a%2fb",
        P + "/models/a%2Fversions%2F1",
        P + "/models/a%5cb",
        P + "/models/%252e%252e",
        P + "/models/a%00b",
        P + "/runs/..%2f..%2fetc",
        P + "/models/./m",
        P + "/../api/v1/users",
    ],
)
def test_07_paths_naming_nothing_are_refused(
    yard_server: YardServer, world: dict[str, Any], path: str
) -> None:
    for method in ("GET", "DELETE"):
        status, _, body = raw(yard_server, method, path, bearer(world["admin"]))
        assert status in (400, 404, 405), (method, path, status)
        assert b"secret weights" not in body
        assert b'"models"' not in body  # never a listing
        status, _, _ = raw(yard_server, method, path)
        assert status in (400, 401), (method, path, status)


# 8 ---------------------------------------------------------------------------------------


def test_08_prefix_tricks_do_not_skip_auth_mlflow_oidc_auth_52(yard_server: YardServer) -> None:
    for path in (
        "//api/v1/users",
        "/api//v1/users",
        "/API/v1/users",
        "/api/v1/users/",
        "/api/v1/users?x=/health",
        "/health/../api/v1/users",
        "/health%2f..%2fapi",
    ):
        status, _, _ = raw(yard_server, "GET", path)
        assert status in (400, 401), (path, status)


# 9 ---------------------------------------------------------------------------------------


def test_09_searches_leak_nothing_hidden(yard_server: YardServer, world: dict[str, Any]) -> None:
    yard = Yard(yard_server.backing)
    try:
        auth = SqlAuthStore(yard.metadata.db)  # type: ignore[attr-defined]
        model_id = yard.metadata.db.engine.connect  # noqa: F841 - only to touch the engine
        from modelyard.store.access import Principal

        admin = Principal(auth.get_user("admin").user_id, "admin", "admin", "-")
        mid, _ = auth.model_access(admin, "m")
        assert mid is not None
        auth.set_grant("model", mid, "rita", "none")
        auth.set_grant("experiment", world["experiment_id"], "rita", "none")
    finally:
        yard.close()
    rita = bearer(world["rita"])
    base = yard_server.url + P
    for answer in (
        httpx.get(base + "/models", params={"filter": "name = 'm'"}, headers=rita),
        httpx.get(base + "/versions", params={"filter": "name = 'm'"}, headers=rita),
        httpx.post(base + "/runs/search", json={}, headers=rita),
        httpx.get(base + "/experiments", headers=rita),
        httpx.get(base + "/models/m", headers=rita),
        httpx.get(base + f"/runs/{world['run_id']}", headers=rita),
        httpx.get(base + f"/blobs/{world['blob']}", headers=rita),
    ):
        assert world["digest"] not in answer.text
        assert answer.status_code == 404 or not any(
            m.get("name") == "m"
            for key in ("models", "versions")
            for m in answer.json().get(key, [])
        )
        assert answer.status_code == 404 or not answer.json().get("runs")
        assert answer.status_code == 404 or "e" not in [
            x["name"] for x in answer.json().get("experiments", [])
        ]
    miss = httpx.get(base + "/models/mm", headers=rita)  # a miss must not suggest "m"
    assert miss.status_code == 404
    assert miss.json()["error"]["detail"]["suggestions"] == []
    admin_miss = httpx.get(base + "/models/mm", headers=bearer(world["admin"]))
    assert admin_miss.json()["error"]["detail"]["suggestions"] == ["m"]


# 10 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "/etc/passwd",
        "file:///etc",
        "s3://bucket/model",
        "http://evil/x",
        "mlflow-artifacts:/x",
        "models:/m",
        "runs:/nope/model",
        "../../etc",
        "sha256:" + "0" * 64,
    ],
)
def test_10_registry_sources_stay_in_the_yard_cve_2023_1177(
    yard_server: YardServer, world: dict[str, Any], source: str
) -> None:
    url = yard_server.url + P + "/models/m/versions"
    body = {
        "digest": world["digest"],
        "source": source,
        "tags": {"mlflow.prompt.is_prompt": "true"},
    }
    answer = httpx.post(url, json=body, headers=bearer(world["admin"]))
    assert answer.status_code in (400, 404), (source, answer.text)
    versions = httpx.get(yard_server.url + P + "/versions", headers=bearer(world["admin"]))
    assert [v["version"] for v in versions.json()["versions"]] == [1]


def test_10_a_run_source_must_hold_the_files(
    yard_server: YardServer, world: dict[str, Any]
) -> None:
    url = yard_server.url + P + "/models/m/versions"
    body = {"digest": world["digest"], "source": f"runs:/{world['run_id']}/model"}
    answer = httpx.post(url, json=body, headers=bearer(world["admin"]))
    assert answer.status_code == 400  # the run has no such files
    assert answer.json()["error"]["field"] in ("source", "path")


# 11 --------------------------------------------------------------------------------------


def test_11_no_reflected_headers_no_rebinding_no_cors_cve_2023_6568(
    yard_server: YardServer, world: dict[str, Any]
) -> None:
    script = "<script>alert(1)</script>"
    status, headers, body = raw(
        yard_server,
        "POST",
        P + "/models",
        {**bearer(world["admin"]), "Content-Type": script},
        b'{"name":"x"}',
    )
    assert status == 415
    assert script.encode() not in body
    assert script not in json.dumps(headers)
    status, _, body = raw(
        yard_server, "GET", P + "/whoami", {**bearer(world["admin"]), "Host": "evil.example:5000"}
    )
    assert status == 400
    assert b"evil" not in body
    status, headers, _ = raw(
        yard_server,
        "GET",
        P + "/whoami",
        {**bearer(world["admin"]), "Origin": "http://evil.example"},
    )
    assert status == 200
    assert not any(k.startswith("access-control-") for k in headers)
    status, headers, _ = raw(
        yard_server,
        "OPTIONS",
        P + "/models",
        {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert status in (401, 405)
    assert not any(k.startswith("access-control-") for k in headers)


# 12 --------------------------------------------------------------------------------------


def test_12_no_graphql_cve_2025_0453(yard_server: YardServer, world: dict[str, Any]) -> None:
    query = json.dumps({"query": "{ __schema { types { name } } }"}).encode()
    for path in ("/graphql", "/ajax-api/graphql", P + "/graphql"):
        assert raw(yard_server, "POST", path, body=query)[0] == 401
        status, _, body = raw(yard_server, "POST", path, bearer(world["admin"]), query)
        # no such route: a 404, or MLflow's 501 under its own prefixes
        assert status == (501 if path.startswith("/ajax-api/") else 404)
        assert b"__schema" not in body


# 13 --------------------------------------------------------------------------------------


def test_13_errors_carry_no_sql(yard_server: YardServer, world: dict[str, Any]) -> None:
    dup = httpx.post(
        yard_server.url + P + "/models", json={"name": "m"}, headers=bearer(world["admin"])
    )
    assert dup.status_code == 409
    for word in ("INSERT", "SELECT", "sqlalchemy", "psycopg", "registered_models", "Traceback"):
        assert word not in dup.text


def test_13_a_lost_database_is_a_503_without_internals(tmp_path: Path) -> None:
    name = f"modelyard_gone_{uuid.uuid4().hex[:10]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    process, token = start_yard_server(url, tmp_path / "blobs")
    try:
        ok = httpx.get(process.url + P + "/models", headers=bearer(token))
        assert ok.status_code == 200
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        for _ in range(3):
            gone = httpx.get(process.url + P + "/models", headers=bearer(token))
            assert gone.status_code in (401, 503), gone.text
            for word in ("SELECT", "psycopg", "sqlalchemy", name, "Traceback"):
                assert word not in gone.text
    finally:
        process.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


# 14 --------------------------------------------------------------------------------------


class _Catch(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    redirect_to = ""

    def do_GET(self) -> None:
        _Catch.seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def catcher() -> Iterator[str]:
    _Catch.seen = []
    server = HTTPServer(("127.0.0.1", 0), _Catch)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_14_the_token_goes_to_the_yard_only(
    yard_server: YardServer, world: dict[str, Any], catcher: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server owns where artifacts live: a client cannot name a location.
    made = httpx.post(
        yard_server.url + P + "/experiments",
        headers=bearer(world["admin"]),
        json={"name": "x", "artifact_location": catcher},
    )
    assert made.status_code == 400
    # A yard URL that redirects elsewhere is not followed with the token.
    from modelyard.errors import ModelyardError
    from modelyard.store.rest._http import HttpSession

    _Catch.redirect_to = catcher + "/stolen"
    monkeypatch.setenv("MODELYARD_HTTP_RETRIES", "1")
    session = HttpSession(catcher, token=world["admin"])
    try:
        with pytest.raises(ModelyardError):
            session.api("GET", "/models")
    finally:
        session.close()
        _Catch.redirect_to = ""
    assert len(_Catch.seen) == 1  # the redirect target was never asked
    # and the credential-free client for presigned URLs carries none
    plain = HttpSession(yard_server.url, token=world["admin"]).plain_client()
    try:
        plain.get(catcher + "/presigned")
    finally:
        plain.close()
    assert "authorization" not in _Catch.seen[-1]


# 15 --------------------------------------------------------------------------------------


def test_15_grants_die_with_their_model(yard_server: YardServer, world: dict[str, Any]) -> None:
    admin, walt = bearer(world["admin"]), bearer(world["walt"])
    base = yard_server.url + P + "/models/m"
    assert (
        httpx.put(base + "/grants/walt", json={"permission": "manage"}, headers=admin).status_code
        == 204
    )
    assert (
        httpx.put(base + "/grants/rita", json={"permission": "none"}, headers=admin).status_code
        == 204
    )
    assert httpx.delete(base, headers=admin).status_code == 204
    body = {"digest": world["digest"], "source": world["digest"]}
    assert httpx.post(base + "/versions", json=body, headers=admin).status_code == 201
    # the new "m" is another model: walt's manage and rita's none did not carry over
    assert httpx.delete(base, headers=walt).status_code == 403
    assert httpx.get(base, headers=bearer(world["rita"])).status_code == 200
    grants = httpx.get(base + "/grants", headers=admin).json()["grants"]
    assert grants == []
