"""The flavor interface: how one framework's models are saved, loaded and called."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from modelyard.errors import CorruptModelFile
from modelyard.format.mlmodel import MLmodel

# predict(data, params) -> predictions. ``params`` is already validated.
Predictor = Callable[[Any, "Mapping[str, Any] | None"], Any]


@dataclass(frozen=True)
class SavedFlavor:
    """What a flavor's ``save`` reports back for the ``MLmodel`` manifest."""

    #: configuration stored under ``flavors.<name>`` (omit with an empty dict)
    flavor_conf: Mapping[str, Any]
    #: keys merged into ``flavors.python_function`` (``loader_module`` at least)
    pyfunc_conf: Mapping[str, Any]
    #: pinned requirements of the framework this flavor needs
    requirements: tuple[str, ...] = ()
    #: extra top-level MLmodel keys, rarely needed
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Flavor(Protocol):
    """A pluggable framework adapter.

    A flavor is registered under :attr:`name`. It must not import its framework
    at module import time: :meth:`can_save` checks an object's type by module
    name, and the framework is imported inside :meth:`save` / :meth:`load`.
    """

    #: registry key, also the key under ``flavors`` in MLmodel
    name: str
    #: ``python_function.loader_module`` values (MLflow's and ours) this flavor reads
    loader_modules: tuple[str, ...]
    #: ``model_config`` keys the flavor accepts at load time besides the saved ones
    config_keys: frozenset[str]

    def can_save(self, obj: Any) -> bool:
        """Whether this flavor knows how to save ``obj``."""
        ...

    def save(self, obj: Any, model_dir: Path, options: Mapping[str, Any]) -> SavedFlavor:
        """Write the flavor's files into ``model_dir`` (an empty temporary directory)."""
        ...

    def load(self, model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> Any:
        """Deserialise and return the native object."""
        ...

    def predictor(self, native: Any, mlmodel: MLmodel, config: Mapping[str, Any]) -> Predictor:
        """A function ``(data, params) -> predictions`` over the native object."""
        ...


def type_modules(obj: Any) -> list[str]:
    """Module names of ``obj``'s type and its bases, without importing anything."""
    return [getattr(c, "__module__", "") or "" for c in type(obj).__mro__]


def reject_unknown_options(flavor: str, options: Mapping[str, Any], known: set[str]) -> None:
    """Fail loudly on options meant for another flavor or misspelled."""
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for the {flavor} flavor; it accepts {sorted(known)}"
        )


def inside(root: Path, rel: Any, flavor: str) -> Path:
    """``root / rel`` resolved, refused when it leaves the model directory.

    MLmodel names the flavor's files; a name such as ``../../etc/x`` or an
    absolute path must not make a load read outside the model.
    """
    target = (root / str(rel)).resolve()
    if not target.is_relative_to(root.resolve()):
        raise CorruptModelFile(root, flavor, f"{rel!r} points outside the model directory")
    return target
