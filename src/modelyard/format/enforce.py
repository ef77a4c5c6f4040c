"""Schema enforcement: make input data and params fit a signature, losslessly.

The one entry point for every caller: ``Model.predict`` in-process, the
scoring server and batch scoring (which turn JSON, CSV, Parquet and Arrow into
DataFrames, arrays or dicts first, with no casting of their own) all end here.

- :func:`enforce_input` ``(data, schema) -> data``: for column schemas a
  DataFrame in the signature's column order with the declared types; for
  tensor schemas an array (or a dict of arrays) of the declared dtype and shape.
- :func:`enforce_params` ``(params, param_schema) -> dict``: every declared
  param, defaults filled in, values checked and widened.

Both raise :class:`~modelyard.errors.SchemaError` naming the column (or param),
the expected type and what arrived, never the data. Extra columns are dropped
with an :class:`ExtraInputsWarning`. The conversion rules themselves are in
:mod:`modelyard.format._convert`.

Each schema is compiled once into a plan (cached on the schema object). When
a DataFrame already has the signature's columns, in order, with the declared
dtypes, the plan returns it unchanged after comparing column labels and dtypes:
no copy, no per-row work.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.errors import SchemaError
from modelyard.format._convert import NUMPY_TYPE, Mismatch, _is_missing, cast_array, convert_column
from modelyard.format.schema import (
    AnyType,
    ColSpec,
    DataType,
    ParamSchema,
    Schema,
    SparkMLVector,
    TensorSpec,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from modelyard.format.signature import Signature

__all__ = ["ExtraInputsWarning", "SignatureEnforcer", "enforce_input", "enforce_params"]

OnExtra = Callable[[Sequence[str]], None] | None


class ExtraInputsWarning(UserWarning):
    """Input columns (or tensors) the signature does not declare were dropped."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        super().__init__(
            f"dropped input(s) not in the model's signature: {list(self.names)} "
            "(ExtraInputsWarning; filter it, or make it an error, with the warnings module)"
        )


def enforce_input(data: Any, schema: Schema | None, *, warn_extra: bool = True) -> Any:
    """``data`` made to fit ``schema``; :class:`SchemaError` if it cannot, losslessly.

    Column schemas accept a DataFrame, a Series, a dict of lists or arrays, a
    list of dicts (records), a 2-D array or list of rows as wide as the
    signature, or a single value for a one-column signature; they return a
    DataFrame. Tensor schemas accept arrays (a dict of them when named) and
    return arrays. With no schema (``None``) ``data`` is returned as it is.

    >>> enforce_input(pd.DataFrame({"b": [1], "a": [2.5]}), schema)  # doctest: +SKIP
         a    b          # reordered; b's int64 became the declared double
    """
    if schema is None:
        return data
    return _plan(schema)(data, _warn if warn_extra else None)


def enforce_params(params: Mapping[str, Any] | None, schema: ParamSchema | None) -> Any:
    """Every declared param: given values checked and widened, defaults for the rest.

    Unknown names are an error listing the declared ones. With no params
    schema, ``None`` or ``{}`` give ``None`` and anything else is an error.
    """
    return _ParamPlan(schema)(params)


class SignatureEnforcer:
    """A signature's plans, reused call after call (what ``Model.predict`` runs).

    ``inputs=False`` skips input enforcement (MLflow's type-hint signatures,
    whose model checks its own input). The extra-columns warning is given once
    per enforcer.
    """

    def __init__(self, signature: Signature, *, inputs: bool = True) -> None:
        schema = signature.inputs
        self._input = _plan(schema) if inputs and schema is not None else None
        self._params = _ParamPlan(signature.params)
        self._warned = False

    def __call__(self, data: Any, params: Mapping[str, Any] | None) -> tuple[Any, Any]:
        """``(data, params)`` ready for the model's predict."""
        if self._input is not None:
            data = self._input(data, self._warn_once)
        return data, self._params(params)

    def _warn_once(self, names: Sequence[str]) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(ExtraInputsWarning(names), stacklevel=_caller_level())


def _warn(names: Sequence[str]) -> None:
    warnings.warn(ExtraInputsWarning(names), stacklevel=_caller_level())


