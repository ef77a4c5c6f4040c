"""Signing keys, and the store of public keys a user trusts.

Two algorithms, both through ``cryptography``: Ed25519 (the default) and ECDSA
over NIST P-256 with SHA-256 (signatures DER-encoded, as cosign and
model-signing write them).

A key is named by its *key id*: ``sha256:`` + the hex sha256 of the public
key's DER-encoded SubjectPublicKeyInfo. The id is computed from the key, never
taken from a signature, so a signature that claims another key's id simply
fails to verify.

Keys live in the per-user config home (:func:`modelyard._paths.config_home`)::

    keys/<name>.key    private key, PEM PKCS#8, mode 0600 (encrypted when a
                       password is given or MODELYARD_KEY_PASSWORD is set)
    keys/<name>.pub    public key, PEM SubjectPublicKeyInfo
    trust.yaml         public keys this user trusts, and revoked key ids

The key named ``default`` is created on first use (:func:`default_key`); every
model the user saves is signed with it, and the user's own default public key
is trusted by that user without being listed, so their own models load as
before. A yard can add its own trust file (:meth:`TrustStore.load`); a key
revoked in either is revoked, whoever trusts it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelyard._locks import file_lock
from modelyard._paths import config_home
from modelyard._stamps import write_atomic
from modelyard.errors import SignatureError

__all__ = [
    "ALGORITHMS",
    "DEFAULT_KEY",
    "PASSWORD_ENV",
    "TRUST_FILE",
    "Algorithm",
    "LocalKey",
    "PublicKey",
    "SigningKey",
    "TrustStore",
    "TrustedKey",
    "create_key",
    "default_key",
    "is_key_id",
    "key_id_of",
    "keys_dir",
    "list_local_keys",
    "load_signing_key",
    "revoke_key",
    "trust_key",
]

logger = logging.getLogger("modelyard")

Algorithm = Literal["ed25519", "p256"]
ALGORITHMS: tuple[Algorithm, ...] = cast(tuple[Algorithm, ...], get_args(Algorithm))
DEFAULT_KEY = "default"
PASSWORD_ENV = "MODELYARD_KEY_PASSWORD"
TRUST_FILE = "trust.yaml"

# A key name becomes a file name: keep it to a portable, unsurprising alphabet.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_KEY_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
# "globals" belongs to the pickle policy (modelyard.trust.policy), which shares the file
_TRUST_FIELDS = frozenset({"version", "keys", "revoked", "threshold", "globals"})
_KEY_FIELDS = frozenset({"label", "public_key", "key_id"})

_Private = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def key_id_of(der: bytes) -> str:
    """``sha256:<hex>`` of a DER SubjectPublicKeyInfo: the id of that public key."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def is_key_id(text: str) -> bool:
    """Whether ``text`` is spelled like a key id (``sha256:`` + 64 lowercase hex digits)."""
    return bool(_KEY_ID.match(text))


