"""Pickle and cloudpickle, with MLflow's classes mapped to ours on the way in.

A custom ``mlflow.pyfunc.PythonModel`` pickled by MLflow refers to MLflow's
base class by name. Unpickling it must not need MLflow: ``find_class`` hands
back modelyard's equivalents instead.

MLflow also wraps ``predict`` of every ``PythonModel`` subclass in a
type-hint validator, and cloudpickle stores that wrapper with the class,
together with references to the MLflow internals it calls. modelyard calls
the user's own function (the wrapper keeps it as ``__wrapped__``), so those
internals are replaced by inert stand-ins below that only exist to be
unpickled. Any other MLflow reference fails with a :class:`CorruptModelFile`
naming it.

Nothing is unpickled before the trust policy admits it: the bytes are read
once, scanned (:mod:`modelyard.trust.scan`), checked against the policy of
the load in progress (:mod:`modelyard.trust.policy`), and unpickled from
those same bytes by an unpickler whose ``find_class`` resolves only the
names the policy admitted. There is no other path to ``pickle.load``.
"""

from __future__ import annotations

import gc
import io
import pickle
import types
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, NamedTuple

from modelyard.errors import CorruptModelFile, TrustError, UntrustedModel
from modelyard.trust import policy as _policy
from modelyard.trust.scan import scan_bytes

#: a pickle (after decompression) larger than this is refused unread
MAX_PICKLE_BYTES = 16 << 30

_HERE = __name__

# (module, qualname) -> (module, qualname) of what we provide instead.
_MLFLOW_CLASSES = {
    ("mlflow.pyfunc.model", "PythonModel"): ("modelyard.flavors.python_model", "PythonModel"),
    ("mlflow.pyfunc", "PythonModel"): ("modelyard.flavors.python_model", "PythonModel"),
    ("mlflow.pyfunc.model", "PythonModelContext"): (
        "modelyard.flavors.python_model",
        "PythonModelContext",
    ),
    ("mlflow.pyfunc", "PythonModelContext"): (
        "modelyard.flavors.python_model",
        "PythonModelContext",
    ),
    # A plain function saved with mlflow.pyfunc.save_model(python_model=func).
    ("mlflow.pyfunc.model", "_FunctionPythonModel"): (
        "modelyard.flavors.function",
        "FunctionModel",
    ),
    # Only reachable from MLflow's predict wrapper and its cached type hints.
    ("mlflow.models.signature", "_TypeHints"): (_HERE, "MlflowTypeHints"),
    ("mlflow.pyfunc.utils.data_validation", "FuncInfo"): (_HERE, "MlflowFuncInfo"),
    ("mlflow.pyfunc.utils.data_validation", "_validate_model_input"): (
        _HERE,
        "mlflow_type_hint_validation",
    ),
    ("mlflow.exceptions", "MlflowException"): (_HERE, "MlflowException"),
}


class MlflowTypeHints:
    """Stands in for MLflow's cached ``predict`` type hints (``input``, ``output``)."""

    input: Any = None
    output: Any = None


class MlflowFuncInfo(NamedTuple):
    """Stands in for the type-hint record MLflow's predict wrapper closes over."""

    input_type_hint: Any
    input_param_name: str


class MlflowException(Exception):
    """Stands in for ``mlflow.exceptions.MlflowException`` inside MLflow's predict wrapper."""


def mlflow_type_hint_validation(*args: Any, **kwargs: Any) -> Any:
    """Stands in for MLflow's input validation; reached only if MLflow's wrapper is called."""
    raise MlflowException(
        "MLflow's type-hint validation is not available in modelyard; "
        "call the model through modelyard.load_model(...).predict()"
    )


# MLflow modules that only describe data (signatures, schemas). MLflow pickles
# copies of them into some models (a function model saved with an explicit
# signature keeps it as an attribute); they may be unpickled as inert records,
# but a model that still holds one after loading is refused.
_MLFLOW_DATA_MODULES = ("mlflow.types.", "mlflow.models.signature")


class _InertMlflowObject:
    """A record standing in for an MLflow data object while unpickling."""

    _mlflow_ref = "mlflow"
    _alive: weakref.WeakSet[_InertMlflowObject]

    def __new__(cls, *args: Any, **kwargs: Any) -> _InertMlflowObject:
        obj = super().__new__(cls)
        cls._alive.add(obj)
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<stand-in for {self._mlflow_ref}>"


class _Unpickler(pickle.Unpickler):
    def __init__(
        self,
        file: IO[bytes],
        *,
        admitted: frozenset[tuple[str, str]],
        source: Path | str,
        **kwargs: Any,
    ) -> None:
        super().__init__(file, **kwargs)
        self.inert: weakref.WeakSet[_InertMlflowObject] = weakref.WeakSet()
        self._inert_classes: dict[str, type[_InertMlflowObject]] = {}
        self._admitted = admitted
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        # The second layer: the scan admitted these names as written in the
        # stream; anything else reaching here (a scanner miss) is refused
        # before it is imported.
        if (module, name) not in self._admitted:
            raise UntrustedModel(
                self._source,
                [f"{module}.{name}"],
                hint="the unpickler met a name the scan did not admit",
            )
        mapped = _MLFLOW_CLASSES.get((module, name))
        if mapped is not None:
            module, name = mapped
        elif module == "mlflow" or module.startswith("mlflow."):
            try:
                return super().find_class(module, name)
            except ImportError:
                if f"{module}.".startswith(_MLFLOW_DATA_MODULES):
                    return self._inert(f"{module}.{name}")
                raise _NeedsMlflow(f"{module}.{name}") from None
        return super().find_class(module, name)

    def _inert(self, ref: str) -> type[_InertMlflowObject]:
        if ref not in self._inert_classes:
            attrs = {"_mlflow_ref": ref, "_alive": self.inert}
            self._inert_classes[ref] = type(ref.rsplit(".", 1)[-1], (_InertMlflowObject,), attrs)
        return self._inert_classes[ref]


