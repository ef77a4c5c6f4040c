"""Search filters and orderings: MLflow's SQL-like syntax, parsed once, checked by field.

::

    params.alpha = '0.5' AND metrics.rmse < 0.8 AND tags.team LIKE 'fr%'
    name LIKE 'fraud%' AND tags.`owner id` = 'ana'
    run_id IN ('a1b2', 'c3d4')

Conditions are joined with ``AND``. Strings are single- or double-quoted;
keys with spaces or dots are back-quoted. Each search declares its fields
(:class:`Fields`); a filter naming an unknown field, comparing a number with a
string, or using an operator the field's type does not take is an
:class:`InvalidFilter` that names the token and its position. Stores turn the
parsed :class:`Condition`\\ s into queries; nothing here knows SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from modelyard.errors import InvalidFilter

__all__ = [
    "Condition",
    "Fields",
    "OrderKey",
    "parse_filter",
    "parse_order_by",
]

Entity = Literal["attribute", "param", "metric", "tag"]
Value = str | float | tuple[str | float, ...]

_PREFIXES: dict[str, Entity] = {
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "metric": "metric",
    "metrics": "metric",
    "tag": "tag",
    "tags": "tag",
}
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE", "IN", "NOT IN"})
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"})

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<backtick>`[^`]*`)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),.])
  | (?P<word>[A-Za-z_][\w\-/:]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Condition:
    """One comparison: ``<entity>.<key> <op> <value>``."""

    entity: Entity
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class OrderKey:
    """One ``order_by`` term."""

    entity: Entity
    key: str
    descending: bool = False


@dataclass(frozen=True)
class Fields:
    """What a search can filter and order on.

    ``attributes`` maps attribute names (and their aliases) to ``"string"`` or
    ``"number"``; ``entities`` lists which of params/metrics/tags exist.
    """

    attributes: Mapping[str, Literal["string", "number"]]
    entities: frozenset[Entity] = field(default_factory=lambda: frozenset({"attribute"}))

    def type_of(self, entity: Entity, key: str) -> Literal["string", "number"] | None:
        """The field's type, or ``None`` when the search has no such field."""
        if entity == "attribute":
            return self.attributes.get(key)
        if entity not in self.entities:
            return None
        return "number" if entity == "metric" else "string"


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InvalidFilter(text, f"unexpected character {text[pos]!r}", position=pos)
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, fields: Fields) -> None:
        self.text = text
        self.fields = fields
        self.toks = _tokens(text)
        self.i = 0

    def error(self, reason: str, tok: _Tok | None = None) -> InvalidFilter:
        pos = tok.pos if tok is not None else len(self.text)
        return InvalidFilter(self.text, reason, position=pos)

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self, what: str) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(f"expected {what}, found the end")
        self.i += 1
        return tok

    def word_is(self, tok: _Tok | None, *words: str) -> bool:
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def field(self) -> tuple[Entity, str, _Tok]:
        first = self.next("a field name")
        if first.kind == "backtick":
            return "attribute", first.text[1:-1], first
        if first.kind != "word":
            raise self.error(f"expected a field name, found {first.text!r}", first)
        dot = self.peek()
        if dot is not None and dot.kind == "punct" and dot.text == ".":
            prefix = first.text.lower()
            entity = _PREFIXES.get(prefix)
            if entity is None:
                known = "params., metrics., tags., attributes."
                raise self.error(f"unknown prefix {first.text!r} (use {known})", first)
            self.i += 1
            key_tok = self.next(f"a key after {first.text}.")
            if key_tok.kind == "backtick":
                key = key_tok.text[1:-1]
            elif key_tok.kind == "string":
                key = _unquote(key_tok.text)
            elif key_tok.kind in ("word", "number"):
                key = key_tok.text
                # Dotted keys (params.a.b) are allowed unquoted, as in MLflow.
                while (p := self.peek()) is not None and p.kind == "punct" and p.text == ".":
                    self.i += 1
                    key += "." + self.next("the rest of the key").text
            else:
                raise self.error(f"expected a key after {first.text}., found {key_tok.text!r}")
            if not key:
                raise self.error("empty key", key_tok)
            return entity, key, first
        return "attribute", first.text, first

    def op(self) -> str:
        tok = self.next("an operator")
        if tok.kind == "op":
            return "!=" if tok.text == "<>" else tok.text
        if self.word_is(tok, "LIKE", "ILIKE", "IN"):
            return tok.text.upper()
        if self.word_is(tok, "NOT"):
            nxt = self.next("IN after NOT")
            if self.word_is(nxt, "IN"):
                return "NOT IN"
            raise self.error(f"expected IN after NOT, found {nxt.text!r}", nxt)
        raise self.error(f"expected an operator, found {tok.text!r}", tok)

    def scalar(self) -> str | float:
        tok = self.next("a value")
        if tok.kind == "string":
            return _unquote(tok.text)
        if tok.kind == "number":
            return float(tok.text)
        raise self.error(f"expected a quoted string or a number, found {tok.text!r}", tok)

    def value(self, op: str) -> Value:
        if op in ("IN", "NOT IN"):
            open_ = self.next("'('")
            if open_.text != "(":
                raise self.error(f"expected '(' after {op}, found {open_.text!r}", open_)
            items = [self.scalar()]
            while (tok := self.next("',' or ')'")).text == ",":
                items.append(self.scalar())
            if tok.text != ")":
                raise self.error(f"expected ',' or ')', found {tok.text!r}", tok)
            return tuple(items)
        return self.scalar()

    def condition(self) -> Condition:
        entity, key, tok = self.field()
        kind = self.fields.type_of(entity, key)
        if kind is None:
            raise self.error(f"unknown field {_describe(entity, key)}{self._known()}", tok)
        op = self.op()
        ops = _STRING_OPS if kind == "string" else _NUMBER_OPS
        if op not in ops:
            raise self.error(
                f"{_describe(entity, key)} is a {kind}; it takes {', '.join(sorted(ops))}, "
                f"not {op}",
                tok,
            )
        value = self.value(op)
        for item in value if isinstance(value, tuple) else (value,):
            if kind == "string" and not isinstance(item, str):
                raise self.error(f"{_describe(entity, key)} is compared with a quoted string", tok)
            if kind == "number" and not isinstance(item, float):
                raise self.error(f"{_describe(entity, key)} is compared with a number", tok)
        return Condition(entity, key, op, value)

    def _known(self) -> str:
        names = sorted(self.fields.attributes)
        extra = [f"{e}s.<key>" for e in sorted(self.fields.entities) if e != "attribute"]
        return f" (known: {', '.join(names + extra)})"

    def parse(self) -> list[Condition]:
        conds = [self.condition()]
        while (tok := self.peek()) is not None:
            if not self.word_is(tok, "AND"):
                reason = "OR is not supported" if self.word_is(tok, "OR") else "expected AND"
                raise self.error(f"{reason}, found {tok.text!r}", tok)
            self.i += 1
            conds.append(self.condition())
        return conds


