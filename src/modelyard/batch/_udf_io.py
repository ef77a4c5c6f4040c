"""The pandas side of the Spark UDF: map input columns, coerce results.

Pure pandas/numpy (no pyspark), so it is tested in any environment. Result
types are described by :class:`ResultType`, built from Spark's types in
:mod:`modelyard.batch.spark`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.errors import ResultTypeError, SchemaError

ATOMIC = ("double", "float", "long", "integer", "short", "byte", "boolean", "string", "binary")
_INT_BOUNDS = {
    "long": (-(2**63), 2**63 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "short": (-(2**15), 2**15 - 1),
    "byte": (-(2**7), 2**7 - 1),
}
_NUMPY = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "short": "int16",
    "byte": "int8",
}


@dataclass(frozen=True)
class ResultType:
    """A UDF result type: an atomic type, ``array<element>`` or ``struct<fields>``."""

    kind: str
    element: ResultType | None = None
    fields: tuple[tuple[str, ResultType], ...] = ()

    def __str__(self) -> str:
        if self.kind == "array":
            return f"array<{self.element}>"
        if self.kind == "struct":
            return "struct<" + ",".join(f"{n}:{t}" for n, t in self.fields) + ">"
        return self.kind


# -- inputs -----------------------------------------------------------------------


def align_inputs(frame: Any, names: Sequence[str], required: Sequence[str] | None = None) -> Any:
    """``frame``'s columns matched to the signature's input ``names``.

    Columns named like an input map by name; the rest (unnamed expressions,
    positional arguments) fill the remaining inputs in order. With no named
    inputs the frame is passed as it is. A required input left without a
    column is a :class:`SchemaError` naming it.
    """
    if not names:
        return frame
    required = list(names) if required is None else list(required)
    columns = [str(c) for c in frame.columns]
    by_name = [c for c in columns if c in names]
    rest = [c for c in columns if c not in names]
    open_inputs = [n for n in names if n not in by_name]
    mapping = {c: c for c in by_name}
    if rest:
        if len(rest) > len(open_inputs):
            raise SchemaError(
                f"{len(columns)} columns given ({', '.join(columns)}) for the model's "
                f"{len(names)} inputs ({', '.join(names)})",
                expected=", ".join(names),
                received=", ".join(columns),
            )
        mapping.update(zip(rest, open_inputs, strict=False))
    missing = [n for n in required if n not in mapping.values()]
    if missing:
        raise SchemaError(
            f"no column for the model input(s) {', '.join(map(repr, missing))}; "
            f"columns given: {', '.join(columns)}",
            column=missing[0],
        )
    renamed = frame.rename(columns={c: mapping[c] for c in columns if c in mapping})
    return renamed[[n for n in names if n in mapping.values()]]


# -- results ----------------------------------------------------------------------


def coerce_result(pred: Any, rtype: ResultType, n_rows: int) -> Any:
    """``pred`` as a pandas Series (atomic, array) or DataFrame (struct) of ``rtype``.

    Raises :class:`ResultTypeError` when a value cannot be represented
    (strings as a number, fractions as a long, too many outputs for an atomic
    type...).
    """
    import pandas as pd

    if rtype.kind == "struct":
        frame = _as_frame(pred, rtype)
        out = pd.DataFrame(
            {name: _atomic(frame[name], t, f"{rtype} field {name!r}") for name, t in rtype.fields}
        )
        return _check_rows(out, n_rows)
    if rtype.kind == "array":
        assert rtype.element is not None
        return _check_rows(_array(pred, rtype), n_rows)
    return _check_rows(_atomic(_one_column(pred, rtype), rtype, str(rtype)), n_rows)


def _check_rows(out: Any, n_rows: int) -> Any:
    if len(out) != n_rows:
        raise ResultTypeError("the result", f"{len(out)} values", f"{n_rows} rows were given")
    return out


def _describe(values: Any) -> str:
    import numpy as np

    arr = np.asarray(values)
    return f"{type(values).__name__} of {arr.dtype}, shape {arr.shape}"


def _one_column(pred: Any, rtype: ResultType) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(pred, pd.DataFrame):
        if pred.shape[1] == 1:
            return pred.iloc[:, 0]
        raise ResultTypeError(
            str(rtype),
            f"{pred.shape[1]} columns: {', '.join(map(str, pred.columns))}",
            "ask for a struct<...> or array<...> result_type to get them all",
        )
    if isinstance(pred, pd.Series):
        return pred
    if isinstance(pred, Mapping):
        return _one_column(pd.DataFrame(dict(pred)), rtype)
    arr = np.asarray(pred)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ResultTypeError(
            str(rtype),
            _describe(arr),
            "one value per row is needed; ask for array<...> or struct<...>",
        )
    return pd.Series(arr)


def _atomic(values: Any, rtype: ResultType, where: str) -> Any:
    import numpy as np
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    series = series.reset_index(drop=True)
    kind = rtype.kind
    if kind not in ATOMIC:
        raise ResultTypeError(where, str(series.dtype), f"nested {kind} inside a struct field")
    if kind == "string":
        return pd.Series([None if _missing(v) else str(v) for v in series], dtype=object)
    if kind == "binary":
        if all(v is None or isinstance(v, (bytes, bytearray)) for v in series):
            return series.astype(object)
        raise ResultTypeError(where, str(series.dtype), "only bytes can be returned as binary")
    dtype = series.dtype
    if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
        sample = next((v for v in series if not _missing(v)), None)
        raise ResultTypeError(
            where,
            f"{dtype} values such as {sample!r}",
            "they are not numbers; ask for result_type='string'",
        )
    if kind == "boolean":
        return _boolean(series, where)
    if kind in ("double", "float"):
        return series.astype(np.dtype(_NUMPY[kind]))
    return _integral(series, kind, where)


def _boolean(series: Any, where: str) -> Any:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype(bool)
    if series.isna().any() or not series.isin([0, 1]).all():
        raise ResultTypeError(where, str(series.dtype), "only 0/1 values can become booleans")
    return series.astype(bool)


def _integral(series: Any, kind: str, where: str) -> Any:
    import numpy as np

    values = series.to_numpy()
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            raise ResultTypeError(where, str(values.dtype), "it holds missing values (NaN)")
        fractional = values[np.mod(values, 1) != 0]
        if fractional.size:
            raise ResultTypeError(
                where, str(values.dtype), f"non-integral values such as {fractional[0].item()!r}"
            )
    lo, hi = _INT_BOUNDS[kind]
    if values.size and (values.min() < lo or values.max() > hi):
        raise ResultTypeError(where, str(values.dtype), f"values outside {kind}'s range")
    return series.astype(np.dtype(_NUMPY[kind]))


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _as_frame(pred: Any, rtype: ResultType) -> Any:
    import numpy as np
    import pandas as pd

    names = [n for n, _ in rtype.fields]
    if isinstance(pred, Mapping):
        pred = pd.DataFrame(dict(pred))
    if isinstance(pred, pd.DataFrame):
        columns = [str(c) for c in pred.columns]
        if all(n in columns for n in names):
            frame = pred.copy()
            frame.columns = columns
            return frame[names]
        labels: Any = pred.columns
        if isinstance(labels, pd.RangeIndex) and pred.shape[1] == len(names):
            return pd.DataFrame(pred.to_numpy(), columns=names)
        missing = [n for n in names if n not in columns]
        raise ResultTypeError(
            str(rtype),
            f"columns {', '.join(columns)}",
            f"field(s) {', '.join(map(repr, missing))} are not among the model's outputs",
        )
    arr = np.asarray(pred)
    if arr.ndim == 2 and arr.shape[1] == len(names):
        return pd.DataFrame(arr, columns=names)
    raise ResultTypeError(
        str(rtype), _describe(arr), f"a struct of {len(names)} fields needs {len(names)} outputs"
    )


def _array(pred: Any, rtype: ResultType) -> Any:
    import numpy as np
    import pandas as pd

    element = rtype.element
    assert element is not None
    if element.kind not in ATOMIC:
        raise ResultTypeError(str(rtype), "nested arrays", "only arrays of atomic types")
    if isinstance(pred, pd.DataFrame):
        pred = pred.to_numpy()
    if isinstance(pred, pd.Series) and pred.dtype == object:  # ragged: one list per row
        return pd.Series(
            [_atomic(np.asarray(v), element, str(rtype)).to_numpy() for v in pred], dtype=object
        )
    arr = np.asarray(pred)
    if arr.ndim < 2:
        raise ResultTypeError(
            str(rtype), _describe(arr), "one value per row; ask for an atomic result_type"
        )
    flat = _atomic(arr.reshape(-1), element, str(rtype)).to_numpy()
    return pd.Series(list(flat.reshape(arr.shape[0], -1)), dtype=object)
