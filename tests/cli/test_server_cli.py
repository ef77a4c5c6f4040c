"""The ``modelyard`` command against a real ``modelyard server``, as a user runs it: a
subprocess with ``MODELYARD_URI=http://...`` and ``MODELYARD_TOKEN`` in its environment.

Registry and runs commands work unchanged over HTTP; ``server init-admin``,
``token``, ``permission`` and ``audit`` administer the server; every mistake is
one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelyard as my
from modelyard.yard import Yard
from tests._server import YardServer

CLI = [sys.executable, "-c", "from modelyard.cli import main; main()"]
_CLIENT_ENV = ("MODELYARD_HTTP_RETRIES", "MODELYARD_HTTP_TIMEOUT", "MODELYARD_CA_BUNDLE")


def run(
    server: YardServer | str, token: str | None, *args: str, code: int = 0
) -> subprocess.CompletedProcess[str]:
    """``modelyard ARGS`` against ``server`` (a URL or the server) acting with ``token``."""
    env = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV}
    env.pop("MODELYARD_TOKEN", None)
    env["MODELYARD_URI"] = server if isinstance(server, str) else server.url
    env["COLUMNS"] = "200"  # tables unwrapped
    if token is not None:
        env["MODELYARD_TOKEN"] = token
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, check=False, timeout=120
    )
    assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def refused(server: YardServer | str, token: str | None, *args: str, code: int = 1) -> str:
    """The one line a refused command prints on stderr (nothing on stdout)."""
    done = run(server, token, *args, code=code)
    assert done.stdout == "", done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(done.stdout)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def filled(http_yard: Yard, yard_server: YardServer, iris_model: Any) -> YardServer:
    """Two versions of 'fraud' (v2 @champion) from two runs in experiment 'fraud'."""
    for c in (1.0, 2.0):
        with my.start_run(experiment="fraud", run_name=f"C={c}"):
            my.log_params({"C": c})
            my.log_metric("auc", 0.9 + c / 100)
            my.log_model(iris_model, "model", registered_model_name="fraud")
    my.set_alias("fraud", "champion", 2)
    my.update_registered_model("fraud", description="card fraud")
    return yard_server


def test_registry_and_runs_commands_over_http(filled: YardServer) -> None:
    admin = filled.admin_token
    listed = as_json(run(filled, admin, "models", "list", "--json"))
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in listed] == [
        ("fraud", 2, {"champion": 2})
    ]
    assert "card fraud" in run(filled, admin, "models", "list").stdout
    shown = as_json(run(filled, admin, "models", "show", "fraud", "--json"))
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    assert shown["versions"][0]["aliases"] == ["champion"]
    versions = as_json(run(filled, admin, "models", "versions", "fraud", "--json"))
    assert [v["source"].split("/")[-1] for v in versions] == ["model", "model"]
    assert {v["created_by"] for v in versions} == {"admin"}

    moved = run(filled, admin, "alias", "set", "fraud", "champion", "1")
    assert moved.stdout.strip() == "models:/fraud@champion -> v1 (was v2)"
    assert run(filled, admin, "alias", "delete", "fraud", "champion").returncode == 0
    history = as_json(run(filled, admin, "alias", "history", "fraud", "champion", "--json"))
    assert [(h["from_version"], h["to_version"], h["changed_by"]) for h in history] == [
        (None, 2, "admin"),
        (2, 1, "admin"),
        (1, None, "admin"),
    ]
    assert "(removed)" in run(filled, admin, "alias", "history", "fraud", "champion").stdout

    runs = as_json(
        run(
            filled, admin, "runs", "list", "-e", "fraud", "--order-by", "metrics.auc DESC", "--json"
        )
    )
    assert [r["params"]["C"] for r in runs] == ["2.0", "1.0"]
    assert {r["status"] for r in runs} == {"FINISHED"}
    only = as_json(run(filled, admin, "runs", "list", "--filter", "params.C = '1.0'", "--json"))
    assert [r["name"] for r in only] == ["C=1.0"]

    line = refused(filled, admin, "models", "show", "frod")
    assert "did you mean 'fraud'?" in line


def test_a_protected_alias_moves_only_with_manage(filled: YardServer) -> None:
    admin = filled.admin_token
    user = _unique("wes")
    writer = filled.token(user, "writer")
    run(filled, admin, "permission", "grant", user, "edit", "--model", "fraud")
    run(filled, writer, "alias", "set", "fraud", "champion", "1")  # edit moves it
    done = run(filled, admin, "alias", "protect", "fraud", "champion")
    assert done.stdout.strip() == "models:/fraud@champion is protected"
    line = refused(filled, writer, "alias", "set", "fraud", "champion", "2")
    assert "protected" in line
    assert "manage" in line
    assert refused(filled, writer, "alias", "delete", "fraud", "champion").count("protected")
    run(filled, writer, "alias", "set", "fraud", "challenger", "2")  # others still move
    run(filled, admin, "alias", "set", "fraud", "champion", "2")  # admin has manage
    assert "protect" in refused(filled, writer, "alias", "protect", "fraud", "champion", "--undo")
    run(filled, admin, "alias", "protect", "fraud", "champion", "--undo")
    run(filled, writer, "alias", "set", "fraud", "champion", "1")
    aliases = as_json(run(filled, admin, "models", "show", "fraud", "--json"))["aliases"]
    assert aliases == {"champion": 1, "challenger": 2}


def test_init_admin_and_tokens(yard_server: YardServer, http_yard: Yard, tmp_path: Path) -> None:
    admin_name = _unique("root")
    made = run(
        yard_server,
        None,
        "server",
        "init-admin",
        "--yard",
        yard_server.backing,
        "--name",
        admin_name,
    )
    root = made.stdout.strip()
    assert made.stdout == root + "\n"  # the secret alone on stdout
    assert "shown this once" in made.stderr
    assert root not in made.stderr
    whoami = httpx.get(
        yard_server.url + "/api/v1/whoami", headers={"authorization": f"Bearer {root}"}
    )
    assert (whoami.json()["name"], whoami.json()["role"]) == (admin_name, "admin")

    ci = _unique("ci")
    created = run(
        yard_server, root, "token", "create", "--user", ci, "--role", "writer", "--name", "nightly"
    )
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n"
    assert len(secret) > 20
    assert "shown this once" in created.stderr
    assert secret not in created.stderr
    assert run(yard_server, secret, "models", "list").returncode == 0  # it works

    listed = run(yard_server, root, "token", "list", "--user", ci)
    mine = as_json(run(yard_server, root, "token", "list", "--user", ci, "--json"))
    assert [(t["user"], t["name"], t["active"]) for t in mine] == [(ci, "nightly", True)]
    token_id = mine[0]["token_id"]
    assert token_id in listed.stdout
    everyone = run(yard_server, root, "token", "list", "--json").stdout
    for text in (listed.stdout, everyone, json.dumps(mine)):
        assert secret not in text
        assert root not in text
        assert yard_server.admin_token not in text
    # a second token for the same user; a user's own listing shows only theirs
    run(yard_server, root, "token", "create", "--user", ci)
    own = as_json(run(yard_server, secret, "token", "list", "--json"))
    assert {t["user"] for t in own} == {ci}
    assert len(own) == 2

    revoked = run(yard_server, root, "token", "revoke", token_id)
    assert revoked.stdout.strip() == f"revoked token {token_id}"
    after = httpx.get(
        yard_server.url + "/api/v1/models", headers={"authorization": f"Bearer {secret}"}
    )
    assert after.status_code == 401
    assert "revoked" in refused(yard_server, secret, "models", "list")
    state = as_json(run(yard_server, root, "token", "list", "--user", ci, "--json"))
    assert {t["token_id"]: t["active"] for t in state}[token_id] is False

    # mistakes: one line each
    reader = yard_server.token(_unique("rita"), "reader")
    assert "admin" in refused(yard_server, reader, "token", "create", "--user", ci)
    assert "no user 'nobody" in refused(
        yard_server, root, "token", "create", "--user", "nobody-" + uuid.uuid4().hex[:6]
    )
    assert "not a modelyard server" in refused(str(tmp_path / "embedded"), None, "token", "list")
    assert "MODELYARD_TOKEN" in refused(yard_server, None, "token", "list")


def test_permission_grant_revoke_list(filled: YardServer) -> None:
    admin = filled.admin_token
    wes, rita = _unique("wes"), _unique("rita")
    writer = filled.token(wes, "writer")
    reader = filled.token(rita, "reader")

    # a writer reads models but may not move aliases until granted edit
    assert "edit permission" in refused(filled, writer, "alias", "set", "fraud", "stable", "1")
    done = run(filled, admin, "permission", "grant", wes, "edit", "--model", "fraud")
    assert done.stdout.strip() == f"{wes} now has edit on model 'fraud'"
    run(filled, writer, "alias", "set", "fraud", "stable", "1")
    grants = as_json(run(filled, admin, "permission", "list", "--model", "fraud", "--json"))
    assert {(g["user"], g["permission"]) for g in grants} == {(wes, "edit")}

    # experiments: 'none' hides one (and its runs) from a reader
    assert len(as_json(run(filled, reader, "runs", "list", "-e", "fraud", "--json"))) == 2
    run(filled, admin, "permission", "grant", rita, "none", "--experiment", "fraud")
    grants = as_json(run(filled, admin, "permission", "list", "--experiment", "fraud", "--json"))
    assert [(g["kind"], g["user"], g["permission"]) for g in grants] == [
        ("experiment", rita, "none")
    ]
    assert "fraud" in refused(filled, reader, "runs", "list", "-e", "fraud")
    held = as_json(run(filled, reader, "permission", "list", "--json"))  # one's own grants
    assert [(g["resource"], g["permission"]) for g in held] == [("fraud", "none")]
    run(filled, admin, "permission", "revoke", rita, "--experiment", "fraud")
    assert len(as_json(run(filled, reader, "runs", "list", "-e", "fraud", "--json"))) == 2

    done = run(filled, admin, "permission", "revoke", wes, "--model", "fraud")
    assert done.stdout.strip() == f"removed {wes}'s grant on model 'fraud'"
    assert "edit permission" in refused(filled, writer, "alias", "set", "fraud", "stable", "2")
    assert as_json(run(filled, admin, "permission", "list", "--model", "fraud", "--json")) == []

    # mistakes
    nobody = "nobody-" + uuid.uuid4().hex[:6]
    assert f"no user '{nobody}'" in refused(
        filled, admin, "permission", "grant", nobody, "read", "--model", "fraud"
    )
    assert "manage" in refused(
        filled, writer, "permission", "grant", rita, "read", "--model", "fraud"
    )
    assert "frod" in refused(filled, admin, "permission", "grant", wes, "read", "--model", "frod")
    # A bad word is refused by click before anything runs: exit 2, stated on one line
    # (click puts its usage line above it).
    done = run(filled, admin, "permission", "grant", wes, "owner", "--model", "fraud", code=2)
    assert done.stdout == ""
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    assert "'owner' is not one of 'none', 'read', 'edit', 'manage'" in errors[0]


def test_audit_by_actor_target_and_time(filled: YardServer, saved_iris: Path) -> None:
    admin = filled.admin_token
    wes = _unique("wes")
    writer = filled.token(wes, "writer")
    my.register_model(saved_iris, "fraud-eu")  # a name that starts like 'fraud'
    my.set_alias("fraud-eu", "champion", 1)
    time.sleep(0.05)
    mark = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.05)
    run(filled, admin, "permission", "grant", wes, "edit", "--model", "fraud")
    run(filled, writer, "alias", "set", "fraud", "champion", "1")

    fraud = as_json(run(filled, admin, "audit", "--target", "models:/fraud", "--json"))
    targets = {e["target"] for e in fraud}
    assert {
        "models:/fraud/1",
        "models:/fraud/2",
        "models:/fraud@champion",
        "models:/fraud",
    } <= targets
    assert not [t for t in targets if t.startswith("models:/fraud-eu")]
    assert all(t == "models:/fraud" or t[len("models:/fraud")] in "/@" for t in targets)
    moves = [e for e in fraud if e["action"] == "alias.set"]
    assert [(e["actor"], e["detail"]["from"], e["detail"]["to"]) for e in moves] == [
        (wes, 2, 1),  # newest first
        ("admin", None, 2),
    ]

    by_wes = as_json(run(filled, admin, "audit", "--actor", wes, "--json"))
    assert [(e["action"], e["target"]) for e in by_wes] == [("alias.set", "models:/fraud@champion")]

    since = as_json(run(filled, admin, "audit", "--since", mark.isoformat(), "--json"))
    assert [e["action"] for e in since] == ["alias.set", "grant.set"]
    assert all(e["at"] >= mark.timestamp() * 1000 for e in since)
    table = run(filled, admin, "audit", "--since", mark.isoformat()).stdout
    assert "2 -> 1" in table
    assert wes in table

    assert "admin" in refused(filled, writer, "audit")
    done = run(filled, admin, "audit", "--since", "yesterday", code=2)
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr
    assert "'yesterday' is not an ISO date or time" in errors[0]
