"""Servers are stateless: two of them over one database are one yard.

Eight processes register versions of one model at once, half through each of
two server processes (each with two workers) over one PostgreSQL database and
one blob folder: the versions are exactly 1..8, and a token revoked through
one server is refused by the other at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests._process import ServerProcess
from tests._server import start_yard_server
from tests._yard import POSTGRES, _admin

P = "/api/v1"

REGISTER = textwrap.dedent(
    """
    import sys
    import modelyard as my
    v = my.register_model(sys.argv[1], "shared")
    print(v.version)
    """
)


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess, str]]:
    name = f"modelyard_two_{uuid.uuid4().hex[:10]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    blobs = tmp_path / "blobs"
    first, token = start_yard_server(url, blobs, "--workers", "2")
    second = ServerProcess(["--yard", f"{url}?blobs={blobs}", "--workers", "2"], command="server")
    try:
        yield first, second, token
    finally:
        for server in (first, second):
            server.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_eight_processes_through_two_servers_get_versions_one_to_eight(
    two_servers: tuple[ServerProcess, ServerProcess, str], saved_iris: Path, tmp_path: Path
) -> None:
    first, second, token = two_servers
    script = tmp_path / "register.py"
    script.write_text(REGISTER)
    procs = []
    for i in range(8):
        server = first if i % 2 else second
        env = {
            **os.environ,
            "MODELYARD_URI": server.url,
            "MODELYARD_TOKEN": token,
            "MODELYARD_CACHE": str(tmp_path / f"cache{i}"),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script), str(saved_iris)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    got = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
        got.append(int(out.strip().splitlines()[-1]))
    assert sorted(got) == list(range(1, 9))
    headers = {"authorization": f"Bearer {token}"}
    listed = httpx.get(second.url + P + "/versions", headers=headers).json()["versions"]
    assert sorted(v["version"] for v in listed) == list(range(1, 9))
    # every upload after the first found its blobs there already: one set of files
    blob_files = [p for p in (tmp_path / "blobs" / "sha256").rglob("*") if p.is_file()]
    assert len(blob_files) == len({p.name for p in blob_files})


def test_a_token_revoked_on_one_server_is_refused_by_the_other(
    two_servers: tuple[ServerProcess, ServerProcess, str],
) -> None:
    first, second, token = two_servers
    admin = {"authorization": f"Bearer {token}"}
    assert (
        httpx.post(
            first.url + P + "/users", json={"name": "ci", "role": "writer"}, headers=admin
        ).status_code
        == 201
    )
    made = httpx.post(first.url + P + "/tokens", json={"user": "ci"}, headers=admin).json()
    ci = {"authorization": f"Bearer {made['token']}"}
    for server in (first, second):
        assert httpx.get(server.url + P + "/whoami", headers=ci).status_code == 200
    assert (
        httpx.delete(
            first.url + P + f"/tokens/{made['info']['token_id']}", headers=admin
        ).status_code
        == 204
    )
    for server in (second, first, second):  # both workers of each, several times
        for _ in range(4):
            assert httpx.get(server.url + P + "/whoami", headers=ci).status_code == 401


def test_versions_registered_before_the_server_get_their_file_lists(
    tmp_path: Path, saved_iris: Path
) -> None:
    from modelyard.store.trees import store_directory
    from modelyard.yard import Yard

    name = f"modelyard_old_{uuid.uuid4().hex[:10]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    blobs = tmp_path / "blobs"
    yard = Yard(f"{url}?blobs={blobs}")
    try:  # as an older modelyard did: no file list beside the version
        manifest = store_directory(yard.artifacts, saved_iris)
        yard.metadata.create_model_version("old", digest=manifest.digest, source=manifest.digest)
    finally:
        yard.close()
    server, token = start_yard_server(url, blobs)
    try:
        headers = {"authorization": f"Bearer {token}"}
        for entry in manifest.entries:
            got = httpx.get(server.url + P + f"/blobs/{entry.sha256}", headers=headers)
            assert got.status_code == 200, entry.path
        assert "recorded the file lists of 1 older version" in server.log
    finally:
        server.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
