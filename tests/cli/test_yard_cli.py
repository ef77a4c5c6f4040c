"""``modelyard models|alias|runs|db`` as a user runs them: tables for people, JSON for scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import modelyard as my
from modelyard.cli import main
from modelyard.store import migrations
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import SCHEMA_REVISION
from modelyard.yard import Yard
from tests._yard import yard_uri


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def filled(any_yard: Yard, iris_model: Any) -> str:
    """Two versions of 'fraud' (v2 @champion) from two runs; returns the yard's URI."""
    for c in (1.0, 2.0):
        with my.start_run(experiment="fraud", run_name=f"C={c}"):
            my.log_params({"C": c})
            my.log_metric("auc", 0.9 + c / 100)
            my.log_model(iris_model, "model", registered_model_name="fraud")
    my.set_alias("fraud", "champion", 2)
    my.update_registered_model("fraud", description="card fraud")
    return yard_uri(any_yard)


def test_models_list_show_versions(filled: str) -> None:
    out = _run("models", "list", "--yard", filled)
    assert out.exit_code == 0
    assert "fraud" in out.output
    assert "@champion v2" in out.output
    assert "card fraud" in out.output
    data = json.loads(_run("models", "list", "--json", "--yard", filled).output)
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in data] == [
        ("fraud", 2, {"champion": 2})
    ]
    shown = json.loads(_run("models", "show", "fraud", "--json", "--yard", filled).output)
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    assert shown["versions"][0]["aliases"] == ["champion"]
    assert "latest version" in _run("models", "show", "fraud", "--yard", filled).output
    versions = json.loads(_run("models", "versions", "fraud", "--json", "--yard", filled).output)
    assert [v["source"].split("/")[-1] for v in versions] == ["model", "model"]
    table = _run("models", "versions", "fraud", "--yard", filled).output
    assert "@champion" in table
    assert versions[0]["digest"].split(":")[1][:12] in table


def test_alias_set_and_history(filled: str) -> None:
    out = _run("alias", "set", "fraud", "champion", "1", "--yard", filled)
    assert out.exit_code == 0
    assert out.output.strip() == "models:/fraud@champion -> v1 (was v2)"
    moved = json.loads(
        _run("alias", "set", "fraud", "champion", "2", "--json", "--yard", filled).output
    )
    assert (moved["from_version"], moved["to_version"]) == (1, 2)
    history = json.loads(
        _run("alias", "history", "fraud", "champion", "--json", "--yard", filled).output
    )
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 2), (2, 1), (1, 2)]
    assert "(removed)" not in _run("alias", "history", "fraud", "champion", "--yard", filled).output
    assert _run("alias", "delete", "fraud", "champion", "--yard", filled).exit_code == 0
    assert "(removed)" in _run("alias", "history", "fraud", "champion", "--yard", filled).output


def test_runs_list(filled: str) -> None:
    out = _run("runs", "list", "--yard", filled)
    assert out.exit_code == 0
    assert "FINISHED" in out.output
    runs = json.loads(
        _run(
            "runs",
            "list",
            "-e",
            "fraud",
            "--order-by",
            "metrics.auc DESC",
            "--json",
            "--yard",
            filled,
        ).output
    )
    assert [r["params"]["C"] for r in runs] == ["2.0", "1.0"]
    only = json.loads(
        _run("runs", "list", "--filter", "params.C = '1.0'", "--json", "--yard", filled).output
    )
    assert [r["name"] for r in only] == ["C=1.0"]


def test_errors_are_one_line_with_suggestions(filled: str) -> None:
    out = CliRunner().invoke(main, ["models", "show", "frod", "--yard", filled])
    assert out.exit_code == 1
    assert "no registered model 'frod'; did you mean 'fraud'?" in out.output
    assert "Traceback" not in out.output
    out = CliRunner().invoke(main, ["alias", "set", "fraud", "latest", "1", "--yard", filled])
    assert out.exit_code == 1
    assert "reserved" in out.output
    out = CliRunner().invoke(main, ["alias", "set", "fraud", "champion", "0", "--yard", filled])
    assert out.exit_code == 2  # click refuses a version < 1 before anything runs
    out = CliRunner().invoke(
        main, ["runs", "list", "--filter", "metrics.auc > 'x'", "--yard", filled]
    )
    assert out.exit_code == 1
    assert "invalid filter" in out.output


def test_db_upgrade_creates_upgrades_and_reports(tmp_path: Path) -> None:
    fresh = str(tmp_path / "fresh")
    try:
        out = _run("db", "upgrade", "--yard", fresh)
        assert out.output.strip() == f"{fresh}: schema upgraded from nothing to {SCHEMA_REVISION}"
        again = json.loads(_run("db", "upgrade", "--json", "--yard", fresh).output)
        assert again == {"yard": fresh, "from": SCHEMA_REVISION, "to": SCHEMA_REVISION}
        status = json.loads(_run("db", "status", "--json", "--yard", fresh).output)
        assert status["schema"] == SCHEMA_REVISION
        assert status["artifacts"] == str(tmp_path / "fresh" / "blobs")
    finally:
        my.get_yard().close()
        my.set_yard(None)
    # A yard written by an older modelyard, upgraded by the installed command.
    old = tmp_path / "old"
    old.mkdir()
    db = Database(f"sqlite:///{old / 'yard.db'}", display=str(old))
    with db.write() as conn:
        migrations.upgrade(conn, "0001")
    db.dispose()
    cmd = [sys.executable, "-m", "modelyard.cli", "db", "upgrade", "--yard", str(old)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if "No module named modelyard.cli.__main__" in proc.stderr:
        script = Path(sys.executable).with_name("modelyard")
        proc = subprocess.run([str(script), *cmd[3:]], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{old}: schema upgraded from 0001 to {SCHEMA_REVISION}"
