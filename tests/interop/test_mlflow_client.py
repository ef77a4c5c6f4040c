"""The unmodified MLflow 3.17 client (its own venv) against a real ``modelyard server``.

MLflow's client is pointed at the server with ``MLFLOW_TRACKING_URI`` and a
modelyard token, and runs its own flows: runs with params, metrics and tags,
files, ``log_model`` for sklearn, PyTorch and a custom ``PythonModel`` with
``registered_model_name``, aliases, searches, and loading by alias and by run.
Then the other direction: what MLflow logged loads in modelyard by the same
URI, and what modelyard logged loads in MLflow. Last, ``mlflow models serve``
scores a model it reads from the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests._server import YardServer

pytestmark = pytest.mark.interop

LOG_AND_LOAD = """
import json, os, tempfile
import numpy as np
import mlflow
from mlflow import MlflowClient
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(X, y)
mlflow.set_experiment("interop")
with mlflow.start_run(run_name="train") as run:
    mlflow.log_param("C", 1.0)
    mlflow.log_params({"solver": "lbfgs", "max_iter": 500})
    for step in range(3):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"accuracy": float(model.score(X, y))})
    mlflow.set_tag("team", "fraud")
    folder = tempfile.mkdtemp()
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("trained on iris")
    os.makedirs(os.path.join(folder, "plots"))
    with open(os.path.join(folder, "plots", "a.csv"), "w") as f:
        f.write("x,y\\n1,2\\n")
    mlflow.log_artifact(os.path.join(folder, "notes.txt"))
    mlflow.log_artifacts(folder, "extra")
    info = mlflow.sklearn.log_model(model, name="model", registered_model_name="iris")
run_id = run.info.run_id
client = MlflowClient()
client.set_registered_model_alias("iris", "champion", "1")
client.set_registered_model_alias("iris", "scratch", "1")
client.delete_registered_model_alias("iris", "scratch")
by_alias = client.get_model_version_by_alias("iris", "champion")

client.create_registered_model("iris-by-run", description="from a run's folder")
from_run = client.create_model_version("iris-by-run", f"runs:/{run_id}/model", run_id=run_id)

