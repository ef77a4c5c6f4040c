"""Functions run in child processes by the concurrency tests (importable when spawned)."""

from __future__ import annotations

import os
from typing import Any


def register(uri: str, cache: str, model_dir: str, name: str, barrier: Any) -> int:
    """Wait for every worker, then register ``model_dir`` as a new version of ``name``."""
    os.environ["MODELYARD_CACHE"] = cache
    import modelyard

    modelyard.set_yard(uri)
    # Open the yard before the barrier so all workers race on the write itself.
    modelyard.get_yard().metadata
    barrier.wait(timeout=120)
    return modelyard.register_model(model_dir, name).version


def move_alias(uri: str, cache: str, name: str, version: int, barrier: Any) -> None:
    """Wait for every worker, then point ``@champion`` of ``name`` at ``version``."""
    os.environ["MODELYARD_CACHE"] = cache
    import modelyard

    modelyard.set_yard(uri)
    modelyard.get_yard().metadata
    barrier.wait(timeout=120)
    modelyard.set_alias(name, "champion", version)


def load(uri: str, cache: str, model_uri: str, barrier: Any) -> str:
    """Wait for every worker, then load ``model_uri`` (a cold cache) and return its digest."""
    os.environ["MODELYARD_CACHE"] = cache
    import modelyard

    modelyard.set_yard(uri)
    barrier.wait(timeout=120)
    return modelyard.load_model(model_uri).digest
