"""Page tokens: opaque to clients, bound to the query they continue."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import TypeVar

from modelyard.server.errors import ApiError

__all__ = ["page", "page_offset", "page_size", "page_token"]

T = TypeVar("T")


def _fingerprint(parts: Sequence[object]) -> str:
    return hashlib.sha256(json.dumps(list(parts), default=str).encode()).hexdigest()[:12]


def page_token(offset: int, query: Sequence[object]) -> str:
    """A token that continues ``query`` at ``offset``."""
    raw = json.dumps({"o": offset, "q": _fingerprint(query)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_offset(token: str | None, query: Sequence[object]) -> int:
    """Where a page token continues; 400 naming ``page_token`` when it is not one of ours
    or belongs to another query."""
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        same = data["q"] == _fingerprint(query)
    except (ValueError, KeyError, TypeError):
        raise ApiError(
            400, "invalid_value", "page_token is not a page token", field="page_token"
        ) from None
    if not same or offset < 0:
        raise ApiError(
            400, "invalid_value", "page_token belongs to another query", field="page_token"
        )
    return offset


def page_size(requested: int, cap: int, field: str = "max_results") -> int:
    """``requested`` if it is 1..cap, else 400 naming the field and the cap."""
    if requested < 1 or requested > cap:
        raise ApiError(
            400,
            "invalid_value",
            f"{field} must be between 1 and {cap}, got {requested}",
            field=field,
        )
    return requested


def page(
    fetch: Callable[[int, int], list[T]],
    *,
    token: str | None,
    query: Sequence[object],
    requested: int,
    cap: int,
) -> tuple[list[T], str | None]:
    """One page: ``fetch(limit, offset)`` asked for one row more than the page holds, so
    the token for the next page is given only when there is one."""
    size = page_size(requested, cap)
    offset = page_offset(token, query)
    found = fetch(size + 1, offset)
    more = len(found) > size
    return found[:size], page_token(offset + size, query) if more else None
