"""Request parsing without a server: the fast paths read bodies exactly as pandas would."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelyard.format.schema import ColSpec, ParamSpec, TensorSpec
from modelyard.format.signature import Signature
from modelyard.serving import protocol_mlflow, protocol_v2
from modelyard.serving._spec import InputSpec
from modelyard.serving.errors import RequestError

COLUMN_SPEC = InputSpec.from_signature(Signature(inputs=[ColSpec("double", c) for c in "abc"]))
TENSOR_SPEC = InputSpec.from_signature(Signature(inputs=[TensorSpec("float64", (-1, 3))]))
NO_SPEC = InputSpec.from_signature(None)

numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.integers(min_value=-(2**40), max_value=2**40),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(numbers, min_size=3, max_size=3), min_size=1, max_size=6))
def test_split_body_is_the_frame_pandas_builds(rows: list[list[Any]]) -> None:
    body = json.dumps({"dataframe_split": {"columns": ["a", "b", "c"], "data": rows}}).encode()
    parsed = protocol_mlflow.parse_request("application/json", body, COLUMN_SPEC)
    reference = pd.DataFrame(json.loads(body)["dataframe_split"]["data"], columns=["a", "b", "c"])
    pd.testing.assert_frame_equal(parsed.data, reference, check_column_type=False)
    assert parsed.rows == len(rows)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(numbers, min_size=3, max_size=3), min_size=1, max_size=6))
def test_split_body_for_a_tensor_model_is_the_array_numpy_builds(rows: list[list[Any]]) -> None:
    body = json.dumps({"dataframe_split": {"data": rows}}).encode()
    parsed = protocol_mlflow.parse_request("application/json", body, TENSOR_SPEC)
    reference = np.asarray(json.loads(body)["dataframe_split"]["data"])
    assert parsed.data.dtype == reference.dtype
    np.testing.assert_array_equal(parsed.data, reference)


def test_mixed_columns_keep_their_own_types() -> None:
    body = b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2.5, "x"]]}}'
    frame = protocol_mlflow.parse_request("application/json", body, COLUMN_SPEC).data
    assert frame["a"].dtype.kind == "i"  # not cast to the declared double here
    assert frame["b"].dtype.kind == "f"


def test_csv_keeps_text_columns_as_text() -> None:
    spec = InputSpec.from_signature(
        Signature(inputs=[ColSpec("string", "zip"), ColSpec("long", "n")])
    )
    frame = protocol_mlflow.parse_request("text/csv", b"zip,n\n00123,7\n", spec).data
    assert frame["zip"].tolist() == ["00123"]
    assert frame["n"].tolist() == [7]


@pytest.mark.parametrize(
    ("header", "media"),
    [
        ("application/json", "application/json"),
        ("Application/JSON; charset=UTF-8", "application/json"),
        ("text/csv;charset=utf8", "text/csv"),
        ("application/vnd.apache.parquet", "application/vnd.apache.parquet"),
    ],
)
def test_content_types(header: str, media: str) -> None:
    assert protocol_mlflow.parse_content_type(header) == media


def test_predictions_render_like_mlflow() -> None:
    render = protocol_mlflow.render_predictions
    assert render(np.array([1, 2])) == b'{"predictions": [1, 2]}'
    frame = pd.DataFrame({"p": [0.5], "label": ["a"]})
    assert json.loads(render(frame)) == {"predictions": [{"p": 0.5, "label": "a"}]}
    assert json.loads(render(pd.Series([3]))) == {"predictions": [{"0": 3}]}
    assert json.loads(render({"k": np.int64(4)})) == {"predictions": {"k": 4}}
    assert json.loads(render(["a"], unwrapped=True)) == ["a"]


def test_v2_tensor_datatypes_are_checked_not_cast() -> None:
    def body(datatype: str, data: list[Any]) -> bytes:
        return json.dumps(
            {"inputs": [{"name": "x", "shape": [len(data)], "datatype": datatype, "data": data}]}
        ).encode()

    arr = protocol_v2.parse_infer(body("INT16", [1, 2]), NO_SPEC).data
    assert arr.dtype == np.int16
    assert protocol_v2.parse_infer(body("FP32", [1, 2.5]), NO_SPEC).data.dtype == np.float32
    assert protocol_v2.parse_infer(body("INT64", [1.0, 2.0]), NO_SPEC).data.tolist() == [1, 2]
    assert protocol_v2.parse_infer(body("BOOL", [True]), NO_SPEC).data.tolist() == [True]
    for datatype, data in [("INT64", [1.5]), ("UINT8", [-1]), ("BOOL", [1]), ("FP64", [None])]:
        with pytest.raises(RequestError) as info:
            protocol_v2.parse_infer(body(datatype, data), NO_SPEC)
        assert info.value.status == 400
        assert info.value.field == "x"


def test_v2_outputs_name_and_type_each_column() -> None:
    request = protocol_v2.InferRequest(data=None, params=None, id="7", outputs=None, rows=1)
    out = json.loads(
        protocol_v2.render_infer("m", "1", request, pd.DataFrame({"p": [0.25], "n": [3]}), NO_SPEC)
    )
    assert out["id"] == "7"
    assert out["outputs"] == [
        {"name": "p", "shape": [1], "datatype": "FP64", "data": [0.25]},
        {"name": "n", "shape": [1], "datatype": "INT64", "data": [3]},
    ]


def test_spec_precomputes_from_the_typed_signature() -> None:
    sig = Signature(
        inputs=[ColSpec("string", "zip"), ColSpec("long", "n", required=False)],
        outputs=[ColSpec("double", "p")],
        params=[ParamSpec("k", "long", 3)],
    )
    spec = InputSpec.from_signature(sig)
    assert (spec.kind, spec.names, spec.width) == ("columns", ("zip", "n"), 2)
    assert spec.text_columns == ("zip",)
    assert spec.param_names == ("k",)
    assert spec.batchable
    assert not spec.from_type_hints
    assert list(spec.column_index) == ["zip", "n"]
    assert sig.inputs is not None
    assert list(spec.inputs) == sig.inputs.to_dict()
    assert spec.outputs[0]["name"] == "p"
    fixed = InputSpec.from_signature(Signature(inputs=[TensorSpec("float32", (2, 3))]))
    assert fixed.single_tensor
    assert not fixed.batchable
    assert InputSpec.from_signature(sig, from_type_hints=True).batchable is False
