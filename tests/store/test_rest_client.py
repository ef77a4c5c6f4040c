"""The yard client over real sockets: unreachable and restarted servers, retries, idempotent
writes, timeouts, TLS, where the token goes, the warm cache, fork safety.

Everything here is real: ``modelyard server`` processes over the session's
PostgreSQL database (stateless: a second server over the same database is the
same yard), a loopback proxy (:mod:`tests._proxy`) that records, delays, drops
or answers requests, and a small HTTP server standing in for a presigned URL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.server
import ipaddress
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import modelyard as my
from modelyard import yard as yards
from modelyard.errors import ModelyardError, ServerError, YardError
from modelyard.store.rest.admin import server_admin
from modelyard.store.rest.artifacts import HttpArtifactStore
from modelyard.yard import Yard
from tests._process import ServerProcess
from tests._proxy import DROP, FORWARD, Answer, HttpProxy, Rewrite, Seen, Stall
from tests._server import YardServer

P = "/api/v1"
_CLIENT_ENV = (
    "MODELYARD_HTTP_RETRIES",
    "MODELYARD_HTTP_TIMEOUT",
    "MODELYARD_CA_BUNDLE",
    "MODELYARD_TLS_VERIFY",
)


@contextlib.contextmanager
def yard_at(url: str, token: str, cache: Path, **env: str) -> Iterator[Yard]:
    """The server at ``url`` as the yard in use, with ``token`` and client settings ``env``
    (the yard in use before is in use again afterwards)."""
    before = yards._State.current
    mp = pytest.MonkeyPatch()
    mp.delenv("MODELYARD_URI", raising=False)
    for name in _CLIENT_ENV:
        mp.delenv(name, raising=False)
    mp.setenv("MODELYARD_TOKEN", token)
    mp.setenv("MODELYARD_CACHE", str(cache))
    for name, value in env.items():
        mp.setenv(name, value)
    yard = yards.set_yard(url)
    try:
        yield yard
    finally:
        yard.close()
        mp.undo()
        yards.set_yard(before.uri if before is not None else None)


@pytest.fixture
def iris_server(http_yard: Yard, yard_server: YardServer, saved_iris: Path) -> YardServer:
    """The session's server, emptied, with ``iris`` v1 registered and ``@champion`` on it."""
    my.register_model(saved_iris, "iris")
    my.set_alias("iris", "champion", 1)
    return yard_server


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text, text
    # no httpx/ssl exception chained under it in a traceback
    assert exc.__cause__ is None
    assert exc.__suppress_context__ or exc.__context__ is None, repr(exc.__context__)
    return text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- reaching the server ------------------------------------------------------------------


def test_an_unreachable_server_is_one_line_naming_the_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with yard_at(url, "myd_unused", tmp_path / "cache", MODELYARD_HTTP_RETRIES="2"):
        started = time.monotonic()
        with pytest.raises(YardError) as info:
            my.get_registered_model("iris")
        took = time.monotonic() - started
    text = _one_line(info.value)
    assert url in text
    assert "connection refused" in text
    assert "after 2 attempts" in text
    assert took < 5, took


def test_a_server_restarted_on_its_port_is_reached_again(
    iris_server: YardServer, tmp_path: Path
) -> None:
    first = ServerProcess(["--yard", iris_server.backing], command="server")
    port = str(urlsplit(first.url).port)
    restarted: list[ServerProcess] = []
    with yard_at(
        first.url, iris_server.admin_token, tmp_path / "cache", MODELYARD_HTTP_RETRIES="12"
    ):
        try:
            assert my.get_registered_model("iris").latest_version == 1  # a pooled connection
            assert first.stop() == 0
            # Back on the same port while the client is already asking (refused, retried).
            starter = threading.Thread(
                target=lambda: restarted.append(
                    ServerProcess(["--yard", iris_server.backing, "--port", port], command="server")
                )
            )
            starter.start()
            try:
                assert my.get_model_version_by_alias("iris", "champion").version == 1
            finally:
                starter.join(120)
            assert restarted, "the second server did not start"
            assert restarted[0].url == first.url
            # ...and writes keep working on the new process
            my.set_alias("iris", "stable", 1)
            assert my.get_registered_model("iris").aliases == {"champion": 1, "stable": 1}
        finally:
            first.stop()
            for server in restarted:
                server.stop()


