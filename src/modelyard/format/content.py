"""The content manifest: every file of a model with its size and sha256.

``MANIFEST.sha256`` lists one file per line, sorted by path::

    <sha256 hex>  <size>  <posix relative path>

The model's *digest* is ``sha256:`` + the sha256 of that text, so two model
directories with the same files have the same digest wherever they live.
Models written by MLflow have no manifest; their digest is computed from their
files on load.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import IntegrityError, ModelFormatError

MANIFEST_FILE = "MANIFEST.sha256"
#: A DSSE envelope over this manifest (see :mod:`modelyard.trust.signing`). It signs the
#: manifest, so it cannot be listed in it; it is the only file of ours left out.
SIGNATURE_FILE = "MANIFEST.sig"
# Files that tools legitimately add to a model directory after it was written:
# MLflow writes registered_model_meta on download; Python writes bytecode caches
# next to code it imports from code/ (a signature check refuses or removes those:
# trust.signing).
IGNORED_NAMES = frozenset({MANIFEST_FILE, SIGNATURE_FILE, "registered_model_meta"})
IGNORED_DIRS = frozenset({"__pycache__"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    """One file of a model or of a run: its relative path, size and content digest."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ContentManifest:
    """The list of files that makes up a model, and the digest it fixes."""

    entries: tuple[FileEntry, ...]

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the manifest text."""
        return "sha256:" + hashlib.sha256(self.to_text().encode()).hexdigest()

    @property
    def total_size(self) -> int:
        """Sum of all file sizes in bytes."""
        return sum(e.size for e in self.entries)

    def to_text(self) -> str:
        """The manifest file's content."""
        return "".join(f"{e.sha256}  {e.size}  {e.path}\n" for e in self.entries)

    @classmethod
    def from_text(cls, text: str, *, source: Path | str = MANIFEST_FILE) -> ContentManifest:
        """Parse manifest text; a malformed line is a :class:`ModelFormatError`."""
        entries = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split("  ", 2)
            if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
                raise ModelFormatError(
                    f"malformed content manifest {str(source)!r}, line {lineno}", path=source
                )
            _check_relative(parts[2], source)
            entries.append(FileEntry(path=parts[2], size=int(parts[1]), sha256=parts[0]))
        return cls(tuple(sorted(entries, key=lambda e: e.path)))

    @classmethod
    def build(cls, root: Path | str) -> ContentManifest:
        """Hash every file under ``root`` (except the manifest itself)."""
        root = Path(root)
        entries = [
            FileEntry(rel, (root / rel).stat().st_size, file_sha256(root / rel))
            for rel in _walk(root)
        ]
        return cls(tuple(sorted(entries, key=lambda e: e.path)))

    @classmethod
    def read(cls, root: Path | str) -> ContentManifest | None:
        """The manifest saved in ``root``, or ``None`` when the model has none."""
        file = Path(root) / MANIFEST_FILE
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return cls.from_text(text, source=file)

    def write(self, root: Path | str) -> None:
        """Save as ``<root>/MANIFEST.sha256``."""
        (Path(root) / MANIFEST_FILE).write_text(self.to_text(), encoding="utf-8")

    def verify(self, root: Path | str) -> None:
        """Check every file under ``root`` against the manifest.

        Raises :class:`IntegrityError` naming the first file that is missing,
        altered, or present but not listed.
        """
        root = Path(root)
        listed = {e.path for e in self.entries}
        for e in self.entries:
            f = root / e.path
            try:
                size = f.stat().st_size
            except FileNotFoundError:
                raise IntegrityError(root, e.path, "is missing") from None
            if size != e.size or file_sha256(f) != e.sha256:
                raise IntegrityError(root, e.path, "was altered (sha256 differs from the manifest)")
        for rel in _walk(root):
            if rel not in listed:
                raise IntegrityError(root, rel, "is not listed in the content manifest")


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _walk(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        base = Path(dirpath)
        for name in filenames:
            if base == root and name in IGNORED_NAMES:
                continue
            yield (base / name).relative_to(root).as_posix()


def _check_relative(rel: str, source: Path | str) -> None:
    # A manifest is input we did not write ourselves when it came from elsewhere:
    # never let it name a file outside the model directory.
    parts = rel.split("/")
    if rel.startswith("/") or ".." in parts or "\\" in rel or any(ord(c) < 32 for c in rel):
        raise ModelFormatError(
            f"content manifest {str(source)!r} names an unsafe path {rel!r}", path=source
        )
