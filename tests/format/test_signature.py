"""Signatures: the MLmodel block, inference from examples, and what a loaded Model shows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

import modelyard
from modelyard import (
    ColSpec,
    MalformedMLmodel,
    ParamSpec,
    PythonModel,
    Schema,
    Signature,
    TensorSpec,
    infer_signature,
)
from modelyard.format.schema import Array, Object, Property

BLOCK = {
    "inputs": '[{"type": "double", "name": "x", "required": true}]',
    "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]',
    "params": '[{"name": "k", "default": 3, "shape": null, "type": "long"}]',
}


def test_mlmodel_block_round_trip() -> None:
    sig = Signature.from_mlmodel(BLOCK)
    assert sig.inputs == Schema([ColSpec("double", "x")])
    assert sig.outputs == Schema([TensorSpec("int64", (-1,))])
    assert sig.params is not None
    assert sig.params.defaults() == {"k": 3}
    assert sig.to_mlmodel() == BLOCK
    assert sig.to_dict() == BLOCK  # MLflow's name for it
    only_inputs = Signature.from_mlmodel({"inputs": BLOCK["inputs"], "outputs": None})
    assert only_inputs.to_mlmodel() == {"inputs": BLOCK["inputs"], "outputs": None, "params": None}


def test_signature_accepts_lists_and_needs_something() -> None:
    sig = Signature(inputs=[ColSpec("double", "x")], params=[ParamSpec("k", "long", 3)])
    assert isinstance(sig.inputs, Schema)
    assert repr(sig) == "Signature(inputs=['x': double], params=['k': long = 3])"
    with pytest.raises(ValueError, match="needs inputs, outputs or params"):
        Signature()


def test_bad_block_names_the_part() -> None:
    with pytest.raises(ValueError, match="signature params: param 'k': invalid default"):
        Signature.from_mlmodel(
            {"params": '[{"name": "k", "default": "three", "shape": null, "type": "long"}]'}
        )
    with pytest.raises(ValueError, match="signature inputs"):
        Signature.from_mlmodel({"inputs": "not json"})


def test_a_model_with_a_broken_signature_does_not_load(saved_iris: Path) -> None:
    doc = yaml.safe_load((saved_iris / "MLmodel").read_text())
    doc["signature"]["inputs"] = '[{"type": "doubel", "name": "x", "required": true}]'
    (saved_iris / "MLmodel").write_text(yaml.safe_dump(doc))
    (saved_iris / "MANIFEST.sha256").unlink(missing_ok=True)
    (saved_iris / "MANIFEST.sig").unlink(missing_ok=True)
    with pytest.raises(MalformedMLmodel, match="unknown type 'doubel'") as info:
        modelyard.load_model(saved_iris)
    assert info.value.field == "signature"


# -- inference ------------------------------------------------------------------------


def test_infer_from_every_input_kind() -> None:
    def inputs(data: Any) -> list[str]:
        schema = infer_signature(data).inputs
        assert schema is not None
        return [str(s) for s in schema]

    frame = pd.DataFrame(
        {
            "i": np.array([1, 2], dtype="int32"),
            "f": [0.5, None],
            "s": ["a", "b"],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "n": pd.Series([1, None], dtype="Int64"),
            "tags": [["a"], ["b", "c"]],
        }
    )
    assert inputs(frame) == [
        "'i': integer",
        "'f': double (optional)",
        "'s': string",
        "'t': datetime",
        "'n': long (optional)",
        "'tags': array<string>",
    ]
    assert inputs(pd.Series([1.0], name="x")) == ["'x': double"]
    assert inputs(np.zeros((2, 3), dtype="float32")) == ["tensor<float32>(-1, 3)"]
    assert inputs({"a": np.zeros((2, 3)), "b": np.zeros(2, dtype="int64")}) == [
        "'a': tensor<float64>(-1, 3)",
        "'b': tensor<int64>(-1,)",
    ]
    assert inputs({"q": "hi", "opts": {"k": 1}}) == ["'q': string", "'opts': object<k: long>"]
    assert inputs([{"a": 1, "b": "x"}, {"a": 2}]) == ["'a': long", "'b': string (optional)"]
    assert inputs(["x", "y"]) == ["string"]
    assert inputs(2.5) == ["double"]
    assert inputs(pd.DataFrame(np.zeros((1, 2)))) == ["double", "double"]


def test_infer_params() -> None:
    sig = infer_signature(
        pd.DataFrame({"x": [1.0]}),
        params={
            "t": 0.5,
            "k": 3,
            "stop": ["a"],
            "when": dt.date(2024, 1, 2),
            "cfg": {"depth": 2},
        },
    )
    assert sig.params is not None
    assert [str(p) for p in sig.params] == [
        "'t': double = 0.5",
        "'k': long = 3",
        "'stop': string[] = ['a']",
        "'when': datetime = '2024-01-02'",
        "'cfg': object<depth: long> = {'depth': 2}",
    ]


def test_mixed_values_cannot_be_inferred() -> None:
    with pytest.raises(TypeError, match="different types"):
        infer_signature([{"a": 1}, {"a": "x"}])
    with pytest.raises(TypeError, match="cannot infer a schema from object"):
        infer_signature(object())
    with pytest.raises(TypeError, match="categorical"):
        infer_signature(pd.DataFrame({"c": pd.Series(["a"], dtype="category")}))


# -- saving and loading ---------------------------------------------------------------


def test_save_model_infers_inputs_and_outputs(
    tmp_path: Path, iris_model: Any, iris: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, _ = iris
    info = modelyard.save_model(iris_model, tmp_path / "m", input_example=X.head(3))
    assert info.signature is not None
    assert info.signature.outputs == Schema([TensorSpec("int64", (-1,))])
    model = modelyard.load_model(tmp_path / "m")
    assert model.signature == info.signature
    assert model.input_schema is not None
    assert model.input_schema.names == tuple(X.columns)
    assert "'sepal length (cm)': double" in repr(model)


class _NeedsContext(PythonModel):
    def load_context(self, context: Any) -> None:
        self.offset = 1

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input["x"] + self.offset + (params or {}).get("k", 0)


def test_save_model_keeps_params_and_skips_outputs_it_cannot_compute(tmp_path: Path) -> None:
    example = (pd.DataFrame({"x": [1.0, 2.0]}), {"k": 10})
    info = modelyard.save_model(_NeedsContext(), tmp_path / "m", input_example=example)
    assert info.signature is not None
    assert info.signature.outputs is None  # predict needs load_context: not run at save time
    assert info.signature.params is not None
    assert info.signature.params.defaults() == {"k": 10}
    model = modelyard.load_model(tmp_path / "m")
    assert model.predict(pd.DataFrame({"x": [1]})).tolist() == [12.0]
    assert model.predict(pd.DataFrame({"x": [1]}), params={"k": 0}).tolist() == [2.0]


def test_explicit_signature_wins(tmp_path: Path, iris_model: Any, iris: Any) -> None:
    X, _ = iris
    sig = Signature(inputs=[ColSpec("double", c) for c in X.columns])
    info = modelyard.save_model(iris_model, tmp_path / "m", signature=sig, input_example=X.head(2))
    assert info.signature == sig


def test_type_hint_signatures_are_not_enforced_on_inputs(tmp_path: Path) -> None:
    """MLflow's type-hint signatures: the model checks its own input (as in MLflow)."""

    def echo(model_input: Any) -> Any:
        return model_input

    nested = Object([Property("q", "string")])
    sig = Signature(inputs=[ColSpec(Array(nested))])
    modelyard.save_model(echo, tmp_path / "m", signature=sig)
    doc = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    doc["is_signature_from_type_hint"] = True
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(doc))
    (tmp_path / "m" / "MANIFEST.sha256").unlink(missing_ok=True)
    (tmp_path / "m" / "MANIFEST.sig").unlink(missing_ok=True)
    data = [{"q": "raw list, not a DataFrame"}]
    assert modelyard.load_model(tmp_path / "m", trust="all").predict(data) is data
