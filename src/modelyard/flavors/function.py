"""Plain Python callables: ``def predict(model_input): ...``.

Saved as a :class:`~modelyard.PythonModel` wrapping the function, in MLflow's
custom-pyfunc layout, so loading goes through the ``python_model`` flavor and
``Model.unwrap().func`` gives the function back.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelyard.flavors._base import Predictor, SavedFlavor, reject_unknown_options
from modelyard.flavors.python_model import PythonModel, unwrap_mlflow
from modelyard.flavors.python_model import flavor as _python_model
from modelyard.format.mlmodel import MLmodel


class FunctionModel(PythonModel):
    """A :class:`PythonModel` that calls a plain function."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self._takes_params = "params" in inspect.signature(func).parameters

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Also what MLflow's _FunctionPythonModel unpickles into: its state is
        # {"func": <MLflow's type-hint wrapper>, "signature": ...}, without
        # _takes_params, and MLflow calls func with the input only.
        if "_takes_params" not in state:
            # MLflow's pickled copies of the signature and type hints: MLmodel
            # holds the signature, and they would need MLflow to be of any use.
            state = {"func": state["func"], "_takes_params": False}
        self.__dict__.update(state)
        self.func = unwrap_mlflow(self.func)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        """``func(model_input)``, or ``func(model_input, params=params)`` when it takes them."""
        if self._takes_params:
            return self.func(model_input, params=params)
        return self.func(model_input)


class FunctionFlavor:
    """The ``function`` flavor: saving only; loading is ``python_model``'s."""

    name = "function"
    loader_modules: tuple[str, ...] = ()
    config_keys: frozenset[str] = frozenset()

    def can_save(self, obj: Any) -> bool:
        """Functions and other callables that are not classes."""
        return callable(obj) and not isinstance(obj, type)

    def save(self, obj: Any, model_dir: Path, options: Mapping[str, Any]) -> SavedFlavor:
        """Wrap in :class:`FunctionModel` and save as a custom Python model."""
        reject_unknown_options(self.name, options, {"artifacts"})
        return _python_model.save(FunctionModel(obj), model_dir, options)

    def load(self, model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> Any:
        """Load through ``python_model``."""
        return _python_model.load(model_dir, mlmodel, config)

    def predictor(self, native: Any, mlmodel: MLmodel, config: Mapping[str, Any]) -> Predictor:
        """The ``python_model`` predictor."""
        return _python_model.predictor(native, mlmodel, config)


flavor = FunctionFlavor()
