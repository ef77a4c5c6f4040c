"""What bad input gets from the server: a 4xx naming the part, and nothing stored.

Names, aliases, tags and artifact paths go through the validators the Python
API uses; bodies are decoded strictly; blobs are checked against their names;
a version must have every file stored. Random bodies never get a 5xx.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.format.content import ContentManifest, FileEntry
from modelyard.store.trees import store_directory
from modelyard.yard import Yard
from tests._server import YardServer, start_yard_server

P = "/api/v1"


@pytest.fixture
def api(yard_server: YardServer) -> Iterator[httpx.Client]:
    yard_server.empty()
    with yard_server.client(yard_server.admin_token) as client:
        yield client


@pytest.fixture
def model(yard_server: YardServer, api: httpx.Client, tmp_path: Path) -> dict[str, Any]:
    """Model ``m`` v1 and a run ``R`` in experiment ``e``."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {}\n")
    (folder / "w.bin").write_bytes(b"w" * 100)
    yard = Yard(yard_server.backing)
    try:
        manifest = store_directory(yard.artifacts, folder)
        yard.metadata.create_model_version(
            "m", digest=manifest.digest, source=manifest.digest, files=manifest.entries
        )
        exp = yard.metadata.get_or_create_experiment("e")
        run = yard.metadata.create_run(exp.experiment_id)
    finally:
        yard.close()
    return {"digest": manifest.digest, "manifest": manifest, "run_id": run.run_id}


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    info: dict[str, Any] = response.json()["error"]
    assert info["code"]
    assert info["message"]
    return info


