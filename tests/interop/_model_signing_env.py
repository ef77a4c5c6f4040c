"""OpenSSF's real ``model-signing`` in a virtual environment of its own, and a throwaway PKI.

The environment is built once (pip, about half a minute) and cached outside
the checkout, keyed by the version, as ``conftest.py`` does for MLflow: under a
file lock, so parallel sessions build it once, with a ``.complete`` marker
written last, so a half-built one is built again. model_signing is never
importable from the test process, and modelyard never imports it.

model-signing 1.1.1 imports ``OpenSSL`` (its certificate verifier) without
declaring pyOpenSSL, which sigstore 4 no longer pulls in: the environment
installs it beside.

:func:`make_pki` makes a root CA and a signing certificate for a given key
with ``cryptography``: the leaf has KeyUsage digitalSignature and EKU
codeSigning, which model-signing demands one of (``sign_certificate.py``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

MODEL_SIGNING_VERSION = "1.1.1"
PACKAGES = [f"model-signing=={MODEL_SIGNING_VERSION}", "pyopenssl==26.4.0"]
CACHE = Path(os.environ.get("MODELYARD_INTEROP_CACHE", Path.home() / ".cache" / "modelyard"))


def model_signing_env() -> Path:
    """The cached environment's ``bin`` folder (built on first use); it holds ``model_signing``."""
    env = CACHE / f"model-signing-{MODEL_SIGNING_VERSION}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".model-signing-env.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _recorded(env) != PACKAGES:
            shutil.rmtree(env, ignore_errors=True)
            _build(env)
    return env / "bin"


def _build(env: Path) -> None:
    # Built in place (a venv records its own path); ".complete" marks a finished build.
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *PACKAGES], check=True)
    tmp = env / ".complete.tmp"
    tmp.write_text(json.dumps(PACKAGES))
    tmp.replace(env / ".complete")


def _recorded(env: Path) -> list[str] | None:
    try:
        found = json.loads((env / ".complete").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return [str(p) for p in found] if isinstance(found, list) else None


# -- a throwaway PKI -------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A root CA, and a signing certificate it issued."""

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    def root_pem(self) -> bytes:
        """The root certificate, PEM."""
        return self.root.public_bytes(serialization.Encoding.PEM)

    def leaf_pem(self) -> bytes:
        """The signing certificate, PEM."""
        return self.leaf.public_bytes(serialization.Encoding.PEM)


def make_pki(
    public_key: ec.EllipticCurvePublicKey,
    *,
    email: str = "signer@example.com",
    digital_signature: bool = True,
    code_signing: bool = True,
    valid_for: dt.timedelta = dt.timedelta(days=1),
) -> Pki:
    """A fresh root CA and a leaf for ``public_key``, valid from five minutes ago."""
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=5), now + valid_for
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name("modelyard test root")
    root = (
        _builder(root_name, root_name, root_key.public_key(), start, end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(sign=False, certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    builder = (
        _builder(_name("modelyard test signer"), root_name, public_key, start, end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
    )
    if digital_signature:
        builder = builder.add_extension(_key_usage(sign=True, certs=False), critical=True)
    else:  # issued for key agreement only
        builder = builder.add_extension(
            _key_usage(sign=False, certs=False, agreement=True), critical=True
        )
    if code_signing:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return Pki(root, root_key, builder.sign(root_key, hashes.SHA256()))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePublicKey,
    start: dt.datetime,
    end: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )


def _key_usage(*, sign: bool, certs: bool, agreement: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=certs,
        crl_sign=certs,
        encipher_only=False,
        decipher_only=False,
    )
