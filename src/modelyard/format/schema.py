"""Typed, frozen schema specs, encoded exactly as MLflow encodes them.

A :class:`Schema` is a list of column specs (:class:`ColSpec`: a name, a type,
required or optional) or of tensor specs (:class:`TensorSpec`: a numpy dtype
and a shape, ``-1`` for a free dimension). Column types are the primitive
:class:`DataType` values and the nested :class:`Array`, :class:`Object`,
:class:`Map`, :class:`AnyType` (and Spark ML's vector). A :class:`ParamSchema`
lists the inference-time params (:class:`ParamSpec`: type, default, shape).

``to_json()`` / ``from_json()`` read and write MLflow's JSON, key for key, so a
signature MLflow wrote is written back as the same string.

>>> Schema([ColSpec("double", "x"), ColSpec(Array("string"), "tags", required=False)])
Schema(['x': double, 'tags': array<string> (optional)])
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from modelyard.format._convert import Mismatch, convert_value

__all__ = [
    "AnyType",
    "Array",
    "ColSpec",
    "ColType",
    "DataType",
    "Map",
    "Object",
    "ParamSchema",
    "ParamSpec",
    "Property",
    "Schema",
    "SparkMLVector",
    "TensorSpec",
]


class DataType(str, Enum):
    """The primitive column types (MLflow's names)."""

    boolean = "boolean"
    integer = "integer"  # int32
    long = "long"  # int64
    float = "float"  # float32
    double = "double"  # float64
    string = "string"
    binary = "binary"
    datetime = "datetime"

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"DataType.{self.value}"

    def _convert(self, value: Any, required: bool) -> Any:
        return convert_value(value, self.value, required)


@dataclass(frozen=True, init=False)
class Array:
    """A list of values of one type: ``Array("string")``, ``Array(Array("double"))``."""

    items: ColType

    def __init__(self, items: ColType | str) -> None:
        object.__setattr__(self, "items", _as_type(items))

    def __str__(self) -> str:
        return f"array<{self.items}>"

    def __repr__(self) -> str:
        return f"Array({self.items})"

    def _convert(self, value: Any, required: bool) -> Any:
        if value is None or (isinstance(value, (list, tuple)) and not value):
            if value is None and required and not isinstance(self.items, AnyType):
                raise Mismatch("None", "a list is required")
            return value
        if type(value).__module__ == "numpy" and getattr(value, "ndim", 0) >= 1:
            import numpy as np

            return np.asarray(_convert_items(self.items, list(value), required))
        if not isinstance(value, (list, tuple)):
            raise Mismatch(type(value).__name__, "expected a list")
        return _convert_items(self.items, value, required)


def _convert_items(items: ColType, values: Sequence[Any], required: bool) -> list[Any]:
    out = []
    for i, v in enumerate(values):
        try:
            out.append(items._convert(v, required))
        except Mismatch as exc:
            raise exc.inside(f"[{i}]") from None
    return out


@dataclass(frozen=True, init=False)
class Property:
    """One named field of an :class:`Object`."""

    name: str
    type: ColType
    required: bool = True

    def __init__(self, name: str, type: ColType | str, required: bool = True) -> None:
        if not isinstance(name, str):
            raise TypeError(f"property names must be strings, not {_type_name(name)}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "type", _as_type(type))
        object.__setattr__(self, "required", bool(required))

    def __str__(self) -> str:
        return f"{self.name}{'' if self.required else '?'}: {self.type}"


@dataclass(frozen=True, init=False)
class Object:
    """A dict with declared fields: ``Object([Property("a", "long")])``."""

    properties: tuple[Property, ...]

    def __init__(self, properties: Iterable[Property]) -> None:
        props = tuple(sorted(properties, key=lambda p: p.name))
        if not props:
            raise ValueError("an Object needs at least one property")
        if not all(isinstance(p, Property) for p in props):
            raise TypeError("Object properties must be Property instances")
        _reject_duplicates([p.name for p in props], "property")
        object.__setattr__(self, "properties", props)

    def __str__(self) -> str:
        return "object<" + ", ".join(map(str, self.properties)) + ">"

    def __repr__(self) -> str:
        return f"Object({self})"

    def _convert(self, value: Any, required: bool) -> Any:
        if value is None:
            if required:
                raise Mismatch("None", "a dict is required")
            return None
        if not required and isinstance(value, Mapping) and not value:
            return value
        if not isinstance(value, Mapping):
            raise Mismatch(type(value).__name__, "expected a dict")
        fields = {p.name: p for p in self.properties}
        missing = [n for n, p in fields.items() if p.required and n not in value]
        if missing:
            raise Mismatch("a dict", f"missing required properties {missing}")
        unknown = sorted(str(k) for k in value if k not in fields)
        if unknown:
            raise Mismatch("a dict", f"properties not in the schema {unknown}")
        out = {}
        for k, v in value.items():
            try:
                out[k] = fields[k].type._convert(v, fields[k].required)
            except Mismatch as exc:
                raise exc.inside(f".{k}") from None
        return out


@dataclass(frozen=True, init=False)
class Map:
    """A dict with string keys and values of one type: ``Map("double")``."""

    values: ColType

    def __init__(self, values: ColType | str) -> None:
        object.__setattr__(self, "values", _as_type(values))

    def __str__(self) -> str:
        return f"map<string, {self.values}>"

    def __repr__(self) -> str:
        return f"Map({self.values})"

    def _convert(self, value: Any, required: bool) -> Any:
        if value is None:
            if required and not isinstance(self.values, AnyType):
                raise Mismatch("None", "a dict is required")
            return None
        if not isinstance(value, Mapping):
            raise Mismatch(type(value).__name__, "expected a dict")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Mismatch(type(k).__name__, "map keys must be strings")
            try:
                out[k] = self.values._convert(v, required)
            except Mismatch as exc:
                raise exc.inside(f".{k}") from None
        return out


@dataclass(frozen=True)
class AnyType:
    """Any JSON-like value, including None; never checked."""

    def __str__(self) -> str:
        return "any"

    def __repr__(self) -> str:
        return "AnyType()"

    def _convert(self, value: Any, required: bool) -> Any:
        return value


@dataclass(frozen=True)
class SparkMLVector:
    """Spark ML's vector type (a list of doubles)."""

    def __str__(self) -> str:
        return "sparkml_vector"

    def __repr__(self) -> str:
        return "SparkMLVector()"

    def _convert(self, value: Any, required: bool) -> Any:
        return Array(DataType.double)._convert(value, required)


ColType = DataType | Array | Object | Map | AnyType | SparkMLVector
_COLTYPES = (DataType, Array, Object, Map, AnyType, SparkMLVector)


def _as_type(value: ColType | str) -> ColType:
    """A column type from a type object or a name (``"double"``, ``"any"``)."""
    if isinstance(value, _COLTYPES):
        return value
    if isinstance(value, str):
        if value in DataType.__members__:
            return DataType(value)
        if value == "any":
            return AnyType()
        if value == "sparkml_vector":
            return SparkMLVector()
        raise ValueError(
            f"unknown type {value!r}; expected one of {[t.value for t in DataType]}, "
            "'any', or an Array / Object / Map"
        )
    raise TypeError(f"expected a DataType, Array, Object, Map, AnyType or str, got {value!r}")


# -- specs --------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class ColSpec:
    """One column: its type, its name (``None`` for positional columns), required or not."""

    type: ColType
    name: str | None = None
    required: bool = True

    def __init__(self, type: ColType | str, name: str | None = None, required: bool = True):
        object.__setattr__(self, "type", _as_type(type))
        object.__setattr__(self, "name", None if name is None else str(name))
        object.__setattr__(self, "required", bool(required))

    def __str__(self) -> str:
        text = str(self.type) if self.name is None else f"{self.name!r}: {self.type}"
        return text if self.required else f"{text} (optional)"

    def __repr__(self) -> str:
        return f"ColSpec({self})"


@dataclass(frozen=True, init=False)
class TensorSpec:
    """One tensor: a numpy dtype name (``"float32"``) and a shape (``-1`` is free)."""

    dtype: str
    shape: tuple[int, ...]
    name: str | None = None

    def __init__(self, dtype: Any, shape: Sequence[int], name: str | None = None) -> None:
        object.__setattr__(self, "dtype", _dtype_name(dtype))
        dims = tuple(shape)
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in dims):
            raise ValueError(f"tensor shape must hold ints >= -1 (-1 is free), got {dims}")
        object.__setattr__(self, "shape", dims)
        object.__setattr__(self, "name", None if name is None else str(name))

    @property
    def type(self) -> str:
        """Always ``"tensor"``: the spec's ``type`` as MLflow's JSON writes it."""
        return "tensor"

    @property
    def required(self) -> bool:
        """Tensors are always required."""
        return True

    def __str__(self) -> str:
        dims = ", ".join(map(str, self.shape)) + ("," if len(self.shape) == 1 else "")
        text = f"tensor<{self.dtype}>({dims})"
        return text if self.name is None else f"{self.name!r}: {text}"

    def __repr__(self) -> str:
        return f"TensorSpec({self})"


def _dtype_name(dtype: Any) -> str:
    import numpy as np

    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"not a numpy dtype: {dtype!r}") from exc
    if dt.kind in "US" and dt.itemsize:
        raise ValueError(
            f"tensor dtypes carry no size: use {'str' if dt.kind == 'U' else 'bytes'!r}, "
            f"not {dt.str!r}"
        )
    return str(dt.name)


