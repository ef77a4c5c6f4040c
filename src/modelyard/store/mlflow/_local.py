"""A version's files on local disk, read only inside the MLflow store's artifact roots.

The SQL and file readers both end here: MLflow's ``storage_location`` is a
``file:`` URI or a plain path, and may have been written by anyone who could
write the database. Reading it blindly would let a registry row copy any file
the importing user can read into a shared yard, so the path (symlinks
resolved) must lie inside one of the store's own artifact roots (the
experiments' artifact locations, and the ``mlruns`` folder itself), and every
file under it must too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from modelyard.errors import MlflowArtifactsRefused, MlflowSourceError
from modelyard.store.mlflow import ArtifactFile, MlflowVersion

__all__ = ["LocalArtifacts", "local_path"]


def local_path(uri: str) -> Path | None:
    """The local path a ``file:`` URI or plain path names; ``None`` for any other scheme."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parts.path))
    if len(scheme) <= 1:  # no scheme (or a Windows drive letter)
        return Path(uri)
    return None


class LocalArtifacts:
    """Lists and opens version files under ``roots`` only."""

    def __init__(self, location: str, roots: Iterable[Path]) -> None:
        self.location = location
        self.roots = tuple({_real(r) for r in roots if r is not None})

    def root_of(self, version: MlflowVersion) -> Path:
        """The version's directory, checked to lie inside the store."""
        where = version.storage
        path = local_path(where)
        if path is None:
            scheme = urlsplit(where).scheme
            hint = (
                "the files are served by an MLflow server: import from its http:// URI"
                if scheme == "mlflow-artifacts"
                else f"{scheme}: artifact stores are not read by this importer yet"
            )
            raise MlflowArtifactsRefused(self.location, version.name, version.version, where, hint)
        real = _real(path)
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            raise MlflowArtifactsRefused(
                self.location,
                version.name,
                version.version,
                where,
                "its files point at a local path outside the MLflow store's artifact roots; "
                "not read",
            )
        if not real.is_dir():
            raise MlflowSourceError(
                self.location,
                f"{version.name} version {version.version}: its artifacts are missing "
                f"({where!r} is not a directory)",
            )
        return real

    def list_files(self, version: MlflowVersion) -> list[ArtifactFile]:
        """Every regular file under the version's directory, by path."""
        root = self.root_of(version)
        out: list[ArtifactFile] = []
        try:
            for dirpath, dirnames, filenames in os.walk(root, onerror=_raise):
                dirnames.sort()
                for name in filenames:
                    path = Path(dirpath) / name
                    rel = path.relative_to(root).as_posix()
                    if not _real(path).is_relative_to(root):
                        raise MlflowArtifactsRefused(
                            self.location,
                            version.name,
                            version.version,
                            str(path),
                            f"{rel!r} links outside the version's directory; not read",
                        )
                    out.append(ArtifactFile(rel, path.stat().st_size))
        except OSError as exc:
            raise MlflowSourceError(
                self.location,
                f"{version.name} version {version.version}: its artifacts cannot be read "
                f"({exc.strerror or exc})",
            ) from None
        return sorted(out, key=lambda f: f.path)

    def open_file(self, version: MlflowVersion, path: str) -> IO[bytes]:
        """One file of the version, opened for reading (inside its directory only)."""
        root = self.root_of(version)
        target = _real(root / path)
        if not target.is_relative_to(root):
            raise MlflowArtifactsRefused(
                self.location, version.name, version.version, path, "a path outside the version"
            )
        try:
            return open(target, "rb")
        except OSError as exc:
            raise MlflowSourceError(
                self.location,
                f"{version.name} version {version.version}: {path!r} cannot be read "
                f"({exc.strerror or exc})",
            ) from None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _raise(exc: OSError) -> None:
    raise exc