class AddOne(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input + 1

with mlflow.start_run():
    mlflow.pyfunc.log_model(name="adder", python_model=AddOne(), registered_model_name="adder")

import torch
torch.manual_seed(0)
net = torch.nn.Linear(4, 1)
with mlflow.start_run():
    example = X[:3].astype("float32")  # its pt2 format traces the model with it
    mlflow.pytorch.log_model(
        net, name="net", registered_model_name="torchy", input_example=example
    )
with torch.no_grad():
    torch_expected = net(torch.tensor(X[:3], dtype=torch.float32)).numpy().ravel().tolist()

exp = mlflow.get_experiment_by_name("interop")
runs = mlflow.search_runs([exp.experiment_id], "metrics.accuracy > 0.5", output_format="list")
got = client.get_run(run_id)
history = client.get_metric_history(run_id, "loss")
files = sorted(f.path for f in client.list_artifacts(run_id))
extra = sorted(f.path for f in client.list_artifacts(run_id, "extra"))
models = sorted(m.name for m in client.search_registered_models())
versions = [(v.name, v.version) for v in client.search_model_versions("name='iris'")]

champion = mlflow.pyfunc.load_model("models:/iris@champion")
by_run = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
adder = mlflow.pyfunc.load_model("models:/adder/1")
torchy = mlflow.pyfunc.load_model("models:/torchy/1")
import pandas as pd
print(json.dumps({
    "run_id": run_id,
    "experiment_id": exp.experiment_id,
    "alias_version": by_alias.version,
    "from_run_version": from_run.version,
    "from_run_source": from_run.source,
    "search_runs": [r.info.run_id for r in runs],
    "params": got.data.params,
    "metrics": got.data.metrics,
    "tags": {k: v for k, v in got.data.tags.items() if not k.startswith("mlflow.")},
    "history": [(m.step, m.value) for m in history],
    "files": files,
    "extra": extra,
    "models": models,
    "versions": versions,
    "champion": champion.predict(X[:5]).tolist(),
    "by_run": by_run.predict(X[:5]).tolist(),
    "adder": adder.predict(pd.DataFrame({"a": [1.0, 2.0]}))["a"].tolist(),
    "torchy": np.asarray(torchy.predict(X[:3].astype("float32"))).ravel().tolist(),
    "torch_expected": torch_expected,
}))
"""


@pytest.fixture(scope="module")
def server(yard_server: YardServer) -> YardServer:
    yard_server.empty()
    return yard_server


@pytest.fixture(scope="module")
def logged(
    server: YardServer, mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """Everything MLflow's client logged and read back through the server (run once)."""
    token = server.token("mlflow-writer", "writer")
    env = _mlflow_env(server.url, token)
    return _run(mlflow_python, LOG_AND_LOAD, env, tmp_path_factory.mktemp("mlflow-flow"))


def test_mlflow_logs_registers_and_loads_through_the_server(logged: Any) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    expected = LogisticRegression(max_iter=500).fit(X, y).predict(X[:5]).tolist()
    assert logged["champion"] == expected
    assert logged["by_run"] == expected
    assert logged["alias_version"] == "1"
    assert logged["from_run_version"] == "1"
    assert logged["from_run_source"] == f"runs:/{logged['run_id']}/model"
    assert logged["run_id"] in logged["search_runs"]
    assert logged["params"] == {"C": "1.0", "solver": "lbfgs", "max_iter": "500"}
    assert logged["metrics"]["loss"] == pytest.approx(1 / 3)
    assert logged["tags"] == {"team": "fraud"}
    assert logged["history"] == [[0, 1.0], [1, 0.5], [2, pytest.approx(1 / 3)]]
    assert {"notes.txt", "extra", "model"} <= set(logged["files"])
    assert logged["extra"] == ["extra/notes.txt", "extra/plots"]
    assert logged["models"] == ["adder", "iris", "iris-by-run", "torchy"]
    assert logged["versions"] == [["iris", "1"]]
    assert logged["adder"] == [2.0, 3.0]
    assert logged["torchy"] == pytest.approx(logged["torch_expected"], rel=1e-5)


def test_what_mlflow_logged_loads_in_modelyard_by_the_same_uri(
    server: YardServer, logged: Any, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris

    import modelyard as my

    X, _ = load_iris(return_X_y=True)
    reader = server.token("mlflow-reader", "reader")
    with server.use(reader, tmp_path / "cache") as yard:
        champion = my.load_model("models:/iris@champion")
        assert champion.predict(X[:5]).tolist() == logged["champion"]
        by_run = my.load_model(f"runs:/{logged['run_id']}/model")
        assert by_run.predict(X[:5]).tolist() == logged["champion"]
        version = yard.metadata.get_model_version("iris", 1)
        # the server hashed what it stored: the digest is of the files it holds
        assert version.digest.startswith("sha256:")
        assert version.source.startswith("models:/m-")
        same = yard.metadata.get_model_version("iris-by-run", 1)
        assert same.digest == version.digest
        run = yard.metadata.get_run(logged["run_id"])
        assert run.params["C"] == "1.0"
        assert run.tags["team"] == "fraud"
        names = [m.name for m in yard.metadata.search_registered_models()]
        assert sorted(names) == logged["models"]


def test_what_modelyard_logged_loads_in_mlflow(
    server: YardServer, mlflow_python: Path, tmp_path: Path
) -> None:
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    import modelyard as my

    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    token = server.token("mlflow-writer", "writer")
    with server.use(token, tmp_path / "cache"):
        with my.start_run(experiment="ours") as run:
            my.log_model(model, "model", registered_model_name="tree")
        my.set_alias("tree", "champion", 1)
    script = f"""
    import json, mlflow
    from sklearn.datasets import load_iris
    X, _ = load_iris(return_X_y=True)
    a = mlflow.pyfunc.load_model("models:/tree@champion").predict(X[:6]).tolist()
    b = mlflow.pyfunc.load_model("runs:/{run.run_id}/model").predict(X[:6]).tolist()
    v = mlflow.MlflowClient().get_model_version_by_alias("tree", "champion")
    print(json.dumps({{"alias": a, "run": b, "version": v.version, "run_id": v.run_id}}))
    """
    got = _run(mlflow_python, script, _mlflow_env(server.url, token), tmp_path)
    expected = model.predict(X[:6]).tolist()
    assert got == {"alias": expected, "run": expected, "version": "1", "run_id": run.run_id}


def test_mlflow_models_serve_scores_a_model_from_the_server(
    server: YardServer, logged: Any, mlflow_python: Path, tmp_path: Path
) -> None:
    token = server.token("mlflow-reader", "reader")
    port = _free_port()
    env = _mlflow_env(server.url, token)
    # mlflow models serve runs the uvicorn of its own environment by name
    env["PATH"] = f"{mlflow_python.parent}{os.pathsep}{env.get('PATH', '')}"
    log = open(tmp_path / "serve.log", "w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(mlflow_python),
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            "models:/iris@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(url + "/ping", proc, log)
        from sklearn.datasets import load_iris

        X, _ = load_iris(return_X_y=True)
        answer = httpx.post(url + "/invocations", json={"inputs": X[:5].tolist()}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == logged["champion"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        log.close()


def test_basic_auth_a_reader_a_wrong_token_and_unknown_routes(
    server: YardServer, logged: Any, mlflow_python: Path, tmp_path: Path
) -> None:
    reader = server.token("mlflow-reader", "reader")
    script = """
    import json, os, mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    out = {}
    c = MlflowClient()
    out["get"] = c.get_model_version_by_alias("iris", "champion").version
    try:
        c.set_registered_model_alias("iris", "champion", "1")
    except MlflowException as e:
        out["write"] = e.error_code
    try:
        c.get_model_version_by_alias("iris", "nope")
    except MlflowException as e:
        out["unknown_alias"] = e.error_code
    try:
        c.get_registered_model("nope")
    except MlflowException as e:
        out["unknown_model"] = e.error_code
    print(json.dumps(out))
    """
    env = _mlflow_env(server.url, reader)
    del env["MLFLOW_TRACKING_TOKEN"]
    env["MLFLOW_TRACKING_USERNAME"] = "mlflow-reader"
    env["MLFLOW_TRACKING_PASSWORD"] = reader
    got = _run(mlflow_python, script, env, tmp_path)
    assert got == {
        "get": "1",
        "write": "PERMISSION_DENIED",
        "unknown_alias": "INVALID_PARAMETER_VALUE",
        "unknown_model": "RESOURCE_DOES_NOT_EXIST",
    }
    wrong = _mlflow_env(server.url, "myd_" + "x" * 43)
    failed = subprocess.run(
        [
            str(mlflow_python),
            "-c",
            "import mlflow; mlflow.MlflowClient().search_registered_models()",
        ],
        env=wrong,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert failed.returncode != 0
    assert "UNAUTHENTICATED" in failed.stderr
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {reader}"}) as c:
        for method, path in (
            ("GET", "/api/2.0/mlflow/traces"),
            ("POST", "/api/2.0/mlflow/model-versions/transition-stage"),
            ("POST", "/api/2.0/mlflow-artifacts/mpu/create/1/x"),
            ("GET", "/ajax-api/2.0/mlflow/experiments/search"),
        ):
            answer = c.request(method, path, json={})
            assert answer.status_code == 501, (path, answer.text)
            assert answer.json()["error_code"] == "NOT_IMPLEMENTED"
        anon = httpx.get(server.url + "/api/2.0/mlflow/traces")
        assert anon.status_code == 401


# -- helpers ------------------------------------------------------------------------------


def _mlflow_env(url: str, token: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "VIRTUAL_ENV", "MLFLOW_", "MODELYARD_"))
    }
    env.update(
        MLFLOW_TRACKING_URI=url,
        MLFLOW_TRACKING_TOKEN=token,
        MLFLOW_DISABLE_TELEMETRY="true",
        GIT_PYTHON_REFRESH="quiet",
        # a deterministic error must fail at once, never be retried for minutes
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    return env


def _run(python: Path, script: str, env: dict[str, str], cwd: Path) -> Any:
    import textwrap

    file = cwd / f"script_{abs(hash(script))}.py"
    file.write_text(textwrap.dedent(script))
    proc = subprocess.run(
        [str(python), str(file)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise AssertionError(f"MLflow script failed:\n{proc.stdout}\n{proc.stderr[-6000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], log: Any, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(f"mlflow models serve exited:\n{log.read()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    log.seek(0)
    raise AssertionError(f"mlflow models serve did not answer:\n{log.read()[-4000:]}")
