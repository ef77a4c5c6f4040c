"""Parse and validate every model reference form.

==============================  =============================================
``models:/<name>/<version>``    one registered version
``models:/<name>@<alias>``      the version an alias points at now
``models:/<name>/latest``       the highest version number
``runs:/<run_id>/<path>``       a path inside a run's artifacts
``/abs``, ``./rel``, ``file:``  a model directory on disk
==============================  =============================================

Every part is validated here, once: no ``..``, no absolute sub-paths, no
control characters, no empty parts.

>>> parse_uri("models:/fraud@champion")
ModelsURI(name='fraud', version=None, alias='champion', latest=False, subpath='')
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from modelyard.errors import InvalidURI

__all__ = [
    "ModelURI",
    "ModelsURI",
    "PathURI",
    "RunsURI",
    "parse_uri",
    "validate_alias",
    "validate_name",
    "validate_relative_path",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
_ALIAS = re.compile(r"^[\w\-]+$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
_REMOTE_SCHEMES = frozenset({"s3", "gs", "http", "https", "wasbs", "abfss", "hdfs", "dbfs"})


@dataclass(frozen=True)
class PathURI:
    """A model directory on the local file system."""

    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class ModelsURI:
    """``models:/name/version``, ``models:/name@alias`` or ``models:/name/latest``."""

    name: str
    version: int | None = None
    alias: str | None = None
    latest: bool = False
    subpath: str = ""

    def __str__(self) -> str:
        if self.alias is not None:
            base = f"models:/{self.name}@{self.alias}"
        else:
            base = f"models:/{self.name}/{'latest' if self.latest else self.version}"
        return f"{base}/{self.subpath}" if self.subpath else base


@dataclass(frozen=True)
class RunsURI:
    """``runs:/<run_id>/<path>``: a path inside a run's artifacts."""

    run_id: str
    path: str

    def __str__(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


ModelURI = PathURI | ModelsURI | RunsURI


def parse_uri(uri: str | os.PathLike[str]) -> ModelURI:
    """Parse a model reference; :class:`InvalidURI` names the part that is wrong."""
    if isinstance(uri, os.PathLike):
        return PathURI(Path(uri))
    if not isinstance(uri, str):
        raise InvalidURI(repr(uri), f"expected a string or path, got {type(uri).__name__}")
    if not uri.strip():
        raise InvalidURI(uri, "empty")
    if _CONTROL.search(uri):
        raise InvalidURI(uri, "contains control characters")
    if uri.startswith("models:"):
        return _parse_models(uri)
    if uri.startswith("runs:"):
        return _parse_runs(uri)
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise InvalidURI(uri, "file: URIs must not name a host", part="host")
        return PathURI(Path(unquote(parsed.path)))
    # "C:\..." style drive letters have a one-letter scheme; anything longer is a scheme.
    if parsed.scheme and len(parsed.scheme) > 1:
        if parsed.scheme in _REMOTE_SCHEMES:
            raise InvalidURI(uri, f"{parsed.scheme}:// stores are not supported yet", part="scheme")
        raise InvalidURI(
            uri,
            f"unknown scheme {parsed.scheme!r}; use models:/, runs:/, file:// or a path",
            part="scheme",
        )
    return PathURI(Path(uri))


def validate_name(value: str, what: str = "model name", *, uri: str | None = None) -> str:
    """A registered-model name, alias or tag key: no ``/``, ``..``, ``:``, control chars."""
    reason = None
    if not value or not value.strip():
        reason = f"the {what} is empty"
    elif value != value.strip():
        reason = f"the {what} {value!r} has leading or trailing spaces"
    elif _CONTROL.search(value):
        reason = f"the {what} contains control characters"
    elif "/" in value or "\\" in value:
        reason = f"the {what} {value!r} contains a slash"
    elif ".." in value:
        reason = f"the {what} {value!r} contains '..'"
    elif ":" in value:
        reason = f"the {what} {value!r} contains ':'"
    elif len(value) > 255:
        reason = f"the {what} is longer than 255 characters"
    if reason:
        raise InvalidURI(uri or value, reason, part=what)
    return value


def validate_alias(alias: str, *, uri: str | None = None) -> str:
    """An alias: letters, digits, ``_`` and ``-``; ``latest`` and ``v<digits>`` are reserved."""
    validate_name(alias, "alias", uri=uri)
    if not _ALIAS.match(alias):
        raise InvalidURI(
            uri or alias,
            f"alias {alias!r} may only contain letters, digits, '_' and '-'",
            part="alias",
        )
    if _RESERVED_ALIAS.match(alias):
        raise InvalidURI(uri or alias, f"alias {alias!r} is reserved", part="alias")
    return alias


def validate_relative_path(path: str, what: str = "path", *, uri: str | None = None) -> str:
    """A relative POSIX path that stays inside its root; returns it normalised."""
    if _CONTROL.search(path):
        raise InvalidURI(uri or path, f"the {what} contains control characters", part=what)
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path):
        raise InvalidURI(uri or path, f"the {what} {path!r} is absolute", part=what)
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidURI(uri or path, f"the {what} {path!r} contains '..'", part=what)
    return "/".join(parts)


def _parse_models(uri: str) -> ModelsURI:
    rest = uri[len("models:") :]
    if not rest.startswith("/") or rest.startswith("//"):
        raise InvalidURI(
            uri,
            "expected models:/<name>/<version>, models:/<name>@<alias> or models:/<name>/latest",
        )
    body = rest[1:]
    head, _, subpath = body.partition("/")
    if "@" in head:
        name, _, alias = head.rpartition("@")
        validate_name(name, uri=uri)
        validate_alias(alias, uri=uri)
        return ModelsURI(name=name, alias=alias, subpath=_subpath(subpath, uri))
    name = head
    validate_name(name, uri=uri)
    selector, _, subpath = subpath.partition("/")
    if not selector:
        raise InvalidURI(
            uri,
            "missing version: use models:/<name>/<version>, @<alias> or /latest",
            part="version",
        )
    if selector.lower() == "latest":
        return ModelsURI(name=name, latest=True, subpath=_subpath(subpath, uri))
    if not selector.isdigit() or int(selector) < 1:
        raise InvalidURI(
            uri,
            f"version {selector!r} is not a positive integer (nor 'latest')",
            part="version",
        )
    return ModelsURI(name=name, version=int(selector), subpath=_subpath(subpath, uri))


def _parse_runs(uri: str) -> RunsURI:
    rest = uri[len("runs:") :]
    if not rest.startswith("/") or rest.startswith("//"):
        raise InvalidURI(uri, "expected runs:/<run_id>/<path>")
    run_id, _, path = rest[1:].partition("/")
    if not run_id:
        raise InvalidURI(uri, "the run id is empty", part="run id")
    if not _RUN_ID.match(run_id):
        raise InvalidURI(
            uri, f"run id {run_id!r} has characters outside [A-Za-z0-9_-]", part="run id"
        )
    return RunsURI(run_id=run_id, path=validate_relative_path(path, "artifact path", uri=uri))


def _subpath(subpath: str, uri: str) -> str:
    return validate_relative_path(subpath, "sub-path", uri=uri) if subpath else ""
