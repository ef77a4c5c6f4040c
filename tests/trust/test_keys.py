"""Key pairs on disk, key ids, passwords, the default key, and the trust store."""

from __future__ import annotations

import hashlib
import stat
import threading
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from modelyard.errors import SignatureError
from modelyard.trust.keys import (
    ALGORITHMS,
    Algorithm,
    PublicKey,
    SigningKey,
    TrustStore,
    create_key,
    default_key,
    keys_dir,
    list_local_keys,
    load_signing_key,
    revoke_key,
    trust_key,
)
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("config_home")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_create_key_writes_a_private_pem_0600_and_a_public_pem(algorithm: Algorithm) -> None:
    key = create_key("release", algorithm)
    private, public = keys_dir() / "release.key", keys_dir() / "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys_dir().stat().st_mode) == 0o700
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert key.algorithm == algorithm
    assert key.path == private
    # The id is the sha256 of the DER SubjectPublicKeyInfo, computed here independently.
    loaded = serialization.load_pem_public_key(public.read_bytes())
    der = loaded.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.key_id == "sha256:" + hashlib.sha256(der).hexdigest()
    assert not list(keys_dir().glob(".*")), "no temporary file is left behind"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_loaded_key_signs_what_its_public_key_verifies(algorithm: Algorithm) -> None:
    made = create_key("k", algorithm)
    by_name = load_signing_key("k")
    by_path = load_signing_key(keys_dir() / "k.key")
    assert by_name.key_id == by_path.key_id == made.key_id
    assert by_path.name == "k"
    sig = by_name.sign(b"payload")
    assert made.public_key.verify(sig, b"payload")
    assert not made.public_key.verify(sig, b"payload!")
    other = SigningKey.generate(algorithm)
    assert not other.public_key.verify(sig, b"payload")


def test_an_existing_key_is_never_replaced() -> None:
    first = create_key("k")
    with pytest.raises(SignatureError, match="exists already"):
        create_key("k", "p256")
    assert load_signing_key("k").key_id == first.key_id


@pytest.mark.parametrize("name", ["", ".hidden", "a b", "x" * 65, "ü", "-dash"])
def test_key_names_are_checked(name: str) -> None:
    with pytest.raises(SignatureError, match="invalid key name"):
        create_key(name)
    assert not keys_dir().exists() or not any(keys_dir().iterdir())


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(SignatureError, match="unknown key algorithm 'rsa'"):
        create_key("k", "rsa")  # type: ignore[arg-type]


def test_a_missing_key_says_how_to_create_it() -> None:
    with pytest.raises(SignatureError, match="modelyard keys create nope"):
        load_signing_key("nope")


def test_password_from_the_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    made = create_key("locked", password="s3cret")
    assert b"ENCRYPTED PRIVATE KEY" in (keys_dir() / "locked.key").read_bytes()
    with pytest.raises(SignatureError, match="MODELYARD_KEY_PASSWORD"):
        load_signing_key("locked")
    with pytest.raises(SignatureError, match="wrong password"):
        load_signing_key("locked", password="nope")
    assert load_signing_key("locked", password="s3cret").key_id == made.key_id
    monkeypatch.setenv("MODELYARD_KEY_PASSWORD", "s3cret")
    assert load_signing_key("locked").key_id == made.key_id


def test_password_from_the_environment_and_unencrypted_keys_still_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = create_key("plain")
    monkeypatch.setenv("MODELYARD_KEY_PASSWORD", "pw")
    locked = create_key("locked")
    assert b"ENCRYPTED" in (keys_dir() / "locked.key").read_bytes()
    assert load_signing_key("locked").key_id == locked.key_id
    assert load_signing_key("plain").key_id == plain.key_id


