"""Signing model directories, and every way a signed model can be tampered with.

Real model directories (saved by save_model), real keys, real files. An attacker who
changes a file usually also rewrites MANIFEST.sha256 (else the content check refuses
the load before any signature is read): ``_as_attacker`` does that, and the signature
check must still name the file.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import struct
import unicodedata
from pathlib import Path
from typing import Any

import pytest

import modelyard
from modelyard.errors import (
    IntegrityError,
    SaveError,
    SignatureError,
    SignatureRequired,
    TamperedModel,
    UntrustedKey,
)
from modelyard.format.content import MANIFEST_FILE, ContentManifest
from modelyard.trust.dsse import Envelope, EnvelopeSignature
from modelyard.trust.keys import (
    Algorithm,
    SigningKey,
    TrustStore,
    create_key,
    default_key,
    revoke_key,
    trust_key,
)
from modelyard.trust.signing import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    SIGNATURE_FILE,
    check_signature,
    read_signature_file,
    sign_directory,
    sign_manifest,
    verify_directory,
    verify_envelope,
)
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("config_home")


@pytest.fixture
def model(tmp_path: Path, iris_model: Any) -> Path:
    """An iris model in the safe skops format, signed by the user's default key."""
    path = tmp_path / "model"
    modelyard.save_model(iris_model, path, serialization_format="skops")
    assert (path / "model.skops").is_file()
    return path


def _digest(path: Path) -> str:
    manifest = ContentManifest.read(path)
    assert manifest is not None
    return manifest.digest


def _as_attacker(path: Path) -> str:
    """Rewrite MANIFEST.sha256 to match the files now there; the new digest."""
    manifest = ContentManifest.build(path)
    manifest.write(path)
    return manifest.digest


def _check(path: Path, **kw: Any) -> Any:
    return check_signature(path, _digest(path), **kw)


def _check_only(path: Path, envelope: Envelope) -> Any:
    """The check with ``envelope`` as the model's only signature."""
    (path / SIGNATURE_FILE).unlink(missing_ok=True)
    return _check(path, envelopes=[envelope])


def _own_id() -> str:
    key = default_key(create=False)
    assert key is not None
    return key.key_id


# -- what save_model writes ------------------------------------------------------------


def test_save_model_signs_with_the_default_key(model: Path) -> None:
    status = _check(model)
    assert status.state == "verified"
    assert status.key_id == _own_id()
    assert status.label == "default (own key)"
    # The signature is not one of the model's files: the digest is the files' alone.
    manifest = ContentManifest.build(model)
    assert SIGNATURE_FILE not in {e.path for e in manifest.entries}
    assert manifest == ContentManifest.read(model)
    manifest.verify(model)


def test_save_model_reports_the_signer_and_sign_false_does_not_sign(
    tmp_path: Path, iris_model: Any
) -> None:
    signed = modelyard.save_model(iris_model, tmp_path / "a")
    unsigned = modelyard.save_model(iris_model, tmp_path / "b", sign=False)
    assert signed.signed_by == _own_id()
    assert unsigned.signed_by is None
    assert not (tmp_path / "b" / SIGNATURE_FILE).exists()
    assert _check(tmp_path / "b").state == "unsigned"


@pytest.mark.parametrize("algorithm", ["ed25519", "p256"])
def test_save_model_signs_with_a_named_key_or_a_path(
    tmp_path: Path, iris_model: Any, algorithm: Algorithm
) -> None:
    key = create_key("release", algorithm)
    by_name = modelyard.save_model(iris_model, tmp_path / "a", sign="release")
    by_path = modelyard.save_model(iris_model, tmp_path / "b", sign=str(key.path))
    assert by_name.signed_by == by_path.signed_by == key.key_id
    # Not trusted yet: signed, but by a key this user does not know.
    assert _check(tmp_path / "a").state == "untrusted"
    trust_key(key.public_key, "release team")
    status = _check(tmp_path / "a")
    assert (status.state, status.key_id, status.label) == ("verified", key.key_id, "release team")


