"""Typed specs: construction rules, MLflow's JSON key for key, reprs a person can scan."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest

from modelyard import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec
from modelyard.format.schema import AnyType, Array, Map, Object, Property, SparkMLVector

# -- construction ---------------------------------------------------------------------


def test_types_from_names_and_objects_are_equal() -> None:
    assert ColSpec("double", "x") == ColSpec(DataType.double, "x")
    assert Array("string") == Array(DataType.string)
    assert ColSpec("any", "x").type == AnyType()
    assert hash(ColSpec(Array("long"), "x")) == hash(ColSpec(Array(DataType.long), "x"))


def test_specs_are_frozen() -> None:
    spec = ColSpec("double", "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "y"  # type: ignore[misc]


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown type 'doubel'.*'double'"):
        ColSpec("doubel", "x")


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ([], "at least one"),
        ([ColSpec("double", "x"), TensorSpec("float32", (-1,), "t")], "not both"),
        ([ColSpec("double", "x"), ColSpec("double")], "all named or all unnamed"),
        ([ColSpec("double", required=False)], "cannot be optional"),
        ([TensorSpec("float32", (-1,)), TensorSpec("int64", (-1,))], "need names"),
        ([ColSpec("double", "x"), ColSpec("long", "x")], r"duplicate input names \['x'\]"),
    ],
)
def test_schema_rules(inputs: list[ColSpec | TensorSpec], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schema(inputs)


def test_tensor_dtypes_are_canonical_and_sizeless() -> None:
    assert TensorSpec(np.float32, (-1, 2)).dtype == "float32"
    assert TensorSpec(np.dtype("<f8"), (-1,)).dtype == "float64"
    assert TensorSpec("str", (-1,)).dtype == "str"
    with pytest.raises(ValueError, match="carry no size"):
        TensorSpec("<U10", (-1,))
    with pytest.raises(ValueError, match="ints >= -1"):
        TensorSpec("float32", (-2,))


def test_objects_sort_their_properties_and_refuse_duplicates() -> None:
    obj = Object([Property("b", "long"), Property("a", "string")])
    assert [p.name for p in obj.properties] == ["a", "b"]
    with pytest.raises(ValueError, match="duplicate property names"):
        Object([Property("a", "long"), Property("a", "string")])
    with pytest.raises(ValueError, match="at least one"):
        Object([])


def test_param_defaults_are_checked_and_widened() -> None:
    assert ParamSpec("t", "double", 1).default == 1.0
    assert isinstance(ParamSpec("t", "double", 1).default, float)
    assert ParamSpec("d", "datetime", "2024-01-02").default == dt.date(2024, 1, 2)
    assert ParamSpec("s", "string", ("a", "b"), (-1,)).default == ["a", "b"]
    with pytest.raises(ValueError, match="param 'k': invalid default"):
        ParamSpec("k", "long", 2.5)
    with pytest.raises(ValueError, match="binary params"):
        ParamSpec("b", "binary", b"x")
    with pytest.raises(ValueError, match=r"shape must be None or \(-1,\)"):
        ParamSpec("s", "long", [1], (2,))
    with pytest.raises(ValueError, match="duplicate param names"):
        ParamSchema([ParamSpec("a", "long", 1), ParamSpec("a", "long", 2)])


# -- JSON, exactly as MLflow writes it -------------------------------------------------


def test_column_json_key_order_matches_mlflow() -> None:
    schema = Schema(
        [
            ColSpec("double", "x"),
            ColSpec(Array("string"), "tags", required=False),
            ColSpec(Object([Property("b", "long", False), Property("a", Array("double"))]), "o"),
            ColSpec(Map(Array("float")), "m"),
            ColSpec(AnyType(), "any", required=False),
            ColSpec(SparkMLVector(), "v"),
        ]
    )
    assert schema.to_json() == (
        '[{"type": "double", "name": "x", "required": true}, '
        '{"type": "array", "items": {"type": "string"}, "name": "tags", "required": false}, '
        '{"type": "object", "properties": {"a": {"type": "array", "items": {"type": "double"}, '
        '"required": true}, "b": {"type": "long", "required": false}}, "name": "o", '
        '"required": true}, '
        '{"type": "map", "values": {"type": "array", "items": {"type": "float"}}, "name": "m", '
        '"required": true}, '
        '{"type": "any", "name": "any", "required": false}, '
        '{"type": "sparkml_vector", "name": "v", "required": true}]'
    )
    assert Schema.from_json(schema.to_json()) == schema


def test_tensor_and_param_json_match_mlflow() -> None:
    tensors = Schema([TensorSpec("float32", (-1, 28, 28), "img"), TensorSpec("int64", (-1,), "m")])
    assert tensors.to_json() == (
        '[{"name": "img", "type": "tensor", "tensor-spec": {"dtype": "float32", '
        '"shape": [-1, 28, 28]}}, {"name": "m", "type": "tensor", "tensor-spec": '
        '{"dtype": "int64", "shape": [-1]}}]'
    )
    params = ParamSchema(
        [
            ParamSpec("t", "double", 0.5),
            ParamSpec("stop", "string", ["a"], (-1,)),
            ParamSpec("when", "datetime", dt.datetime(2024, 1, 2, 3, 4)),
            ParamSpec("o", Object([Property("k", "long")]), {"k": 1}),
        ]
    )
    assert json.loads(params.to_json()) == [
        {"name": "t", "default": 0.5, "shape": None, "type": "double"},
        {"name": "stop", "default": ["a"], "shape": [-1], "type": "string"},
        {"name": "when", "default": "2024-01-02T03:04:00", "shape": None, "type": "datetime"},
        {
            "name": "o",
            "default": {"k": 1},
            "shape": None,
            "type": "object",
            "properties": {"k": {"type": "long", "required": True}},
        },
    ]
    assert list(json.loads(params.to_json())[0]) == ["name", "default", "shape", "type"]
    assert ParamSchema.from_json(params.to_json()) == params


def test_reading_is_lenient_where_mlflow_is() -> None:
    # A missing `required` means required; params may say `dtype` (older MLflow).
    schema = Schema.from_json('[{"type": "array", "items": {"type": "long"}, "name": "a"}]')
    assert schema.inputs[0].required is True
    params = ParamSchema.from_json('[{"name": "k", "dtype": "long", "default": 3}]')
    assert params.params[0] == ParamSpec("k", "long", 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{}", "a JSON list"),
        ('[{"name": "x"}]', "input 0 \\('x'\\): expected a mapping with a 'type'"),
        ('[{"type": "double", "name": "x", "required": "yes"}]', "'required' must be"),
        ('[{"type": "object", "properties": {}, "name": "o"}]', "non-empty 'properties'"),
        ('[{"type": "tensor", "name": "t"}]', "a tensor needs 'tensor-spec'"),
        ('[{"type": "tensor", "tensor-spec": {"dtype": "nope", "shape": [-1]}}]', "not a numpy"),
    ],
)
def test_bad_json_names_the_input(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schema.from_json(text)


# -- display --------------------------------------------------------------------------


def test_reprs_read_like_the_signature() -> None:
    assert repr(ColSpec("double", "x")) == "ColSpec('x': double)"
    assert str(ColSpec(Array("string"), "t", required=False)) == "'t': array<string> (optional)"
    assert str(ColSpec(Map("double"), "m")) == "'m': map<string, double>"
    obj = Object([Property("a", "long"), Property("b", "string", False)])
    assert str(obj) == "object<a: long, b?: string>"
    assert str(TensorSpec("float32", (-1, 4), "x")) == "'x': tensor<float32>(-1, 4)"
    assert str(TensorSpec("int64", (-1,))) == "tensor<int64>(-1,)"
    assert str(ParamSpec("stop", "string", ["."], (-1,))) == "'stop': string[] = ['.']"
    assert str(ParamSpec("d", "datetime", "2024-01-02")) == "'d': datetime = '2024-01-02'"
    wide = Schema([ColSpec("double", f"a rather long column name {i}") for i in range(4)])
    assert repr(wide).splitlines() == [
        "Schema([",
        "  'a rather long column name 0': double,",
        "  'a rather long column name 1': double,",
        "  'a rather long column name 2': double,",
        "  'a rather long column name 3': double,",
        "])",
    ]
