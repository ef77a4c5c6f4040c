"""Messages between modelyard and a model process in another environment.

A message is a JSON header and a binary payload, each length-prefixed::

    <u32 header length> <header JSON> <u64 payload length> <payload>

Data travels in formats every pandas/numpy version reads the same way: tables
as Arrow IPC streams (pandas metadata stripped, so a pandas 3 parent and a
pandas 2 child understand each other), arrays in ``.npy`` format (no pickles).
"""

from __future__ import annotations

import io
import json
import struct
from typing import IO, Any

_HEADER = struct.Struct(">I")
_PAYLOAD = struct.Struct(">Q")


def send(stream: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    """Write one message and flush."""
    head = json.dumps(header, default=str).encode("utf-8")
    stream.write(_HEADER.pack(len(head)) + head + _PAYLOAD.pack(len(payload)))
    if payload:
        stream.write(payload)
    stream.flush()


def receive(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """Read one message; ``None`` at a clean end of stream."""
    first = stream.read(1)
    if not first:
        return None
    (head_size,) = _HEADER.unpack(first + _exact(stream, _HEADER.size - 1))
    head = json.loads(_exact(stream, head_size))
    (size,) = _PAYLOAD.unpack(_exact(stream, _PAYLOAD.size))
    return head, _exact(stream, size) if size else b""


def _exact(stream: IO[bytes], n: int) -> bytes:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("the other side closed the connection mid-message")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


# -- values -----------------------------------------------------------------------


def encode(value: Any) -> tuple[str, Any, bytes]:
    """``(kind, extra, payload)`` for a table, frame, series, array, dict or plain JSON value."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(value, pa.RecordBatch):
        value = pa.Table.from_batches([value])
    if isinstance(value, pa.Table):
        return "table", None, _ipc(value)
    if isinstance(value, pd.DataFrame):
        names = [str(c) for c in value.columns]
        dtypes = value.dtypes.tolist()
        if all(isinstance(t, np.dtype) and t.kind in _RAW_KINDS for t in dtypes):
            return _encode_columns(value, names, dtypes)
        frame = value.set_axis(names, axis=1)
        return "frame", names, _ipc(pa.Table.from_pandas(frame, preserve_index=False))
    if isinstance(value, pd.Series):
        name = None if value.name is None else str(value.name)
        table = pa.table({"0": pa.Array.from_pandas(value)})
        return "series", name, _ipc(table)
    if isinstance(value, dict):
        return _encode_dict(value)
    plain = isinstance(value, (str, int, float, bool, list)) and not isinstance(value, np.generic)
    if value is None or plain:
        # Plain Python values (type-hinted models take and return them) stay what they
        # were; a list holding anything JSON cannot say goes on as an array.
        try:
            return "json", None, json.dumps(value, allow_nan=True).encode("utf-8")
        except (TypeError, ValueError):
            pass
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind == "O":  # strings and mixed values: Arrow, not pickle
        return "objects", list(arr.shape), _ipc(pa.table({"0": pa.array(arr.reshape(-1))}))
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return "ndarray", None, buf.getvalue()


def decode(kind: str, extra: Any, payload: bytes) -> Any:
    """The value :func:`encode` described; tables come back as pandas DataFrames."""
    import numpy as np
    import pyarrow as pa

    if kind == "ndarray":
        return np.load(io.BytesIO(payload), allow_pickle=False)
    if kind == "columns":
        return _decode_columns(extra, payload)
    if kind == "json":
        return json.loads(payload)
    if kind == "dict":
        return _decode_dict(extra, payload)
    table = pa.ipc.open_stream(payload).read_all()
    if kind in ("table", "frame"):
        frame = table.to_pandas()
        if kind == "frame":
            frame.columns = extra
        return frame
    if kind == "series":
        series = table.column(0).to_pandas()
        series.name = extra  # rename(None) would keep the column's name
        return series
    if kind == "objects":
        return np.asarray(table.column(0).to_pylist(), dtype=object).reshape(extra)
    raise ValueError(f"unknown value kind {kind!r}")


# Numbers, booleans and datetimes travel as their raw bytes: a small frame through
# Arrow costs milliseconds (schema and metadata work), which a 1-row request feels.
_RAW_KINDS = frozenset("biufcmM")


def _encode_columns(frame: Any, names: list[str], dtypes: list[Any]) -> tuple[str, Any, bytes]:
    import numpy as np

    spec = [[n, t.str] for n, t in zip(names, dtypes, strict=True)]
    if len(set(dtypes)) == 1:  # one dtype (all float64, say): one block, row by row
        block = np.ascontiguousarray(frame.to_numpy())
        return "columns", {"columns": spec, "block": True}, block.tobytes()
    chunks = [np.ascontiguousarray(col.to_numpy()).tobytes() for _, col in frame.items()]
    return "columns", {"columns": spec, "block": False}, b"".join(chunks)


def _decode_columns(extra: dict[str, Any], data: bytes) -> Any:
    import numpy as np
    import pandas as pd

    # a writable copy: models may change their input in place, as they can locally
    payload = bytearray(data)
    names = [n for n, _ in extra["columns"]]
    dtypes = [np.dtype(t) for _, t in extra["columns"]]
    width = sum(t.itemsize for t in dtypes)
    rows = len(payload) // width if width else 0
    if extra["block"]:
        block = np.frombuffer(payload, dtypes[0]).reshape(rows, len(names))
        return pd.DataFrame(block, columns=names, copy=False)
    columns, at = {}, 0
    for name, dtype in zip(names, dtypes, strict=True):
        columns[name] = np.frombuffer(payload, dtype, rows, at)
        at += rows * dtype.itemsize
    return pd.DataFrame(columns, copy=False)


def _encode_dict(value: dict[Any, Any]) -> tuple[str, Any, bytes]:
    # Named tensors: each value travels on its own, so arrays of different shapes
    # (which no DataFrame holds) come back as they went.
    parts: list[list[Any]] = []
    chunks: list[bytes] = []
    for key, item in value.items():
        kind, extra, body = encode(item)
        parts.append([str(key), kind, extra, len(body)])
        chunks.append(body)
    return "dict", parts, b"".join(chunks)


def _decode_dict(parts: list[list[Any]], payload: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    at = 0
    for key, kind, extra, size in parts:
        out[key] = decode(kind, extra, payload[at : at + size])
        at += size
    return out


def _ipc(table: Any) -> bytes:
    import pyarrow as pa

    table = table.replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())
