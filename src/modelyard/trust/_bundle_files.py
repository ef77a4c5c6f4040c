"""The files of a model directory as a model-signing v1.0 bundle names them.

model-signing (file serialization) names each file by its POSIX path relative
to the model root and hashes it with sha256; directories, modes and link
targets are not recorded. This module walks a directory under modelyard's
on-disk rules for a signed model (regular files only: no symbolic link, hard
link, FIFO, socket or device, and no two names equal after NFC normalisation
or case folding), hashes what it finds without following links, and names the
first file that differs from a bundle's list.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

from modelyard.errors import TamperedModel
from modelyard.trust._names import first_difference, fold, is_safe_name

__all__ = ["GIT_PATHS", "first_difference", "hash_file", "is_safe_name", "sort_key", "walk"]

#: What model-signing leaves out by default (``ignore_git_paths=True``), at the top only.
GIT_PATHS = frozenset({".git", ".gitattributes", ".github", ".gitignore"})
_CHUNK = 1 << 20


def walk(root: Path, exempt: frozenset[str], *, remove_pycache: bool = False) -> dict[str, int]:
    """``{relative posix path: size}`` of every regular file under ``root``.

    Paths in ``exempt`` (relative, posix) are left out. With ``remove_pycache``
    every ``__pycache__`` folder is deleted instead of listed: an export signs
    what the content manifest lists, which never holds bytecode, and Python
    rebuilds it from the signed sources (``modelyard sign`` does the same).
    Anything but a regular file is a :class:`TamperedModel` naming it.
    """
    found: dict[str, int] = {}
    folded: dict[str, str] = {}

    def visit(folder: Path, prefix: str) -> None:
        with os.scandir(folder) as it:
            items = sorted(it, key=lambda e: e.name)
        for item in items:
            rel = prefix + item.name
            if rel in exempt:
                continue
            st = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise TamperedModel(
                    root, rel, "is a symbolic link: a signed model holds regular files only"
                )
            twin = folded.setdefault(fold(rel), rel)
            if twin != rel:
                raise TamperedModel(
                    root,
                    rel,
                    f"and {twin!r} are one name after Unicode normalisation or case folding",
                )
            if stat.S_ISDIR(st.st_mode):
                if remove_pycache and item.name == "__pycache__":
                    shutil.rmtree(item.path)
                else:
                    visit(Path(item.path), rel + "/")
                continue
            if not stat.S_ISREG(st.st_mode):
                raise TamperedModel(root, rel, "is a special file (FIFO, socket or device)")
            if st.st_nlink > 1:
                # Another name outside the model could change it after the check.
                raise TamperedModel(root, rel, f"is a hard link ({st.st_nlink} names for one file)")
            found[rel] = st.st_size

    visit(root, "")
    return found


def hash_file(root: Path, rel: str) -> str:
    """Hex sha256 of ``root/rel``, opened without following a link (it may have been
    swapped for one since :func:`walk` looked)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(root / rel, flags)
    except OSError as exc:
        raise TamperedModel(root, rel, f"cannot be read ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise TamperedModel(root, rel, "is no longer a regular file")
        digest = hashlib.sha256()
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sort_key(name: str) -> tuple[str, ...]:
    """model-signing's order of resources: by path parts (``PurePosixPath`` order)."""
    return tuple(name.split("/"))
