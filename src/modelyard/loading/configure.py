"""Step 5, configure: merge ``model_config`` overrides over the saved config.

Unlike MLflow, which silently drops keys the model did not log, an unknown key
is an error that lists the keys the model declares: a typo in a config file
should not quietly change nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import ConfigError
from modelyard.format import _yaml
from modelyard.format.mlmodel import MLmodel

ConfigInput = Mapping[str, Any] | str | os.PathLike[str] | None


def read_config(config: ConfigInput) -> dict[str, Any]:
    """A config dict from a mapping or a YAML file path."""
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    path = Path(config)
    try:
        data = _yaml.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"model_config file {str(path)!r} does not exist") from None
    except _yaml.YAMLError as exc:
        raise ConfigError(f"model_config file {str(path)!r} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"model_config file {str(path)!r} must hold a mapping at the top level")
    return data


def merge_config(
    mlmodel: MLmodel, overrides: ConfigInput, flavor_keys: frozenset[str]
) -> dict[str, Any]:
    """Saved config updated with ``overrides``; unknown keys raise :class:`ConfigError`."""
    saved = dict(mlmodel.model_config)
    given = read_config(overrides)
    declared = sorted(set(saved) | set(flavor_keys))
    unknown = sorted(k for k in given if k not in saved and k not in flavor_keys)
    if unknown:
        listing = ", ".join(declared) if declared else "none"
        raise ConfigError(
            f"model_config key(s) {unknown} are not declared by this model; "
            f"declared keys: {listing}",
            keys=unknown,
            declared=declared,
        )
    return {**saved, **given}
