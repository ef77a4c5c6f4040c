"""python_model / function flavors: pickles written by MLflow load without MLflow.

MLflow is not installed here (the interop suite runs the real thing). A
child process rebuilds, in a throwaway ``mlflow`` package that exists only in
that process, the shapes MLflow 3 pickles: a user class defined in
``__main__`` deriving from ``mlflow.pyfunc.model.PythonModel``, its
``predict`` wrapped by MLflow's type-hint validator (a closure over
``FuncInfo`` calling ``_validate_model_input``), the cached ``_TypeHints``,
and ``_FunctionPythonModel`` holding a ``ModelSignature``. The pickles are then
loaded here, where no ``mlflow`` module exists.
"""

from __future__ import annotations

import lzma
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pytest
import yaml

import modelyard
from modelyard.errors import CorruptModelFile, UntrustedModel
from modelyard.flavors.function import FunctionModel
from modelyard.format.content import MANIFEST_FILE, SIGNATURE_FILE

_WRITER = textwrap.dedent(
    '''
    import functools, lzma, sys, types
    from pathlib import Path
    from typing import Any, NamedTuple

    import cloudpickle

    def module(name):
        mod = sys.modules[name] = types.ModuleType(name)
        return mod

    def put(mod, obj):
        obj.__module__ = mod.__name__
        obj.__qualname__ = obj.__name__
        setattr(mod, obj.__name__, obj)
        return obj

    for name in ("mlflow", "mlflow.models", "mlflow.pyfunc", "mlflow.pyfunc.utils"):
        module(name)
    model_mod = module("mlflow.pyfunc.model")
    sig_mod = module("mlflow.models.signature")
    dv_mod = module("mlflow.pyfunc.utils.data_validation")
    exc_mod = module("mlflow.exceptions")
    schema_mod = module("mlflow.types.schema")
    tracking_mod = module("mlflow.tracking")

    class PythonModel:
        def load_context(self, context):
            pass

    class _TypeHints:
        def __init__(self, input_=None, output=None):
            self.input = input_
            self.output = output

    class FuncInfo(NamedTuple):
        input_type_hint: Any
        input_param_name: str

    class MlflowException(Exception):
        pass

    def _validate_model_input(args, kwargs, index, hint, name):
        raise AssertionError("MLflow's validator must never run in modelyard")

    class Schema:
        def __init__(self, cols):
            self.inputs = cols

    class ModelSignature:
        def __init__(self, inputs):
            self.inputs = inputs

    class MlflowClient:
        pass

    for mod, obj in [
        (model_mod, PythonModel), (sig_mod, _TypeHints), (sig_mod, ModelSignature),
        (dv_mod, FuncInfo), (dv_mod, _validate_model_input), (exc_mod, MlflowException),
        (schema_mod, Schema), (tracking_mod, MlflowClient),
    ]:
        put(mod, obj)

    # The validator's globals live in MLflow's module, as in MLflow.
    dv_mod._validate_model_input = _validate_model_input
    dv_mod.MlflowException = MlflowException
    src = """
    def _wrap(func, func_info):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if func_info is not None:
                try:
                    args, kwargs = _validate_model_input(args, kwargs, 1, func_info.input_type_hint,
                                                         func_info.input_param_name)
                except Exception as e:
                    raise MlflowException(str(e))
            return func(*args, **kwargs)
        wrapper._is_pyfunc = True
        return wrapper
    """
    dv_mod.functools = functools
    exec(src, dv_mod.__dict__)
    _wrap = dv_mod._wrap

    class _FunctionPythonModel(PythonModel):
        def __init__(self, func, signature=None):
            self.signature = signature
            self.func = _wrap(func, None)

        def predict(self, model_input, params=None):
            return self.func(model_input)

    put(model_mod, _FunctionPythonModel)

    def init_subclass(cls):
        hint = cls.__dict__["predict"].__annotations__.get("model_input")
        info = FuncInfo(hint, "model_input") if hint else None
        cls.predict = _wrap(cls.__dict__["predict"], info)
        return cls

    @init_subclass
    class WithContext(PythonModel):
        def load_context(self, context):
            self.offset = context.model_config["offset"]

        def predict(self, context, model_input, params=None):
            scale = (params or {}).get("scale", 1)
            return [v * scale + self.offset for v in model_input]

    @init_subclass
    class Hinted(PythonModel):
        def load_context(self, context):
            self.offset = context.model_config["offset"]

        def predict(self, context, model_input: list[float], params=None) -> list[float]:
            scale = (params or {}).get("scale", 1)
            return [v * scale + self.offset for v in model_input]

    @init_subclass
    class NoContext(PythonModel):
        def predict(self, model_input: list[float], params=None):
            return [v * 2 for v in model_input]

    def add_one(model_input):
        return model_input["x"] + 1

    out = Path(sys.argv[1])
    for name, obj in {
        "with_context": WithContext(),
        "hinted": Hinted(),
        "no_context": NoContext(),
        "function": _FunctionPythonModel(add_one, signature=ModelSignature(Schema(["x"]))),
    }.items():
        obj._predict_type_hints = _TypeHints(list[float], None)
        (out / f"{name}.pkl").write_bytes(cloudpickle.dumps(obj))
    holds = NoContext()
    holds.schema = Schema(["x"])
    (out / "holds_schema.pkl").write_bytes(cloudpickle.dumps(holds))
    client = NoContext()
    client.client = MlflowClient()
    (out / "holds_client.pkl").write_bytes(cloudpickle.dumps(client))
    '''
)


