"""A function outside the allow-list, pickled by reference into a test model."""

from __future__ import annotations

from typing import Any


def doubled(frame: Any) -> Any:
    """Every value times two."""
    return frame * 2
