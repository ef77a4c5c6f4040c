"""``modelyard serve --env uv``: each model answers from an environment of its own.

The models were saved under an older scikit-learn than the test process has
(see ``tests/_old_sklearn.py``); served with ``--env uv`` they run with the
version they were trained with, behind the same HTTP API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import modelyard
from modelyard import registry
from modelyard.yard import Yard
from tests._old_sklearn import OLD_SKLEARN
from tests._yard import yard_uri
from tests.serving.conftest import ServerProcess, StartServer, iris_split

WORKER = "modelyard.isolation._worker"


def _model_processes(server_pid: int) -> list[int]:
    """Model processes (``python -m modelyard.isolation._worker``) below ``server_pid``."""
    parents: dict[int, int] = {}
    workers: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        # the command name may hold spaces and parentheses: the fields follow the last ')'
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        if WORKER.encode() in cmdline:
            workers.append(int(entry.name))

    def below(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == server_pid:
                return True
        return False

    return sorted(p for p in workers if below(p))


def _wait_for_processes(server_pid: int, count: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        found = _model_processes(server_pid)
        if len(found) == count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _gone(pid: int, timeout: float = 15.0) -> bool:
    """Whether ``pid`` exits and is reaped within ``timeout``."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_models_answer_from_their_own_environments(
    start_server: StartServer, old_sklearn_models: Path
) -> None:
    import sklearn

    assert sklearn.__version__ != OLD_SKLEARN
    server = start_server(
        f"iris={old_sklearn_models / 'estimator'}",
        f"which={old_sklearn_models / 'version'}",
        "--env",
        "uv",
    )
    assert len(_model_processes(server.proc.pid)) == 2
    rows = np.load(old_sklearn_models / "expected.npy")
    from sklearn.datasets import load_iris

    X = load_iris().data
    r = httpx.post(f"{server.url}/invocations", json=iris_split(X.tolist()))
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": rows.tolist()}
    # the same model through the Open Inference Protocol
    v2 = {
        "inputs": [
            {"name": name, "shape": [2], "datatype": "FP64", "data": X[:2, i].tolist()}
            for i, name in enumerate(iris_split([])["dataframe_split"]["columns"])
        ]
    }
    r = httpx.post(f"{server.url}/v2/models/iris/infer", json=v2)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == rows[:2].tolist()
    r = httpx.post(f"{server.url}/v2/models/which/infer", json={"inputs": v2["inputs"][:1]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [OLD_SKLEARN] * 2
    # schema enforcement runs in the model's environment and still names the column
    bad = iris_split([[1.0, 2.0, 3.0]])
    bad["dataframe_split"]["columns"] = bad["dataframe_split"]["columns"][:3]
    r = httpx.post(f"{server.url}/invocations", json=bad)
    assert r.status_code == 400
    assert "petal width (cm)" in r.json()["message"]
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert {m["name"] for m in health["models"]} == {"iris", "which"}
    pids = _model_processes(server.proc.pid)
    assert server.stop() == 0
    assert all(_gone(p) for p in pids)


def test_each_worker_runs_its_own_model_process(
    start_server: StartServer, old_sklearn_models: Path
) -> None:
    server = start_server(str(old_sklearn_models / "version"), "--env", "uv", "--workers", "2")
    body = {"dataframe_split": {"columns": ["x"], "data": [[1.0], [2.0], [3.0]]}}

    def post(_: int) -> tuple[int, object]:
        r = httpx.post(f"{server.url}/invocations", json=body, timeout=60)
        return r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(200)))
    assert all(a == (200, {"predictions": [OLD_SKLEARN] * 3}) for a in answers), answers[:3]
    # one per worker; the copy the parent checked the model with was stopped
    assert len(_wait_for_processes(server.proc.pid, 2)) == 2
    assert server.stop() == 0