def test_503_from_a_proxy_is_retried_and_a_write_keeps_its_key(
    iris_server: YardServer, saved_iris: Path, tmp_path: Path
) -> None:
    busy = {"GET": 2, "POST": 2}

    def rule(seen: Seen) -> Any:
        hit = seen.path.endswith("/models/x") or seen.path.endswith("/models/x/versions")
        if hit and busy.get(seen.method, 0) > 0:
            busy[seen.method] -= 1
            return Answer(503, {"retry-after": "0", "content-type": "text/plain"}, b"busy")
        return FORWARD

    with (
        HttpProxy(iris_server.url, rule) as proxy,
        yard_at(proxy.url, iris_server.admin_token, tmp_path / "cache"),
    ):
        assert my.register_model(saved_iris, "x").version == 1
        assert my.get_registered_model("x").latest_version == 1
    posts = proxy.requests("POST", "/models/x/versions")
    assert [p.status for p in posts] == [503, 503, 201]
    assert len({p.headers["idempotency-key"] for p in posts}) == 1
    gets = [s for s in proxy.requests("GET") if s.path == P + "/models/x"]
    assert [g.status for g in gets] == [503, 503, 200]
    assert [v.version for v in my.search_model_versions("name = 'x'")] == [1]


# -- idempotent writes ----------------------------------------------------------------------


def test_a_lost_answer_to_a_version_create_makes_one_version(
    iris_server: YardServer, saved_iris: Path, tmp_path: Path
) -> None:
    dropped: list[Seen] = []

    def rule(seen: Seen) -> Any:
        if seen.method == "POST" and seen.path.endswith("/versions") and not dropped:
            dropped.append(seen)
            return DROP  # the server registers it; the client never hears back
        return FORWARD

    with (
        HttpProxy(iris_server.url, rule) as proxy,
        yard_at(proxy.url, iris_server.admin_token, tmp_path / "cache"),
    ):
        made = my.register_model(saved_iris, "x")
    assert made.version == 1
    first, retry = proxy.requests("POST", "/models/x/versions")
    assert first.status is None  # the connection was closed before any answer
    assert retry.headers["idempotency-key"] == first.headers["idempotency-key"]
    assert retry.body == first.body
    assert (retry.status, retry.answer_headers.get("idempotent-replay")) == (201, "true")
    assert retry.answer_body == first.answer_body  # the first attempt's answer, replayed
    assert json.loads(retry.answer_body)["version"] == 1
    assert [v.version for v in my.search_model_versions("name = 'x'")] == [1]
    created = server_admin().audit(target="models:/x", action="version.create")
    assert [e["target"] for e in created] == ["models:/x/1"]


def test_one_idempotency_key_is_one_request(iris_server: YardServer) -> None:
    key = uuid.uuid4().hex
    with iris_server.client(iris_server.admin_token) as c:
        first = c.post(P + "/models", json={"name": "k1"}, headers={"idempotency-key": key})
        again = c.post(P + "/models", json={"name": "k1"}, headers={"idempotency-key": key})
        other = c.post(P + "/models", json={"name": "k2"}, headers={"idempotency-key": key})
        missing = c.get(P + "/models/k2")
        fresh = c.post(P + "/models", json={"name": "k1"}, headers={"idempotency-key": "x" + key})
    assert first.status_code == 201, first.text
    assert "idempotent-replay" not in first.headers
    assert (again.status_code, again.headers.get("idempotent-replay")) == (201, "true")
    assert again.content == first.content
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert missing.status_code == 404  # the refused request did nothing
    assert fresh.status_code == 409  # a new key is a new request: k1 exists now


# -- timeouts --------------------------------------------------------------------------------


def test_the_read_timeout_is_honoured(iris_server: YardServer, tmp_path: Path) -> None:
    stall = {"seconds": 0.3}

    def rule(seen: Seen) -> Any:
        return Stall(stall["seconds"]) if seen.path == P + "/models/iris" else FORWARD

    token, cache = iris_server.admin_token, tmp_path / "cache"
    with HttpProxy(iris_server.url, rule) as proxy:
        with yard_at(proxy.url, token, cache, MODELYARD_HTTP_TIMEOUT="3"):
            assert my.get_registered_model("iris").latest_version == 1  # slow, not too slow
        stall["seconds"] = math.inf
        with yard_at(
            proxy.url, token, cache, MODELYARD_HTTP_TIMEOUT="1", MODELYARD_HTTP_RETRIES="2"
        ):
            started = time.monotonic()
            with pytest.raises(YardError) as info:
                my.get_registered_model("iris")
            took = time.monotonic() - started
    text = _one_line(info.value)
    assert proxy.url in text
    assert "timed out" in text
    assert "after 2 attempts" in text
    assert 2 <= took < 6, took
    assert len([s for s in proxy.requests("GET") if s.path == P + "/models/iris"]) == 3


