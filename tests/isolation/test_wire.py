"""Values across the pipe to a model process: lossless, no pickles."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from modelyard.isolation import _wire


def _round_trip(value: object) -> object:
    kind, extra, payload = _wire.encode(value)
    buf = io.BytesIO()
    _wire.send(buf, {"kind": kind, "extra": extra}, payload)
    buf.seek(0)
    message = _wire.receive(buf)
    assert message is not None
    header, body = message
    assert _wire.receive(buf) is None  # clean end of stream
    return _wire.decode(header["kind"], header["extra"], body)


def test_frames_series_and_tables() -> None:
    frame = pd.DataFrame({"x": [0.1, 0.2], "s": ["a", None], 3: [1, 2]})
    got = _round_trip(frame)
    assert isinstance(got, pd.DataFrame)
    assert list(got.columns) == ["x", "s", "3"]
    assert got["x"].tolist() == [0.1, 0.2]
    assert got["s"].tolist()[0] == "a"
    series = _round_trip(pd.Series([1.5, 2.5], name="p"))
    assert isinstance(series, pd.Series)
    assert (series.name, series.tolist()) == ("p", [1.5, 2.5])
    unnamed = _round_trip(pd.Series(["a", "b"]))
    assert isinstance(unnamed, pd.Series)
    assert unnamed.name is None
    table = _round_trip(pa.table({"a": [1, 2]}))
    assert isinstance(table, pd.DataFrame)
    assert table["a"].tolist() == [1, 2]


def test_arrays_keep_shape_and_dtype() -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = _round_trip(arr)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, arr)
    labels = _round_trip(np.array(["setosa", "virginica"], dtype=object))
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == object
    assert labels.tolist() == ["setosa", "virginica"]
    grid = _round_trip(np.array([["a", "b"], ["c", "d"]], dtype=object))
    assert np.asarray(grid).shape == (2, 2)
    assert _round_trip(np.array([1, 2])).tolist() == [1, 2]  # type: ignore[attr-defined]


def test_named_tensors_keep_their_own_shapes() -> None:
    value = {"image": np.zeros((2, 3, 3), dtype=np.uint8), "scale": np.array([0.5, 2.0])}
    got = _round_trip(value)
    assert isinstance(got, dict)
    assert list(got) == ["image", "scale"]
    assert got["image"].shape == (2, 3, 3)
    assert got["image"].dtype == np.uint8
    np.testing.assert_array_equal(got["scale"], [0.5, 2.0])


@pytest.mark.parametrize("value", [["a", "b"], [{"q": 1, "r": [1.5]}], "text", 3, None])
def test_plain_python_values_stay_plain(value: object) -> None:
    assert _round_trip(value) == value


def test_a_list_json_cannot_say_goes_as_an_array() -> None:
    got = _round_trip([np.float32(1.5), np.float32(2.5)])
    assert isinstance(got, np.ndarray)
    assert got.tolist() == [1.5, 2.5]


def test_a_cut_message_is_an_error() -> None:
    buf = io.BytesIO()
    _wire.send(buf, {"op": "x"}, b"0123456789")
    cut = io.BytesIO(buf.getvalue()[:-3])
    with pytest.raises(EOFError):
        _wire.receive(cut)


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame(np.arange(6.0).reshape(3, 2), columns=["a", "b"]),
        pd.DataFrame(
            {
                "i": np.array([1, 2, 3], dtype=np.int32),
                "f": np.array([0.5, np.nan, 2.0], dtype=np.float32),
                "b": [True, False, True],
                "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            }
        ),
        pd.DataFrame({"x": np.array([], dtype=np.float64)}),
    ],
    ids=["one-dtype", "mixed", "empty"],
)
def test_numeric_frames_travel_as_raw_columns(frame: pd.DataFrame) -> None:
    kind, _, _ = _wire.encode(frame)
    assert kind == "columns"
    got = _round_trip(frame)
    assert isinstance(got, pd.DataFrame)
    pd.testing.assert_frame_equal(got, frame)
    # a model may change its input in place, as it can locally
    for name in got.columns:
        got[name] = got[name].where(got[name].isna(), got[name])
    if len(got):
        got.iloc[0, 0] = got.iloc[1, 0]
        assert got.iloc[0, 0] == got.iloc[1, 0]
