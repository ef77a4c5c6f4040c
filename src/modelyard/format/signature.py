"""Model signatures as MLflow encodes them in ``MLmodel``.

``signature: {inputs: '<json>', outputs: '<json>', params: '<json>'}`` where
each value is a JSON *string* of a list of specs (or null).

(First cut: specs are kept as parsed JSON. Typed column/tensor specs,
inference from data and enforcement come with the schema work.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Spec = Mapping[str, Any]


@dataclass(frozen=True)
class Signature:
    """Inputs, outputs and params a model declares."""

    inputs: tuple[Spec, ...] | None = None
    outputs: tuple[Spec, ...] | None = None
    params: tuple[Spec, ...] | None = None

    @classmethod
    def from_mlmodel(cls, block: Mapping[str, Any]) -> Signature:
        """Parse the ``signature`` block of MLmodel."""

        def parse(key: str) -> tuple[Spec, ...] | None:
            raw = block.get(key)
            if raw is None:
                return None
            value = json.loads(raw) if isinstance(raw, str) else raw
            return tuple(value)

        return cls(parse("inputs"), parse("outputs"), parse("params"))

    def to_mlmodel(self) -> dict[str, str | None]:
        """The ``signature`` block for MLmodel (JSON strings)."""

        def dump(specs: tuple[Spec, ...] | None) -> str | None:
            return None if specs is None else json.dumps([dict(s) for s in specs])

        return {
            "inputs": dump(self.inputs),
            "outputs": dump(self.outputs),
            "params": dump(self.params),
        }


def infer_signature(model_input: Any, model_output: Any = None, params: Any = None) -> Signature:
    """Infer a signature from example data (DataFrames and numpy arrays for now)."""
    return Signature(
        _infer(model_input), _infer(model_output) if model_output is not None else None
    )


_NUMPY_TO_TYPE = {"b": "boolean", "U": "string", "S": "binary", "M": "datetime", "O": "string"}


def _dtype_type(dtype: Any) -> str:
    kind = dtype.kind
    if kind in "iu":
        return "long" if dtype.itemsize >= 8 or (kind == "u" and dtype.itemsize >= 4) else "integer"
    if kind == "f":
        return "double" if dtype.itemsize >= 8 else "float"
    return _NUMPY_TO_TYPE.get(kind, "string")


def _infer(data: Any) -> tuple[Spec, ...] | None:
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        return tuple(
            {
                "type": _dtype_type(data[c].dtype),
                "name": str(c),
                "required": not data[c].isna().any(),
            }
            for c in data.columns
        )
    if isinstance(data, np.ndarray):
        shape = [-1, *data.shape[1:]]
        return ({"type": "tensor", "tensor-spec": {"dtype": str(data.dtype), "shape": shape}},)
    return None
