"""A config home of its own for each test: keys and trust files start empty."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(name="config_home")
def config_home_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``MODELYARD_CONFIG_HOME`` pointed at an empty folder for this test."""
    home = tmp_path / "config"
    monkeypatch.setenv("MODELYARD_CONFIG_HOME", str(home))
    monkeypatch.delenv("MODELYARD_KEY_PASSWORD", raising=False)
    return home
