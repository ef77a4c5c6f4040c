"""The scanner against CPython's unpickler: random opcode streams and honest pickles.

Random streams mix valid opcodes (with random arguments), pushes of module
and name candidates, memo operations, global imports, calls and stray bytes.
Whatever the stream, ``scan_bytes`` raises :class:`UnsafePickle` or returns a
scan; and when it returns one, CPython's unpickler (with a recording
``find_class`` that hands back inert stand-ins, never the real global) asks
for no name the scan did not list.

Honest pickles of real objects, protocols 0 to 5, must be seen exactly: the
names the scan lists are the names CPython imports, and the built-in policy
admits them.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import decimal
import io
import pickle
import struct
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.errors import UnsafePickle
from modelyard.trust.policy import TrustPolicy
from modelyard.trust.scan import scan_bytes
from tests.trust._payloads import Recorder

NAMES = [
    "os",
    "system",
    "builtins",
    "eval",
    "collections",
    "OrderedDict",
    "posix",
    "getattr",
    "OrderedDict.fromkeys",
    "__builtin__",
    "copy_reg",
    "_reconstructor",
    "",
]


def _len1(op: bytes, b: bytes) -> bytes:
    return op + bytes([len(b)]) + b


def _len4(op: bytes, b: bytes) -> bytes:
    return op + struct.pack("<I", len(b)) + b


name = st.sampled_from(NAMES)
key = st.integers(min_value=0, max_value=5)

# one opcode (with its argument) per draw
fragment = st.one_of(
    name.map(lambda n: _len1(b"\x8c", n.encode())),  # SHORT_BINUNICODE
    name.map(lambda n: _len4(b"X", n.encode())),  # BINUNICODE
    name.map(lambda n: _len4(b"T", n.encode())),  # BINSTRING
    name.map(lambda n: _len1(b"U", n.encode())),  # SHORT_BINSTRING
    name.map(lambda n: b"S" + repr(n).encode() + b"\n"),  # STRING
    name.map(lambda n: b"V" + n.encode() + b"\n"),  # UNICODE
    st.tuples(name, name).map(lambda mn: b"c" + mn[0].encode() + b"\n" + mn[1].encode() + b"\n"),
    st.tuples(name, name).map(lambda mn: b"i" + mn[0].encode() + b"\n" + mn[1].encode() + b"\n"),
    key.map(lambda k: b"q" + bytes([k])),  # BINPUT
    key.map(lambda k: b"h" + bytes([k])),  # BINGET
    key.map(lambda k: b"j" + struct.pack("<I", k)),  # LONG_BINGET
    key.map(lambda k: b"p%d\n" % k),  # PUT
    key.map(lambda k: b"g%d\n" % k),  # GET
    st.integers(0, 255).map(lambda n: b"K" + bytes([n])),  # BININT1
    st.integers(0, 6).map(lambda n: b"\x80" + bytes([n])),  # PROTO
    st.integers(0, 255).map(lambda n: b"\x82" + bytes([n])),  # EXT1
    st.sampled_from(
        [
            b"\x94",  # MEMOIZE
            b"\x93",  # STACK_GLOBAL
            b"R",  # REDUCE
            b"(",  # MARK
            b"2",  # DUP
            b"0",  # POP
            b"1",  # POP_MARK
            b"t",  # TUPLE
            b"\x85",
            b"\x86",
            b"\x87",
            b")",
            b"]",
            b"}",
            b"\x8f",  # EMPTY_SET
            b"a",
            b"e",
            b"s",
            b"u",
            b"\x90",  # ADDITEMS
            b"\x91",  # FROZENSET
            b"l",
            b"d",
            b"b",  # BUILD
            b"\x81",  # NEWOBJ
            b"\x92",  # NEWOBJ_EX
            b"o",  # OBJ
            b"N",
            b"\x88",
            b"Q",  # BINPERSID
            b".",  # STOP (mid-stream)
        ]
    ),
    st.binary(min_size=1, max_size=4),
)

stream = st.tuples(
    st.sampled_from([b"", b"\x80\x02", b"\x80\x04", b"\x80\x05"]),
    st.lists(fragment, max_size=40),
    st.sampled_from([b".", b".", b".", b""]),
).map(lambda t: t[0] + b"".join(t[1]) + t[2])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream)
def test_random_streams_never_surprise_the_scanner(data: bytes) -> None:
    try:
        scan = scan_bytes(data)
    except UnsafePickle:
        return  # a refusal is always an acceptable answer; any other exception fails here
    seen = Recorder(data)  # find_class records and returns an inert stand-in
    with contextlib.suppress(Exception):
        seen.load()
    missed = set(seen.seen) - set(scan.written)
    assert not missed, f"CPython imports {missed}, the scan listed {sorted(scan.written)}"


# -- honest pickles ---------------------------------------------------------------------


class _RealRecorder(pickle.Unpickler):
    """Records, then resolves for real: only ever used on pickles of our own objects."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.seen: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        self.seen.add((module, name))
        return super().find_class(module, name)


def _honest() -> dict[str, Any]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    return {
        "logistic": LogisticRegression().fit(X, y),
        "forest": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
        "tree": DecisionTreeRegressor(max_depth=2).fit(X, X[:, 1]),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "onehot": OneHotEncoder().fit(np.array([["a"], ["b"]], dtype=object)),
        "frame": pd.DataFrame(
            {
                "i": [1, 2, 3],
                "f": [0.5, 1.5, np.nan],
                "c": pd.Categorical(["a", "b", "a"]),
                "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
                "s": ["x", "y", "z"],
            }
        ),
        "series": pd.Series([1.0, 2.0], index=pd.Index(["a", "b"], name="k")),
        "float array": rng.normal(size=(4, 2)),
        "int array": np.arange(6, dtype=np.int32).reshape(2, 3),
        "bool array": np.array([True, False]),
        "scalar": np.float64(1.5),
        "ordered dict": collections.OrderedDict([("a", 1), ("b", [1, 2])]),
        "deque": collections.deque([1, 2, 3], maxlen=5),
        "counter": collections.Counter("abca"),
        "defaultdict": collections.defaultdict(list, {"a": [1]}),
        "containers": {"set": {1, 2}, "frozenset": frozenset({3}), "bytes": b"\x00\x01", "t": (1,)},
        "datetime": [
            datetime.datetime(2024, 1, 1),
            datetime.date(2024, 1, 2),
            decimal.Decimal("1.5"),
        ],
        "random state": np.random.RandomState(0),
        "generator": np.random.default_rng(1),
    }


HONEST = _honest()


@pytest.mark.parametrize("protocol", range(6))
@pytest.mark.parametrize("what", sorted(HONEST))
def test_honest_pickles_are_seen_exactly_and_admitted(what: str, protocol: int) -> None:
    for data in (
        pickle.dumps(HONEST[what], protocol=protocol),
        cloudpickle.dumps(HONEST[what], protocol=protocol),
    ):
        scan = scan_bytes(data)
        rec = _RealRecorder(data)
        rec.load()
        assert set(scan.written) == rec.seen
        TrustPolicy().admit(scan, f"{what}.pkl")


def test_python2_names_are_listed_as_written_and_judged_as_mapped() -> None:
    data = b"\x80\x02c__builtin__\nset\n]\x85R."
    scan = scan_bytes(data)
    assert set(scan.written) == {("__builtin__", "set")}
    assert {str(g) for g in scan.globals} == {"builtins.set"}
    TrustPolicy().admit(scan, "py2.pkl")
