"""A cold process loading ``models:/forest@champion`` from a server: modelyard vs MLflow.

Both servers run over PostgreSQL (a database each) on loopback with the same
worker count; ``mlflow server --serve-artifacts --artifacts-destination DIR``
(no auth app: the Bearer header its client sends is ignored) and ``modelyard
server`` over ``postgresql://...?blobs=DIR``, both folders on the same disk.

The model: a RandomForestClassifier (100 trees, 2000 x 20 ``make_classification``,
random_state 0), logged and registered as ``forest`` on each server by its own
client with ``@champion`` on version 1, cloudpickle format on both sides.

Whole processes, alternating (1 warm-up round, then ``BENCH_RUNS``): ``python -c``
that imports, loads ``models:/forest@champion`` from the server and predicts one
row (the answer is checked):

- modelyard, ``MODELYARD_CACHE`` a fresh empty folder each round (cold cache);
- MLflow, ``mlflow.pyfunc.load_model`` with ``TMPDIR`` a fresh folder each round
  (it downloads into a temp dir every time anyway);
- modelyard again with the cache the previous process filled (information).

Then the bytes on the wire, through a counting TCP proxy in front of each server
(request lines and bytes each way): a cold load, then a second load in a new
process with the cache warm. Targets: cold modelyard <= 0.5x MLflow's wall time;
the warm second load sends no artifact bytes (no blob GET).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._servers import (
    CountingProxy,
    ServerProc,
    Traffic,
    database,
    init_admin,
    start_mlflow,
    start_modelyard,
)
from bench._util import (
    RUNS,
    RUNS_HEADERS,
    WARMUP,
    BenchError,
    Command,
    Run,
    mlflow_env,
    mlflow_python,
    paired_ratios,
    print_table,
    project_env,
    project_python,
    run_once,
    run_python,
    runs_json,
    runs_row,
    verdict,
    write_results,
)

TARGET = 0.5

TRAIN = """
import json, sys
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
X, y = make_classification(n_samples=2000, n_features=20, random_state=0)
X = pd.DataFrame(X, columns=[f"f{i}" for i in range(20)])
forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
row = X.iloc[[7]]
expected = forest.predict(row).tolist()
"""

OURS_LOG = (
    TRAIN
    + """
import modelyard
info = modelyard.log_model(forest, "model", registered_model_name="forest",
                           input_example=X.head(3))
modelyard.set_alias("forest", "champion", info.registered_version.version)
assert info.registered_version.version == 1
print(json.dumps({"row": row.values.tolist()[0], "expected": expected}))
"""
)

MLFLOW_LOG = (
    TRAIN
    + """
import mlflow, mlflow.sklearn
from mlflow import MlflowClient
mlflow.set_experiment("bench")
with mlflow.start_run():
    mlflow.sklearn.log_model(forest, name="model", serialization_format="cloudpickle",
                             registered_model_name="forest", input_example=X.head(3))
