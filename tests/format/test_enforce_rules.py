"""The rule table: every input dtype against every column type, with the outcome.

Outcomes, one character per declared type in ``TYPES`` order:
``=`` accepted as it is (the same Series object comes back),
``c`` converted (values checked equal, dtype checked),
``x`` rejected with a SchemaError naming the column and the types.

The README's rule table is a summary of this one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelyard import ColSpec, Schema, SchemaError, enforce_input

TYPES = ("boolean", "integer", "long", "float", "double", "string", "binary", "datetime")

NA = pd.NA
D1 = dt.datetime(2024, 1, 2, 3, 4, 5)

INPUTS: dict[str, Callable[[], pd.Series]] = {
    "int8": lambda: pd.Series([1, -2], dtype="int8"),
    "int16": lambda: pd.Series([1, -2], dtype="int16"),
    "int32": lambda: pd.Series([1, -2], dtype="int32"),
    "int64 small": lambda: pd.Series([1, -2], dtype="int64"),
    "int64 beyond int32": lambda: pd.Series([2**40, 1], dtype="int64"),
    "int64 beyond 2**53": lambda: pd.Series([2**60 + 1, 0], dtype="int64"),
    "uint8": lambda: pd.Series([1, 2], dtype="uint8"),
    "uint16": lambda: pd.Series([1, 2], dtype="uint16"),
    "uint32": lambda: pd.Series([1, 2], dtype="uint32"),
    "uint32 beyond int32": lambda: pd.Series([2**32 - 1, 0], dtype="uint32"),
    "uint64": lambda: pd.Series([1, 2], dtype="uint64"),
    "uint64 beyond int64": lambda: pd.Series([2**64 - 1, 0], dtype="uint64"),
    "float16": lambda: pd.Series([0.5, 1.5], dtype="float16"),
    "float32 whole": lambda: pd.Series([1.0, 2.0], dtype="float32"),
    "float32 fraction": lambda: pd.Series([0.5, 1.25], dtype="float32"),
    "float64 whole": lambda: pd.Series([1.0, -3.0]),
    "float64 decimal": lambda: pd.Series([0.1, 2.5]),
    "float64 full precision": lambda: pd.Series([0.123456789012, 1.0]),
    "float64 whole + NaN": lambda: pd.Series([1.0, math.nan]),
    "float64 fraction + NaN": lambda: pd.Series([0.5, math.nan]),
    "bool": lambda: pd.Series([True, False]),
    "Int64": lambda: pd.Series([1, 2], dtype="Int64"),
    "Int64 + NA": lambda: pd.Series([1, NA], dtype="Int64"),
    "boolean (nullable)": lambda: pd.Series([True, False], dtype="boolean"),
    "boolean + NA": lambda: pd.Series([True, NA], dtype="boolean"),
    "Float64 + NA": lambda: pd.Series([0.5, NA], dtype="Float64"),
    "str": lambda: pd.Series(["a", "b"]),
    "object of str": lambda: pd.Series(["a", "b"], dtype=object),
    "ISO 8601 str": lambda: pd.Series(["2024-01-01", "2024-01-02T10:00:00"]),
    "object of bytes": lambda: pd.Series([b"a", b"b"], dtype=object),
    "datetime64[ns]": lambda: pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"])),
    "datetime64[s]": lambda: pd.Series(np.array(["2024-01-01", "2500-01-01"], "datetime64[s]")),
    "datetime tz-aware": lambda: pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize("UTC")),
    "object of datetime": lambda: pd.Series([D1, D1], dtype=object),
    "object of int": lambda: pd.Series([1, 2], dtype=object),
    "object of int + None": lambda: pd.Series([1, None], dtype=object),
    "object of float + None": lambda: pd.Series([0.5, None], dtype=object),
    "object of bool + None": lambda: pd.Series([True, None], dtype=object),
    "object of mixed": lambda: pd.Series([1, "a"], dtype=object),
    "object of lists": lambda: pd.Series([[1], [2]], dtype=object),
    "category": lambda: pd.Series(["a", "b"], dtype="category"),
}

#                           boolean, integer, long, float, double, string, binary, datetime
REQUIRED = {
    "int8": "xccccxxx",
    "int16": "xccccxxx",
    "int32": "x=cccxxx",
    "int64 small": "xc=ccxxx",
    "int64 beyond int32": "xx=xcxxx",
    "int64 beyond 2**53": "xx=xxxxx",
    "uint8": "xccccxxx",
    "uint16": "xccccxxx",
    "uint32": "xccccxxx",
    "uint32 beyond int32": "xxcxcxxx",
    "uint64": "xccccxxx",
    "uint64 beyond int64": "xxxxxxxx",
    "float16": "xxxccxxx",
    "float32 whole": "xcc=cxxx",
    "float32 fraction": "xxx=cxxx",
    "float64 whole": "xccc=xxx",
    "float64 decimal": "xxxc=xxx",
    "float64 full precision": "xxxx=xxx",
    "float64 whole + NaN": "xxxc=xxx",
    "float64 fraction + NaN": "xxxc=xxx",
    "bool": "=xxxxxxx",
    "Int64": "xccccxxx",
    "Int64 + NA": "xxxccxxx",
    "boolean (nullable)": "cxxxxxxx",
    "boolean + NA": "xxxxxxxx",
    "Float64 + NA": "xxxccxxx",
    "str": "xxxxx=xx",
    "object of str": "xxxxx=xx",
    "ISO 8601 str": "xxxxx=xc",
    "object of bytes": "xxxxxx=x",
    "datetime64[ns]": "xxxxxxx=",
    "datetime64[s]": "xxxxxxx=",
    "datetime tz-aware": "xxxxxxxx",
    "object of datetime": "xxxxxxxc",
    "object of int": "xccccxxx",
    "object of int + None": "xxxccxxx",
    "object of float + None": "xxxccxxx",
    "object of bool + None": "xxxxxxxx",
    "object of mixed": "xxxxxxxx",
    "object of lists": "xxxxxxxx",
    "category": "xxxxxxxx",
}

# Where an optional column differs: missing values become nullable dtypes.
OPTIONAL = {
    **REQUIRED,
    "float64 whole + NaN": "xccc=xxx",
    "Int64 + NA": "xccccxxx",
    "boolean + NA": "=xxxxxxx",
    "object of int + None": "xccccxxx",
    "object of bool + None": "cxxxxxxx",
}

NUMPY = {"boolean": "bool", "integer": "int32", "long": "int64", "float": "float32"}
NULLABLE = {"boolean": "boolean", "integer": "Int32", "long": "Int64"}


def _cases(table: dict[str, str], required: bool) -> list[Any]:
    assert set(table) == set(INPUTS), "every input has a row"
    return [
        pytest.param(name, t, outcome, required, id=f"{name}->{t}{'' if required else '?'}")
        for name, row in table.items()
        for t, outcome in zip(TYPES, row, strict=True)
    ]


@pytest.mark.parametrize(
    ("name", "target", "outcome", "required"),
    _cases(REQUIRED, True) + _cases(OPTIONAL, False),
)
def test_rule_table(name: str, target: str, outcome: str, required: bool) -> None:
    col = INPUTS[name]()
    frame = pd.DataFrame({"c": col})
    schema = Schema([ColSpec(target, "c", required=required)])
    if outcome == "x":
        with pytest.raises(SchemaError) as info:
            enforce_input(frame, schema)
        err = info.value
        assert err.column == "c"
        assert err.expected == target
        assert "'c'" in str(err)
        assert target in str(err)
        return
    result = enforce_input(frame, schema)
    out = result["c"]
    if outcome == "=":
        assert result is frame  # nothing to do: no copy either
        return
    assert outcome == "c"
    assert result is not frame
    has_missing = bool(col.isna().any())
    if target in NUMPY:
        nullable = has_missing and not required and target in NULLABLE
        want = NULLABLE[target] if nullable else NUMPY[target]
        assert str(out.dtype) == want
    elif target == "double":
        assert out.dtype == np.float64
    elif target == "datetime":
        assert out.dtype.kind == "M"
    assert _same_values(col, out, narrow=target == "float")


def _same_values(before: pd.Series, after: pd.Series, narrow: bool = False) -> bool:
    """Values compared as Python objects, missing values alike; float32 at its precision."""
    if after.dtype.kind == "M":
        return list(pd.to_datetime(before.astype(object), format="ISO8601")) == list(after)
    for a, b in zip(before.astype(object), after.astype(object), strict=True):
        if pd.isna(a) or pd.isna(b):
            if not (pd.isna(a) and pd.isna(b)):
                return False
        elif narrow:
            if float(str(np.float32(b))) != float(a):
                return False
        elif a != b or (type(a) is bool) != (type(b) is bool):
            return False
    return True


def test_required_columns_with_missing_ints_say_why() -> None:
    schema = Schema([ColSpec("long", "n")])
    with pytest.raises(SchemaError, match="missing values") as info:
        enforce_input(pd.DataFrame({"n": [1.0, math.nan]}), schema)
    assert info.value.received == "float64"


def test_fraction_error_says_fraction_and_never_the_values() -> None:
    schema = Schema([ColSpec("long", "n")])
    with pytest.raises(SchemaError, match="fractional part") as info:
        enforce_input(pd.DataFrame({"n": [1.0, 987654.25]}), schema)
    assert "987654" not in str(info.value)
