"""Environment checks: structured report, warn / strict / ignore."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

import modelyard
from modelyard.errors import EnvironmentMismatch


def _edit(path: Path, requirements: str, python: str | None = None) -> None:
    (path / "MANIFEST.sha256").unlink()
    (path / "MANIFEST.sig").unlink(missing_ok=True)
    (path / "requirements.txt").write_text(requirements)
    if python:
        doc = yaml.safe_load((path / "MLmodel").read_text())
        doc["flavors"]["python_function"]["python_version"] = python
        (path / "MLmodel").write_text(yaml.safe_dump(doc))


def test_matching_environment_is_ok(saved_iris: Path) -> None:
    report = modelyard.check_environment(saved_iris)
    assert report.ok
    assert report.mismatches == ()


def test_mismatches_reported(saved_iris: Path, caplog: pytest.LogCaptureFixture) -> None:
    _edit(saved_iris, "scikit-learn==0.1.0\nsome-missing-package==1.0\nnumpy\n", python="3.6.1")
    report = modelyard.check_environment(saved_iris)
    assert not report.ok
    assert not report.python_matches
    assert {m.package for m in report.mismatches} == {"scikit-learn", "some-missing-package"}
    missing = next(m for m in report.mismatches if m.package == "some-missing-package")
    assert missing.installed is None
    assert report.to_dict()["ok"] is False

    with caplog.at_level(logging.WARNING, logger="modelyard"):
        model = modelyard.load_model(saved_iris)
    assert len(caplog.records) == 1
    assert "scikit-learn" in caplog.text
    assert "3.6.1" in caplog.text
    assert model.environment == report

    with pytest.raises(EnvironmentMismatch) as info:
        modelyard.load_model(saved_iris, env="strict")
    assert info.value.report == report

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modelyard"):
        modelyard.load_model(saved_iris, env="ignore")
    assert caplog.records == []


def test_markers_and_unparsable_lines(saved_iris: Path) -> None:
    _edit(saved_iris, "scikit-learn==0.1; python_version < '3'\n./local/pkg\n-c constraints.txt\n")
    report = modelyard.check_environment(saved_iris)
    assert report.ok
    assert report.unchecked == ("./local/pkg",)


def test_bad_policy(saved_iris: Path) -> None:
    with pytest.raises(ValueError, match="env must be one of"):
        modelyard.load_model(saved_iris, env="loud")


def test_mlflow_itself_is_not_required(saved_iris: Path) -> None:
    # modelyard loads MLflow's models in MLflow's place: MLflow's pins on itself
    # must not make every MLflow-saved model warn.
    _edit(saved_iris, "mlflow==3.17.2\nmlflow-skinny>=3.0\nscikit-learn==0.1.0\n")
    report = modelyard.check_environment(saved_iris)
    assert [m.package for m in report.mismatches] == ["scikit-learn"]


def test_exact_pins_agree_with_pep440(saved_iris: Path) -> None:
    import numpy
    import pandas
    import sklearn

    pins = [
        f"scikit-learn=={sklearn.__version__}",  # the same string
        f"numpy=={numpy.__version__}.0",  # a different string for the same version
        "pandas==0.1",  # installed, another version
        "some-missing-package==1.0",  # not installed
        "Some_Other.Missing==2.0rc1",
    ]
    _edit(saved_iris, "\n".join(pins) + "\n")
    report = modelyard.check_environment(saved_iris)
    assert {m.package: m.installed for m in report.mismatches} == {
        "pandas": pandas.__version__,
        "some-missing-package": None,
        "some-other-missing": None,
    }
    assert report.unchecked == ()


def test_exact_pins_need_no_packaging(saved_iris: Path) -> None:
    # The common case (MLflow and modelyard pin `name==version`) must not import
    # `packaging`: it is a noticeable part of a cold start.
    import subprocess
    import sys

    code = (
        "import sys, modelyard; r = modelyard.check_environment(sys.argv[1]); "
        "print(r.ok, 'packaging' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(saved_iris)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["True", "False"]
