"""Parse text columns (CSV) into the types a model's signature declares.

This is reading, not schema enforcement: text has no type until it is parsed.
A value that does not parse fails its row (the column and the value named);
the other rows go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from modelyard.batch._rows import RowFailure

if TYPE_CHECKING:
    import pyarrow as pa


def parse_text_columns(
    table: pa.Table, types: Mapping[str, pa.DataType], start: int
) -> tuple[pa.Table, list[int], tuple[RowFailure, ...]]:
    """``table`` with its declared text columns parsed, the kept row positions, the failures.

    Row positions are relative to ``table``; failures carry input row indexes
    (``start`` + position) and the row's original text values.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    bad: dict[int, tuple[str, str]] = {}
    columns = dict(zip(table.column_names, table.columns, strict=True))
    for name, target in types.items():
        col = columns.get(name)
        if col is None or not pa.types.is_string(col.type) or pa.types.is_string(target):
            continue
        try:
            columns[name] = pc.cast(col, target)
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        arr = col.combine_chunks()
        positions = _unparsable(arr, target, 0)
        for i in positions:
            bad.setdefault(i, (name, f"{arr[i].as_py()!r} is not a valid {_type_name(target)}"))
        invalid = pa.array([False] * len(arr))
        if positions:
            flags = [False] * len(arr)
            for i in positions:
                flags[i] = True
            invalid = pa.array(flags)
        columns[name] = pc.cast(pc.if_else(invalid, pa.scalar(None, pa.string()), arr), target)
    parsed = pa.table(list(columns.values()), names=list(columns))
    if not bad:
        return parsed, list(range(table.num_rows)), ()
    failures = tuple(
        RowFailure(
            row=start + i,
            reason=reason,
            column=column,
            values=table.slice(i, 1).to_pylist()[0],
        )
        for i, (column, reason) in sorted(bad.items())
    )
    keep = [i for i in range(table.num_rows) if i not in bad]
    return parsed.take(pa.array(keep, type=pa.int64())), keep, failures


def _unparsable(arr: pa.Array, target: pa.DataType, offset: int) -> list[int]:
    """Positions of the values that do not cast, by halving: O(k log n) casts for k bad values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.cast(arr, target)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(arr) == 1:
            return [offset]
    mid = len(arr) // 2
    return _unparsable(arr.slice(0, mid), target, offset) + _unparsable(
        arr.slice(mid), target, offset + mid
    )


def _type_name(t: pa.DataType) -> str:
    names = {"int32": "integer", "int64": "long", "float": "float", "double": "double"}
    return names.get(str(t), str(t))
