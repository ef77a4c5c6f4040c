"""MLflow's scoring protocol: ``POST /invocations`` bodies in, ``{"predictions": ...}`` out.

Bodies become DataFrames, numpy arrays or plain dicts/lists exactly as the JSON,
CSV or Parquet spells them: nothing is cast to the signature's types here. The
model's own :meth:`~modelyard.Model.predict` applies the one rule set that
in-process callers get, so a value is accepted over HTTP if and only if it is
accepted in Python.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelyard.serving._spec import COLUMNS, InputSpec
from modelyard.serving.errors import RequestError

__all__ = [
    "CSV",
    "JSON",
    "PARQUET",
    "SUPPORTED_TYPES",
    "Parsed",
    "parse_content_type",
    "parse_request",
    "render_predictions",
]

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
SUPPORTED_TYPES = (CSV, JSON, PARQUET)
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
# MLflow's unified LLM request format: these top-level keys mean "the body is the input".
_LLM_KEYS = ("messages", "prompt", "input")
_SPLIT_KEYS = frozenset({"data", "columns", "index"})
_PROTOCOL_NOTE = (
    " Note: the scoring protocol changed in MLflow 2.0; put the data under exactly one of"
    ' the keys above, e.g. {"dataframe_split": {"columns": [...], "data": [[...]]}}.'
)


@dataclass(frozen=True)
class Parsed:
    """A decoded request: what goes to ``predict`` and how to answer."""

    data: Any
    params: dict[str, Any] | None
    #: rows, when the data is row-shaped (used by micro-batching)
    rows: int | None
    #: answer with the bare predictions (unified LLM format), not ``{"predictions": ...}``
    unwrapped: bool = False


def parse_content_type(header: str | None) -> str:
    """The media type of a ``Content-Type`` header; 415 for anything unusable."""
    if header is None:
        raise RequestError(
            "UNSUPPORTED_MEDIA_TYPE",
            "the request has no Content-Type header; send one of " + ", ".join(SUPPORTED_TYPES),
            field="Content-Type",
        )
    media, _, rest = header.partition(";")
    media = media.strip().lower()
    unknown = []
    for part in rest.split(";"):
        key, _, value = part.partition("=")
        key = key.strip().lower()
        if not key:
            continue
        if key == "charset":
            if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
                raise RequestError(
                    "UNSUPPORTED_MEDIA_TYPE",
                    "The scoring server only supports UTF-8",
                    field="Content-Type",
                )
        else:
            unknown.append(key)
    if unknown:
        raise RequestError(
            "UNSUPPORTED_MEDIA_TYPE",
            f"Unrecognized content type parameters: {', '.join(unknown)}."
            " The format= parameter of MLflow 1.x is no longer used: the JSON body names its"
            " format (dataframe_split, dataframe_records, instances or inputs).",
            field="Content-Type",
        )
    if media not in SUPPORTED_TYPES:
        raise RequestError(
            "UNSUPPORTED_MEDIA_TYPE",
            f"This predictor only supports the following content types: {list(SUPPORTED_TYPES)}."
            f" Got {media!r}.",
            field="Content-Type",
        )
    return media


def parse_request(media_type: str, body: bytes, spec: InputSpec) -> Parsed:
    """Decode a body of ``media_type`` (from :func:`parse_content_type`)."""
    try:
        if media_type == JSON:
            return _parse_json(body, spec)
        if media_type == CSV:
            return _parse_csv(body, spec)
        return _parse_parquet(body)
    except RecursionError:
        # numpy and pandas recurse over deeply nested lists too
        raise RequestError("BAD_REQUEST", "Invalid input: the data is nested too deeply.") from None


# -- JSON ----------------------------------------------------------------------


def _parse_json(body: bytes, spec: InputSpec) -> Parsed:
    try:
        doc = json.loads(body)
    except UnicodeDecodeError as exc:
        raise RequestError(
            "BAD_REQUEST", f"Invalid input: the body is not UTF-8 ({exc.reason})."
        ) from None
    except json.JSONDecodeError as exc:
        raise RequestError(
            "BAD_REQUEST",
            "Invalid input. Ensure that input is a valid JSON formatted string."
            f" Error: {exc.msg} at line {exc.lineno} column {exc.colno}.",
        ) from None
    except RecursionError:
        raise RequestError("BAD_REQUEST", "Invalid input: the JSON is nested too deeply.") from None
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else f"a JSON {type(doc).__name__}"
        raise RequestError(
            "BAD_REQUEST",
            "Invalid input. The body must be a JSON object with exactly one of the input"
            f" fields {list(INPUT_KEYS)}. Received {kind}.",
        )
    if any(k in doc for k in _LLM_KEYS) and not any(k in doc for k in INPUT_KEYS):
        return _parse_unified(doc, spec)
    found = [k for k in INPUT_KEYS if k in doc]
    if len(found) != 1:
        raise RequestError(
            "BAD_REQUEST",
            f"The input must be a JSON dictionary with exactly one of the input fields"
            f" {list(INPUT_KEYS)}. Received dictionary with input fields: {sorted(doc)}."
            + _PROTOCOL_NOTE,
            field=",".join(found) or None,
        )
    key = found[0]
    params = _params(doc.get("params"))
    value = doc[key]
    rows: int | None
    if spec.from_type_hints:
        if key != "inputs":
            raise RequestError(
                "BAD_REQUEST",
                "This model's signature comes from type hints: send the data under 'inputs'.",
                field=key,
            )
        return Parsed(value, params, None)
    if key == "dataframe_split":
        data, rows = _dataframe_split(value, spec)
    elif key == "dataframe_records":
        data, rows = _dataframe_records(value)
    elif key == "instances":
        data, rows = _instances(value, spec)
    else:
        data, rows = _inputs(value, spec)
    return Parsed(data, params, rows)


def _params(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestError(
            "BAD_REQUEST",
            f"'params' must be a JSON object of name -> value, not {_json_kind(value)}.",
            field="params",
        )
    return value


def _parse_unified(doc: dict[str, Any], spec: InputSpec) -> Parsed:
    names = set(spec.param_names)
    data = {k: v for k, v in doc.items() if k not in names}
    params = {k: v for k, v in doc.items() if k in names} or None
    return Parsed(data, params, None, unwrapped=True)


def _dataframe_split(value: Any, spec: InputSpec) -> tuple[Any, int]:
    if not isinstance(value, dict) or "data" not in value or not set(value) <= _SPLIT_KEYS:
        got = sorted(value) if isinstance(value, dict) else _json_kind(value)
        raise RequestError(
            "BAD_REQUEST",
            "Dataframe split format must have 'data' field and optionally 'columns' and"
            f" 'index' fields. Got {got}.",
            field="dataframe_split",
        )
    data = value["data"]
    columns = value.get("columns")
    index = value.get("index")
    if not isinstance(data, list):
        raise RequestError(
            "BAD_REQUEST",
            f"'dataframe_split.data' must be a list of rows, not {_json_kind(data)}.",
            field="dataframe_split.data",
        )
    if columns is not None and not isinstance(columns, list):
        raise RequestError(
            "BAD_REQUEST",
            f"'dataframe_split.columns' must be a list of names, not {_json_kind(columns)}.",
            field="dataframe_split.columns",
        )
    if spec.single_tensor and _all_rows_of_numbers(data):
        # An unnamed tensor signature takes a plain array: skip the DataFrame entirely.
        return np.asarray(data), len(data)
    if index is None and _all_rows_of_floats(data, columns):
        # Every value a JSON float: one float64 block is exactly what pandas would infer.
        if spec.column_index is not None and columns == list(spec.names):
            columns = spec.column_index
        return pd.DataFrame(np.asarray(data, dtype=np.float64), columns=columns), len(data)
    try:
        frame = pd.DataFrame(data=data, columns=columns, index=index)
    except (ValueError, TypeError) as exc:
        raise RequestError(
            "BAD_REQUEST",
            f"'dataframe_split' does not describe a table: {_short(exc)}",
            field="dataframe_split",
        ) from None
    return frame, len(frame)


def _dataframe_records(value: Any) -> tuple[Any, int]:
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        raise RequestError(
            "BAD_REQUEST",
            "'dataframe_records' must be a list of records (JSON objects of column -> value),"
            f" not {_json_kind(value)}.",
            field="dataframe_records",
        )
    try:
        frame = pd.DataFrame(value)
    except (ValueError, TypeError) as exc:
        raise RequestError(
            "BAD_REQUEST",
            f"'dataframe_records' is not a table: {_short(exc)}",
            field="dataframe_records",
        ) from None
    return frame, len(frame)


def _instances(value: Any, spec: InputSpec) -> tuple[Any, int | None]:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        if not all(isinstance(r, dict) for r in value):
            raise RequestError(
                "BAD_REQUEST",
                "'instances' mixes objects and other values; send a list of objects"
                " (one per row) or a list of values.",
                field="instances",
            )
        columns: dict[str, list[Any]] = {}
        for row in value:
            for col, v in row.items():
                columns.setdefault(col, []).append(v)
        lengths = {c: len(v) for c, v in columns.items()}
        if len(set(lengths.values())) > 1:
            short = sorted(c for c, n in lengths.items() if n < len(value))
            raise RequestError(
                "BAD_REQUEST",
                "The length of values for each input/column name are not the same:"
                f" {short} missing from some instances.",
                field="instances",
            )
        return {c: _array(v, f"instances.{c}") for c, v in columns.items()}, len(value)
    return _inputs(value, spec, key="instances")


def _inputs(value: Any, spec: InputSpec, key: str = "inputs") -> tuple[Any, int | None]:
    if isinstance(value, dict):
        if spec.kind != "none" and not spec.names:
            raise RequestError(
                "BAD_REQUEST",
                "This model's signature is one unnamed input: send a single n-dimensional"
                f" array or a single value under '{key}', not an object of named inputs.",
                field=key,
            )
        return {k: _array(v, f"{key}.{k}") for k, v in value.items()}, None
    if isinstance(value, list):
        if value and all(isinstance(x, dict) for x in value):
            return value, len(value)
        if spec.kind == COLUMNS and len(spec.names) == 1:
            return {spec.names[0]: _array(value, key)}, len(value)
        arr = _array(value, key)
        return arr, (len(arr) if isinstance(arr, np.ndarray) and arr.ndim else None)
    return value, None


def _array(value: Any, where: str) -> Any:
    """A JSON value as numpy would read it, without choosing a type for it."""
    if not isinstance(value, list):
        return value
    try:
        arr = np.asarray(value)
    except ValueError:
        # ragged nesting: keep the list, the model (or its signature) decides
        return value
    if arr.dtype.kind == "U":
        # strings stay Python strings, as pandas keeps them
        return arr.astype(object)
    return arr


def _all_rows_of_floats(data: list[Any], columns: Any) -> bool:
    if not data or (columns is not None and not columns):
        return False
    width = len(columns) if columns is not None else None
    for row in data:
        if type(row) is not list or (width is not None and len(row) != width):
            return False
        for v in row:
            if type(v) is not float:
                return False
        if width is None:
            width = len(row)
    return width is not None and width > 0


def _all_rows_of_numbers(data: list[Any]) -> bool:
    if not data:
        return False
    width = None
    for row in data:
        if type(row) is not list or (width is not None and len(row) != width):
            return False
        width = len(row)
        for v in row:
            if type(v) is not float and type(v) is not int:
                return False
    return bool(width)


# -- CSV and Parquet -----------------------------------------------------------


def _parse_csv(body: bytes, spec: InputSpec) -> Parsed:
    # Text columns are read as text (not guessed as numbers); every other column is
    # read as pandas reads it and checked by the same rules as any other input.
    dtype = dict.fromkeys(spec.text_columns, str) or None
    try:
        frame = pd.read_csv(io.BytesIO(body), dtype=dtype, encoding="utf-8")
    except UnicodeDecodeError:
        raise RequestError("BAD_REQUEST", "Invalid input: the CSV body is not UTF-8.") from None
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise RequestError(
            "BAD_REQUEST", f"Failed to parse input as a Pandas DataFrame: {_short(exc)}"
        ) from None
    return Parsed(frame, None, len(frame))


def _parse_parquet(body: bytes) -> Parsed:
    try:
        frame = pd.read_parquet(io.BytesIO(body))
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise RequestError(
            "BAD_REQUEST", f"Failed to read the body as Parquet: {type(exc).__name__}"
        ) from None
    return Parsed(frame, None, len(frame))


# -- responses -----------------------------------------------------------------


def render_predictions(predictions: Any, *, unwrapped: bool = False) -> bytes:
    """``{"predictions": ...}`` as MLflow writes it (DataFrames as records)."""
    if isinstance(predictions, np.ndarray) and predictions.dtype.kind in "iufb":
        inner = _dumps(predictions.tolist())
    else:
        inner = _dumps(_jsonable(predictions))
    if unwrapped:
        return inner.encode()
    return b'{"predictions": ' + inner.encode() + b"}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, pd.Series):
        name = value.name if value.name is not None else 0
        return value.to_frame(name=name).to_dict(orient="records")
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, pd.DataFrame | pd.Series):
        return _jsonable(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):  # pragma: no cover - json handles floats
        return None
    raise TypeError(f"predictions of type {type(value).__name__} cannot be written as JSON")


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