def _caller_level() -> int:
    # The warning points at the first frame outside modelyard: the user's call.
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("modelyard."):
        frame = frame.f_back
        level += 1
    return level


def _plan(schema: Schema) -> Callable[[Any, OnExtra], Any]:
    plan = schema.__dict__.get("_enforce_plan")
    if plan is None:
        plan = _TensorPlan(schema) if schema.is_tensor_spec else _ColumnPlan(schema)
        object.__setattr__(schema, "_enforce_plan", plan)  # frozen: cache beside the fields
    return plan


def _error(where: str, expected: str, exc: Mismatch, column: str | None) -> SchemaError:
    at = f"{where}{exc.path}"
    return SchemaError(
        f"{at}: expected {expected}, got {exc.received}: {exc.reason}",
        column=column,
        expected=expected,
        received=exc.received,
    )


# -- column schemas -------------------------------------------------------------------


class _ColumnPlan:
    def __init__(self, schema: Schema) -> None:
        import numpy as np
        import pandas as pd

        self.specs: tuple[ColSpec, ...] = tuple(s for s in schema if isinstance(s, ColSpec))
        self.named = schema.has_names
        self.names = [str(s.name) for s in self.specs] if self.named else []
        self.declared = frozenset(self.names)
        self.width = len(self.specs)
        self.nested = any(not isinstance(s.type, DataType) for s in self.specs)
        self.index = pd.Index(self.names, dtype=object)
        # Per column, what needs no conversion: one numpy dtype, or dtype classes.
        ready: dict[Any, Any] = {DataType(t): np.dtype(n) for t, n in NUMPY_TYPE.items()}
        ready[DataType.string] = (pd.StringDtype,)
        ready[DataType.datetime] = (np.dtypes.DateTime64DType,)
        self.ready = tuple(ready.get(s.type) for s in self.specs)
        self.fast = self.named and all(r is not None for r in self.ready)
        self._seen: Any = None  # the last column Index that matched (Index objects are immutable)
        self._frame_type = pd.DataFrame
        self._labels: dict[type, Any] = {}

    def __call__(self, data: Any, on_extra: OnExtra) -> Any:
        if self.fast and type(data) is self._frame_type and self._ready(data):
            return data
        return self._enforce(self._frame(data), on_extra)

    def _ready(self, df: pd.DataFrame) -> bool:
        cols = df.columns
        if cols is not self._seen:
            if not self._same_labels(cols):
                return False
            self._seen = cols
        # The block manager is private but present in pandas 2 and 3; reading
        # it is 10-50x faster than the public ``df.dtypes`` (which builds a Series).
        try:
            blocks = df._mgr.blocks
            dtypes = (blocks[0].dtype,) * self.width if len(blocks) == 1 else df._mgr.get_dtypes()
        except AttributeError:  # pragma: no cover - a future pandas
            dtypes = df.dtypes.to_numpy()
        for d, r in zip(dtypes, self.ready, strict=True):
            if d is r:
                continue
            if type(r) is tuple:
                if not isinstance(d, r):
                    return False
            elif d != r:
                return False
        return True

    def _same_labels(self, cols: pd.Index) -> bool:
        # Comparing the backing arrays is ~15x faster than Index.equals; one
        # reference per array type (Arrow strings, Python strings, objects).
        try:
            values = cols.array
        except ValueError:  # a MultiIndex has no single array: never the signature's columns
            return False
        ref = self._labels.get(type(values))
        if ref is None:
            try:
                ref = self.index.astype(cols.dtype).array
            except (TypeError, ValueError):
                return bool(cols.equals(self.index))
            if type(ref) is not type(values):
                return bool(cols.equals(self.index))
            self._labels[type(values)] = ref
        return bool(values.equals(ref))

    # -- slow path: any input shape, reorder, drop, convert ----------------------

    def _enforce(self, frame: pd.DataFrame, on_extra: OnExtra) -> pd.DataFrame:
        import pandas as pd

        labels = list(frame.columns)
        if self.named:
            positions = self._positions(labels, on_extra)
        else:
            if len(labels) < self.width:
                raise SchemaError(
                    f"the model expects {self.width} column(s) (by position), got {len(labels)}",
                    expected=f"{self.width} columns",
                    received=f"{len(labels)} columns",
                )
            if len(labels) > self.width and on_extra is not None:
                on_extra([str(x) for x in labels[self.width :]])
            positions = list(range(self.width))
        out: dict[Any, Any] = {}
        changed = positions != list(range(len(labels)))
        for spec, pos in zip(self.specs, positions, strict=True):
            if pos is None:
                continue
            col = frame.iloc[:, pos]
            new = self._column(col, spec, str(spec.name if self.named else pos))
            changed = changed or new is not col
            out[spec.name if self.named else labels[pos]] = new.array
        if not changed and (not self.named or labels == self.names):
            return frame
        return pd.DataFrame(out, index=frame.index, copy=False)

    def _positions(self, labels: list[Any], on_extra: OnExtra) -> list[int | None]:
        found: dict[str, int] = {}
        for pos, label in enumerate(labels):
            key = label if isinstance(label, str) else str(label)
            if key in found and key in self.declared:
                raise SchemaError(f"column {key!r} appears twice in the input", column=key)
            found.setdefault(key, pos)
        missing = [s.name for s in self.specs if s.required and s.name not in found]
        if missing:
            raise SchemaError(
                f"missing required column(s) {missing}; the signature declares {self.names}",
                column=str(missing[0]),
                expected=", ".join(self.names),
                received=", ".join(str(x) for x in labels),
            )
        extra = [str(x) for x in labels if str(x) not in self.declared]
        if extra and on_extra is not None:
            on_extra(extra)
        return [found.get(str(s.name)) for s in self.specs]

    @staticmethod
    def _column(col: pd.Series, spec: ColSpec, where: str) -> pd.Series:
        kind = spec.type
        if isinstance(kind, DataType):
            try:
                return convert_column(col, kind.value, spec.required)
            except Mismatch as exc:
                raise _error(f"column {where!r}", str(kind), exc, where) from None
        if isinstance(kind, AnyType):
            return col
        return _cells(col, spec, where)

    def _frame(self, data: Any) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, pd.Series):
            return data.to_frame(name=self._series_name(data.name))
        if hasattr(data, "to_pandas"):  # pyarrow tables and record batches, polars frames
            return self._frame(data.to_pandas())
        if isinstance(data, Mapping):
            return self._from_dict(data)
        if isinstance(data, np.ndarray) and data.ndim > 0:
            if data.ndim == 1:
                return self._one_column(data)
            if data.ndim == 2:
                return self._rows(data)
            raise SchemaError(
                f"a {data.ndim}-D array cannot be a table; the model takes columns",
                received=f"{data.ndim}-D array",
            )
        if isinstance(data, (list, tuple)):
            return self._from_list(list(data))
        if _is_scalar(data):
            return self._one_column([data])
        raise SchemaError(
            "the model takes columns: pass a DataFrame, a Series, a dict of columns, "
            f"a list of records or a 2-D array, not {type(data).__name__}",
            received=type(data).__name__,
        )

    def _label(self, i: int) -> Any:
        return self.names[i] if self.named else i

    def _series_name(self, name: Any) -> Any:
        if name is not None and (not self.named or str(name) in self.names):
            return name
        if self.width == 1:
            return self._label(0)
        raise SchemaError(
            f"a Series is one column; name it after one of {self.names or self.width}",
            received="Series",
        )

    def _one_column(self, values: Any) -> pd.DataFrame:
        import pandas as pd

        if self.width != 1:
            raise SchemaError(
                f"one column of values was given; the model takes {self.width} columns "
                f"{self.names or ''}; pass records, a dict of columns or a 2-D array",
                received="one column",
            )
        return pd.DataFrame({self._label(0): values})

    def _rows(self, rows: Any) -> pd.DataFrame:
        import pandas as pd

        columns = self.names if self.named else None
        try:
            return pd.DataFrame(rows, columns=columns)
        except (ValueError, TypeError):
            raise SchemaError(
                f"rows must each hold {self.width} values, one per column {self.names or ''}",
                expected=f"{self.width} values per row",
                received="rows of another width",
            ) from None

    def _from_dict(self, data: Mapping[Any, Any]) -> pd.DataFrame:
        import pandas as pd

        if self.nested or all(_is_scalar(v) for v in data.values()):
            return pd.DataFrame([dict(data)])  # one record
        try:
            return pd.DataFrame(dict(data))
        except (ValueError, TypeError):
            raise SchemaError(
                "a dict of columns needs lists or 1-D arrays of one length",
                received="dict of unequal columns",
            ) from None

    def _from_list(self, items: list[Any]) -> pd.DataFrame:
        import pandas as pd

        if not items:
            return pd.DataFrame({self._label(i): [] for i in range(self.width)}, dtype=object)
        if all(isinstance(r, Mapping) for r in items):
            return pd.DataFrame(items)
        if self.width == 1:
            return self._one_column(items)
        if all(isinstance(r, (list, tuple)) or getattr(r, "ndim", 0) == 1 for r in items):
            return self._rows(items)
        raise SchemaError(
            f"a flat list fits a one-column signature; this model takes {self.width} columns: "
            "pass records (a list of dicts) or rows (a list of lists)",
            received="flat list",
        )


