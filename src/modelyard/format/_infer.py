"""Infer schemas from example data, as MLflow's ``infer_signature`` does.

DataFrames, Series, lists of records and dicts of values give column specs;
numpy arrays and dicts of numpy arrays give tensor specs (first dimension
free); scalars and flat lists give one positional column. Types follow
MLflow's mapping, so a signature inferred here matches MLflow's for the same
data (checked by the interop tests), with two deliberate differences: a
DataFrame whose columns are just ``0..n-1`` gives positional columns, and
``uint64`` columns whose values fit are ``long`` instead of an error.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from modelyard.format.schema import (
    AnyType,
    Array,
    ColSpec,
    ColType,
    DataType,
    Map,
    Object,
    ParamSchema,
    ParamSpec,
    Property,
    Schema,
    TensorSpec,
)

SUPPORTED = (
    "a pandas DataFrame or Series, a numpy array, a dict of numpy arrays, a dict of "
    "values, a list of dicts (records), a list of values, or a single value"
)


def infer_schema(data: Any) -> Schema:
    """The schema describing ``data``; ``TypeError`` / ``ValueError`` if it cannot."""
    import numpy as np
    import pandas as pd

    if hasattr(data, "to_pandas") and not isinstance(data, (pd.DataFrame, pd.Series)):
        data = data.to_pandas()  # pyarrow tables and record batches, polars frames
    if _is_torch_tensor(data):
        data = data.detach().cpu().numpy()
    if isinstance(data, pd.DataFrame):
        labels: list[Any] = list(data.columns)
        positional = labels == list(range(data.shape[1]))
        return Schema(
            ColSpec(
                _column_type(data.iloc[:, i], str(c)),
                None if positional else str(c),
                positional or not data.iloc[:, i].isna().any(),
            )
            for i, c in enumerate(data.columns)
        )
    if isinstance(data, pd.Series):
        named = data.name is not None
        required = not named or not data.isna().any()
        return Schema([ColSpec(_column_type(data, str(data.name)), _name(data.name), required)])
    if isinstance(data, np.ndarray) and data.ndim > 0:
        return Schema([_tensor(data)])
    if isinstance(data, Mapping):
        if data and all(isinstance(v, np.ndarray) for v in data.values()):
            return Schema(_tensor(v, str(k)) for k, v in data.items())
        if not all(isinstance(k, str) for k in data):
            raise TypeError("dict keys must be strings to name columns")
        return Schema(ColSpec(value_type(v), k, _no_missing(v)) for k, v in data.items())
    if isinstance(data, (list, tuple)):
        if not data:
            return Schema([ColSpec(DataType.string)])  # MLflow's choice for []
        if all(isinstance(r, Mapping) for r in data):
            return _records(list(data))
        return Schema([ColSpec(_merged(list(data)))])
    if _is_scalar(data):
        return Schema([ColSpec(value_type(data))])
    raise TypeError(f"cannot infer a schema from {type(data).__name__}; expected {SUPPORTED}")


def infer_params(params: Mapping[str, Any]) -> ParamSchema:
    """The params schema with each value as its param's default."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a dict, not {type(params).__name__}")
    specs = []
    for name, value in params.items():
        if not isinstance(name, str):
            raise TypeError("param names must be strings")
        kind, shape = _param_type(name, value)
        specs.append(ParamSpec(name, kind, value, shape))
    return ParamSchema(specs)


# -- columns and values -------------------------------------------------------------


def dtype_type(dtype: Any, where: str) -> DataType:
    """The column type of a numpy or pandas numeric / bool / datetime dtype."""
    import numpy as np

    kind = getattr(dtype, "kind", "O")
    size = getattr(dtype, "itemsize", 8)
    if kind == "b":
        return DataType.boolean
    if kind in "iu":
        if size < 4 or (kind == "i" and size == 4):
            return DataType.integer
        return DataType.long
    if kind == "f":
        return DataType.float if size <= 4 else DataType.double
    if kind == "U":
        return DataType.string
    if kind == "S":
        return DataType.binary
    if kind == "M" and isinstance(dtype, np.dtype):
        return DataType.datetime
    raise TypeError(f"{where}: no signature type for dtype {dtype}")


def _column_type(col: Any, where: str) -> ColType:
    import numpy as np
    import pandas as pd

    dtype = col.dtype
    if col.ndim != 1:
        raise ValueError(f"column {where!r} is not one-dimensional")
    if isinstance(dtype, pd.CategoricalDtype):
        raise TypeError(f"column {where!r} is categorical; convert it to its values' type first")
    if isinstance(dtype, pd.DatetimeTZDtype):
        raise TypeError(f"column {where!r} holds timezone-aware datetimes; make them naive first")
    if isinstance(dtype, pd.StringDtype) or str(dtype) in ("string[pyarrow]", "large_string"):
        return DataType.string
    if dtype.kind == "u" and dtype.itemsize == 8:
        values = col.dropna().to_numpy(dtype=np.uint64)
        if values.size and int(values.max()) > 2**63 - 1:
            raise TypeError(f"column {where!r}: uint64 values beyond the range of long")
        return DataType.long
    if dtype.kind != "O":
        return dtype_type(dtype, f"column {where!r}")
    inferred = pd.api.types.infer_dtype(col, skipna=True)
    simple = {
        "string": DataType.string,
        "bytes": DataType.binary,
        "boolean": DataType.boolean,
        "integer": DataType.long,
        "floating": DataType.double,
        "mixed-integer-float": DataType.double,
        "datetime": DataType.datetime,
        "datetime64": DataType.datetime,
        "date": DataType.datetime,
    }
    if inferred in simple:
        return simple[inferred]
    try:
        return _merged(col.to_list())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"column {where!r}: {exc}") from None


