"""Enforcement: input shapes, columns, nested values, tensors, params, warnings, errors."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import modelyard
from modelyard import (
    ColSpec,
    ExtraInputsWarning,
    ParamSchema,
    ParamSpec,
    Schema,
    SchemaError,
    Signature,
    TensorSpec,
    enforce_input,
    enforce_params,
)
from modelyard.format.schema import AnyType, Array, Map, Object, Property

XY = Schema([ColSpec("double", "x"), ColSpec("long", "y")])
SECRET = "s3cr3t-value-9731"


def frame(**cols: Any) -> pd.DataFrame:
    return pd.DataFrame(cols)


# -- columns --------------------------------------------------------------------------


def test_matching_frame_comes_back_untouched() -> None:
    df = frame(x=[1.5, 2.5], y=np.array([1, 2], dtype="int64"))
    assert enforce_input(df, XY) is df
    fresh = pd.DataFrame(df.to_numpy(), columns=["x", "y"]).astype({"y": "int64"})
    assert enforce_input(fresh, XY) is fresh  # another frame, its own column Index


def test_columns_are_reordered_and_converted() -> None:
    df = frame(y=np.array([3, 4], dtype="int8"), x=[1, 2])
    out = enforce_input(df, XY)
    assert list(out.columns) == ["x", "y"]
    assert out["x"].dtype == np.float64
    assert out["y"].dtype == np.int64
    assert out["x"].tolist() == [1.0, 2.0]
    assert out.index.equals(df.index)
    assert df["x"].dtype == np.int64  # the caller's frame is not changed


def test_index_is_kept_even_with_duplicates() -> None:
    df = pd.DataFrame({"y": [1, 2], "x": [0.5, 1.5]}, index=[7, 7])
    out = enforce_input(df, XY)
    assert out.index.tolist() == [7, 7]
    assert out["x"].tolist() == [0.5, 1.5]


def test_extra_columns_are_dropped_with_a_warning() -> None:
    df = frame(x=[1.0], y=[1], extra=["z"])
    with pytest.warns(ExtraInputsWarning, match=r"\['extra'\]") as record:
        out = enforce_input(df, XY)
    assert list(out.columns) == ["x", "y"]
    assert record[0].filename == __file__  # points at the caller
    assert enforce_input(df, XY, warn_extra=False).shape == (1, 2)


def test_multiindex_columns_are_not_the_signature() -> None:
    columns = pd.MultiIndex.from_tuples([("x", "a"), ("y", "b")])
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['x', 'y'\]"):
        enforce_input(pd.DataFrame([[1.0, 2]], columns=columns), XY)


def test_missing_required_columns_are_all_named() -> None:
    schema = Schema([ColSpec("double", "a"), ColSpec("double", "b"), ColSpec("double", "c")])
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['a', 'c'\]") as info:
        enforce_input(frame(b=[1.0]), schema)
    assert info.value.column == "a"


def test_optional_columns_may_be_absent() -> None:
    schema = Schema([ColSpec("double", "x"), ColSpec("long", "n", required=False)])
    out = enforce_input(frame(x=[1.0]), schema)
    assert list(out.columns) == ["x"]
    out = enforce_input(frame(n=[1.0, None], x=[1.0, 2.0]), schema)
    assert str(out["n"].dtype) == "Int64"
    assert out["n"].tolist()[0] == 1
    assert out["n"].isna().tolist() == [False, True]


def test_positional_columns() -> None:
    schema = Schema([ColSpec("double"), ColSpec("long")])
    out = enforce_input(np.array([[1, 2], [3, 4]]), schema)
    assert out.dtypes.tolist() == [np.float64, np.int64]
    with pytest.raises(SchemaError, match=r"expects 2 column\(s\) \(by position\), got 1"):
        enforce_input(frame(a=[1.0]), schema)
    with pytest.warns(ExtraInputsWarning):
        assert enforce_input(np.zeros((1, 3)), Schema([ColSpec("double")])).shape == (1, 1)


# -- input shapes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(x=[1.0, 2.0], y=[3, 4]), id="DataFrame"),
        pytest.param({"x": [1.0, 2.0], "y": [3, 4]}, id="dict of lists"),
        pytest.param({"x": np.array([1.0, 2.0]), "y": np.array([3, 4])}, id="dict of arrays"),
        pytest.param([{"x": 1.0, "y": 3}, {"x": 2.0, "y": 4}], id="records"),
        pytest.param(np.array([[1.0, 3], [2.0, 4]]), id="2-D array"),
        pytest.param([[1.0, 3], [2.0, 4]], id="list of rows"),
        pytest.param(pa.table({"x": [1.0, 2.0], "y": [3, 4]}), id="Arrow table"),
    ],
)
def test_input_shapes_for_column_signatures(data: Any) -> None:
    out = enforce_input(data, XY)
    assert out.to_dict(orient="list") == {"x": [1.0, 2.0], "y": [3, 4]}
    assert out.dtypes.tolist() == [np.float64, np.int64]


def test_one_record_and_one_value() -> None:
    assert enforce_input({"x": 1.5, "y": 2}, XY).to_dict(orient="records") == [{"x": 1.5, "y": 2}]
    one = Schema([ColSpec("string", "text")])
    assert enforce_input("hello", one)["text"].tolist() == ["hello"]
    assert enforce_input(["a", "b"], one)["text"].tolist() == ["a", "b"]
    assert enforce_input(pd.Series(["a"]), one)["text"].tolist() == ["a"]
    assert enforce_input(pd.Series([1.0], name="x"), Schema([ColSpec("double", "x")])).shape == (
        1,
        1,
    )


def test_zero_rows_get_the_declared_types() -> None:
    out = enforce_input([], XY)
    assert out.shape == (0, 2)
    assert out.dtypes.tolist() == [np.float64, np.int64]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((2, 3)), "rows must each hold 2 values"),
        ([1.0, 2.0], "a flat list fits a one-column signature"),
        (3.5, "one column of values was given; the model takes 2 columns"),
        ({"x": [1.0, 2.0], "y": [1]}, "a dict of columns needs lists or 1-D arrays of one length"),
        (pd.Series([1.0], name="other"), "a Series is one column"),
        (np.zeros((1, 2, 2)), "a 3-D array cannot be a table"),
        ({1, 2}, "not set"),
    ],
)
def test_unusable_shapes_say_what_to_send(data: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        enforce_input(data, XY)


# -- nested values --------------------------------------------------------------------


def test_arrays_objects_maps_any() -> None:
    schema = Schema(
        [
            ColSpec(Array("double"), "v"),
            ColSpec(Object([Property("a", "long"), Property("b", "string", False)]), "o"),
            ColSpec(Map(Array("long")), "m", required=False),
            ColSpec(AnyType(), "z"),
        ]
    )
    rows = [
        {"v": [1, 2.5], "o": {"a": 1}, "m": {"k": [1, 2]}, "z": {"anything": [None]}},
        {"v": np.array([3, 4]), "o": {"a": 2.0, "b": "x"}, "z": 5},
    ]
    out = enforce_input(rows, schema)
    assert out["v"].tolist()[0] == [1.0, 2.5]
    assert type(out["v"].tolist()[0][0]) is float
    assert out["v"].tolist()[1].tolist() == [3.0, 4.0]
    assert out["o"].tolist() == [{"a": 1}, {"a": 2, "b": "x"}]
    assert out["m"].tolist() == [{"k": [1, 2]}, None]
    assert out["z"].tolist() == [{"anything": [None]}, 5]


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ({"a": SECRET}, r"column 'o', row 0\.a: expected object<a: long, b\?: string>, got str"),
        ({"b": SECRET}, r"missing required properties \['a'\]"),
        ({"a": 1, "zz": SECRET}, r"properties not in the schema \['zz'\]"),
        ([SECRET], "expected a dict"),
    ],
)
def test_nested_errors_locate_the_value_without_echoing_it(cell: Any, message: str) -> None:
    schema = Schema([ColSpec(Object([Property("a", "long"), Property("b", "string", False)]), "o")])
    with pytest.raises(SchemaError, match=message) as info:
        enforce_input([{"o": cell}], schema)
    assert info.value.column == "o"
    assert SECRET not in str(info.value)


def test_array_item_errors_give_the_index() -> None:
    schema = Schema([ColSpec(Array("long"), "ids")])
    with pytest.raises(SchemaError, match=r"column 'ids', row 1\[2\]: .*fractional part"):
        enforce_input([{"ids": [1, 2, 3]}, {"ids": [4, 5, 6.5]}], schema)
    with pytest.raises(SchemaError, match=r"row 0: .*a list is required"):
        enforce_input([{"ids": None}], schema)


# -- errors never carry the data -------------------------------------------------------


@pytest.mark.parametrize(
    "df",
    [
        frame(x=[SECRET], y=[1]),
        frame(x=[1.0], y=[1.5e15 + 0.5]),
        frame(x=[1.0], y=[2**63 + 12345.0]),
        frame(x=pd.Series([1, SECRET], dtype=object), y=[1, 2]),
    ],
)
def test_column_errors_name_column_and_types_not_values(df: pd.DataFrame) -> None:
    with pytest.raises(SchemaError) as info:
        enforce_input(df, XY)
    text = str(info.value)
    assert info.value.column in ("x", "y")
    assert f"column {info.value.column!r}: expected " in text
    for value in df.astype(str).to_numpy().ravel():
        assert value not in text


# -- tensors --------------------------------------------------------------------------

IMG = Schema([TensorSpec("float32", (-1, 2, 2))])


def test_matching_tensor_comes_back_untouched() -> None:
    arr = np.zeros((3, 2, 2), dtype="float32")
    assert enforce_input(arr, IMG) is arr


def test_tensor_safe_casts_and_checks() -> None:
    out = enforce_input(np.full((1, 2, 2), 0.1), IMG)
    assert out.dtype == np.float32
    with pytest.raises(SchemaError, match=r"expected shape \(-1, 2, 2\).*got \(1, 3, 2\)"):
        enforce_input(np.zeros((1, 3, 2), dtype="float32"), IMG)
    with pytest.raises(SchemaError, match="expected float32, got float64: values would change"):
        enforce_input(np.full((1, 2, 2), 0.123456789012), IMG)
    ints = Schema([TensorSpec("int32", (-1,))])
    assert enforce_input([1, 2], ints).dtype == np.int32
    with pytest.raises(SchemaError, match="out of range"):
        enforce_input(np.array([2**40]), ints)


def test_named_tensors() -> None:
    schema = Schema([TensorSpec("float64", (-1, 2), "a"), TensorSpec("int64", (-1,), "b")])
    out = enforce_input(
        {"b": [1, 2], "a": np.ones((2, 2), dtype="float32"), "c": 1}, schema, warn_extra=False
    )
    assert list(out) == ["a", "b"]
    assert out["a"].dtype == np.float64
    with pytest.raises(SchemaError, match=r"missing required input\(s\) \['a'\]"):
        enforce_input({"b": [1]}, schema)
    from_frame = enforce_input(frame(a=[[1.0, 2.0], [3.0, 4.0]], b=[1, 2]), schema)
    assert from_frame["a"].shape == (2, 2)


def test_torch_tensors_are_checked_not_cast() -> None:
    torch = pytest.importorskip("torch")
    schema = Schema([TensorSpec("float32", (-1, 2))])
    t = torch.zeros((3, 2))
    assert enforce_input(t, schema) is t
    with pytest.raises(SchemaError, match="torch tensors are not cast"):
        enforce_input(t.double(), schema)


# -- params ---------------------------------------------------------------------------

PARAMS = ParamSchema(
    [
        ParamSpec("temperature", "double", 0.7),
        ParamSpec("k", "long", 3),
        ParamSpec("stop", "string", ["."], (-1,)),
        ParamSpec("since", "datetime", "2024-01-01"),
    ]
)


def test_params_get_defaults_and_widening() -> None:
    assert enforce_params(None, PARAMS) == {
        "temperature": 0.7,
        "k": 3,
        "stop": ["."],
        "since": dt.date(2024, 1, 1),
    }
    out = enforce_params({"temperature": 1, "k": np.int32(5), "since": "2024-02-03T04:05"}, PARAMS)
    assert out["temperature"] == 1.0
    assert type(out["temperature"]) is float
    assert type(out["k"]) is int
    assert out["since"] == dt.datetime(2024, 2, 3, 4, 5)
    out["stop"].append("!")  # the model may mutate its params: defaults stay intact
    assert enforce_params({}, PARAMS)["stop"] == ["."]


def test_unknown_params_list_the_declared_ones() -> None:
    with pytest.raises(SchemaError, match=r"unknown param\(s\) \['topk'\].*\['temperature', 'k'"):
        enforce_params({"topk": 5}, PARAMS)
    with pytest.raises(SchemaError, match="signature declares no params"):
        enforce_params({"k": 1}, None)
    assert enforce_params({}, None) is None


def test_param_errors_are_gathered_and_never_echo_values() -> None:
    with pytest.raises(SchemaError) as info:
        enforce_params({"k": 2.5, "temperature": SECRET, "stop": SECRET}, PARAMS)
    text = str(info.value)
    assert "param 'k': expected long, got float: a float with a fractional part" in text
    assert "param 'temperature': expected double, got str" in text
    assert "param 'stop': expected string[], got str: expected a list" in text
    assert SECRET not in text
    assert "2.5" not in text
    assert info.value.column == "k"


# -- on a loaded Model ----------------------------------------------------------------


def _echo(model_input: Any, params: Any = None) -> Any:
    return model_input, params


@pytest.fixture
def echo_model(tmp_path: Path) -> modelyard.Model:
    sig = Signature(inputs=XY, params=[ParamSpec("k", "long", 3)])
    modelyard.save_model(_echo, tmp_path / "echo", signature=sig)
    return modelyard.load_model(tmp_path / "echo")


def test_model_predict_enforces_inputs_and_params(echo_model: modelyard.Model) -> None:
    data, params = echo_model.predict([{"y": 1, "x": 2}])
    assert list(data.columns) == ["x", "y"]
    assert data["x"].dtype == np.float64
    assert params == {"k": 3}
    with pytest.raises(SchemaError, match="unknown param"):
        echo_model.predict([{"y": 1, "x": 2}], params={"kk": 1})


def test_extra_columns_warn_once_per_model(echo_model: modelyard.Model, tmp_path: Path) -> None:
    df = frame(x=[1.0], y=[1], z=[0])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            echo_model.predict(df)
        other = modelyard.load_model(tmp_path / "echo")
        other.predict(df)
    extra = [w for w in seen if issubclass(w.category, ExtraInputsWarning)]
    assert len(extra) == 2  # once for each loaded model, not per call
    assert extra[0].message.names == ("z",)  # type: ignore[union-attr]


def test_models_without_signature_pass_everything_through(tmp_path: Path) -> None:
    modelyard.save_model(_echo, tmp_path / "plain")
    model = modelyard.load_model(tmp_path / "plain")
    assert model.signature is None
    assert model.input_schema is None
    data = object()
    assert model.predict(data, params={"anything": 1}) == (data, {"anything": 1})
