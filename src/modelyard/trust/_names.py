"""Names of files in a signed model, shared by modelyard's signatures and model-signing bundles:
which relative paths are acceptable, when two names are one, and the first file two
signed lists disagree on."""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Mapping

__all__ = ["first_difference", "fold", "is_safe_name"]


def is_safe_name(name: str) -> bool:
    """Whether ``name`` is a canonical relative POSIX path inside the model.

    Canonical means what model-signing writes (``str(PurePosixPath(rel))``): no
    empty, ``.`` or ``..`` part, no leading ``/``; a backslash or a control
    character is refused too.
    """
    parts = name.split("/")
    return bool(name) and not (
        name.startswith("/")
        or "\\" in name
        or any(p in ("", ".", "..") for p in parts)
        or any(ord(c) < 32 for c in name)
    )


def fold(rel: str) -> str:
    """The form two names share when a filesystem could take them for one file."""
    # NFC, case folding, NFC again: casefold can denormalise (e.g. U+0130).
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", rel).casefold())


def first_difference(
    signed: Mapping[str, Hashable], actual: Mapping[str, Hashable]
) -> tuple[str, str] | None:
    """The first file that differs between two ``{path: content}`` maps, and how.

    Renames first (a missing file whose content turns up under a new name),
    then added files (a dropped-in ``model.pkl`` is the attack), changes and
    removals; ``None`` when they are equal.
    """
    missing = sorted(signed.keys() - actual.keys())
    extra = sorted(actual.keys() - signed.keys())
    for gone in missing:
        for new in extra:
            if actual[new] == signed[gone]:
                return gone, f"was renamed to {new!r} after it was signed"
    if extra:
        return extra[0], "is not covered by the signature (added after signing)"
    for rel in sorted(signed.keys() & actual.keys()):
        if signed[rel] != actual[rel]:
            return rel, "was changed after it was signed (its sha256 differs)"
    if missing:
        return missing[0], "is missing (the signature covers it)"
    return None