@dataclass(frozen=True)
class PublicKey:
    """A public key that verifies signatures: its algorithm and DER SubjectPublicKeyInfo."""

    algorithm: Algorithm
    der: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        """``sha256:`` + hex sha256 of the DER SubjectPublicKeyInfo."""
        return key_id_of(self.der)

    @classmethod
    def from_pem(cls, data: str | bytes, *, source: str = "public key") -> PublicKey:
        """Read a PEM ``PUBLIC KEY``; anything but Ed25519 or P-256 is a :class:`SignatureError`."""
        raw = data.encode() if isinstance(data, str) else data
        try:
            key = serialization.load_pem_public_key(raw)
        except (ValueError, UnsupportedAlgorithm):
            raise SignatureError(f"{source}: not a PEM public key", path=_as_path(source)) from None
        if isinstance(key, ed25519.Ed25519PublicKey):
            algorithm: Algorithm = "ed25519"
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            algorithm = "p256"
        else:
            raise SignatureError(
                f"{source}: unsupported key type (use Ed25519 or ECDSA P-256)",
                path=_as_path(source),
            )
        der = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(algorithm, der)

    def to_pem(self) -> str:
        """The PEM ``PUBLIC KEY`` text."""
        key = serialization.load_der_public_key(self.der)
        return key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Whether ``signature`` is this key's signature over ``data``."""
        key = serialization.load_der_public_key(self.der)
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            else:  # from_pem admits nothing else; a hand-built PublicKey verifies nothing
                return False
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A private key that signs, with its name (file stem) and where it was read from."""

    name: str
    algorithm: Algorithm
    public_key: PublicKey
    private_key: _Private = field(repr=False, compare=False)
    path: Path | None = None

    @property
    def key_id(self) -> str:
        """The public key's id (see :func:`key_id_of`)."""
        return self.public_key.key_id

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (Ed25519, or ECDSA P-256 with SHA-256, DER-encoded)."""
        if isinstance(self.private_key, ed25519.Ed25519PrivateKey):
            return self.private_key.sign(data)
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    @classmethod
    def generate(cls, algorithm: Algorithm = "ed25519", *, name: str = "") -> SigningKey:
        """A fresh key in memory only (:func:`create_key` also saves it)."""
        if algorithm not in ALGORITHMS:
            raise SignatureError(
                f"unknown key algorithm {algorithm!r} (choose {', '.join(ALGORITHMS)})"
            )
        private: _Private = (
            ed25519.Ed25519PrivateKey.generate()
            if algorithm == "ed25519"
            else ec.generate_private_key(ec.SECP256R1())
        )
        return cls._of(private, name=name)

    @classmethod
    def from_pem(
        cls,
        data: bytes,
        *,
        name: str = "",
        password: str | bytes | None = None,
        source: str = "private key",
    ) -> SigningKey:
        """Read a PEM PKCS#8 private key (``password``, else ``MODELYARD_KEY_PASSWORD``)."""
        secret = _password(password)
        encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
        if encrypted and secret is None:
            raise SignatureError(
                f"{source} is encrypted: give its password (set {PASSWORD_ENV})",
                path=_as_path(source),
            )
        try:
            private = serialization.load_pem_private_key(data, secret if encrypted else None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            what = (
                "wrong password, or not a PEM private key" if encrypted else "not a PEM private key"
            )
            raise SignatureError(f"{source}: {what}", path=_as_path(source)) from None
        if not (
            isinstance(private, ed25519.Ed25519PrivateKey)
            or (
                isinstance(private, ec.EllipticCurvePrivateKey)
                and isinstance(private.curve, ec.SECP256R1)
            )
        ):
            raise SignatureError(
                f"{source}: unsupported key type (use Ed25519 or ECDSA P-256)",
                path=_as_path(source),
            )
        return cls._of(private, name=name, path=_as_path(source))

    def private_pem(self, password: str | bytes | None = None) -> bytes:
        """PEM PKCS#8, encrypted with ``password`` when one is given."""
        secret = password.encode() if isinstance(password, str) else password
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(secret)
            if secret
            else serialization.NoEncryption()
        )
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @classmethod
    def _of(cls, private: _Private, *, name: str, path: Path | None = None) -> SigningKey:
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        algorithm: Algorithm = (
            "ed25519" if isinstance(private, ed25519.Ed25519PrivateKey) else "p256"
        )
        return cls(name, algorithm, PublicKey(algorithm, der), private, path)


# -- the user's key files -------------------------------------------------------------


def keys_dir() -> Path:
    """``<config home>/keys``: the user's key pairs."""
    return config_home() / "keys"


