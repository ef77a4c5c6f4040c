"""Real MLflow, in its own virtual environment, for the interoperability tests.

The environment is built once (about two minutes) and cached outside the
checkout, keyed by the MLflow version, so later runs and CI on the same
machine reuse it. MLflow is never importable from the test process itself.
"""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

MLFLOW_VERSION = "3.17.2"
# torch==2.13.0 is the CPU wheel on this machine kind; skops for MLflow's default format;
# xgboost-cpu, not the 132 MB CUDA `xgboost` wheel (same `import xgboost`); the tree
# libraries at the versions modelyard's own venv tests with, so predictions match exactly.
# Appending here extends an existing venv in place (see `_ensure`); no rebuild.
PACKAGES = [
    f"mlflow=={MLFLOW_VERSION}",
    "torch==2.13.0",
    "skops",
    "xgboost-cpu==3.2.0",
    "lightgbm==4.7.0",
    # pandas as modelyard's venv has it: a newer one pulled in by MLflow makes the models
    # MLflow saves pin a pandas this side lacks, and their environment check refuses them
    f"pandas=={importlib.metadata.version('pandas')}",
]
CACHE = Path(os.environ.get("MODELYARD_INTEROP_CACHE", Path.home() / ".cache" / "modelyard"))

RunMlflow = Callable[..., Any]


def _build(env: Path) -> None:
    # Built in place (a venv records its own path); ".complete" marks a finished build.
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *PACKAGES], check=True)
    _mark_complete(env, PACKAGES)


def _mark_complete(env: Path, packages: list[str]) -> None:
    # Written whole and renamed into place: a reader never sees half a list.
    tmp = env / ".complete.tmp"
    tmp.write_text(json.dumps(packages))
    tmp.replace(env / ".complete")


def _recorded(env: Path) -> list[str] | None:
    """The packages a finished build holds, or None when there is no finished build."""
    try:
        text = (env / ".complete").read_text()
    except FileNotFoundError:
        return None
    try:
        packages = json.loads(text)
    except ValueError:
        packages = None  # an older marker ("ok"): everything but what PACKAGES added since
    if not isinstance(packages, list):
        return PACKAGES[:3]
    return [str(p) for p in packages]


def _ensure(env: Path) -> None:
    """A venv holding every package in PACKAGES; call under the lock.

    A finished venv missing packages that PACKAGES gained since gets only those,
    pip-installed in place, so sessions already using it keep running (pip adds
    files, and the already-installed requirements satisfy it as they are); only a
    missing or unfinished venv is built from scratch.
    """
    done = _recorded(env)
    if done is None:
        shutil.rmtree(env, ignore_errors=True)
        _build(env)
        return
    missing = [p for p in PACKAGES if p not in done]
    if missing:
        python = str(env / "bin" / "python")
        subprocess.run([python, "-m", "pip", "install", "-q", *missing], check=True)
        _mark_complete(env, [*done, *missing])


@pytest.fixture(scope="session")
def mlflow_python() -> Path:
    """The interpreter of the cached MLflow environment (built on first use)."""
    env = CACHE / f"mlflow-{MLFLOW_VERSION}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".mlflow-env.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions build or extend it once
        _ensure(env)
    return env / "bin" / "python"


@pytest.fixture(scope="session", autouse=True)
def _mlflow_not_importable_here() -> None:
    import importlib.util

    assert importlib.util.find_spec("mlflow") is None, (
        "mlflow must not be installed in the test env"
    )


@pytest.fixture
def run_mlflow(mlflow_python: Path, tmp_path: Path) -> RunMlflow:
    """Run a script with MLflow's interpreter; the script's last stdout line is parsed as JSON.

    ``with_modelyard=True`` puts this checkout's ``src`` on the child's path, for
    the direction where MLflow loads what modelyard saved and needs our classes.
    """

    def run(script: str, *, with_modelyard: bool = False, cwd: Path | None = None) -> Any:
        file = tmp_path / f"mlflow_script_{abs(hash(script))}.py"
        file.write_text(textwrap.dedent(script))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        env["GIT_PYTHON_REFRESH"] = "quiet"
        if with_modelyard:
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
        proc = subprocess.run(
            [str(mlflow_python), str(file)],
            check=False,
            capture_output=True,
            text=True,
            cwd=cwd or tmp_path,
            env=env,
            timeout=600,
        )
        if proc.returncode != 0:
            raise AssertionError(f"MLflow script failed:\n{proc.stdout}\n{proc.stderr}")
        lines = [line for line in proc.stdout.splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None

    return run
