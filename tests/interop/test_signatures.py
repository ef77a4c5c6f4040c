"""Signatures written by real MLflow read back equal, and are written back identically.

The same data builders run in MLflow's venv and here (``DATA`` is executed in
both), so inference can be compared too: our ``infer_signature`` must produce
MLflow's exact JSON except where we deliberately differ (tested below).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import modelyard
from modelyard import SchemaError, Signature, infer_signature
from modelyard.format.schema import Array, Object

pytestmark = pytest.mark.interop

# Deterministic example data; run as-is by both interpreters.
DATA = '''
import datetime as dt
import numpy as np
import pandas as pd

def inference_cases():
    """name -> (model_input, model_output, params) for infer_signature."""
    every_dtype = pd.DataFrame({
        "b": np.array([True, False]),
        "i8": np.array([1, 2], dtype="int8"),
        "i16": np.array([1, 2], dtype="int16"),
        "i32": np.array([1, 2], dtype="int32"),
        "i64": np.array([1, 2], dtype="int64"),
        "u8": np.array([1, 2], dtype="uint8"),
        "u32": np.array([1, 2], dtype="uint32"),
        "f16": np.array([0.5, 1.0], dtype="float16"),
        "f32": np.array([0.5, 1.0], dtype="float32"),
        "f64": np.array([0.5, 1.0]),
        "s": ["a", "b"],
        "so": pd.Series(["a", "b"], dtype=object),
        "by": [b"a", b"b"],
        "ts": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        "ts_s": np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[s]"),
        "Int64": pd.Series([1, 2], dtype="Int64"),
        "boolean": pd.Series([True, False], dtype="boolean"),
        "Float64": pd.Series([0.5, 1.5], dtype="Float64"),
    })
    optional = pd.DataFrame({
        "f": [0.5, np.nan],
        "s": ["a", None],
        "Int64": pd.Series([1, None], dtype="Int64"),
        "d": [dt.datetime(2024, 1, 1), None],
    })
    nested = pd.DataFrame({
        "tokens": [["a", "b"], ["c"]],
        "scores": [[0.5], []],
        "obj": [{"a": 1, "b": "x"}, {"a": 2}],
        "nested": [[[1, 2]], [[3]]],
    })
    return {
        "every dtype": (every_dtype, None, None),
        "optional columns": (optional, None, None),
        "nested columns": (nested, None, None),
        "series": (pd.Series([0.5, 1.5], name="x"), None, None),
        "ndarray": (np.zeros((3, 4), dtype="float32"), np.zeros(3, dtype="int64"), None),
        "image tensor": (np.zeros((2, 28, 28, 3), dtype="uint8"), None, None),
        "string tensor": (np.array(["a", "bc"]), None, None),
        "dict of arrays": (
            {"a": np.zeros((2, 3)), "b": np.array([1, 2], dtype="int32")}, None, None
        ),
        "dict of values": (
            {"q": "what?", "k": 3, "tags": ["x", "y"], "opts": {"t": 0.5}}, None, None
        ),
        "records": ([{"a": 1, "b": "x"}, {"a": 2}, {"a": 3, "b": None}], None, None),
        "list of strings": (["a", "b"], None, None),
        "scalar": ("hello", None, None),
        "outputs as frame": (
            pd.DataFrame({"x": [1.0]}), pd.DataFrame({"label": ["a"], "p": [0.5]}), None
        ),
        "params": (
            pd.DataFrame({"x": [1.0]}),
            None,
            {
                "temperature": 0.5,
                "k": 3,
                "flag": True,
                "name": "abc",
                "stop": ["a", "b"],
                "weights": [0.5, 1.5],
                "when": dt.datetime(2024, 1, 2, 3, 4, 5),
                "day": dt.date(2024, 1, 2),
                "config": {"depth": 2, "mode": "fast"},
            },
        ),
    }

def differing_cases():
    """Where our inference deliberately differs from MLflow's."""
    return {
        "object ints with None": pd.DataFrame({"o": pd.Series([1, None], dtype=object)}),
        "uint64": pd.DataFrame({"u": np.array([1, 2], dtype="uint64")}),
        "positional columns": pd.DataFrame({0: [1.0], 1: [2.0]}),
    }
