"""OpenSSF model-signing v1.0 bundles: verify theirs, export ours.

`model-signing <https://github.com/sigstore/model-transparency>`_ (PyPI
``model-signing``, 1.1.1 here) signs a model directory into one bundle file
(the layout: :mod:`modelyard.trust._bundle_format`). This module reads and
writes that format with ``cryptography`` alone; neither model_signing nor
sigstore is imported.

- :func:`verify_bundle` checks a bundle that ``model_signing sign key`` or
  ``model_signing sign certificate`` made (or :func:`export_bundle`) against a
  given public key or given root certificate(s).
- :func:`export_bundle` writes a bundle over a modelyard model directory that
  ``model_signing verify key`` (or ``verify certificate``) accepts.

model-signing 1.1.1 uses ECDSA keys on P-256, P-384 and P-521 only; modelyard
keys are Ed25519 or P-256, so only P-256 keys export (an Ed25519 key is
refused, by name). Verification takes all three curves.

What a verification checks, and where it is stricter than model-signing:

- the bundle's fields (one media type, payload type, statement type and
  predicate type; no legacy v0.2 predicate, no second PAE encoding, exactly one
  signature; unknown fields refused);
- the ECDSA signature over the DSSE PAE, with the given key (whose PEM hash
  must match the bundle's key hint, when it has one) or with the signing
  certificate, whose chain must reach a given root at ``at`` (now by default;
  model-signing checks at the certificate's own start, so never expiry) and
  which must be meant for signing; ``identity`` also requires a SAN;
- that the subject digest is the digest of the resources, and that the files
  on disk are exactly the resources by name and sha256. Only the bundle file
  itself is exempt, and modelyard's ``MANIFEST.sig`` when the bundle's signed
  ``ignore_paths`` lists it. Any other ignore path, ``.git`` included, does not
  exempt a file that is there: a loader would still read it. Links and
  special files are refused, as in every signed modelyard model.
"""

from __future__ import annotations

import datetime as _dt
import os
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelyard.errors import IntegrityError, SignatureError, TamperedModel
from modelyard.format.content import IGNORED_NAMES, MANIFEST_FILE, SIGNATURE_FILE, ContentManifest
from modelyard.trust import _bundle_x509 as _x509
from modelyard.trust._bundle_files import GIT_PATHS, first_difference, hash_file, sort_key, walk
from modelyard.trust._bundle_format import (
    BUNDLE_MEDIA_TYPE,
    PREDICATE_TYPE,
    BundleResource,
    ModelSigningBundle,
    bundle_json,
    pae_envelope,
    parse_bundle,
    statement_payload,
)
from modelyard.trust._bundle_x509 import CertificateSource, KeySource
from modelyard.trust.dsse import b64
from modelyard.trust.keys import SigningKey

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "PREDICATE_TYPE",
    "BundleExported",
    "BundleResource",
    "BundleVerified",
    "ModelSigningBundle",
    "export_bundle",
    "read_bundle",
    "verify_bundle",
]

# A bundle lists every file; a large model's is some MB. More is not a bundle.
_MAX_BUNDLE_BYTES = 64 << 20


@dataclass(frozen=True)
class BundleVerified:
    """A bundle that verified over exactly the files of ``path``.

    ``key_id`` is modelyard's id of the signing key (``sha256:`` + hex of its
    DER SubjectPublicKeyInfo); ``algorithm`` its curve (``p256``, ``p384``,
    ``p521``). For the certificate method ``subject`` is the signing
    certificate's subject and ``identities`` its subject alternative names.
    """

    path: str
    bundle: str
    method: Literal["key", "certificate"]
    algorithm: str
    key_id: str
    model_name: str
    #: ``sha256:`` + model-signing's subject digest over the file digests
    digest: str
    files: tuple[str, ...]
    subject: str | None = None
    identities: tuple[str, ...] = ()


@dataclass(frozen=True)
class BundleExported:
    """A bundle :func:`export_bundle` wrote: where, by which key, over which files."""

    path: str
    bundle: str
    method: Literal["key", "certificate"]
    algorithm: str
    key_id: str
    digest: str
    files: tuple[str, ...]


