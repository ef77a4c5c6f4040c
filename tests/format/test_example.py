"""Input examples: written as MLflow writes them, read back as MLflow reads them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import ModelFormatError
from modelyard.format.example import load_example, load_example_params, save_example


def test_frame_round_trips_with_missing_values(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1.0, None], "s": ["x", None]})
    info = save_example(tmp_path, df)
    assert info["type"] == "dataframe"
    assert info["pandas_orient"] == "split"
    assert json.loads((tmp_path / "input_example.json").read_text()) == {
        "columns": ["a", "s"],
        "data": [[1.0, "x"], [None, None]],
    }
    back = load_example(tmp_path, info)
    assert list(back.columns) == ["a", "s"]
    assert np.isnan(back["a"][1])
    assert back["a"][0] == 1.0


def test_float_array_nan_comes_back_as_nan(tmp_path: Path) -> None:
    arr = np.array([[1.0, np.nan], [3.0, 4.0]])
    info = save_example(tmp_path, arr)
    back = load_example(tmp_path, info)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, arr)


def test_dict_of_arrays_and_params(tmp_path: Path) -> None:
    example = {"a": np.array([1.0, np.nan]), "b": np.array([1, 2])}
    info = save_example(tmp_path, (example, {"k": 3}))
    back = load_example(tmp_path, info)
    np.testing.assert_array_equal(back["a"], example["a"])
    np.testing.assert_array_equal(back["b"], example["b"])
    assert load_example_params(tmp_path, info) == {"k": 3}


def test_strings_with_null_stay_strings(tmp_path: Path) -> None:
    (tmp_path / "input_example.json").write_text('[["a", null], ["b", "c"]]')
    back = load_example(tmp_path, {"artifact_path": "input_example.json", "type": "ndarray"})
    assert back.dtype == object
    assert back[0, 1] is None


@pytest.mark.parametrize(
    ("kind", "cls"), [("sparse_matrix_csr", "csr_matrix"), ("sparse_matrix_csc", "csc_matrix")]
)
def test_mlflows_sparse_examples(kind: str, cls: str, tmp_path: Path) -> None:
    import scipy.sparse

    dense = np.array([[0.0, 2.0], [3.0, 0.0]])
    matrix = getattr(scipy.sparse, cls)(dense)
    body = {
        "data": matrix.data.tolist(),
        "indices": matrix.indices.tolist(),
        "indptr": matrix.indptr.tolist(),
        "shape": list(matrix.shape),
    }
    (tmp_path / "input_example.json").write_text(json.dumps(body))
    back = load_example(tmp_path, {"artifact_path": "input_example.json", "type": kind})
    assert back.format == cls[:3]
    np.testing.assert_array_equal(back.toarray(), dense)


def test_json_objects_come_back_as_written(tmp_path: Path) -> None:
    info = save_example(tmp_path, [{"a": 1, "b": "x"}])
    assert info["type"] == "json_object"
    assert load_example(tmp_path, info) == [{"a": 1, "b": "x"}]


@pytest.mark.parametrize(
    ("info", "content", "message"),
    [
        ({"artifact_path": "input_example.json", "type": "tensorish"}, "[1]", "'tensorish'"),
        ({"artifact_path": "../outside.json", "type": "json_object"}, "[1]", "outside the model"),
        ({"artifact_path": "input_example.json", "type": "ndarray"}, "[1, [2]", "not valid JSON"),
        ({"artifact_path": "missing.json", "type": "ndarray"}, "[1]", "'missing.json' is missing"),
        ({"artifact_path": "input_example.json", "type": "ndarray"}, "[[1], [2, 3]]", "ndarray"),
        (
            {"artifact_path": "input_example.json", "type": "dataframe", "params": "true"},
            "[1]",
            "'inputs' and 'params'",
        ),
        ({"artifact_path": "input_example.json", "type": "sparse_matrix_csr"}, "{}", "csr"),
    ],
)
def test_bad_examples_are_named(
    info: dict[str, str], content: str, message: str, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "input_example.json").write_text(content)
    (tmp_path / "outside.json").write_text(content)
    with pytest.raises(ModelFormatError, match=message):
        load_example(model, info)


def test_typed_example_gets_the_declared_dtypes_back(tmp_path: Path) -> None:
    from modelyard.format.example import load_typed_example
    from modelyard.format.signature import infer_signature

    df = pd.DataFrame(
        {
            "extra": ["kept", "as is"],
            "a": np.array([1, 2], dtype=np.int32),
            "b": np.array([0.5, 1.5], dtype=np.float32),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    schema = infer_signature(df[["a", "b", "t"]]).inputs
    info = save_example(tmp_path, df)
    assert load_example(tmp_path, info)["a"].dtype == np.int64  # JSON keeps no int32
    back = load_typed_example(tmp_path, info, schema)
    assert list(back.columns) == ["extra", "a", "b", "t"]  # nothing dropped or reordered
    assert back.dtypes[["a", "b"]].tolist() == [np.int32, np.float32]
    assert back["t"].dtype.kind == "M"
    pd.testing.assert_frame_equal(back[["a", "b"]], df[["a", "b"]])


def test_typed_example_leaves_what_does_not_fit(tmp_path: Path) -> None:
    from modelyard.format.example import load_typed_example
    from modelyard.format.signature import infer_signature

    schema = infer_signature(pd.DataFrame({"a": np.array([1], dtype=np.int8)})).inputs
    info = save_example(tmp_path, pd.DataFrame({"a": [1000]}))
    assert load_typed_example(tmp_path, info, schema)["a"].tolist() == [1000]


def test_typed_tensor_example(tmp_path: Path) -> None:
    from modelyard.format.example import load_typed_example
    from modelyard.format.signature import infer_signature

    arr = np.array([[0.25, 1.5]], dtype=np.float32)
    info = save_example(tmp_path, arr)
    back = load_typed_example(tmp_path, info, infer_signature(arr).inputs)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, arr)
    named = {"x": arr, "n": np.array([3], dtype=np.int16)}
    info = save_example(tmp_path, named)
    back = load_typed_example(tmp_path, info, infer_signature(named).inputs)
    assert (back["x"].dtype, back["n"].dtype) == (np.float32, np.int16)
