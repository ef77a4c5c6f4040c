"""The conversion rules: what each declared type accepts, and how it is converted.

One rule, applied everywhere (columns, tensors, nested values, params): a value
is accepted when converting it to the declared type keeps it the same value,
and rejected otherwise. Concretely:

- integers of any width go to ``long`` / ``integer`` / any numpy int when every
  value is in the target's range; to ``double`` when every ``|v| <= 2**53``,
  to ``float`` when every ``|v| <= 2**24``;
- floats go to wider floats always; to a narrower float when every value keeps
  its shortest decimal form (``0.1`` stays ``0.1``; ``0.123456789`` would
  become ``0.12345679`` and is rejected); to integers when every value is whole
  and in range;
- missing values (NaN, None, ``pd.NA``) go where the target can hold them:
  floats, strings, datetimes always; integers and booleans only when the
  column is optional, as pandas nullable ``Int64`` / ``Int32`` / ``boolean``;
- strings are never turned into numbers or booleans; ISO 8601 strings parse
  into ``datetime``; booleans are not numbers and numbers are not booleans.

Nothing here imports numpy or pandas at module import. Errors are
:class:`Mismatch` (what arrived, why), turned into ``SchemaError`` with the
column's name by the caller; messages never contain the data.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# The largest integers a float holds exactly, by significand width.
EXACT_INT = {"float16": 2**11, "float32": 2**24, "float64": 2**53}
# Python-level values (params, nested cells) are widened to Python floats,
# which are doubles: the double bound applies to both ``float`` and ``double``.
_PY_EXACT_INT = 2**53
INT_RANGE = {
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
}
NUMPY_TYPE = {
    "boolean": "bool",
    "integer": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
}
NULLABLE_TYPE = {"boolean": "boolean", "integer": "Int32", "long": "Int64"}


class Mismatch(Exception):
    """A value or column cannot be converted losslessly: what arrived and why.

    ``path`` locates a nested value (``[2].key``) inside a cell or param.
    """

    def __init__(self, received: str, reason: str, path: str = "") -> None:
        self.received = received
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {received}: {reason}" if path else f"{received}: {reason}")

    def inside(self, step: str) -> Mismatch:
        """The same mismatch, one level further in (``step`` is ``[i]`` or ``.key``)."""
        return Mismatch(self.received, self.reason, step + self.path)


# -- numpy arrays (tensors, and columns once unwrapped) -------------------------


def cast_array(arr: np.ndarray, target: np.dtype) -> np.ndarray:
    """``arr`` as ``target``; the same object when it already is; :class:`Mismatch` if lossy."""
    import numpy as np

    src = arr.dtype
    if src == target:
        return arr
    sk, tk = src.kind, target.kind
    if tk in "iu" and sk in "iu":
        if np.can_cast(src, target, "safe") or _in_range(arr, *_int_bounds(target)):
            return arr.astype(target)
        raise Mismatch(str(src), f"values out of range for {target}")
    if tk in "iu" and sk == "f":
        return _float_to_int(arr, target)
    if tk == "f" and sk in "iu":
        limit = EXACT_INT.get(target.name, 2**53)
        # numpy calls int64 -> float64 "safe"; it is not exact beyond 2**53.
        bits = src.itemsize * 8 - (sk == "i")
        if 2**bits <= limit or _in_range(arr, -limit, limit):
            return arr.astype(target)
        raise Mismatch(str(src), f"integers beyond +/-{limit} are not exact in {target}")
    if tk == "f" and sk == "f":
        if target.itemsize >= src.itemsize:
            return arr.astype(target)
        return _narrow_float(arr, target)
    if tk == "M" and sk == "M":
        with np.errstate(over="ignore", invalid="ignore"):
            out = arr.astype(target)
        if np.array_equal(out.astype(src), arr, equal_nan=True):
            return out
        raise Mismatch(str(src), f"datetimes out of range for {target}")
    if (tk, sk) in (("U", "U"), ("S", "S"), ("O", "O")):
        return arr  # any item size: "str" / "bytes" carry no size
    raise Mismatch(str(src), f"{_kind_name(sk)} cannot become {_kind_name(tk)}")


def _int_bounds(dtype: np.dtype) -> tuple[int, int]:
    import numpy as np

    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _in_range(arr: np.ndarray, lo: int, hi: int) -> bool:
    if arr.size == 0:
        return True
    # As Python numbers the comparisons are exact; numpy would cast the bound
    # to the array's dtype first (and overflow, or round).
    return bool(lo <= arr.min().item()) and bool(arr.max().item() <= hi)


def _float_to_int(arr: np.ndarray, target: np.dtype) -> np.ndarray:
    import numpy as np

    received = str(arr.dtype)
    if np.isnan(arr).any():
        raise Mismatch(received, "missing values (NaN) cannot be held by an integer type")
    if not np.isfinite(arr).all():
        raise Mismatch(received, "infinite values cannot be held by an integer type")
    if not (np.trunc(arr) == arr).all():
        raise Mismatch(received, "values with a fractional part")
    lo, hi = _int_bounds(target)
    if not _in_range(arr, lo, hi):
        raise Mismatch(received, f"values out of range for {target}")
    return arr.astype(target)


def _narrow_float(arr: np.ndarray, target: np.dtype) -> np.ndarray:
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        out = arr.astype(target)
        exact = (out == arr) | np.isnan(arr)
        if exact.all():
            return out
        # Not bit-exact (0.1 never is): accept when the narrow value still reads
        # as the same shortest decimal and is a normal number (subnormals keep
        # the digits but lose most of the precision).
        rest, narrow = arr[~exact], out[~exact]
        same = narrow.astype(str).astype(arr.dtype) == rest
        normal = np.abs(rest) >= np.finfo(target).tiny
    if (same & normal).all():
        return out
    raise Mismatch(str(arr.dtype), f"values would change as {target}")


def _kind_name(kind: str) -> str:
    return {
        "b": "booleans",
        "i": "integers",
        "u": "integers",
        "f": "floats",
        "c": "complex numbers",
        "M": "datetimes",
        "m": "durations",
        "U": "strings",
        "S": "bytes",
        "O": "objects",
    }.get(kind, f"dtype kind {kind!r}")


# -- pandas columns ---------------------------------------------------------------


def convert_column(col: pd.Series, target: str, required: bool) -> pd.Series:
    """``col`` as the primitive column type ``target`` (a DataType value).

    Returns ``col`` itself when nothing needs converting; the index is kept.
    """
    import numpy as np
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, np.dtype):
        kind = dtype.kind
        if kind == "O":
            return _object_column(col, target, required)
        if target in NUMPY_TYPE and kind in "biuf":
            values = col.to_numpy()
            if kind == "f" and target in INT_RANGE and not required:
                nan = np.isnan(values)
                if nan.any():
                    return _to_nullable(col, target, values[~nan])
            return _wrap(col, values, cast_array(values, np.dtype(NUMPY_TYPE[target])))
        if target == "datetime" and kind == "M":
            return col  # any unit: the declared type has no precision
        raise Mismatch(str(dtype), f"cannot become {target}")
    if isinstance(dtype, pd.DatetimeTZDtype):
        raise Mismatch(str(dtype), "timezone-aware datetimes; convert to naive (e.g. UTC) first")
    if isinstance(dtype, pd.CategoricalDtype):
        raise Mismatch("category", f"categorical columns are not converted to {target}")
    if _is_string_dtype(dtype):
        return _string_column(col, target, str(dtype))
    kind = getattr(dtype, "kind", "O")
    numpy_dtype = getattr(dtype, "numpy_dtype", None)
    if kind in "biuf" and numpy_dtype is not None:
        return _masked_column(col, target, required, np.dtype(numpy_dtype))
    raise Mismatch(str(dtype), f"unsupported column type for {target}")


def _wrap(col: pd.Series, before: Any, after: Any) -> pd.Series:
    import pandas as pd

    if after is before:
        return col
    return pd.Series(after, index=col.index, name=col.name, copy=False)


def _is_string_dtype(dtype: Any) -> bool:
    import pandas as pd

    if isinstance(dtype, pd.StringDtype):
        return True
    pa_type = getattr(dtype, "pyarrow_dtype", None)
    if pa_type is None:
        return False
    import pyarrow as pa

    return bool(pa.types.is_string(pa_type) or pa.types.is_large_string(pa_type))


def _masked_column(col: pd.Series, target: str, required: bool, values_dtype: Any) -> pd.Series:
    """pandas nullable (``Int64``, ``boolean``, ``Float64``) and Arrow numeric columns."""
    import numpy as np

    name = str(col.dtype)
    if not col.hasnans:
        plain = col.to_numpy(dtype=values_dtype)
        if target not in NUMPY_TYPE:
            raise Mismatch(name, f"cannot become {target}")
        return _wrap(col, None, cast_array(plain, np.dtype(NUMPY_TYPE[target])))
    present = col.dropna().to_numpy(dtype=values_dtype)
    if target in ("float", "double"):
        cast_array(present, np.dtype(NUMPY_TYPE[target]))  # checks the values only
        full = col.to_numpy(dtype=NUMPY_TYPE[target], na_value=np.nan)
        return _wrap(col, None, full)
    if target in NULLABLE_TYPE:
        if required:
            raise Mismatch(
                f"{name} with missing values",
                f"a required {target} column cannot hold missing values",
            )
        if target == "boolean":
            if values_dtype.kind != "b":
                raise Mismatch(name, "cannot become boolean")
            return col if str(col.dtype) == "boolean" else col.astype("boolean")
        return _to_nullable(col, target, present)
    raise Mismatch(name, f"cannot become {target}")


def _to_nullable(col: pd.Series, target: str, present: np.ndarray) -> pd.Series:
    import numpy as np

    if present.dtype.kind == "b":
        raise Mismatch(str(col.dtype), f"booleans cannot become {target}")
    cast_array(present, np.dtype(NUMPY_TYPE[target]))  # range and fractions of the values
    out: pd.Series = col.astype(NULLABLE_TYPE[target])  # type: ignore[call-overload]
    return out


def _string_column(col: pd.Series, target: str, received: str) -> pd.Series:
    if target == "string":
        return col
    if target == "datetime":
        return _parse_datetimes(col, received)
    raise Mismatch(received, f"strings are never converted to {target}")


def _parse_datetimes(col: pd.Series, received: str) -> pd.Series:
    import pandas as pd

    try:
        out = pd.to_datetime(col, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        raise Mismatch(received, "values are not ISO 8601 datetimes") from None
    if isinstance(out.dtype, pd.DatetimeTZDtype):
        raise Mismatch(received, "timezone-aware datetimes; send naive (e.g. UTC) values")
    return out


def _object_column(col: pd.Series, target: str, required: bool) -> pd.Series:
    import numpy as np
    import pandas as pd

    inferred = pd.api.types.infer_dtype(col, skipna=True)
    received = f"object ({inferred})"
    if inferred == "string":
        return _string_column(col, target, received)
    if inferred == "bytes":
        if target == "binary":
            return col
        raise Mismatch(received, f"bytes cannot become {target}")
    if inferred == "empty":
        return _all_missing(col, target, required, received)
    if inferred in ("datetime", "datetime64", "date"):
        if target != "datetime":
            raise Mismatch(received, f"datetimes cannot become {target}")
        return _parse_datetimes(col, received)
    if target not in NUMPY_TYPE:
        raise Mismatch(received, f"cannot become {target}")
    values = col.to_list()
    if inferred == "boolean":
        if target != "boolean":
            raise Mismatch(received, f"booleans cannot become {target}")
        return convert_column(_series(col, values, "boolean", received), target, required)
    if inferred == "integer":
        return convert_column(_series(col, values, "Int64", received), target, required)
    if inferred in ("floating", "mixed-integer-float", "decimal"):
        floats = [_exact_float(v, received) for v in values]
        return convert_column(_series(col, floats, np.float64, received), target, required)
    raise Mismatch(received, f"mixed or unsupported Python values cannot become {target}")


def _series(col: pd.Series, values: list[Any], dtype: Any, received: str) -> pd.Series:
    import pandas as pd

    try:
        out: pd.Series = pd.Series(values, index=col.index, name=col.name, dtype=dtype)
    except (OverflowError, ValueError, TypeError):
        raise Mismatch(received, "values out of range") from None
    return out


def _exact_float(v: Any, received: str) -> float:
    if v is None or _is_missing(v):
        return math.nan
    try:
        f = float(v)
    except OverflowError:
        raise Mismatch(received, "values out of range for a float") from None
    if (isinstance(v, int) and abs(v) > _PY_EXACT_INT) or f != v:
        raise Mismatch(received, "values not exactly representable as floats")
    return f


def _all_missing(col: pd.Series, target: str, required: bool, received: str) -> pd.Series:
    import numpy as np
    import pandas as pd

    n = len(col)
    if target in ("float", "double"):
        return _wrap(col, None, np.full(n, np.nan, dtype=NUMPY_TYPE[target]))
    if target in NULLABLE_TYPE:
        if required and n:
            raise Mismatch(received, f"a required {target} column cannot hold missing values")
        dtype = NULLABLE_TYPE[target] if n else NUMPY_TYPE[target]
        return pd.Series([None] * n, index=col.index, name=col.name, dtype=dtype)
    if target == "datetime":
        return pd.Series(pd.NaT, index=col.index, name=col.name, dtype="datetime64[ns]")
    return col


# -- single Python values (params, cells of arrays / objects / maps) -----------------


def convert_value(value: Any, target: str, required: bool = True) -> Any:
    """A single value as the primitive type ``target``, as a plain Python object.

    ``None`` / NaN / ``pd.NA`` are accepted when ``required`` is false and
    returned as ``None`` (NaN stays NaN for ``float`` / ``double``: it is a
    float value there).
    """
    if value is None or _is_missing(value):
        if target in ("float", "double") and _is_float(value):
            return float(value)  # NaN is a float value, not a missing one
        if required:
            raise Mismatch("a missing value", f"a value of type {target} is required")
        return None
    py = value.item() if _is_numpy_scalar(value) and target != "datetime" else value
    kind = type(py)
    received = type(value).__name__
    if target == "boolean":
        if kind is bool:
            return py
    elif target in INT_RANGE:
        if isinstance(py, bool):
            raise Mismatch(received, f"booleans are not {target}s")
        lo, hi = INT_RANGE[target]
        if isinstance(py, float) and math.isfinite(py) and py.is_integer():
            py = int(py)
        if isinstance(py, int):
            if lo <= py <= hi:
                return py
            raise Mismatch(received, f"value out of range for {target}")
        if isinstance(py, float):
            raise Mismatch(received, f"a float with a fractional part is not a {target}")
    elif target in ("float", "double"):
        if isinstance(py, bool):
            raise Mismatch(received, f"booleans are not {target}s")
        if isinstance(py, int):
            if abs(py) <= _PY_EXACT_INT:
                return float(py)
            raise Mismatch(received, f"integers beyond +/-2**53 are not exact as {target}")
        if isinstance(py, float):
            return py
    elif target == "string":
        if isinstance(py, str):
            return str(py)
    elif target == "binary":
        if isinstance(py, (bytes, bytearray)):
            return bytes(py)
    elif target == "datetime":
        return _datetime_value(value, received)
    raise Mismatch(received, f"cannot become {target}")


def _datetime_value(value: Any, received: str) -> Any:
    if isinstance(value, str):
        try:
            parsed: _dt.date = (
                _dt.date.fromisoformat(value)
                if len(value) == 10
                else _dt.datetime.fromisoformat(value)
            )
        except ValueError:
            raise Mismatch(received, "not an ISO 8601 date or datetime") from None
        value = parsed
    elif _is_numpy_scalar(value):
        import pandas as pd

        if getattr(value, "dtype", None) is None or value.dtype.kind != "M":
            raise Mismatch(received, "cannot become datetime")
        value = pd.Timestamp(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            raise Mismatch(received, "timezone-aware datetimes; send naive (e.g. UTC) values")
        return value
    if isinstance(value, _dt.date):
        return value
    raise Mismatch(received, "cannot become datetime")


def _is_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if type(value).__module__ != "numpy":
        return False
    import numpy as np

    return isinstance(value, np.floating)


def _is_numpy_scalar(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "item")


def _is_missing(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if type(value).__module__.startswith(("numpy", "pandas")):
        import pandas as pd

        try:
            return bool(pd.isna(value))
        except (TypeError, ValueError):
            return False
    return False