@pytest.fixture(scope="module")
def mlflow_pickles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pickles shaped like MLflow's, written by a process where a fake ``mlflow`` exists."""
    out = tmp_path_factory.mktemp("mlflow-pickles")
    script = out / "writer.py"
    script.write_text(_WRITER)
    subprocess.run([sys.executable, str(script), str(out)], check=True, cwd=out)
    return out


def _model_dir(tmp_path: Path, payload: bytes, **pyfunc: Any) -> Path:
    """A model directory as MLflow writes it for a custom PythonModel (no content manifest)."""
    path = tmp_path / "m"
    # No example, so no signature: the models here take lists and frames alike.
    modelyard.save_model(lambda df: df, path)
    (path / MANIFEST_FILE).unlink()
    (path / SIGNATURE_FILE).unlink(missing_ok=True)
    doc = yaml.safe_load((path / "MLmodel").read_text())
    doc["flavors"]["python_function"].update(pyfunc)
    file = doc["flavors"]["python_function"]["python_model"]
    (path / "python_model.pkl").unlink()
    (path / file).write_bytes(payload)
    (path / "MLmodel").write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize("name", ["with_context", "hinted"])
def test_mlflow_python_model_loads_without_mlflow(
    mlflow_pickles: Path, tmp_path: Path, name: str
) -> None:
    payload = (mlflow_pickles / f"{name}.pkl").read_bytes()
    assert b"mlflow.pyfunc.model" in payload
    assert b"_TypeHints" in payload
    if name == "hinted":
        assert b"_validate_model_input" in payload
        assert b"FuncInfo" in payload
    path = _model_dir(tmp_path, payload, config={"offset": 10})

    model = modelyard.load_model(path, trust="all", model_config={"offset": 100})
    assert isinstance(model.unwrap(), modelyard.PythonModel)
    assert model.predict([1.0, 2.0]) == [101.0, 102.0]
    assert model.predict([1.0, 2.0], params={"scale": 3}) == [103.0, 106.0]


def test_mlflow_python_model_without_context_and_compressed(
    mlflow_pickles: Path, tmp_path: Path
) -> None:
    payload = lzma.compress((mlflow_pickles / "no_context.pkl").read_bytes())
    path = _model_dir(
        tmp_path, payload, python_model="python_model.pkl.xz", python_model_compression="lzma"
    )
    assert modelyard.load_model(path, trust="all").predict([1.0, 4.0]) == [2.0, 8.0]


def test_mlflow_function_model_drops_pickled_signature(
    mlflow_pickles: Path, tmp_path: Path
) -> None:
    payload = (mlflow_pickles / "function.pkl").read_bytes()
    assert b"ModelSignature" in payload
    model = modelyard.load_model(_model_dir(tmp_path, payload), trust="all")
    native = model.unwrap()
    assert isinstance(native, FunctionModel)
    assert not getattr(native.func, "_is_pyfunc", False), "MLflow's wrapper is unwrapped"
    assert not hasattr(native, "signature")
    assert list(model.predict(pd.DataFrame({"x": [1.0, 2.0]}))) == [2.0, 3.0]


def test_model_keeping_mlflow_data_objects_is_refused(mlflow_pickles: Path, tmp_path: Path) -> None:
    path = _model_dir(tmp_path, (mlflow_pickles / "holds_schema.pkl").read_bytes())
    with pytest.raises(CorruptModelFile, match=r"mlflow\.types\.schema\.Schema") as info:
        modelyard.load_model(path, trust="all")
    assert "holds MLflow objects" in str(info.value)


def test_unknown_mlflow_reference_is_named(mlflow_pickles: Path, tmp_path: Path) -> None:
    path = _model_dir(tmp_path, (mlflow_pickles / "holds_client.pkl").read_bytes())
    with pytest.raises(CorruptModelFile, match=r"mlflow\.tracking\.MlflowClient"):
        modelyard.load_model(path, trust="all")


def test_an_mlflow_python_model_from_elsewhere_needs_trust(
    mlflow_pickles: Path, tmp_path: Path
) -> None:
    # MLflow signs nothing: its custom models are code nobody here vouched for
    path = _model_dir(tmp_path, (mlflow_pickles / "with_context.pkl").read_bytes())
    with pytest.raises(UntrustedModel, match="custom Python model") as info:
        modelyard.load_model(path)
    assert "mlflow.pyfunc.model.PythonModel" in info.value.globals
    assert "trust='all'" in str(info.value)


def test_our_function_model_survives_a_pickle_round_trip() -> None:
    def scaled(model_input: Any, params: Any = None) -> Any:
        return model_input * (params or {}).get("k", 1)

    restored = cloudpickle.loads(cloudpickle.dumps(FunctionModel(scaled)))
    assert restored.predict(None, 2, params={"k": 5}) == 10