def test_a_crashed_model_process_costs_one_request(
    start_server: StartServer, old_sklearn_models: Path
) -> None:
    server = start_server(str(old_sklearn_models / "crash"), "--env", "uv")
    body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
    for _ in range(2):
        r = httpx.post(f"{server.url}/invocations", json=body, timeout=60)
        assert r.status_code == 500
        assert "WorkerError" in r.json()["message"]
    server.wait_for_log("had stopped; starting a new one")
    server.wait_for_log("crash model: going down")  # the model's stderr reaches the server's
    assert httpx.get(f"{server.url}/ping").status_code == 200


def _follow_champion(start_server: StartServer, yard: Yard) -> ServerProcess:
    """``serve --env uv models:/which@champion``, checking the alias every 0.2 s."""
    return start_server(
        "models:/which@champion",
        "--env",
        "uv",
        "--poll-interval",
        "0.2",
        env={"MODELYARD_URI": yard_uri(yard)},
    )


def test_an_alias_move_starts_the_new_version_and_stops_the_old(
    start_server: StartServer, old_sklearn_models: Path, yard: Yard
) -> None:
    one = registry.register_model(old_sklearn_models / "version", "which").version
    two = registry.register_model(old_sklearn_models / "estimator", "which").version
    registry.set_alias("which", "champion", one)
    server = _follow_champion(start_server, yard)
    (first,) = _model_processes(server.proc.pid)
    row = iris_split([[5.1, 3.5, 1.4, 0.2]])
    r = httpx.post(f"{server.url}/invocations", json=row)
    assert (r.headers["x-model-version"], r.json()) == ("1", {"predictions": [OLD_SKLEARN]})
    registry.set_alias("which", "champion", two)
    server.wait_for_log(r"which: version 2 .* answers now", timeout=60)
    r = httpx.post(f"{server.url}/invocations", json=row)
    assert (r.headers["x-model-version"], r.json()) == ("2", {"predictions": [0]})
    server.wait_for_log(r"which: version 1 freed", timeout=60)
    assert _wait_for_processes(server.proc.pid, 1) != [first]
    assert _gone(first)


@pytest.fixture
def unbuildable(tmp_path: Path) -> Path:
    """A model asking for a package no index has."""
    import numpy as np

    path = tmp_path / "unbuildable"

    def ones(model_input: Any) -> Any:
        return np.ones(len(model_input))

    modelyard.save_model(ones, path, pip_requirements=[f"{NO_SUCH_PACKAGE}==0.0.1"])
    return path


NO_SUCH_PACKAGE = "modelyard-no-such-package-xyz"


def test_a_model_whose_environment_cannot_be_built_stops_the_start(
    unbuildable: Path, tmp_path: Path
) -> None:
    cli = [sys.executable, "-c", "from modelyard.cli import main; main()"]
    proc = subprocess.run(
        [*cli, "serve", str(unbuildable), "--env", "uv", "--port", "0"],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MODELYARD_ENV_ROOT": str(tmp_path / "envs")},
    )
    assert proc.returncode == 1, proc.stderr
    assert NO_SUCH_PACKAGE in proc.stderr
    assert "Traceback" not in proc.stderr
    assert "serving" not in proc.stderr


def test_an_alias_moved_to_an_unbuildable_version_leaves_the_old_one_serving(
    start_server: StartServer, old_sklearn_models: Path, unbuildable: Path, yard: Yard
) -> None:
    registry.register_model(old_sklearn_models / "version", "which")
    bad = registry.register_model(unbuildable, "which").version
    registry.set_alias("which", "champion", 1)
    server = _follow_champion(start_server, yard)
    registry.set_alias("which", "champion", bad)
    server.wait_for_log(f"version {bad} failed to load", timeout=120)
    (model,) = httpx.get(f"{server.url}/health").json()["models"]
    assert model["version"] == "1"
    assert NO_SUCH_PACKAGE in model["last_error"]
    r = httpx.post(f"{server.url}/invocations", json=iris_split([[5.1, 3.5, 1.4, 0.2]]))
    assert (r.status_code, r.json()) == (200, {"predictions": [OLD_SKLEARN]})
