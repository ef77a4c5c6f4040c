"""What a model directory holds, file by file, as the trust policy sees it.

Files are recognised by their content, never by their name (trust.md §3 C21):
a pickle named ``model.config`` is a pickle. Compressed files are opened
(with the same size cap as a load) and looked at again. Used by
``modelyard trust scan``, ``modelyard info`` and ``Model.trust``.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.errors import TrustError, UnsafePickle, UntrustedModel
from modelyard.trust.policy import TrustPolicy, carries_code
from modelyard.trust.scan import names, scan_bytes

_SNIFF_LIMIT = 256 << 20  # unrecognised files larger than this are not read whole
_OPENERS: dict[bytes, tuple[str, Callable[..., Any]]] = {
    b"\x1f\x8b": ("gzip", gzip.open),
    b"BZh": ("bzip2", bz2.open),
    b"\xfd7zXZ\x00": ("xz", lzma.open),
}


@dataclass(frozen=True)
class FileVerdict:
    """One file: its format and what the policy says of it."""

    path: str
    format: str
    #: "ok" (admitted or not executable), "refused", or "code" (admitted only if vouched for)
    verdict: str
    reason: str = ""
    globals: tuple[str, ...] = ()
    outside: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "path": self.path,
            "format": self.format,
            "verdict": self.verdict,
            "reason": self.reason,
            "globals": list(self.globals),
            "outside": list(self.outside),
        }


def scan_model(root: Path, policy: TrustPolicy | None = None) -> list[FileVerdict]:
    """A verdict for every file under ``root`` that could hold executable content."""
    policy = policy or TrustPolicy()
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            file = Path(dirpath) / name
            verdict = scan_file(file, policy, rel=file.relative_to(root).as_posix())
            if verdict is not None:
                found.append(verdict)
    return found


def scan_file(file: Path, policy: TrustPolicy, *, rel: str | None = None) -> FileVerdict | None:
    """The verdict for one file, or ``None`` for data that runs nothing (text, arrays...)."""
    rel = rel or file.name
    with open(file, "rb") as fh:
        head = fh.read(8)
    for magic, (fmt, opener) in _OPENERS.items():
        if head.startswith(magic):
            return _pickled(rel, f"{fmt}-compressed pickle", _read(file, opener), policy, file)
    if head.startswith(b"PK"):
        return _zip(file, rel, policy)
    if head.startswith(b"\x80") and len(head) > 1 and head[1] <= 5:
        return _pickled(rel, "pickle", _read(file, open), policy, file)
    size = file.stat().st_size
    if 0 < size <= _SNIFF_LIMIT and not head.startswith((b"{", b"[", b"#")):
        # protocol 0/1 pickles have no magic, but end with STOP: only then is the
        # file read whole, and a stream that scans whole is a pickle
        with open(file, "rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) != b".":
                return None
        data = file.read_bytes()
        try:
            scan_bytes(data, source=file)
        except UnsafePickle:
            return None
        return _pickled(rel, "pickle (protocol 0/1)", data, policy, file)
    return None


def _read(file: Path, opener: Callable[..., Any]) -> bytes:
    from modelyard.flavors._pickle import read_capped

    return read_capped(file, opener)


def _pickled(rel: str, fmt: str, data: bytes, policy: TrustPolicy, file: Path) -> FileVerdict:
    try:
        scan = scan_bytes(data, source=file)
    except UnsafePickle as exc:
        return FileVerdict(rel, fmt, "refused", exc.reason)
    shown = tuple(names(scan.globals))
    try:
        policy.admit(scan, file)
    except UntrustedModel as exc:
        code = carries_code(scan.globals)
        return FileVerdict(
            rel,
            fmt,
            "code" if code else "refused",
            "carries code: loads when signed by a trusted key"
            if code
            else "imports globals outside the allow-list",
            shown,
            exc.globals,
        )
    except TrustError as exc:
        return FileVerdict(rel, fmt, "refused", str(exc), shown)
    return FileVerdict(rel, fmt, "ok", "every global is allowed", shown)


def _zip(file: Path, rel: str, policy: TrustPolicy) -> FileVerdict | None:
    try:
        with zipfile.ZipFile(file) as archive:
            entries = archive.namelist()
            if "schema.json" in entries:
                return FileVerdict(rel, "skops", "ok", "types checked by skops at load")
            pkl = [n for n in entries if n.endswith("/data.pkl") and n.count("/") == 1]
            if any(n.endswith("/constants.pkl") for n in entries):
                return FileVerdict(rel, "torchscript", "code", "TorchScript is code")
            if pkl:
                data = archive.read(pkl[0])
                return _pickled(rel, "torch archive", data, policy, file)
    except (zipfile.BadZipFile, OSError) as exc:
        return FileVerdict(rel, "zip", "refused", f"unreadable archive: {exc}")
    return FileVerdict(rel, "zip", "ok", "an archive without pickles")
