"""What batch scoring reads from a signature: named input columns and output names.

Only names and declared types; checking data against them is the model's own
schema enforcement (``Model.predict``).
"""

from __future__ import annotations

from typing import Any


def _field(spec: Any, key: str) -> Any:
    if isinstance(spec, dict) or hasattr(spec, "get"):
        return spec.get(key)
    return getattr(spec, key, None)


def input_columns(signature: Any) -> list[tuple[str, str]]:
    """``(name, type)`` of each named, non-tensor input column; ``[]`` when there are none."""
    specs = getattr(signature, "inputs", None) if signature is not None else None
    out = []
    for spec in specs or ():
        name, kind = _field(spec, "name"), _field(spec, "type")
        if name is not None and kind != "tensor":
            out.append((str(name), str(kind)))
    return out


def output_names(signature: Any) -> list[str]:
    """Names of the declared outputs, in order (``[]`` when unnamed or undeclared)."""
    specs = getattr(signature, "outputs", None) if signature is not None else None
    names = [_field(s, "name") for s in specs or ()]
    return [str(n) for n in names] if names and all(n is not None for n in names) else []