def _cells(col: pd.Series, spec: ColSpec, where: str) -> pd.Series:
    import pandas as pd

    kind = spec.type
    if isinstance(kind, SparkMLVector):
        from modelyard.format.schema import Array

        kind = Array(DataType.double)
    out = []
    for i, v in enumerate(col.to_list()):
        try:
            out.append(kind._convert(None if _is_missing(v) else v, spec.required))
        except Mismatch as exc:
            raise _error(f"column {where!r}, row {i}", str(kind), exc, where) from None
    return pd.Series(out, index=col.index, name=col.name, dtype=object)


def _is_scalar(value: Any) -> bool:
    import datetime as dt

    import numpy as np

    return value is None or isinstance(value, (str, bytes, dt.date)) or bool(np.isscalar(value))


# -- tensor schemas -------------------------------------------------------------------


class _TensorPlan:
    def __init__(self, schema: Schema) -> None:
        import numpy as np

        self.specs: tuple[TensorSpec, ...] = tuple(s for s in schema if isinstance(s, TensorSpec))
        self.named = schema.has_names
        self.names = [str(s.name) for s in self.specs] if self.named else []
        self.dtypes = tuple(np.dtype(s.dtype) for s in self.specs)

    def __call__(self, data: Any, on_extra: OnExtra) -> Any:
        import numpy as np

        if not self.named:
            spec, dtype = self.specs[0], self.dtypes[0]
            if type(data) is np.ndarray and data.dtype is dtype and _shape_ok(data.shape, spec):
                return data
            return _tensor(data, spec, dtype, "input")
        values = self._named_values(data)
        missing = [n for n in self.names if n not in values]
        if missing:
            raise SchemaError(
                f"missing required input(s) {missing}; the signature declares {self.names}",
                column=missing[0],
                expected=", ".join(self.names),
            )
        extra = [k for k in values if k not in self.names]
        if extra and on_extra is not None:
            on_extra(extra)
        return {
            name: _tensor(values[name], spec, dtype, f"input {name!r}")
            for name, spec, dtype in zip(self.names, self.specs, self.dtypes, strict=True)
        }

    def _named_values(self, data: Any) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return {str(c): data[c] for c in data.columns}
        if isinstance(data, Mapping):
            return {str(k): v for k, v in data.items()}
        if len(self.names) == 1 and (isinstance(data, (np.ndarray, list)) or _is_torch(data)):
            return {self.names[0]: data}
        raise SchemaError(
            f"the model takes named tensors {self.names}: pass a dict of arrays or a DataFrame, "
            f"not {type(data).__name__}",
            received=type(data).__name__,
        )


