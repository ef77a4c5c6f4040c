"""Input examples, stored as MLflow stores them.

``input_example.json`` holds the example as JSON (a DataFrame in pandas
``split`` orient without the index; an ndarray or a dict of ndarrays as nested
lists; anything else as plain JSON) and ``serving_input_example.json`` holds
the same example as a scoring-server request body. ``saved_input_example_info``
in ``MLmodel`` says which.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from modelyard.errors import ModelFormatError

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


def load_example(model_dir: Path, info: dict[str, Any] | None) -> Any:
    """The saved input example in the form the model takes, or ``None``."""
    if not info:
        return None
    file = model_dir / str(info.get("artifact_path", EXAMPLE_FILE))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(
            f"MLmodel declares an input example but {file.name!r} is missing", path=model_dir
        ) from None
    if info.get("params"):
        data = data["inputs"]
    kind = info.get("type")
    if kind == "dataframe":
        import pandas as pd

        if isinstance(data, dict) and "data" in data:
            return pd.DataFrame(data["data"], columns=data.get("columns"))
        return pd.DataFrame(data)
    if kind == "ndarray":
        import numpy as np

        if isinstance(data, dict):
            return {k: np.asarray(v) for k, v in data.items()}
        return np.asarray(data)
    return data


def load_example_params(model_dir: Path, info: dict[str, Any] | None) -> dict[str, Any] | None:
    """Params saved with the example, if any."""
    if not info or not info.get("params"):
        return None
    data = json.loads((model_dir / str(info.get("artifact_path", EXAMPLE_FILE))).read_text())
    params = data.get("params")
    return params if isinstance(params, dict) else None


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