Spec = ColSpec | TensorSpec


@dataclass(frozen=True, init=False)
class Schema:
    """The inputs (or outputs) of a model: all column specs or all tensor specs."""

    inputs: tuple[Spec, ...]

    def __init__(self, inputs: Iterable[Spec]) -> None:
        specs = tuple(inputs)
        if not specs:
            raise ValueError("a schema needs at least one column or tensor")
        if not all(isinstance(s, ColSpec) for s in specs) and not all(
            isinstance(s, TensorSpec) for s in specs
        ):
            raise ValueError("a schema holds either column specs or tensor specs, not both")
        named = [s.name is not None for s in specs]
        if any(named) and not all(named):
            raise ValueError("a schema's inputs are either all named or all unnamed")
        if not any(named):
            if isinstance(specs[0], TensorSpec) and len(specs) > 1:
                raise ValueError("several tensors need names")
            if not all(s.required for s in specs):
                raise ValueError("unnamed (positional) columns cannot be optional")
        else:
            _reject_duplicates([str(s.name) for s in specs], "input")
        object.__setattr__(self, "inputs", specs)

    @property
    def is_tensor_spec(self) -> bool:
        """Whether the schema lists tensors rather than columns."""
        return isinstance(self.inputs[0], TensorSpec)

    @property
    def has_names(self) -> bool:
        """Whether the inputs are named (else they are positional)."""
        return self.inputs[0].name is not None

    @property
    def names(self) -> tuple[str, ...]:
        """The input names, in order (empty when unnamed)."""
        return tuple(str(s.name) for s in self.inputs) if self.has_names else ()

    @property
    def required_names(self) -> tuple[str, ...]:
        """Names of the inputs that must be present."""
        return tuple(str(s.name) for s in self.inputs if s.required) if self.has_names else ()

    def __len__(self) -> int:
        return len(self.inputs)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.inputs)

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON-ready list MLflow writes."""
        return [_spec_to_json(s) for s in self.inputs]

    def to_json(self) -> str:
        """The JSON string stored in ``MLmodel`` (same bytes as MLflow's)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | Sequence[Mapping[str, Any]]) -> Schema:
        """Parse MLflow's JSON (a string or an already parsed list)."""
        items = json.loads(text) if isinstance(text, str) else text
        if not isinstance(items, list):
            raise ValueError(f"a schema is a JSON list, got {_type_name(items)}")
        return cls(_spec_from_json(item, i) for i, item in enumerate(items))

    def __str__(self) -> str:
        return _listing([str(s) for s in self.inputs])

    def __repr__(self) -> str:
        return f"Schema({self})"


# -- params ---------------------------------------------------------------------------


@dataclass(frozen=True, init=False)
class ParamSpec:
    """An inference-time param: name, type, default, and shape (``None`` or ``(-1,)``).

    The default is checked with the same rules as values sent at predict time.
    """

    name: str
    type: DataType | Object
    default: Any
    shape: tuple[int, ...] | None = None

    def __init__(
        self,
        name: str,
        type: DataType | Object | str,
        default: Any,
        shape: Sequence[int] | None = None,
    ) -> None:
        kind = _as_type(type)
        if not isinstance(kind, (DataType, Object)):
            raise ValueError(f"param {name!r}: type must be a primitive type or an Object")
        if kind is DataType.binary:
            raise ValueError(f"param {name!r}: binary params are not supported")
        dims = None if shape is None else tuple(shape)
        if dims not in (None, (-1,)):
            raise ValueError(f"param {name!r}: shape must be None or (-1,), got {dims}")
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "type", kind)
        object.__setattr__(self, "shape", dims)
        try:
            value = self.convert(default)
        except Mismatch as exc:
            raise ValueError(f"param {name!r}: invalid default: {exc}") from None
        object.__setattr__(self, "default", value)

    def convert(self, value: Any) -> Any:
        """``value`` checked against this param and widened losslessly (``Mismatch`` if not)."""
        if value is None:
            return None
        if self.shape is None:
            if isinstance(self.type, Object):
                self.type._convert(value, True)
                return value  # checked, passed as given (MLflow's behaviour)
            return self.type._convert(value, True)
        if isinstance(value, (list, tuple)) or (
            type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 1
        ):
            return _convert_items(self.type, list(value), True)
        raise Mismatch(_type_name(value), "expected a list (shape (-1,))")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict MLflow writes (key order included)."""
        out: dict[str, Any] = {
            "name": self.name,
            "default": _default_to_json(self.default),
            "shape": list(self.shape) if self.shape is not None else None,
        }
        out.update(_type_to_json(self.type))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParamSpec:
        """Parse one entry of MLflow's params JSON (``type`` or the legacy ``dtype``)."""
        if not isinstance(d, Mapping) or "name" not in d or "default" not in d:
            raise ValueError("a param spec needs 'name', 'type' and 'default'")
        kind = d.get("type") or d.get("dtype")
        if kind is None:
            raise ValueError(f"param {d['name']!r} has no type")
        parsed = _type_from_json({**d, "type": kind}, f"param {d['name']!r}")
        if not isinstance(parsed, (DataType, Object)):
            raise ValueError(f"param {d['name']!r}: unsupported type {kind!r}")
        return cls(d["name"], parsed, d["default"], d.get("shape"))

    def __str__(self) -> str:
        kind = f"{self.type}[]" if self.shape is not None else str(self.type)
        shown = _default_to_json(self.default) if self.type is DataType.datetime else self.default
        return f"{self.name!r}: {kind} = {shown!r}"

    def __repr__(self) -> str:
        return f"ParamSpec({self})"


