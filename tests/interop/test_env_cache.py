"""The cached MLflow venv grows in place when PACKAGES does; it is rebuilt only when unfinished."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.interop import conftest


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    made: list[list[str]] = []

    def run(cmd: list[str], **kwargs: Any) -> None:
        made.append([str(c) for c in cmd])
        if cmd[1:3] == ["-m", "venv"]:
            Path(cmd[3]).mkdir()

    monkeypatch.setattr(conftest.subprocess, "run", run)
    return made


def test_missing_packages_are_added_without_a_rebuild(
    tmp_path: Path, calls: list[list[str]]
) -> None:
    env = tmp_path / "mlflow"
    env.mkdir()
    (env / "kept").write_text("a session is using this venv")
    first = conftest.PACKAGES[:3]
    (env / ".complete").write_text(json.dumps(first))
    conftest._ensure(env)
    assert calls == [[str(env / "bin" / "python"), "-m", "pip", "install", "-q",
                      *conftest.PACKAGES[3:]]]  # fmt: skip
    assert (env / "kept").exists()
    assert json.loads((env / ".complete").read_text()) == [*first, *conftest.PACKAGES[3:]]
    calls.clear()
    conftest._ensure(env)  # complete now: nothing to do
    assert calls == []


def test_an_old_marker_counts_as_the_first_packages(tmp_path: Path, calls: list[list[str]]) -> None:
    env = tmp_path / "mlflow"
    env.mkdir()
    (env / ".complete").write_text("ok")
    conftest._ensure(env)
    assert calls[0][-len(conftest.PACKAGES[3:]) :] == conftest.PACKAGES[3:]


def test_an_unfinished_venv_is_built_from_scratch(tmp_path: Path, calls: list[list[str]]) -> None:
    env = tmp_path / "mlflow"
    env.mkdir()
    (env / "half").write_text("a build that died")
    conftest._ensure(env)
    assert not (env / "half").exists()
    assert calls[-1][-len(conftest.PACKAGES) :] == conftest.PACKAGES
    assert json.loads((env / ".complete").read_text()) == conftest.PACKAGES
