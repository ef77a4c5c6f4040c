"""The one check for run param, metric and tag keys (the Python API and the server use it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from modelyard.errors import TrackingError

__all__ = ["check_key", "check_strings"]

_KEY = re.compile(r"^[\w\-. /:]+$")
_MAX_KEY = 250
_MAX_PARAM = 6000


def check_key(key: object, what: str) -> str:
    """A param, metric or run-tag key, checked (:class:`TrackingError` says what is wrong)."""
    if not isinstance(key, str) or not key:
        raise TrackingError(f"{what} keys must be non-empty strings, got {key!r}")
    if len(key) > _MAX_KEY:
        raise TrackingError(f"{what} key {key[:40]!r}... is longer than {_MAX_KEY} characters")
    if not _KEY.match(key) or ".." in key.split("/") or key.startswith("/"):
        raise TrackingError(
            f"{what} key {key!r} may only contain letters, digits, '_', '-', '.', ' ', ':' "
            "and '/' (no '..' segment, no leading '/')"
        )
    return key


def check_strings(values: Mapping[str, Any], what: str) -> dict[str, str]:
    """Params or tags as strings, keys checked, params no longer than 6000 characters."""
    out = {}
    for k, v in values.items():
        text = str(v)
        if what == "param" and len(text) > _MAX_PARAM:
            raise TrackingError(f"param {k!r} is longer than {_MAX_PARAM} characters")
        out[check_key(k, what)] = text
    return out
