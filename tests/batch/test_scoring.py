"""The chunked scoring loop: outputs, multi-output, params, bad rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard
from modelyard.batch.scoring import ScoreOptions, score_file
from modelyard.errors import DataFileError, ScoringError
from tests.batch.conftest import read_any


class Fussy(modelyard.PythonModel):
    """Doubles ``x``; refuses negative values (a stand-in for rows a model cannot score)."""

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        x = model_input["x"].to_numpy()
        if (x < 0).any():
            raise ValueError(f"negative x in {int((x < 0).sum())} row(s)")
        scale = (params or {}).get("scale", 2.0)
        return x * scale


class TwoOutputs(modelyard.PythonModel):
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return pd.DataFrame({"low": model_input["x"] - 1, "high": model_input["x"] + 1})


@pytest.fixture
def fussy(tmp_path: Path) -> Any:
    path = tmp_path / "fussy"
    params = [{"name": "scale", "type": "double", "default": 2.0, "shape": None}]
    signature = {
        "inputs": json.dumps([{"name": "x", "type": "double"}]),
        "params": json.dumps(params),
    }
    modelyard.save_model(Fussy(), path, signature=signature)
    return modelyard.load_model(path)


def _xs(tmp_path: Path, xs: list[float], fmt: str = "parquet") -> Path:
    df = pd.DataFrame({"key": [f"k{i}" for i in range(len(xs))], "x": xs})
    path = tmp_path / f"xs.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_predictions_equal_the_estimators_across_batches(
    fmt: str, saved_iris: Path, iris_files: dict[str, Path], expected: Any, tmp_path: Path
) -> None:
    model = modelyard.load_model(saved_iris)
    out = tmp_path / f"out.{fmt}"
    report = score_file(
        model,
        str(iris_files[fmt]),
        str(out),
        options=ScoreOptions(batch_size=33, keep_columns=("id",), result_column="species"),
    )
    got = read_any(out)
    assert list(got.columns) == ["id", "species"]  # the id column did not reach the model
    assert got["id"].tolist() == [f"r{i}" for i in range(150)]
    np.testing.assert_array_equal(got["species"].to_numpy(), expected)
    assert (report.rows_read, report.rows_written, report.rows_failed) == (150, 150, 0)


def test_output_format_follows_the_output_name(
    saved_iris: Path, iris_files: dict[str, Path], expected: Any, tmp_path: Path
) -> None:
    model = modelyard.load_model(saved_iris)
    out = tmp_path / "out.jsonl"
    score_file(model, str(iris_files["csv"]), str(out))
    np.testing.assert_array_equal(read_any(out)["prediction"].to_numpy(), expected)


def test_multi_output_array_gives_one_column_per_output(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) ** 2})
    Y = np.column_stack([X["a"] * 2, X["b"] - X["a"]])
    reg = LinearRegression().fit(X, Y)
    modelyard.save_model(reg, tmp_path / "m", input_example=X.head(2))
    X.to_parquet(tmp_path / "in.parquet")
    score_file(
        modelyard.load_model(tmp_path / "m"),
        str(tmp_path / "in.parquet"),
        str(tmp_path / "out.parquet"),
        options=ScoreOptions(batch_size=7),
    )
    got = pd.read_parquet(tmp_path / "out.parquet")
    assert list(got.columns) == ["prediction_0", "prediction_1"]
    np.testing.assert_allclose(got.to_numpy(), reg.predict(X))


def test_multi_output_frame_keeps_its_column_names(tmp_path: Path) -> None:
    modelyard.save_model(TwoOutputs(), tmp_path / "m")
    src = _xs(tmp_path, [1.0, 2.0, 3.0])
    out = tmp_path / "out.csv"
    score_file(
        modelyard.load_model(tmp_path / "m"),
        str(src),
        str(out),
        options=ScoreOptions(keep_columns=("key",)),
    )
    got = pd.read_csv(out)
    assert got.to_dict("list") == {
        "key": ["k0", "k1", "k2"],
        "low": [0.0, 1.0, 2.0],
        "high": [2.0, 3.0, 4.0],
    }


def test_params_reach_the_model(fussy: Any, tmp_path: Path) -> None:
    src = _xs(tmp_path, [1.0, 2.0])
    out = tmp_path / "out.parquet"
    score_file(fussy, str(src), str(out), options=ScoreOptions(params={"scale": 10.0}))
    assert pd.read_parquet(out)["prediction"].tolist() == [10.0, 20.0]


def test_stop_names_the_rows_and_writes_nothing(fussy: Any, tmp_path: Path) -> None:
    src = _xs(tmp_path, [1.0, 2.0, 3.0, -4.0, 5.0, 6.0, 7.0])
    out = tmp_path / "out.parquet"
    out.write_bytes(b"the previous output")
    with pytest.raises(ScoringError) as err:
        score_file(fussy, str(src), str(out), options=ScoreOptions(batch_size=3))
    assert (err.value.first_row, err.value.last_row) == (3, 5)
    assert "rows 3-5" in str(err.value)
    assert "negative x" in str(err.value)
    assert out.read_bytes() == b"the previous output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fussy", "out.parquet", "xs.parquet"]


def test_stop_on_an_unparsable_csv_value_names_row_and_column(fussy: Any, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("key,x\na,1\nb,2\nc,two\n")
    with pytest.raises(ScoringError) as err:
        score_file(fussy, str(src), str(tmp_path / "out.csv"))
    assert (err.value.first_row, err.value.column) == (2, "x")
    assert "'two' is not a valid double" in str(err.value)
    assert not (tmp_path / "out.csv").exists()


def test_skip_logs_bad_rows_and_keeps_the_rest_aligned(fussy: Any, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    rows = ["key,x", "a,1", "b,-2", "c,3", "d,three", "e,5", "f,-6", "g,7"]
    src.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out.csv"
    report = score_file(
        fussy,
        str(src),
        str(out),
        options=ScoreOptions(batch_size=4, keep_columns=("key",), on_error="skip"),
    )
    got = pd.read_csv(out)
    assert got.to_dict("list") == {
        "key": ["a", "c", "e", "g"],
        "prediction": [2.0, 6.0, 10.0, 14.0],
    }
    log = [json.loads(line) for line in Path(f"{out}.errors.jsonl").read_text().splitlines()]
    assert [(r["row"], r["values"]["key"]) for r in log] == [(1, "b"), (3, "d"), (5, "f")]
    assert "negative x in 1 row(s)" in log[0]["error"]
    assert log[1]["column"] == "x"
    assert (report.rows_read, report.rows_written, report.rows_failed) == (7, 4, 3)


def test_keep_columns_must_exist(
    saved_iris: Path, iris_files: dict[str, Path], tmp_path: Path
) -> None:
    model = modelyard.load_model(saved_iris)
    with pytest.raises(DataFileError, match=r"'ident' not in the input \(its columns: id, sepal"):
        score_file(
            model,
            str(iris_files["parquet"]),
            str(tmp_path / "o.parquet"),
            options=ScoreOptions(keep_columns=("ident",)),
        )


def test_result_column_clashing_with_a_kept_column_is_refused(
    saved_iris: Path, iris_files: dict[str, Path], tmp_path: Path
) -> None:
    model = modelyard.load_model(saved_iris)
    with pytest.raises(ScoringError, match="also kept input columns"):
        score_file(
            model,
            str(iris_files["parquet"]),
            str(tmp_path / "o.parquet"),
            options=ScoreOptions(keep_columns=("id",), result_column="id", on_error="skip"),
        )


def test_skip_to_stdout_needs_an_errors_file(fussy: Any, tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="--errors-file"):
        score_file(fussy, str(_xs(tmp_path, [1.0])), "-", options=ScoreOptions(on_error="skip"))


def test_progress_bar_when_asked(
    fussy: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _xs(tmp_path, [1.0, 2.0, 3.0])
    score_file(fussy, str(src), str(tmp_path / "o.parquet"), progress=True)
    assert "3 rows" in capsys.readouterr().err
    score_file(fussy, str(src), str(tmp_path / "o.parquet"))  # not a terminal: quiet
    assert capsys.readouterr().err == ""


def test_read_ahead_keeps_order_passes_errors_and_stops_early() -> None:
    from modelyard.batch._pipeline import WriteBehind, read_ahead

    assert list(read_ahead(range(50), depth=2)) == list(range(50))

    def broken() -> Any:
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(read_ahead(broken()))
    it = read_ahead(range(1000), depth=2)
    assert next(it) == 0
    it.close()  # the consumer stops early: the reading thread ends, nothing hangs

    written: list[int] = []
    behind = WriteBehind(written.append)
    for i in range(20):
        behind.put(i)
    behind.close()
    assert written == list(range(20))

    def fail(item: int) -> None:
        raise ValueError(f"cannot write {item}")

    failing = WriteBehind(fail)
    failing.put(1)
    with pytest.raises(ValueError, match="cannot write 1"):
        failing.close()
