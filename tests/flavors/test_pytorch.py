"""The pytorch flavor: both formats, every input kind, devices, and every way a file can be bad."""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys
import textwrap
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import modelyard
from modelyard.errors import (
    ConfigError,
    CorruptModelFile,
    FlavorError,
    IntegrityError,
    SaveError,
    SchemaError,
)
from modelyard.flavors import flavor_for_object, get_flavor
from modelyard.flavors.pytorch import _load_pyfunc, torch_requirement
from modelyard.format.mlmodel import MLmodel

pytestmark = pytest.mark.torch


class TinyNet(nn.Module):
    """4 -> 3 linear + softmax; ``hidden`` adds a layer so factories need kwargs."""

    def __init__(self, hidden: int = 0) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, hidden), nn.ReLU()) if hidden else nn.Identity()
        self.head = nn.Linear(hidden or 4, 3)

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return torch.softmax(self.head(self.body(x)) * scale, dim=1)


class Tied(nn.Module):
    """Two layers sharing one weight tensor (safetensors must not duplicate it)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4, bias=False)
        self.b = nn.Linear(4, 4, bias=False)
        self.b.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


class Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


def make_tiny(hidden: int = 0) -> TinyNet:
    return TinyNet(hidden)


def _trained(hidden: int = 0, seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    net = TinyNet(hidden)
    with torch.no_grad():  # weights far from any fresh initialisation
        for p in net.parameters():
            p.mul_(3.0).add_(0.5)
    return net


def _forward(net: nn.Module, x: np.ndarray, **kw: Any) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(np.asarray(x, dtype=np.float32)), **kw).numpy()


@pytest.fixture
def X() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(6, 4)).astype(np.float32)


@pytest.fixture
def net() -> TinyNet:
    return _trained(hidden=5)


@pytest.fixture
def saved(tmp_path: Path, net: TinyNet) -> Path:
    modelyard.save_model(net, tmp_path / "m")
    return tmp_path / "m"


# -- picking the flavor ----------------------------------------------------------


def test_modules_pick_the_pytorch_flavor(net: TinyNet) -> None:
    flavor = get_flavor("pytorch")
    assert flavor.can_save(net)
    assert flavor.can_save(nn.Sequential(nn.Linear(1, 1)))
    assert not flavor.can_save(object())
    assert not flavor.can_save(lambda x: x)
    # a Module is callable: the plain-function flavor must not take it
    assert flavor_for_object(net).name == "pytorch"


def test_can_save_does_not_import_torch() -> None:
    code = textwrap.dedent(
        """
        import sys
        from modelyard.flavors import flavor_for_object, get_flavor
        flavor = get_flavor("pytorch")
        assert not flavor.can_save(object())
        assert flavor_for_object(lambda x: x).name == "function"
        assert "torch" not in sys.modules, "torch was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the default (MLflow pickle) format --------------------------------------------


def test_pickle_layout_is_mlflows(saved: Path) -> None:
    mlmodel = MLmodel.read(saved)
    pyfunc = mlmodel.pyfunc
    assert pyfunc["loader_module"] == "mlflow.pytorch"
    assert pyfunc["data"] == "data"
    assert pyfunc["pickle_module_name"] == "mlflow.pytorch.pickle_module"
    assert pyfunc["config"] == {"device": None}
    conf = mlmodel.flavors["pytorch"]
    assert conf["model_data"] == "data"
    assert conf["pytorch_version"] == torch.__version__
    assert conf["code"] is None
    assert (saved / "data" / "model.pth").is_file()
    info = (saved / "data" / "pickle_module_info.txt").read_text()
    assert info == "mlflow.pytorch.pickle_module"


