"""Request parsing without a server: the fast paths read bodies exactly as pandas would."""

from __future__ import annotations

import json
import struct
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
    body, json_size = protocol_v2.render_infer(
        "m", "1", request, pd.DataFrame({"p": [0.25], "n": [3]}), NO_SPEC
    )
    assert json_size is None  # nothing asked for binary data
    out = json.loads(body)
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


# -- binary tensor data extension ------------------------------------------------------


def _binary_body(tensors: list[tuple[str, str, list[int], bytes]], **doc: Any) -> tuple[bytes, int]:
    inputs = [
        {"name": n, "datatype": t, "shape": s, "parameters": {"binary_data_size": len(b)}}
        for n, t, s, b in tensors
    ]
    head = json.dumps({"inputs": inputs, **doc}).encode()
    return head + b"".join(b for *_, b in tensors), len(head)


def _bytes_elements(*values: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def test_v2_binary_inputs_of_every_kind() -> None:
    floats = np.arange(6, dtype="<f4").reshape(2, 3)
    body, size = _binary_body(
        [
            ("f", "FP32", [2, 3], floats.tobytes()),
            ("i", "INT64", [2], np.array([7, -8], dtype="<i8").tobytes()),
            ("b", "BOOL", [2], bytes([1, 0])),
            ("s", "BYTES", [2], _bytes_elements("héllo".encode(), b"\xff\x00")),
        ]
    )
    data = protocol_v2.parse_infer(body, NO_SPEC, json_size=size).data
    assert data["f"].dtype == np.float32
    np.testing.assert_array_equal(data["f"], floats)
    assert data["f"].flags.writeable
    assert data["i"].tolist() == [7, -8]
    assert data["b"].tolist() == [True, False]
    assert data["s"].tolist() == ["héllo", b"\xff\x00"]  # text as str, other bytes as bytes


def test_v2_binary_and_json_inputs_mix() -> None:
    head = {
        "inputs": [
            {"name": "a", "datatype": "FP64", "shape": [1], "data": [0.5]},
            {"name": "b", "datatype": "FP64", "shape": [1], "parameters": {"binary_data_size": 8}},
        ]
    }
    text = json.dumps(head).encode()
    data = protocol_v2.parse_infer(
        text + np.array([2.5]).tobytes(), NO_SPEC, json_size=len(text)
    ).data
    assert (data["a"].tolist(), data["b"].tolist()) == ([0.5], [2.5])


@pytest.mark.parametrize(
    ("tensors", "size_delta", "message"),
    [
        ([("x", "FP32", [3], b"\0" * 8)], 0, "3 FP32 values take 12 bytes"),
        ([("x", "BOOL", [1], b"\x02")], 0, "BOOL bytes must be 0 or 1"),
        ([("x", "BYTES", [2], _bytes_elements(b"a"))], 0, "ends after 1 of 2 BYTES"),
        ([("x", "BYTES", [1], _bytes_elements(b"a") + b"zz")], 0, "2 bytes left after 1 BYTES"),
        ([("x", "FP64", [1], b"\0" * 8)], -3, "belong to no input"),
    ],
)
def test_v2_bad_binary_data_is_a_400_naming_the_input(
    tensors: list[tuple[str, str, list[int], bytes]], size_delta: int, message: str
) -> None:
    body, size = _binary_body(tensors)
    if size_delta:
        body += b"\0" * -size_delta  # trailing bytes nothing claims
    with pytest.raises(RequestError, match=message) as info:
        protocol_v2.parse_infer(body, NO_SPEC, json_size=size)
    assert info.value.status == 400


def test_v2_binary_input_without_the_header_says_so() -> None:
    body, _ = _binary_body([("x", "FP64", [1], np.array([1.0]).tobytes())])
    with pytest.raises(RequestError, match="Inference-Header-Content-Length"):
        protocol_v2.parse_infer(body, NO_SPEC)


def test_v2_binary_outputs_when_asked() -> None:
    head = {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}],
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "p"}, {"name": "s", "parameters": {"binary_data": False}}],
    }
    request = protocol_v2.parse_infer(json.dumps(head).encode(), NO_SPEC)
    assert request.params is None  # binary_data_output is the protocol's, not the model's
    preds = pd.DataFrame({"p": np.array([0.25, 4.0], dtype=np.float32), "s": ["a", "b"]})
    body, json_size = protocol_v2.render_infer("m", "1", request, preds, NO_SPEC)
    assert json_size is not None
    doc = json.loads(body[:json_size])
    p, s = doc["outputs"]
    assert p == {
        "name": "p",
        "shape": [2],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 8},
    }
    assert s["data"] == ["a", "b"]
    assert np.frombuffer(body[json_size:], dtype="<f4").tolist() == [0.25, 4.0]
