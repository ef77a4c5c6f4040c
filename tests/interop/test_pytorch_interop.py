"""PyTorch models move between MLflow 3.17.2 and modelyard in both directions.

MLflow runs in its own cached environment (``run_mlflow``); this process never
has MLflow importable. Inputs are fixed here and handed to the MLflow scripts,
whose predictions come back as JSON and must equal ours exactly: same torch,
same weights, same kernels.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard
from modelyard.errors import UntrustedModel
from modelyard.format.mlmodel import MLmodel

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.interop, pytest.mark.torch]

X = np.random.default_rng(42).normal(size=(5, 4)).astype(np.float32)
INDEX = [10, 11, 12, 13, 14]

# A module of the user's own, as a file: shipped with code_paths or pickled by value.
USER_NETS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return torch.softmax(self.out(torch.tanh(self.hidden(x))), dim=1)
"""


def _frame() -> pd.DataFrame:
    return pd.DataFrame(X, columns=list("abcd"), index=INDEX)


def _forward(net: Any) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(X)).numpy()  # type: ignore[no-any-return]


def _equal(ours: Any, theirs: Any, what: str) -> None:
    np.testing.assert_array_equal(
        np.asarray(ours, dtype=np.float32), np.asarray(theirs, dtype=np.float32), err_msg=what
    )


# -- MLflow saves, modelyard loads ---------------------------------------------------

MLFLOW_SAVES = """
import json, sys, warnings
from pathlib import Path

import numpy as np, pandas as pd, torch, mlflow
from torch import nn

X = np.array({x}, dtype=np.float32)
INDEX = {index}
ROOT = Path({root!r})
ROOT.mkdir(parents=True, exist_ok=True)


class Net(nn.Module):  # lives in __main__: cloudpickle stores it by value
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, x, scale=1.0):
        return torch.softmax(self.out(torch.tanh(self.hidden(x))) * scale, dim=1)


# a module of the user's own, shipped with code_paths
lib = ROOT / "mlflow_side_code"
lib.mkdir(exist_ok=True)
(lib / "{user_module}.py").write_text({user_nets!r})
sys.path.insert(0, str(lib))
import {user_module}

torch.manual_seed(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 2), nn.Sigmoid()))
# MLflow infers requirements by loading each model in a subprocess (seconds
# each): "sequential" and "pt2" keep that default, the others name theirs.
reqs = {{"pip_requirements": ["torch", "cloudpickle"]}}
models = {{
    "sequential": (nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)), {{}}),
    "custom_main": (Net(), reqs),
    "code_paths": (
        {user_module}.Net(),
        {{"code_paths": [str(lib / "{user_module}.py")], **reqs}},
    ),
    "torchscript": (scripted, reqs),
}}
result = {{}}
for name, (net, extra) in models.items():
    path = str(ROOT / name)
    mlflow.pytorch.save_model(net, path, serialization_format="pickle", **extra)
    pyfunc = mlflow.pyfunc.load_model(path)
    frame = pyfunc.predict(pd.DataFrame(X, columns=list("abcd"), index=INDEX))
    with torch.no_grad():
        forward = mlflow.pytorch.load_model(path)(torch.from_numpy(X))
    result[name] = {{
        "ndarray": pyfunc.predict(X).tolist(),
        "dataframe": frame.to_numpy().tolist(),
        "index": [int(i) for i in frame.index],
        "forward": forward.numpy().tolist(),
    }}
# MLflow hands params to forward() only when the signature declares them
from mlflow.models import infer_signature

net = Net()
with torch.no_grad():
    out = net(torch.from_numpy(X)).numpy()
signature = infer_signature(X, out, params={{"scale": 1.0}})
mlflow.pytorch.save_model(
    net, str(ROOT / "params"), serialization_format="pickle", signature=signature, **reqs
)
pyfunc = mlflow.pyfunc.load_model(str(ROOT / "params"))
result["params"] = pyfunc.predict(X, params={{"scale": 2.5}}).tolist()

# MLflow 3's default format: torch.export (pt2), which needs an input example
net = Net()
mlflow.pytorch.save_model(net, str(ROOT / "pt2"), input_example=X)
pyfunc = mlflow.pyfunc.load_model(str(ROOT / "pt2"))
result["pt2"] = {{
    "ndarray": pyfunc.predict(X).tolist(),
    "three_rows": pyfunc.predict(X[:3]).tolist(),
}}
print(json.dumps(result))
"""