def _shape_ok(shape: tuple[int, ...], spec: TensorSpec) -> bool:
    want = spec.shape
    return len(shape) == len(want) and all(w in (-1, s) for s, w in zip(shape, want, strict=True))


def _tensor(value: Any, spec: TensorSpec, dtype: np.dtype, where: str) -> Any:
    import numpy as np
    import pandas as pd

    if _is_torch(value):
        if not _shape_ok(tuple(value.shape), spec):
            raise _shape_error(where, spec, tuple(value.shape))
        if str(value.dtype) != f"torch.{spec.dtype}":
            raise SchemaError(
                f"{where}: expected {spec.dtype}, got {value.dtype} (torch tensors are not cast)",
                column=spec.name,
                expected=spec.dtype,
                received=str(value.dtype),
            )
        return value
    if isinstance(value, pd.DataFrame):
        if value.shape[1] == 1:
            value = value.iloc[:, 0]
        elif spec.shape != (-1, value.shape[1]):
            raise _shape_error(where, spec, value.shape)
        else:
            value = value.to_numpy()
    if isinstance(value, pd.Series):
        value = _series_tensor(value, spec, where)
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except ValueError:
            raise SchemaError(
                f"{where}: ragged nested lists are not a tensor", column=spec.name
            ) from None
    if dtype.kind == "O" and spec.shape == (-1,):
        return value  # object tensors of any shape: ragged data (MLflow's rule)
    if value.dtype.kind == "O" and value.ndim == 1 and -1 in spec.shape[1:]:
        return value  # ragged rows for a spec with free inner dimensions
    if not _shape_ok(value.shape, spec):
        raise _shape_error(where, spec, value.shape)
    try:
        return cast_array(value, dtype)
    except Mismatch as exc:
        raise _error(where, spec.dtype, exc, spec.name) from None


