"""What the server needs to know about a model's declared inputs, read once per load.

Read straight from the ``signature`` block of ``MLmodel`` (MLflow's on-disk
encoding), so parsing a request never walks the signature again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COLUMNS = "columns"
TENSOR = "tensor"
NONE = "none"

_STRINGISH = frozenset({"string", "binary"})


@dataclass(frozen=True)
class InputSpec:
    """The shape of a model's input, as far as request parsing cares."""

    #: ``"columns"`` (column-based schema), ``"tensor"`` (tensor specs) or ``"none"``
    kind: str = NONE
    #: column or tensor names in signature order (empty for unnamed specs)
    names: tuple[str, ...] = ()
    #: number of input specs
    width: int = 0
    #: columns declared ``string``/``binary``: CSV keeps them as text
    text_columns: tuple[str, ...] = ()
    #: declared params, with defaults
    param_names: tuple[str, ...] = ()
    #: the signature came from type hints: ``inputs`` is passed through raw
    from_type_hints: bool = False
    #: concurrent requests may be concatenated along the first axis
    batchable: bool = False
    #: raw specs, for metadata documents
    inputs: tuple[Mapping[str, Any], ...] = ()
    outputs: tuple[Mapping[str, Any], ...] = ()
    params: tuple[Mapping[str, Any], ...] = ()
    #: the column names as a ready-made pandas Index: building one per request
    #: costs more than the rest of the DataFrame
    column_index: Any = field(default=None, compare=False, repr=False)

    @property
    def single_tensor(self) -> bool:
        """One unnamed tensor: the model takes a bare ndarray."""
        return self.kind == TENSOR and self.width == 1 and not self.names

    @classmethod
    def from_signature_block(cls, block: Mapping[str, Any] | None) -> InputSpec:
        """Build from MLmodel's ``signature`` mapping (values are JSON strings)."""
        if not block:
            return cls()
        inputs = _specs(block.get("inputs"))
        outputs = _specs(block.get("outputs"))
        params = _specs(block.get("params"))
        hints = bool(
            block.get("is_signature_from_type_hint") or block.get("_is_signature_from_type_hint")
        )
        param_names = tuple(str(p["name"]) for p in params if "name" in p)
        if not inputs:
            return cls(
                param_names=param_names, from_type_hints=hints, outputs=outputs, params=params
            )
        is_tensor = inputs[0].get("type") == TENSOR
        names = tuple(str(s["name"]) for s in inputs if s.get("name") is not None)
        if len(names) != len(inputs):
            names = ()
        text = tuple(
            str(s["name"])
            for s in inputs
            if s.get("name") is not None and s.get("type") in _STRINGISH
        )
        if is_tensor:
            shapes = [s.get("tensor-spec", {}).get("shape") or [] for s in inputs]
            batchable = all(len(sh) >= 1 and sh[0] == -1 for sh in shapes)
        else:
            batchable = True
        column_index = None
        if names and not is_tensor:
            import pandas as pd

            column_index = pd.Index(list(names), dtype=object)
        return cls(
            kind=TENSOR if is_tensor else COLUMNS,
            column_index=column_index,
            names=names,
            width=len(inputs),
            text_columns=text,
            param_names=param_names,
            from_type_hints=hints,
            batchable=batchable and not hints,
            inputs=inputs,
            outputs=outputs,
            params=params,
        )


def _specs(raw: Any) -> tuple[Mapping[str, Any], ...]:
    if raw is None:
        return ()
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, Mapping))
