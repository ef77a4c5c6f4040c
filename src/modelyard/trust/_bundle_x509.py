"""Keys and certificates of model-signing bundles, through ``cryptography`` only.

model-signing 1.1.1 signs and verifies with ECDSA keys on NIST P-256, P-384
or P-521 alone, hashing with SHA-256, SHA-384 or SHA-512 by curve
(``_check_supported_ec_key``, ``get_ec_key_hash``). Its ``publicKey.hint`` is
the hex sha256 of the public key's PEM SubjectPublicKeyInfo text. A
certificate bundle carries the signing certificate first, then the rest of
its chain; the verifier trusts exactly the certificates the caller gives.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from modelyard.errors import SignatureError
from modelyard.trust.keys import PublicKey, key_id_of

__all__ = [
    "CertificateSource",
    "KeySource",
    "check_signing_usage",
    "curve_name",
    "ec_key",
    "identities",
    "key_id",
    "load_certificates",
    "load_public_key",
    "pem_hint",
    "verify_chain",
    "verify_signature",
]

KeySource = PublicKey | str | bytes | os.PathLike[str]
CertificateSource = Sequence[x509.Certificate] | str | bytes | os.PathLike[str]

# curve -> (modelyard's short name, the hash model-signing pairs with it)
_CURVES: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    "secp256r1": ("p256", hashes.SHA256),
    "secp384r1": ("p384", hashes.SHA384),
    "secp521r1": ("p521", hashes.SHA512),
}


def ec_key(key: PublicKeyTypes, source: str) -> ec.EllipticCurvePublicKey:
    """``key`` if model-signing 1.1.1 can use it (ECDSA P-256/384/521); else a
    :class:`SignatureError` naming its type."""
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _CURVES:
        return key
    raise SignatureError(
        f"{source}: {_type_name(key)} keys are not supported by model-signing 1.1.1, "
        "which signs and verifies with ECDSA keys on P-256, P-384 or P-521 only"
    )


def curve_name(key: ec.EllipticCurvePublicKey) -> str:
    """``p256``, ``p384`` or ``p521``."""
    return _CURVES[key.curve.name][0]


def key_id(key: ec.EllipticCurvePublicKey) -> str:
    """modelyard's id of the key: ``sha256:`` + hex sha256 of its DER SubjectPublicKeyInfo."""
    return key_id_of(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def pem_hint(key: ec.EllipticCurvePublicKey) -> str:
    """model-signing's ``publicKey.hint``: hex sha256 of the PEM SubjectPublicKeyInfo."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(pem).hexdigest()


def verify_signature(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` (DER ECDSA) is ``key``'s over ``data``, with the curve's hash."""
    try:
        key.verify(signature, data, ec.ECDSA(_CURVES[key.curve.name][1]()))
    except InvalidSignature:
        return False
    return True


def load_public_key(value: KeySource) -> ec.EllipticCurvePublicKey:
    """A public key given as a modelyard :class:`PublicKey`, PEM text or bytes, or a PEM file."""
    if isinstance(value, PublicKey):
        return ec_key(serialization.load_der_public_key(value.der), f"key {value.key_id}")
    data, source = _pem_data(value, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError(f"{source}: not a PEM public key") from None
    return ec_key(key, source)


def load_certificates(value: CertificateSource, what: str) -> tuple[x509.Certificate, ...]:
    """Certificates given as objects, PEM text or bytes, or a PEM file (order kept)."""
    if not isinstance(value, str | bytes | os.PathLike):
        certs = tuple(value)
        if not certs or not all(isinstance(c, x509.Certificate) for c in certs):
            raise SignatureError(f"{what}: give at least one x509.Certificate")
        return certs
    data, source = _pem_data(value, what)
    try:
        found = tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        found = ()
    if not found:
        raise SignatureError(f"{source}: holds no PEM certificate")
    return found


def verify_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at: _dt.datetime,
) -> None:
    """Require a path from ``leaf`` through ``intermediates`` to one of ``roots`` at ``at``.

    The CA certificates are held to the Web PKI rules (``cryptography``'s
    defaults: CA basic constraints, keyCertSign, path lengths, signature
    algorithms); the leaf's own extensions are left to
    :func:`check_signing_usage`, since a code-signing leaf has no TLS
    ``clientAuth``/``serverAuth`` usage for a TLS policy to find.
    """
    from cryptography.x509 import verification as v

    if not hasattr(v, "ExtensionPolicy"):  # cryptography < 45
        raise SignatureError(
            "verifying a certificate chain needs cryptography>=45 (x509 extension policies)"
        )
    builder = (
        v.PolicyBuilder()
        .store(v.Store(list(roots)))
        .time(at)
        .extension_policies(
            ca_policy=v.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=v.ExtensionPolicy.permit_all(),
        )
    )
    try:
        builder.build_client_verifier().verify(leaf, list(intermediates))
    except v.VerificationError as exc:
        raise SignatureError(
            f"the signing certificate ({leaf.subject.rfc4514_string()}) does not chain up to "
            f"the given root(s) at {at:%Y-%m-%dT%H:%M:%SZ}: {exc}"
        ) from None


def check_signing_usage(leaf: x509.Certificate) -> None:
    """The leaf must be meant for signing: KeyUsage digitalSignature or EKU codeSigning.

    model-signing accepts either. modelyard also refuses a leaf whose KeyUsage
    is present without digitalSignature, or whose EKU is present without
    codeSigning: such a certificate was issued for something else.
    """
    subject = leaf.subject.rfc4514_string()
    try:
        usage: x509.KeyUsage | None = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    try:
        eku: x509.ExtendedKeyUsage | None = leaf.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage
        ).value
    except x509.ExtensionNotFound:
        eku = None
    if usage is None and eku is None:
        raise SignatureError(
            f"the signing certificate ({subject}) has neither KeyUsage nor ExtendedKeyUsage: "
            "nothing says it may sign"
        )
    if usage is not None and not usage.digital_signature:
        raise SignatureError(
            f"the signing certificate ({subject}) has KeyUsage without digitalSignature"
        )
    if eku is not None and ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        raise SignatureError(
            f"the signing certificate ({subject}) has ExtendedKeyUsage without codeSigning"
        )


def identities(leaf: x509.Certificate) -> tuple[str, ...]:
    """The leaf's subject alternative names (email, URI, DNS), as strings."""
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    names: list[str] = []
    for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
        names.extend(str(n) for n in san.get_values_for_type(kind))
    return tuple(names)


def _pem_data(value: str | bytes | os.PathLike[str], what: str) -> tuple[bytes, str]:
    """PEM bytes given inline or in a file, and how to name them in messages."""
    if isinstance(value, bytes):
        return value, what
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode("ascii", "replace"), what
    file = Path(value).expanduser()
    try:
        return file.read_bytes(), str(file)
    except OSError as exc:
        raise SignatureError(f"cannot read {what} {str(file)!r}: {exc.strerror or exc}") from None


def _type_name(key: PublicKeyTypes) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    return type(key).__name__
