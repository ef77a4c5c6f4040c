"""Serving ``models:/name@alias`` follows the alias: new versions swap in under load."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from sklearn.linear_model import LinearRegression

import modelyard
from modelyard import registry
from modelyard.yard import Yard
from tests._yard import yard_uri
from tests.serving import _models
from tests.serving.conftest import StartServer

BODY = {"dataframe_split": {"columns": ["x"], "data": [[1.0], [2.0]]}}
LOAD_THREADS = 4
MAX_LOAD_S = 60.0


def _register(tmp: Path, model: Any, name: str = "fraud", *, sign: bool | None = None) -> int:
    path = tmp / f"m-{time.monotonic_ns()}"
    modelyard.save_model(model, path, input_example=pd.DataFrame({"x": [1.0]}), sign=sign)
    return int(registry.register_model(path, name).version)


class Load:
    """Clients posting continuously (bounded in time), recording every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[int, str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(LOAD_THREADS)]
        self._deadline = time.monotonic() + MAX_LOAD_S

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set() and time.monotonic() < self._deadline:
                try:
                    r = client.post(f"{self.url}/invocations", json=BODY)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                self.answers.append((r.status_code, r.headers.get("x-model-version", ""), r.json()))

    def wait_for_version(self, version: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(v == str(version) for _, v, _ in self.answers[-20:]):
                return
            time.sleep(0.05)
        raise AssertionError(f"version {version} never answered")


def test_alias_moves_swap_in_without_a_failed_request(
    start_server: StartServer, yard: Yard, tmp_path: Path
) -> None:
    versions = [_register(tmp_path, _models.Versioned(v)) for v in (1, 2, 3)]
    assert versions == [1, 2, 3]
    registry.set_alias("fraud", "champion", 1)
    champions = {"1"}
    server = start_server(
        "models:/fraud@champion", "--poll-interval", "0.2", env={"MODELYARD_URI": yard_uri(yard)}
    )
    with Load(server.url) as load:
        load.wait_for_version(1)
        registry.set_alias("fraud", "champion", 2)
        champions.add("2")
        load.wait_for_version(2)
        registry.set_alias("fraud", "champion", 3)
        champions.add("3")
        load.wait_for_version(3)
        time.sleep(0.5)
    assert not load.errors
    assert len(load.answers) > 50
    assert {status for status, _, _ in load.answers} == {200}
    seen = {v for _, v, _ in load.answers}
    assert seen == champions == {"1", "2", "3"}
    # every answer came from the version its header names
    for _, version, body in load.answers:
        assert body == {"predictions": [int(version)] * 2}
    # and once a version answered, no older one did again
    order = [int(v) for _, v, _ in load.answers]
    first = {v: order.index(v) for v in (1, 2, 3)}
    assert first[1] < first[2] < first[3]
    assert 1 not in order[first[3] :]
    server.wait_for_log(r"fraud: version 3 .* answers now")
    # the versions it replaced were released once their last request finished
    server.wait_for_log(r"fraud: version 1 freed")
    server.wait_for_log(r"fraud: version 2 freed")


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    start_server: StartServer, yard: Yard, tmp_path: Path
) -> None:
    _register(tmp_path, _models.Versioned(1))
    broken = _register(tmp_path, _models.FailsToLoad())
    registry.set_alias("fraud", "champion", 1)
    server = start_server(
        "models:/fraud@champion", "--poll-interval", "0.2", env={"MODELYARD_URI": yard_uri(yard)}
    )
    registry.set_alias("fraud", "champion", broken)
    server.wait_for_log(f"version {broken} failed to load")
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "degraded"
    (model,) = health["models"]
    assert model["version"] == "1"
    assert "cannot open the weights" in model["last_error"]
    r = httpx.post(f"{server.url}/invocations", json=BODY)
    assert r.status_code == 200
    assert r.headers["x-model-version"] == "1"
    # fixing the alias clears the error
    registry.set_alias("fraud", "champion", 1)
    v3 = _register(tmp_path, _models.Versioned(3))
    registry.set_alias("fraud", "champion", v3)
    server.wait_for_log(f"version {v3} .* answers now")
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_an_alias_moved_to_an_untrusted_version_leaves_the_old_one_serving(
    start_server: StartServer, yard: Yard, tmp_path: Path
) -> None:
    # v2 is a custom Python model (code) that nobody signed: the trust policy refuses
    # it before unpickling, so it never takes traffic and /health says why.
    _register(tmp_path, _models.Versioned(1))
    unsigned = _register(tmp_path, _models.Versioned(2), sign=False)
    registry.set_alias("fraud", "champion", 1)
    server = start_server(
        "models:/fraud@champion", "--poll-interval", "0.2", env={"MODELYARD_URI": yard_uri(yard)}
    )
    registry.set_alias("fraud", "champion", unsigned)
    server.wait_for_log(f"version {unsigned} failed to load")
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "degraded"
    (model,) = health["models"]
    assert model["version"] == "1"
    assert "outside the trust allow-list" in model["last_error"]
    r = httpx.post(f"{server.url}/invocations", json=BODY)
    assert r.status_code == 200
    assert r.headers["x-model-version"] == "1"


def test_with_verify_required_an_alias_moved_to_an_unsigned_version_is_not_followed(
    start_server: StartServer, yard: Yard, tmp_path: Path
) -> None:
    # both versions hold only allow-listed types; v2 carries no signature
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    for sign, slope in ((True, 1.0), (False, 2.0)):
        path = tmp_path / f"linear-{slope}"
        model = LinearRegression().fit(frame, frame["x"] * slope)
        modelyard.save_model(model, path, input_example=frame.head(1), sign=sign)
        registry.register_model(path, "fraud")
    registry.set_alias("fraud", "champion", 1)
    server = start_server(
        "models:/fraud@champion",
        "--poll-interval",
        "0.2",
        "--verify",
        "required",
        env={"MODELYARD_URI": yard_uri(yard)},
    )
    first = httpx.get(f"{server.url}/health").json()["models"][0]
    assert first["signature"]["state"] == "verified"
    registry.set_alias("fraud", "champion", 2)
    server.wait_for_log("version 2 failed to load")
    (model,) = httpx.get(f"{server.url}/health").json()["models"]
    assert model["version"] == "1"
    assert "a trusted signature is required" in model["last_error"]
    r = httpx.post(f"{server.url}/invocations", json=BODY)
    assert (r.status_code, r.headers["x-model-version"]) == (200, "1")


def test_a_pinned_version_is_not_polled(
    start_server: StartServer, yard: Yard, tmp_path: Path
) -> None:
    _register(tmp_path, _models.Versioned(1))
    _register(tmp_path, _models.Versioned(2))
    server = start_server(
        "models:/fraud/1", "--poll-interval", "0.1", env={"MODELYARD_URI": yard_uri(yard)}
    )
    health = httpx.get(f"{server.url}/health").json()["models"][0]
    assert health["follows"] is False
    assert health["name"] == "fraud"
    assert health["version"] == "1"
