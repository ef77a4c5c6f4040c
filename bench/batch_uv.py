"""``modelyard predict --env uv`` vs ``mlflow models predict --env-manager uv``.

Same MLflow-saved scikit-learn model and 1,000-row CSV for both; whole processes.

- cold: the model's environment does not exist yet (a fresh env root per run:
  ``MODELYARD_ENV_ROOT`` / ``MLFLOW_ENV_ROOT``), so the command builds it, then
  scores. uv's package cache is shared and warm (after the warm-up round), as on
  any machine that has built one environment before.
- warm: the environment is cached; the command starts the model in it and scores.

MLflow installs ``mlflow`` itself into the model's environment (the model's
requirements name it); modelyard leaves it out (it loads MLflow models itself)
and links or copies its own package in. ``BENCH_UV_COLD_RUNS`` (default 3) sets
the cold rounds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from bench._util import (
    FIXTURES,
    RUNS,
    RUNS_HEADERS,
    WARMUP,
    Command,
    Run,
    mlflow_env,
    mlflow_fixture,
    mlflow_python,
    paired_ratios,
    print_table,
    project_env,
    project_python,
    run_once,
    runs_json,
    runs_row,
    time_commands,
    write_results,
)
from bench.batch_predict import MAKE_MODEL

COLD_RUNS = int(os.environ.get("BENCH_UV_COLD_RUNS", "3"))


def _commands(
    model: Path, data: Path, out: Path, ours_root: Path, theirs_root: Path
) -> list[Command]:
    uv_dir = str(project_python().parent)  # the uv binary of modelyard[uv], for MLflow too
    path = f"{uv_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    exe = project_python().with_name("modelyard")
    return [
        Command(
            "modelyard --env uv",
            [
                str(exe),
                "predict",
                "-m",
                str(model),
                "-i",
                str(data),
                "-o",
                str(out / "ours.csv"),
                "--env",
                "uv",
                "--no-progress",
            ],
            env=project_env(MODELYARD_ENV_ROOT=str(ours_root), PATH=path),
        ),
        Command(
            "mlflow --env-manager uv",
            [
                str(mlflow_python().with_name("mlflow")),
                "models",
                "predict",
                "-m",
                str(model),
                "-i",
                str(data),
                "-t",
                "csv",
                "-o",
                str(out / "mlflow.json"),
                "--env-manager",
                "uv",
            ],
            env=mlflow_env(MLFLOW_ENV_ROOT=str(theirs_root), PATH=path),
        ),
    ]


def main() -> None:
    """Run the benchmark and print its tables."""
    import numpy as np
    import pandas as pd

    model = mlflow_fixture("batch-linear", MAKE_MODEL) / "model"
    work = Path(tempfile.mkdtemp(prefix="bench-uv-", dir=FIXTURES))
    try:
        data = work / "in.csv"
        rng = np.random.default_rng(2)
        pd.DataFrame(rng.normal(size=(1000, 20)), columns=[f"f{i}" for i in range(20)]).to_csv(
            data, index=False
        )
        cold: dict[str, list[Run]] = {}
        for round_ in range(WARMUP + COLD_RUNS):
            ours, theirs = work / f"ours-{round_}", work / f"mlflow-{round_}"
            for cmd in _commands(model, data, work, ours, theirs):
                run = run_once(cmd)
                if round_ >= WARMUP:
                    cold.setdefault(cmd.label, []).append(run)
            if round_ < WARMUP + COLD_RUNS - 1:  # the last pair stays, for the warm runs
                shutil.rmtree(ours)
                shutil.rmtree(theirs, ignore_errors=True)
        last = WARMUP + COLD_RUNS - 1
        warm_cmds = _commands(model, data, work, work / f"ours-{last}", work / f"mlflow-{last}")
        warm = time_commands(warm_cmds, runs=RUNS, warmup=0)
        ours_pred = pd.read_csv(work / "ours.csv")["prediction"].to_numpy()
        theirs_pred = json.loads((work / "mlflow.json").read_text())["predictions"]
        np.testing.assert_allclose(ours_pred, np.asarray(theirs_pred, dtype=float))
        labels = [c.label for c in warm_cmds]
        print_table(
            "cold: the environment is built, then the model scores 1,000 rows",
            RUNS_HEADERS,
            [runs_row(k, cold[k]) for k in labels],
        )
        print_table(
            "warm: the environment is cached", RUNS_HEADERS, [runs_row(k, warm[k]) for k in labels]
        )
        cold_ratio = paired_ratios(cold[labels[0]], cold[labels[1]])
        warm_ratio = paired_ratios(warm[labels[0]], warm[labels[1]])
        print_table(
            "modelyard / mlflow, median of pairs (min..max)",
            ["", "wall"],
            [
                ["cold", cold_ratio.fmt(2)],
                ["warm", warm_ratio.fmt(2)],
            ],
        )
        write_results(
            "batch_uv",
            {
                "cold": {k: runs_json(v) for k, v in cold.items()},
                "warm": {k: runs_json(v) for k, v in warm.items()},
                "cold_ratio": cold_ratio.median,
                "warm_ratio": warm_ratio.median,
            },
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
