"""The server process: graceful drain on SIGTERM / Ctrl-C, pre-forked workers."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving.conftest import StartServer, iris_split

ROW = [[5.1, 3.5, 1.4, 0.2]]


def _children(pid: int, expect: int = 0, timeout: float = 20.0) -> list[int]:
    """Child pids of ``pid``; waits (bounded) until there are ``expect`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except FileNotFoundError:
            return []
        pids = [int(p) for p in text.split()]
        if len(pids) >= expect or time.monotonic() > deadline:
            return pids
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_drains_requests_in_flight(
    start_server: StartServer, sleeper_model: Path, sig: int
) -> None:
    server = start_server(sleeper_model, "--timeout", "20")
    result: dict[str, Any] = {}

    def slow() -> None:
        body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}, "params": {"seconds": 1.5}}
        r = httpx.post(f"{server.url}/invocations", json=body, timeout=30)
        result["status"] = r.status_code
        result["body"] = r.json()

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)  # the request is in the model now
    code = server.stop(sig)
    thread.join(30)
    assert result == {"status": 200, "body": {"predictions": [0.0]}}
    assert code == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/ping", timeout=2)


def test_workers_share_the_load_and_stop_together(
    start_server: StartServer, iris_array_model: Path
) -> None:
    server = start_server(iris_array_model, "--workers", "2", "--no-access-log")
    workers = _children(server.proc.pid, expect=2)
    assert len(workers) == 2
    with httpx.Client(timeout=30) as client:
        for _ in range(20):
            r = client.post(f"{server.url}/invocations", json=iris_split(ROW))
            assert r.status_code == 200
            assert r.json() == {"predictions": [0]}
    # the model was loaded once, in the parent: the workers log no load of their own
    assert server.log.count("model iris-array: version") == 1
    assert server.stop() == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_stop_sent_as_soon_as_the_address_is_known_drains(
    start_server: StartServer, iris_array_model: Path, workers: str
) -> None:
    # A supervisor may stop the server the moment it has announced its address, before
    # uvicorn (or a worker) has its own handlers: the stop must still drain and exit 0.
    for _ in range(3):
        server = start_server(iris_array_model, "--workers", workers, "--no-access-log")
        started = time.monotonic()
        assert server.stop() == 0, server.log
        assert time.monotonic() - started < 15, server.log


def test_a_worker_that_dies_is_replaced(start_server: StartServer, iris_array_model: Path) -> None:
    server = start_server(iris_array_model, "--workers", "2", "--no-access-log")
    first = _children(server.proc.pid, expect=2)
    victim = first[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    now: list[int] = []
    while time.monotonic() < deadline:
        now = _children(server.proc.pid)
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.1)
    assert len(now) == 2
    assert victim not in now
    r = httpx.post(f"{server.url}/invocations", json=iris_split(ROW), timeout=30)
    assert r.status_code == 200


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return "gone"
