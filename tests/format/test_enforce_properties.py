"""Property-based: an accepted conversion never changes a value.

"The same value" is exact equality, with one documented exception: a float
narrowed to a smaller float (``float64`` -> ``float32``) keeps its shortest
decimal form (``0.1`` stays ``0.1``) and stays a normal number.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelyard import ColSpec, ParamSchema, ParamSpec, Schema, SchemaError, enforce_input
from modelyard import enforce_params as enforce_params_
from modelyard.format._convert import Mismatch, cast_array, convert_value

NUMERIC = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "bool",
]
TARGETS = ["boolean", "integer", "long", "float", "double"]
NP_TARGET = {"boolean": "bool", "integer": "int32", "long": "int64", "float": "float32"}


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(NUMERIC)))
    size = st.integers(0, 6)
    if dtype.kind == "b":
        return np.array(draw(st.lists(st.booleans(), max_size=6)), dtype=dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        edge = st.sampled_from([int(info.min), int(info.max), 0, 2**24 + 1, 2**53 + 1])
        ints = st.one_of(st.integers(int(info.min), int(info.max)), edge).filter(
            lambda v: info.min <= v <= info.max
        )
        return np.array(draw(st.lists(ints, max_size=6)), dtype=dtype)
    # Floats likely to sit on the edges: whole numbers, short decimals, anything.
    floats = st.one_of(
        st.integers(-(2**60), 2**60).map(float),
        st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False).map(float),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    values = draw(st.lists(floats, min_size=draw(size), max_size=6))
    with np.errstate(over="ignore"):
        return np.array(values, dtype=dtype)


def _same(before: Any, after: Any, narrowed: tuple[np.dtype, np.dtype] | None = None) -> bool:
    if isinstance(before, float) and math.isnan(before):
        return isinstance(after, float) and math.isnan(after)
    if narrowed is not None and after != before:
        # A narrowed float: the same shortest decimal, and a normal number.
        src, dst = narrowed
        # compared as numbers: float16 prints 4912 as "4.91e+03", float32 4910 as "4910.0"
        same_decimal = float(str(src.type(before))) == float(str(dst.type(after)))
        return same_decimal and abs(after) >= np.finfo(dst).tiny
    return bool(before == after) and (type(before) is bool) == (type(after) is bool)


@settings(max_examples=400, deadline=None)
@given(arr=arrays(), target=st.sampled_from([*NUMERIC]))
@example(arr=np.array([4910.0], dtype=np.float32), target="float16")
def test_cast_array_never_changes_a_value(arr: np.ndarray, target: str) -> None:
    dtype = np.dtype(target)
    try:
        out = cast_array(arr, dtype)
    except Mismatch:
        return
    assert out.dtype == dtype
    narrow = arr.dtype.kind == "f" and dtype.kind == "f" and dtype.itemsize < arr.dtype.itemsize
    for a, b in zip(arr.tolist(), out.tolist(), strict=True):
        assert _same(a, b, (arr.dtype, dtype) if narrow else None), (a, b, arr.dtype, dtype)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(-(2**64), 2**64), min_size=1, max_size=5),
    target=st.sampled_from(["int8", "int32", "int64", "uint8", "uint64", "float32", "float64"]),
)
def test_integers_are_rejected_only_when_some_value_does_not_fit(
    values: list[int], target: str
) -> None:
    dtype = np.dtype(target)
    source = np.dtype("int64") if all(-(2**63) <= v < 2**63 for v in values) else None
    if source is None:
        source = np.dtype("uint64") if all(0 <= v < 2**64 for v in values) else None
    if source is None:
        return  # not representable as a numpy integer array at all
    arr = np.array(values, dtype=source)
    if dtype.kind == "f":
        limit = 2**24 if dtype.itemsize == 4 else 2**53
        fits = all(abs(v) <= limit for v in values)
    else:
        info = np.iinfo(dtype)
        fits = all(info.min <= v <= info.max for v in values)
    try:
        cast_array(arr, dtype)
        accepted = True
    except Mismatch:
        accepted = False
    assert accepted == fits


@settings(max_examples=300, deadline=None)
@given(arr=arrays(), target=st.sampled_from(TARGETS), required=st.booleans())
def test_accepted_columns_keep_their_values(arr: np.ndarray, target: str, required: bool) -> None:
    frame = pd.DataFrame({"c": arr})
    try:
        out = enforce_input(frame, Schema([ColSpec(target, "c", required=required)]))["c"]
    except SchemaError as exc:
        column = exc.column
    else:
        column = None
    if column is not None:
        assert column == "c"
        return
    narrow = target == "float" and arr.dtype.itemsize > 4 and arr.dtype.kind == "f"
    narrowed = (arr.dtype, np.dtype("float32")) if narrow else None
    after = [None if pd.isna(v) else v for v in out.astype(object)]
    for a, b in zip(arr.tolist(), after, strict=True):
        if b is None:
            assert isinstance(a, float)
            assert math.isnan(a)
        else:
            assert _same(a, b, narrowed)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=3),
        st.binary(max_size=3),
    ),
    target=st.sampled_from([*TARGETS, "string", "binary"]),
    required=st.booleans(),
)
def test_single_values_are_widened_never_changed(value: Any, target: str, required: bool) -> None:
    try:
        out = convert_value(value, target, required)
    except Mismatch:
        return
    if isinstance(value, float) and math.isnan(value) and target in ("float", "double"):
        assert isinstance(out, float)
        assert math.isnan(out)
        return
    if value is None or (isinstance(value, float) and math.isnan(value)):
        assert out is None
        assert not required
        return
    assert out == value
    expected_type = {"integer": int, "long": int, "float": float, "double": float}
    assert type(out) is expected_type.get(target, type(value))


@settings(max_examples=200, deadline=None)
@given(
    value=st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.booleans(), st.text(max_size=2)),
    kind=st.sampled_from(["long", "double", "integer", "boolean", "string"]),
)
def test_params_accept_only_equal_values(value: Any, kind: str) -> None:
    schema = ParamSchema([ParamSpec("p", kind, None)])
    try:
        out = enforce_params_({"p": value}, schema)["p"]
    except SchemaError as exc:
        assert_names_param(exc)
        return
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(out)
    else:
        assert out == value
        assert type(out) is {"long": int, "integer": int, "double": float}.get(kind, type(value))


def assert_names_param(exc: SchemaError) -> None:
    assert exc.column == "p"
    assert str(exc).startswith("param 'p'")