def _default_to_json(value: Any) -> Any:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [_default_to_json(v) for v in value]
    return value


@dataclass(frozen=True, init=False)
class ParamSchema:
    """The params a model takes at inference time."""

    params: tuple[ParamSpec, ...]

    def __init__(self, params: Iterable[ParamSpec]) -> None:
        specs = tuple(params)
        if not all(isinstance(p, ParamSpec) for p in specs):
            raise TypeError("ParamSchema holds ParamSpec instances")
        _reject_duplicates([p.name for p in specs], "param")
        object.__setattr__(self, "params", specs)

    @property
    def names(self) -> tuple[str, ...]:
        """The param names, in order."""
        return tuple(p.name for p in self.params)

    def defaults(self) -> dict[str, Any]:
        """Every param's default."""
        return {p.name: p.default for p in self.params}

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(self.params)

    def to_dict(self) -> list[dict[str, Any]]:
        """The JSON-ready list MLflow writes."""
        return [p.to_dict() for p in self.params]

    def to_json(self) -> str:
        """The JSON string stored in ``MLmodel``."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str | Sequence[Mapping[str, Any]]) -> ParamSchema:
        """Parse MLflow's params JSON (a string or an already parsed list)."""
        items = json.loads(text) if isinstance(text, str) else text
        if not isinstance(items, list):
            raise ValueError(f"params are a JSON list, got {_type_name(items)}")
        return cls(ParamSpec.from_dict(item) for item in items)

    def __str__(self) -> str:
        return _listing([str(p) for p in self.params])

    def __repr__(self) -> str:
        return f"ParamSchema({self})"


