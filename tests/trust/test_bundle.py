"""model-signing v1.0 bundles in modelyard alone: real bundles of theirs, round trips of ours.

No model_signing here (tests/interop runs the real one). The ``_THEIR_*``
constants at the bottom are what ``model_signing sign key`` and ``model_signing
sign certificate`` 1.1.1 wrote over a three-file model (``a.txt``, ``empty``,
``sub/b.bin``), with a root CA valid until 2125; they are verified, then
tampered with, file by file and field by field.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import modelyard
from modelyard.cli import main
from modelyard.errors import IntegrityError, SignatureError, TamperedModel
from modelyard.trust.bundle import (
    PREDICATE_TYPE,
    export_bundle,
    read_bundle,
    verify_bundle,
)
from modelyard.trust.keys import SigningKey, create_key
from modelyard.trust.signing import sign_directory, verify_directory
from tests.interop._model_signing_env import make_pki
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("config_home")

# -- their bundles ------------------------------------------------------------------------


@pytest.fixture
def theirs(tmp_path: Path) -> Path:
    """The model the ``_THEIR_*`` bundles were made over, with both bundles beside it."""
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "a.txt").write_bytes(b"hello\n")
    (model / "empty").write_bytes(b"")
    (model / "sub" / "b.bin").write_bytes(b"xyz")
    _write_bundle(tmp_path / "key.sig", _THEIR_KEY_BUNDLE)
    _write_bundle(tmp_path / "cert.sig", _THEIR_CERT_BUNDLE)
    (tmp_path / "key.pub").write_text(_THEIR_PUBLIC_KEY)
    (tmp_path / "root.pem").write_text(_THEIR_ROOT)
    return model


def _write_bundle(file: Path, doc: dict[str, Any]) -> None:
    file.write_text(json.dumps(doc, indent=2))


def test_their_key_bundle_verifies(theirs: Path) -> None:
    found = verify_bundle(theirs, theirs.parent / "key.sig", public_key=theirs.parent / "key.pub")
    assert found.method == "key"
    assert found.algorithm == "p256"
    assert found.files == ("a.txt", "empty", "sub/b.bin")
    assert found.model_name == "model"
    # model-signing's subject digest: sha256 over the three raw file digests
    assert found.digest == "sha256:08e80118cb539ca09d4fe9e58eef35b601910fdee71389a300e2e9c2b46cd1bf"
    # the key as PEM text does the same as the file
    assert verify_bundle(theirs, theirs.parent / "key.sig", public_key=_THEIR_PUBLIC_KEY) == found
    bundle = read_bundle(theirs.parent / "key.sig")
    assert bundle.method == "key"
    assert bundle.key_hint is not None
    assert sorted(bundle.ignore_paths) == [".git", ".gitattributes", ".github", ".gitignore"]


def test_their_certificate_bundle_verifies(theirs: Path) -> None:
    found = verify_bundle(
        theirs,
        theirs.parent / "cert.sig",
        certificate_chain=theirs.parent / "root.pem",
        identity="signer@example.com",
    )
    assert found.method == "certificate"
    assert found.subject == "CN=fixture signer"
    assert found.identities == ("signer@example.com",)
    assert found.files == ("a.txt", "empty", "sub/b.bin")


def test_their_certificate_bundle_refused_for_the_wrong_identity_root_or_time(
    theirs: Path,
) -> None:
    cert = theirs.parent / "cert.sig"
    root = theirs.parent / "root.pem"
    with pytest.raises(SignatureError, match=r"not for 'mallory@example\.com'.*signer@example"):
        verify_bundle(theirs, cert, certificate_chain=root, identity="mallory@example.com")
    other = make_pki(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(SignatureError, match="does not chain up to the given root"):
        verify_bundle(theirs, cert, certificate_chain=other.root_pem())
    later = dt.datetime(2130, 1, 1, tzinfo=dt.timezone.utc)
    with pytest.raises(SignatureError, match="does not chain up"):
        verify_bundle(theirs, cert, certificate_chain=root, at=later)


def test_the_method_must_match_the_anchor(theirs: Path) -> None:
    with pytest.raises(SignatureError, match="signed with a certificate"):
        verify_bundle(theirs, theirs.parent / "cert.sig", public_key=_THEIR_PUBLIC_KEY)
    with pytest.raises(SignatureError, match="signed with a bare key"):
        verify_bundle(theirs, theirs.parent / "key.sig", certificate_chain=_THEIR_ROOT)
    with pytest.raises(SignatureError, match="exactly one of"):
        verify_bundle(theirs, theirs.parent / "key.sig")


def test_another_key_is_refused(theirs: Path) -> None:
    other = SigningKey.generate("p256").public_key
    with pytest.raises(SignatureError, match="made by another key"):
        verify_bundle(theirs, theirs.parent / "key.sig", public_key=other)
    # without the hint it is the signature itself that fails
    doc = copy.deepcopy(_THEIR_KEY_BUNDLE)
    doc["verificationMaterial"]["publicKey"] = {}
    _write_bundle(theirs.parent / "nohint.sig", doc)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_bundle(theirs, theirs.parent / "nohint.sig", public_key=other)
    assert verify_bundle(theirs, theirs.parent / "nohint.sig", public_key=_THEIR_PUBLIC_KEY)


def test_ed25519_keys_are_not_model_signing_keys(theirs: Path) -> None:
    ed = SigningKey.generate("ed25519").public_key
    with pytest.raises(SignatureError, match=r"Ed25519 keys are not supported by model-signing"):
        verify_bundle(theirs, theirs.parent / "key.sig", public_key=ed)


def _flip(model: Path) -> None:
    (model / "a.txt").write_bytes(b"hellp\n")  # one byte, same size


def _add(model: Path) -> None:
    (model / "model.pkl").write_bytes(b"\x80\x04N.")


def _add_empty(model: Path) -> None:
    (model / "sub" / "new").write_bytes(b"")


def _delete(model: Path) -> None:
    (model / "sub" / "b.bin").unlink()


def _rename(model: Path) -> None:
    (model / "a.txt").rename(model / "a2.txt")


def _git(model: Path) -> None:
    # model-signing ignores .git; modelyard does not: a loader would not either
    (model / ".gitattributes").write_text("*.bin filter=lfs\n")


def _symlink(model: Path) -> None:
    (model / "sub" / "b.bin").unlink()
    (model / "sub" / "b.bin").symlink_to(model / "a.txt")


def _hardlink(model: Path) -> None:
    os.link(model / "a.txt", model.parent / "elsewhere")


@pytest.mark.parametrize(
    ("tamper", "file", "problem"),
    [
        (_flip, "a.txt", "was changed after it was signed"),
        (_add, "model.pkl", "is not covered by the signature"),
        (_add_empty, "sub/new", "is not covered by the signature"),
        (_delete, "sub/b.bin", "is missing"),
        (_rename, "a.txt", "was renamed to 'a2.txt'"),
        (_git, ".gitattributes", "is not covered by the signature"),
        (_symlink, "sub/b.bin", "is a symbolic link"),
        (_hardlink, "a.txt", "is a hard link"),
    ],
)
@pytest.mark.parametrize("bundle", ["key.sig", "cert.sig"])
def test_tampering_with_their_model_names_the_file(
    theirs: Path, tamper: Callable[[Path], None], file: str, problem: str, bundle: str
) -> None:
    tamper(theirs)
    anchor: dict[str, Any] = (
        {"public_key": _THEIR_PUBLIC_KEY}
        if bundle == "key.sig"
        else {"certificate_chain": _THEIR_ROOT}
    )
    with pytest.raises(TamperedModel, match=problem) as caught:
        verify_bundle(theirs, theirs.parent / bundle, **anchor)
    assert caught.value.file == file


def _statement(doc: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))


def _with_statement(doc: dict[str, Any], statement: dict[str, Any]) -> None:
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def _drop_resource(doc: dict[str, Any]) -> None:
    # An attacker removes a file from the list and fixes the subject digest: the
    # signature no longer covers the payload.
    statement = _statement(doc)
    resources = statement["predicate"]["resources"][:-1]
    statement["predicate"]["resources"] = resources
    import hashlib

    h = hashlib.sha256()
    for r in resources:
        h.update(bytes.fromhex(r["digest"]))
    statement["subject"][0]["digest"]["sha256"] = h.hexdigest()
    _with_statement(doc, statement)


def _inconsistent(doc: dict[str, Any]) -> None:
    statement = _statement(doc)
    statement["predicate"]["resources"][0]["digest"] = "0" * 64
    _with_statement(doc, statement)


def _legacy(doc: dict[str, Any]) -> None:
    statement = _statement(doc)
    statement["predicateType"] = "https://model_signing/Digests/v0.1"
    _with_statement(doc, statement)


def _shards(doc: dict[str, Any]) -> None:
    statement = _statement(doc)
    statement["predicate"]["serialization"]["method"] = "shards"
    _with_statement(doc, statement)


def _blake(doc: dict[str, Any]) -> None:
    statement = _statement(doc)
    statement["predicate"]["serialization"]["hash_type"] = "blake2"
    _with_statement(doc, statement)


def _two_signatures(doc: dict[str, Any]) -> None:
    sigs = doc["dsseEnvelope"]["signatures"]
    sigs.append(dict(sigs[0]))


def _payload_type(doc: dict[str, Any]) -> None:
    doc["dsseEnvelope"]["payloadType"] = "application/json"


def _media_type(doc: dict[str, Any]) -> None:
    doc["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.2"


def _tlog(doc: dict[str, Any]) -> None:
    doc["verificationMaterial"]["tlogEntries"] = [{"logIndex": "1"}]


def _unknown_field(doc: dict[str, Any]) -> None:
    doc["messageSignature"] = {}


def _bad_sig(doc: dict[str, Any]) -> None:
    sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-1] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()


def _unsafe_name(doc: dict[str, Any]) -> None:
    statement = _statement(doc)
    statement["predicate"]["resources"][0]["name"] = "../a.txt"
    _with_statement(doc, statement)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_drop_resource, "signature does not verify"),
        (_inconsistent, "statement is inconsistent"),
        (_legacy, "legacy v0.2 format"),
        (_shards, "serialization method 'shards' is not supported"),
        (_blake, "hash_type 'blake2' is not supported"),
        (_two_signatures, "exactly one signature"),
        (_payload_type, "payloadType 'application/json'"),
        (_media_type, "mediaType"),
        (_tlog, "transparency-log entries"),
        (_unknown_field, "unknown field 'messageSignature'"),
        (_bad_sig, "signature does not verify"),
        (_unsafe_name, "not a canonical relative path"),
    ],
)
def test_an_altered_bundle_is_refused(
    theirs: Path, change: Callable[[dict[str, Any]], None], problem: str
) -> None:
    doc = copy.deepcopy(_THEIR_KEY_BUNDLE)
    change(doc)
    _write_bundle(theirs.parent / "altered.sig", doc)
    with pytest.raises(SignatureError, match=problem) as caught:
        verify_bundle(theirs, theirs.parent / "altered.sig", public_key=_THEIR_PUBLIC_KEY)
    assert not isinstance(caught.value, TamperedModel)


def test_duplicate_json_keys_are_refused(theirs: Path) -> None:
    text = json.dumps(_THEIR_KEY_BUNDLE)
    doubled = text.replace('"mediaType"', '"mediaType": "x", "mediaType"', 1)
    (theirs.parent / "dup.sig").write_text(doubled)
    with pytest.raises(SignatureError, match="duplicate JSON key 'mediaType'"):
        read_bundle(theirs.parent / "dup.sig")


def test_the_bundle_inside_the_model_is_exempt(theirs: Path) -> None:
    # model-signing writes model/model.sig by default when run in the model's folder
    (theirs.parent / "key.sig").rename(theirs / "model.sig")
    assert verify_bundle(theirs, theirs / "model.sig", public_key=_THEIR_PUBLIC_KEY)
    # ... but only the bundle given: another copy of it is a file like any other
    (theirs / "model.sig").rename(theirs.parent / "key.sig")
    (theirs / "model.sig").write_text("{}")
    with pytest.raises(TamperedModel, match=r"'model\.sig'.*not covered"):
        verify_bundle(theirs, theirs.parent / "key.sig", public_key=_THEIR_PUBLIC_KEY)


# -- our bundles --------------------------------------------------------------------------


@pytest.fixture
def ours(tmp_path: Path, iris_model: Any) -> Path:
    path = tmp_path / "m"
    modelyard.save_model(iris_model, path, sign=False)
    return path


def test_export_round_trip(ours: Path, tmp_path: Path) -> None:
    key = SigningKey.generate("p256", name="release")
    out = tmp_path / "m.sig"
    done = export_bundle(ours, key, out)
    assert done.method == "key"
    assert done.key_id == key.key_id
    assert "MANIFEST.sha256" in done.files
    assert "MLmodel" in done.files
    found = verify_bundle(ours, out, public_key=key.public_key)
    assert found.key_id == key.key_id
    assert found.files == done.files
    assert found.digest == done.digest
    assert read_bundle(out).ignore_paths == ("MANIFEST.sig",)
    statement = _statement(json.loads(out.read_text()))
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"][0]["name"] == "m"


def test_a_modelyard_signature_beside_the_export(ours: Path, tmp_path: Path) -> None:
    key = create_key("default", "p256")  # the own key: trusted without a trust file
    export_bundle(ours, key, tmp_path / "m.sig")
    # MANIFEST.sig is the bundle's one ignore path: signing with modelyard afterwards
    # (or a second signer's signature) keeps the bundle valid, and both verify
    sign_directory(ours, key)
    assert verify_bundle(ours, tmp_path / "m.sig", public_key=key.public_key)
    assert verify_directory(ours).key_id == key.key_id
    # in the model directory a bundle would be a file its content manifest does not list
    with pytest.raises(SignatureError, match="outside the model directory"):
        export_bundle(ours, key, ours / "model.sig")
    assert not (ours / "model.sig").exists()


@pytest.mark.parametrize(("tamper", "file"), [("flip", "MLmodel"), ("add", "model.pkl.bak")])
def test_tampering_with_our_export(ours: Path, tmp_path: Path, tamper: str, file: str) -> None:
    key = SigningKey.generate("p256")
    export_bundle(ours, key, tmp_path / "m.sig")
    target = ours / file
    if tamper == "flip":
        data = bytearray(target.read_bytes())
        data[0] ^= 0x20
        target.write_bytes(bytes(data))
    else:
        target.write_bytes(b"junk")
    with pytest.raises(TamperedModel) as caught:
        verify_bundle(ours, tmp_path / "m.sig", public_key=key.public_key)
    assert caught.value.file == file
    # nor does modelyard export what its own manifest does not vouch for
    with pytest.raises(IntegrityError, match=file):
        export_bundle(ours, key, tmp_path / "again.sig")


def test_ed25519_export_is_refused_by_name(ours: Path, tmp_path: Path) -> None:
    key = SigningKey.generate("ed25519", name="mine")
    with pytest.raises(SignatureError, match=r"'mine' \(ed25519\): Ed25519 keys are not supported"):
        export_bundle(ours, key, tmp_path / "m.sig")
    assert not (tmp_path / "m.sig").exists()


def test_export_needs_a_content_manifest(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "w.bin").write_bytes(b"1")
    with pytest.raises(SignatureError, match=r"has no MANIFEST\.sha256"):
        export_bundle(tmp_path / "plain", SigningKey.generate("p256"), tmp_path / "p.sig")


def _public(key: SigningKey) -> ec.EllipticCurvePublicKey:
    public = serialization.load_der_public_key(key.public_key.der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return public


def test_export_with_a_certificate(ours: Path, tmp_path: Path) -> None:
    key = SigningKey.generate("p256")
    pki = make_pki(_public(key))
    (tmp_path / "leaf.pem").write_bytes(pki.leaf_pem())
    done = export_bundle(ours, key, tmp_path / "m.sig", certificate_chain=tmp_path / "leaf.pem")
    assert done.method == "certificate"
    found = verify_bundle(ours, tmp_path / "m.sig", certificate_chain=pki.root_pem())
    assert found.subject == "CN=modelyard test signer"
    assert found.identities == ("signer@example.com",)
    # a certificate for another key is refused before anything is written
    stranger = make_pki(ec.generate_private_key(ec.SECP256R1()).public_key())
    with pytest.raises(SignatureError, match="is not for key"):
        export_bundle(ours, key, tmp_path / "x.sig", certificate_chain=[stranger.leaf])
    assert not (tmp_path / "x.sig").exists()


@pytest.mark.parametrize(
    ("usage", "problem"),
    [
        ({"digital_signature": False}, "KeyUsage without digitalSignature"),
        ({"digital_signature": False, "code_signing": False}, "KeyUsage without"),
    ],
)
def test_a_certificate_not_meant_for_signing_is_refused(
    ours: Path, tmp_path: Path, usage: dict[str, bool], problem: str
) -> None:
    key = SigningKey.generate("p256")
    pki = make_pki(_public(key), **usage)
    export_bundle(ours, key, tmp_path / "m.sig", certificate_chain=[pki.leaf])
    with pytest.raises(SignatureError, match=problem):
        verify_bundle(ours, tmp_path / "m.sig", certificate_chain=[pki.root])


# -- the command line ---------------------------------------------------------------------


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_export_and_verify(ours: Path, tmp_path: Path) -> None:
    key = create_key("release", "p256")
    out = tmp_path / "m.sig"
    made = _run("sign", str(ours), "--key", "release", "--bundle", str(out))
    assert made.exit_code == 0, made.output
    assert "model-signing bundle" in made.output
    assert key.key_id in made.output
    assert not (ours / "MANIFEST.sig").exists()  # only the bundle was written
    pub = tmp_path / "release.pub"
    pub.write_text(key.public_key.to_pem())
    ok = _run("verify", str(ours), "--bundle", str(out), "--public-key", str(pub))
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(f"verified {ours} against model-signing bundle")
    facts = json.loads(
        _run(
            "verify", str(ours), "--format", "model-signing", "--bundle", str(out),
            "--public-key", str(pub), "--json",
        ).output
    )  # fmt: skip
    assert facts["method"] == "key"
    assert facts["key_id"] == key.key_id
    assert "MLmodel" in facts["files"]
    (ours / "extra.py").write_text("import os\n")
    bad = _run("verify", str(ours), "--bundle", str(out), "--public-key", str(pub))
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == [
        f"Error: model file 'extra.py' in {str(ours)!r} is not covered by the signature "
        "(added after signing)"
    ]


def test_cli_certificate_method(ours: Path, tmp_path: Path) -> None:
    key = create_key("release", "p256")
    pki = make_pki(_public(key))
    (tmp_path / "leaf.pem").write_bytes(pki.leaf_pem())
    (tmp_path / "root.pem").write_bytes(pki.root_pem())
    out = tmp_path / "m.sig"
    made = _run(
        "sign", str(ours), "--key", "release", "--bundle", str(out),
        "--certificate-chain", str(tmp_path / "leaf.pem"),
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "and its certificate" in made.output
    verify = [
        "verify",
        str(ours),
        "--bundle",
        str(out),
        "--certificate-chain",
        str(tmp_path / "root.pem"),
    ]
    ok = _run(*verify, "--identity", "signer@example.com")
    assert ok.exit_code == 0, ok.output
    assert "certificate CN=modelyard test signer" in ok.output
    wrong = _run(*verify, "--identity", "mallory@example.com")
    assert wrong.exit_code == 1
    assert "is not for 'mallory@example.com'" in wrong.output


def test_cli_refusals(ours: Path, tmp_path: Path) -> None:
    # the default key is Ed25519: refused by name, nothing written
    refused = _run("sign", str(ours), "--bundle", str(tmp_path / "m.sig"))
    assert refused.exit_code == 1
    assert "Ed25519 keys are not supported by model-signing 1.1.1" in refused.output
    assert not (tmp_path / "m.sig").exists()
    usage = _run("sign", str(ours), "--format", "model-signing")
    assert usage.exit_code == 2
    assert "needs --bundle" in usage.output
    usage = _run("verify", str(ours), "--public-key", __file__)
    assert usage.exit_code == 2
    assert "for --format model-signing" in usage.output
    create_key("release", "p256")
    assert (
        _run("sign", str(ours), "--key", "release", "--bundle", str(tmp_path / "m.sig")).exit_code
        == 0
    )
    usage = _run("verify", str(ours), "--bundle", str(tmp_path / "m.sig"))
    assert usage.exit_code == 2
    assert "one of --public-key and --certificate-chain" in usage.output
    # the modelyard format is unchanged: unsigned is refused as before
    plain = _run("verify", str(ours))
    assert plain.exit_code == 1
    assert "is not signed" in plain.output


# -- what model_signing 1.1.1 wrote (see the module docstring) -----------------------------

_THEIR_PUBLIC_KEY = """\
-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEtZOyeqN0+XHOWRe5gjEb8jjqBnML
gXckncgaMt64CG2ZsyOYQ1mm3T66mEur0nMNpfC0JbbPyDsXNpjPGyCyyg==
-----END PUBLIC KEY-----
"""
_THEIR_ROOT = """\
-----BEGIN CERTIFICATE-----
MIIBdDCCARqgAwIBAgIUSAx8CIPnohx9xMRrLG9OSf1pR9wwCgYIKoZIzj0EAwIw
FzEVMBMGA1UEAwwMZml4dHVyZSByb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjUw
MTAxMDAwMDAwWjAXMRUwEwYDVQQDDAxmaXh0dXJlIHJvb3QwWTATBgcqhkjOPQIB
BggqhkjOPQMBBwNCAASw6uOCXNUuUv/i/9j43qjnmy1dGaB7BN3IhyWod2CdKCvC
xX/Vcv+TFnXKpiIz6YjWKQxhKoyQ02LLmvvweBfco0IwQDAPBgNVHRMBAf8EBTAD
AQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUG5ShkZIlqGGIVprYKzQJbzXA
HZQwCgYIKoZIzj0EAwIDSAAwRQIhAMapFwSJuC48uSuoJGimQx5D532nLyl8V6ZV
QLeTlVGMAiAUgKXkbrrrQoBoPSm1MQtqRLzsNbrMlfs6cuoX0ugZ+w==
-----END CERTIFICATE-----
"""
_THEIR_KEY_BUNDLE: dict[str, Any] = {
    "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
    "verificationMaterial": {
        "publicKey": {
            "hint": "20c0ed39ce4cdb9540d571b2fd2d79c239857b900863c3bcfcedb0c8b4097398",
        },
        "tlogEntries": [],
    },
    "dsseEnvelope": {
        "payload": (
            "ewogICJfdHlwZSI6ICJodHRwczovL2luLXRvdG8uaW8vU3RhdGVtZW50L3YxIiwKICAic3ViamVj"
            "dCI6IFsKICAgIHsKICAgICAgIm5hbWUiOiAibW9kZWwiLAogICAgICAiZGlnZXN0IjogewogICAg"
            "ICAgICJzaGEyNTYiOiAiMDhlODAxMThjYjUzOWNhMDlkNGZlOWU1OGVlZjM1YjYwMTkxMGZkZWU3"
            "MTM4OWEzMDBlMmU5YzJiNDZjZDFiZiIKICAgICAgfQogICAgfQogIF0sCiAgInByZWRpY2F0ZVR5"
            "cGUiOiAiaHR0cHM6Ly9tb2RlbF9zaWduaW5nL3NpZ25hdHVyZS92MS4wIiwKICAicHJlZGljYXRl"
            "IjogewogICAgInJlc291cmNlcyI6IFsKICAgICAgewogICAgICAgICJuYW1lIjogImEudHh0IiwK"
            "ICAgICAgICAiZGlnZXN0IjogIjU4OTFiNWI1MjJkNWRmMDg2ZDBmZjBiMTEwZmJkOWQyMWJiNGZj"
            "NzE2M2FmMzRkMDgyODZhMmU4NDZmNmJlMDMiLAogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2"
            "IgogICAgICB9LAogICAgICB7CiAgICAgICAgIm5hbWUiOiAiZW1wdHkiLAogICAgICAgICJkaWdl"
            "c3QiOiAiZTNiMGM0NDI5OGZjMWMxNDlhZmJmNGM4OTk2ZmI5MjQyN2FlNDFlNDY0OWI5MzRjYTQ5"
            "NTk5MWI3ODUyYjg1NSIsCiAgICAgICAgImFsZ29yaXRobSI6ICJzaGEyNTYiCiAgICAgIH0sCiAg"
            "ICAgIHsKICAgICAgICAibmFtZSI6ICJzdWIvYi5iaW4iLAogICAgICAgICJkaWdlc3QiOiAiMzYw"
            "OGJjYTFlNDRlYTZjNGQyNjhlYjZkYjAyMjYwMjY5ODkyYzBiNDJiODZiYmYxZTc3YTZmYTE2YzNj"
            "OTI4MiIsCiAgICAgICAgImFsZ29yaXRobSI6ICJzaGEyNTYiCiAgICAgIH0KICAgIF0sCiAgICAi"
            "c2VyaWFsaXphdGlvbiI6IHsKICAgICAgImlnbm9yZV9wYXRocyI6IFsKICAgICAgICAiLmdpdGln"
            "bm9yZSIsCiAgICAgICAgIi5naXQiLAogICAgICAgICIuZ2l0YXR0cmlidXRlcyIsCiAgICAgICAg"
            "Ii5naXRodWIiCiAgICAgIF0sCiAgICAgICJoYXNoX3R5cGUiOiAic2hhMjU2IiwKICAgICAgIm1l"
            "dGhvZCI6ICJmaWxlcyIsCiAgICAgICJhbGxvd19zeW1saW5rcyI6IGZhbHNlCiAgICB9CiAgfQp9"
        ),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [
            {
                "sig": (
                    "MEQCIHX5MroYI9KEv0f3v6mg5my+MI9e+VOz59pE7ystPCRZAiAWXyrjUI3woEXc2sW69Lj1Zvn6"
                    "R+gg0djXmDuQ7/15UA=="
                ),
                "keyid": "",
            },
        ],
    },
}
_THEIR_CERT_BUNDLE: dict[str, Any] = {
    "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
    "verificationMaterial": {
        "x509CertificateChain": {
            "certificates": [
                {
                    "rawBytes": (
                        "MIIBqTCCAU+gAwIBAgIUHvJzux58f94GTenNTnAUyHIfF1YwCgYIKoZIzj0EAwIwFzEVMBMGA1UE"
                        "AwwMZml4dHVyZSByb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjUwMTAxMDAwMDAwWjAZMRcwFQYD"
                        "VQQDDA5maXh0dXJlIHNpZ25lcjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABLWTsnqjdPlxzlkX"
                        "uYIxG/I46gZzC4F3JJ3IGjLeuAhtmbMjmENZpt0+uphLq9JzDaXwtCW2z8g7FzaYzxsgssqjdTBz"
                        "MAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMDMB0GA1Ud"
                        "EQQWMBSBEnNpZ25lckBleGFtcGxlLmNvbTAfBgNVHSMEGDAWgBQblKGRkiWoYYhWmtgrNAlvNcAd"
                        "lDAKBggqhkjOPQQDAgNIADBFAiEA9afj1QAZu9YYjc4d52lUMFo8gRaK1A/CV7x1IzI6D3wCID+o"
                        "/nWLoWbPxq2Rdrmg+qUSxcbQDPiDOkfrLq3Wt9LS"
                    ),
                },
                {
                    "rawBytes": (
                        "MIIBdDCCARqgAwIBAgIUSAx8CIPnohx9xMRrLG9OSf1pR9wwCgYIKoZIzj0EAwIwFzEVMBMGA1UE"
                        "AwwMZml4dHVyZSByb290MCAXDTI1MDEwMTAwMDAwMFoYDzIxMjUwMTAxMDAwMDAwWjAXMRUwEwYD"
                        "VQQDDAxmaXh0dXJlIHJvb3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAASw6uOCXNUuUv/i/9j4"
                        "3qjnmy1dGaB7BN3IhyWod2CdKCvCxX/Vcv+TFnXKpiIz6YjWKQxhKoyQ02LLmvvweBfco0IwQDAP"
                        "BgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUG5ShkZIlqGGIVprYKzQJ"
                        "bzXAHZQwCgYIKoZIzj0EAwIDSAAwRQIhAMapFwSJuC48uSuoJGimQx5D532nLyl8V6ZVQLeTlVGM"
                        "AiAUgKXkbrrrQoBoPSm1MQtqRLzsNbrMlfs6cuoX0ugZ+w=="
                    ),
                },
            ],
        },
        "tlogEntries": [],
    },
    "dsseEnvelope": {
        "payload": (
            "ewogICJfdHlwZSI6ICJodHRwczovL2luLXRvdG8uaW8vU3RhdGVtZW50L3YxIiwKICAic3ViamVj"
            "dCI6IFsKICAgIHsKICAgICAgIm5hbWUiOiAibW9kZWwiLAogICAgICAiZGlnZXN0IjogewogICAg"
            "ICAgICJzaGEyNTYiOiAiMDhlODAxMThjYjUzOWNhMDlkNGZlOWU1OGVlZjM1YjYwMTkxMGZkZWU3"
            "MTM4OWEzMDBlMmU5YzJiNDZjZDFiZiIKICAgICAgfQogICAgfQogIF0sCiAgInByZWRpY2F0ZVR5"
            "cGUiOiAiaHR0cHM6Ly9tb2RlbF9zaWduaW5nL3NpZ25hdHVyZS92MS4wIiwKICAicHJlZGljYXRl"
            "IjogewogICAgInNlcmlhbGl6YXRpb24iOiB7CiAgICAgICJtZXRob2QiOiAiZmlsZXMiLAogICAg"
            "ICAiaWdub3JlX3BhdGhzIjogWwogICAgICAgICIuZ2l0aHViIiwKICAgICAgICAiLmdpdGlnbm9y"
            "ZSIsCiAgICAgICAgIi5naXQiLAogICAgICAgICIuZ2l0YXR0cmlidXRlcyIKICAgICAgXSwKICAg"
            "ICAgImhhc2hfdHlwZSI6ICJzaGEyNTYiLAogICAgICAiYWxsb3dfc3ltbGlua3MiOiBmYWxzZQog"
            "ICAgfSwKICAgICJyZXNvdXJjZXMiOiBbCiAgICAgIHsKICAgICAgICAiYWxnb3JpdGhtIjogInNo"
            "YTI1NiIsCiAgICAgICAgIm5hbWUiOiAiYS50eHQiLAogICAgICAgICJkaWdlc3QiOiAiNTg5MWI1"
            "YjUyMmQ1ZGYwODZkMGZmMGIxMTBmYmQ5ZDIxYmI0ZmM3MTYzYWYzNGQwODI4NmEyZTg0NmY2YmUw"
            "MyIKICAgICAgfSwKICAgICAgewogICAgICAgICJhbGdvcml0aG0iOiAic2hhMjU2IiwKICAgICAg"
            "ICAibmFtZSI6ICJlbXB0eSIsCiAgICAgICAgImRpZ2VzdCI6ICJlM2IwYzQ0Mjk4ZmMxYzE0OWFm"
            "YmY0Yzg5OTZmYjkyNDI3YWU0MWU0NjQ5YjkzNGNhNDk1OTkxYjc4NTJiODU1IgogICAgICB9LAog"
            "ICAgICB7CiAgICAgICAgImFsZ29yaXRobSI6ICJzaGEyNTYiLAogICAgICAgICJuYW1lIjogInN1"
            "Yi9iLmJpbiIsCiAgICAgICAgImRpZ2VzdCI6ICIzNjA4YmNhMWU0NGVhNmM0ZDI2OGViNmRiMDIy"
            "NjAyNjk4OTJjMGI0MmI4NmJiZjFlNzdhNmZhMTZjM2M5MjgyIgogICAgICB9CiAgICBdCiAgfQp9"
        ),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [
            {
                "sig": (
                    "MEQCIDhDRJ84AKjTJWbClnMzVPFtlVKDzLz0HFKCXWpQEkFDAiBjCNTEh/JaFBfQolkEgU42wT9P"
                    "oTz1TIfpslu4UJQo9g=="
                ),
                "keyid": "",
            },
        ],
    },
}
