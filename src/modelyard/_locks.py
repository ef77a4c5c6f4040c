"""An exclusive lock between processes (and threads), held on a lock file."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# flock is per open file description: two threads of one process opening the same
# lock file would each get it, so threads also queue on a per-path lock here.
_THREAD_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold ``path`` (created if needed) exclusively for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _GUARD:
        local = _THREAD_LOCKS.setdefault(str(path), threading.Lock())
    with local, open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
