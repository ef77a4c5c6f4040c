"""The pandas side of the Spark UDF: input mapping and result coercion (no Spark needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.batch._udf_io import ResultType, align_inputs, coerce_result
from modelyard.errors import ResultTypeError, SchemaError

NAMES = ["a", "b", "c"]
DOUBLE, LONG, STRING = ResultType("double"), ResultType("long"), ResultType("string")


def _frame(*cols: str) -> pd.DataFrame:
    return pd.DataFrame({c: [float(i), float(i) + 10] for i, c in enumerate(cols)})


def test_columns_map_by_name_whatever_their_order() -> None:
    got = align_inputs(_frame("c", "a", "b"), NAMES)
    assert list(got.columns) == NAMES
    assert got["c"].tolist() == [0.0, 10.0]


def test_unnamed_columns_fill_the_remaining_inputs_in_order() -> None:
    got = align_inputs(_frame("col1", "col2", "col3"), NAMES)
    assert list(got.columns) == NAMES
    assert got["a"].tolist() == [0.0, 10.0]
    mixed = align_inputs(_frame("b", "x", "y"), NAMES)  # b by name, then a, c by position
    assert mixed["b"].tolist() == [0.0, 10.0]
    assert mixed["a"].tolist() == [1.0, 11.0]
    assert mixed["c"].tolist() == [2.0, 12.0]


def test_missing_and_surplus_columns_are_named() -> None:
    with pytest.raises(SchemaError, match="no column for the model input") as err:
        align_inputs(_frame("a", "b"), NAMES)
    assert err.value.column == "c"
    assert list(align_inputs(_frame("a", "b"), NAMES, required=["a", "b"]).columns) == ["a", "b"]
    with pytest.raises(SchemaError, match=r"4 columns given \(a, b, c, d\)"):
        align_inputs(_frame("a", "b", "c", "d"), NAMES)
    frame = _frame("x", "y")
    assert align_inputs(frame, []) is frame  # no named inputs: passed as is


def test_atomic_coercions() -> None:
    assert coerce_result(np.array([1, 2]), DOUBLE, 2).dtype == np.float64
    longs = coerce_result(np.array([1.0, 2.0]), LONG, 2)
    assert longs.dtype == np.int64
    assert longs.tolist() == [1, 2]
    assert coerce_result(np.array([1, 2]), ResultType("integer"), 2).dtype == np.int32
    assert coerce_result(np.array([0, 1]), ResultType("boolean"), 2).tolist() == [False, True]
    assert coerce_result(np.array([1.5, np.nan]), STRING, 2).tolist() == ["1.5", None]
    one_column = pd.DataFrame({"p": [3.0, 4.0]})
    assert coerce_result(one_column, DOUBLE, 2).tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("pred", "rtype", "message"),
    [
        (np.array(["setosa", "virginica"]), DOUBLE, "such as 'setosa'.*result_type='string'"),
        (np.array([1.0, 2.5]), LONG, r"non-integral values such as 2\.5"),
        (np.array([1.0, np.nan]), LONG, r"missing values \(NaN\)"),
        (np.array([300, 1]), ResultType("byte"), "outside byte's range"),
        (np.array([2, 1]), ResultType("boolean"), "only 0/1"),
        (np.ones((2, 3)), DOUBLE, "one value per row is needed"),
        (pd.DataFrame({"x": [1, 2], "y": [3, 4]}), DOUBLE, "2 columns: x, y"),
    ],
)
def test_impossible_coercions_say_why(pred: object, rtype: ResultType, message: str) -> None:
    with pytest.raises(ResultTypeError, match=message) as err:
        coerce_result(pred, rtype, 2)
    assert f"as {rtype}" in str(err.value)


def test_struct_by_name_or_position() -> None:
    rtype = ResultType("struct", fields=(("low", DOUBLE), ("n", LONG)))
    frame = pd.DataFrame({"n": [1.0, 2.0], "low": [0.5, 0.25], "other": [0, 0]})
    got = coerce_result(frame, rtype, 2)
    assert list(got.columns) == ["low", "n"]
    assert got["n"].dtype == np.int64
    by_position = coerce_result(np.array([[0.5, 1.0], [0.25, 2.0]]), rtype, 2)
    assert by_position["n"].tolist() == [1, 2]
    with pytest.raises(ResultTypeError, match="'low' are not among"):
        coerce_result(pd.DataFrame({"n": [1, 2]}), rtype, 2)
    with pytest.raises(ResultTypeError, match="needs 2 outputs"):
        coerce_result(np.array([1.0, 2.0]), rtype, 2)
    with pytest.raises(ResultTypeError, match=r"field 'n'.*non-integral"):
        coerce_result(pd.DataFrame({"low": [1.0, 2.0], "n": [0.5, 1.0]}), rtype, 2)


def test_arrays() -> None:
    rtype = ResultType("array", element=DOUBLE)
    got = coerce_result(np.array([[1, 2, 3], [4, 5, 6]]), rtype, 2)
    assert [list(v) for v in got] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    ragged = coerce_result(pd.Series([[1.0], [2.0, 3.0]]), rtype, 2)
    assert [list(v) for v in ragged] == [[1.0], [2.0, 3.0]]
    with pytest.raises(ResultTypeError, match="ask for an atomic result_type"):
        coerce_result(np.array([1.0, 2.0]), rtype, 2)
    assert str(rtype) == "array<double>"


def test_row_count_must_match() -> None:
    with pytest.raises(ResultTypeError, match="3 rows were given"):
        coerce_result(np.array([1.0, 2.0]), DOUBLE, 3)
