"""Whether a torch module's own class rebuilds it: the proof behind safetensors
without ``module_factory`` (:func:`infer_factory`), kept apart from the flavor."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["infer_factory"]

# A module whose constructor cannot run on the meta device is built for real to
# check it, which holds a second copy of its weights: only when that copy is small.
_REAL_BUILD_LIMIT = 64 << 20
_PICKLING_HOOKS = ("__getstate__", "__setstate__", "__reduce__", "__reduce_ex__")
_MODULE_INTERNALS = frozenset(
    {"training", "_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"}
)
_PLAIN = (bool, int, float, complex, str, bytes, type(None))


def infer_factory(
    module: Any, kwargs: Mapping[str, Any], *, reference_of: Callable[[Any], str | None]
) -> tuple[str | None, str]:
    """``(reference, "")`` when ``module``'s class called with ``kwargs`` provably
    rebuilds it (all but the values of its state_dict), else ``(None, why not)``.

    Proved at save time: the class is importable by reference (not ``__main__``,
    not local to a function, not registered to be pickled by value) and no class
    in the module tree pickles itself its own way (``__getstate__``,
    ``__reduce__``...); a fresh instance, built on the ``meta`` device so that
    no memory is taken for its weights, has the same submodules (names,
    classes), the same parameters and buffers (names, shapes, dtypes, which of
    them are one shared tensor), no buffer left out of the state_dict, as many
    hooks, the same plain attributes, and takes the module's state_dict with a
    strict ``load_state_dict``.
    """
    import torch

    cls = type(module)
    name = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(module, torch.jit.ScriptModule):
        return None, f"{name} is a TorchScript module, whose code is not a Python class"
    reference = reference_of(cls)
    if reference is None:
        return None, (
            f"its class {name} is not importable by reference (defined in __main__ or "
            "inside a function, or registered to be pickled by value)"
        )
    for sub_name, sub in module.named_modules(remove_duplicate=False):
        for klass in type(sub).__mro__:
            if klass.__module__.split(".")[0] == "torch" or klass is object:
                continue
            own = [h for h in _PICKLING_HOOKS if h in vars(klass)]
            if own:
                return None, f"{_where(sub_name)}{klass.__qualname__} defines {own[0]}"
    state = module.state_dict()
    odd = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if odd:
        return None, f"its state_dict holds {odd[0]!r}, which is not a tensor"
    call = f"{cls.__qualname__}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as exc:
        return None, f"{call} cannot be called: {exc}"
    except ValueError:  # no signature to read: let the call itself tell
        pass
    try:
        with torch.device("meta"):
            built = cls(**kwargs)
        on_meta = True
    except Exception as exc:
        size = sum(v.numel() * v.element_size() for v in state.values())
        if size > _REAL_BUILD_LIMIT:
            return None, (
                f"{call} fails on the meta device ({type(exc).__name__}: {exc}) and the "
                f"module ({size >> 20} MiB) is too large to build a second time to check it"
            )
        try:
            built = cls(**kwargs)
        except Exception as exc2:
            return None, f"{call} fails: {type(exc2).__name__}: {exc2}"
        on_meta = False
    if type(built) is not cls:
        return None, f"{call} returned a {type(built).__qualname__}"
    problem = _structure_differs(module, built)
    if problem:
        return None, f"{call} is not this module: {problem}"
    try:
        built.load_state_dict(
            {k: v.to("meta") for k, v in state.items()} if on_meta else state, strict=True
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"{call} does not take this module's state_dict: {first}"
    return reference, ""


def _where(sub_name: str) -> str:
    return f"submodule {sub_name!r}: " if sub_name else ""


def _structure_differs(module: Any, built: Any) -> str:
    """What differs between the two modules' structure, or ``""``."""
    mods = dict(module.named_modules(remove_duplicate=False))
    fresh = dict(built.named_modules(remove_duplicate=False))
    if mods.keys() != fresh.keys():
        diff = sorted(mods.keys() ^ fresh.keys())
        return f"submodules differ: {diff[:5]}"
    for n, m in mods.items():
        if type(m) is not type(fresh[n]):
            return f"{_where(n)}{type(m).__qualname__} != {type(fresh[n]).__qualname__}"
    for kind in ("parameters", "buffers"):
        ours = _tensors(module, kind)
        theirs = _tensors(built, kind)
        if ours[0] != theirs[0]:
            diff = sorted(set(ours[0].items()) ^ set(theirs[0].items()))
            return f"{kind} differ (name, shape, dtype): {diff[:3]}"
        if ours[1] != theirs[1]:
            return f"other {kind} are shared: {sorted(map(sorted, ours[1] ^ theirs[1]))[:3]}"
    for n, m in mods.items():
        b = fresh[n]
        if m._non_persistent_buffers_set or b._non_persistent_buffers_set:
            left = sorted(m._non_persistent_buffers_set | b._non_persistent_buffers_set)
            return f"{_where(n)}buffers {left} are not in the state_dict"
        attrs, fresh_attrs = vars(m), vars(b)
        for key in sorted((attrs.keys() | fresh_attrs.keys()) - _MODULE_INTERNALS):
            if key not in attrs or key not in fresh_attrs:
                return f"{_where(n)}attribute {key!r} is set on one of them only"
            a, c = attrs[key], fresh_attrs[key]
            if key.startswith("_") and key.endswith("hooks") and isinstance(a, dict):
                if len(a) != len(c):
                    return f"{_where(n)}{key}: {len(a)} hook(s), a fresh instance has {len(c)}"
            elif not _same_value(a, c):
                return f"{_where(n)}attribute {key!r}: {_short(a)} != {_short(c)}"
    return ""


def _tensors(module: Any, kind: str) -> tuple[dict[str, Any], set[frozenset[str]]]:
    named = getattr(module, f"named_{kind}")(remove_duplicate=False)
    found: dict[str, Any] = {}
    groups: dict[int, set[str]] = {}
    for n, t in named:
        found[n] = (tuple(t.shape), str(t.dtype))
        groups.setdefault(id(t), set()).add(n)
    return found, {frozenset(g) for g in groups.values() if len(g) > 1}


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, _PLAIN):
        return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    import torch

    if isinstance(a, (torch.dtype, torch.device, torch.Size)):
        return bool(a == b)
    return False  # tensors outside the state_dict, callables, objects: not provably equal


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, (*_PLAIN, tuple, list)) else type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."