def value_type(value: Any) -> ColType:
    """The column type of one Python value (lists and dicts recursively)."""
    import numpy as np

    if _is_missing(value) or (isinstance(value, (list, tuple, Mapping)) and not value):
        return AnyType()
    if isinstance(value, Mapping):
        props = []
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError("dict keys must be strings")
            t = value_type(v)
            props.append(Property(k, t, not isinstance(t, AnyType)))
        return Object(props)
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim > 0):
        return Array(_merged(list(value)))
    if isinstance(value, (bool, np.bool_)):
        return DataType.boolean
    if isinstance(value, int):
        return DataType.long
    if isinstance(value, float):
        return DataType.double
    if isinstance(value, str):
        return DataType.string
    if isinstance(value, (bytes, bytearray)):
        return DataType.binary
    if isinstance(value, (_dt.date, np.datetime64)):
        return DataType.datetime
    if isinstance(value, np.generic):
        return dtype_type(value.dtype, "value")
    raise TypeError(f"no signature type for values of type {type(value).__name__}")


def _merged(values: list[Any]) -> ColType:
    result: ColType | None = None
    for v in values:
        t = value_type(v)
        result = t if result is None else merge(result, t)
    return AnyType() if result is None else result


def merge(a: ColType, b: ColType) -> ColType:
    """One type covering values of types ``a`` and ``b`` (MLflow's merge rules)."""
    if isinstance(a, AnyType):
        return _optional(b)
    if isinstance(b, AnyType):
        return _optional(a)
    if a == b:
        return a
    if isinstance(a, Array) and isinstance(b, Array):
        return Array(merge(a.items, b.items))
    if isinstance(a, Map) and isinstance(b, Map):
        return Map(merge(a.values, b.values))
    if isinstance(a, Object) and isinstance(b, Object):
        pa = {p.name: p for p in a.properties}
        pb = {p.name: p for p in b.properties}
        props = []
        for name in pa.keys() | pb.keys():
            if name in pa and name in pb:
                kind = merge(pa[name].type, pb[name].type)
                props.append(Property(name, kind, pa[name].required and pb[name].required))
            else:
                props.append(Property(name, (pa.get(name) or pb[name]).type, False))
        return Object(props)
    raise TypeError(
        f"values of different types ({a} and {b}); declare the signature by hand "
        "(Array(AnyType()) holds mixed lists)"
    )


def _optional(t: ColType) -> ColType:
    if isinstance(t, Object):
        return Object(Property(p.name, p.type, False) for p in t.properties)
    return t


def _records(rows: list[Mapping[str, Any]]) -> Schema:
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for k, v in row.items():
            if not isinstance(k, str):
                raise TypeError("record keys must be strings")
            columns.setdefault(k, []).append(v)
    return Schema(
        ColSpec(_merged(values), name, all(not _is_missing(r.get(name)) for r in rows))
        for name, values in columns.items()
    )


def _tensor(arr: Any, name: str | None = None) -> TensorSpec:
    kind = arr.dtype.kind
    dtype = "str" if kind == "U" else "bytes" if kind == "S" else arr.dtype
    return TensorSpec(dtype, (-1, *arr.shape[1:]), name)


def _param_type(name: str, value: Any) -> tuple[DataType | Object, tuple[int, ...] | None]:
    import numpy as np

    where = f"param {name!r}"
    if isinstance(value, Mapping):
        kind = value_type(value)
        if not isinstance(kind, Object):
            raise TypeError(f"{where}: an empty dict has no type")
        return kind, None
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.ndim != 1:
            raise ValueError(f"{where}: only scalars and 1-D lists are supported")
        if len(value) and all(isinstance(v, (_dt.date, np.datetime64)) for v in value):
            return DataType.datetime, (-1,)
        return dtype_type(arr.dtype, where), (-1,)
    if isinstance(value, (_dt.date, np.datetime64)):
        return DataType.datetime, None
    if _is_scalar(value) and value is not None:
        return dtype_type(np.asarray(value).dtype, where), None
    raise TypeError(f"{where}: expected a scalar, a 1-D list or a dict, got {type(value).__name__}")


# -- helpers --------------------------------------------------------------------------


def _name(name: Any) -> str | None:
    return None if name is None else str(name)


def _is_scalar(value: Any) -> bool:
    import numpy as np

    return value is None or isinstance(value, (str, bytes, _dt.date)) or bool(np.isscalar(value))


def _is_missing(value: Any) -> bool:
    import pandas as pd

    if value is None:
        return True
    if isinstance(value, (list, tuple, Mapping)) or getattr(value, "ndim", False):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _no_missing(value: Any) -> bool:
    # MLflow's rule for dict values: a list is required unless it holds a missing value.
    if isinstance(value, (list, tuple)):
        return not any(_is_missing(v) for v in value)
    return not _is_missing(value)


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")