MlflowClient().set_registered_model_alias("forest", "champion", "1")
print(json.dumps({"row": row.values.tolist()[0], "expected": expected}))
"""
)

_ROW = (
    "import json, sys\nimport pandas as pd\n"
    "row = pd.DataFrame([json.loads(sys.argv[1])], columns=[f'f{i}' for i in range(20)])\n"
)
OURS_COLD = (
    "import modelyard\n" + _ROW + "model = modelyard.load_model('models:/forest@champion')\n"
    "print('prediction', model.predict(row).tolist())\n"
)
MLFLOW_COLD = (
    "import mlflow.pyfunc\n"
    + _ROW
    + "model = mlflow.pyfunc.load_model('models:/forest@champion')\n"
    "print('prediction', model.predict(row).tolist())\n"
)


def _register(ours: ServerProc, theirs: ServerProc, token: str, tmp: Path) -> tuple[str, str]:
    """Log and register the forest on both servers; (row as JSON, expected output)."""
    a = run_python(
        project_python(),
        OURS_LOG,
        env=project_env(
            MODELYARD_URI=ours.url, MODELYARD_TOKEN=token, MODELYARD_CACHE=str(tmp / "c0")
        ),
    )
    b = run_python(
        mlflow_python(),
        MLFLOW_LOG,
        env=mlflow_env(MLFLOW_TRACKING_URI=theirs.url, MLFLOW_TRACKING_TOKEN=token),
        cwd=tmp,
    )
    if a != b:
        raise BenchError(f"the two forests differ: {a} vs {b}")
    return json.dumps(a["row"]), f"prediction {a['expected']}"


@dataclass(frozen=True)
class Setup:
    """Both servers, the token, the row to predict and the expected output line."""

    ours: ServerProc
    theirs: ServerProc
    token: str
    row: str
    expect: str


def _commands(s: Setup, scratch: Path) -> dict[str, Command]:
    """The three commands of one round (fresh cache / temp folders made here)."""
    ours_url, theirs_url, token, row, expect = s.ours.url, s.theirs.url, s.token, s.row, s.expect
    cold = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
    mltmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=scratch))
    warm = scratch / "warm-cache"
    py, mlpy = str(project_python()), str(mlflow_python())
    ours_env = {"MODELYARD_URI": ours_url, "MODELYARD_TOKEN": token}
    return {
        "modelyard, cold cache": Command(
            "modelyard, cold cache",
            (py, "-c", OURS_COLD, row),
            env=project_env(MODELYARD_CACHE=str(cold), **ours_env),
            expect=expect,
        ),
        "mlflow": Command(
            "mlflow",
            (mlpy, "-c", MLFLOW_COLD, row),
            env=mlflow_env(
                MLFLOW_TRACKING_URI=theirs_url, MLFLOW_TRACKING_TOKEN=token, TMPDIR=str(mltmp)
            ),
            cwd=mltmp,
            expect=expect,
        ),
        "modelyard, warm cache": Command(
            "modelyard, warm cache",
            (py, "-c", OURS_COLD, row),
            env=project_env(MODELYARD_CACHE=str(warm), **ours_env),
            expect=expect,
        ),
    }


def _time(s: Setup, tmp: Path) -> dict[str, list[Run]]:
    scratch = tmp / "scratch"
    scratch.mkdir()
    # fill the warm cache once
    run_once(_commands(s, scratch)["modelyard, warm cache"])
    out: dict[str, list[Run]] = {}
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        print(f"note: the machine is busy (load {load:.1f}); wall times are noisy")
    for round_ in range(WARMUP + RUNS):
        cmds = _commands(s, scratch)
        for label, cmd in cmds.items():
            run = run_once(cmd)
            if round_ >= WARMUP:
                out.setdefault(label, []).append(run)
        for p in scratch.iterdir():
            if p.name != "warm-cache":
                shutil.rmtree(p, ignore_errors=True)
    return out


def _traffic(s: Setup, tmp: Path) -> dict[str, dict[str, Any]]:
    """Cold then warm load through a counting proxy in front of each server."""
    ours, theirs, token, row, expect = s.ours, s.theirs, s.token, s.row, s.expect
    out: dict[str, dict[str, Any]] = {}
    scratch = tmp / "traffic"
    scratch.mkdir()
    px_ours, px_theirs = CountingProxy(ours.port), CountingProxy(theirs.port)
    try:
        cache = scratch / "cache"
        env = project_env(MODELYARD_URI=px_ours.url, MODELYARD_TOKEN=token)
        for label in ("cold", "warm"):
            px_ours.reset()
            run_once(
                Command(
                    label,
                    (str(project_python()), "-c", OURS_COLD, row),
                    env={**env, "MODELYARD_CACHE": str(cache)},
                    expect=expect,
                )
            )
            out[f"modelyard, {label}"] = _summary(px_ours.reset(), "/blobs/")
        for label in ("first", "second"):
            mltmp = Path(tempfile.mkdtemp(dir=scratch))
            px_theirs.reset()
            run_once(
                Command(
                    label,
                    (str(mlflow_python()), "-c", MLFLOW_COLD, row),
                    env=mlflow_env(
                        MLFLOW_TRACKING_URI=px_theirs.url,
                        MLFLOW_TRACKING_TOKEN=token,
                        TMPDIR=str(mltmp),
                    ),
                    cwd=mltmp,
                    expect=expect,
                )
            )
            out[f"mlflow, {label}"] = _summary(px_theirs.reset(), "/mlflow-artifacts/artifacts/")
    finally:
        px_ours.close()
        px_theirs.close()
    return out


def _summary(t: Traffic, artifact_path: str) -> dict[str, Any]:
    files = [r for r in t.requests if r.startswith("GET ") and artifact_path in r and "?" not in r]
    return {
        "requests": len(t.requests),
        "artifact_gets": len(files),
        "bytes_up": t.up,
        "bytes_down": t.down,
        "request_lines": t.requests,
    }


def main() -> None:
    """Register the forest on both servers, time cold processes, count bytes, print verdicts."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-load-"))
    servers: list[ServerProc] = []
    try:
        with database("bench_srv_my") as my_db, database("bench_srv_ml") as ml_db:
            yard = f"{my_db}?blobs={tmp / 'blobs'}"
            token = init_admin(yard)
            ours = start_modelyard("modelyard", yard, tmp / "logs")
            servers.append(ours)
            theirs = start_mlflow("mlflow", ml_db, str(tmp / "mlartifacts"), tmp / "logs")
            servers.append(theirs)
            setup = Setup(ours, theirs, token, *_register(ours, theirs, token, tmp))
            runs = _time(setup, tmp)
            traffic = _traffic(setup, tmp)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(runs, traffic)