def test_requirements_pin_torch_without_local_label(saved: Path) -> None:
    reqs = (saved / "requirements.txt").read_text().splitlines()
    torch_line = next(r for r in reqs if r.startswith("torch"))
    assert torch_line == torch_requirement()
    assert "+" not in torch_line
    assert torch_line == f"torch=={torch.__version__.split('+')[0]}"
    assert any(r.startswith("cloudpickle==") for r in reqs)
    assert any(r.startswith("numpy==") for r in reqs)
    # the local label on the installed build satisfies the pin: no environment warning
    assert modelyard.load_model(saved).environment.ok


def test_pickle_round_trip_predicts_like_forward(saved: Path, net: TinyNet, X: np.ndarray) -> None:
    model = modelyard.load_model(saved)
    assert model.flavor == "pytorch"
    out = model.predict(X)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, _forward(net, X))
    loaded = model.unwrap()
    assert type(loaded) is TinyNet
    assert not loaded.training


def test_dataframe_in_dataframe_out_with_index(saved: Path, net: TinyNet, X: np.ndarray) -> None:
    df = pd.DataFrame(X.astype(np.float64), columns=list("abcd"), index=[10, 11, 12, 13, 14, 15])
    out = modelyard.load_model(saved).predict(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.index) == [10, 11, 12, 13, 14, 15]
    assert list(out.columns) == [0, 1, 2]
    np.testing.assert_allclose(out.to_numpy(), _forward(net, X), rtol=1e-6)


def test_dataframe_of_ints_and_bools(saved: Path, net: TinyNet) -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [True, False], "c": [0.5, 1.5], "d": [3, 4]})
    out = modelyard.load_model(saved).predict(df)
    np.testing.assert_allclose(out.to_numpy(), _forward(net, df.to_numpy(dtype=np.float32)))


def test_float64_array_is_cast_to_the_module_dtype(saved: Path, net: TinyNet) -> None:
    x64 = np.random.default_rng(1).normal(size=(3, 4))
    out = modelyard.load_model(saved).predict(x64)
    np.testing.assert_allclose(out, _forward(net, x64), rtol=1e-6)


def test_read_only_array_gives_no_warning(saved: Path, net: TinyNet, X: np.ndarray) -> None:
    frozen = X.copy()
    frozen.flags.writeable = False
    # pytest turns warnings into errors: torch.from_numpy would warn here
    np.testing.assert_array_equal(modelyard.load_model(saved).predict(frozen), _forward(net, X))


def test_tensor_in_tensor_out(saved: Path, net: TinyNet, X: np.ndarray) -> None:
    out = modelyard.load_model(saved).predict(torch.from_numpy(X))
    assert isinstance(out, torch.Tensor)
    assert not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), _forward(net, X))


def test_double_module_gets_double_input(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained().double()
    modelyard.save_model(net, tmp_path / "m")
    out = modelyard.load_model(tmp_path / "m").predict(pd.DataFrame(X.astype(np.float64)))
    with torch.no_grad():
        expected = net(torch.from_numpy(X.astype(np.float64))).numpy()
    assert out.to_numpy().dtype == np.float64
    np.testing.assert_array_equal(out.to_numpy(), expected)


def test_integer_input_is_not_cast(tmp_path: Path) -> None:
    torch.manual_seed(0)
    emb = nn.Sequential(nn.Embedding(10, 2), nn.Flatten())
    modelyard.save_model(emb, tmp_path / "m")
    idx = np.array([[1, 2], [3, 9]], dtype=np.int64)
    out = modelyard.load_model(tmp_path / "m").predict(idx)
    with torch.no_grad():
        np.testing.assert_array_equal(out, emb(torch.from_numpy(idx)).numpy())


def test_params_reach_forward(saved: Path, net: TinyNet, X: np.ndarray) -> None:
    model = modelyard.load_model(saved)
    scaled = model.predict(X, params={"scale": 3.0})
    np.testing.assert_allclose(scaled, _forward(net, X, scale=3.0))
    assert not np.allclose(scaled, model.predict(X))


def test_eval_mode_makes_dropout_deterministic(tmp_path: Path, X: np.ndarray) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    net.train()
    modelyard.save_model(net, tmp_path / "m")
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), model.predict(X))
    np.testing.assert_array_equal(model.predict(X), _forward(net, X))


