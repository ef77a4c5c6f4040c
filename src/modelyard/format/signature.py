"""Model signatures: what a model takes (inputs, params) and returns (outputs).

In ``MLmodel`` a signature is stored as MLflow stores it::

    signature:
      inputs: '[{"type": "double", "name": "x", "required": true}]'
      outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
      params: null

each value a JSON *string* (or null). :meth:`Signature.from_mlmodel` and
:meth:`Signature.to_mlmodel` read and write that block; a block MLflow wrote
is written back identically. Inputs and params are enforced on every
``Model.predict`` (:mod:`modelyard.format.enforce`); outputs are recorded only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.format.schema import ParamSchema, ParamSpec, Schema, Spec

__all__ = ["Signature", "infer_signature"]


@dataclass(frozen=True, init=False)
class Signature:
    """Inputs, outputs and params a model declares (at least one of them).

    >>> Signature(inputs=[ColSpec("double", "x")], params=[ParamSpec("k", "long", 3)])
    Signature(inputs=['x': double], params=['k': long = 3])
    """

    inputs: Schema | None
    outputs: Schema | None
    params: ParamSchema | None

    def __init__(
        self,
        inputs: Schema | Iterable[Spec] | None = None,
        outputs: Schema | Iterable[Spec] | None = None,
        params: ParamSchema | Iterable[ParamSpec] | None = None,
    ) -> None:
        if inputs is None and outputs is None and params is None:
            raise ValueError("a signature needs inputs, outputs or params")
        object.__setattr__(self, "inputs", _schema(inputs))
        object.__setattr__(self, "outputs", _schema(outputs))
        if params is not None and not isinstance(params, ParamSchema):
            params = ParamSchema(params)
        object.__setattr__(self, "params", params)

    @classmethod
    def from_mlmodel(cls, block: Mapping[str, Any]) -> Signature:
        """Parse the ``signature`` block of MLmodel; ``ValueError`` names what is wrong."""
        if not isinstance(block, Mapping):
            raise ValueError(f"the signature must be a mapping, not {type(block).__name__}")
        parts: dict[str, Any] = {}
        for key, parse in (
            ("inputs", Schema.from_json),
            ("outputs", Schema.from_json),
            ("params", ParamSchema.from_json),
        ):
            raw = block.get(key)
            if not raw:
                continue
            try:
                parts[key] = parse(raw)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"signature {key}: {exc}") from None
        if not parts:
            raise ValueError("the signature declares no inputs, outputs or params")
        return cls(**parts)

    def to_mlmodel(self) -> dict[str, str | None]:
        """The ``signature`` block for MLmodel: each part a JSON string or ``None``."""
        return {
            "inputs": self.inputs.to_json() if self.inputs is not None else None,
            "outputs": self.outputs.to_json() if self.outputs is not None else None,
            "params": self.params.to_json() if self.params is not None else None,
        }

    # MLflow's names for the same two operations.
    from_dict = from_mlmodel
    to_dict = to_mlmodel

    def __repr__(self) -> str:
        parts = [
            (k, str(v))
            for k in ("inputs", "outputs", "params")
            if (v := getattr(self, k)) is not None
        ]
        one_line = ", ".join(f"{k}={v}" for k, v in parts)
        if "\n" not in one_line and len(one_line) <= 88:
            return f"Signature({one_line})"
        body = "".join(f"  {k}={v.replace(chr(10), chr(10) + '  ')},\n" for k, v in parts)
        return f"Signature(\n{body})"


def _schema(value: Schema | Iterable[Spec] | None) -> Schema | None:
    if value is None or isinstance(value, Schema):
        return value
    return Schema(value)


def infer_signature(model_input: Any, model_output: Any = None, params: Any = None) -> Signature:
    """Infer a signature from example data, outputs and params.

    ``model_input`` / ``model_output``: a DataFrame, Series, numpy array, dict of
    arrays or of values, list of dicts (records), list of values, or a scalar.
    ``params``: a dict whose values become the params' defaults.

    >>> infer_signature(X.head(), model.predict(X.head()), params={"k": 3})  # doctest: +SKIP
    """
    from modelyard.format._infer import infer_params, infer_schema

    return Signature(
        infer_schema(model_input) if model_input is not None else None,
        infer_schema(model_output) if model_output is not None else None,
        infer_params(params) if params else None,
    )
