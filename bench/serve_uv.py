"""``modelyard serve --env uv`` vs ``mlflow models serve --env-manager uv``.

One MLflow-saved scikit-learn model (20 float columns), both environments built
and cached before anything is timed (``bench/batch_uv.py`` times the builds,
which are the same code for ``predict`` and ``serve``):

- start-up: from the command to the first correct answer, the two servers
  started alternately ``BENCH_RUNS`` times;
- 1-row ``/invocations`` requests under wrk at concurrency 1 and 8 (the knobs
  of ``serve_http``: ``SERVE_DURATION``, ``SERVE_WARMUP``, ``SERVE_CONC``),
  with ``modelyard serve`` in the local environment as the reference for what
  the pipe to the model process costs.

The designs differ: MLflow runs its whole server in the model's environment;
modelyard keeps the server in its own and runs only the model there, behind a
pipe (so models with different requirements can be served side by side).
Needs Debian's wrk.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench._util import (
    FIXTURES,
    RUNS,
    Summary,
    mlflow_env,
    mlflow_fixture,
    mlflow_python,
    print_table,
    project_env,
    project_python,
    ratios,
    write_results,
)
from bench.batch_predict import MAKE_MODEL
from bench.serve_http import Server, free_port, run_group

COLUMNS = [f"f{i}" for i in range(20)]
ROW = [round(0.1 * i - 1.0, 2) for i in range(20)]
LOCAL = "modelyard (local env)"
BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})


def _expected(model: Path) -> Any:
    import pandas as pd

    import modelyard

    pred = modelyard.load_model(model, env="ignore").predict(pd.DataFrame([ROW], columns=COLUMNS))
    return {"predictions": [float(v) for v in pred]}


def _path_with_uv() -> str:
    # the uv binary of modelyard[uv], for MLflow too
    return f"{project_python().parent}{os.pathsep}{os.environ.get('PATH', '')}"


def start_ours(
    model: Path, expect: Any, logdir: Path, env_root: Path, *extra: str, label: str = ""
) -> Server:
    port = free_port()
    argv = [str(project_python()), "-c", "from modelyard.cli import main; main()", "serve"]
    argv += [str(model), "--port", str(port), *extra]
    env = project_env(MODELYARD_ENV_ROOT=str(env_root), PATH=_path_with_uv())
    label = label or "modelyard --env uv"
    return _start(label, argv, port=port, env=env, expect=expect, logdir=logdir)


def start_theirs(model: Path, expect: Any, logdir: Path, env_root: Path) -> Server:
    port = free_port()
    argv = [str(mlflow_python().with_name("mlflow")), "models", "serve", "-m", str(model)]
    argv += ["--env-manager", "uv", "-h", "127.0.0.1", "-p", str(port)]
    env = mlflow_env(MLFLOW_ENV_ROOT=str(env_root), PATH=_path_with_uv())
    label = "mlflow --env-manager uv"
    return _start(label, argv, port=port, env=env, expect=expect, logdir=logdir)


def _start(
    label: str, argv: list[str], *, port: int, env: dict[str, str], expect: Any, logdir: Path
) -> Server:
    """A server, up once it answers BODY with ``expect``."""
    return Server(
        label,
        argv,
        port=port,
        env=env,
        probe_path="/invocations",
        probe_body=BODY,
        expect=expect,
        logdir=logdir,
    )


def main() -> None:
    """Run the benchmark and print its tables."""
    model = mlflow_fixture("batch-linear", MAKE_MODEL) / "model"
    expect = _expected(model)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-uv-", dir=FIXTURES))
    ours_root, theirs_root = work / "envs-ours", work / "envs-mlflow"
    try:
        warm: dict[str, list[float]] = {"modelyard --env uv": [], "mlflow --env-manager uv": []}
        # the first round builds the environments and is dropped
        for _ in range(RUNS + 1):
            for server in (
                start_ours(model, expect, work, ours_root, "--env", "uv"),
                start_theirs(model, expect, work, theirs_root),
            ):
                server.stop()
                warm[server.label].append(server.startup_s)
        warm = {k: v[1:] for k, v in warm.items()}
        ours, theirs = warm["modelyard --env uv"], warm["mlflow --env-manager uv"]
        start_ratio = Summary.of(ratios(ours, theirs))
        print_table(
            "start-up to the first correct answer, environments cached (s)",
            ["server", "median (min..max)"],
            [[k, Summary.of(v).fmt(2)] for k, v in warm.items()]
            + [["modelyard / mlflow", start_ratio.fmt(2)]],
        )
        loads, _ = run_group(
            [
                (lambda: start_ours(model, expect, work, ours_root, "--env", "uv"), "/invocations"),
                (lambda: start_theirs(model, expect, work, theirs_root), "/invocations"),
                (lambda: start_ours(model, expect, work, ours_root, label=LOCAL), "/invocations"),
            ],
            "split-20-floats",
            BODY,
            work,
        )
        by = {(x.server, x.conc): x for x in loads}
        rows = []
        for conc in sorted({x.conc for x in loads}):
            us = by[("modelyard --env uv", conc)]
            them = by[("mlflow --env-manager uv", conc)]
            local = by[(LOCAL, conc)]
            rows.append(
                [
                    conc,
                    f"{us.rps:.0f} / {them.rps:.0f} / {local.rps:.0f}",
                    f"{us.rps / them.rps:.2f}x",
                    f"{us.p99_ms:.2f} / {them.p99_ms:.2f} / {local.p99_ms:.2f}",
                ]
            )
        print_table(
            "1-row requests: modelyard --env uv / mlflow --env-manager uv / modelyard local",
            ["c", "req/s", "ours/mlflow req/s", "p99 ms"],
            rows,
        )
        write_results(
            "serve_uv",
            {
                "startup_s": warm,
                "startup_ratio": start_ratio.median,
                "loads": [x.__dict__ for x in loads],
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