def parse_filter(text: str | None, fields: Fields) -> list[Condition]:
    """The conditions of ``text`` (``None`` or blank: no condition).

    >>> parse_filter("metrics.rmse < 0.8", RUN_FIELDS)  # doctest: +SKIP
    [Condition(entity='metric', key='rmse', op='<', value=0.8)]
    """
    if text is None or not text.strip():
        return []
    return _Parser(text, fields).parse()


def parse_order_by(terms: Sequence[str] | None, fields: Fields) -> list[OrderKey]:
    """``["metrics.rmse DESC", "name"]`` as :class:`OrderKey`\\ s, fields checked."""
    out = []
    for term in terms or ():
        parser = _Parser(term, fields)
        entity, key, tok = parser.field()
        if fields.type_of(entity, key) is None:
            raise parser.error(f"cannot order by {_describe(entity, key)}{parser._known()}", tok)
        descending = False
        nxt = parser.peek()
        if nxt is not None:
            if not parser.word_is(nxt, "ASC", "DESC"):
                raise parser.error(f"expected ASC or DESC, found {nxt.text!r}", nxt)
            descending = nxt.text.upper() == "DESC"
            parser.i += 1
        if (extra := parser.peek()) is not None:
            raise parser.error(f"unexpected {extra.text!r}", extra)
        out.append(OrderKey(entity, key, descending))
    return out


def _unquote(text: str) -> str:
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


def _describe(entity: Entity, key: str) -> str:
    return key if entity == "attribute" else f"{entity}s.{key}"