# -- JSON -----------------------------------------------------------------------------


def _type_to_json(t: ColType) -> dict[str, Any]:
    if isinstance(t, DataType):
        return {"type": t.value}
    if isinstance(t, Array):
        return {"type": "array", "items": _type_to_json(t.items)}
    if isinstance(t, Object):
        return {
            "type": "object",
            "properties": {
                p.name: {**_type_to_json(p.type), "required": p.required} for p in t.properties
            },
        }
    if isinstance(t, Map):
        return {"type": "map", "values": _type_to_json(t.values)}
    if isinstance(t, SparkMLVector):
        return {"type": "sparkml_vector"}
    return {"type": "any"}


def _type_from_json(d: Any, where: str) -> ColType:
    if not isinstance(d, Mapping) or not isinstance(d.get("type"), str):
        raise ValueError(f"{where}: expected a mapping with a 'type' string")
    kind = d["type"]
    if kind == "array":
        return Array(_type_from_json(d.get("items"), f"{where} items"))
    if kind == "map":
        return Map(_type_from_json(d.get("values"), f"{where} values"))
    if kind == "object":
        props = d.get("properties")
        if not isinstance(props, Mapping) or not props:
            raise ValueError(f"{where}: an object needs a non-empty 'properties' mapping")
        return Object(
            Property(
                str(name),
                _type_from_json(p, f"{where} property {name!r}"),
                _required(p, f"{where} property {name!r}"),
            )
            for name, p in props.items()
        )
    try:
        return _as_type(kind)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _required(d: Mapping[str, Any], where: str) -> bool:
    # MLflow always writes `required`; a missing one means required (its
    # documented default), including for nested types where MLflow's reader
    # would make it None and so treat the column as optional.
    value = d.get("required", True)
    if value is None:
        return True
    if not isinstance(value, bool):
        raise ValueError(f"{where}: 'required' must be true or false")
    return value


