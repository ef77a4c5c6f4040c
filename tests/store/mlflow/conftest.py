"""MLflow stores built by the real MLflow 3.17 client, once per session: an ``mlflow.db``,
a ``./mlruns`` file store, and a real ``mlflow server`` on loopback (its own database,
``--serve-artifacts``). MLflow runs in its own cached environment; nothing here imports it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import mlflow_python

__all__ = ["MlflowStores", "mlflow_python", "mlflow_stores"]

SCRIPT = Path(__file__).parent / "_scripts" / "make_stores.py"


@dataclass(frozen=True)
class MlflowStores:
    """Where the three stores are, and what MLflow's models predicted on the iris data."""

    root: Path
    sqlite: str
    files: str
    server: str
    outside: Path
    #: tracking URI -> {"predictions": {"iris/2": [...]}, "runs": {"iris/2": run_id}}
    made: dict[str, Any]
    python: Path

    def predictions(self, uri: str, key: str) -> list[float]:
        """What MLflow's model ``key`` (``iris/2``) predicted, in the store ``uri``."""
        return list(self.made[uri]["predictions"][key])


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mlflow_env() -> dict[str, str]:
    """The environment MLflow's processes run in (no PYTHON* or venv of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        MLFLOW_DISABLE_TELEMETRY="true", GIT_PYTHON_REFRESH="quiet", MLFLOW_ALLOW_FILE_STORE="true"
    )
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="session")
def mlflow_stores(
    mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowStores]:
    """The three MLflow stores (built in one MLflow process; the server stays up)."""
    root = tmp_path_factory.mktemp("mlflow-stores")
    (root / "server").mkdir()
    (root / "outside").mkdir()
    sqlite = f"sqlite:///{root / 'mlflow.db'}"
    files = f"file:{root / 'fs' / 'mlruns'}"
    # The local stores are built while the server boots; the server's store after (one
    # MLflow process per kind: the client keeps state across tracking URIs).
    local = _script(mlflow_python, root, sqlite, files)
    port = free_port()
    log = open(root / "server" / "log.txt", "wb")  # noqa: SIM115 - the server's lifetime
    server = subprocess.Popen(
        [
            str(mlflow_python.parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'server' / 'mlflow.db'}",
            "--serve-artifacts",
            "--artifacts-destination",
            str(root / "server" / "artifacts"),
        ],
        cwd=root / "server",
        env=mlflow_env(),
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, server, root / "server" / "log.txt")
        made = _finish(_script(mlflow_python, root, url))
        made.update(_finish(local))
        yield MlflowStores(root, sqlite, files, url, root / "outside", made, mlflow_python)
    finally:
        if local.poll() is None:
            local.kill()
            local.communicate()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _script(python: Path, root: Path, *uris: str) -> subprocess.Popen[str]:
    """Start the store-building script on ``uris`` (its stderr in ``<root>/script-N.err``)."""
    err = root / f"script-{len(list(root.glob('script-*.err')))}.err"
    with open(err, "w") as stderr:
        return subprocess.Popen(
            [python, SCRIPT, root / "outside", root / "server" / "artifacts", *uris],
            cwd=root,
            env=mlflow_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The script's JSON answer; its stderr's tail if it failed."""
    out, _ = proc.communicate(timeout=900)
    if proc.returncode != 0:
        errs = sorted(Path(str(proc.args[3])).parent.glob("script-*.err"))  # type: ignore[index]
        tail = "\n".join(e.read_text()[-4000:] for e in errs)
        raise AssertionError(f"MLflow script failed ({proc.returncode}):\n{tail}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"mlflow server exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"mlflow server not healthy in 90 s:\n{log.read_text()[-3000:]}")