def test_torchscript_module_round_trip(tmp_path: Path, net: TinyNet, X: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated
        scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1)))
        modelyard.save_model(scripted, tmp_path / "m")
        model = modelyard.load_model(tmp_path / "m")
    assert isinstance(model.unwrap(), torch.jit.ScriptModule)
    with torch.no_grad():
        expected = scripted(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(model.predict(X), expected)


# -- code that is not importable at load time --------------------------------------


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A module of the user's own, importable now, with a unique name."""
    name = f"user_nets_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import torch
            from torch import nn

            class Doubler(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.lin = nn.Linear(4, 2)

                def forward(self, x):
                    return 2 * self.lin(x)
            """
        )
    )
    monkeypatch.setattr(sys, "path", [str(src), *sys.path])  # restored afterwards
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def _forget(module: Any) -> None:
    sys.modules.pop(module.__name__, None)
    sys.path.remove(str(Path(module.__file__).parent))


def test_class_from_an_unimportable_module_is_named(
    tmp_path: Path, user_module: Any, X: np.ndarray
) -> None:
    modelyard.save_model(user_module.Doubler(), tmp_path / "m")
    _forget(user_module)
    with pytest.raises(CorruptModelFile, match=user_module.__name__) as info:
        modelyard.load_model(tmp_path / "m")
    assert "code_paths" in str(info.value)
    assert "model.pth" in str(info.value)


def test_code_paths_ship_the_class(tmp_path: Path, user_module: Any, X: np.ndarray) -> None:
    torch.manual_seed(3)
    net = user_module.Doubler()
    modelyard.save_model(net, tmp_path / "m", code_paths=[user_module.__file__])
    assert MLmodel.read(tmp_path / "m").flavors["pytorch"]["code"] == "code"
    _forget(user_module)
    model = modelyard.load_model(tmp_path / "m")
    assert type(model.unwrap()).__module__ == user_module.__name__
    np.testing.assert_array_equal(model.predict(X), _forward(net, X))


# -- the safetensors format ---------------------------------------------------------


def test_safetensors_with_a_class_stores_a_reference(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained(hidden=6, seed=4)
    modelyard.save_model(
        net,
        tmp_path / "m",
        serialization_format="safetensors",
        module_factory=TinyNet,
        module_kwargs={"hidden": 6},
    )
    conf = MLmodel.read(tmp_path / "m").flavors["pytorch"]
    assert conf["serialization_format"] == "safetensors"
    assert conf["module_factory"] == f"{__name__}:TinyNet"
    assert conf["module_kwargs"] == {"hidden": 6}
    # nothing is pickled: the weights file and an import reference
    assert sorted(p.name for p in (tmp_path / "m" / "data").iterdir()) == ["model.safetensors"]
    assert MLmodel.read(tmp_path / "m").pyfunc["loader_module"] == "modelyard.flavors.pytorch"
    reqs = (tmp_path / "m" / "requirements.txt").read_text()
    assert "safetensors==" in reqs
    assert "modelyard==" in reqs
    model = modelyard.load_model(tmp_path / "m")
    assert type(model.unwrap()) is TinyNet
    assert not model.unwrap().training
    np.testing.assert_array_equal(model.predict(X), _forward(net, X))


def test_safetensors_with_a_string_reference(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained(hidden=2, seed=5)
    modelyard.save_model(
        net,
        tmp_path / "m",
        serialization_format="safetensors",
        module_factory=f"{__name__}:make_tiny",
        module_kwargs={"hidden": 2},
    )
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), _forward(net, X))


def test_safetensors_with_a_local_factory_pickles_it(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained(hidden=3, seed=6)

    def build() -> nn.Module:
        return TinyNet(hidden=3)

    modelyard.save_model(
        net, tmp_path / "m", serialization_format="safetensors", module_factory=build
    )
    conf = MLmodel.read(tmp_path / "m").flavors["pytorch"]
    assert conf["module_factory"] is None
    assert conf["module_factory_file"] == "module_factory.pkl"
    assert "cloudpickle==" in (tmp_path / "m" / "requirements.txt").read_text()
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), _forward(net, X))


def test_safetensors_with_a_partial(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained(hidden=3, seed=8)
    factory = functools.partial(TinyNet, hidden=3)
    modelyard.save_model(
        net, tmp_path / "m", serialization_format="safetensors", module_factory=factory
    )
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), _forward(net, X))


def test_safetensors_keeps_tied_weights(tmp_path: Path, X: np.ndarray) -> None:
    torch.manual_seed(2)
    net = Tied()
    modelyard.save_model(
        net, tmp_path / "m", serialization_format="safetensors", module_factory=Tied
    )
    loaded = modelyard.load_model(tmp_path / "m")
    assert loaded.unwrap().a.weight is loaded.unwrap().b.weight
    np.testing.assert_array_equal(loaded.predict(X), _forward(net, X))


def test_safetensors_with_buffers(tmp_path: Path, X: np.ndarray) -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    net.train()
    with torch.no_grad():
        net(torch.randn(32, 4) * 5 + 2)  # moves the running statistics away from 0/1
    factory = functools.partial(lambda: nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    modelyard.save_model(
        net, tmp_path / "m", serialization_format="safetensors", module_factory=factory
    )
    np.testing.assert_allclose(
        modelyard.load_model(tmp_path / "m").predict(X), _forward(net, X), rtol=1e-6
    )


def test_safetensors_pyfunc_entry_point(tmp_path: Path, X: np.ndarray) -> None:
    # what mlflow.pyfunc calls when modelyard is installed next to MLflow
    net = _trained(seed=9)
    modelyard.save_model(
        net, tmp_path / "m", serialization_format="safetensors", module_factory=TinyNet
    )
    impl = _load_pyfunc(str(tmp_path / "m" / "data"), {"device": "cpu"})
    np.testing.assert_array_equal(impl.predict(X), _forward(net, X))
    assert isinstance(impl.get_raw_model(), TinyNet)


# -- safetensors without a module_factory: the class itself, where provably right -------


def _weights_only(path: Path) -> list[str]:
    return sorted(p.name for p in (path / "data").iterdir())


def test_default_stays_mlflows_pickle_even_when_safetensors_would_fit(tmp_path: Path) -> None:
    # MLflow's own mlflow.pytorch.load_model reads only model.pth / model.pt2, so the
    # default keeps MLflow's layout even for a class safetensors could rebuild.
    modelyard.save_model(_trained(), tmp_path / "m")
    mlmodel = MLmodel.read(tmp_path / "m")
    assert "serialization_format" not in mlmodel.flavors["pytorch"]
    assert mlmodel.pyfunc["loader_module"] == "mlflow.pytorch"
    assert _weights_only(tmp_path / "m") == ["model.pth", "pickle_module_info.txt"]


def test_explicit_pickle_stays_pickle(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained()
    modelyard.save_model(net, tmp_path / "m", serialization_format="pickle")
    assert _weights_only(tmp_path / "m") == ["model.pth", "pickle_module_info.txt"]
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), _forward(net, X))


def test_safetensors_infers_an_importable_class(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained(seed=8)
    modelyard.save_model(net, tmp_path / "m", serialization_format="safetensors")
    conf = MLmodel.read(tmp_path / "m").flavors["pytorch"]
    assert conf["module_factory"] == f"{__name__}:TinyNet"
    assert conf["module_kwargs"] == {}
    assert _weights_only(tmp_path / "m") == ["model.safetensors"]
    model = modelyard.load_model(tmp_path / "m")  # signed by the suite's own key
    assert type(model.unwrap()) is TinyNet
    np.testing.assert_array_equal(model.predict(X), _forward(net, X))


def test_safetensors_infers_the_class_with_module_kwargs(tmp_path: Path, X: np.ndarray) -> None:
    net = _trained(hidden=5, seed=9)
    modelyard.save_model(
        net, tmp_path / "m", serialization_format="safetensors", module_kwargs={"hidden": 5}
    )
    assert MLmodel.read(tmp_path / "m").flavors["pytorch"]["module_kwargs"] == {"hidden": 5}
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), _forward(net, X))


def test_inferred_torch_class_loads_unsigned_with_the_default_policy(
    tmp_path: Path, X: np.ndarray
) -> None:
    # torch.nn classes are on the allow-list: no signature, no trust= flag, nothing unpickled
    torch.manual_seed(10)
    net = nn.Linear(4, 3)
    modelyard.save_model(
        net,
        tmp_path / "m",
        serialization_format="safetensors",
        module_kwargs={"in_features": 4, "out_features": 3},
        sign=False,
    )
    assert not (tmp_path / "m" / "MANIFEST.sig").exists()
    conf = MLmodel.read(tmp_path / "m").flavors["pytorch"]
    assert conf["module_factory"] == "torch.nn.modules.linear:Linear"
    model = modelyard.load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.predict(X), _forward(net, X))


def test_a_module_the_meta_device_cannot_build_is_built_for_real(
    tmp_path: Path, X: np.ndarray
) -> None:
    net = MetaShy()
    with torch.no_grad():
        net.lin.weight.mul_(2.0)
    modelyard.save_model(net, tmp_path / "m", serialization_format="safetensors")
    assert MLmodel.read(tmp_path / "m").flavors["pytorch"]["module_factory"].endswith(":MetaShy")
    np.testing.assert_array_equal(modelyard.load_model(tmp_path / "m").predict(X), _forward(net, X))


class MetaShy(nn.Module):
    """Reads a tensor's value in ``__init__``, which the meta device cannot."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)
        self.scale = float(torch.ones(1).sum().item())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale


class NeedsWidth(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lin = nn.Linear(4, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


class OwnState(TinyNet):
    def __getstate__(self) -> dict[str, Any]:
        return dict(vars(self))


class Cached(TinyNet):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(4), persistent=False)


def _local_class() -> nn.Module:
    class Local(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 3)

    return Local()


def _scripted() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.jit.script(TinyNet())  # type: ignore[no-any-return]


def _tuned() -> nn.Module:
    net = TinyNet()
    net.threshold = 0.7  # set after construction: a fresh instance has no such attribute
    return net


def _hooked() -> nn.Module:
    net = TinyNet()
    net.register_forward_hook(lambda module, args, out: out * 2)
    return net


@pytest.mark.parametrize(
    ("make", "kwargs", "reason"),
    [
        (_local_class, {}, r"class .*<locals>\.Local is not importable by reference"),
        (lambda: NeedsWidth(3), {}, r"NeedsWidth\(\) cannot be called: missing .*'width'"),
        (_scripted, {}, "TorchScript modules have no rebuildable code; use the pickle"),
        (OwnState, {}, "OwnState defines __getstate__"),
        (Cached, {}, r"buffers \['mean'\] are not in the state_dict"),
        (lambda: _trained(hidden=3), {}, r"TinyNet\(\) is not this module: submodules differ"),
        (lambda: _trained(hidden=3), {"hidden": 4}, "parameters differ"),
        (lambda: TinyNet().double(), {}, "torch.float64"),
        (_tuned, {}, "attribute 'threshold' is set on one of them only"),
        (_hooked, {}, "_forward_hooks: 1 hook"),
    ],
)
def test_safetensors_without_a_provable_class_names_the_reason(
    tmp_path: Path, make: Any, kwargs: dict[str, Any], reason: str
) -> None:
    options: dict[str, Any] = {"serialization_format": "safetensors"}
    if kwargs:
        options["module_kwargs"] = kwargs
    with pytest.raises(SaveError, match=reason) as info:
        modelyard.save_model(make(), tmp_path / "m", **options)
    assert "module_factory" in str(info.value) or "TorchScript" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_class_in_main_names_the_reason(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import torch, modelyard
        from modelyard.errors import SaveError

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(4, 3)

        try:
            modelyard.save_model(Net(), {str(tmp_path / "m")!r}, serialization_format="safetensors")
        except SaveError as exc:
            print(exc)
        modelyard.save_model(Net(), {str(tmp_path / "p")!r})
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert "its class __main__.Net is not importable by reference" in out
    assert _weights_only(tmp_path / "p") == ["model.pth", "pickle_module_info.txt"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"serialization_format": "safetensors"}, "needs module_factory"),
        ({"serialization_format": "pt3"}, "serialization_format must be one of"),
        ({"module_factory": TinyNet}, "only apply to serialization_format='safetensors'"),
        ({"serialization_format": "safetensors", "module_factory": 3}, "must be callable"),
        (
            {"serialization_format": "safetensors", "module_factory": "no_such_mod_xyz:Net"},
            "no_such_mod_xyz",
        ),
        ({"serialization_format": "safetensors", "module_factory": "TinyNet"}, "package.module"),
        (
            {"serialization_format": "safetensors", "module_factory": TinyNet},
            r"lacks \['body\.0\.bias'",
        ),
        (
            {
                "serialization_format": "safetensors",
                "module_factory": TinyNet,
                "module_kwargs": {"hidden": 9},
            },
            r"other shapes: \['body\.0\.bias \(9,\) != \(5,\)'",
        ),
        (
            {
                "serialization_format": "safetensors",
                "module_factory": TinyNet,
                "module_kwargs": {"hidden": object()},
            },
            "JSON values",
        ),
        (
            {"serialization_format": "safetensors", "module_factory": lambda: "not a module"},
            "returned str, not a torch.nn.Module",
        ),
        ({"no_such_option": 1}, r"unknown option\(s\) \['no_such_option'\]"),
    ],
)
def test_bad_options_fail_and_leave_nothing(
    tmp_path: Path, net: TinyNet, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(SaveError, match=message):
        modelyard.save_model(net, tmp_path / "m", **options)
    assert list(tmp_path.iterdir()) == []


# -- devices ------------------------------------------------------------------------


def test_device_cpu(saved: Path, net: TinyNet, X: np.ndarray) -> None:
    model = modelyard.load_model(saved, model_config={"device": "cpu"})
    assert model.model_config == {"device": "cpu"}
    assert next(model.unwrap().parameters()).device.type == "cpu"
    np.testing.assert_array_equal(model.predict(X), _forward(net, X))


def test_default_device(saved: Path) -> None:
    model = modelyard.load_model(saved)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert next(model.unwrap().parameters()).device.type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_config_error(saved: Path) -> None:
    with pytest.raises(ConfigError, match=r"'cuda' is not available here.*available: cpu") as info:
        modelyard.load_model(saved, model_config={"device": "cuda"})
    assert info.value.keys == ("device",)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", "'gpu' is not a torch device"),
        ("meta", "meta device holds no data"),
        (3, "must be a string"),
    ],
)
def test_bad_device_is_a_config_error(saved: Path, device: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        modelyard.load_model(saved, model_config={"device": device})


def test_safetensors_unavailable_device(tmp_path: Path) -> None:
    modelyard.save_model(
        _trained(), tmp_path / "m", serialization_format="safetensors", module_factory=TinyNet
    )
    with pytest.raises(ConfigError, match="not a torch device"):
        modelyard.load_model(tmp_path / "m", model_config={"device": "tpu-ish"})


def test_device_is_not_a_predict_param(saved: Path, X: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="chosen when loading"):
        modelyard.load_model(saved).predict(X, params={"device": "cpu"})


def test_unknown_config_key_lists_device(saved: Path) -> None:
    with pytest.raises(ConfigError, match="declared keys: device") as info:
        modelyard.load_model(saved, model_config={"devise": "cpu"})
    assert info.value.keys == ("devise",)


# -- bad input ---------------------------------------------------------------------


def test_text_column_is_named(saved: Path) -> None:
    df = pd.DataFrame({"a": [1.0], "b": ["x"], "c": [1.0], "d": [1.0]})
    with pytest.raises(SchemaError, match="column 'b'") as info:
        modelyard.load_model(saved).predict(df)
    assert info.value.column == "b"


@pytest.mark.parametrize(
    ("data", "received"),
    [
        ([[1.0, 2.0, 3.0, 4.0]], "list"),
        ({"a": [1.0]}, "dict"),
        (np.array([["a", "b", "c", "d"]], dtype=object), "object"),
    ],
)
def test_unsupported_input_is_a_schema_error(saved: Path, data: Any, received: str) -> None:
    with pytest.raises(SchemaError) as info:
        modelyard.load_model(saved).predict(data)
    assert info.value.received == received


def test_non_tensor_output_is_explained(tmp_path: Path, X: np.ndarray) -> None:
    modelyard.save_model(Pair(), tmp_path / "m")
    with pytest.raises(FlavorError, match="returned a tuple"):
        modelyard.load_model(tmp_path / "m").predict(X)


# -- damaged files ------------------------------------------------------------------


def test_altered_pth_is_an_integrity_error_first(saved: Path) -> None:
    with open(saved / "data" / "model.pth", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError) as info:
        modelyard.load_model(saved)
    assert info.value.file == "data/model.pth"


def test_garbage_pth_is_a_corrupt_model_file(saved: Path) -> None:
    (saved / "MANIFEST.sha256").unlink()
    (saved / "MANIFEST.sig").unlink(missing_ok=True)
    (saved / "data" / "model.pth").write_bytes(b"definitely not a torch archive")
    with pytest.raises(CorruptModelFile, match=r"model\.pth") as info:
        modelyard.load_model(saved)
    assert info.value.flavor == "pytorch"
    assert "not a torch archive" in info.value.reason


def test_truncated_pth_is_a_corrupt_model_file(saved: Path) -> None:
    (saved / "MANIFEST.sha256").unlink()
    (saved / "MANIFEST.sig").unlink(missing_ok=True)
    pth = saved / "data" / "model.pth"
    pth.write_bytes(pth.read_bytes()[:200])
    with pytest.raises(CorruptModelFile, match=r"model\.pth"):
        modelyard.load_model(saved)


def test_missing_pth_is_a_corrupt_model_file(saved: Path) -> None:
    (saved / "MANIFEST.sha256").unlink()
    (saved / "MANIFEST.sig").unlink(missing_ok=True)
    (saved / "data" / "model.pth").unlink()
    with pytest.raises(CorruptModelFile, match=r"neither model\.pth nor model\.pt2"):
        modelyard.load_model(saved)


def test_unknown_pickle_module_is_named(saved: Path) -> None:
    (saved / "MANIFEST.sha256").unlink()
    (saved / "MANIFEST.sig").unlink(missing_ok=True)
    (saved / "data" / "pickle_module_info.txt").write_text("evil.pickler")
    with pytest.raises(CorruptModelFile, match=r"'evil\.pickler'"):
        modelyard.load_model(saved)


def test_data_path_outside_the_model_is_refused(saved: Path) -> None:
    (saved / "MANIFEST.sha256").unlink()
    (saved / "MANIFEST.sig").unlink(missing_ok=True)
    text = (saved / "MLmodel").read_text().replace("model_data: data", "model_data: ../..")
    (saved / "MLmodel").write_text(text)
    with pytest.raises(CorruptModelFile, match="outside the model directory"):
        modelyard.load_model(saved)


@pytest.fixture
def saved_st(tmp_path: Path) -> Path:
    modelyard.save_model(
        _trained(), tmp_path / "st", serialization_format="safetensors", module_factory=TinyNet
    )
    return tmp_path / "st"


def test_altered_safetensors_is_an_integrity_error_first(saved_st: Path) -> None:
    with open(saved_st / "data" / "model.safetensors", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError) as info:
        modelyard.load_model(saved_st)
    assert info.value.file == "data/model.safetensors"


def test_garbage_safetensors_is_a_corrupt_model_file(saved_st: Path) -> None:
    (saved_st / "MANIFEST.sha256").unlink()
    (saved_st / "MANIFEST.sig").unlink(missing_ok=True)
    (saved_st / "data" / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CorruptModelFile, match=r"model\.safetensors") as info:
        modelyard.load_model(saved_st, trust=["tests.flavors.test_pytorch.*"])
    assert info.value.__cause__ is not None


def test_safetensors_with_other_tensors_is_a_corrupt_model_file(saved_st: Path) -> None:
    import safetensors.torch

    (saved_st / "MANIFEST.sha256").unlink()
    (saved_st / "MANIFEST.sig").unlink(missing_ok=True)
    safetensors.torch.save_file(
        {"head.weight": torch.zeros(3, 4)}, str(saved_st / "data" / "model.safetensors")
    )
    with pytest.raises(CorruptModelFile, match=r"head\.bias"):
        modelyard.load_model(saved_st, trust=["tests.flavors.test_pytorch.*"])


def test_unresolvable_factory_reference_is_named(saved_st: Path) -> None:
    (saved_st / "MANIFEST.sha256").unlink()
    (saved_st / "MANIFEST.sig").unlink(missing_ok=True)
    text = (saved_st / "MLmodel").read_text()
    (saved_st / "MLmodel").write_text(text.replace(":TinyNet", ":NoSuchNet"))
    with pytest.raises(CorruptModelFile, match="NoSuchNet"):
        modelyard.load_model(saved_st, trust=["tests.flavors.test_pytorch.*"])


# -- what modelyard info says of each format -------------------------------------------


def _info(path: Path) -> dict[str, Any]:
    import json

    from click.testing import CliRunner

    from modelyard.cli import main

    out = CliRunner().invoke(main, ["info", str(path), "--json"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    facts: dict[str, Any] = json.loads(out.output)
    facts["files"] = {f["path"]: (f["format"], f["verdict"]) for f in facts["files"]}
    return facts


def test_info_shows_each_format_its_verdict_and_who_loads_it(tmp_path: Path) -> None:
    modelyard.save_model(
        nn.Linear(4, 3),
        tmp_path / "st",
        serialization_format="safetensors",
        module_kwargs={"in_features": 4, "out_features": 3},
    )
    modelyard.save_model(nn.Linear(4, 3), tmp_path / "pk")
    st, pk = _info(tmp_path / "st"), _info(tmp_path / "pk")
    assert st["files"] == {"data/model.safetensors": ("safetensors", "ok")}
    assert "only with modelyard installed" in st["mlflow"]
    assert pk["files"] == {"data/model.pth": ("torch archive", "ok")}
    assert pk["mlflow"] == "MLflow's own loader (mlflow.pytorch)"


def test_files_are_told_apart_by_content_not_name(tmp_path: Path) -> None:
    import pickle

    import safetensors.torch

    from modelyard.trust.policy import TrustPolicy
    from modelyard.trust.report import scan_file

    safetensors.torch.save_file({"w": torch.ones(2)}, str(tmp_path / "weights.pkl"))
    (tmp_path / "model.safetensors").write_bytes(pickle.dumps({"a": [1, 2]}, protocol=1))
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}xxxx")
    found = {
        name: scan_file(tmp_path / name, TrustPolicy())
        for name in ("weights.pkl", "model.safetensors", "junk.safetensors")
    }
    assert found["weights.pkl"] is not None
    assert (found["weights.pkl"].format, found["weights.pkl"].verdict) == ("safetensors", "ok")
    assert found["model.safetensors"] is not None
    assert found["model.safetensors"].format == "pickle (protocol 0/1)"
    assert found["junk.safetensors"] is None
