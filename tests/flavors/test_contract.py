"""The contract every registered flavor passes: save, load, predict the same, refuse bad options.

A new flavor adds one sample to ``SAMPLES``; the suite fails for a registered
flavor without one, so no flavor ships untested.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard
from modelyard.flavors import Flavor, get_flavor, list_flavors
from modelyard.format.mlmodel import MLmodel

Sample = tuple[Any, Any, Callable[[Any], Any]]  # (object to save, input, expected predict)


def _sklearn() -> Sample:
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    est = LinearRegression().fit(X, [0.0, 1.0, 2.0, 3.5])
    return est, X, est.predict


class _Affine(modelyard.PythonModel):
    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input * 3 + 1


def _python_model() -> Sample:
    X = pd.DataFrame({"a": [1.0, 2.0]})
    return _Affine(), X, lambda x: x * 3 + 1


def _function() -> Sample:
    X = pd.DataFrame({"a": [1.0, 2.0]})
    return (lambda df: df["a"] - 1), X, (lambda x: x["a"] - 1)


def _pytorch() -> Sample:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    X = np.arange(6, dtype=np.float32).reshape(2, 3)

    def expected(x: Any) -> Any:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    return net, X, expected


def _trees_data() -> tuple[pd.DataFrame, list[float]]:
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
    return X, [0.0, 1.0, 2.0, 3.5, 4.0, 5.5]


def _xgboost() -> Sample:
    xgboost = pytest.importorskip("xgboost")
    X, y = _trees_data()
    est = xgboost.XGBRegressor(n_estimators=4, max_depth=2).fit(X, y)
    return est, X, est.predict


def _lightgbm() -> Sample:
    lightgbm = pytest.importorskip("lightgbm")
    X, y = _trees_data()
    est = lightgbm.LGBMRegressor(n_estimators=4, min_child_samples=1, verbose=-1).fit(X, y)
    return est, X, est.predict


SAMPLES: dict[str, Callable[[], Sample]] = {
    "sklearn": _sklearn,
    "python_model": _python_model,
    "function": _function,
    "pytorch": _pytorch,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
}


def _as_array(x: Any) -> np.ndarray:
    return np.asarray(x.to_numpy() if hasattr(x, "to_numpy") else x, dtype=float)


@pytest.fixture(params=list_flavors())
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return get_flavor(request.param)


def test_every_flavor_has_a_sample(flavor: Flavor) -> None:
    assert flavor.name in SAMPLES, f"add a sample for flavor {flavor.name!r} to SAMPLES"


def test_interface(flavor: Flavor) -> None:
    assert isinstance(flavor.loader_modules, tuple)
    assert isinstance(flavor.config_keys, frozenset)
    assert not flavor.can_save(object())


def test_save_load_predict(flavor: Flavor, tmp_path: Path) -> None:
    obj, data, expected = SAMPLES[flavor.name]()
    assert flavor.can_save(obj)
    info = modelyard.save_model(obj, tmp_path / "m", flavor=flavor.name)
    mlmodel = MLmodel.read(tmp_path / "m")
    assert mlmodel.pyfunc.get("loader_module"), "MLflow needs a python_function loader_module"
    assert mlmodel.python_version
    model = modelyard.load_model(tmp_path / "m")
    assert model.digest == info.digest
    np.testing.assert_allclose(_as_array(model.predict(data)), _as_array(expected(data)))
    assert model.unwrap() is not None


def test_unknown_option_refused_and_nothing_written(flavor: Flavor, tmp_path: Path) -> None:
    obj, _, _ = SAMPLES[flavor.name]()
    with pytest.raises(modelyard.SaveError, match="no_such_option"):
        modelyard.save_model(obj, tmp_path / "m", flavor=flavor.name, no_such_option=1)
    assert list(tmp_path.iterdir()) == []