def create_key(
    name: str, algorithm: Algorithm = "ed25519", *, password: str | bytes | None = None
) -> SigningKey:
    """Generate a key pair and save it as ``keys/<name>.key`` (0600) and ``<name>.pub``.

    The private key is encrypted with ``password``, else with
    ``MODELYARD_KEY_PASSWORD`` when that is set. An existing key of that name
    is never replaced (:class:`SignatureError`).
    """
    _check_name(name)
    key = SigningKey.generate(algorithm, name=name)
    folder = _make_keys_dir()
    private_file = folder / f"{name}.key"
    try:
        _write_new(private_file, key.private_pem(_password(password)), 0o600)
    except FileExistsError:
        raise SignatureError(
            f"a key named {name!r} exists already ({private_file})", path=private_file
        ) from None
    write_atomic(folder / f"{name}.pub", key.public_key.to_pem())
    return SigningKey(name, key.algorithm, key.public_key, key.private_key, private_file)


def load_signing_key(
    name_or_path: str | os.PathLike[str], *, password: str | bytes | None = None
) -> SigningKey:
    """The private key named ``name_or_path`` in :func:`keys_dir`, or read from that path.

    A value with a path separator, or ending in ``.key`` / ``.pem``, is a path.
    """
    text = os.fspath(name_or_path)
    if _looks_like_path(text):
        file = Path(text).expanduser()
        name = file.stem
    else:
        _check_name(text)
        file, name = keys_dir() / f"{text}.key", text
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        hint = "" if _looks_like_path(text) else f"; create it with `modelyard keys create {text}`"
        raise SignatureError(f"no signing key {text!r} ({file}){hint}", path=file) from None
    except OSError as exc:
        raise SignatureError(f"cannot read signing key {str(file)!r}: {exc}", path=file) from None
    _warn_if_open(file)
    return SigningKey.from_pem(data, name=name, password=password, source=str(file))


def default_key(create: bool = True) -> SigningKey | None:
    """The user's key named ``default``; created on first use when ``create``.

    Without ``create`` an absent default key is ``None``. Two processes
    creating it at once end with one key: the loser reads the winner's.
    """
    file = keys_dir() / f"{DEFAULT_KEY}.key"
    if not file.exists():
        if not create:
            return None
        try:
            return create_key(DEFAULT_KEY)
        except SignatureError:
            if not file.exists():
                raise
    return load_signing_key(DEFAULT_KEY)


@dataclass(frozen=True)
class LocalKey:
    """A key pair in :func:`keys_dir` as ``keys list`` shows it."""

    name: str
    public_key: PublicKey
    has_private: bool


def list_local_keys() -> list[LocalKey]:
    """The user's key pairs, by name; a broken ``.pub`` file is a :class:`SignatureError`."""
    folder = keys_dir()
    if not folder.is_dir():
        return []
    names = sorted({p.stem for p in folder.iterdir() if p.suffix in (".key", ".pub")})
    found = []
    for name in names:
        public = _own_public_key(name)
        if public is not None:
            found.append(LocalKey(name, public, (folder / f"{name}.key").exists()))
    return found


def _own_public_key(name: str) -> PublicKey | None:
    # The .pub file first: reading it needs no password.
    pub = keys_dir() / f"{name}.pub"
    with contextlib.suppress(FileNotFoundError):
        return PublicKey.from_pem(pub.read_bytes(), source=str(pub))
    if (keys_dir() / f"{name}.key").exists():
        return load_signing_key(name).public_key
    return None


# -- trust ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedKey:
    """A public key someone chose to trust, under a label people recognise."""

    public_key: PublicKey
    label: str
    source: str

    @property
    def key_id(self) -> str:
        """The public key's id."""
        return self.public_key.key_id


