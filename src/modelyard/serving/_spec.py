"""What the server needs to know about a model's declared inputs, read once per load.

Derived from the model's typed :class:`~modelyard.format.signature.Signature`
(parsed once when the model loads), so parsing a request never walks the
signature again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.format.signature import Signature

COLUMNS = "columns"
TENSOR = "tensor"
NONE = "none"


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
    def from_signature(
        cls, signature: Signature | None, *, from_type_hints: bool = False
    ) -> InputSpec:
        """Build from a model's parsed signature (``Model.signature``).

        ``from_type_hints``: the signature was inferred from ``predict``'s type
        hints, so ``inputs`` is passed through raw and never batched.
        """
        from modelyard.format.schema import ColSpec, DataType, TensorSpec

        if signature is None:
            return cls(from_type_hints=from_type_hints)
        outputs = tuple(signature.outputs.to_dict()) if signature.outputs is not None else ()
        params = tuple(signature.params.to_dict()) if signature.params is not None else ()
        param_names = signature.params.names if signature.params is not None else ()
        schema = signature.inputs
        if schema is None:
            return cls(
                param_names=param_names,
                from_type_hints=from_type_hints,
                outputs=outputs,
                params=params,
            )
        is_tensor = schema.is_tensor_spec
        names = schema.names
        text = tuple(
            str(s.name)
            for s in schema
            if isinstance(s, ColSpec)
            and s.name is not None
            and s.type in (DataType.string, DataType.binary)
        )
        if is_tensor:
            batchable = all(
                isinstance(s, TensorSpec) and len(s.shape) >= 1 and s.shape[0] == -1 for s in schema
            )
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
            width=len(schema),
            text_columns=text,
            param_names=param_names,
            from_type_hints=from_type_hints,
            batchable=batchable and not from_type_hints,
            inputs=tuple(schema.to_dict()),
            outputs=outputs,
            params=params,
        )
