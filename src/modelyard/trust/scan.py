"""An opcode-level pickle scanner: every global a pickle would import, or a refusal.

The scanner runs the pickle machine without running anything: it keeps the
stack, the mark stack and the memo as CPython's unpickler does, with symbols
in place of objects, so a global reached through ``MEMOIZE``/``GET``/``DUP``
or spelled by ``STACK_GLOBAL`` from strings built anywhere in the stream is
seen exactly as the unpickler would import it (trust.md §3 B12-B16). Names
are resolved as ``find_class`` resolves them: Python 2 names mapped to
Python 3 ones while the protocol is below 3, dotted qualnames from protocol 4.

Anything the scanner cannot follow is refused, never skipped: an unknown
opcode, ``EXT1/2/4`` (the copyreg extension registry, B14), a ``STACK_GLOBAL``
whose operands are not constant strings, a missing memo key, a truncated or
malformed argument, bytes after the final ``STOP`` (a second pickle, B17-B18),
and streams that exceed the opcode or size budget (B33). It raises
:class:`~modelyard.errors.UnsafePickle` and nothing else.

It also records what the policy needs beyond names: which calls target
something that is not an imported global, and on which objects ``SETITEM(S)``
and ``APPEND(S)`` act (B20: only real dicts and lists may take them).
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.errors import UnsafePickle

#: default budgets: far above any honest model's pickle, far below a bomb's
MAX_OPCODES = 50_000_000
MAX_STACK = 5_000_000
MAX_MARKS = 100_000
MAX_NAME = 1_000  # longer module or qualnames are never importable names


@dataclass(frozen=True, order=True)
class Global:
    """One global a pickle imports: ``module`` and ``qualname`` as find_class resolves them."""

    module: str
    qualname: str

    def __str__(self) -> str:
        # module.qualname reads well; the colon keeps nested qualnames unambiguous
        return (
            f"{self.module}.{self.qualname}"
            if "." not in self.qualname
            else f"{self.module}:{self.qualname}"
        )


@dataclass(frozen=True)
class PickleScan:
    """What a pickle stream would do, as far as trust is concerned."""

    #: every global the stream imports, after name mapping
    globals: frozenset[Global]
    #: the names as written in the stream -> what find_class resolves them to
    written: dict[tuple[str, str], frozenset[Global]] = field(compare=False)
    #: globals whose instances (results of calling them) take SETITEM(S)
    mapping_targets: frozenset[Global] = frozenset()
    #: globals whose instances take APPEND(S)
    sequence_targets: frozenset[Global] = frozenset()
    #: structural findings the policy refuses unless the model is signed (offset, what)
    irregular: tuple[tuple[int, str], ...] = ()
    #: opcodes read
    opcodes: int = 0
    #: highest protocol the stream declared
    protocol: int = 0


# -- symbols on the simulated stack ---------------------------------------------


class _Sym:
    __slots__ = ()


class _Mark(_Sym):
    __slots__ = ()


class _Dict(_Sym):
    __slots__ = ()


class _List(_Sym):
    __slots__ = ()


class _Set(_Sym):
    __slots__ = ()


class _Value(_Sym):
    """A scalar, bytes, tuple, set, or anything else that is no string, global or call."""

    __slots__ = ()


class _Call(_Sym):
    """The result of calling ``callee`` (REDUCE, NEWOBJ, OBJ, INST)."""

    __slots__ = ("callee",)

    def __init__(self, callee: Global | None) -> None:
        self.callee = callee


class _GlobalSym(_Sym):
    __slots__ = ("g",)

    def __init__(self, g: Global) -> None:
        self.g = g


_DICT = _Dict()
_LIST = _List()
_SET = _Set()
_VALUE = _Value()
_NOT_A_NAME = _Value()  # a string too long to be a name: kept as a plain value

Sym = str | _Sym


# -- opcode table -----------------------------------------------------------------

# argument readers (by the kind of argument the opcode takes)
_NONE, _LINE, _U1, _U2, _I4, _U4, _U8, _F8, _LEN1, _LEN4S, _LEN4, _LEN8, _LONG1, _LONG4, _PAIR = (
    range(15)
)

_ARGS: dict[int, int] = {}
_OPS: dict[int, str] = {}


def _op(code: bytes, name: str, arg: int = _NONE) -> None:
    _OPS[code[0]] = name
    _ARGS[code[0]] = arg


for _c, _n, _a in (
    (b"I", "INT", _LINE), (b"J", "BININT", _I4), (b"K", "BININT1", _U1), (b"M", "BININT2", _U2),
    (b"L", "LONG", _LINE), (b"\x8a", "LONG1", _LONG1), (b"\x8b", "LONG4", _LONG4),
    (b"S", "STRING", _LINE), (b"T", "BINSTRING", _LEN4S), (b"U", "SHORT_BINSTRING", _LEN1),
    (b"B", "BINBYTES", _LEN4), (b"C", "SHORT_BINBYTES", _LEN1), (b"\x8e", "BINBYTES8", _LEN8),
    (b"\x96", "BYTEARRAY8", _LEN8), (b"\x97", "NEXT_BUFFER", _NONE),
    (b"\x98", "READONLY_BUFFER", _NONE), (b"N", "NONE", _NONE), (b"\x88", "NEWTRUE", _NONE),
    (b"\x89", "NEWFALSE", _NONE), (b"V", "UNICODE", _LINE), (b"\x8c", "SHORT_BINUNICODE", _LEN1),
    (b"X", "BINUNICODE", _LEN4), (b"\x8d", "BINUNICODE8", _LEN8), (b"F", "FLOAT", _LINE),
    (b"G", "BINFLOAT", _F8), (b"]", "EMPTY_LIST", _NONE), (b"a", "APPEND", _NONE),
    (b"e", "APPENDS", _NONE), (b"l", "LIST", _NONE), (b")", "EMPTY_TUPLE", _NONE),
    (b"t", "TUPLE", _NONE), (b"\x85", "TUPLE1", _NONE), (b"\x86", "TUPLE2", _NONE),
    (b"\x87", "TUPLE3", _NONE), (b"}", "EMPTY_DICT", _NONE), (b"d", "DICT", _NONE),
    (b"s", "SETITEM", _NONE), (b"u", "SETITEMS", _NONE), (b"\x8f", "EMPTY_SET", _NONE),
    (b"\x90", "ADDITEMS", _NONE), (b"\x91", "FROZENSET", _NONE), (b"0", "POP", _NONE),
    (b"2", "DUP", _NONE), (b"(", "MARK", _NONE), (b"1", "POP_MARK", _NONE),
    (b"g", "GET", _LINE), (b"h", "BINGET", _U1), (b"j", "LONG_BINGET", _U4),
    (b"p", "PUT", _LINE), (b"q", "BINPUT", _U1), (b"r", "LONG_BINPUT", _U4),
    (b"\x94", "MEMOIZE", _NONE), (b"\x82", "EXT1", _U1), (b"\x83", "EXT2", _U2),
    (b"\x84", "EXT4", _I4), (b"c", "GLOBAL", _PAIR), (b"\x93", "STACK_GLOBAL", _NONE),
    (b"R", "REDUCE", _NONE), (b"b", "BUILD", _NONE), (b"i", "INST", _PAIR),
    (b"o", "OBJ", _NONE), (b"\x81", "NEWOBJ", _NONE), (b"\x92", "NEWOBJ_EX", _NONE),
    (b"\x80", "PROTO", _U1), (b".", "STOP", _NONE), (b"\x95", "FRAME", _U8),
    (b"P", "PERSID", _LINE), (b"Q", "BINPERSID", _NONE),
):  # fmt: skip
    _op(_c, _n, _a)

_STRUCTS = {_U2: struct.Struct("<H"), _I4: struct.Struct("<i"), _U4: struct.Struct("<I"),
            _U8: struct.Struct("<Q")}  # fmt: skip
_WIDTH = {_U1: 1, _U2: 2, _I4: 4, _U4: 4, _U8: 8, _F8: 8}


class _Refuse(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def scan_bytes(
    data: bytes,
    *,
    source: Path | str = "<bytes>",
    max_opcodes: int = MAX_OPCODES,
) -> PickleScan:
    """Scan one pickle stream held in ``data``.

    The stream must be exactly one pickle: ``STOP`` must be its last byte.
    Raises :class:`UnsafePickle` (with the byte offset) for anything the
    scanner cannot follow; never any other exception.

    >>> import pickle, collections
    >>> sorted(map(str, scan_bytes(pickle.dumps(collections.OrderedDict())).globals))
    ['collections.OrderedDict']
    """
    try:
        return _Machine(data, max_opcodes).run()
    except _AtOffset as exc:
        raise UnsafePickle(source, exc.reason, offset=exc.offset) from None
    except UnsafePickle:
        raise
    except Exception as exc:  # a scanner bug must refuse, never admit (trust.md B16)
        raise UnsafePickle(source, f"the scanner failed: {type(exc).__name__}: {exc}") from None


class _AtOffset(Exception):
    def __init__(self, reason: str, offset: int) -> None:
        self.reason = reason
        self.offset = offset


class _Machine:
    def __init__(self, data: bytes, max_opcodes: int) -> None:
        self.data = data
        self.max_opcodes = max_opcodes
        self.stack: list[Sym] = []
        self.marks: list[list[Sym]] = []
        self.memo: dict[int, Sym] = {}
        self.proto = 0
        self.top_proto = 0
        self.globals: set[Global] = set()
        self.written: dict[tuple[str, str], set[Global]] = {}
        self.mapping_targets: set[Global] = set()
        self.sequence_targets: set[Global] = set()
        self.irregular: list[tuple[int, str]] = []

    # -- the loop --------------------------------------------------------------

    def run(self) -> PickleScan:
        data = self.data
        end = len(data)
        pos = 0
        count = 0
        if end == 0:
            raise _AtOffset("the file is empty, not a pickle", 0)
        while True:
            if pos >= end:
                raise _AtOffset("the stream ends before STOP (truncated or not a pickle)", pos)
            at = pos
            code = data[pos]
            pos += 1
            count += 1
            if count > self.max_opcodes:
                raise _AtOffset(f"more than {self.max_opcodes} opcodes (budget exceeded)", at)
            name = _OPS.get(code)
            if name is None:
                raise _AtOffset(f"unknown opcode {bytes([code])!r}", at)
            kind = _ARGS[code]
            try:
                arg, pos = self._arg(kind, pos, end)
                if name == "STOP":
                    self._stop()
                    if pos != end:
                        raise _AtOffset(
                            f"{end - pos} byte(s) follow the pickle's STOP "
                            "(a second pickle or junk after the payload)",
                            pos,
                        )
                    break
                self._step(name, arg, at)
            except _Refuse as exc:
                raise _AtOffset(f"{name}: {exc.reason}", at) from None
            if len(self.stack) > MAX_STACK:
                raise _AtOffset(f"the stack grows past {MAX_STACK} items (budget exceeded)", at)
        return PickleScan(
            globals=frozenset(self.globals),
            written={k: frozenset(v) for k, v in self.written.items()},
            mapping_targets=frozenset(self.mapping_targets),
            sequence_targets=frozenset(self.sequence_targets),
            irregular=tuple(self.irregular),
            opcodes=count,
            protocol=self.top_proto,
        )

    def _arg(self, kind: int, pos: int, end: int) -> tuple[Any, int]:
        data = self.data
        if kind == _NONE:
            return None, pos
        if kind in _WIDTH:
            width = _WIDTH[kind]
            if pos + width > end:
                raise _Refuse("truncated argument")
            if kind == _U1:
                return data[pos], pos + 1
            if kind == _F8:
                return None, pos + 8
            return _STRUCTS[kind].unpack_from(data, pos)[0], pos + width
        if kind == _LINE:
            nl = data.find(b"\n", pos)
            if nl < 0:
                raise _Refuse("an argument line without its newline")
            return data[pos:nl], nl + 1
        if kind == _PAIR:
            nl1 = data.find(b"\n", pos)
            nl2 = data.find(b"\n", nl1 + 1) if nl1 >= 0 else -1
            if nl2 < 0:
                raise _Refuse("a module/name pair without its newlines")
            return (data[pos:nl1], data[nl1 + 1 : nl2]), nl2 + 1
        # length-prefixed: only strings are kept, bytes are skipped without a copy
        if kind in (_LEN1, _LONG1):
            if pos + 1 > end:
                raise _Refuse("truncated length")
            n, pos = data[pos], pos + 1
        elif kind in (_LEN4, _LEN4S, _LONG4):
            if pos + 4 > end:
                raise _Refuse("truncated length")
            fmt = "<I" if kind == _LEN4 else "<i"
            n, pos = struct.unpack_from(fmt, data, pos)[0], pos + 4
            if n < 0:
                raise _Refuse("a negative length")
        else:  # _LEN8
            if pos + 8 > end:
                raise _Refuse("truncated length")
            n, pos = struct.unpack_from("<Q", data, pos)[0], pos + 8
        if pos + n > end:
            raise _Refuse(f"an argument of {n} bytes runs past the end of the stream")
        return (pos, pos + n), pos + n

    # -- the machine -------------------------------------------------------------

    def _pop(self) -> Sym:
        if not self.stack:
            raise _Refuse("the stack is empty")
        return self.stack.pop()

    def _top(self) -> Sym:
        if not self.stack:
            raise _Refuse("the stack is empty")
        return self.stack[-1]

    def _pop_mark(self) -> list[Sym]:
        if not self.marks:
            raise _Refuse("no MARK to pop to")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def _text(self, span: Any) -> Sym:
        start, stop = span
        if stop - start > MAX_NAME:
            return _NOT_A_NAME
        try:
            return self.data[start:stop].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _Refuse("a string that is not valid UTF-8") from None

    def _stop(self) -> None:
        self._pop()
        if self.marks:
            raise _Refuse("STOP inside an unclosed MARK")

    def _step(self, name: str, arg: Any, at: int) -> None:  # noqa: PLR0915
        push = self.stack.append
        if name in ("BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4", "NONE",
                    "NEWTRUE", "NEWFALSE", "FLOAT", "BINFLOAT", "EMPTY_TUPLE",
                    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"):  # fmt: skip
            push(_VALUE)
        elif name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            push(self._text(arg))
        elif name in ("SHORT_BINSTRING", "BINSTRING"):
            start, stop = arg
            # Python 2 str: decoded by the unpickler (ASCII by default); anything
            # non-ASCII read as latin-1 here can never match an allowed name.
            raw = self.data[start:stop]
            push(raw.decode("latin-1") if len(raw) <= MAX_NAME else _NOT_A_NAME)
        elif name == "STRING":
            push(self._quoted(arg))
        elif name == "UNICODE":
            raw = arg
            try:
                text = codecs.raw_unicode_escape_decode(raw)[0]
            except UnicodeDecodeError:
                raise _Refuse("an undecodable string") from None
            push(text if len(text) <= MAX_NAME else _NOT_A_NAME)
        elif name == "EMPTY_LIST":
            push(_LIST)
        elif name == "EMPTY_DICT":
            push(_DICT)
        elif name == "EMPTY_SET":
            push(_SET)
        elif name == "MARK":
            if len(self.marks) >= MAX_MARKS:
                raise _Refuse(f"MARKs nest deeper than {MAX_MARKS} (budget exceeded)")
            self.marks.append(self.stack)
            self.stack = []
        elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
            key = self._int_arg(arg) if name == "PUT" else arg
            if not isinstance(key, int) or key < 0:
                raise _Refuse("a negative memo key")
            self.memo[key] = self._top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self._top()
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            key = self._int_arg(arg) if name == "GET" else arg
            try:
                push(self.memo[key])
            except KeyError:
                raise _Refuse(f"memo key {key} was never stored") from None
        elif name == "TUPLE1":
            self._pop()
            push(_VALUE)
        elif name == "TUPLE2":
            self._pop()
            self._pop()
            push(_VALUE)
        elif name == "TUPLE3":
            self._pop()
            self._pop()
            self._pop()
            push(_VALUE)
        elif name in ("TUPLE", "FROZENSET"):
            self._pop_mark()
            self.stack.append(_VALUE)
        elif name == "LIST":
            self._pop_mark()
            self.stack.append(_LIST)
        elif name == "DICT":
            items = self._pop_mark()
            if len(items) % 2:
                raise _Refuse("an odd number of items for a dict")
            self.stack.append(_DICT)
        elif name == "APPEND":
            self._pop()
            self._container(self._top(), _List, self.sequence_targets, at, name)
        elif name == "APPENDS":
            self._pop_mark()
            self._container(self._top(), _List, self.sequence_targets, at, name)
        elif name == "SETITEM":
            self._pop()
            self._pop()
            self._container(self._top(), _Dict, self.mapping_targets, at, name)
        elif name == "SETITEMS":
            items = self._pop_mark()
            if len(items) % 2:
                raise _Refuse("an odd number of items for SETITEMS")
            self._container(self._top(), _Dict, self.mapping_targets, at, name)
        elif name == "ADDITEMS":
            self._pop_mark()
            # CPython calls ``.add`` on anything that is no set: only real sets may take it
            if not isinstance(self._top(), _Set):
                self.irregular.append((at, "ADDITEMS on something that is no set"))
        elif name == "POP":
            if self.stack:
                self.stack.pop()
            else:
                self._pop_mark()
        elif name == "POP_MARK":
            self._pop_mark()
        elif name == "DUP":
            push(self._top())
        elif name == "GLOBAL":
            module, qual = arg
            push(self._global(self._name(module), self._name(qual)))
        elif name == "STACK_GLOBAL":
            qual = self._pop()
            module = self._pop()
            if not isinstance(module, str) or not isinstance(qual, str):
                raise _Refuse("its module and name are not constant strings")
            push(self._global(module, qual))
        elif name == "INST":
            module, qual = arg
            g = self._global(self._name(module), self._name(qual))
            self._pop_mark()
            self.stack.append(_Call(g.g))
        elif name == "OBJ":
            items = self._pop_mark()
            if not items:
                raise _Refuse("OBJ without a class")
            self.stack.append(self._call(items[0], at, name))
        elif name in {"REDUCE", "NEWOBJ"}:
            self._pop()
            push(self._call(self._pop(), at, name))
        elif name == "NEWOBJ_EX":
            self._pop()
            self._pop()
            push(self._call(self._pop(), at, name))
        elif name == "BUILD":
            self._pop()
            target = self._top()
            if not isinstance(target, _Call):
                self.irregular.append((at, "BUILD on something that is no constructed object"))
        elif name == "PERSID":
            push(_VALUE)
        elif name == "BINPERSID":
            self._pop()
            push(_VALUE)
        elif name == "NEXT_BUFFER":
            push(_VALUE)
        elif name == "READONLY_BUFFER":
            self._top()
        elif name == "PROTO":
            if not isinstance(arg, int) or arg > 5:
                raise _Refuse(f"unsupported protocol {arg}")
            self.proto = arg
            self.top_proto = max(self.top_proto, arg)
        elif name == "FRAME":
            pass  # framing only groups bytes; the opcodes inside are read as usual
        elif name in ("EXT1", "EXT2", "EXT4"):
            raise _Refuse("the copyreg extension registry is never followed")
        else:  # pragma: no cover - every opcode of _OPS is handled above
            raise _Refuse("not handled")

    # -- helpers -------------------------------------------------------------------

    def _container(
        self, target: Sym, literal: type[_Sym], into: set[Global], at: int, op: str
    ) -> None:
        if isinstance(target, literal):
            return
        if isinstance(target, _Call) and target.callee is not None:
            into.add(target.callee)
            return
        self.irregular.append((at, f"{op} on something that is no {literal.__name__[1:].lower()}"))

    def _call(self, callee: Sym, at: int, op: str) -> _Call:
        if isinstance(callee, _GlobalSym):
            return _Call(callee.g)
        self.irregular.append((at, f"{op} calls something that is no imported global"))
        return _Call(None)

    def _global(self, module: str, qual: str) -> _GlobalSym:
        if not module or not qual or len(module) > MAX_NAME or len(qual) > MAX_NAME:
            raise _Refuse("an empty or oversized module or name")
        written = (module, qual)
        if self.proto < 3:
            import _compat_pickle

            if written in _compat_pickle.NAME_MAPPING:
                module, qual = _compat_pickle.NAME_MAPPING[written]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        if "." in qual and self.proto < 4:
            # find_class below protocol 4 looks the name up whole and fails
            raise _Refuse(f"a dotted name {qual!r} below protocol 4")
        if any(not part for part in qual.split(".")) or "<locals>" in qual.split("."):
            raise _Refuse(f"a name {qual!r} find_class refuses")
        g = Global(module, qual)
        self.globals.add(g)
        self.written.setdefault(written, set()).add(g)
        return _GlobalSym(g)

    def _name(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Refuse("a module or name that is not valid UTF-8") from None

    def _int_arg(self, raw: Any) -> int:
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise _Refuse("a memo key that is not a number") from None

    def _quoted(self, raw: bytes) -> Sym:
        if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
            raise _Refuse("a STRING argument that is not quoted")
        body = raw[1:-1]
        if len(body) > MAX_NAME * 4:
            return _NOT_A_NAME
        try:
            return codecs.escape_decode(body)[0].decode("latin-1")
        except (ValueError, UnicodeDecodeError):
            raise _Refuse("an undecodable STRING argument") from None


def names(globals_: Iterable[Global]) -> list[str]:
    """Sorted ``module.qualname`` strings for display."""
    return sorted(str(g) for g in globals_)