@dataclass(frozen=True)
class TrustStore:
    """Trusted public keys by key id, revoked key ids, and how many distinct keys must sign.

    Revocation wins: a revoked key id is never trusted, whichever file lists it.
    """

    keys: Mapping[str, TrustedKey] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()
    threshold: int = 1

    def trusted(self, key_id: str) -> TrustedKey | None:
        """The trusted key with that id, or ``None`` if it is unknown or revoked."""
        if key_id in self.revoked:
            return None
        return self.keys.get(key_id)

    def is_revoked(self, key_id: str) -> bool:
        """Whether ``key_id`` was revoked."""
        return key_id in self.revoked

    @classmethod
    def from_dict(cls, data: Any, *, source: str) -> TrustStore:
        """A trust file's content (``keys``, ``revoked``, ``threshold``), checked strictly."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise _bad(source, None, "must be a mapping with 'keys' and 'revoked'")
        for name in data:
            if name not in _TRUST_FIELDS:
                raise _bad(
                    source,
                    str(name),
                    f"unknown field (allowed: {', '.join(sorted(_TRUST_FIELDS))})",
                )
        if data.get("version", 1) != 1:
            raise _bad(source, "version", f"unsupported version {data.get('version')!r} (only 1)")
        keys: dict[str, TrustedKey] = {}
        for i, entry in enumerate(_list(data, "keys", source)):
            trusted = _trusted_entry(entry, source, f"keys[{i}]")
            keys.setdefault(trusted.key_id, trusted)
        revoked = set()
        for i, key_id in enumerate(_list(data, "revoked", source)):
            if not isinstance(key_id, str) or not is_key_id(key_id):
                raise _bad(source, f"revoked[{i}]", "must be a key id 'sha256:<64 hex digits>'")
            revoked.add(key_id)
        threshold = data.get("threshold", 1)
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise _bad(source, "threshold", "must be a whole number of at least 1")
        return cls(keys, frozenset(revoked), threshold)

    @classmethod
    def read(cls, file: Path) -> TrustStore:
        """The trust file at ``file``; an absent file trusts nothing."""
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise SignatureError(
                f"cannot read trust file {str(file)!r}: {exc}", path=file
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SignatureError(
                f"trust file {str(file)!r} is not valid YAML: {exc}", path=file
            ) from None
        return cls.from_dict(data, source=str(file))

    @classmethod
    def load(
        cls,
        yard: Path | str | Mapping[str, Any] | None = None,
        *,
        include_own: bool = True,
    ) -> TrustStore:
        """The user's trust file merged with a yard's (a file or its parsed content).

        The user's own default public key is trusted too (``include_own``), when
        it exists. Keys and revocations are unions; the threshold is the
        higher of the two, so neither side can lower the other's.
        """
        parts = [cls.read(config_home() / TRUST_FILE)]
        if isinstance(yard, Mapping):
            parts.append(cls.from_dict(yard, source="the yard's trust settings"))
        elif yard is not None:
            parts.append(cls.read(Path(yard)))
        if include_own:
            own = _own_public_key(DEFAULT_KEY)
            if own is not None:
                parts.append(cls({own.key_id: TrustedKey(own, "default (own key)", "own key")}))
        return cls.merge(*parts)

    @classmethod
    def merge(cls, *stores: TrustStore) -> TrustStore:
        """One store of all: the first label of a key wins; revocations and thresholds add up."""
        keys: dict[str, TrustedKey] = {}
        revoked: set[str] = set()
        for store in stores:
            for key_id, trusted in store.keys.items():
                keys.setdefault(key_id, trusted)
            revoked |= store.revoked
        return cls(keys, frozenset(revoked), max((s.threshold for s in stores), default=1))


def trust_key(public_key: PublicKey, label: str) -> TrustedKey:
    """Add ``public_key`` to the user's trust file under ``label`` (a key trusted already is
    relabelled). A revoked key stays revoked: revocation wins."""
    if not label.strip():
        raise SignatureError("a trusted key needs a non-empty label")
    with editing_trust_file() as doc:
        entries = [e for e in doc.setdefault("keys", []) if _entry_id(e) != public_key.key_id]
        entries.append(
            {"label": label, "key_id": public_key.key_id, "public_key": public_key.to_pem()}
        )
        doc["keys"] = entries
    return TrustedKey(public_key, label, str(config_home() / TRUST_FILE))


def revoke_key(key_id: str) -> None:
    """Add ``key_id`` to the revoked ids in the user's trust file."""
    if not is_key_id(key_id):
        raise SignatureError(f"{key_id!r} is not a key id ('sha256:' + 64 hex digits)")
    with editing_trust_file() as doc:
        revoked = list(doc.get("revoked") or [])
        if key_id not in revoked:
            revoked.append(key_id)
        doc["revoked"] = revoked