# -- TLS -------------------------------------------------------------------------------------


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (an IP SAN) and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelyard test server")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


def test_tls_with_a_ca_bundle_without_one_and_unverified(
    iris_server: YardServer, tmp_path: Path, iris: Any
) -> None:
    cert, key = _self_signed(tmp_path)
    server = ServerProcess(
        ["--yard", iris_server.backing, "--certfile", str(cert), "--keyfile", str(key)],
        command="server",
    )
    token = iris_server.admin_token
    try:
        assert server.url.startswith("https://127.0.0.1:")
        with yard_at(server.url, token, tmp_path / "c1", MODELYARD_CA_BUNDLE=str(cert)):
            model = my.load_model("models:/iris@champion")  # metadata and blobs over TLS
            assert len(model.predict(iris[0].head(3))) == 3
        with yard_at(server.url, token, tmp_path / "c2"):
            started = time.monotonic()
            with pytest.raises(YardError) as info:
                my.get_registered_model("iris")
            took = time.monotonic() - started
        text = _one_line(info.value)
        assert server.url in text
        assert "certificate" in text.lower()
        assert "MODELYARD_CA_BUNDLE" in text
        assert took < 1.5, took  # an untrusted certificate is not retried
        with yard_at(server.url, token, tmp_path / "c3", MODELYARD_TLS_VERIFY="false"):
            assert my.get_registered_model("iris").aliases == {"champion": 1}
        # The CLI says the same in one line, without a traceback.
        env = {**os.environ, **iris_server.env(token), "MODELYARD_URI": server.url}
        for name in _CLIENT_ENV:
            env.pop(name, None)
        done = subprocess.run(
            [sys.executable, "-c", "from modelyard.cli import main; main()", "models", "list"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
        assert done.returncode == 1, done
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert server.url in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        assert server.stop() == 0, server.log


# -- where the token goes ----------------------------------------------------------------------


def _recording(data: bytes, redirect_to: str = "") -> type[http.server.BaseHTTPRequestHandler]:
    """A handler standing in for a presigned URL: ``data`` by Range (or a redirect);
    the headers of every request it gets go to its ``seen`` list."""

    class Handler(http.server.BaseHTTPRequestHandler):
        seen: list[dict[str, str]] = []
        location = redirect_to

        def do_GET(self) -> None:
            self.seen.append({k.lower(): v for k, v in self.headers.items()})
            if self.location:
                self.send_response(302)
                self.send_header("location", self.location)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            first, _, last = self.headers["range"].removeprefix("bytes=").partition("-")
            part = data[int(first) : int(last) + 1]
            self.send_response(206)
            self.send_header("content-range", f"bytes {first}-{last}/{len(data)}")
            self.send_header("content-length", str(len(part)))
            self.end_headers()
            self.wfile.write(part)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextlib.contextmanager
def _http_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_token_goes_to_the_yard_only(iris_server: YardServer, tmp_path: Path) -> None:
    # 40 MiB: copy_to takes the parallel, ranged path (presigned when the server offers it)
    data = os.urandom(40 * 1024 * 1024)
    sha256 = hashlib.sha256(data).hexdigest()
    (tmp_path / "big.bin").write_bytes(data)
    with my.start_run():
        my.log_artifact(tmp_path / "big.bin")  # a run holds it: the admin may read it
    trap = _recording(b"")
    presigned = _recording(data)
    with _http_server(presigned) as presigned_url, _http_server(trap) as trap_url:
        signed = f"{presigned_url}/bucket/sha256/{sha256}?X-Amz-Signature=s3cr3t"

        def rule(seen: Seen) -> Any:
            if seen.path == f"{P}/blobs/{sha256}/url":
                # the server's store cannot presign: make its answer say what S3's would
                return Rewrite(
                    lambda body: json.dumps({**json.loads(body), "url": signed}).encode()
                )
            if seen.path == P + "/whoami":
                return Answer(302, {"location": trap_url + "/steal"})
            return FORWARD

        with (
            HttpProxy(iris_server.url, rule) as proxy,
            yard_at(proxy.url, iris_server.admin_token, tmp_path / "cache") as yard,
        ):
            store = yard.artifacts
            assert isinstance(store, HttpArtifactStore)
            store.copy_to(sha256, tmp_path / "got.bin", size=len(data))
            assert hashlib.sha256((tmp_path / "got.bin").read_bytes()).hexdigest() == sha256
            # The yard got the token; the presigned URL got ranged requests and no token.
            (asked,) = proxy.requests("GET", f"/blobs/{sha256}/url")
            assert asked.headers["authorization"] == f"Bearer {iris_server.admin_token}"
            assert len(presigned.seen) == 3  # 16 + 16 + 8 MiB
            assert all("range" in h for h in presigned.seen)
            assert not any("authorization" in h or "cookie" in h for h in presigned.seen)
            assert not [s for s in proxy.seen if s.path == f"{P}/blobs/{sha256}"]

            # A presigned URL that redirects is not followed (nor is its secret shown).
            presigned.seen.clear()
            presigned.location = trap_url + "/elsewhere"
            with pytest.raises(ModelyardError) as info:
                store.copy_to(sha256, tmp_path / "again.bin", size=len(data))
            text = _one_line(info.value)
            assert "302" in text
            assert "s3cr3t" not in text
            assert not (tmp_path / "again.bin").exists()
            assert presigned.seen  # it was asked, and answered with a redirect
            # One that cannot be reached: a YardError naming its origin only.
            signed = f"http://127.0.0.1:{_free_port()}/bucket/x?X-Amz-Signature=s3cr3t"
            with pytest.raises(YardError) as info:
                store.copy_to(sha256, tmp_path / "again.bin", size=len(data))
            text = _one_line(info.value)
            assert urlsplit(signed).netloc in text
            assert "s3cr3t" not in text
            assert not (tmp_path / "again.bin").exists()
            # Nor is a redirect from the yard itself, where the token would follow it.
            with pytest.raises(ServerError, match="redirect"):
                server_admin().whoami()
    assert trap.seen == []


# -- the warm cache --------------------------------------------------------------------------


_LOAD = "import sys, modelyard as my; print(my.load_model(sys.argv[1]).digest)"


def test_a_warm_cache_loads_without_fetching(iris_server: YardServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with HttpProxy(iris_server.url) as proxy:
        env = {
            **os.environ,
            **iris_server.env(iris_server.admin_token),
            "MODELYARD_URI": proxy.url,
            "MODELYARD_CACHE": str(cache),
        }

        def load(uri: str) -> list[Seen]:
            before = len(proxy.seen)
            done = subprocess.run(
                [sys.executable, "-c", _LOAD, uri],
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=120,
            )
            assert done.returncode == 0, done.stderr
            assert done.stdout.strip().startswith("sha256:")
            return proxy.seen[before:]

        cold = load("models:/iris@champion")
        assert any("/blobs/" in s.path for s in cold)  # the first load fetched the files
        warm = load("models:/iris@champion")
        assert [(s.method, s.target) for s in warm] == [
            ("GET", P + "/models/iris/resolve?alias=champion")
        ]
        pinned = load("models:/iris/1")
        assert len(pinned) <= 1
        assert all(s.path == P + "/models/iris/resolve" for s in pinned)
        assert load("models:/iris/1") == []  # a pinned version, once resolved, is remembered


# -- fork safety ---------------------------------------------------------------------------------


def test_a_forked_child_uses_the_yard_without_touching_the_parents_connections(
    iris_server: YardServer, tmp_path: Path
) -> None:
    with (
        HttpProxy(iris_server.url) as proxy,
        yard_at(proxy.url, iris_server.admin_token, tmp_path / "cache"),
    ):
        assert my.get_registered_model("iris").latest_version == 1
        parent = {s.conn for s in proxy.seen}
        assert len(parent) == 1
        read, write = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
            pid = os.fork()
        if pid == 0:  # the child: load a model (metadata and blobs), report, leave at once
            code = 1
            try:
                os.close(read)
                model = my.load_model("models:/iris@champion")
                os.write(write, model.digest.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            digest = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert digest == my.get_model_version("iris", 1).digest
        child = {s.conn for s in proxy.seen} - parent
        assert child, "the child made no request"
        # The parent goes on over the connection it had before the fork.
        my.set_alias("iris", "stable", 1)
        assert my.get_registered_model("iris").aliases == {"champion": 1, "stable": 1}
        after = [s for s in proxy.seen if s.conn not in child]
        assert {s.conn for s in after} == parent
        assert all(s.status is not None and s.status < 300 for s in proxy.seen)
