"""One registry shape for every pluggable thing (flavors, stores).

A registry maps names to implementations. Built-ins are listed as lazy
``"module:attribute"`` references so that importing modelyard imports none of
them; third parties add theirs through an entry-point group, read on the first
lookup that misses (or when all names are listed), so the scan of installed
distributions is paid only when needed. Every implementation is validated when
it is registered, not when it is first used.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> implementation, filled from built-ins, entry points and ``register``."""

    def __init__(
        self,
        kind: str,
        group: str,
        builtins: Mapping[str, str],
        validate: Callable[[str, object], T],
    ) -> None:
        self.kind = kind
        self.group = group
        self._refs: dict[str, str] = dict(builtins)
        self._items: dict[str, T] = {}
        self._validate = validate
        self._entry_points_read = False
        self._lock = threading.RLock()

    def register(self, name: str, item: object, *, replace: bool = False) -> T:
        """Validate and add an implementation under ``name``."""
        with self._lock:
            if not replace and (name in self._items or name in self._refs):
                raise ValueError(f"a {self.kind} named {name!r} is already registered")
            valid = self._validate(name, item)
            self._items[name] = valid
            self._refs.pop(name, None)
            return valid

    def get(self, name: str) -> T:
        """The implementation registered as ``name``; ``KeyError`` lists the known names."""
        with self._lock:
            if name in self._items:
                return self._items[name]
            if name not in self._refs:
                self._read_entry_points()
            ref = self._refs.get(name)
            if ref is None:
                raise KeyError(name)
            return self.register(name, _import_ref(ref), replace=True)

    def names(self) -> list[str]:
        """Every known name, built-in and installed, sorted."""
        with self._lock:
            self._read_entry_points()
            return sorted({*self._items, *self._refs})

    def all(self) -> list[T]:
        """Every implementation (imports them all)."""
        return [self.get(n) for n in self.names()]

    def suggest(self, name: str) -> list[str]:
        """Known names close to ``name``, for "did you mean" messages."""
        return difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=self.group):
            if ep.name not in self._items and ep.name not in self._refs:
                self._refs[ep.name] = ep.value


def _import_ref(ref: str) -> object:
    module, _, attr = ref.partition(":")
    obj: object = importlib.import_module(module)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj
