"""Turn whatever ``predict`` returned into named Arrow columns, one per output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


class OutputShapeError(ValueError):
    """Predictions that cannot be laid out as columns of the input's rows."""


def prediction_columns(
    pred: Any, n_rows: int, result_column: str, output_names: Sequence[str] = ()
) -> list[tuple[str, pa.Array]]:
    """Named columns for ``pred``.

    A 1-D result is one column, ``result_column``. Multi-output results give one
    column per output: a DataFrame's or a dict's own names; for a 2-D array the
    signature's output names when they fit, else ``<result_column>_<i>``.
    Higher-rank arrays are one list column.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(pred, (pa.Table, pa.RecordBatch)):
        cols = [(str(n), _flat(c)) for n, c in zip(pred.column_names, pred.columns, strict=True)]
    elif isinstance(pred, pd.DataFrame):
        unnamed: Any = pred.columns
        if isinstance(unnamed, pd.RangeIndex):  # e.g. pd.DataFrame(ndarray)
            return prediction_columns(pred.to_numpy(), n_rows, result_column, output_names)
        cols = [(str(c), pa.Array.from_pandas(pred.iloc[:, i])) for i, c in enumerate(pred)]
    elif isinstance(pred, pd.Series):
        cols = [(result_column, pa.Array.from_pandas(pred))]
    elif isinstance(pred, Mapping):
        cols = [(str(k), _column(v)) for k, v in pred.items()]
    else:
        arr = pred if isinstance(pred, np.ndarray) else np.asarray(pred)
        if arr.ndim == 0:
            raise OutputShapeError(f"predict returned a single value ({arr!r}), not one per row")
        if arr.ndim == 1:
            cols = [(result_column, _column(arr))]
        elif arr.ndim == 2:
            names = list(output_names)
            if len(names) != arr.shape[1]:
                names = [f"{result_column}_{i}" for i in range(arr.shape[1])]
            cols = [(n, _column(arr[:, i])) for i, n in enumerate(names)]
        else:
            cols = [(result_column, pa.array(list(arr.reshape(arr.shape[0], -1))))]
    for name, col in cols:
        if len(col) != n_rows:
            raise OutputShapeError(
                f"predict returned {len(col)} values for {name!r} for {n_rows} input rows"
            )
    return cols


def _column(values: Any) -> pa.Array:
    import numpy as np
    import pyarrow as pa

    arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    if arr.ndim > 1:
        return pa.array(list(arr.reshape(arr.shape[0], -1)))
    if arr.dtype.kind == "O":
        return pa.array(arr.tolist())
    return pa.array(arr)


def _flat(col: Any) -> pa.Array:
    import pyarrow as pa

    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
