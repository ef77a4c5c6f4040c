"""What a model directory holds, file by file, as the trust policy sees it.

Files are recognised by their content, never by their name (trust.md §3 C21):
a pickle named ``model.config`` is a pickle. Compressed files are opened
(with the same size cap as a load) and looked at again. Used by
``modelyard trust scan``, ``modelyard info`` and ``Model.trust``.
"""

from __future__ import annotations

import bz2
import gzip
import json
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
    # protocol 0/1 pickles have no magic, but end with STOP: only then is the
    # file read whole, and a stream that scans whole is a pickle
    sniff = 0 < size <= _SNIFF_LIMIT and not head.startswith((b"{", b"[", b"#"))
    if sniff and _ends_with_stop(file, size):
        data = file.read_bytes()
        try:
            scan_bytes(data, source=file)
        except UnsafePickle:
            pass
        else:
            return _pickled(rel, "pickle (protocol 0/1)", data, policy, file)
    if _is_safetensors(file, head, size):  # only once it is known not to be a pickle
        return FileVerdict(rel, "safetensors", "ok", "tensors only: nothing is unpickled or run")
    return None


def _ends_with_stop(file: Path, size: int) -> bool:
    """Whether the file's last byte is pickle's ``STOP``."""
    with open(file, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"."


_SAFETENSORS_HEADER_LIMIT = 100 << 20  # as the safetensors library's own cap


def _is_safetensors(file: Path, head: bytes, size: int) -> bool:
    """8 bytes of little-endian header length, a JSON header whose tensors lie inside
    the file, then their bytes: data, never code."""
    if len(head) < 8:
        return False
    length = int.from_bytes(head, "little")
    if not 2 <= length <= min(size - 8, _SAFETENSORS_HEADER_LIMIT):
        return False
    with open(file, "rb") as fh:
        fh.seek(8)
        raw = fh.read(length)
    try:
        header = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(header, dict):
        return False
    body = size - 8 - length
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= body
        ):
            return False
    return True


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
                return _skops(file, rel)
            pkl = [n for n in entries if n.endswith("/data.pkl") and n.count("/") == 1]
            if any(n.endswith("/constants.pkl") for n in entries):
                return FileVerdict(rel, "torchscript", "code", "TorchScript is code")
            if pkl:
                data = archive.read(pkl[0])
                return _pickled(rel, "torch archive", data, policy, file)
    except (zipfile.BadZipFile, OSError) as exc:
        return FileVerdict(rel, "zip", "refused", f"unreadable archive: {exc}")
    return FileVerdict(rel, "zip", "ok", "an archive without pickles")


def _skops(file: Path, rel: str) -> FileVerdict:
    """A skops file judged as a load judges it by default: its types against
    modelyard's policy (the file's own list of trusted types is never read)."""
    from modelyard.flavors import _skops_trust

    try:
        import skops.io
    except ModuleNotFoundError:
        return FileVerdict(rel, "skops", "ok", "skops is not installed: types checked at load")
    try:
        found = sorted(skops.io.get_untrusted_types(file=file))
    except Exception as exc:  # skops raises many kinds on a damaged file
        return FileVerdict(rel, "skops", "refused", f"unreadable: {type(exc).__name__}: {exc}")
    outside = tuple(t for t in found if not _skops_trust.is_safe_type(t))
    if outside:
        return FileVerdict(
            rel, "skops", "refused", "types outside modelyard's policy", tuple(found), outside
        )
    checked = (
        " (decision trees are checked node by node at load)" if _skops_trust.TREE in found else ""
    )
    return FileVerdict(
        rel, "skops", "ok", f"every type is within modelyard's policy{checked}", tuple(found)
    )
