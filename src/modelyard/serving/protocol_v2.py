"""Open Inference Protocol v2 (KServe, Seldon MLServer, Triton clients), REST.

JSON, with the binary tensor data extension (:mod:`._v2_binary`) both ways.

Requests name each tensor's ``datatype``: that is the type, so the array is built
in it (after checking that the JSON values fit it without loss). How tensors
reach the model follows its signature:

- one unnamed tensor spec: the single input tensor, as an ndarray;
- named tensor specs: ``{name: ndarray}``;
- a column signature: one 2-D tensor with one column per signature column, or
  one 1-D tensor per column named after it, becomes a DataFrame;
- no signature: one tensor as an ndarray, several as ``{name: ndarray}``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelyard.serving._spec import COLUMNS, TENSOR, InputSpec
from modelyard.serving._v2_binary import BinaryReader, decode_tensor, encode_tensor
from modelyard.serving.errors import RequestError

__all__ = [
    "DATATYPES",
    "InferRequest",
    "datatype_of",
    "model_metadata",
    "parse_infer",
    "render_infer",
]

#: OIP datatype -> numpy dtype
DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": object,
}
_RESERVED_PARAMETERS = frozenset({"content_type", "headers", "binary_data_output"})
_SIGNATURE_TYPES = {
    "boolean": "BOOL",
    "integer": "INT32",
    "long": "INT64",
    "float": "FP32",
    "double": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
}


@dataclass(frozen=True)
class InferRequest:
    """A decoded ``infer`` request."""

    data: Any
    params: dict[str, Any] | None
    id: str | None
    outputs: tuple[str, ...] | None
    rows: int | None
    #: outputs as binary data unless an output says otherwise (``binary_data_output``)
    binary_default: bool = False
    #: what requested outputs said (``parameters.binary_data``), by name
    binary_outputs: Mapping[str, bool] | None = None


def parse_infer(body: bytes, spec: InputSpec, *, json_size: int | None = None) -> InferRequest:
    """Decode an ``infer`` body into what ``predict`` takes.

    ``json_size`` (the ``Inference-Header-Content-Length`` header) says the JSON
    ends there and binary tensor data follows (see :mod:`._v2_binary`).
    """
    reader = None
    if json_size is not None:
        view = memoryview(body)
        reader = BinaryReader(view[json_size:])
        body = bytes(view[:json_size])
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        hint = (
            "; binary tensor data needs the Inference-Header-Content-Length header"
            if json_size is None and b'"binary_data_size"' in body
            else ""
        )
        raise RequestError(
            "BAD_REQUEST", f"the body is not valid JSON: {_reason(exc)}{hint}"
        ) from None
    except RecursionError:
        raise RequestError("BAD_REQUEST", "the JSON is nested too deeply") from None
    if not isinstance(doc, dict):
        raise RequestError("BAD_REQUEST", "the body must be a JSON object with 'inputs'")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError(
            "BAD_REQUEST", "'inputs' must be a non-empty list of tensors", field="inputs"
        )
    tensors: dict[str, np.ndarray] = {}
    for i, item in enumerate(inputs):
        try:
            name, arr = _tensor(item, i, reader)
        except RecursionError:
            raise RequestError(
                "BAD_REQUEST", f"inputs[{i}]: 'data' is nested too deeply", field="inputs"
            ) from None
        if name in tensors:
            raise RequestError(
                "BAD_REQUEST", f"input {name!r} is given twice", field=f"inputs[{i}].name"
            )
        tensors[name] = arr
    if reader is not None:
        reader.finish()
    req_id = doc.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise RequestError("BAD_REQUEST", "'id' must be a string", field="id")
    raw_params = doc.get("parameters")
    params = _parameters(raw_params)
    binary_default = isinstance(raw_params, dict) and raw_params.get("binary_data_output") is True
    outputs, binary_outputs = _requested_outputs(doc.get("outputs"))
    data, rows = _assemble(tensors, spec)
    return InferRequest(data, params, req_id, outputs, rows, binary_default, binary_outputs)


def _tensor(item: Any, i: int, reader: BinaryReader | None) -> tuple[str, np.ndarray]:
    where = f"inputs[{i}]"
    if not isinstance(item, dict):
        raise RequestError("BAD_REQUEST", f"{where} must be an object", field=where)
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError("BAD_REQUEST", f"{where}.name must be a non-empty string", field=where)
    where = f"input {name!r}"
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise RequestError(
            "BAD_REQUEST", f"{where}: 'shape' must be a list of non-negative integers", field=name
        )
    datatype = item.get("datatype")
    target = DATATYPES.get(datatype) if isinstance(datatype, str) else None
    if target is None or not isinstance(datatype, str):
        raise RequestError(
            "BAD_REQUEST",
            f"{where}: unknown datatype {datatype!r}; expected one of {sorted(DATATYPES)}",
            field=name,
        )
    expected = math.prod(shape)
    parameters = item.get("parameters")
    size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
    if size is not None:
        if "data" in item:
            raise RequestError(
                "BAD_REQUEST", f"{where}: give 'data' or binary_data_size, not both", field=name
            )
        if reader is None:
            raise RequestError(
                "BAD_REQUEST",
                f"{where} has binary_data_size but the request has no"
                " Inference-Header-Content-Length header",
                field=name,
            )
        chunk = reader.take(size, name)
        return name, decode_tensor(chunk, datatype, target, expected, name).reshape(shape)
    if "data" not in item:
        raise RequestError("BAD_REQUEST", f"{where}: 'data' is missing", field=name)
    arr = _typed_array(item["data"], datatype, target, where, name)
    if arr.size != expected:
        raise RequestError(
            "BAD_REQUEST",
            f"{where}: shape {shape} holds {expected} values but 'data' has {arr.size}",
            field=name,
        )
    return name, arr.reshape(shape)


def _typed_array(data: Any, datatype: str, target: Any, where: str, name: str) -> np.ndarray:
    if datatype == "BYTES":
        flat = _flatten(data)
        if not all(isinstance(v, str) for v in flat):
            raise RequestError("BAD_REQUEST", f"{where}: BYTES data must be strings", field=name)
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out
    if datatype in ("FP64", "FP32", "FP16") and _flat_numbers(data):
        # the common case, one flat list of JSON numbers: nothing to check
        return np.asarray(data, dtype=target)
    try:
        raw = np.asarray(data)
    except ValueError:
        raise RequestError(
            "BAD_REQUEST", f"{where}: 'data' is ragged (rows of different lengths)", field=name
        ) from None
    kind = raw.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise RequestError("BAD_REQUEST", f"{where}: BOOL data must be true/false", field=name)
        return raw.reshape(-1)
    if kind not in "iuf":
        raise RequestError(
            "BAD_REQUEST",
            f"{where}: {datatype} data must be numbers, got {_kind_name(kind)}",
            field=name,
        )
    if np.dtype(target).kind in "iu":
        if kind == "f" and not bool(np.all(np.isfinite(raw) & (raw == np.floor(raw)))):
            raise RequestError(
                "BAD_REQUEST", f"{where}: {datatype} data holds non-integer numbers", field=name
            )
        info = np.iinfo(target)
        if raw.size and (raw.min() < info.min or raw.max() > info.max):
            raise RequestError(
                "BAD_REQUEST", f"{where}: a value is out of range for {datatype}", field=name
            )
    return raw.astype(target, copy=False).reshape(-1)


def _flat_numbers(data: Any) -> bool:
    if type(data) is not list:
        return False
    for v in data:
        t = type(v)
        if t is not float and t is not int:
            return False
    return True


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for v in stack[-1]:
            if isinstance(v, list):
                stack.append(iter(v))
                break
            out.append(v)
        else:
            stack.pop()
    return out


def _parameters(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestError("BAD_REQUEST", "'parameters' must be an object", field="parameters")
    params = {k: v for k, v in value.items() if k not in _RESERVED_PARAMETERS}
    return params or None


def _requested_outputs(value: Any) -> tuple[tuple[str, ...] | None, dict[str, bool] | None]:
    if value is None:
        return None, None
    if not isinstance(value, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in value
    ):
        raise RequestError(
            "BAD_REQUEST", "'outputs' must be a list of objects with a 'name'", field="outputs"
        )
    binary = {}
    for o in value:
        parameters = o.get("parameters")
        if isinstance(parameters, dict) and isinstance(parameters.get("binary_data"), bool):
            binary[o["name"]] = parameters["binary_data"]
    return tuple(o["name"] for o in value), binary or None


def _assemble(tensors: dict[str, np.ndarray], spec: InputSpec) -> tuple[Any, int | None]:
    arrays = list(tensors.values())
    first = arrays[0]
    rows = int(first.shape[0]) if first.ndim else None
    if spec.kind == TENSOR:
        if spec.single_tensor:
            if len(arrays) != 1:
                raise RequestError(
                    "BAD_REQUEST",
                    f"this model takes one input tensor, got {len(arrays)}: {sorted(tensors)}",
                    field="inputs",
                )
            return first, rows
        return tensors, rows
    if spec.kind == COLUMNS and spec.names:
        if len(arrays) == 1 and first.ndim == 2 and next(iter(tensors)) not in spec.names:
            if first.shape[1] != len(spec.names):
                raise RequestError(
                    "BAD_REQUEST",
                    f"input {next(iter(tensors))!r} has {first.shape[1]} columns but the model"
                    f" takes {len(spec.names)}: {list(spec.names)}",
                    field=next(iter(tensors)),
                )
            return pd.DataFrame(first, columns=spec.column_index), rows
        columns = {}
        for name, tensor in tensors.items():
            arr = tensor.reshape(-1) if tensor.ndim == 2 and tensor.shape[1] == 1 else tensor
            if arr.ndim != 1:
                raise RequestError(
                    "BAD_REQUEST",
                    f"input {name!r} must be one column (shape [N] or [N, 1]) for this model's"
                    f" column signature, got shape {list(arr.shape)}",
                    field=name,
                )
            columns[name] = arr
        lengths = {len(a) for a in columns.values()}
        if len(lengths) > 1:
            raise RequestError(
                "BAD_REQUEST", "the input columns have different lengths", field="inputs"
            )
        return pd.DataFrame(columns), rows
    if len(arrays) == 1:
        return first, rows
    return tensors, rows


# -- responses -----------------------------------------------------------------


def datatype_of(dtype: Any) -> str:
    """The OIP datatype name for a numpy dtype."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return "BOOL"
    if dt.kind in "iu":
        return f"{'U' if dt.kind == 'u' else ''}INT{dt.itemsize * 8}"
    if dt.kind == "f":
        return f"FP{dt.itemsize * 8}"
    return "BYTES"


