"""The README's demos run as written: on the embedded yard, and through a real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(script: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_the_demo_runs_on_the_embedded_yard(tmp_path: Path) -> None:
    out = _run("demo.py", tmp_path)
    assert "trust   signature verified" in out
    assert "registered iris v1" in out
    assert "(answered by v1)" in out
    assert (tmp_path / "demo-yard" / "yard.db").is_file()


@pytest.mark.slow
def test_the_demo_runs_through_a_server_twice(tmp_path: Path) -> None:
    first = _run("demo_server.py", tmp_path)
    assert "(http)" in first
    assert "registered iris v1" in first
    assert "(answered by v1)" in first
    assert "ci   version.create   models:/iris/1" in first
    second = _run("demo_server.py", tmp_path)  # champion is protected now; ci manages iris
    assert "models:/iris@champion -> v2 (was v1)" in second
