"""``modelyard predict`` as a user runs it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import modelyard
from modelyard.cli import main
from tests.batch.conftest import read_any, with_ids, write_formats


@pytest.fixture
def iris_frame(iris: tuple[pd.DataFrame, pd.Series]) -> pd.DataFrame:
    return with_ids(iris[0])


@pytest.fixture
def iris_files(tmp_path: Path, iris_frame: pd.DataFrame) -> dict[str, Path]:
    return write_formats(tmp_path, iris_frame)


@pytest.fixture
def expected(iris_model: Any, iris: tuple[pd.DataFrame, pd.Series]) -> Any:
    return iris_model.predict(iris[0])


class Scaled(modelyard.PythonModel):
    """``x * scale`` (params) ``+ offset`` (model_config)."""

    def load_context(self, context: Any) -> None:
        self.offset = (context.model_config or {}).get("offset", 0.0)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return model_input["x"].to_numpy() * (params or {}).get("scale", 1.0) + self.offset


def _run(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(main, ["predict", *args], input=input, catch_exceptions=False)


def test_predict_parquet_with_kept_id(
    saved_iris: Path, iris_files: dict[str, Path], expected: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    res = _run(
        "-m",
        str(saved_iris),
        "-i",
        str(iris_files["parquet"]),
        "-o",
        str(out),
        "--keep-columns",
        "id",
        "--result-column",
        "species",
        "--batch-size",
        "64",
    )
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    assert list(got.columns) == ["id", "species"]
    np.testing.assert_array_equal(got["species"].to_numpy(), expected)
    assert "scored 150 rows into" in res.stderr


def test_stdin_to_stdout_through_real_pipes(
    saved_iris: Path, iris_files: dict[str, Path], expected: Any
) -> None:
    exe = Path(sys.executable).with_name("modelyard")
    proc = subprocess.run(
        [
            str(exe),
            "predict",
            "-m",
            str(saved_iris),
            "-i",
            "-",
            "-o",
            "-",
            "--format",
            "csv",
            "--keep-columns",
            "id",
        ],
        input=iris_files["csv"].read_bytes(),
        capture_output=True,
        check=False,
        timeout=120,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    got = pd.read_csv(io.BytesIO(proc.stdout))
    assert got["id"].tolist()[:2] == ["r0", "r1"]
    np.testing.assert_array_equal(got["prediction"].to_numpy(), expected)
    assert b"\x1b[" not in proc.stderr  # no progress bar when not on a terminal


def test_parquet_from_stdin_as_jsonl_to_stdout(
    saved_iris: Path, iris_files: dict[str, Path], expected: Any
) -> None:
    res = _run(
        "-m",
        str(saved_iris),
        "-i",
        "-",
        "-o",
        "-",
        "--format",
        "parquet",
        "--output-format",
        "jsonl",
        input=iris_files["parquet"].read_bytes(),
    )
    assert res.exit_code == 0, res.stderr
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert [x["prediction"] for x in lines] == expected.tolist()


def test_params_and_model_config(tmp_path: Path) -> None:
    modelyard.save_model(Scaled(), tmp_path / "m", model_config={"offset": 0.0})
    pd.DataFrame({"x": [1.0, 2.0]}).to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "conf.yaml").write_text("offset: 0.5\n")
    res = _run(
        "-m",
        str(tmp_path / "m"),
        "-i",
        str(tmp_path / "in.csv"),
        "-o",
        str(tmp_path / "out.csv"),
        "--params",
        '{"scale": 3}',
        "--model-config",
        str(tmp_path / "conf.yaml"),
    )
    assert res.exit_code == 0, res.output
    assert read_any(tmp_path / "out.csv")["prediction"].tolist() == [3.5, 6.5]


def test_bad_params_are_named(
    saved_iris: Path, iris_files: dict[str, Path], tmp_path: Path
) -> None:
    res = CliRunner().invoke(
        main,
        [
            "predict",
            "-m",
            str(saved_iris),
            "-i",
            str(iris_files["csv"]),
            "-o",
            str(tmp_path / "o.csv"),
            "--params",
            "[1, 2]",
        ],
    )
    assert res.exit_code == 2
    assert "--params" in res.output
    assert "JSON object" in res.output


def test_a_failing_batch_exits_1_names_rows_and_writes_nothing(
    saved_iris: Path, iris_frame: pd.DataFrame, tmp_path: Path
) -> None:
    text = iris_frame.to_csv(index=False).splitlines()
    row = text[101].split(",")
    row[2] = "n/a?"  # sepal width (cm) of data row 100
    text[101] = ",".join(row)
    (tmp_path / "in.csv").write_text("\n".join(text) + "\n")
    res = CliRunner().invoke(
        main,
        [
            "predict",
            "-m",
            str(saved_iris),
            "-i",
            str(tmp_path / "in.csv"),
            "-o",
            str(tmp_path / "o.csv"),
        ],
    )
    assert res.exit_code == 1
    assert "row 100, column 'sepal width (cm)'" in res.output
    assert "nothing was written" in res.output
    assert not (tmp_path / "o.csv").exists()

    res = _run(
        "-m",
        str(saved_iris),
        "-i",
        str(tmp_path / "in.csv"),
        "-o",
        str(tmp_path / "o.csv"),
        "--on-error",
        "skip",
        "--errors-file",
        str(tmp_path / "bad.jsonl"),
        "--keep-columns",
        "id",
    )
    assert res.exit_code == 0
    assert "1 failed rows in" in res.stderr
    assert len(pd.read_csv(tmp_path / "o.csv")) == 149
    (failure,) = [json.loads(x) for x in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert failure["row"] == 100
    assert failure["values"]["id"] == "r100"


def test_unknown_model_is_a_clean_error(iris_files: dict[str, Path], tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main,
        [
            "predict",
            "-m",
            str(tmp_path / "nope"),
            "-i",
            str(iris_files["csv"]),
            "-o",
            str(tmp_path / "o.csv"),
        ],
    )
    assert res.exit_code == 1
    assert "no such directory" in res.output
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_options(flag: str) -> None:
    res = CliRunner().invoke(main, ["predict", flag])
    for option in ("--keep-columns", "--result-column", "--on-error", "--env", "--batch-size"):
        assert option in res.output


def test_predict_a_registered_alias(
    saved_iris: Path,
    iris_files: dict[str, Path],
    expected: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelyard.registry import register_model, set_alias

    monkeypatch.setenv("MODELYARD_URI", str(tmp_path / "yard"))
    set_alias("iris", "champion", register_model(str(saved_iris), "iris").version)
    out = tmp_path / "out.csv"
    res = _run("-m", "models:/iris@champion", "-i", str(iris_files["parquet"]), "-o", str(out))
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(read_any(out)["prediction"].to_numpy(), expected)
