"""YAML, imported on first use, with the C loader/dumper when PyYAML has libyaml."""

from __future__ import annotations

from typing import Any


class YAMLError(Exception):
    """Raised for any YAML syntax error (wraps ``yaml.YAMLError``)."""


def load(text: str | bytes) -> Any:
    """Parse YAML safely (no arbitrary object construction)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        raise YAMLError(str(exc)) from exc


def dump(data: Any, *, sort_keys: bool = True) -> str:
    """Block-style YAML, keys sorted as MLflow writes them."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, default_flow_style=False, sort_keys=sort_keys)
