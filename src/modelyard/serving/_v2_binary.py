"""The binary tensor data extension of the Open Inference Protocol (KServe, Triton).

A request or a response may carry tensors as raw bytes after its JSON: the
``Inference-Header-Content-Length`` header gives the length of the JSON, and
each such tensor gives its size in ``parameters.binary_data_size``; the bytes
follow in the order of the tensors. Numbers are little-endian and row-major,
a BOOL is one byte (0 or 1), and each BYTES element is a 4-byte little-endian
length followed by that many bytes. Triton's clients use it by default.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from modelyard.serving.errors import RequestError

__all__ = ["HEADER", "BinaryReader", "decode_tensor", "encode_tensor", "json_size"]

#: the request and response header naming the JSON's length
HEADER = b"inference-header-content-length"
_LENGTH = struct.Struct("<I")


def json_size(value: bytes, body_size: int) -> int:
    """The header's value, checked against the body it describes."""
    try:
        size = int(value)
    except ValueError:
        size = -1
    if not 0 <= size <= body_size:
        raise RequestError(
            "BAD_REQUEST",
            f"Inference-Header-Content-Length must be a number from 0 to the body's"
            f" {body_size} bytes, got {value.decode('latin-1')!r}",
            field="Inference-Header-Content-Length",
        )
    return size


class BinaryReader:
    """The bytes after the JSON, handed out tensor by tensor."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._at = 0

    def take(self, size: Any, name: str) -> memoryview:
        """The next ``size`` bytes, for the tensor ``name``."""
        left = len(self._data) - self._at
        if type(size) is not int or size < 0:
            raise RequestError(
                "BAD_REQUEST",
                f"input {name!r}: binary_data_size must be a non-negative integer",
                field=name,
            )
        if size > left:
            raise RequestError(
                "BAD_REQUEST",
                f"input {name!r}: binary_data_size is {size} bytes but only {left} are left"
                " after the JSON",
                field=name,
            )
        chunk = self._data[self._at : self._at + size]
        self._at += size
        return chunk

    def finish(self) -> None:
        """Every byte must belong to a tensor."""
        left = len(self._data) - self._at
        if left:
            raise RequestError(
                "BAD_REQUEST",
                f"{left} bytes after the JSON belong to no input (binary_data_size too small?)",
                field="inputs",
            )


def decode_tensor(chunk: memoryview, datatype: str, target: Any, count: int, name: str) -> Any:
    """``count`` elements of ``datatype`` from ``chunk``, flat and writable."""
    where = f"input {name!r}"
    if datatype == "BYTES":
        return _decode_bytes(chunk, count, where, name)
    dtype = np.dtype(target).newbyteorder("<")
    if len(chunk) != count * dtype.itemsize:
        raise RequestError(
            "BAD_REQUEST",
            f"{where}: {count} {datatype} values take {count * dtype.itemsize} bytes,"
            f" binary_data_size says {len(chunk)}",
            field=name,
        )
    if datatype == "BOOL":
        raw = np.frombuffer(chunk, dtype=np.uint8)
        if raw.size and raw.max() > 1:
            raise RequestError("BAD_REQUEST", f"{where}: BOOL bytes must be 0 or 1", field=name)
        return raw.astype(np.bool_)
    # a copy in native order: models may change their input in place
    return np.frombuffer(chunk, dtype=dtype).astype(np.dtype(target))


def _decode_bytes(chunk: memoryview, count: int, where: str, name: str) -> Any:
    out = np.empty(count, dtype=object)
    at, end = 0, len(chunk)
    for i in range(count):
        if at + 4 > end:
            raise RequestError(
                "BAD_REQUEST",
                f"{where}: the binary data ends after {i} of {count} BYTES",
                field=name,
            )
        (size,) = _LENGTH.unpack_from(chunk, at)
        at += 4
        if at + size > end:
            raise RequestError(
                "BAD_REQUEST", f"{where}: BYTES element {i} runs past the binary data", field=name
            )
        raw = bytes(chunk[at : at + size])
        at += size
        try:
            out[i] = raw.decode("utf-8")  # as the JSON form would have given it
        except UnicodeDecodeError:
            out[i] = raw
    if at != end:
        raise RequestError(
            "BAD_REQUEST",
            f"{where}: {end - at} bytes left after {count} BYTES elements",
            field=name,
        )
    return out


def encode_tensor(arr: Any) -> bytes:
    """``arr`` as the extension's bytes (the datatype is ``datatype_of(arr.dtype)``)."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    kind = flat.dtype.kind
    if kind == "b":
        return flat.astype(np.uint8).tobytes()
    if kind in "iuf":
        return flat.astype(flat.dtype.newbyteorder("<"), copy=False).tobytes()
    parts = []
    for v in flat.tolist():
        # no null in this encoding: a missing value is an empty element
        raw = v if isinstance(v, bytes) else b"" if v is None else str(v).encode("utf-8")
        parts += [_LENGTH.pack(len(raw)), raw]
    return b"".join(parts)