@pytest.fixture
def clean_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """sys.path and sys.modules as they were: loading a model's code adds to both."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("user_nets_"):
            del sys.modules[name]


def test_models_saved_by_mlflow_load_here(
    run_mlflow: Any, tmp_path: Path, clean_imports: None
) -> None:
    root = tmp_path / "mlflow_models"
    user_module = f"user_nets_{uuid.uuid4().hex[:8]}"
    theirs = run_mlflow(
        MLFLOW_SAVES.format(
            x=X.tolist(), index=INDEX, root=str(root), user_module=user_module, user_nets=USER_NETS
        )
    )
    assert importlib.util.find_spec(user_module) is None  # only the model's code dir has it

    for name in ("sequential", "custom_main", "code_paths", "torchscript"):
        assert MLmodel.read(root / name).pyfunc["loader_module"] == "mlflow.pytorch"
        with warnings.catch_warnings():
            # torch deprecates torch.jit.load, which TorchScript archives need
            warnings.simplefilter("ignore", DeprecationWarning)
            # MLflow signs nothing: its models whose classes are code load only when trusted
            trust = None if name == "sequential" else "all"
            model = modelyard.load_model(root / name, env="strict", trust=trust)
        assert model.flavor == "pytorch"
        _equal(model.predict(X), theirs[name]["ndarray"], f"{name}: ndarray")
        frame = model.predict(_frame())
        assert isinstance(frame, pd.DataFrame), name
        assert list(frame.index) == theirs[name]["index"] == INDEX, name
        _equal(frame.to_numpy(), theirs[name]["dataframe"], f"{name}: DataFrame")
        _equal(_forward(model.unwrap()), theirs[name]["forward"], f"{name}: forward")

    with pytest.raises(UntrustedModel, match="carries code"):
        modelyard.load_model(root / "custom_main")
    custom = modelyard.load_model(root / "custom_main", trust="all")
    assert type(custom.unwrap()).__module__ == "__main__"  # rebuilt from the pickled class
    with_params = modelyard.load_model(root / "params", trust="all")
    _equal(with_params.predict(X, params={"scale": 2.5}), theirs["params"], "params")
    assert not np.allclose(theirs["params"], with_params.predict(X))
    code_paths = modelyard.load_model(root / "code_paths", trust=[f"{user_module}.*"])
    assert type(code_paths.unwrap()).__module__ == user_module

    pt2 = modelyard.load_model(root / "pt2", env="strict")
    assert (root / "pt2" / "data" / "model.pt2").is_file()
    _equal(pt2.predict(X), theirs["pt2"]["ndarray"], "pt2: ndarray")
    _equal(pt2.predict(X[:3]), theirs["pt2"]["three_rows"], "pt2: another batch size")


# -- modelyard saves, MLflow loads ---------------------------------------------------

MLFLOW_LOADS = """
import importlib.util, json
import numpy as np, pandas as pd, torch, mlflow

assert importlib.util.find_spec("modelyard") is None, "MLflow must load these without modelyard"
X = np.array({x}, dtype=np.float32)
INDEX = {index}
result = {{}}
for name, path in {paths!r}.items():
    pyfunc = mlflow.pyfunc.load_model(path)
    frame = pyfunc.predict(pd.DataFrame(X, columns=list("abcd"), index=INDEX))
    raw = mlflow.pytorch.load_model(path)
    with torch.no_grad():
        forward = raw(torch.from_numpy(X))
    result[name] = {{
        "ndarray": pyfunc.predict(X).tolist(),
        "dataframe": frame.to_numpy().tolist(),
        "index": [int(i) for i in frame.index],
        "forward": forward.numpy().tolist(),
        "class": type(raw).__module__ + ":" + type(raw).__qualname__,
        "training": raw.training,
    }}
print(json.dumps(result))
"""


@pytest.fixture
def user_nets(tmp_path: Path, clean_imports: None) -> Any:
    """The user's module, importable here (not in the MLflow process: not on its path)."""
    name = f"user_nets_{uuid.uuid4().hex[:8]}"
    lib = tmp_path / "user_code"
    lib.mkdir()
    (lib / f"{name}.py").write_text(textwrap.dedent(USER_NETS))
    sys.path.insert(0, str(lib))
    return importlib.import_module(name)


