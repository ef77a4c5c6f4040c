"""PyTorch ``torch.nn.Module``s.

Two serializations, chosen with ``save_model(..., serialization_format=...)``:

``"pickle"`` (default)
    MLflow's layout and keys: the whole module written by ``torch.save`` with
    cloudpickle's pickler into ``data/model.pth``, the pickle module's name in
    ``data/pickle_module_info.txt``, ``loader_module: mlflow.pytorch``. MLflow
    loads it (``mlflow.pyfunc.load_model`` and ``mlflow.pytorch.load_model``)
    and modelyard loads what MLflow saves, without MLflow: files MLflow wrote
    with its default ``pt2`` format (``torch.export``) and TorchScript modules
    load too. Classes defined in ``__main__`` are pickled by value; classes from
    your own modules are pickled by reference, so ship them with
    ``code_paths=[...]`` or call ``cloudpickle.register_pickle_by_value(module)``.

``"safetensors"``
    The weights as a safetensors ``state_dict`` plus how to rebuild the module:
    ``module_factory`` is a callable returning a fresh, untrained module (a
    class, a function, a ``functools.partial``) or an import reference
    ``"package.module:Name"``, called with ``module_kwargs``. An importable
    factory is stored by reference and loading unpickles nothing; anything else
    is stored with cloudpickle. Without ``module_factory`` the module's own
    class is used where that is provably right
    (:func:`~modelyard.flavors._torch_rebuild.infer_factory`: the class
    importable by reference, and a fresh instance built from
    ``module_kwargs`` on the meta device with the same submodules, parameters,
    buffers, dtypes, hooks and plain attributes, taking the state_dict
    strictly); otherwise the save fails naming why. **MLflow cannot load this
    format** (``mlflow.pytorch.load_model`` finds no ``model.pth``);
    ``mlflow.pyfunc`` loads it only where modelyard is installed next to MLflow.
    That is why it is not the default, although it saves and loads as fast as
    pickle (``bench/safe_formats.py``).

>>> save_model(net, "net")                                  # doctest: +SKIP
>>> save_model(net, "net-st", serialization_format="safetensors")  # doctest: +SKIP
>>> save_model(net, "net-st", serialization_format="safetensors",
...            module_factory=Net, module_kwargs={"hidden": 8})  # doctest: +SKIP

Loading takes ``model_config={"device": "cpu"}`` (or ``"cuda:0"`` ...); the
default is CUDA when available, else the CPU, as in MLflow. ``predict`` takes
numpy arrays, pandas DataFrames (returned as a DataFrame with the input's
index) and torch tensors (returned as a CPU tensor).
"""

from __future__ import annotations

import importlib
import itertools
import json
import pickle
import types
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import (
    ConfigError,
    CorruptModelFile,
    FlavorError,
    SchemaError,
    TrustError,
    UnsafePickle,
    UntrustedModel,
)
from modelyard.flavors import _pickle
from modelyard.flavors._base import Predictor, SavedFlavor, reject_unknown_options
from modelyard.flavors._torch_rebuild import infer_factory
from modelyard.format.environment import installed_version, pinned
from modelyard.format.mlmodel import MLmodel
from modelyard.trust import policy as _policy
from modelyard.trust.allowlist import resolve
from modelyard.trust.scan import scan_bytes

if TYPE_CHECKING:
    import torch

FORMATS = ("pickle", "safetensors")
DATA_DIR = "data"
PTH_FILE = "model.pth"
PT2_FILE = "model.pt2"
PICKLE_MODULE_FILE = "pickle_module_info.txt"
WEIGHTS_FILE = "model.safetensors"
FACTORY_FILE = "module_factory.pkl"
MLFLOW_PICKLE_MODULE = "mlflow.pytorch.pickle_module"
_OPTIONS = {"serialization_format", "module_factory", "module_kwargs"}
# Pickle module a saver recorded -> the module we unpickle with. MLflow's
# ``mlflow.pytorch.pickle_module`` is cloudpickle's pickler over the standard
# unpickler, and cloudpickle output is a plain pickle stream, so ``pickle``
# reads both without MLflow.
_PICKLE_MODULES = {
    MLFLOW_PICKLE_MODULE: "pickle",
    "cloudpickle": "pickle",
    "pickle": "pickle",
    "dill": "dill",
}


