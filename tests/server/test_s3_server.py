"""A team yard as docs/server.md starts it: PostgreSQL for metadata, a real S3 bucket for files.

The server runs over ``postgresql://…?artifacts=s3://<bucket>/yard`` with the S3
endpoint and keys in its environment only (the standard ``AWS_*`` variables, as
``scripts/s3-server.sh`` prints them). A writer logs and registers through it,
and a big file comes back down from a presigned URL straight from the bucket:
the server hands out the URL and is never asked for the bytes, and no token
goes to the bucket.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelyard as my
from tests._process import ServerProcess
from tests._proxy import HttpProxy
from tests._s3 import S3Server
from tests._server import YardServer
from tests._yard import POSTGRES, _admin

pytestmark = pytest.mark.s3

MIB = 1024 * 1024


@pytest.fixture
def s3_yard_server(
    s3_env: S3Server, s3_bucket: str, tmp_path: Path
) -> Iterator[tuple[ServerProcess, str, str]]:
    name = f"modelyard_s3_{uuid.uuid4().hex[:10]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    database = f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    yard_uri = f"{database}?artifacts=s3://{s3_bucket}/yard"
    from modelyard.server.run import init_admin
    from modelyard.yard import Yard

    yard = Yard(yard_uri)
    try:
        token = init_admin(yard)
    finally:
        yard.close()
    process = ServerProcess(["--yard", yard_uri], env=dict(os.environ), command="server")
    try:
        yield process, token, s3_bucket
    finally:
        process.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_log_register_and_load_through_a_server_over_postgresql_and_s3(
    s3_yard_server: tuple[ServerProcess, str, str],
    s3_env: S3Server,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, admin_token, bucket = s3_yard_server
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text("flavors: {}\n")
    weights = os.urandom(40 * MIB)
    (model / "weights.bin").write_bytes(weights)
    server = YardServer(process.url, "", tmp_path, process, admin_token)
    writer = server.token("ci", "writer")
    with server.use(writer, tmp_path / "cache-up"):
        version = my.register_model(model, "big")
        my.set_alias("big", "champion", version.version)
    # the files are in the bucket, under their sha256
    keys = {
        o["Key"]
        for o in s3_env.client().list_objects_v2(Bucket=bucket, Prefix="yard/").get("Contents", [])
    }
    import hashlib

    assert (
        f"yard/sha256/{hashlib.sha256(weights).hexdigest()[:2]}/"
        + hashlib.sha256(weights).hexdigest()
        in keys
    )
    # a reader loads by alias through a proxy that records what reaches the server
    reader = server.token("rita", "reader")
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)  # the client needs no S3 credentials at all
    with HttpProxy(process.url) as proxy:
        through = YardServer(proxy.url, "", tmp_path, process, admin_token)
        with through.use(reader, tmp_path / "cache-down"):
            from modelyard.loading.fetch import fetch
            from modelyard.loading.resolve import resolve

            got = fetch(resolve("models:/big@champion"))
        assert (got.path / "weights.bin").read_bytes() == weights
        big = hashlib.sha256(weights).hexdigest()
        asked = [s.target for s in proxy.seen]
        assert any(t.endswith(f"/blobs/{big}/url") for t in asked)
        assert not any(t.split("?")[0].endswith(f"/blobs/{big}") for t in asked), asked