def test_sign_true_fails_the_save_when_it_cannot_sign(
    tmp_path: Path, iris_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_key("default", password="pw")  # encrypted, and no password given below
    with pytest.raises(SaveError, match=r"cannot sign.*MODELYARD_KEY_PASSWORD"):
        modelyard.save_model(iris_model, tmp_path / "m", sign=True)
    with pytest.raises(SaveError, match="no signing key 'missing'"):
        modelyard.save_model(iris_model, tmp_path / "m", sign="missing")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]
    monkeypatch.setenv("MODELYARD_KEY_PASSWORD", "pw")
    assert modelyard.save_model(iris_model, tmp_path / "m", sign=True).signed_by is not None


def test_by_default_a_missing_key_saves_unsigned_with_a_warning(
    tmp_path: Path, iris_model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    create_key("default", password="pw")
    with caplog.at_level(logging.WARNING, logger="modelyard"):
        info = modelyard.save_model(iris_model, tmp_path / "m")
    assert info.signed_by is None
    assert not (tmp_path / "m" / SIGNATURE_FILE).exists()
    assert "unsigned" in caplog.text


def test_the_signature_is_written_before_the_model_appears(
    tmp_path: Path, iris_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.trust import signing

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(signing, "write_signature_file", broken)
    with pytest.raises(SaveError, match="disk full"):
        modelyard.save_model(iris_model, tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_log_model_takes_sign(yard: Any, iris_model: Any) -> None:
    with pytest.raises(SaveError, match="no signing key 'nope'"):
        modelyard.log_model(iris_model, "model", sign="nope")
    logged = modelyard.log_model(iris_model, "model", sign=False)
    assert logged.digest.startswith("sha256:")


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ed25519", "p256"])
def test_sign_and_verify_a_directory(tmp_path: Path, iris_model: Any, algorithm: Algorithm) -> None:
    path = tmp_path / "m"
    modelyard.save_model(iris_model, path, sign=False)
    key = create_key("k", algorithm)
    trust_key(key.public_key, "k")
    envelope = sign_directory(path, key, name="fraud")
    assert read_signature_file(path) == envelope
    verified = verify_directory(path)
    assert verified.key_id == key.key_id
    assert verified.algorithm == algorithm
    assert verified.digest == _digest(path)
    assert verified.name == "fraud"
    assert verified.created_at.endswith("Z")
    statement = json.loads(envelope.payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    assert statement["subject"] == [
        {"name": "fraud", "digest": {"sha256": _digest(path).removeprefix("sha256:")}}
    ]
    assert {e["path"] for e in statement["predicate"]["manifest"]} == {
        e.path for e in ContentManifest.build(path).entries
    }
    assert statement["predicate"]["name"] == "fraud"


def test_signing_twice_with_one_key_replaces_and_a_second_key_adds(model: Path) -> None:
    own = default_key(create=False)
    assert own is not None
    first = read_signature_file(model)
    assert first is not None
    assert len(first.signatures) == 1
    again = sign_directory(model, own)
    assert [s.keyid for s in again.signatures] == [own.key_id]
    other = create_key("other", "p256")
    both = sign_directory(model, other)
    assert [s.keyid for s in both.signatures] == [own.key_id, other.key_id]
    assert both.payload == first.payload  # one statement, signed by two keys
    trust_key(other.public_key, "other")
    verified = verify_envelope(both, ContentManifest.build(model), TrustStore.load())
    assert set(verified.key_ids) == {own.key_id, other.key_id}


def test_signing_a_changed_model_starts_a_new_envelope(model: Path) -> None:
    other = create_key("other")
    sign_directory(model, other)
    (model / "notes.txt").write_text("added")
    _as_attacker(model)
    own = default_key(create=False)
    assert own is not None
    fresh = sign_directory(model, own)
    assert [s.keyid for s in fresh.signatures] == [own.key_id]
    assert _check(model).state == "verified"


def test_sign_directory_checks_the_files_first(model: Path) -> None:
    key = create_key("k")
    (model / "model.skops").write_bytes(b"changed")
    with pytest.raises(IntegrityError, match=r"model\.skops"):
        sign_directory(model, key)
    (model / MANIFEST_FILE).unlink()
    with pytest.raises(SignatureError, match=r"has no MANIFEST\.sha256"):
        sign_directory(model, key)


def test_signatures_passed_in_count_like_the_file(model: Path) -> None:
    envelope = read_signature_file(model)
    assert envelope is not None
    (model / SIGNATURE_FILE).unlink()
    assert _check(model).state == "unsigned"
    assert _check(model, envelopes=[envelope]).state == "verified"


# -- the tamper set --------------------------------------------------------------------------


def _flip_one_byte(file: Path) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))


def test_a_flipped_byte_at_the_same_size(model: Path) -> None:
    size = (model / "model.skops").stat().st_size
    _flip_one_byte(model / "model.skops")
    assert (model / "model.skops").stat().st_size == size
    # verify_directory hashes again: it needs no rewritten manifest to see it.
    with pytest.raises(TamperedModel) as info:
        verify_directory(model)
    assert info.value.file == "model.skops"
    assert "changed" in info.value.problem
    digest = _as_attacker(model)
    with pytest.raises(TamperedModel) as info:
        check_signature(model, digest)
    assert info.value.file == "model.skops"


def test_an_added_pickle_next_to_the_skops_file(model: Path) -> None:
    (model / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(TamperedModel) as info:
        _check(model)  # MANIFEST.sha256 not rewritten: the file is not even listed
    assert info.value.file == "model.pkl"
    digest = _as_attacker(model)
    with pytest.raises(TamperedModel) as info:
        check_signature(model, digest)
    assert info.value.file == "model.pkl"
    assert "not covered by the signature" in str(info.value)


def test_an_added_empty_file(model: Path) -> None:
    (model / "code").mkdir()
    (model / "code" / "__init__.py").write_bytes(b"")
    digest = _as_attacker(model)
    with pytest.raises(TamperedModel) as info:
        check_signature(model, digest)
    assert info.value.file == "code/__init__.py"


def test_a_deleted_file(model: Path) -> None:
    (model / "conda.yaml").unlink()
    with pytest.raises(TamperedModel, match=r"conda\.yaml") as info:
        _check(model)
    digest = _as_attacker(model)
    with pytest.raises(TamperedModel) as info:
        check_signature(model, digest)
    assert info.value.file == "conda.yaml"
    assert "missing" in info.value.problem


def test_a_renamed_file(model: Path) -> None:
    (model / "model.skops").rename(model / "model.pkl")
    digest = _as_attacker(model)
    with pytest.raises(TamperedModel) as info:
        check_signature(model, digest)
    assert info.value.file == "model.skops"
    assert "renamed to 'model.pkl'" in info.value.problem


def test_renaming_the_single_file_of_a_one_file_model(tmp_path: Path) -> None:
    # model-signing's subject digest hashes the file digests without their names: there a
    # rename keeps the digest. Here the digest covers names.
    path = tmp_path / "one"
    path.mkdir()
    (path / "model.skops").write_bytes(b"weights")
    before = _as_attacker(path)
    key = create_key("k")
    trust_key(key.public_key, "k")
    sign_directory(path, key)
    assert check_signature(path, before).state == "verified"
    (path / "model.skops").rename(path / "model.pkl")
    after = _as_attacker(path)
    assert after != before
    with pytest.raises(TamperedModel) as info:
        check_signature(path, after)
    assert info.value.file == "model.skops"
    assert "renamed" in info.value.problem


def test_a_symlink_is_refused(model: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.skops"
    shutil.move(model / "model.skops", outside)
    os.symlink(outside, model / "model.skops")  # same content, same manifest line
    with pytest.raises(TamperedModel) as info:
        _check(model)
    assert info.value.file == "model.skops"
    assert "symbolic link" in info.value.problem
    with pytest.raises(TamperedModel, match="symbolic link"):
        verify_directory(model)


def test_a_symlinked_folder_is_refused(model: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", model / "code")
    with pytest.raises(TamperedModel) as info:
        _check(model)
    assert info.value.file == "code"


def test_a_hard_link_is_refused(model: Path, tmp_path: Path) -> None:
    os.link(model / "model.skops", tmp_path / "second-name")
    with pytest.raises(TamperedModel) as info:
        _check(model)
    assert info.value.file == "model.skops"
    assert "hard link" in info.value.problem


def test_a_fifo_is_refused_without_being_opened(model: Path) -> None:
    os.mkfifo(model / "pipe")
    with pytest.raises(TamperedModel) as info:
        verify_directory(model)  # would block forever if it opened the FIFO
    assert info.value.file == "pipe"
    assert "FIFO" in info.value.problem


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (unicodedata.normalize("NFC", "café.json"), unicodedata.normalize("NFD", "café.json")),
        ("Model.skops", "model.skops"),
    ],
)
def test_twin_paths_are_refused(model: Path, first: str, second: str) -> None:
    assert first != second
    for name in (first, second):
        if not (model / name).exists():
            (model / name).write_bytes(b"{}")
    if len({p.name for p in model.iterdir()} & {first, second}) < 2:
        pytest.skip("this file system folds the two names into one")
    digest = _as_attacker(model)
    with pytest.raises(TamperedModel) as info:
        check_signature(model, digest)
    assert info.value.file in (first, second)
    assert {first, second} - {info.value.file} <= {
        n for n in (first, second) if n in str(info.value)
    }
    assert "one name after Unicode normalisation or case folding" in info.value.problem


def test_a_signature_copied_from_another_model(tmp_path: Path, iris_model: Any) -> None:
    modelyard.save_model(iris_model, tmp_path / "a", serialization_format="skops")
    modelyard.save_model(iris_model, tmp_path / "b", serialization_format="skops")
    shutil.copy(tmp_path / "a" / SIGNATURE_FILE, tmp_path / "b" / SIGNATURE_FILE)
    with pytest.raises(TamperedModel) as info:
        _check(tmp_path / "b")
    assert info.value.file == "MLmodel"  # its model_uuid and time differ; the weights do not


def test_a_digest_other_than_the_manifest_s(model: Path) -> None:
    with pytest.raises(TamperedModel) as info:
        check_signature(model, "sha256:" + "0" * 64)
    assert info.value.file == MANIFEST_FILE


# -- keys ------------------------------------------------------------------------------------


def test_a_revoked_key_raises_under_auto(model: Path) -> None:
    revoke_key(_own_id())
    with pytest.raises(UntrustedKey) as info:
        _check(model)
    assert info.value.key_id == _own_id()
    assert "revoked" in str(info.value)


def test_an_unknown_key_is_untrusted_under_auto_and_refused_when_required(
    tmp_path: Path, iris_model: Any
) -> None:
    stranger = SigningKey.generate()
    modelyard.save_model(iris_model, tmp_path / "m", sign=stranger)
    status = _check(tmp_path / "m")
    assert status.state == "untrusted"
    assert status.key_id == stranger.key_id
    assert stranger.key_id in status.reason
    with pytest.raises(UntrustedKey) as info:
        _check(tmp_path / "m", verify="required")
    assert info.value.key_id == stranger.key_id
    assert "not in the trust store" in str(info.value)


def test_an_unknown_key_does_not_hide_tampering(tmp_path: Path, iris_model: Any) -> None:
    modelyard.save_model(iris_model, tmp_path / "m", sign=SigningKey.generate())
    (tmp_path / "m" / "extra.txt").write_text("x")
    digest = _as_attacker(tmp_path / "m")
    with pytest.raises(TamperedModel, match=r"extra\.txt"):
        check_signature(tmp_path / "m", digest)


def _resign(envelope: Envelope, key: SigningKey, *, keyid: str | None = None) -> Envelope:
    sig = EnvelopeSignature(keyid or key.key_id, key.sign(envelope.signed_bytes()))
    return Envelope(envelope.payload, envelope.payload_type, (sig,))


def test_wrong_key_signature_bytes(model: Path) -> None:
    envelope = read_signature_file(model)
    assert envelope is not None
    forged = _resign(envelope, SigningKey.generate(), keyid=_own_id())
    with pytest.raises(SignatureError, match="does not verify") as info:
        _check_only(model, forged)
    assert not isinstance(info.value, (TamperedModel, UntrustedKey))
    (model / SIGNATURE_FILE).write_text(forged.to_json())
    with pytest.raises(SignatureError, match="does not verify"):
        _check(model)


def test_duplicate_key_ids_count_once(model: Path) -> None:
    envelope = read_signature_file(model)
    assert envelope is not None
    twice = Envelope(envelope.payload, envelope.payload_type, envelope.signatures * 2)
    manifest = ContentManifest.build(model)
    one = TrustStore.load()
    two = TrustStore(one.keys, one.revoked, threshold=2)
    assert verify_envelope(twice, manifest, one).key_ids == (_own_id(),)
    with pytest.raises(SignatureError, match="1 distinct trusted key"):
        verify_envelope(twice, manifest, two)
    other = create_key("other")
    trust_key(other.public_key, "other")
    both = envelope.with_signature(
        EnvelopeSignature(other.key_id, other.sign(envelope.signed_bytes()))
    )
    assert (
        len(verify_envelope(both, manifest, TrustStore.merge(TrustStore.load(), two)).key_ids) == 2
    )


# -- formats ---------------------------------------------------------------------------------


def _statement(model: Path) -> dict[str, Any]:
    envelope = read_signature_file(model)
    assert envelope is not None
    return dict(json.loads(envelope.payload))


def _signed(statement: dict[str, Any], payload_type: str = PAYLOAD_TYPE) -> Envelope:
    own = default_key(create=False)
    assert own is not None
    envelope = Envelope(json.dumps(statement).encode(), payload_type)
    return _resign(envelope, own)


@pytest.mark.parametrize(
    ("change", "names"),
    [
        ({"_type": "https://in-toto.io/Statement/v0.1"}, "_type"),
        ({"predicateType": "https://model_signing/signature/v1.0"}, "predicateType"),
        ({"predicateType": "https://model_signing/Digests/v0.1"}, "predicateType"),
        ({"subject": []}, "exactly one subject"),
        ({"extra": 1}, "unknown field 'extra'"),
        ({"subject": [{"name": "model", "digest": {"sha256": "0" * 64}}]}, "inconsistent"),
        ({"subject": [{"name": "other", "digest": {"sha256": "0" * 64}}]}, "does not match"),
    ],
)
def test_only_one_statement_form_is_accepted(
    model: Path, change: dict[str, Any], names: str
) -> None:
    statement = {**_statement(model), **change}
    with pytest.raises(SignatureError, match=names):
        _check_only(model, _signed(statement))


def test_the_predicate_is_read_strictly(model: Path) -> None:
    statement = _statement(model)
    statement["predicate"]["manifest"][0]["mode"] = 0o644
    with pytest.raises(SignatureError, match=r"predicate.manifest\[0\] has unknown field 'mode'"):
        verify_envelope(_signed(statement), ContentManifest.build(model), TrustStore.load())
    statement = _statement(model)
    statement["predicate"]["manifest"][0]["path"] = "../escape"
    with pytest.raises(SignatureError, match="not a safe relative path"):
        verify_envelope(_signed(statement), ContentManifest.build(model), TrustStore.load())


def test_the_wrong_payload_type(model: Path) -> None:
    with pytest.raises(SignatureError, match="payloadType 'application/json'"):
        _check_only(model, _signed(_statement(model), "application/json"))


def _legacy_pae(payload_type: str, payload: bytes) -> bytes:
    # DSSE's pre-v1 encoding: little-endian 64-bit counts and lengths
    kind = payload_type.encode()
    return b"".join(
        [
            struct.pack("<Q", 2),
            struct.pack("<Q", len(kind)),
            kind,
            struct.pack("<Q", len(payload)),
            payload,
        ]
    )


def _str_pae(payload_type: str, payload: bytes) -> bytes:
    # the str/bytes mix-up model-signing still accepts as "pae_compat"
    return f"DSSEv1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()


@pytest.mark.parametrize("encoding", [_legacy_pae, _str_pae])
def test_a_second_pae_form_does_not_verify(model: Path, encoding: Any) -> None:
    envelope = read_signature_file(model)
    assert envelope is not None
    own = default_key(create=False)
    assert own is not None
    sig = own.sign(encoding(envelope.payload_type, envelope.payload))
    other = Envelope(envelope.payload, envelope.payload_type, (EnvelopeSignature(own.key_id, sig),))
    with pytest.raises(SignatureError, match="does not verify"):
        _check_only(model, other)


def test_a_malformed_signature_file_is_an_error_not_unsigned(model: Path) -> None:
    (model / SIGNATURE_FILE).write_text("{}")
    with pytest.raises(SignatureError, match="lacks field"):
        _check(model)
    payload = base64.b64encode(b"[]").decode()
    (model / SIGNATURE_FILE).write_text(
        json.dumps({"payload": payload, "payloadType": PAYLOAD_TYPE, "signatures": []})
    )
    with pytest.raises(SignatureError, match="statement must be a JSON object"):
        _check(model)


# -- modes and bytecode --------------------------------------------------------------------


def test_modes(tmp_path: Path, iris_model: Any, model: Path) -> None:
    modelyard.save_model(iris_model, tmp_path / "plain", sign=False)
    assert _check(tmp_path / "plain").state == "unsigned"
    with pytest.raises(SignatureRequired):
        _check(tmp_path / "plain", verify="required")
    assert _check(model, verify="required").state == "verified"
    (model / "model.skops").write_bytes(b"x")
    assert _check(model, verify="off").state == "off"  # nothing is read at all
    with pytest.raises(ValueError, match="verify must be one of"):
        _check(model, verify="strict")


def _with_code(tmp_path: Path, iris_model: Any) -> Path:
    src = tmp_path / "helpers.py"
    src.write_text("X = 1\n")
    path = tmp_path / "with-code"
    modelyard.save_model(iris_model, path, code_paths=[src])
    cache = path / "code" / "__pycache__"
    cache.mkdir()
    (cache / "helpers.cpython-311.pyc").write_bytes(b"not what the source says")
    return path


def test_unsigned_bytecode_is_removed_before_the_check(tmp_path: Path, iris_model: Any) -> None:
    path = _with_code(tmp_path, iris_model)
    assert _check(path).state == "verified"
    assert not (path / "code" / "__pycache__").exists()


def test_unsigned_bytecode_is_refused_when_it_may_not_be_removed(
    tmp_path: Path, iris_model: Any
) -> None:
    path = _with_code(tmp_path, iris_model)
    with pytest.raises(TamperedModel) as info:
        _check(path, remove_bytecode=False)
    assert info.value.file == "code/__pycache__/helpers.cpython-311.pyc"
    assert "bytecode" in info.value.problem
    assert (path / "code" / "__pycache__").exists()


def test_bytecode_is_refused_when_removing_it_fails(tmp_path: Path, iris_model: Any) -> None:
    path = _with_code(tmp_path, iris_model)
    cache = path / "code" / "__pycache__"
    os.chmod(cache, 0o500)
    try:
        if os.access(cache, os.W_OK):
            pytest.skip("running as a user whom permissions do not stop")
        with pytest.raises(TamperedModel, match="could not be removed"):
            _check(path)
    finally:
        os.chmod(cache, 0o700)


def test_sign_manifest_in_memory_round_trip() -> None:
    manifest = ContentManifest(())
    key = SigningKey.generate("p256")
    envelope = sign_manifest(manifest, key, name="fraud", signer="ci")
    store = TrustStore({key.key_id: _trusted(key)})
    verified = verify_envelope(envelope, manifest, store)
    assert (verified.name, verified.label) == ("fraud", "ci-key")
    assert json.loads(envelope.payload)["predicate"]["signer"] == "ci"


def _trusted(key: SigningKey) -> Any:
    from modelyard.trust.keys import TrustedKey

    return TrustedKey(key.public_key, "ci-key", "test")
