"""What a directory's files look like now: to tell, without reading them, that
nothing changed since they were verified.

A stamp maps each file's relative path to its size, inode, mtime and ctime.
ctime cannot be set back by a user, so even a same-size edit with its mtime
restored changes the stamp. ``__pycache__`` folders are left out: Python writes
bytecode next to a model's code when it imports it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["differs", "read_json", "stamp_of", "write_atomic"]

_IGNORED_DIRS = frozenset({"__pycache__"})


def _files(root: Path) -> Iterator[tuple[str, os.stat_result]]:
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as it:
            for item in it:
                rel = prefix + item.name
                if item.is_dir(follow_symlinks=False):
                    if item.name not in _IGNORED_DIRS:
                        stack.append((Path(item.path), rel + "/"))
                else:
                    yield rel, item.stat(follow_symlinks=False)


def _facts(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns]


def stamp_of(root: Path) -> dict[str, list[int]]:
    """The stamp of every file under ``root``."""
    return {rel: _facts(st) for rel, st in _files(root)}


def differs(root: Path, expected: Mapping[str, Any]) -> str | None:
    """``None`` when the files under ``root`` match ``expected``, else what differs."""
    seen = 0
    try:
        for rel, st in _files(root):
            want = expected.get(rel)
            if want is None:
                return f"unexpected file {rel!r}"
            if _facts(st) != want:
                return f"file {rel!r} changed"
            seen += 1
    except FileNotFoundError:
        return "a file vanished"
    if seen != len(expected):
        missing = sorted(set(expected) - {rel for rel, _ in _files(root)})
        return f"file {missing[0]!r} is missing" if missing else "files missing"
    return None


def read_json(path: Path) -> Any:
    """The JSON in ``path``; ``None`` when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once (a reader sees the old file or the new)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