def _spec_to_json(s: Spec) -> dict[str, Any]:
    if isinstance(s, TensorSpec):
        tensor = {"dtype": s.dtype, "shape": list(s.shape)}
        head = {} if s.name is None else {"name": s.name}
        return {**head, "type": "tensor", "tensor-spec": tensor}
    out = _type_to_json(s.type)
    if s.name is not None:
        out["name"] = s.name
    out["required"] = s.required
    return out


def _spec_from_json(d: Any, i: int) -> Spec:
    where = f"input {i}" + (f" ({d.get('name')!r})" if isinstance(d, Mapping) else "")
    if isinstance(d, Mapping) and d.get("type") == "tensor":
        t = d.get("tensor-spec")
        if not isinstance(t, Mapping) or "dtype" not in t or "shape" not in t:
            raise ValueError(f"{where}: a tensor needs 'tensor-spec' with 'dtype' and 'shape'")
        try:
            return TensorSpec(t["dtype"], t["shape"], d.get("name"))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    kind = _type_from_json(d, where)
    return ColSpec(kind, d.get("name"), _required(d, where))


# -- helpers --------------------------------------------------------------------------


def _reject_duplicates(names: Sequence[str], what: str) -> None:
    dups = sorted(n for n, count in Counter(names).items() if count > 1)
    if dups:
        raise ValueError(f"duplicate {what} names {dups}")


def _listing(items: Sequence[str]) -> str:
    one_line = "[" + ", ".join(items) + "]"
    if len(one_line) <= 88:
        return one_line
    return "[\n" + "".join(f"  {item},\n" for item in items) + "]"


def _type_name(value: Any) -> str:
    """The name of a value's type, for messages (never the value itself)."""
    return type(value).__name__
