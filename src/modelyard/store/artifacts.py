"""Which artifact store a URI names: ``open_artifact_store`` and its registry.

An artifact-store URI is what a database yard's ``?artifacts=`` holds:

=================================  ===============================================
``/dir``, ``./rel``, ``file:///d``  :class:`~modelyard.store.blobs.LocalBlobStore`
                                    in that folder
``s3://bucket/prefix``              :class:`~modelyard.store.s3.S3BlobStore`; the
                                    endpoint, region and credentials come from the
                                    standard ``AWS_*`` variables and config files
=================================  ===============================================

Other schemes are added through the entry-point group
``modelyard.artifact_stores``, whose value is a factory ``(uri) -> ArtifactStore``::

    [project.entry-points."modelyard.artifact_stores"]
    gs = "my_package.gcs:open_gcs_store"

Nothing here imports boto3: the S3 store's module is imported when one opens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import unquote, urlsplit

from modelyard._registry import Registry
from modelyard.errors import ArtifactStoreError, InvalidURI

if TYPE_CHECKING:
    from modelyard.store import ArtifactStore

__all__ = [
    "ArtifactStoreFactory",
    "check_artifact_uri",
    "list_artifact_store_schemes",
    "normalize_artifact_uri",
    "open_artifact_store",
    "parse_s3_uri",
    "register_artifact_store",
]

ArtifactStoreFactory = Callable[[str], "ArtifactStore"]

_BUILTINS = {
    "file": "modelyard.store.artifacts:_open_local",
    "s3": "modelyard.store.artifacts:_open_s3",
}
# Loose on purpose: old AWS buckets may hold capitals and underscores, and the server
# is the judge of the rest; this only keeps out what cannot be a bucket anywhere.
_BUCKET = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


def _validate(name: str, item: object) -> ArtifactStoreFactory:
    if not callable(item):
        raise TypeError(f"artifact store factory for scheme {name!r} is not callable: {item!r}")
    return item


_registry: Registry[ArtifactStoreFactory] = Registry(
    "artifact store", "modelyard.artifact_stores", _BUILTINS, _validate
)


def register_artifact_store(
    scheme: str, factory: ArtifactStoreFactory, *, replace: bool = False
) -> None:
    """Open artifact-store URIs with scheme ``scheme`` through ``factory(uri)``.

    >>> register_artifact_store("gs", open_gcs_store)  # doctest: +SKIP
    """
    _registry.register(scheme, factory, replace=replace)


def list_artifact_store_schemes() -> list[str]:
    """Every artifact-store URI scheme a factory is registered for."""
    return _registry.names()


def open_artifact_store(uri: str) -> ArtifactStore:
    """The artifact store ``uri`` names: a folder (path or ``file://``), ``s3://bucket/prefix``,
    or a scheme registered through ``modelyard.artifact_stores``."""
    uri = normalize_artifact_uri(uri)
    scheme = _scheme(uri)
    if scheme is None:
        return _open_local(uri)
    return _factory(uri, scheme)(uri)


def check_artifact_uri(uri: str) -> None:
    """Raise :class:`InvalidURI` if ``uri`` cannot name an artifact store (no import, no I/O)."""
    uri = normalize_artifact_uri(uri)
    scheme = _scheme(uri)
    if scheme == "s3":
        parse_s3_uri(uri)
    elif scheme is not None and scheme not in _registry.names():
        _unknown(uri, scheme)


def normalize_artifact_uri(uri: str) -> str:
    """``uri`` as stored in a :class:`~modelyard.store.StoreSpec`: a folder as its absolute
    path (``file://`` URIs and relative paths included), any other URI unchanged."""
    text = uri.strip()
    if not text:
        raise InvalidURI(uri, "an artifact store URI must not be empty", part="artifacts")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidURI(text, "file: artifact URIs must not name a host", part="host")
        return str(Path(unquote(parts.path)).expanduser().absolute())
    if len(scheme) <= 1:  # no scheme, or a Windows drive letter
        return str(Path(text).expanduser().absolute())
    return text


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """The bucket and key prefix (no slashes around it; may be ``""``) of ``s3://bucket/prefix``."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "s3":
        raise InvalidURI(uri, "not an s3:// URI", part="scheme")
    if parts.query or parts.fragment:
        raise InvalidURI(
            uri,
            "an s3:// artifact URI takes no query: the endpoint, region and credentials "
            "come from the AWS_* variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...)",
            part="query",
        )
    bucket = parts.netloc
    if not bucket:
        raise InvalidURI(uri, "an s3:// URI needs a bucket: s3://bucket/prefix", part="bucket")
    if not _BUCKET.match(bucket):
        raise InvalidURI(
            uri,
            f"{bucket!r} is not a bucket name (letters, digits, '.', '-' and '_' only; "
            "no user, password or port: those come from the AWS_* variables)",
            part="bucket",
        )
    prefix = unquote(parts.path).strip("/")
    segments = prefix.split("/") if prefix else []
    if any(s in ("", ".", "..") for s in segments) or any(
        ord(c) < 32 or c == "\x7f" for c in prefix
    ):
        raise InvalidURI(
            uri,
            f"the key prefix {prefix!r} must be plain path segments (no '..', '.', '//' "
            "or control characters)",
            part="prefix",
        )
    return bucket, prefix


def _scheme(uri: str) -> str | None:
    scheme = urlsplit(uri).scheme.lower()
    return scheme if len(scheme) > 1 else None


def _factory(uri: str, scheme: str) -> ArtifactStoreFactory:
    try:
        return _registry.get(scheme)
    except KeyError:
        _unknown(uri, scheme)


def _unknown(uri: str, scheme: str) -> NoReturn:
    close = _registry.suggest(scheme)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InvalidURI(
        uri,
        f"no artifact store for scheme {scheme!r}{hint} "
        f"(known: {', '.join(_registry.names())}, or a folder)",
        part="scheme",
    ) from None


def _open_local(uri: str) -> ArtifactStore:
    from modelyard.store.blobs import LocalBlobStore

    return LocalBlobStore(Path(normalize_artifact_uri(uri)))


def _open_s3(uri: str) -> ArtifactStore:
    try:
        from modelyard.store.s3 import open_s3_store
    except ModuleNotFoundError as exc:
        if exc.name not in ("boto3", "botocore"):
            raise
        raise ArtifactStoreError(
            uri, "an s3:// artifact store needs boto3: pip install 'modelyard[s3]'"
        ) from None
    return open_s3_store(uri)