def render_infer(
    model_name: str,
    model_version: str,
    request: InferRequest,
    predictions: Any,
    spec: InputSpec,
) -> tuple[bytes, int | None]:
    """The ``infer`` response body, and the length of its JSON when binary data follows."""
    arrays = _outputs(predictions, spec)
    if request.outputs is not None:
        known = dict(arrays)
        missing = [n for n in request.outputs if n not in known]
        if missing:
            raise RequestError(
                "BAD_REQUEST",
                f"requested output(s) {missing} do not exist; the model returns {sorted(known)}",
                field="outputs",
            )
        arrays = [(n, known[n]) for n in request.outputs]
    wanted = request.binary_outputs or {}
    outputs = []
    chunks: list[bytes] = []
    for name, arr in arrays:
        if wanted.get(name, request.binary_default):
            chunk = encode_tensor(arr)
            chunks.append(chunk)
            outputs.append(_output(name, arr, binary_size=len(chunk)))
        else:
            outputs.append(_output(name, arr))
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"] = outputs
    head = json.dumps(doc).encode()
    if not chunks:
        return head, None
    return b"".join([head, *chunks]), len(head)


def _outputs(predictions: Any, spec: InputSpec) -> list[tuple[str, np.ndarray]]:
    if isinstance(predictions, pd.DataFrame):
        return [(str(c), predictions[c].to_numpy()) for c in predictions.columns]
    if isinstance(predictions, pd.Series):
        return [(str(predictions.name or _default_name(spec)), predictions.to_numpy())]
    if isinstance(predictions, Mapping):
        return [(str(k), np.asarray(v)) for k, v in predictions.items()]
    return [(_default_name(spec), np.asarray(predictions))]


