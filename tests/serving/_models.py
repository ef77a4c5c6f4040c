"""Custom models the serving tests save; pickled by value so a server needs no test code."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import modelyard


class Doubler(modelyard.PythonModel):
    """Doubles column x; raises on negative values (a model bug, not bad input)."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        x = np.asarray(model_input["x"], dtype=float)
        if (x < 0).any():
            raise RuntimeError("secret internal detail: negative input reached the model")
        return x * 2


class Sleeper(modelyard.PythonModel):
    """Sleeps ``params['seconds']`` (default 0), then answers zeros."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        time.sleep(float((params or {}).get("seconds", 0.0)))
        return np.zeros(len(model_input))


class Echo(modelyard.PythonModel):
    """Returns what it got, described: the type and, for dicts, the keys."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return {
            "type": type(model_input).__name__,
            "keys": sorted(model_input) if isinstance(model_input, dict) else None,
            "params": params,
        }


class Versioned(modelyard.PythonModel):
    """Answers its own version number for every row."""

    def __init__(self, version: int) -> None:
        self.version = version

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return np.full(len(model_input), self.version)


class FailsToLoad(modelyard.PythonModel):
    """A version that cannot be loaded (its weights are 'missing')."""

    def load_context(self, context: Any) -> None:
        raise RuntimeError("cannot open the weights")

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return np.zeros(len(model_input))