'''

# By hand with MLflow's types: what inference never produces.
HANDMADE = """
import datetime as dt
import numpy as np
from mlflow.models import ModelSignature
from mlflow.types.schema import (
    AnyType, Array, ColSpec, DataType, Map, Object, ParamSchema, ParamSpec, Property, Schema,
    TensorSpec,
)

def handmade():
    return {
        "optional nested": ModelSignature(Schema([
            ColSpec(DataType.string, "q"),
            ColSpec(Array(DataType.double), "v", required=False),
            ColSpec(Map(DataType.long), "counts", required=False),
            ColSpec(AnyType(), "extra", required=False),
            ColSpec(Object([Property("z", DataType.boolean, False),
                            Property("a", Array(Object([Property("k", DataType.string)])))]),
                    "deep"),
            ColSpec(Map(Array(DataType.float)), "m"),
        ])),
        "unnamed columns": ModelSignature(Schema([ColSpec(DataType.double), ColSpec("long")])),
        "named tensors": ModelSignature(
            Schema([TensorSpec(np.dtype("float32"), (-1, 4), "x"),
                    TensorSpec(np.dtype("int64"), (-1,), "mask")]),
            Schema([TensorSpec(np.dtype("float64"), (-1, 2))]),
        ),
        "params by hand": ModelSignature(
            Schema([ColSpec("string", "text")]),
            params=ParamSchema([
                ParamSpec("max_tokens", DataType.long, 16),
                ParamSpec("temperature", DataType.float, 0.7),
                ParamSpec("top_p", DataType.double, 1),
                ParamSpec("stop", DataType.string, ["\\n"], (-1,)),
                ParamSpec("suffix", DataType.string, None),
                ParamSpec("seeds", DataType.integer, [1, 2], (-1,)),
                ParamSpec("start", DataType.datetime, dt.datetime(2024, 5, 6, 7, 8, 9)),
                ParamSpec("opts", Object([Property("a", DataType.long)]), {"a": 1}),
            ]),
        ),
    }
"""

MLFLOW_SCRIPT = f"""
import json, sys, warnings
warnings.simplefilter("ignore")
from mlflow.models import infer_signature
{DATA}
{HANDMADE}
out = {{}}
for name, (x, y, p) in inference_cases().items():
    out["infer: " + name] = infer_signature(x, y, p).to_dict()
for name, sig in handmade().items():
    out["hand: " + name] = sig.to_dict()
for name, x in differing_cases().items():
    out["differs: " + name] = infer_signature(x).to_dict()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def mlflow_blocks(mlflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every case's ``signature`` block, as MLflow's ``to_dict()`` writes it (one run)."""
    tmp = tmp_path_factory.mktemp("signatures")
    script = tmp / "signatures.py"
    script.write_text(MLFLOW_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", GIT_PYTHON_REFRESH="quiet")
    proc = subprocess.run(
        [str(mlflow_python), str(script)],
        capture_output=True,
        text=True,
        cwd=tmp,
        env=env,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_mlflow_signature_reads_back_and_writes_identically(mlflow_blocks: Any) -> None:
    same = {k: v for k, v in mlflow_blocks.items() if not k.startswith("differs: ")}
    assert len(same) == 18
    for name, block in same.items():
        sig = Signature.from_mlmodel(block)
        assert sig.to_mlmodel() == block, name
        assert Signature.from_mlmodel(sig.to_mlmodel()) == sig, name


def test_our_inference_matches_mlflows(mlflow_blocks: Any) -> None:
    scope: dict[str, Any] = {}
    exec(DATA, scope)
    for name, (x, y, p) in scope["inference_cases"]().items():
        ours = infer_signature(x, y, p).to_mlmodel()
        assert ours == mlflow_blocks[f"infer: {name}"], name


def test_where_our_inference_differs_on_purpose(mlflow_blocks: Any) -> None:
    scope: dict[str, Any] = {}
    exec(DATA, scope)
    cases = scope["differing_cases"]()

    def both(name: str) -> tuple[list[str], list[str]]:
        theirs = Signature.from_mlmodel(mlflow_blocks[f"differs: {name}"]).inputs
        ours = infer_signature(cases[name]).inputs
        assert theirs is not None
        assert ours is not None
        return [str(s) for s in theirs], [str(s) for s in ours]

    # Python ints with a None: MLflow goes through floats; we keep the integer type.
    assert both("object ints with None") == (["'o': double (optional)"], ["'o': long (optional)"])
    # uint64 that fits: MLflow gives up (any); we say long, and enforcement checks the range.
    assert both("uint64") == (["any"], ["'u': long"])
    # Columns 0..n-1: MLflow names them 0, 1 (JSON ints); we make them positional.
    theirs, ours = both("positional columns")
    assert theirs == ["'0': double", "'1': double"]
    assert ours == ["double", "double"]


def test_parsed_types_are_the_typed_specs(mlflow_blocks: Any) -> None:
    sig = Signature.from_mlmodel(mlflow_blocks["hand: optional nested"])
    assert sig.inputs is not None
    deep = sig.inputs.inputs[4]
    assert isinstance(deep.type, Object)
    assert [p.name for p in deep.type.properties] == ["a", "z"]
    assert isinstance(deep.type.properties[0].type, Array)
    params = Signature.from_mlmodel(mlflow_blocks["hand: params by hand"]).params
    assert params is not None
    assert params.defaults()["top_p"] == 1.0
    assert params.defaults()["stop"] == ["\n"]
    assert params.defaults()["suffix"] is None


def test_mlflow_saved_model_enforces_our_rules(run_mlflow: Any, tmp_path: Path) -> None:
    """A sklearn model saved by MLflow with a signature: ints for doubles work here."""
    run_mlflow(
        f"""
        import warnings
        warnings.simplefilter("ignore")
        import mlflow.sklearn
        from mlflow.models import infer_signature
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
        X, y = load_iris(return_X_y=True, as_frame=True)
        model = LogisticRegression(max_iter=1000).fit(X, y)
        mlflow.sklearn.save_model(model, {str(tmp_path / "iris")!r},
                                  signature=infer_signature(X, model.predict(X)))
        print("{{}}")
        """
    )
    model = modelyard.load_model(tmp_path / "iris")
    assert model.input_schema is not None
    names = list(model.input_schema.names)
    X = pd.DataFrame([[5, 3, 1, 0], [6, 3, 4, 1], [7, 3, 6, 2]], columns=names)
    # MLflow's own pyfunc rejects int64 for double columns in-process; we convert losslessly.
    expected = model.unwrap().predict(X.astype("float64"))
    assert (model.predict(X) == expected).all()
    reordered = X[list(reversed(names))].astype("float32")
    assert (model.predict(reordered) == expected).all()
    with pytest.raises(SchemaError, match="never converted") as info:
        model.predict(X.astype(str))
    assert info.value.column == names[0]