def test_models_saved_here_load_in_mlflow(run_mlflow: Any, tmp_path: Path, user_nets: Any) -> None:
    import cloudpickle

    torch.manual_seed(1)
    nets = {
        "sequential": torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1)),
        "code_paths": user_nets.Net(),
        "by_value": user_nets.Net(),
    }
    paths = {name: str(tmp_path / "ours" / name) for name in nets}
    modelyard.save_model(nets["sequential"], paths["sequential"])
    # the two ways a user ships a class of their own:
    modelyard.save_model(nets["code_paths"], paths["code_paths"], code_paths=[user_nets.__file__])
    cloudpickle.register_pickle_by_value(user_nets)
    try:
        modelyard.save_model(nets["by_value"], paths["by_value"])
    finally:
        cloudpickle.unregister_pickle_by_value(user_nets)

    theirs = run_mlflow(MLFLOW_LOADS.format(x=X.tolist(), index=INDEX, paths=paths))

    for name, net in nets.items():
        _equal(theirs[name]["ndarray"], _forward(net), f"{name}: mlflow.pyfunc ndarray")
        _equal(theirs[name]["forward"], _forward(net), f"{name}: mlflow.pytorch.load_model")
        assert theirs[name]["training"] is False, name
        ours = modelyard.load_model(paths[name])
        _equal(ours.predict(X), theirs[name]["ndarray"], f"{name}: ours vs MLflow, ndarray")
        # A DataFrame becomes a column-major array, and matmul on it may round the
        # last bit differently from the row-major X: equal to ours, close to forward.
        frame = ours.predict(_frame())
        _equal(frame.to_numpy(), theirs[name]["dataframe"], f"{name}: ours vs MLflow, DataFrame")
        assert theirs[name]["index"] == list(frame.index) == INDEX, name
        np.testing.assert_allclose(theirs[name]["dataframe"], _forward(net), rtol=1e-6)
    assert theirs["code_paths"]["class"] == f"{user_nets.__name__}:Net"
    assert theirs["by_value"]["class"] == f"{user_nets.__name__}:Net"


MLFLOW_LOADS_SAFETENSORS = """
import importlib.util, json, sys
import numpy as np, mlflow

if importlib.util.find_spec("safetensors") is None:
    sys.path.append({lend!r})  # as if `pip install safetensors` had run there
X = np.array({x}, dtype=np.float32)
result = {{}}
try:
    mlflow.pytorch.load_model({path!r})
except Exception as exc:
    result["pytorch_load_error"] = type(exc).__name__ + ": " + str(exc)
pyfunc = mlflow.pyfunc.load_model({path!r})
result["impl"] = type(pyfunc._model_impl).__module__
result["ndarray"] = pyfunc.predict(X).tolist()
print(json.dumps(result))
"""


def test_safetensors_format_loads_in_mlflow_through_modelyard(
    run_mlflow: Any, tmp_path: Path
) -> None:
    import safetensors

    torch.manual_seed(2)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1))
    path = tmp_path / "st"

    def build() -> Any:  # local: pickled by value, so the MLflow side needs no test code
        return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=1))

    modelyard.save_model(net, path, serialization_format="safetensors", module_factory=build)
    # The cached MLflow environment has no safetensors; lend it ours (same Python).
    lend = tmp_path / "lend"
    lend.mkdir()
    (lend / "safetensors").symlink_to(Path(safetensors.__file__).parent)
    theirs = run_mlflow(
        MLFLOW_LOADS_SAFETENSORS.format(x=X.tolist(), path=str(path), lend=str(lend)),
        with_modelyard=True,
    )
    # as documented: mlflow.pytorch itself has no loader for this layout...
    assert "model.pt2" in theirs["pytorch_load_error"]
    # ...while mlflow.pyfunc finds modelyard's when modelyard is installed there
    assert theirs["impl"] == "modelyard.flavors.pytorch"
    _equal(theirs["ndarray"], _forward(net), "mlflow.pyfunc through modelyard's loader")
