"""The pickle allow-list: data (``allowlist.yaml``), versioned, matched by name.

Entries are exact names, classes inside a package, or a few kinds of value
(numpy ufuncs and scalar types, ``torch.nn.functional`` functions). Exact
names match without importing anything; the class and kind rules import the
module the pickle names, and only for modules inside the packages they cover
(the real load would import the same module right after).

User entries (per call, or in the machine's trust file) are strings:

- ``"mypkg.MyModel"`` or ``"mypkg:Outer.Inner"`` (a dotted qualname): one global;
- ``"mypkg.*"``: every global of ``mypkg`` and its submodules.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from modelyard.errors import ConfigError
from modelyard.trust.scan import Global


@dataclass(frozen=True)
class ClassRule:
    """Any class defined inside ``package`` (and not inside one of ``excluded``)."""

    package: str
    excluded: tuple[str, ...] = ()

    def covers(self, module: str) -> bool:
        """Whether ``module`` lies inside the package and outside every exclusion."""
        if not _inside(module, self.package) or any(_inside(module, e) for e in self.excluded):
            return False
        return "tests" not in module.split(".")


@dataclass(frozen=True)
class AllowList:
    """A set of allowed globals; see the module docstring for the entry forms."""

    version: str
    exact: frozenset[Global]
    classes: tuple[ClassRule, ...] = ()
    kinds: tuple[tuple[str, str], ...] = ()  # (kind, package)
    prefixes: tuple[str, ...] = ()  # from "pkg.*" entries

    def allows(self, g: Global) -> bool:
        """Whether ``g`` is allowed (may import ``g.module`` for class and kind rules)."""
        if g in self.exact or any(_inside(g.module, p) for p in self.prefixes):
            return True
        rules = [r for r in self.classes if r.covers(g.module)]
        kinds = [(k, p) for k, p in self.kinds if _inside(g.module, p)]
        if not rules and not kinds:
            return False
        if not _importable(g.module):
            return False
        obj = resolve(g)
        if obj is None:
            return False
        if isinstance(obj, type):
            own = getattr(obj, "__module__", "") or ""
            if any(r.covers(own) for r in rules):
                return True
        return any(_is_kind(obj, kind, package) for kind, package in kinds)

    def with_entries(self, entries: Iterable[str]) -> AllowList:
        """This list plus user entries (``module.name``, ``module:Qual.Name``, ``pkg.*``)."""
        exact = set(self.exact)
        prefixes = list(self.prefixes)
        for entry in entries:
            parsed = parse_entry(entry)
            if isinstance(parsed, str):
                prefixes.append(parsed)
            else:
                exact.add(parsed)
        return AllowList(self.version, frozenset(exact), self.classes, self.kinds, tuple(prefixes))

    def describe(self) -> dict[str, Any]:
        """The list as plain data (for ``modelyard trust show``)."""
        return {
            "version": self.version,
            "globals": sorted(str(g) for g in self.exact),
            "classes": [{"package": r.package, "except": list(r.excluded)} for r in self.classes],
            "kinds": [{"kind": k, "package": p} for k, p in self.kinds],
            "packages": sorted(self.prefixes),
        }


def parse_entry(entry: str) -> Global | str:
    """A user entry as a :class:`Global`, or the package of a ``pkg.*`` entry.

    >>> parse_entry("mypkg.models.MyModel")
    Global(module='mypkg.models', qualname='MyModel')
    >>> parse_entry("mypkg.*")
    'mypkg'
    """
    text = entry.strip() if isinstance(entry, str) else ""
    if text.endswith(".*") and _is_dotted(text[:-2]):
        return text[:-2]
    if ":" in text:
        module, _, qual = text.partition(":")
    else:
        module, _, qual = text.rpartition(".")
    if not _is_dotted(module) or not _is_dotted(qual):
        raise ConfigError(
            f"trust entry {entry!r} is not a global name: use 'package.module.Name', "
            "'package.module:Outer.Inner' or 'package.*'",
            keys=["trust"],
            declared=[],
        )
    return Global(module, qual)


def resolve(g: Global) -> Any:
    """The object ``g`` names, or ``None`` if it cannot be imported."""
    try:
        obj: Any = importlib.import_module(g.module)
        for part in g.qualname.split("."):
            obj = getattr(obj, part)
    except (Exception, SystemExit):  # an unimportable name is simply not allowed
        return None
    return obj


@functools.cache
def builtin() -> AllowList:
    """modelyard's own allow-list, read from ``allowlist.yaml``."""
    import yaml

    text = resources.files("modelyard.trust").joinpath("allowlist.yaml").read_text("utf-8")
    # the C loader when PyYAML has it: ~10 ms less on every cold start
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return from_data(yaml.load(text, Loader=loader), source="allowlist.yaml")


def from_data(data: Any, *, source: str) -> AllowList:
    """An :class:`AllowList` from the YAML structure; malformed data is a ConfigError."""
    if not isinstance(data, Mapping):
        raise _bad(source, "the file must be a mapping")
    exact: set[Global] = set()
    for module, names in (data.get("globals") or {}).items():
        if not isinstance(names, list):
            raise _bad(source, f"globals.{module} must be a list of names")
        exact.update(Global(str(module), str(n)) for n in names)
    classes = []
    for package, conf in (data.get("classes") or {}).items():
        excluded = (conf or {}).get("except") or []
        classes.append(ClassRule(str(package), tuple(map(str, excluded))))
    kinds = []
    for kind, packages in (data.get("kinds") or {}).items():
        if kind not in _KINDS:
            raise _bad(source, f"unknown kind {kind!r} (known: {', '.join(sorted(_KINDS))})")
        kinds += [(str(kind), str(p)) for p in packages]
    return AllowList(str(data.get("version", "")), frozenset(exact), tuple(classes), tuple(kinds))


def _bad(source: str, reason: str) -> ConfigError:
    return ConfigError(f"allow-list {source}: {reason}", keys=["trust"], declared=[])


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# Modules the class and kind rules never import to judge a name: importing them
# runs code (``numpy.f2py.__main__`` runs f2py, a test ``setup.py`` builds).
_NEVER_IMPORTED = frozenset({"__main__", "tests", "testing", "conftest", "setup", "f2py"})


def _importable(module: str) -> bool:
    return not any(
        part in _NEVER_IMPORTED or part.startswith("test_") for part in module.split(".")
    )


def _is_dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def _is_kind(obj: Any, kind: str, package: str) -> bool:
    if kind == "ufunc":
        import numpy as np

        return isinstance(obj, np.ufunc)
    if kind == "numpy-scalar":
        import numpy as np

        return isinstance(obj, type) and issubclass(obj, np.generic)
    if kind == "tensor-function":
        import types

        return isinstance(obj, types.FunctionType) and _inside(obj.__module__ or "", package)
    return False


_KINDS = frozenset({"ufunc", "numpy-scalar", "tensor-function"})