def _series_tensor(col: pd.Series, spec: TensorSpec, where: str) -> Any:
    import numpy as np

    if len(col) and isinstance(col.iloc[0], (list, tuple, np.ndarray)):
        try:
            stacked = np.stack([np.asarray(v) for v in col.to_list()])
        except ValueError:
            raise SchemaError(f"{where}: cells of different shapes", column=spec.name) from None
        return stacked.reshape((-1, *spec.shape[1:])) if -1 not in spec.shape[1:] else stacked
    values = col.to_numpy()
    if spec.shape == (-1, 1):
        return values.reshape(-1, 1)
    return values


def _shape_error(where: str, spec: TensorSpec, shape: tuple[int, ...]) -> SchemaError:
    return SchemaError(
        f"{where}: expected shape {spec.shape} (-1 is free), got {tuple(shape)}",
        column=spec.name,
        expected=str(spec.shape),
        received=str(tuple(shape)),
    )


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "dtype")


# -- params ---------------------------------------------------------------------------


class _ParamPlan:
    def __init__(self, schema: ParamSchema | None) -> None:
        self.schema = schema
        self.specs = {p.name: p for p in schema} if schema is not None else {}
        self.defaults = schema.defaults() if schema is not None else {}
        self.mutable = any(isinstance(v, (list, dict)) for v in self.defaults.values())

    def __call__(self, params: Mapping[str, Any] | None) -> Any:
        if params is None or (isinstance(params, Mapping) and not params):
            if self.schema is None:
                return None
            return copy.deepcopy(self.defaults) if self.mutable else dict(self.defaults)
        if not isinstance(params, Mapping):
            raise SchemaError(
                f"params must be a dict, not {type(params).__name__}",
                received=type(params).__name__,
            )
        unknown = [str(k) for k in params if k not in self.specs]
        if unknown:
            declared = list(self.specs)
            said = f"it declares {declared}" if declared else "its signature declares no params"
            raise SchemaError(
                f"unknown param(s) {unknown} for this model; {said}",
                column=unknown[0],
                expected=", ".join(declared),
            )
        out = copy.deepcopy(self.defaults) if self.mutable else dict(self.defaults)
        problems: list[SchemaError] = []
        for name, value in params.items():
            spec = self.specs[name]
            kind = f"{spec.type}[]" if spec.shape is not None else str(spec.type)
            try:
                out[name] = spec.convert(value)
            except Mismatch as exc:
                problems.append(_error(f"param {name!r}", kind, exc, name))
        if problems:
            first = problems[0]
            raise SchemaError(
                "; ".join(str(p) for p in problems),
                column=first.column,
                expected=first.expected,
                received=first.received,
            )
        return out
