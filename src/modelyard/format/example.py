"""Input examples, stored as MLflow stores them.

``input_example.json`` holds the example as JSON (a DataFrame in pandas
``split`` orient without the index; an ndarray or a dict of ndarrays as nested
lists; anything else as plain JSON) and ``serving_input_example.json`` holds
the same example as a scoring-server request body. ``saved_input_example_info``
in ``MLmodel`` says which.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import ModelFormatError

if TYPE_CHECKING:
    from modelyard.format.schema import Schema

EXAMPLE_FILE = "input_example.json"
SERVING_EXAMPLE_FILE = "serving_input_example.json"


def save_example(model_dir: Path, example: Any) -> dict[str, Any]:
    """Write the example files; return ``saved_input_example_info`` for MLmodel.

    A ``(data, params)`` tuple saves params beside the data, as MLflow does.
    """
    import numpy as np
    import pandas as pd

    params = None
    if isinstance(example, tuple) and len(example) == 2 and isinstance(example[1], dict):
        example, params = example
    info: dict[str, Any] = {"artifact_path": EXAMPLE_FILE}
    if isinstance(example, pd.Series):
        example = example.to_frame()
    if isinstance(example, pd.DataFrame):
        body: Any = _frame_to_split(example)
        serving: dict[str, Any] = {"dataframe_split": body}
        info.update(type="dataframe", pandas_orient="split" if "columns" in body else "values")
    elif isinstance(example, np.ndarray):
        body = _array_to_list(example)
        serving = {"inputs": body}
        info["type"] = "ndarray"
    elif isinstance(example, dict) and any(isinstance(v, np.ndarray) for v in example.values()):
        if not all(isinstance(v, np.ndarray) for v in example.values()):
            raise TypeError("an input example dict must hold only numpy arrays or none at all")
        body = {k: _array_to_list(v) for k, v in example.items()}
        serving = {"inputs": body}
        info["type"] = "ndarray"
    elif isinstance(example, (dict, list, str, int, float, bool)):
        body = example
        serving = {"inputs": example}
        info["type"] = "json_object"
    else:
        raise TypeError(
            "input_example must be a pandas DataFrame or Series, a numpy array, a dict of "
            f"numpy arrays, a dict, a list or a scalar; got {type(example).__name__}"
        )
    if params is not None:
        body = {"inputs": body, "params": params}
        serving["params"] = params
        info["params"] = "true"
    (model_dir / EXAMPLE_FILE).write_text(json.dumps(body, default=_jsonable), encoding="utf-8")
    (model_dir / SERVING_EXAMPLE_FILE).write_text(
        json.dumps(serving, default=_jsonable, indent=2), encoding="utf-8"
    )
    info["serving_input_path"] = SERVING_EXAMPLE_FILE
    return info


def load_example(model_dir: Path, info: Mapping[str, Any] | None) -> Any:
    """The saved input example in the form the model takes, or ``None``.

    Reads every ``type`` MLflow writes: ``dataframe``, ``ndarray`` (one array or
    a dict of them; ``null`` in a numeric array is NaN again), the sparse
    ``sparse_matrix_csr`` / ``sparse_matrix_csc``, and ``json_object``.
    """
    if not info:
        return None
    data = _read(model_dir, info)
    if info.get("params"):
        if not isinstance(data, dict) or "inputs" not in data:
            raise ModelFormatError(
                f"input example {_name(info)!r} should hold 'inputs' and 'params'",
                path=model_dir,
            )
        data = data["inputs"]
    kind = info.get("type")
    try:
        if kind == "dataframe":
            import pandas as pd

            if isinstance(data, dict) and "data" in data:
                return pd.DataFrame(data["data"], columns=data.get("columns"))
            return pd.DataFrame(data)
        if kind == "ndarray":
            if isinstance(data, dict):
                return {k: _list_to_array(v) for k, v in data.items()}
            return _list_to_array(data)
        if kind in _SPARSE:
            return _sparse(data, kind)
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelFormatError(
            f"input example {_name(info)!r} is not a valid {kind}: {type(exc).__name__}: {exc}",
            path=model_dir,
        ) from exc
    if kind is None or kind == "json_object":
        return data
    raise ModelFormatError(
        f"unknown input example type {kind!r} in MLmodel; known: "
        "dataframe, ndarray, sparse_matrix_csr, sparse_matrix_csc, json_object",
        path=model_dir,
    )


def load_typed_example(
    model_dir: Path, info: Mapping[str, Any] | None, schema: Schema | None
) -> Any:
    """:func:`load_example`, with the dtypes the signature declares, as MLflow does.

    JSON keeps no int32, float32 or datetime: a column or tensor the schema types
    is converted back when that loses nothing (a value that does not fit is left
    as read, for ``predict`` to report). Columns are neither added, dropped nor
    reordered.
    """
    example = load_example(model_dir, info)
    if example is None or schema is None:
        return example
    import numpy as np
    import pandas as pd

    from modelyard.format._convert import Mismatch, cast_array, convert_column
    from modelyard.format.schema import ColSpec, DataType, TensorSpec

    if isinstance(example, pd.DataFrame) and not schema.is_tensor_spec:
        for spec in schema.inputs:
            if not isinstance(spec, ColSpec) or spec.name not in example.columns:
                continue
            if isinstance(spec.type, DataType):
                with contextlib.suppress(Mismatch):
                    example[spec.name] = convert_column(example[spec.name], spec.type.value, False)
        return example
    if not schema.is_tensor_spec:
        return example
    specs = {s.name: s for s in schema.inputs if isinstance(s, TensorSpec)}

    def cast(value: Any, spec: TensorSpec | None) -> Any:
        if spec is None or not isinstance(value, np.ndarray):
            return value
        try:
            return cast_array(value, np.dtype(spec.dtype))
        except (Mismatch, TypeError):
            return value

    if isinstance(example, dict):
        return {k: cast(v, specs.get(k)) for k, v in example.items()}
    return cast(example, specs.get(None) if len(specs) == 1 else None)


def load_example_params(model_dir: Path, info: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Params saved with the example, if any."""
    if not info or not info.get("params"):
        return None
    data = _read(model_dir, info)
    params = data.get("params") if isinstance(data, dict) else None
    return params if isinstance(params, dict) else None