def read_bundle(bundle_path: str | os.PathLike[str]) -> ModelSigningBundle:
    """Parse the bundle file at ``bundle_path`` strictly; nothing is verified.

    Anything that is not a model-signing v1.0 bundle of the key or
    certificate method (file serialization, sha256) is a
    :class:`~modelyard.errors.SignatureError` naming the field.
    """
    file = Path(bundle_path)
    try:
        st = os.stat(file)
    except OSError as exc:
        raise SignatureError(
            f"cannot read bundle {str(file)!r}: {exc.strerror or exc}", path=file
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise SignatureError(f"bundle {str(file)!r} is not a regular file", path=file)
    if st.st_size > _MAX_BUNDLE_BYTES:
        raise SignatureError(f"bundle {str(file)!r} is {st.st_size} bytes: too large", path=file)
    return parse_bundle(file.read_bytes(), source=str(file))


def verify_bundle(
    path: str | os.PathLike[str],
    bundle_path: str | os.PathLike[str],
    *,
    public_key: KeySource | None = None,
    certificate_chain: CertificateSource | None = None,
    identity: str | None = None,
    at: _dt.datetime | None = None,
) -> BundleVerified:
    """Verify the model directory ``path`` against the model-signing bundle at ``bundle_path``.

    Give exactly one trust anchor: ``public_key`` (a modelyard
    :class:`~modelyard.trust.keys.PublicKey`, PEM text or bytes, or a PEM
    file) for the key method, or ``certificate_chain`` (certificates, PEM
    text or bytes, or a PEM file: the roots to trust, as model-signing's
    ``--certificate_chain``) for the certificate method. ``identity``
    requires that string among the signing certificate's SANs; ``at`` is
    when the chain must be valid (now by default).

    Raises :class:`~modelyard.errors.TamperedModel` naming the first file that
    was changed, added, removed or renamed, and
    :class:`~modelyard.errors.SignatureError` for anything else.
    """
    root = Path(path)
    if not root.is_dir():
        raise SignatureError(f"{str(root)!r} is not a model directory", path=root)
    if (public_key is None) == (certificate_chain is None):
        raise SignatureError("give exactly one of public_key and certificate_chain")
    bundle = read_bundle(bundle_path)
    where = bundle.source
    signed = pae_envelope(bundle.envelope.payload).signed_bytes()
    subject: str | None = None
    names: tuple[str, ...] = ()
    if public_key is not None:
        if bundle.method != "key":
            raise SignatureError(
                f"{where} was signed with a certificate: verify it with a certificate chain",
                path=root,
            )
        key = _x509.load_public_key(public_key)
        if bundle.key_hint is not None and bundle.key_hint != _x509.pem_hint(key):
            raise SignatureError(
                f"{where} was made by another key (hint {bundle.key_hint}), not by "
                f"{_x509.key_id(key)}",
                path=root,
            )
    else:
        assert certificate_chain is not None  # the check above
        if bundle.method != "certificate":
            raise SignatureError(
                f"{where} was signed with a bare key: verify it with a public key", path=root
            )
        key, subject, names = _check_certificates(bundle, certificate_chain, identity, at)
    if not _x509.verify_signature(key, bundle.signature, signed):
        raise SignatureError(
            f"{where}: the signature does not verify with {_x509.curve_name(key)} key "
            f"{_x509.key_id(key)} (the bundle was altered, or another key made it)",
            path=root,
        )
    _check_files(root, bundle, Path(bundle_path))
    return BundleVerified(
        path=str(root),
        bundle=where,
        method=bundle.method,
        algorithm=_x509.curve_name(key),
        key_id=_x509.key_id(key),
        model_name=bundle.model_name,
        digest="sha256:" + bundle.root_digest,
        files=tuple(r.name for r in bundle.resources),
        subject=subject,
        identities=names,
    )


def export_bundle(
    path: str | os.PathLike[str],
    key: SigningKey,
    out: str | os.PathLike[str],
    *,
    certificate_chain: CertificateSource | None = None,
) -> BundleExported:
    """Write a model-signing v1.0 bundle over the modelyard model at ``path`` to ``out``.

    The directory is first checked against its ``MANIFEST.sha256`` (an
    :class:`~modelyard.errors.IntegrityError` names a file that differs): the
    bundle covers exactly the files it lists, plus ``MANIFEST.sha256`` itself
    and MLflow's ``registered_model_meta`` if present. ``MANIFEST.sig`` is the
    bundle's one ignore path, so signing the model again with modelyard keeps
    the bundle valid. ``out`` must lie outside ``path``: the content manifest
    does not list it, so modelyard would refuse the model.
    ``__pycache__`` folders are removed, as ``modelyard sign`` removes them.

    ``key`` must be a P-256 key: model-signing 1.1.1 verifies no Ed25519
    signature, so such a key is a :class:`SignatureError` naming its type.
    With ``certificate_chain`` (the signing certificate for ``key`` first,
    then its intermediates) the bundle is of the certificate method.
    """
    public = _x509.ec_key(
        serialization.load_der_public_key(key.public_key.der),
        f"key {key.name or key.key_id!r} ({key.algorithm})",
    )
    root = Path(path)
    manifest = ContentManifest.read(root)
    if manifest is None:
        raise SignatureError(
            f"{str(root)!r} has no {MANIFEST_FILE}: only a model saved by modelyard can be "
            "exported",
            path=root,
        )
    target = Path(out)
    if _relative_inside(root, target) is not None:
        # The content manifest does not list it, so modelyard's own load (and `modelyard
        # sign`) would refuse the model as holding an unlisted file.
        raise SignatureError(
            f"write the bundle outside the model directory, not to {str(target)!r}: "
            f"{MANIFEST_FILE} does not list it, so modelyard would refuse the model",
            path=root,
        )
    exempt = frozenset({SIGNATURE_FILE})
    files = walk(root, exempt, remove_pycache=True)
    for rel in sorted(files):
        if rel.split("/", 1)[0] in GIT_PATHS:
            # model-signing's verifier leaves these out whatever the bundle says.
            raise SignatureError(
                f"{str(root)!r} holds {rel!r}: model-signing ignores git files, so a bundle "
                "cannot cover them; export a copy without them",
                path=root,
            )
    digests = {rel: hash_file(root, rel) for rel in files}
    _match_manifest(root, manifest, digests)
    resources = [BundleResource(rel, digests[rel]) for rel in sorted(digests, key=sort_key)]
    ignore = sorted(exempt)
    payload = statement_payload(root.resolve().name, resources, ignore)
    signature = key.sign(pae_envelope(payload).signed_bytes())
    material: dict[str, object]
    if certificate_chain is None:
        material = {"publicKey": {"hint": _x509.pem_hint(public)}}
    else:
        chain = _x509.load_certificates(certificate_chain, "certificate chain")
        if chain[0].public_key() != public:
            raise SignatureError(
                f"the first certificate of the chain ({chain[0].subject.rfc4514_string()}) "
                f"is not for key {key.key_id}"
            )
        raw = [c.public_bytes(serialization.Encoding.DER) for c in chain]
        material = {"x509CertificateChain": {"certificates": [{"rawBytes": b64(d)} for d in raw]}}
    _write(target, bundle_json(payload, signature, material))
    found = parse_bundle(target.read_bytes(), source=str(target))  # what we wrote reads back
    return BundleExported(
        path=str(root),
        bundle=str(target),
        method=found.method,
        algorithm=_x509.curve_name(public),
        key_id=key.key_id,
        digest="sha256:" + found.root_digest,
        files=tuple(r.name for r in resources),
    )


# -- internals --------------------------------------------------------------------------


def _check_certificates(
    bundle: ModelSigningBundle,
    roots: CertificateSource,
    identity: str | None,
    at: _dt.datetime | None,
) -> tuple[ec.EllipticCurvePublicKey, str, tuple[str, ...]]:
    leaf, *intermediates = bundle.certificates
    anchors = _x509.load_certificates(roots, "certificate chain")
    when = at or _dt.datetime.now(_dt.timezone.utc)
    _x509.verify_chain(leaf, intermediates, anchors, when)
    _x509.check_signing_usage(leaf)
    subject = leaf.subject.rfc4514_string()
    names = _x509.identities(leaf)
    if identity is not None and identity not in names:
        shown = ", ".join(names) or "none"
        raise SignatureError(
            f"{bundle.source}: the signing certificate ({subject}) is not for {identity!r} "
            f"(its identities: {shown})"
        )
    return _x509.ec_key(leaf.public_key(), f"the signing certificate ({subject})"), subject, names


def _check_files(root: Path, bundle: ModelSigningBundle, bundle_path: Path) -> None:
    """The files at ``root`` must be exactly the bundle's resources (module docstring)."""
    exempt = set()
    inside = _relative_inside(root, bundle_path)
    if inside:
        exempt.add(inside)
    if SIGNATURE_FILE in bundle.ignore_paths:
        exempt.add(SIGNATURE_FILE)
    found = walk(root, frozenset(exempt))
    actual = {rel: hash_file(root, rel) for rel in found}
    difference = first_difference({r.name: r.sha256 for r in bundle.resources}, actual)
    if difference is not None:
        raise TamperedModel(root, *difference)


def _match_manifest(root: Path, manifest: ContentManifest, digests: dict[str, str]) -> None:
    """The files found must be those the content manifest lists, with its digests;
    only the manifest and MLflow's ``registered_model_meta`` may be there besides."""
    listed = {e.path: e.sha256 for e in manifest.entries}
    for rel in sorted(digests):
        if rel not in listed and rel not in IGNORED_NAMES:
            raise IntegrityError(root, rel, "is not listed in the content manifest")
    for rel, sha in sorted(listed.items()):
        if rel not in digests:
            raise IntegrityError(root, rel, "is missing")
        if digests[rel] != sha:
            raise IntegrityError(root, rel, "was altered (sha256 differs from the manifest)")


def _relative_inside(root: Path, file: Path) -> str | None:
    """``file``'s POSIX path relative to ``root`` when it lies inside, else ``None``."""
    try:
        rel = file.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return rel.as_posix() if rel.parts else None


def _write(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically: a reader never sees half a bundle."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