class PyTorchFlavor:
    """The ``pytorch`` flavor."""

    name = "pytorch"
    loader_modules = ("mlflow.pytorch", "modelyard.flavors.pytorch")
    config_keys = frozenset({"device"})

    def can_save(self, obj: Any) -> bool:
        """Instances of ``torch.nn.Module`` subclasses (checked without importing torch)."""
        return any(
            getattr(c, "__module__", None) == "torch.nn.modules.module"
            and getattr(c, "__qualname__", None) == "Module"
            for c in type(obj).__mro__
        )

    def save(self, obj: Any, model_dir: Path, options: Mapping[str, Any]) -> SavedFlavor:
        """Write the module; options: ``serialization_format``, ``module_factory``,
        ``module_kwargs``."""
        reject_unknown_options(self.name, options, _OPTIONS)
        fmt = options.get("serialization_format", "pickle")
        if fmt not in FORMATS:
            raise ValueError(f"serialization_format must be one of {FORMATS}, not {fmt!r}")
        import torch

        if not isinstance(obj, torch.nn.Module):
            raise TypeError(f"the pytorch flavor saves torch.nn.Module, not {type(obj).__name__}")
        data = model_dir / DATA_DIR
        data.mkdir()
        if fmt == "pickle":
            given = sorted({"module_factory", "module_kwargs"} & set(options))
            if given:
                raise ValueError(f"{given} only apply to serialization_format='safetensors'")
            return _save_pickle(obj, data)
        return _save_safetensors(
            obj, data, options.get("module_factory"), options.get("module_kwargs")
        )

    def load(self, model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> Any:
        """The module on the configured device, in eval mode."""
        device = resolve_device(config.get("device"))
        conf = mlmodel.flavors.get(self.name) or {}
        data = _inside(model_dir, conf.get("model_data") or mlmodel.pyfunc.get("data") or DATA_DIR)
        fmt = conf.get("serialization_format") or "pickle"
        if fmt == "safetensors":
            return _load_safetensors(data, conf, device)
        if fmt in ("pickle", "pt2"):
            return _load_mlflow_format(data, mlmodel, device)
        raise CorruptModelFile(data, self.name, f"unknown serialization_format {fmt!r}")

    def predictor(self, native: Any, mlmodel: MLmodel, config: Mapping[str, Any]) -> Predictor:
        """Call the module's ``forward`` under ``torch.no_grad()``; ``params`` become kwargs."""
        import torch

        device = torch.device(resolve_device(config.get("device")))
        dtype = _float_dtype(native)

        def predict(data: Any, params: Mapping[str, Any] | None) -> Any:
            if params and "device" in params:
                raise ConfigError(
                    "'device' is chosen when loading, not per call: "
                    "load_model(uri, model_config={'device': ...})",
                    keys=["device"],
                    declared=["device"],
                )
            tensor, frame = _to_tensor(data, dtype)
            with torch.no_grad():
                out = native(tensor.to(device), **dict(params or {}))
            return _from_output(out, data, frame)

        return predict


# -- devices ------------------------------------------------------------------


def resolve_device(requested: Any) -> str:
    """The torch device to use: ``requested`` checked for availability, or the default.

    The default follows MLflow: the first CUDA device when there is one, else
    the CPU. An unknown or unavailable device is a :class:`ConfigError`.
    """
    import torch

    if requested is None or requested == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(requested, (str, torch.device)):
        raise ConfigError(
            f"model_config 'device' must be a string such as 'cpu' or 'cuda:0', "
            f"not {type(requested).__name__}",
            keys=["device"],
            declared=["device"],
        )
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(
            f"model_config 'device': {str(requested)!r} is not a torch device ({exc})",
            keys=["device"],
            declared=["device"],
        ) from None
    problem = "the meta device holds no data" if device.type == "meta" else None
    if problem is None:
        try:
            torch.empty(0, device=device)
        except Exception as exc:  # torch raises AssertionError, RuntimeError, ... by backend
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if problem:
        raise ConfigError(
            f"model_config 'device': {str(requested)!r} is not available here ({problem}); "
            f"available: {', '.join(available_devices())}",
            keys=["device"],
            declared=["device"],
        )
    return str(device)


def available_devices() -> list[str]:
    """Devices this process can run on: ``cpu``, then CUDA devices and ``mps`` if present."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


# -- saving -------------------------------------------------------------------


def _save_pickle(module: Any, data: Path) -> SavedFlavor:
    import torch

    # MLflow reads this file, not MLmodel, to pick the unpickler. The stream is
    # exactly what MLflow's shim writes (cloudpickle's pickler), so its name is
    # the one MLflow can import.
    (data / PICKLE_MODULE_FILE).write_text(MLFLOW_PICKLE_MODULE, encoding="utf-8")
    if isinstance(module, torch.jit.ScriptModule):
        module.save(str(data / PTH_FILE))  # as MLflow does: TorchScript has its own archive
    else:
        torch.save(module, data / PTH_FILE, pickle_module=_cloudpickle_module())
    return SavedFlavor(
        flavor_conf={
            "model_data": DATA_DIR,
            "pytorch_version": str(torch.__version__),
            "code": None,
        },
        pyfunc_conf={
            "loader_module": "mlflow.pytorch",
            "data": DATA_DIR,
            "pickle_module_name": MLFLOW_PICKLE_MODULE,
            "config": {"device": None},
        },
        requirements=(torch_requirement(), pinned("cloudpickle"), pinned("numpy")),
    )


def _cloudpickle_module() -> types.ModuleType:
    # torch.save pickles with ``pickle_module.Pickler``; cloudpickle's pickler
    # writes classes and functions from __main__ by value, like MLflow's shim.
    import cloudpickle

    shim = types.ModuleType(MLFLOW_PICKLE_MODULE)
    for name, value in {
        "Pickler": cloudpickle.CloudPickler,
        "Unpickler": pickle.Unpickler,
        "dump": cloudpickle.dump,
        "dumps": cloudpickle.dumps,
        "load": pickle.load,
        "loads": pickle.loads,
    }.items():
        setattr(shim, name, value)
    return shim


def _save_safetensors(module: Any, data: Path, factory: Any, kwargs: Any) -> SavedFlavor:
    import safetensors.torch
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        raise TypeError("TorchScript modules have no rebuildable code; use the pickle format")
    kwargs = _check_kwargs(kwargs)
    if factory is None:
        inferred, why_not = infer_factory(module, kwargs, reference_of=_reference_of)
        if inferred is None:
            raise ValueError(
                f"serialization_format='safetensors' needs module_factory here: {why_not}; "
                "pass a class or function returning the untrained module, or an import "
                "reference 'package.module:Name'"
            )
        factory = inferred
    reference, fn = _factory(factory)
    _check_factory(fn, kwargs, module)
    safetensors.torch.save_model(module, str(data / WEIGHTS_FILE))
    conf: dict[str, Any] = {
        "model_data": DATA_DIR,
        "pytorch_version": str(torch.__version__),
        "code": None,
        "serialization_format": "safetensors",
        "weights_file": WEIGHTS_FILE,
        "module_factory": reference,
        "module_kwargs": kwargs,
    }
    requirements = [torch_requirement(), pinned("safetensors"), pinned("numpy")]
    if reference is None:
        _pickle.dump(fn, data / FACTORY_FILE, serializer="cloudpickle")
        conf["module_factory_file"] = FACTORY_FILE
        requirements.append(pinned("cloudpickle"))
    # MLflow has no loader for this layout; with modelyard installed next to
    # MLflow, mlflow.pyfunc finds ours (``_load_pyfunc`` below).
    requirements.append(pinned("modelyard"))
    return SavedFlavor(
        flavor_conf=conf,
        pyfunc_conf={
            "loader_module": "modelyard.flavors.pytorch",
            "data": DATA_DIR,
            "config": {"device": None},
        },
        requirements=tuple(requirements),
    )


def _check_kwargs(kwargs: Any) -> dict[str, Any]:
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise TypeError("module_kwargs must be a dict with string keys")
    try:
        # Stored in MLmodel (YAML), read back by MLflow's and our loaders alike.
        return dict(json.loads(json.dumps(dict(kwargs))))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"module_kwargs must hold JSON values (str, numbers, lists...): {exc}"
        ) from None


def _factory(factory: Any) -> tuple[str | None, Callable[..., Any]]:
    """(import reference or None, the callable). Importable callables keep their reference."""
    if isinstance(factory, str):
        try:
            return factory, import_reference(factory)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValueError(f"module_factory {factory!r} cannot be resolved: {exc}") from exc
    if not callable(factory):
        raise TypeError(
            f"module_factory must be callable or an import reference, not {type(factory).__name__}"
        )
    return _reference_of(factory), factory


def _reference_of(obj: Any) -> str | None:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    import cloudpickle

    # The user asked for this module's code to travel with the model.
    registered = cloudpickle.list_registry_pickle_by_value()
    if any(module == m or module.startswith(m + ".") for m in registered):
        return None
    reference = f"{module}:{qualname}"
    try:
        return reference if import_reference(reference) is obj else None
    except (ImportError, AttributeError, ValueError):
        return None


def import_reference(reference: str) -> Any:
    """The object named by ``"package.module:Qual.Name"``."""
    module_name, sep, qualname = reference.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"expected 'package.module:Name', got {reference!r}")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _check_factory(fn: Callable[..., Any], kwargs: Mapping[str, Any], module: Any) -> None:
    # Fail at save time, not at load time on another machine: the factory must
    # build a module whose state_dict has the same keys and shapes. The meta
    # device builds it without allocating memory for the weights.
    import torch

    try:
        with torch.device("meta"):
            built = fn(**kwargs)
    except Exception:
        built = fn(**kwargs)
    if not isinstance(built, torch.nn.Module):
        raise TypeError(f"module_factory returned {type(built).__name__}, not a torch.nn.Module")
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in built.state_dict().items()}
    problems = []
    if missing := sorted(set(want) - set(got)):
        problems.append(f"lacks {missing[:5]}")
    if extra := sorted(set(got) - set(want)):
        problems.append(f"has extra {extra[:5]}")
    if shapes := [
        f"{k} {got[k]} != {want[k]}" for k in sorted(want) if k in got and got[k] != want[k]
    ]:
        problems.append(f"has other shapes: {shapes[:5]}")
    if problems:
        raise ValueError(
            "module_factory does not rebuild this module: its state_dict " + "; ".join(problems)
        )


def torch_requirement() -> str:
    """``torch==X.Y.Z`` for the installed torch, without its local label.

    importlib.metadata reports the wheel's local label (``2.13.0+cpu``). pip
    cannot find ``torch==2.13.0+cpu`` on PyPI, while ``torch==2.13.0`` installs
    from PyPI or a local wheel alike and, by PEP 440, is satisfied by the
    installed ``2.13.0+cpu`` build, so the environment check still passes.
    MLflow strips the label the same way.
    """
    version = installed_version("torch")
    if version is None:
        return "torch"
    from packaging.version import InvalidVersion, Version

    try:
        return f"torch=={Version(version).public}"
    except InvalidVersion:
        return f"torch=={version}"


# -- loading ------------------------------------------------------------------


def _inside(root: Path, rel: Any) -> Path:
    target = (root / str(rel)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise CorruptModelFile(root, "pytorch", f"{rel!r} points outside the model directory")
    return target


def _load_mlflow_format(data: Path, mlmodel: MLmodel, device: str) -> Any:
    import torch

    pth, pt2 = data / PTH_FILE, data / PT2_FILE
    if pth.is_file():
        try:
            if _is_torchscript(pth):
                _torchscript_allowed(pth)
                module = torch.jit.load(  # type: ignore[no-untyped-call]
                    str(pth), map_location=device
                )
            else:
                _pickle_module(data, mlmodel)  # an unknown pickle module is refused as before
                module = _torch_load(pth, device)
        except (CorruptModelFile, ConfigError, TrustError):
            raise
        except ModuleNotFoundError as exc:
            raise CorruptModelFile(pth, "pytorch", _missing_module(exc)) from exc
        except Exception as exc:
            raise CorruptModelFile(pth, "pytorch", f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(module, torch.nn.Module):
            raise CorruptModelFile(
                pth, "pytorch", f"it holds a {type(module).__name__}, not a torch.nn.Module"
            )
        return module.to(device).eval()
    if pt2.is_file():
        try:
            module = torch.export.load(pt2).module()
        except Exception as exc:
            raise CorruptModelFile(pt2, "pytorch", f"{type(exc).__name__}: {exc}") from exc
        # An exported program's weights cannot move between devices.
        target = torch.device(device).type
        for tensor in itertools.chain(module.parameters(), module.buffers()):
            if tensor.device.type != target:
                raise ConfigError(
                    f"model_config 'device': this model was exported with torch.export on "
                    f"{tensor.device.type!r} and cannot run on {device!r}",
                    keys=["device"],
                    declared=["device"],
                )
        return module
    raise CorruptModelFile(pth, "pytorch", f"neither {PTH_FILE} nor {PT2_FILE} is in {data}")


# torch.load renames this module before find_class sees it (torch.serialization._load)
_TORCH_MODULE_RENAMES = {"torch.tensor": "torch._tensor"}


def _torch_load(pth: Path, device: str) -> Any:
    """``torch.load`` of a whole-module archive, behind the scan.

    ``data.pkl`` is read with torch's own archive reader (so the scan sees the
    bytes torch unpickles) and scanned. A model the allow-list covers loads
    with ``weights_only=True`` and exactly the scanned classes as safe
    globals; a model vouched for by a trusted signature (it carries code)
    loads through the restricted unpickler, which still resolves only the
    scanned names.
    """
    import torch

    pickled = _archive_pickle(pth)
    scan = scan_bytes(pickled, source=f"{pth}:data.pkl")
    policy = _policy.current()
    admitted = policy.admit(scan, pth)
    if policy.vouched_by is None and not policy.allow_all:
        safe = [resolve(g) for g in sorted(scan.globals)]
        with torch.serialization.safe_globals([o for o in safe if o is not None]):
            return torch.load(pth, map_location=device, weights_only=True)
    renamed = {(_TORCH_MODULE_RENAMES.get(m, m), n) for m, n in admitted}
    module = _pickle.restricted_module(admitted | renamed, pth)
    return torch.load(pth, map_location=device, pickle_module=module, weights_only=False)


def _archive_pickle(pth: Path) -> bytes:
    import torch

    if not zipfile.is_zipfile(pth):
        with open(pth, "rb") as fh:
            legacy = fh.read(1) == b"\x80"  # the legacy format starts with a pickle
        if not legacy:
            raise CorruptModelFile(pth, "pytorch", "it is not a torch archive (not a zip file)")
        raise UnsafePickle(
            pth,
            "it is not a torch zip archive: the legacy format (torch < 1.6) holds several "
            "pickles and is not loaded; re-save the model with a current torch",
        )
    with zipfile.ZipFile(pth) as archive:
        names = archive.namelist()
    if len(names) != len(set(names)):
        raise UnsafePickle(pth, "the archive lists the same entry twice")
    reader = torch._C.PyTorchFileReader(str(pth))
    records = reader.get_all_records()
    if "data.pkl" not in records:
        raise UnsafePickle(pth, "the archive holds no data.pkl")
    return bytes(reader.get_record("data.pkl"))


def _torchscript_allowed(pth: Path) -> None:
    policy = _policy.current()
    if policy.vouched_by is None and not policy.allow_all:
        raise UntrustedModel(
            pth,
            ["torch.jit (TorchScript code)"],
            hint="a TorchScript archive is code: it loads when signed by a key you trust "
            "(models you save are signed with your default key), or with "
            "load_model(uri, trust='all') if you trust its source",
        )


def _is_torchscript(file: Path) -> bool:
    # TorchScript archives carry a constants.pkl record; torch.save archives do not.
    if not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as archive:
        return any(n.count("/") == 1 and n.endswith("/constants.pkl") for n in archive.namelist())


def _pickle_module(data: Path, mlmodel: MLmodel) -> types.ModuleType:
    # MLflow reads the file and ignores MLmodel's pickle_module_name; so do we,
    # falling back to MLmodel, then to MLflow's default.
    info = data / PICKLE_MODULE_FILE
    name = info.read_text(encoding="utf-8").strip() if info.is_file() else ""
    name = name or str(mlmodel.pyfunc.get("pickle_module_name") or MLFLOW_PICKLE_MODULE)
    target = _PICKLE_MODULES.get(name)
    if target is None:
        raise CorruptModelFile(
            info,
            "pytorch",
            f"it was saved with the pickle module {name!r}; modelyard reads "
            f"{', '.join(sorted(_PICKLE_MODULES))}",
        )
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise CorruptModelFile(info, "pytorch", _missing_module(exc)) from exc


def _missing_module(exc: ModuleNotFoundError) -> str:
    name = exc.name or str(exc)
    if name == "mlflow" or name.startswith("mlflow."):
        return f"the pickle refers to {name!r} from MLflow, which is not installed"
    return (
        f"it needs the module {name!r}, which is not importable: install it, or save the "
        "model with code_paths=[...] so its code travels with it"
    )


def _load_safetensors(data: Path, conf: Mapping[str, Any], device: str) -> Any:
    import safetensors.torch
    import torch

    fn, where = _saved_factory(data, conf)
    kwargs = conf.get("module_kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise CorruptModelFile(where, "pytorch", "module_kwargs in MLmodel is not a mapping")
    weights = _inside(data, conf.get("weights_file") or WEIGHTS_FILE)
    fast = _load_onto_meta(fn, kwargs, weights, device)
    if fast is not None:
        return fast.eval()
    try:
        module = fn(**kwargs)
    except Exception as exc:
        raise CorruptModelFile(
            where, "pytorch", f"module_factory failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise CorruptModelFile(
            where, "pytorch", f"module_factory returned {type(module).__name__}, not a module"
        )
    try:
        safetensors.torch.load_model(module, weights, strict=True, device=device)
    except Exception as exc:
        raise CorruptModelFile(weights, "pytorch", f"{type(exc).__name__}: {exc}") from exc
    return module.to(device).eval()


def _load_onto_meta(
    fn: Callable[..., Any], kwargs: Mapping[str, Any], weights: Path, device: str
) -> Any:
    """The module built on the meta device and given the file's tensors, or ``None``
    where that would not be exactly what building it for real and copying the
    weights in gives.

    Building a module for real initialises its weights only to overwrite them
    (for ~200 MB, about 0.1 s of a cold load and a second copy in memory). Kept
    to modules without shared tensors (a tie is one tensor under two names) and
    without buffers outside the state_dict (their values come from the
    constructor), whose every tensor the state_dict replaces; tensors are cast to
    the dtype the module gives them, as copying would.
    """
    import safetensors.torch
    import torch

    try:
        with torch.device("meta"):
            module = fn(**kwargs)
    except Exception:
        return None  # built for real below, which reports a failing factory
    if not isinstance(module, torch.nn.Module):
        return None
    params = list(module.named_parameters(remove_duplicate=False))
    buffers = list(module.named_buffers(remove_duplicate=False))
    if (
        len({id(t) for _, t in params + buffers}) != len(params) + len(buffers)
        or any(m._non_persistent_buffers_set for m in module.modules())
        or not all(t.is_meta for _, t in params + buffers)
    ):
        return None
    wanted = module.state_dict()
    try:
        state = safetensors.torch.load_file(str(weights), device=device)
    except Exception as exc:
        raise CorruptModelFile(weights, "pytorch", f"{type(exc).__name__}: {exc}") from exc
    if state.keys() != wanted.keys():
        return None  # the copying path names what is missing or extra
    for key, tensor in state.items():
        if tensor.dtype != wanted[key].dtype:
            state[key] = tensor.to(wanted[key].dtype)
    try:
        module.load_state_dict(state, strict=True, assign=True)
    except Exception as exc:
        raise CorruptModelFile(weights, "pytorch", f"{type(exc).__name__}: {exc}") from exc
    if any(t.is_meta for t in itertools.chain(module.parameters(), module.buffers())):
        return None
    return module.to(device)


def _saved_factory(data: Path, conf: Mapping[str, Any]) -> tuple[Callable[..., Any], Path]:
    reference = conf.get("module_factory")
    if reference:
        # MLmodel names a callable that is called at load: the same policy as a pickle's globals
        _policy.current().admit_reference(str(reference), data)
        try:
            fn = import_reference(str(reference))
        except ModuleNotFoundError as exc:
            raise CorruptModelFile(
                data, "pytorch", f"module_factory {reference!r}: {_missing_module(exc)}"
            ) from exc
        except (ImportError, AttributeError, ValueError) as exc:
            raise CorruptModelFile(
                data, "pytorch", f"module_factory {reference!r} cannot be resolved: {exc}"
            ) from exc
        where = data
    elif conf.get("module_factory_file"):
        # a pickled factory is code: _pickle.load admits it only for a vouched model
        where = _inside(data, conf["module_factory_file"])
        fn = _pickle.load(where, flavor="pytorch")
    else:
        raise CorruptModelFile(data, "pytorch", "MLmodel names no module_factory")
    if not callable(fn):
        raise CorruptModelFile(where, "pytorch", f"module_factory is a {type(fn).__name__}")
    return fn, where


# -- predicting ---------------------------------------------------------------


def _float_dtype(module: Any) -> torch.dtype | None:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype  # type: ignore[no-any-return]
    return None


def _to_tensor(data: Any, dtype: torch.dtype | None) -> tuple[torch.Tensor, bool]:
    """The input as a tensor, and whether it came from a DataFrame.

    Floating input takes the module's floating dtype: numpy and pandas default
    to float64 while modules default to float32 (MLflow converts DataFrames to
    float32 and fails on float64 arrays).
    """
    import numpy as np
    import pandas as pd
    import torch

    if isinstance(data, torch.Tensor):
        return data, False
    if isinstance(data, pd.DataFrame):
        return _cast(torch.from_numpy(_frame_to_numpy(data, dtype)), dtype), True
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "biuf":
            raise SchemaError(
                f"the pytorch flavor needs a numeric array, got dtype {data.dtype}",
                expected="numeric ndarray",
                received=str(data.dtype),
            )
        # torch.from_numpy shares memory and warns on read-only arrays (pandas
        # copy-on-write hands those out); a copy costs less than the warning. It
        # keeps the memory layout: MLflow feeds the view itself, and a column-major
        # matmul may round the last bit differently from a row-major one.
        array = data if data.flags.writeable else data.copy(order="K")
        return _cast(torch.from_numpy(array), dtype), False
    raise SchemaError(
        f"the pytorch flavor predicts on a numpy.ndarray, a pandas.DataFrame or a "
        f"torch.Tensor, not {type(data).__module__}.{type(data).__qualname__}",
        expected="ndarray, DataFrame or Tensor",
        received=type(data).__name__,
    )


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    if dtype is not None and tensor.is_floating_point() and tensor.dtype != dtype:
        return tensor.to(dtype)
    return tensor


def _frame_to_numpy(frame: Any, dtype: torch.dtype | None) -> Any:
    import numpy as np
    import pandas as pd
    import torch

    target = np.float64 if dtype == torch.float64 else np.float32
    bad = [
        c
        for c in frame.columns
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ]
    if bad:
        raise SchemaError(
            f"column {bad[0]!r} has dtype {frame[bad[0]].dtype}; the pytorch flavor turns a "
            f"DataFrame into one {np.dtype(target).name} tensor and needs numeric columns",
            column=str(bad[0]),
            expected="numeric",
            received=str(frame[bad[0]].dtype),
        )
    try:
        array = frame.to_numpy(dtype=target)
    except (TypeError, ValueError) as exc:
        raise SchemaError(
            f"cannot turn the DataFrame into a {np.dtype(target).name} tensor: {exc}",
            expected=np.dtype(target).name,
        ) from exc
    return array if array.flags.writeable else array.copy(order="K")  # see _to_tensor


def _from_output(out: Any, data: Any, frame: bool) -> Any:
    import pandas as pd
    import torch

    if not isinstance(out, torch.Tensor):
        raise FlavorError(
            f"the module returned a {type(out).__name__}; the pytorch flavor needs forward() "
            "to return one tensor (Model.unwrap() gives the module itself)"
        )
    out = out.detach().cpu()
    if isinstance(data, torch.Tensor):
        return out
    if out.dtype == torch.bfloat16:  # numpy has no bfloat16
        out = out.float()
    array = out.numpy()
    if not frame:
        return array
    if array.ndim > 2:
        raise FlavorError(
            f"the module returned a {array.ndim}-d tensor, which does not fit a DataFrame; "
            "pass a numpy array to get it as an array"
        )
    return pd.DataFrame(array, index=data.index)


# -- MLflow's pyfunc entry point ------------------------------------------------


class _PyfuncModel:
    """What ``mlflow.pyfunc.load_model`` gets for a model saved in a modelyard-only layout."""

    def __init__(self, module: Any, predict: Predictor) -> None:
        self.module = module
        self._predict = predict

    def get_raw_model(self) -> Any:
        """The ``torch.nn.Module``."""
        return self.module

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predictions, as modelyard's ``Model.predict`` gives them."""
        return self._predict(data, params)


def _load_pyfunc(path: str, model_config: Mapping[str, Any] | None = None) -> _PyfuncModel:
    """Called by ``mlflow.pyfunc.load_model`` with the model's ``data`` directory."""
    model_dir = Path(path).parent
    mlmodel = MLmodel.read(model_dir)
    config = dict(model_config or {})
    # MLflow calls this without modelyard's loader: check the signature here, so a
    # model its owner signed loads as it does through load_model, and others do not.
    with _policy.using(_policy.policy_for(vouched_by=_signer_of(model_dir))):
        module = flavor.load(model_dir, mlmodel, config)
    return _PyfuncModel(module, flavor.predictor(module, mlmodel, config))


def _signer_of(model_dir: Path) -> str | None:
    from modelyard.format.content import ContentManifest
    from modelyard.trust.signing import check_signature

    manifest = ContentManifest.read(model_dir)
    if manifest is None:
        return None
    manifest.verify(model_dir)
    status = check_signature(model_dir, manifest.digest, manifest=manifest)
    return status.vouched_by


flavor = PyTorchFlavor()
