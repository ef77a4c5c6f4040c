"""A real S3 server for the tests: Ceph RGW on loopback, started once per session.

``s3_server`` runs ``scripts/s3-server.sh`` in a temporary folder (free ports,
an in-memory OSD) and stops it at the end. Nothing is exported globally:
``s3_env`` puts the server's ``AWS_*`` variables into the environment of one
test (and hides the developer's own AWS configuration), and ``s3_bucket`` is a
fresh bucket for that test, emptied and removed after it.

Tests that use them carry the ``s3`` marker (``-m "not s3"`` skips them, and
then the server never starts). The fixture installs nothing: without the Ceph
binaries it fails and says to run ``make test``, which installs them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "s3-server.sh"
_BINARIES = ("radosgw", "radosgw-admin", "ceph-mon", "ceph-osd", "ceph")


@dataclass(frozen=True)
class S3Server:
    """A running RGW: where it listens and the credentials of its one user."""

    folder: Path
    env: dict[str, str]
    started_in: float

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.env["AWS_ENDPOINT_URL"]

    def client(self) -> S3Client:
        """A boto3 client for the server, configured explicitly (no environment needed)."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_REGION"],
        )


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, value = line[len("export ") :].partition("=")
            env[name] = value
    return env


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """Ceph RGW on loopback for this session (about 6-10 s to start)."""
    missing = [b for b in _BINARIES if shutil.which(b) is None]
    if missing:
        pytest.fail(
            f"the test S3 server needs Ceph ({', '.join(missing)} not found): run `make test`, "
            "which installs radosgw ceph-mon ceph-osd ceph-common, or deselect with -m 'not s3'"
        )
    folder = tmp_path_factory.mktemp("s3-server")
    t0 = time.monotonic()
    try:
        started = subprocess.run(
            [str(SCRIPT), "start", str(folder)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if started.returncode != 0:
            log = folder / "start.log"
            tail = log.read_text()[-3000:] if log.exists() else ""
            pytest.fail(f"the S3 server did not start: {started.stderr.strip()}\n{tail}")
        server = S3Server(folder, _parse_env(started.stdout), time.monotonic() - t0)
        yield server
    finally:
        subprocess.run([str(SCRIPT), "stop", str(folder)], timeout=60, check=False)


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The server's ``AWS_*`` variables for this test only, and none of the developer's."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "AWS_DEFAULT_REGION",
        "AWS_REQUEST_CHECKSUM_CALCULATION",
        "AWS_RESPONSE_CHECKSUM_VALIDATION",
        "MODELYARD_S3_PART_SIZE",
        "MODELYARD_S3_CONCURRENCY",
    ):
        monkeypatch.delenv(name, raising=False)
    # no ~/.aws files, and never the instance metadata service (not loopback)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket for this test; emptied and removed after it (memory is RAM)."""
    client = s3_server.client()
    name = f"t-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        _remove_bucket(client, name)


def _remove_bucket(client: S3Client, name: str) -> None:
    uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=name, Delete={"Objects": keys})
    client.delete_bucket(Bucket=name)
