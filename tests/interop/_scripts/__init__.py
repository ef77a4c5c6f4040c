"""Scripts run by MLflow's own interpreter (the cached venv), never imported by tests.

:func:`run` runs one of them once per test module, so a whole set of models is
made or checked by a single MLflow process (importing MLflow alone takes a
second or more).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2] / "src"


def run(
    mlflow_python: Path,
    script: str,
    *args: str,
    cwd: Path,
    with_modelyard: bool = False,
    extra_env: dict[str, str] | None = None,
) -> Any:
    """Run ``_scripts/<script>`` with MLflow's Python; its last stdout line is parsed as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", GIT_PYTHON_REFRESH="quiet", **(extra_env or {}))
    if with_modelyard:
        env["PYTHONPATH"] = str(SRC)
    proc = subprocess.run(
        [str(mlflow_python), str(HERE / script), *args],
        check=False,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )
    if proc.returncode != 0:
        raise AssertionError(f"MLflow script {script} failed:\n{proc.stdout}\n{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None
