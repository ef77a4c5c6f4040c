"""Which yard is in use: ``set_yard``, ``get_yard`` and ``MODELYARD_URI``.

A yard is a metadata store plus an artifact store, named by one URI:

================================================  ===================================
``/path/to/folder``, ``./rel``, ``file:``         embedded: ``yard.db`` (SQLite),
                                                  ``blobs/`` and ``cache/`` inside
``sqlite:///path/yard.db[?artifacts=URI]``        a SQLite file; artifacts in ``URI``
                                                  (default ``blobs/`` beside the file)
``postgresql://user@host/db?artifacts=URI``       PostgreSQL; artifacts in ``URI``
                                                  (required: a store every user reaches)
================================================  ===================================

The artifact store ``URI`` is ``s3://bucket/prefix`` (endpoint, region and
credentials from the standard ``AWS_*`` variables and config files), a folder
path or ``file:///dir`` (see :mod:`modelyard.store.artifacts`); ``?blobs=DIR``
is the older spelling of ``?artifacts=DIR``.

The yard in use is, in order: the one given to :func:`set_yard`, the
``MODELYARD_URI`` environment variable, else the embedded default
``./.modelyard`` (a folder in the working directory, created on the first
write; nothing to start or configure).

Models fetched from the yard are cached by digest in ``cache/`` of an
embedded yard, or ``~/.cache/modelyard/models`` for a database yard;
``MODELYARD_CACHE`` overrides both.

Opening a yard imports nothing heavy: the stores open on first use, and the
SQL store imports SQLAlchemy (never Alembic unless a migration is due), the S3
store boto3.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from modelyard.errors import InvalidURI
from modelyard.store import Stores, StoreSpec, open_stores
from modelyard.store.artifacts import check_artifact_uri, normalize_artifact_uri

if TYPE_CHECKING:
    from modelyard.store import ArtifactStore, MetadataStore
    from modelyard.store.cache import ModelCache
    from modelyard.store.entities import ResolvedVersion

__all__ = [
    "DEFAULT_FOLDER",
    "ENV_CACHE",
    "ENV_URI",
    "Yard",
    "get_yard",
    "parse_yard_uri",
    "set_yard",
    "yard_at",
]

ENV_URI = "MODELYARD_URI"
ENV_CACHE = "MODELYARD_CACHE"
DEFAULT_FOLDER = ".modelyard"
DB_FILE = "yard.db"
_ARTIFACTS_PARAMS = ("artifacts", "blobs")
_POSTGRES = ("postgresql", "postgres")


def parse_yard_uri(uri: str | os.PathLike[str] | None) -> tuple[StoreSpec, Path]:
    """The store spec and the local cache folder for a yard URI (see the module doc)."""
    if uri is None or (isinstance(uri, str) and not uri.strip()):
        uri = os.environ.get(ENV_URI) or DEFAULT_FOLDER
    if isinstance(uri, os.PathLike):
        return _embedded(Path(uri))
    text = str(uri).strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    base = scheme.split("+", 1)[0]
    # One-letter schemes are Windows drive letters: a path.
    if not scheme or len(scheme) == 1:
        return _embedded(Path(text))
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidURI(text, "file: yard URIs must not name a host", part="host")
        return _embedded(Path(unquote(parts.path)))
    query = parse_qsl(parts.query, keep_blank_values=True)
    rest = [(k, v) for k, v in query if k not in _ARTIFACTS_PARAMS]
    # Not urlunsplit: it turns sqlite:////abs/path (an empty host) into sqlite://abs/path.
    db_url = text.split("?", 1)[0].split("#", 1)[0] + (f"?{urlencode(rest)}" if rest else "")
    artifacts = _artifacts_param(text, query)
    if base == "sqlite":
        db_path = Path(unquote(parts.path[1:] if parts.path.startswith("/") else parts.path))
        if not parts.path or db_path == Path(":memory:"):
            raise InvalidURI(text, "a sqlite: yard needs a database file", part="path")
        if artifacts is None:
            artifacts = str(db_path.parent.absolute() / "blobs")
        spec = StoreSpec("sqlite", db_url, artifacts, _mask(text))
        return spec, _cache_root(db_path.parent.absolute() / "cache")
    if base in _POSTGRES:
        if artifacts is None:
            raise InvalidURI(
                _mask(text),
                "a postgresql yard needs an artifact store every user can reach: "
                "add ?artifacts=s3://bucket/prefix or ?blobs=/path/to/shared/folder",
                part="artifacts",
            )
        if base == "postgres":  # libpq's short spelling; SQLAlchemy wants the long one
            db_url = "postgresql" + db_url[len("postgres") :]
        spec = StoreSpec("postgresql", db_url, artifacts, _mask(text))
        return spec, _cache_root(None)
    # Another store, registered through the modelyard.stores entry points.
    return StoreSpec(base, text, artifacts or "", _mask(text)), _cache_root(None)


def _artifacts_param(uri: str, query: list[tuple[str, str]]) -> str | None:
    """The normalized store URI of ``?artifacts=`` (or ``?blobs=``); ``None`` if absent."""
    given = [(k, v) for k, v in query if k in _ARTIFACTS_PARAMS]
    if not given:
        return None
    if len(given) > 1:
        names = " and ".join(f"?{k}=" for k, _ in given)
        raise InvalidURI(
            _mask(uri),
            f"{names} both name the artifact store: give one (?artifacts=URI, or ?blobs=DIR)",
            part="artifacts",
        )
    key, value = given[0]
    if not value.strip():
        raise InvalidURI(_mask(uri), f"?{key}= needs a value", part=key)
    try:
        if key == "blobs":
            # ?blobs= always named a folder, whatever it looks like
            return normalize_artifact_uri(str(Path(value).expanduser().absolute()))
        check_artifact_uri(value)
        return normalize_artifact_uri(value)
    except InvalidURI as exc:
        raise InvalidURI(_mask(uri), f"?{key}={value}: {exc.reason}", part=key) from None


def _embedded(folder: Path) -> tuple[StoreSpec, Path]:
    folder = folder.expanduser().absolute()
    if folder.exists() and not folder.is_dir():
        raise InvalidURI(str(folder), "the yard folder is a file", part="path")
    spec = StoreSpec(
        "file",
        f"sqlite:///{folder / DB_FILE}",
        str(folder / "blobs"),
        str(folder),
    )
    return spec, _cache_root(folder / "cache")


def _cache_root(default: Path | None) -> Path:
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser().absolute()
    if default is not None:
        return default
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "modelyard" / "models"


def _mask(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


class Yard:
    """A metadata store and an artifact store, opened on first use.

    >>> yard = modelyard.get_yard()  # doctest: +SKIP
    >>> yard.uri                     # doctest: +SKIP
    '/home/ana/project/.modelyard'
    """

    def __init__(self, uri: str | os.PathLike[str] | None = None) -> None:
        self.spec, self.cache_root = parse_yard_uri(uri)
        self._stores: Stores | None = None
        self._cache: ModelCache | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        """The yard's URI as shown to people (passwords masked)."""
        return self.spec.display

    @property
    def kind(self) -> str:
        """``embedded``, ``sqlite``, ``postgresql`` or a third-party scheme."""
        return "embedded" if self.spec.scheme == "file" else self.spec.scheme

    def __repr__(self) -> str:
        return f"<Yard {self.kind} {self.uri}>"

    @property
    def metadata(self) -> MetadataStore:
        """The metadata store, created if the yard does not exist yet."""
        return self._open(create=True).metadata

    def reader(self) -> MetadataStore:
        """The metadata store for reads: :class:`YardNotFound` if the yard was never written."""
        return self._open(create=False).metadata

    def resolve(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ResolvedVersion:
        """The version a ``models:/`` reference points at (the lookup ``load_model`` does).

        On a SQLite yard whose stores are not open yet this is one query through
        :mod:`sqlite3` (:mod:`modelyard.store.sql.lookup`), so a cold process loading
        by alias never imports SQLAlchemy; misses and anything unusual go through
        the store, which explains them. Against a server, a pinned version resolved
        once is remembered (:mod:`modelyard.store.rest.pins`): versions never change.
        """
        if self._stores is None and self.spec.scheme in ("file", "sqlite"):
            from modelyard.store.sql.lookup import lookup, sqlite_file

            db_file = sqlite_file(self.spec.database_url)
            if db_file is not None:
                found = lookup(db_file, name, version=version, alias=alias)
                if found is not None:
                    return found
        if self.spec.scheme in ("http", "https") and version is not None and alias is None:
            from modelyard.store.rest.pins import PinCache

            pins = PinCache(self.cache_root)
            pinned = pins.get(self.spec.database_url, name, version)
            if pinned is None:
                pinned = self.reader().resolve(name, version=version)
                pins.put(self.spec.database_url, pinned)
            return pinned
        return self.reader().resolve(name, version=version, alias=alias)

    @property
    def artifacts(self) -> ArtifactStore:
        """The blob store (opens the yard for reading if it is not open yet)."""
        return self._open(create=False).artifacts

    @property
    def cache(self) -> ModelCache:
        """The local model cache (by digest)."""
        if self._cache is None:
            from modelyard.store.cache import ModelCache

            self._cache = ModelCache(self.cache_root)
        return self._cache

    def describe(self) -> dict[str, str]:
        """Where everything is, for ``modelyard db status`` and bug reports."""
        return {
            "uri": self.uri,
            "kind": self.kind,
            "artifacts": self.spec.artifacts,
            "cache": str(self.cache_root),
        }

    def close(self) -> None:
        """Release database connections (the yard reopens on next use)."""
        with self._lock:
            if self._stores is not None:
                self._stores.metadata.close()
            self._stores = None

    def _open(self, *, create: bool) -> Stores:
        stores = self._stores
        if stores is not None and self._pid == os.getpid():
            return stores
        with self._lock:
            if self._stores is not None and self._pid != os.getpid():
                # A forked child must not close (or share) its parent's connections.
                forget = getattr(self._stores.metadata, "after_fork", None)
                if forget is not None:
                    forget()
                self._stores = None
            if self._stores is None:
                self._stores = open_stores(replace(self.spec, create=create))
                self._pid = os.getpid()
            return self._stores


def _token_key() -> str:
    import hashlib

    token = os.environ.get("MODELYARD_TOKEN", "")
    return hashlib.sha256(token.encode()).hexdigest()[:16]


class _State:
    current: Yard | None = None


_by_uri: dict[str, Yard] = {}
_guard = threading.Lock()


def set_yard(uri: str | os.PathLike[str] | None) -> Yard:
    """Use the yard at ``uri`` from now on in this process (``None``: back to the default).

    >>> modelyard.set_yard("./demo-yard")                               # doctest: +SKIP
    >>> modelyard.set_yard("postgresql://me@db/yard?artifacts=s3://models/yard")  # doctest: +SKIP
    """
    with _guard:
        _State.current = None if uri is None else _yard_for(uri)
        return _State.current if _State.current is not None else _yard_for(None)


def get_yard() -> Yard:
    """The yard in use: :func:`set_yard`'s, else ``MODELYARD_URI``'s, else ``./.modelyard``."""
    current = _State.current
    if current is not None:
        return current
    with _guard:
        return _yard_for(None)


def yard_at(uri: str | os.PathLike[str] | Yard) -> Yard:
    """The yard at ``uri`` (one shared :class:`Yard` per place), without making it current.

    >>> modelyard.yard.yard_at("mlflow+sqlite:///mlflow.db")  # doctest: +SKIP
    """
    if isinstance(uri, Yard):
        return uri
    with _guard:
        return _yard_for(uri)


def _yard_for(uri: str | os.PathLike[str] | None) -> Yard:
    # One Yard (one engine, one pool) per place, however it was spelled.
    spec, cache = parse_yard_uri(uri)
    key = f"{spec.scheme}|{spec.database_url}|{spec.artifacts}|{cache}"
    if spec.scheme in ("http", "https"):
        # one session per token: a process may act as two users of one server
        key += "|" + _token_key()
    yard = _by_uri.get(key)
    if yard is None:
        yard = _by_uri[key] = Yard(uri if uri is not None else None)
    return yard
