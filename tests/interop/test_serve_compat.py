"""The same request corpus against ``mlflow models serve`` and ``modelyard serve``.

Both serve one model directory, written by MLflow itself. Status codes must be
equal and, for 200s, the predictions too, except for the differences the
README documents (each listed in ``DIFFERENCES`` with both statuses, so a change
on either side fails the test).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from tests.serving.conftest import ServerProcess

pytestmark = pytest.mark.interop

COLUMNS = ["sl", "sw", "pl", "pw"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
JSON = "application/json"


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _csv(charset: str = "") -> tuple[str, bytes]:
    return "text/csv" + charset, pd.DataFrame(ROWS, columns=COLUMNS).to_csv(index=False).encode()


def _parquet() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame(ROWS, columns=COLUMNS).to_parquet(buf)
    return buf.getvalue()


RECORDS = [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]

#: name -> (method, path, content type or None, body)
CORPUS: dict[str, tuple[str, str, str | None, bytes]] = {
    "split": (
        "POST",
        "/invocations",
        JSON,
        _json({"dataframe_split": {"columns": COLUMNS, "data": ROWS}}),
    ),
    "split-reordered": (
        "POST",
        "/invocations",
        JSON,
        _json(
            {
                "dataframe_split": {
                    "columns": COLUMNS[::-1],
                    "data": [r[::-1] for r in ROWS],
                }
            }
        ),
    ),
    "split-index": (
        "POST",
        "/invocations",
        JSON,
        _json({"dataframe_split": {"columns": COLUMNS, "data": ROWS, "index": [5, 6, 7]}}),
    ),
    "split-ints-for-doubles": (
        "POST",
        "/invocations",
        JSON,
        _json({"dataframe_split": {"columns": COLUMNS, "data": [[5, 3, 1, 0]]}}),
    ),
    "split-extra-column": (
        "POST",
        "/invocations",
        JSON,
        _json({"dataframe_split": {"columns": [*COLUMNS, "z"], "data": [[*ROWS[0], 1.0]]}}),
    ),
    "records": ("POST", "/invocations", JSON, _json({"dataframe_records": RECORDS})),
    "instances": ("POST", "/invocations", JSON, _json({"instances": RECORDS})),
    "inputs-columns": (
        "POST",
        "/invocations",
        JSON,
        _json({"inputs": {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}}),
    ),
    "csv": ("POST", "/invocations", *_csv()),
    "csv-utf8": ("POST", "/invocations", *_csv("; charset=utf-8")),
    "parquet": ("POST", "/invocations", "application/vnd.apache.parquet", _parquet()),
    "missing-column": (
        "POST",
        "/invocations",
        JSON,
        _json({"dataframe_split": {"columns": COLUMNS[:3], "data": [r[:3] for r in ROWS]}}),
    ),
    "string-for-double": (
        "POST",
        "/invocations",
        JSON,
        _json({"dataframe_split": {"columns": COLUMNS, "data": [[5.1, 3.5, 1.4, "x"]]}}),
    ),
    "invalid-json": ("POST", "/invocations", JSON, b'{"dataframe_split": '),
    "list-body": ("POST", "/invocations", JSON, b"[1, 2]"),
    "two-input-keys": ("POST", "/invocations", JSON, b'{"inputs": [1], "instances": [1]}'),
    "mlflow-1.x-body": ("POST", "/invocations", JSON, _json({"columns": COLUMNS, "data": ROWS})),
    "split-without-data": ("POST", "/invocations", JSON, _json({"dataframe_split": {"rows": 1}})),
    "text-plain": ("POST", "/invocations", "text/plain", b"1,2,3,4"),
    "charset-latin1": ("POST", "/invocations", "text/csv; charset=latin-1", _csv()[1]),
    "format-param": ("POST", "/invocations", "text/csv; format=pandas-split", _csv()[1]),
    "no-content-type": ("POST", "/invocations", None, _csv()[1]),
    "params-without-schema": (
        "POST",
        "/invocations",
        JSON,
        _json({"dataframe_split": {"columns": COLUMNS, "data": ROWS}, "params": {"k": 1}}),
    ),
    "ping": ("GET", "/ping", None, b""),
    "health": ("GET", "/health", None, b""),
    "version": ("GET", "/version", None, b""),
}

#: documented differences (README, "Serving"): case -> (MLflow's status, ours)
DIFFERENCES = {
    # MLflow crashes on the missing header (an AttributeError becomes a 500)
    "no-content-type": (500, 415),
    # MLflow ignores params a model does not declare (with a warning); we refuse them
    "params-without-schema": (200, 400),
}
#: 200s whose bodies differ by design: /health describes the served versions
#: (MLflow: "\n"), /version is modelyard's version (MLflow: its own)
BODY_DIFFERS = {"health", "version"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_model(tmp_path_factory: pytest.TempPathFactory, mlflow_python: Path) -> Path:
    out = tmp_path_factory.mktemp("compat") / "iris"
    script = tmp_path_factory.mktemp("compat-script") / "save.py"
    script.write_text(
        "import sys, mlflow.sklearn\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        f"X.columns = {COLUMNS!r}\n"
        "m = LogisticRegression(max_iter=1000, random_state=0).fit(X, y)\n"
        "mlflow.sklearn.save_model(m, sys.argv[1], input_example=X.head(3))\n"
    )
    env = _mlflow_env(mlflow_python)
    subprocess.run(
        [str(mlflow_python), str(script), str(out)],
        check=True,
        env=env,
        timeout=600,
        capture_output=True,
    )
    return out


def _mlflow_env(mlflow_python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["GIT_PYTHON_REFRESH"] = "quiet"
    # `mlflow models serve` execs `uvicorn` found on PATH
    env["PATH"] = f"{mlflow_python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def mlflow_server(
    mlflow_model: Path, mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("mlflow-serve") / "log.txt"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(mlflow_python.parent / "mlflow"),
                "models",
                "serve",
                "-m",
                str(mlflow_model),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_mlflow_env(mlflow_python),
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                try:
                    if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            else:
                raise AssertionError("mlflow models serve did not start:\n" + log.read_text())
            yield url
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)


@pytest.fixture(scope="module")
def our_server(mlflow_model: Path) -> Iterator[str]:
    server = ServerProcess([str(mlflow_model), "--port", "0"])
    try:
        yield server.url
    finally:
        server.stop()


def _send(url: str, case: str) -> httpx.Response:
    method, path, content_type, body = CORPUS[case]
    with httpx.Client(timeout=60) as client:
        request = client.build_request(method, url + path, content=body or None)
        if content_type is not None:
            request.headers["Content-Type"] = content_type
        return client.send(request)


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_same_answers_as_mlflow(case: str, mlflow_server: str, our_server: str) -> None:
    theirs = _send(mlflow_server, case)
    ours = _send(our_server, case)
    if case in DIFFERENCES:
        assert (theirs.status_code, ours.status_code) == DIFFERENCES[case], (
            theirs.text[:300],
            ours.text[:300],
        )
        return
    assert ours.status_code == theirs.status_code, (case, theirs.text[:500], ours.text[:500])
    if ours.status_code == 200 and case not in BODY_DIFFERS:
        if ours.text.strip():
            assert ours.json() == theirs.json()
        else:
            assert ours.text == theirs.text
    if ours.status_code >= 400 and ours.headers.get("content-type", "").startswith(JSON):
        envelope = ours.json()
        assert set(envelope) >= {"error_code", "message"}


def test_prediction_values_are_real(our_server: str) -> None:
    # a guard against both servers agreeing on nonsense: the corpus's rows predict 0, 2, 1
    assert _send(our_server, "split").json() == {"predictions": [0, 2, 1]}
