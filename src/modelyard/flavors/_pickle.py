"""Pickle and cloudpickle, with MLflow's classes mapped to ours on the way in.

A custom ``mlflow.pyfunc.PythonModel`` pickled by MLflow refers to MLflow's
base class by name. Unpickling it must not need MLflow: ``find_class`` hands
back modelyard's equivalents instead.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any

from modelyard.errors import CorruptModelFile

# (module, qualname) -> (module, qualname) of the class we provide instead.
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
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        mapped = _MLFLOW_CLASSES.get((module, name))
        if mapped is not None:
            module, name = mapped
        elif module == "mlflow" or module.startswith("mlflow."):
            try:
                return super().find_class(module, name)
            except ImportError:
                raise _NeedsMlflow(f"{module}.{name}") from None
        return super().find_class(module, name)


class _NeedsMlflow(ImportError):
    pass


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


def load(file: Path, *, flavor: str, opener: Any = open) -> Any:
    """Unpickle ``file``; any failure becomes :class:`CorruptModelFile` keeping its cause."""
    try:
        fh: IO[bytes]
        with opener(file, "rb") as fh:
            return _Unpickler(fh).load()
    except FileNotFoundError as exc:
        raise CorruptModelFile(file, flavor, "the file is missing") from exc
    except _NeedsMlflow as exc:
        raise CorruptModelFile(
            file,
            flavor,
            f"the pickle refers to {exc} from MLflow, which modelyard does not provide "
            "and which is not installed",
        ) from exc
    except ModuleNotFoundError as exc:
        raise CorruptModelFile(
            file, flavor, f"it needs the module {exc.name!r}, which is not installed"
        ) from exc
    except Exception as exc:
        raise CorruptModelFile(file, flavor, f"{type(exc).__name__}: {exc}") from exc
