"""The local model cache: model directories materialised from blobs, keyed by digest.

::

    <root>/sha256/<hex>/          the model directory (files read-only)
    <root>/sha256/<hex>.stamp     what the directory looked like when it was verified
    <root>/locks/<hex>.lock       held while an entry is built or repaired

An entry is built in a private temporary directory: every blob is hashed
while it is copied (verify on first use), the stamp is written, then the
directory is renamed into place, so a half-built entry is never visible.

A later load of the same digest copies nothing: it reads the stamp and checks
each file's size, inode, mtime and ctime against it (ctime cannot be set back
by a user, so even a same-size edit with a restored mtime is caught). An entry
that differs, or holds a file it should not, is tampered: it is removed and
built again from the blobs.

Entries are copies, not hard links: a hard link would make the cache file and
the blob one inode, so damage to a cached file would be damage to the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from modelyard._stamps import differs, read_json, stamp_of, write_atomic
from modelyard.errors import InvalidURI, ModelFormatError
from modelyard.format.content import MANIFEST_FILE, ContentManifest
from modelyard.store import ArtifactStore
from modelyard.store.trees import digest_hex
from modelyard.uri import validate_relative_path

__all__ = ["CacheEntry", "ModelCache"]

logger = logging.getLogger("modelyard")
_STAMP_VERSION = 1


@dataclass(frozen=True)
class CacheEntry:
    """A verified model directory in the cache."""

    path: Path
    digest: str
    #: True when this call built the entry (first use, or repair after tampering)
    fetched: bool


class ModelCache:
    """Model directories by digest, materialised from an :class:`ArtifactStore`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelCache({str(self.root)!r})"

    def entry_path(self, digest: str) -> Path:
        """Where the directory of ``digest`` lives in the cache."""
        return self.root / "sha256" / digest_hex(digest)

    def get(self, digest: str) -> Path | None:
        """The cached directory of ``digest`` if present and untouched, else ``None``."""
        path = self.entry_path(digest)
        problem = _check_stamp(path)
        return path if problem is None else None

    def materialize(
        self,
        digest: str,
        artifacts: ArtifactStore,
        manifest: Callable[[], ContentManifest],
    ) -> CacheEntry:
        """The verified directory of ``digest``, built from ``artifacts`` if needed.

        ``manifest`` is called only on a miss (a hit needs no blob at all).
        """
        path = self.entry_path(digest)
        problem = _check_stamp(path)
        if problem is None:
            return CacheEntry(path, digest, fetched=False)
        with self._lock(digest):
            # Another process may have built (or repaired) it while we waited.
            problem = _check_stamp(path)
            if problem is None:
                return CacheEntry(path, digest, fetched=False)
            if problem != "absent":
                logger.warning(
                    "cached model %s was modified (%s); fetching it again", digest[:19], problem
                )
                self._remove(path)
            self._build(path, digest, artifacts, manifest())
        return CacheEntry(path, digest, fetched=True)

    def evict(self, digest: str) -> bool:
        """Remove the entry of ``digest``; whether there was one."""
        path = self.entry_path(digest)
        with self._lock(digest):
            existed = path.exists()
            self._remove(path)
        return existed

    # -- internals -------------------------------------------------------------

    def _build(
        self, path: Path, digest: str, artifacts: ArtifactStore, manifest: ContentManifest
    ) -> None:
        if manifest.digest != digest:
            raise ValueError(f"manifest has digest {manifest.digest}, expected {digest}")
        self._make_root()
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(exist_ok=True, mode=0o700)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = tmp_root / f"{path.name[:16]}-{uuid.uuid4().hex}"
        tmp.mkdir(mode=0o700)
        try:
            for entry in manifest.entries:
                dest = _inside(tmp, entry.path)
                dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                artifacts.copy_to(entry.sha256, dest, size=entry.size)
                os.chmod(dest, 0o444)
            manifest.write(tmp)
            os.chmod(tmp / MANIFEST_FILE, 0o444)
            stamp = _stamp_of(tmp)
            write_atomic(_stamp_file(path), json.dumps(stamp, sort_keys=True))
            os.replace(tmp, path)
        except BaseException:
            _rmtree(tmp)
            _stamp_file(path).unlink(missing_ok=True)
            raise

    def _remove(self, path: Path) -> None:
        _stamp_file(path).unlink(missing_ok=True)
        if path.exists():
            # Rename first: a directory half-removed is never visible under its name.
            trash = self.root / "tmp" / f"trash-{uuid.uuid4().hex}"
            trash.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(path, trash)
            _rmtree(trash)

    def _make_root(self) -> None:
        # Owner-only: another local user must not swap files between our check
        # and the load (the CVE-2024-27134 family).
        if not self.root.is_dir():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self.root.mkdir(mode=0o700, exist_ok=True)

    @contextlib.contextmanager
    def _lock(self, digest: str) -> Iterator[None]:
        self._make_root()
        locks = self.root / "locks"
        locks.mkdir(exist_ok=True, mode=0o700)
        with open(locks / f"{digest_hex(digest)}.lock", "w") as fh:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: builds are still atomic
                yield
                return
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _inside(root: Path, rel: str) -> Path:
    # File lists come from the database; one written by someone else must still
    # never place a file outside the entry (``../``, absolute, drive letters).
    try:
        clean = validate_relative_path(rel, "file path")
    except InvalidURI:
        clean = None
    if not clean or clean != rel:
        raise ModelFormatError(f"refusing to write {rel!r}: not a plain relative path", path=root)
    return root / clean


def _stamp_file(path: Path) -> Path:
    return path.with_name(path.name + ".stamp")


def _stamp_of(root: Path) -> dict[str, object]:
    return {"version": _STAMP_VERSION, "files": stamp_of(root)}


def _check_stamp(path: Path) -> str | None:
    """``None`` when the entry matches its stamp, else what is wrong with it."""
    stamp_file = _stamp_file(path)
    if not stamp_file.exists():
        return "absent" if not path.exists() else "no stamp"
    stamp = read_json(stamp_file)
    if stamp is None:
        return "unreadable stamp"
    if not path.is_dir():
        return "absent"
    if not isinstance(stamp, dict) or stamp.get("version") != _STAMP_VERSION:
        return "unknown stamp version"
    expected = stamp.get("files")
    if not isinstance(expected, dict):
        return "unreadable stamp"
    return differs(path, expected)


def _rmtree(path: Path) -> None:
    # Files are read-only but their directories are the owner's (0o700), which
    # is all unlinking needs; leftovers in tmp/ are harmless.
    shutil.rmtree(path, ignore_errors=True)
