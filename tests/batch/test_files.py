"""Streaming readers and atomic writers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from modelyard.batch.files import AtomicWriter, BatchReader, detect_format
from modelyard.errors import DataFileError
from tests.batch.conftest import read_any


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.gz", "csv"),
        ("dir.v1/a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson.zst", "jsonl"),
    ],
)
def test_format_from_extension(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_format_errors_name_the_problem() -> None:
    with pytest.raises(DataFileError, match="pass --format"):
        detect_format("-")
    with pytest.raises(DataFileError, match=r"\.csv"):
        detect_format("data.txt")
    with pytest.raises(DataFileError, match="unknown format 'xml'"):
        detect_format("a.csv", "xml")
    assert detect_format("-", "parquet") == "parquet"


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_reader_yields_exact_batches_in_order(
    fmt: str, iris_files: dict[str, Path], iris_frame: pd.DataFrame
) -> None:
    with BatchReader(str(iris_files[fmt]), fmt, batch_size=40) as reader:
        chunks = list(reader)
        assert reader.progress_total is not None
    assert [c.table.num_rows for c in chunks] == [40, 40, 40, 30]
    assert [(c.start, c.stop) for c in chunks] == [(0, 40), (40, 80), (80, 120), (120, 150)]
    back = pa.concat_tables([c.table for c in chunks]).to_pandas()
    assert list(back["id"]) == list(iris_frame["id"])
    assert back["petal width (cm)"].tolist() == pytest.approx(iris_frame["petal width (cm)"])


def test_csv_declared_columns_parse_to_their_types_and_bad_values_fail_their_row(
    tmp_path: Path,
) -> None:
    path = tmp_path / "in.csv"
    path.write_text("zip,x,n\n01234,1.5,1\n00042,oops,2\n12345,2.5,x\n99999,,4\n")
    types = {"zip": pa.string(), "x": pa.float64(), "n": pa.int64()}
    with BatchReader(str(path), "csv", batch_size=10, column_types=types) as reader:
        (chunk,) = list(reader)
    assert chunk.table.column("zip").to_pylist() == ["01234", "99999"]  # leading zeros kept
    assert chunk.table.column("x").type == pa.float64()
    assert chunk.table.column("x").to_pylist() == [1.5, None]  # empty -> null, not a failure
    assert chunk.rows == [0, 3]
    assert [(f.row, f.column) for f in chunk.failures] == [(1, "x"), (2, "n")]
    assert chunk.failures[0].reason == "'oops' is not a valid double"
    assert chunk.failures[0].values == {"zip": "00042", "x": "oops", "n": "2"}


def test_json_lines_use_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"x": 1, "s": "a"}\n{"x": 2.5, "s": "b", "extra": true}\n')
    types = {"x": pa.float64()}
    with BatchReader(str(path), "jsonl", batch_size=10, column_types=types) as reader:
        (chunk,) = list(reader)
    assert chunk.table.schema.field("x").type == pa.float64()
    assert chunk.table.column("x").to_pylist() == [1.0, 2.5]
    assert chunk.table.column("extra").to_pylist() == [None, True]


def test_missing_and_unreadable_inputs_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="no such file") as err:
        BatchReader(str(tmp_path / "nope.csv"), "csv", batch_size=10)
    assert err.value.path.endswith("nope.csv")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet")
    with pytest.raises(DataFileError, match="not a readable Parquet file"):
        BatchReader(str(bad), "parquet", batch_size=10)


def test_compressed_text_files_read_and_write(tmp_path: Path, iris_frame: pd.DataFrame) -> None:
    src = tmp_path / "in.csv.gz"
    iris_frame.to_csv(src, index=False)
    with BatchReader(str(src), "csv", batch_size=64) as reader:
        tables = [c.table for c in reader]
    dest = tmp_path / "out.csv.gz"
    with AtomicWriter(str(dest), "csv") as writer:
        for t in tables:
            writer.write(t)
    assert read_any(dest)["id"].tolist() == iris_frame["id"].tolist()


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_writer_publishes_only_on_commit(tmp_path: Path, fmt: str) -> None:
    dest = tmp_path / f"out.{fmt}"
    dest.write_text("previous run")
    table = pa.table({"a": [1, 2]})

    def fail_midway() -> None:
        with AtomicWriter(str(dest), fmt) as writer:
            writer.write(table)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()
    assert dest.read_text() == "previous run"
    assert sorted(p.name for p in tmp_path.iterdir()) == [dest.name]  # no temp left over
    with AtomicWriter(str(dest), fmt) as writer:
        writer.write(table)
        writer.write(table)
    assert read_any(dest)["a"].tolist() == [1, 2, 1, 2]


def test_writer_casts_later_batches_and_names_incompatible_columns(tmp_path: Path) -> None:
    dest = tmp_path / "out.parquet"
    with AtomicWriter(str(dest), "parquet") as writer:
        writer.write(pa.table({"p": pa.array([1.5])}))
        writer.write(pa.table({"p": pa.array([2], pa.int64())}))  # safe cast to double
    assert pd.read_parquet(dest)["p"].tolist() == [1.5, 2.0]
    writer = AtomicWriter(str(tmp_path / "o2.parquet"), "parquet")
    writer.write(pa.table({"p": pa.array([1.5])}))
    with pytest.raises(DataFileError, match=r"'p' \(string after double\)"):
        writer.write(pa.table({"p": pa.array(["setosa"])}))
    writer.abort()
    assert not (tmp_path / "o2.parquet").exists()


def test_jsonl_floats_round_trip_exactly_and_nan_is_null(tmp_path: Path) -> None:
    dest = tmp_path / "out.jsonl"
    values = [0.1 + 0.2, 1 / 3, float("nan")]
    with AtomicWriter(str(dest), "jsonl") as writer:
        writer.write(pa.table({"p": pa.array(values), "s": ["a", "é", None]}))
    rows = [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines()]
    assert [r["p"] for r in rows[:2]] == values[:2]
    assert rows[2] == {"p": None, "s": None}
    assert rows[1]["s"] == "é"
    assert math.isclose(rows[0]["p"], 0.30000000000000004, rel_tol=0)


def test_empty_input_gives_an_output_with_the_fallback_columns(tmp_path: Path) -> None:
    dest = tmp_path / "out.csv"
    schema = pa.schema([("id", pa.string()), ("prediction", pa.null())])
    with AtomicWriter(str(dest), "csv", empty_schema=schema):
        pass
    assert dest.read_text().splitlines() == ['"id","prediction"']


def test_writer_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        AtomicWriter(str(tmp_path / "no" / "out.csv"), "csv")
