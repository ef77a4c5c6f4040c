"""Get a model directory, pinned by digest, from the Spark driver to every executor.

The driver zips the (already fetched and verified) model directory once per
digest and registers it with ``SparkContext.addFile``. An executor uses the
driver's directory when it can see it (local mode, shared filesystem) and its
files still hash to the digest; otherwise it unpacks the archive into its own
cache once (under a file lock, so the executor's Python workers share one
copy) and verifies it before use.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard._locks import file_lock
from modelyard._paths import shipped_root
from modelyard.errors import IntegrityError, ModelyardError


@dataclass(frozen=True)
class Shipped:
    """How an executor finds the model: the driver's path, or the archive Spark distributed."""

    digest: str
    driver_path: str
    #: file name registered with ``SparkContext.addFile`` (``None``: not distributed)
    archive: str | None


def _hex(digest: str) -> str:
    return digest.split(":", 1)[-1]


def ship(spark: Any, path: Path, digest: str) -> Shipped:
    """Zip ``path`` (once per digest) and hand it to Spark's file distribution."""
    sc = getattr(spark, "sparkContext", None)
    try:
        add_file = sc.addFile if sc is not None else None
    except Exception:  # Spark Connect has no SparkContext: executors need a shared path
        add_file = None
    if add_file is None:
        return Shipped(digest, str(path), None)
    folder = Path(tempfile.gettempdir()) / "modelyard-spark"
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"model-{_hex(digest)[:32]}.zip"
    with file_lock(folder / f"{archive.name}.lock"):
        if not archive.exists():
            tmp = folder / f".{uuid.uuid4().hex}.zip"
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                for file in sorted(p for p in path.rglob("*") if p.is_file()):
                    if "__pycache__" not in file.relative_to(path).parts:
                        zf.write(file, file.relative_to(path).as_posix())
                _ship_signature(zf, path, digest)
            tmp.replace(archive)
    add_file(str(archive))
    return Shipped(digest, str(path), archive.name)


def _ship_signature(zf: zipfile.ZipFile, path: Path, digest: str) -> None:
    # The yard's signature travels as MANIFEST.sig (outside the digest), so an
    # executor verifies the model as the driver did and its code loads there too.
    from modelyard.loading.fetch import kept_signature
    from modelyard.trust.signing import SIGNATURE_FILE

    if (path / SIGNATURE_FILE).is_file():
        return
    kept = kept_signature(digest)
    if kept is not None:
        zf.writestr(SIGNATURE_FILE, kept.to_json())


def materialize(shipped: Shipped) -> Path:
    """The verified local directory of ``shipped`` on this executor."""
    driver = Path(shipped.driver_path)
    if driver.is_dir() and _matches(driver, shipped.digest):
        return driver
    root = shipped_root()
    dest = root / _hex(shipped.digest)
    done = root / f"{_hex(shipped.digest)}.complete"
    if done.exists():
        return dest
    if shipped.archive is None:
        raise ModelyardError(
            f"the model {shipped.digest} is not at {str(driver)!r} on this executor and "
            "could not be distributed (no SparkContext); put it on a shared filesystem"
        )
    from pyspark import SparkFiles

    with file_lock(root / f"{_hex(shipped.digest)}.lock"):
        if done.exists():
            return dest
        tmp = root / f".{uuid.uuid4().hex}"
        try:
            with zipfile.ZipFile(SparkFiles.get(shipped.archive)) as zf:
                zf.extractall(tmp)
            if not _matches(tmp, shipped.digest):
                raise IntegrityError(tmp, "(archive)", f"does not hash to {shipped.digest}")
            shutil.rmtree(dest, ignore_errors=True)
            tmp.replace(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        done.touch()
    return dest


def _matches(path: Path, digest: str) -> bool:
    from modelyard.loading.fetch import fetch
    from modelyard.loading.resolve import resolve

    try:
        fetch(dataclasses.replace(resolve(str(path)), digest=digest))
    except IntegrityError:
        return False
    return True