def test_unsupported_key_types_are_refused(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    for i, private in enumerate([rsa_key, p384]):
        file = tmp_path / f"k{i}.pem"
        file.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        with pytest.raises(SignatureError, match="unsupported key type"):
            load_signing_key(file)
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        with pytest.raises(SignatureError, match="unsupported key type"):
            PublicKey.from_pem(pem)


def test_default_key_is_made_on_first_use_only() -> None:
    assert default_key(create=False) is None
    made = default_key(create=True)
    assert made is not None
    assert made.name == "default"
    again = default_key(create=False)
    assert again is not None
    assert again.key_id == made.key_id


def test_default_key_made_by_many_threads_at_once_is_one_key() -> None:
    ids: list[str] = []

    def make() -> None:
        key = default_key(create=True)
        assert key is not None
        ids.append(key.key_id)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8
    assert len(set(ids)) == 1
    assert sorted(p.name for p in keys_dir().iterdir()) == ["default.key", "default.pub"]


def test_list_local_keys() -> None:
    a = create_key("a")
    b = create_key("b", "p256")
    (keys_dir() / "b.key").unlink()  # only the public half is left
    listed = {k.name: k for k in list_local_keys()}
    assert set(listed) == {"a", "b"}
    assert listed["a"].public_key == a.public_key
    assert listed["a"].has_private
    assert listed["b"].public_key.algorithm == "p256"
    assert listed["b"].public_key.key_id == b.key_id
    assert not listed["b"].has_private


# -- the trust store ----------------------------------------------------------------------


def _entry(key: SigningKey, label: str) -> dict[str, str]:
    return {"label": label, "public_key": key.public_key.to_pem()}


def test_trust_file_keys_and_revocations(config_home: Path) -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate("p256")
    config_home.mkdir(parents=True)
    (config_home / "trust.yaml").write_text(
        yaml.safe_dump(
            {"keys": [_entry(alice, "alice"), _entry(bob, "bob")], "revoked": [bob.key_id]}
        )
    )
    store = TrustStore.load()
    trusted = store.trusted(alice.key_id)
    assert trusted is not None
    assert trusted.label == "alice"
    assert store.trusted(bob.key_id) is None  # revocation wins over trust
    assert store.is_revoked(bob.key_id)
    assert store.trusted(SigningKey.generate().key_id) is None


def test_own_default_key_is_trusted_implicitly() -> None:
    assert TrustStore.load().keys == {}
    own = default_key(create=True)
    assert own is not None
    store = TrustStore.load()
    assert store.trusted(own.key_id) is not None
    assert TrustStore.load(include_own=False).trusted(own.key_id) is None
    revoke_key(own.key_id)
    assert TrustStore.load().trusted(own.key_id) is None


def test_yard_trust_merges_as_a_dict_or_a_file(tmp_path: Path) -> None:
    mine, theirs = SigningKey.generate(), SigningKey.generate()
    trust_key(mine.public_key, "me")
    yard = {"keys": [_entry(theirs, "team")], "revoked": [mine.key_id], "threshold": 2}
    for given in (yard, tmp_path / "yard-trust.yaml"):
        if isinstance(given, Path):
            given.write_text(yaml.safe_dump(yard))
        store = TrustStore.load(given)
        assert store.trusted(theirs.key_id) is not None
        assert store.trusted(mine.key_id) is None  # the yard revoked it: revoked for everyone
        assert store.threshold == 2


def test_trust_key_relabels_and_revoke_key_adds_once(config_home: Path) -> None:
    key = SigningKey.generate()
    trust_key(key.public_key, "first")
    trust_key(key.public_key, "second")
    revoke_key(key.key_id)
    revoke_key(key.key_id)
    doc = yaml.safe_load((config_home / "trust.yaml").read_text())
    assert [e["label"] for e in doc["keys"]] == ["second"]
    assert doc["keys"][0]["key_id"] == key.key_id
    assert doc["revoked"] == [key.key_id]
    with pytest.raises(SignatureError, match="is not a key id"):
        revoke_key("abc")


_PEM = SigningKey.generate().public_key.to_pem()


@pytest.mark.parametrize(
    ("content", "names"),
    [
        ("keys: [", "is not valid YAML"),
        ("- a\n- b\n", "must be a mapping"),
        ("trusted: []\n", "field 'trusted': unknown field"),
        ("version: 2\n", "field 'version'"),
        ("keys: {}\n", "field 'keys': must be a list"),
        ("keys: [{public_key: x}]\n", "field 'keys[0].label'"),
        ("keys: [{label: a, public_key: nonsense}]\n", "field 'keys[0].public_key'"),
        ("keys: [{label: a, pem: x}]\n", "field 'keys[0].pem': unknown field"),
        (
            yaml.safe_dump(
                {"keys": [{"label": "a", "public_key": _PEM, "key_id": "sha256:" + "0" * 64}]}
            ),
            "field 'keys[0].key_id'",
        ),
        ("revoked: [abc]\n", "field 'revoked[0]'"),
        ("threshold: 0\n", "field 'threshold'"),
        ("threshold: true\n", "field 'threshold'"),
    ],
)
def test_a_malformed_trust_file_is_named_with_its_field(
    config_home: Path, content: str, names: str
) -> None:
    config_home.mkdir(parents=True)
    file = config_home / "trust.yaml"
    file.write_text(content)
    with pytest.raises(SignatureError) as info:
        TrustStore.load()
    assert str(file) in str(info.value)
    assert names in str(info.value)