_SPARSE = {"sparse_matrix_csr": "csr_matrix", "sparse_matrix_csc": "csc_matrix"}


def _name(info: Mapping[str, Any]) -> str:
    return str(info.get("artifact_path") or EXAMPLE_FILE)


def _read(model_dir: Path, info: Mapping[str, Any]) -> Any:
    # The path comes from MLmodel, which may come from anywhere: never read
    # outside the model directory.
    rel = _name(info)
    file = (model_dir / rel).resolve()
    if not file.is_relative_to(model_dir.resolve()):
        raise ModelFormatError(
            f"saved_input_example_info.artifact_path {rel!r} points outside the model",
            path=model_dir,
        )
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(
            f"MLmodel declares an input example but {rel!r} is missing", path=model_dir
        ) from None
    except (ValueError, IsADirectoryError) as exc:
        raise ModelFormatError(f"input example {rel!r} is not valid JSON", path=model_dir) from exc


def _list_to_array(value: Any) -> Any:
    import numpy as np

    arr = np.asarray(value)
    if arr.dtype == object:
        # A float array's NaNs were written as null (JSON has no NaN).
        flat = list(arr.ravel())
        numbers = [v for v in flat if v is not None]
        if len(numbers) < len(flat) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers
        ):
            return np.array([np.nan if v is None else v for v in flat], float).reshape(arr.shape)
    return arr


def _sparse(data: Any, kind: str) -> Any:
    try:
        import scipy.sparse  # type: ignore[import-untyped]
    except ImportError as exc:
        raise TypeError("a sparse input example needs scipy, which is not installed") from exc
    matrix = getattr(scipy.sparse, _SPARSE[kind])
    return matrix((data["data"], data["indices"], data["indptr"]), shape=tuple(data["shape"]))


def _frame_to_split(df: Any) -> dict[str, Any]:
    out: dict[str, Any] = df.astype(object).where(df.notna(), None).to_dict(orient="split")
    out.pop("index", None)
    if list(df.columns) == list(range(len(df.columns))):
        out.pop("columns", None)
    return out


def _array_to_list(a: Any) -> Any:
    import numpy as np

    if a.dtype.kind == "f":
        a = np.where(np.isnan(a), None, a.astype(object))
    return a.tolist()


def _jsonable(value: Any) -> Any:
    import base64
    import datetime as dt

    import numpy as np

    if isinstance(value, np.generic):
        item = value.item()
        return None if isinstance(item, float) and math.isnan(item) else item
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"input example value of type {type(value).__name__} is not JSON-serialisable")