def report(runs: dict[str, list[Run]], traffic: dict[str, dict[str, Any]]) -> None:
    print_table(
        "Cold process: import, load models:/forest@champion from the server, predict one row",
        RUNS_HEADERS,
        [runs_row(label, r) for label, r in runs.items()],
    )
    cold = paired_ratios(runs["modelyard, cold cache"], runs["mlflow"])
    warm = paired_ratios(runs["modelyard, warm cache"], runs["mlflow"])
    print_table(
        "Bytes on the wire through a counting proxy (one process each)",
        ["load", "requests", "artifact GETs", "bytes up", "bytes down"],
        [
            [k, v["requests"], v["artifact_gets"], f"{v['bytes_up']:,}", f"{v['bytes_down']:,}"]
            for k, v in traffic.items()
        ],
    )
    warm_t = traffic["modelyard, warm"]
    no_bytes = warm_t["artifact_gets"] == 0
    print("\nwarm second load, modelyard's requests:", warm_t["request_lines"])
    verdicts = [
        [
            "cold cache, modelyard / MLflow (wall)",
            cold.fmt(2),
            f"<= {TARGET}",
            verdict(cold.median, TARGET),
        ],
        ["warm cache, modelyard / MLflow (wall)", warm.fmt(2), "", ""],
        [
            "warm second load: artifact GETs / bytes down",
            f"{warm_t['artifact_gets']} / {warm_t['bytes_down']:,} B",
            "0 GETs",
            "ok" if no_bytes else "MISSED",
        ],
    ]
    print_table(
        "Targets (ratios: median of pairs (min..max))", ["figure", "value", "target", ""], verdicts
    )
    write_results(
        "server_load",
        {
            "commands": {label: runs_json(r) for label, r in runs.items()},
            "cold/mlflow": asdict(cold),
            "warm/mlflow": asdict(warm),
            "traffic": traffic,
            "verdicts": [
                dict(zip(("figure", "value", "target", "verdict"), v, strict=True))
                for v in verdicts
            ],
        },
    )


if __name__ == "__main__":
    main()
