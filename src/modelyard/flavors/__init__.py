"""Flavors: one small module per framework, all in one registry.

Third-party packages add flavors through the entry-point group
``modelyard.flavors``; an entry point's name is the flavor's name and its value
points at an object satisfying :class:`Flavor`::

    [project.entry-points."modelyard.flavors"]
    xgboost = "my_package.flavor:flavor"
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelyard._registry import Registry
from modelyard.errors import UnknownFlavor
from modelyard.flavors._base import Flavor, Predictor, SavedFlavor
from modelyard.format.mlmodel import MLmodel

__all__ = [
    "Flavor",
    "Predictor",
    "SavedFlavor",
    "flavor_for_mlmodel",
    "flavor_for_object",
    "get_flavor",
    "list_flavors",
    "register_flavor",
]

# Order matters when picking a flavor for an object: specific before generic,
# plain callables last. XGBoost's and LightGBM's scikit-learn classes derive from
# scikit-learn's, so their flavors come before sklearn's.
_BUILTINS = {
    "python_model": "modelyard.flavors.python_model:flavor",
    "xgboost": "modelyard.flavors.xgboost:flavor",
    "lightgbm": "modelyard.flavors.lightgbm:flavor",
    "sklearn": "modelyard.flavors.sklearn:flavor",
    "pytorch": "modelyard.flavors.pytorch:flavor",
    "function": "modelyard.flavors.function:flavor",
}
_FALLBACK = "function"


def _validate(name: str, item: object) -> Flavor:
    missing = [
        attr
        for attr in (
            "name",
            "loader_modules",
            "config_keys",
            "can_save",
            "save",
            "load",
            "predictor",
        )
        if not hasattr(item, attr)
    ]
    if missing:
        raise TypeError(f"flavor {name!r} does not implement {missing}")
    own_name = getattr(item, "name", None)
    if own_name != name:
        raise TypeError(f"flavor registered as {name!r} calls itself {own_name!r}")
    for method in ("can_save", "save", "load", "predictor"):
        if not callable(getattr(item, method)):
            raise TypeError(f"flavor {name!r}: {method} is not callable")
    assert isinstance(item, Flavor)
    return item


_registry: Registry[Flavor] = Registry("flavor", "modelyard.flavors", _BUILTINS, _validate)


def register_flavor(flavor: Flavor, *, replace: bool = False) -> Flavor:
    """Add a flavor at run time (entry points are the usual way).

    >>> register_flavor(MyFlavor())  # doctest: +SKIP
    """
    return _registry.register(flavor.name, flavor, replace=replace)


def get_flavor(name: str) -> Flavor:
    """The flavor registered as ``name``; :class:`UnknownFlavor` lists the known ones."""
    try:
        return _registry.get(name)
    except KeyError:
        known = _registry.names()
        close = _registry.suggest(name)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise UnknownFlavor(
            f"unknown flavor {name!r}{hint} Known flavors: {', '.join(known)}",
            name=name,
            known=known,
        ) from None


def list_flavors() -> list[str]:
    """Names of every registered flavor, built-in and installed."""
    return _registry.names()


def flavor_for_object(obj: Any) -> Flavor:
    """The flavor that saves ``obj``, tried specific-first, plain callables last."""
    for flavor in _candidates():
        if flavor.name != _FALLBACK and flavor.can_save(obj):
            return flavor
    fallback = _registry.get(_FALLBACK)
    if fallback.can_save(obj):
        return fallback
    raise UnknownFlavor(
        f"no flavor knows how to save a {type(obj).__module__}.{type(obj).__qualname__}. "
        "Known: scikit-learn estimators and pipelines (sklearn), xgboost.Booster and "
        "XGBModel (xgboost), lightgbm.Booster and LGBMModel (lightgbm), "
        "torch.nn.Module (pytorch), "
        "modelyard.PythonModel subclasses (python_model), plain Python callables (function)"
        + _third_party_hint(),
        known=_registry.names(),
    )


def flavor_for_mlmodel(mlmodel: MLmodel) -> Flavor:
    """The flavor that loads a saved model.

    ``python_function.loader_module`` decides first (it defines how MLflow
    predicts, and maps MLflow's loaders such as ``mlflow.sklearn`` to ours); a
    registered framework key under ``flavors`` is the fallback.
    """
    loader = mlmodel.pyfunc.get("loader_module")
    if loader:
        for flavor in _candidates():
            if loader in flavor.loader_modules:
                return flavor
    for flavor in _candidates():
        if flavor.name in mlmodel.flavors:
            return flavor
    saved = ", ".join(sorted(mlmodel.flavors))
    raise UnknownFlavor(
        f"no registered flavor can load this model (flavors in MLmodel: {saved}"
        + (f"; loader_module {loader!r}" if loader else "")
        + f"). Known flavors: {', '.join(_registry.names())}",
        name=str(loader or saved),
        known=_registry.names(),
    )


def _candidates() -> Iterator[Flavor]:
    # Built-ins first: the common case never pays for the entry-point scan.
    for name in _BUILTINS:
        yield _registry.get(name)
    for name in _registry.names():
        if name not in _BUILTINS:
            yield _registry.get(name)


def _third_party_hint() -> str:
    extra = [n for n in _registry.names() if n not in _BUILTINS]
    return f", and installed: {', '.join(extra)}" if extra else ""