def versions(api: httpx.Client) -> list[int]:
    return [v["version"] for v in api.get(P + "/versions").json()["versions"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "../x"}, "model name"),
        ({"name": "a/b"}, "model name"),
        ({"name": "a\x00b"}, "model name"),
        ({"name": " x"}, "model name"),
        ({"name": ""}, "model name"),
        ({"name": "x" * 300}, "model name"),
        ({"name": "x", "tags": {"a/b": "1"}}, "tag key"),
        ({"name": "x", "bogus": 1}, "bogus"),
        ({"name": 3}, "name"),
        ({}, "name"),
    ],
)
def test_model_names_and_fields(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    info = error(api.post(P + "/models", json=body), 400)
    assert info["field"] == field, info
    assert api.get(P + "/models").json()["models"] == []  # nothing was made


def test_malformed_json_and_wrong_media_type(api: httpx.Client) -> None:
    error(
        api.post(P + "/models", content=b"{not json", headers={"content-type": "application/json"}),
        400,
    )
    error(
        api.post(
            P + "/models",
            content=b"name=x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        415,
    )
    info = error(api.get(P + "/models", params={"max_results": "lots"}), 400)
    assert info["field"] == "max_results"
    info = error(api.get(P + "/models", params={"max_results": "5000"}), 400)
    assert info["field"] == "max_results"
    info = error(api.get(P + "/models", params={"page_token": "garbage"}), 400)
    assert info["field"] == "page_token"
    error(api.get(P + "/models", params={"filter": "name ~ 'x'"}), 400)
    error(
        api.request(
            "DELETE",
            P + "/models/m",
            content=b'{"x": 1}',
            headers={"content-type": "application/json"},
        ),
        400,
    )


@pytest.mark.parametrize(
    ("path", "part"),
    [
        ("/models/m/aliases/latest", "alias"),
        ("/models/m/aliases/v3", "alias"),
        ("/models/m/aliases/a.b", "alias"),
        ("/models/m/versions/0", "version"),
        ("/models/m/versions/-1", "version"),
        ("/models/m/versions/one", "version"),
        ("/models/m:x", "model name"),
        ("/runs/abc$/end", "run id"),
        ("/blobs/XYZ", "sha256"),
        ("/tokens/zz", "token id"),
    ],
)
def test_path_parts_are_validated(
    api: httpx.Client, model: dict[str, Any], path: str, part: str
) -> None:
    method = "DELETE" if path.startswith(("/tokens", "/models/m/aliases")) else "GET"
    if path.endswith("/end"):
        method = "POST"
    info = error(api.request(method, P + path), 400)
    assert info["field"] == part, info


def test_a_version_is_immutable(api: httpx.Client, model: dict[str, Any]) -> None:
    info = error(api.patch(P + "/models/m/versions/1", json={"digest": "sha256:" + "0" * 64}), 400)
    assert info["field"] == "digest"
    # PUT imports a version with its number (a migration): never over other files
    assert api.put(P + "/models/m/versions/1", json={}).status_code == 400
    other = {"digest": "sha256:" + "0" * 64, "source": "sha256:" + "0" * 64}
    refused = api.put(P + "/models/m/versions/1", json=other)
    assert 400 <= refused.status_code < 500, refused.text
    assert api.get(P + "/models/m/versions/1").json()["digest"] == model["digest"]


def test_a_version_needs_every_blob_stored(
    yard_server: YardServer, api: httpx.Client, model: dict[str, Any]
) -> None:
    # a manifest that names a file nobody uploaded
    ghost = FileEntry("ghost.bin", 10, hashlib.sha256(b"never uploaded").hexdigest())
    manifest = ContentManifest(
        tuple(sorted((*model["manifest"].entries, ghost), key=lambda e: e.path))
    )
    text = manifest.to_text().encode()
    sha = hashlib.sha256(text).hexdigest()
    assert api.put(P + f"/blobs/{sha}", content=text).status_code == 201
    info = error(
        api.post(
            P + "/models/m/versions", json={"digest": manifest.digest, "source": manifest.digest}
        ),
        400,
    )
    assert info["code"] == "blob_missing"
    assert "ghost.bin" in info["message"]
    # a digest whose manifest was never uploaded at all
    nothing = "sha256:" + hashlib.sha256(b"no manifest").hexdigest()
    info = error(
        api.post(P + "/models/m/versions", json={"digest": nothing, "source": nothing}), 400
    )
    assert info["field"] == "digest"
    # a manifest blob that is not a manifest
    junk = b"\xff\xfe not a manifest"
    junk_sha = hashlib.sha256(junk).hexdigest()
    api.put(P + f"/blobs/{junk_sha}", content=junk)
    error(
        api.post(
            P + "/models/m/versions",
            json={"digest": "sha256:" + junk_sha, "source": "sha256:" + junk_sha},
        ),
        400,
    )
    # a manifest without an MLmodel
    bare = ContentManifest(tuple(e for e in model["manifest"].entries if e.path != "MLmodel"))
    bare_text = bare.to_text().encode()
    api.put(P + f"/blobs/{hashlib.sha256(bare_text).hexdigest()}", content=bare_text)
    info = error(
        api.post(P + "/models/m/versions", json={"digest": bare.digest, "source": bare.digest}), 400
    )
    assert "MLmodel" in info["message"]
    assert versions(api) == [1]


def test_run_files_must_be_stored_and_stay_inside(api: httpx.Client, model: dict[str, Any]) -> None:
    url = P + f"/runs/{model['run_id']}/files"
    stored = next(e for e in model["manifest"].entries if e.path == "w.bin")
    for path in ("../x", "/etc/passwd", "a/../../b", "C:/x", "a\x00b", ""):
        entry = {"path": path, "size": stored.size, "sha256": stored.sha256}
        info = error(api.post(url, json={"files": [entry]}), 400)
        assert info["field"] in ("artifact path", "files"), (path, info)
    wrong_size = {"path": "w.bin", "size": stored.size + 1, "sha256": stored.sha256}
    assert error(api.post(url, json={"files": [wrong_size]}), 400)["code"] == "blob_missing"
    never = {"path": "w.bin", "size": 3, "sha256": hashlib.sha256(b"abc").hexdigest()}
    assert error(api.post(url, json={"files": [never]}), 400)["code"] == "blob_missing"
    assert api.get(url).json()["files"] == []


def test_a_blob_must_hash_to_its_name(yard_server: YardServer, api: httpx.Client) -> None:
    name = hashlib.sha256(b"promised").hexdigest()
    info = error(api.put(P + f"/blobs/{name}", content=b"delivered"), 400)
    assert info["field"] == "sha256"
    assert api.post(P + "/blobs/missing", json={"sha256": [name]}).json()["missing"] == [name]
    tmp = Path(str(yard_server.blobs)) / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir())  # no leftover part either


def test_an_interrupted_upload_stores_nothing(yard_server: YardServer, api: httpx.Client) -> None:
    data = b"x" * 200_000
    name = hashlib.sha256(data).hexdigest()
    parts = urlsplit(yard_server.url)
    sock = socket.create_connection((parts.hostname, parts.port))
    head = (
        f"PUT {P}/blobs/{name} HTTP/1.1\r\nHost: 127.0.0.1:{parts.port}\r\n"
        f"Authorization: Bearer {yard_server.admin_token}\r\n"
        f"Content-Length: {len(data)}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    sock.sendall(head.encode() + data[:50_000])
    sock.close()
    import time

    time.sleep(0.5)
    assert api.post(P + "/blobs/missing", json={"sha256": [name]}).json()["missing"] == [name]


def test_oversize_bodies_are_refused(yard_server: YardServer, api: httpx.Client) -> None:
    big = b'{"name": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    error(api.post(P + "/models", content=big, headers={"content-type": "application/json"}), 413)

    def chunks() -> Any:
        for _ in range(17):
            yield b" " * (1024 * 1024)

    error(
        api.post(P + "/models", content=chunks(), headers={"content-type": "application/json"}), 413
    )
    error(api.post(P + "/blobs/missing", json={"sha256": ["0" * 64] * 10_001}), 413)


def test_an_upload_over_the_limit_is_refused(tmp_path: Path, server_database: str) -> None:
    import uuid

    from tests._yard import POSTGRES, _admin

    name = f"modelyard_small_{uuid.uuid4().hex[:10]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    process, token = start_yard_server(url, tmp_path / "blobs", "--max-upload", "1M")
    try:
        client = httpx.Client(base_url=process.url, headers={"authorization": f"Bearer {token}"})
        data = b"y" * (2 * 1024 * 1024)
        sha = hashlib.sha256(data).hexdigest()
        error(client.put(P + f"/blobs/{sha}", content=data), 413)

        def stream() -> Any:  # no Content-Length: refused while it streams
            yield data

        error(client.put(P + f"/blobs/{sha}", content=stream()), 413)
        assert client.post(P + "/blobs/missing", json={"sha256": [sha]}).json()["missing"] == [sha]
        client.close()
    finally:
        process.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
ROUTES = [
    ("POST", "/models"),
    ("PATCH", "/models/m"),
    ("POST", "/models/m/versions"),
    ("PUT", "/models/m/aliases/champion"),
    ("POST", "/models/m/rename"),
    ("POST", "/experiments"),
    ("POST", "/runs"),
    ("POST", "/runs/search"),
    ("POST", "/blobs/missing"),
    ("POST", "/tokens"),
    ("POST", "/users"),
    ("PUT", "/models/m/grants/admin"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(route=st.sampled_from(ROUTES), body=JSON)
def test_random_bodies_never_get_a_5xx(
    yard_server: YardServer, route: tuple[str, str], body: Any
) -> None:
    method, path = route
    with yard_server.client(yard_server.admin_token) as c:
        response = c.request(method, P + path, json=body)
    assert response.status_code < 500, (method, path, body, response.text)


def test_no_answer_names_the_servers_paths(
    yard_server: YardServer, api: httpx.Client, model: dict[str, Any]
) -> None:
    where = str(yard_server.blobs)
    # a manifest not in canonical order
    unsorted = "".join(
        f"{e.sha256}  {e.size}  {e.path}\n" for e in reversed(model["manifest"].entries)
    ).encode()
    sha = hashlib.sha256(unsorted).hexdigest()
    api.put(P + f"/blobs/{sha}", content=unsorted)
    info = error(
        api.post(
            P + "/models/m/versions", json={"digest": f"sha256:{sha}", "source": f"sha256:{sha}"}
        ),
        400,
    )
    assert "canonical" in info["message"]
    assert where not in json.dumps(info)
    # a file damaged in the store: the server's fault, a 500 with a request id only
    manifest_blob = Path(where) / "sha256" / model["digest"][7:9] / model["digest"][7:]
    original = manifest_blob.read_bytes()
    os.chmod(manifest_blob, 0o644)
    manifest_blob.write_bytes(b"damaged")
    try:
        damaged = api.get(P + "/models/m/versions/1/files")
    finally:  # the blob folder outlives this test: put the bytes back
        manifest_blob.write_bytes(original)
    info = error(damaged, 500)
    assert damaged.headers["x-request-id"] in info["message"]
    assert where not in damaged.text
