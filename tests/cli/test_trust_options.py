"""``--verify`` and ``--trust`` on ``modelyard predict`` and ``modelyard serve``: refused
models are refused before anything is unpickled, served or written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import modelyard
from modelyard.cli import main
from modelyard.errors import SignatureRequired
from modelyard.isolation.isolated import IsolatedModel
from tests.cli._trusted import doubled

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0]})


def _linear(path: Path, *, sign: bool, step: bool = False) -> Path:
    fitted = LinearRegression().fit(FRAME, [2.0, 4.0, 6.0])
    model = make_pipeline(FunctionTransformer(doubled), fitted) if step else fitted
    modelyard.save_model(model, path, input_example=FRAME.head(1), sign=sign)
    return path


def _predict(model: Path, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    FRAME.to_csv(source, index=False)
    result = CliRunner().invoke(
        main, ["predict", "-m", str(model), "-i", str(source), "-o", str(out), *extra]
    )
    return result.exit_code, result.output, out


def test_predict_with_verify_required_refuses_an_unsigned_model_and_writes_nothing(
    tmp_path: Path,
) -> None:
    model = _linear(tmp_path / "unsigned", sign=False)
    code, output, out = _predict(model, tmp_path, "--verify", "required")
    assert code != 0
    assert "is not signed, and a trusted signature is required" in output
    assert "Traceback" not in output
    assert not out.exists()


def test_predict_with_verify_required_scores_a_signed_model(tmp_path: Path) -> None:
    model = _linear(tmp_path / "signed", sign=True)
    code, output, out = _predict(model, tmp_path, "--verify", "required")
    assert code == 0, output
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], [2.0, 4.0, 6.0])


def test_predict_trust_admits_the_named_global_and_nothing_else(tmp_path: Path) -> None:
    model = _linear(tmp_path / "step", sign=False, step=True)
    code, output, out = _predict(model, tmp_path)
    assert code != 0
    assert "tests.cli._trusted.doubled" in output
    assert not out.exists()

    code, output, out = _predict(model, tmp_path, "--trust", "tests.cli._trusted.other")
    assert code != 0
    assert "tests.cli._trusted.doubled" in output

    code, output, out = _predict(model, tmp_path, "--trust", "tests.cli._trusted.doubled")
    assert code == 0, output
    np.testing.assert_allclose(pd.read_csv(out)["prediction"], [4.0, 8.0, 12.0])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["all", "tests.cli._trusted.doubled"], "give it alone"),
        (["not a name"], "is not a global name"),
    ],
)
def test_a_malformed_trust_option_is_refused_by_name(
    tmp_path: Path, values: list[str], message: str
) -> None:
    model = _linear(tmp_path / "m", sign=True)
    extra = [arg for v in values for arg in ("--trust", v)]
    code, output, out = _predict(model, tmp_path, *extra)
    assert code == 2
    assert "--trust" in output
    assert message in output
    assert not out.exists()


def test_serve_with_verify_required_does_not_start_on_an_unsigned_model(tmp_path: Path) -> None:
    model = _linear(tmp_path / "unsigned", sign=False)
    result = CliRunner().invoke(main, ["serve", str(model), "--port", "0", "--verify", "required"])
    assert result.exit_code != 0
    assert "a trusted signature is required" in result.output
    assert "Traceback" not in result.output


def test_an_isolated_model_is_refused_before_its_environment_is_built(tmp_path: Path) -> None:
    model = _linear(tmp_path / "unsigned", sign=False)
    envs = tmp_path / "envs"
    with pytest.raises(SignatureRequired, match="a trusted signature is required"):
        IsolatedModel.start(model, env_root=envs, verify="required")
    assert not envs.exists() or not any(envs.iterdir())