class _NeedsMlflow(ImportError):
    def __init__(self, ref: str, *, kept: bool = False) -> None:
        super().__init__(ref)
        self.ref = ref
        self.kept = kept


def _unpickle(fh: IO[bytes], admitted: frozenset[tuple[str, str]], source: Path | str) -> Any:
    unpickler = _Unpickler(fh, admitted=admitted, source=source)
    obj = unpickler.load()
    inert = unpickler.inert
    del unpickler  # its memo holds every unpickled object
    if len(inert):
        gc.collect()  # stand-ins dropped while loading may sit in reference cycles
    survivors = sorted({o._mlflow_ref for o in inert})
    if survivors:
        raise _NeedsMlflow(", ".join(survivors), kept=True)
    return obj


def dump(obj: Any, file: Path, *, serializer: str = "cloudpickle") -> None:
    """Pickle ``obj`` with ``pickle`` or ``cloudpickle`` at the default protocol.

    The default (not highest) protocol keeps files loadable by older Pythons, as
    MLflow does.
    """
    with open(file, "wb") as fh:
        if serializer == "cloudpickle":
            import cloudpickle

            cloudpickle.dump(obj, fh, protocol=pickle.DEFAULT_PROTOCOL)
        elif serializer == "pickle":
            pickle.dump(obj, fh, protocol=pickle.DEFAULT_PROTOCOL)
        else:
            raise ValueError(f"unknown serializer {serializer!r}; use 'cloudpickle' or 'pickle'")


def read_capped(file: Path, opener: Callable[..., Any] = open) -> bytes:
    """The bytes of ``file`` through ``opener`` (decompressing), refused past the cap."""
    fh: IO[bytes]
    with opener(file, "rb") as fh:
        data = fh.read(MAX_PICKLE_BYTES + 1)
    if len(data) > MAX_PICKLE_BYTES:
        from modelyard.errors import UnsafePickle

        raise UnsafePickle(file, f"it holds more than {MAX_PICKLE_BYTES} bytes (size budget)")
    return data


def admit(data: bytes, source: Path | str) -> frozenset[tuple[str, str]]:
    """Scan ``data`` and check it against the load's policy; the names it may resolve."""
    return _policy.current().admit(scan_bytes(data, source=source), source)


def restricted_module(admitted: frozenset[tuple[str, str]], source: Path | str) -> types.ModuleType:
    """A ``pickle``-like module whose ``Unpickler`` resolves only ``admitted`` names.

    For libraries that take a ``pickle_module`` (``torch.load``).
    """

    class Unpickler(_Unpickler):
        def __init__(self, file: IO[bytes], **kwargs: Any) -> None:
            super().__init__(file, admitted=admitted, source=source, **kwargs)

    shim = types.ModuleType("modelyard_restricted_pickle")
    shim.Unpickler = Unpickler  # type: ignore[attr-defined]
    shim.load = lambda fh, **kw: Unpickler(fh, **kw).load()  # type: ignore[attr-defined]
    shim.loads = lambda b, **kw: Unpickler(io.BytesIO(b), **kw).load()  # type: ignore[attr-defined]
    shim.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    return shim


def load(file: Path, *, flavor: str, opener: Any = open) -> Any:
    """Unpickle ``file`` under the load's trust policy.

    A refusal is a :class:`~modelyard.errors.TrustError`; any other failure
    becomes :class:`CorruptModelFile` keeping its cause.
    """
    try:
        data = read_capped(file, opener)
        admitted = admit(data, file)
        return _unpickle(io.BytesIO(data), admitted, file)
    except TrustError:
        raise
    except FileNotFoundError as exc:
        raise CorruptModelFile(file, flavor, "the file is missing") from exc
    except _NeedsMlflow as exc:
        what = "the model holds MLflow objects" if exc.kept else "the pickle refers to"
        raise CorruptModelFile(
            file,
            flavor,
            f"{what} {exc.ref}, which modelyard does not provide and which needs MLflow "
            "(not installed)",
        ) from exc
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "mlflow":
            raise CorruptModelFile(
                file,
                flavor,
                f"the model imports the MLflow module {exc.name!r}, which modelyard does not "
                "provide and which is not installed",
            ) from exc
        raise CorruptModelFile(
            file, flavor, f"it needs the module {exc.name!r}, which is not installed"
        ) from exc
    except Exception as exc:
        raise CorruptModelFile(file, flavor, f"{type(exc).__name__}: {exc}") from exc
