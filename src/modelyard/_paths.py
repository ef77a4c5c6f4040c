"""Where modelyard keeps its machine-local caches (``~/.cache/modelyard/...`` by default)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home() -> Path:
    """``$XDG_CACHE_HOME/modelyard``, or ``~/.cache/modelyard``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "modelyard"


def config_home() -> Path:
    """Per-user settings: keys and trust files.

    ``MODELYARD_CONFIG_HOME``, else ``$XDG_CONFIG_HOME/modelyard``, else
    ``~/.config/modelyard``.
    """
    own = os.environ.get("MODELYARD_CONFIG_HOME")
    if own:
        return Path(own).expanduser().absolute()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "modelyard"


def envs_root() -> Path:
    """Isolated model environments: ``MODELYARD_ENV_ROOT``, else ``<cache>/envs``."""
    env = os.environ.get("MODELYARD_ENV_ROOT")
    return Path(env).expanduser().absolute() if env else cache_home() / "envs"


def shipped_root() -> Path:
    """Model directories unpacked on Spark executors: ``<cache>/shipped``."""
    return cache_home() / "shipped"