@contextlib.contextmanager
def editing_trust_file() -> Iterator[dict[str, Any]]:
    # Read, change, write under a lock, and check the result parses: a concurrent
    # `keys trust` never loses the other's entry, and no edit leaves a broken file.
    file = config_home() / TRUST_FILE
    with file_lock(file.with_name(f".{TRUST_FILE}.lock")):
        TrustStore.read(file)
        doc: dict[str, Any] = {}
        if file.exists():
            doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        yield doc
        text = yaml.safe_dump(doc, sort_keys=False)
        TrustStore.from_dict(yaml.safe_load(text), source=str(file))
        write_atomic(file, text)


def _entry_id(entry: Any) -> str | None:
    if isinstance(entry, Mapping) and isinstance(entry.get("public_key"), str):
        return PublicKey.from_pem(entry["public_key"]).key_id
    return None


def _trusted_entry(entry: Any, source: str, where: str) -> TrustedKey:
    if not isinstance(entry, Mapping):
        raise _bad(source, where, "must be a mapping with 'label' and 'public_key'")
    for name in entry:
        if name not in _KEY_FIELDS:
            raise _bad(
                source, f"{where}.{name}", "unknown field (allowed: key_id, label, public_key)"
            )
    label, pem = entry.get("label"), entry.get("public_key")
    if not isinstance(label, str) or not label.strip():
        raise _bad(source, f"{where}.label", "must be a non-empty string")
    if not isinstance(pem, str):
        raise _bad(source, f"{where}.public_key", "must be a PEM public key")
    try:
        public = PublicKey.from_pem(pem)
    except SignatureError as exc:
        raise _bad(source, f"{where}.public_key", str(exc).removeprefix("public key: ")) from None
    claimed = entry.get("key_id")
    if claimed is not None and claimed != public.key_id:
        raise _bad(
            source,
            f"{where}.key_id",
            f"{claimed!r} is not the id of its public key ({public.key_id})",
        )
    return TrustedKey(public, label, source)


def _list(data: Mapping[str, Any], name: str, source: str) -> list[Any]:
    value = data.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(source, name, "must be a list")
    return value


def _bad(source: str, field_name: str | None, problem: str) -> SignatureError:
    where = f", field {field_name!r}" if field_name else ""
    return SignatureError(f"trust file {source!r}{where}: {problem}", path=_as_path(source))


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise SignatureError(
            f"invalid key name {name!r}: letters, digits, '.', '_' and '-', at most 64, "
            "starting with a letter or digit"
        )


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.endswith((".key", ".pem")) or text.startswith("~")


def _password(given: str | bytes | None) -> bytes | None:
    if given is None:
        given = os.environ.get(PASSWORD_ENV) or None
    if given is None:
        return None
    return given.encode() if isinstance(given, str) else given


def _make_keys_dir() -> Path:
    folder = keys_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a new file, whole or not at all; ``FileExistsError`` if it exists."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it oddly; say exactly
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() fails when the name exists: no key is ever overwritten, and the file
        # appears complete or not at all.
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _warn_if_open(file: Path) -> None:
    with contextlib.suppress(OSError):
        if file.stat().st_mode & 0o077:
            logger.warning(
                "signing key %s can be read by other users (mode %o); chmod 600 it",
                file,
                file.stat().st_mode & 0o777,
            )


def _as_path(source: str) -> Path | None:
    # Error sources are file names or descriptions such as "public key"; only the former
    # is a path worth carrying.
    return Path(source) if "/" in source or os.sep in source else None