def _default_name(spec: InputSpec) -> str:
    if len(spec.outputs) == 1 and spec.outputs[0].get("name"):
        return str(spec.outputs[0]["name"])
    return "output-0"


def _output(name: str, arr: np.ndarray, *, binary_size: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "shape": list(arr.shape),
        "datatype": datatype_of(arr.dtype),
    }
    if binary_size is not None:
        out["parameters"] = {"binary_data_size": binary_size}
    elif arr.dtype.kind in "biuf":
        out["data"] = arr.reshape(-1).tolist()
    else:
        out["data"] = [_text(v) for v in arr.reshape(-1).tolist()]
    return out


def _text(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)


# -- metadata ------------------------------------------------------------------


def model_metadata(
    name: str, versions: list[str], platform: str, spec: InputSpec
) -> dict[str, Any]:
    """``GET /v2/models/{name}``: the model's tensors, from its signature."""
    return {
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": [_meta(s, i, "input") for i, s in enumerate(spec.inputs)],
        "outputs": [_meta(s, i, "output") for i, s in enumerate(spec.outputs)],
    }


def _meta(spec: Mapping[str, Any], i: int, prefix: str) -> dict[str, Any]:
    name = str(spec.get("name") or f"{prefix}-{i}")
    if spec.get("type") == TENSOR:
        ts = spec.get("tensor-spec") or {}
        return {
            "name": name,
            "datatype": datatype_of(ts.get("dtype", "object")),
            "shape": list(ts.get("shape") or [-1]),
        }
    return {
        "name": name,
        "datatype": _SIGNATURE_TYPES.get(str(spec.get("type")), "BYTES"),
        "shape": [-1],
    }


def _kind_name(kind: str) -> str:
    return {"U": "strings", "O": "mixed or null values", "b": "booleans"}.get(kind, "values")


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return type(exc).__name__
