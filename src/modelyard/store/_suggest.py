"""Close matches for "did you mean ...?" messages."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches"]


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Candidates close to ``word``, a case-insensitive exact match first."""
    pool = list(candidates)
    lower = {c.lower(): c for c in pool}
    exact_case = lower.get(word.lower())
    found = difflib.get_close_matches(word, pool, n=n, cutoff=0.6)
    if exact_case and exact_case not in found:
        found.insert(0, exact_case)
    return found[:n]
