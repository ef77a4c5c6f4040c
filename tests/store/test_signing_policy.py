"""A yard that requires signatures: what it admits and refuses, on SQLite, PostgreSQL and HTTP.

Every refusal must leave the yard as it was: no version, no moved alias, no
changed tag. The models are real (a saved iris classifier), signed by
``save_model``'s default key or by keys made here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import modelyard
from modelyard.errors import RegisteredModelNotFound, SignatureError, SignatureRequired
from modelyard.store.signatures import VERSION_TAG
from modelyard.trust.keys import SigningKey, default_key
from modelyard.trust.signing import sign_directory
from modelyard.yard import Yard
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)


@pytest.fixture
def own_key(config_home: Path) -> SigningKey:
    key = default_key(create=True)
    assert key is not None
    return key


@pytest.fixture
def signed_model(tmp_path: Path, iris_model: Any, own_key: SigningKey) -> Path:
    return modelyard.save_model(iris_model, tmp_path / "signed").path


@pytest.fixture
def unsigned_model(tmp_path: Path, iris_model: Any, own_key: SigningKey) -> Path:
    return modelyard.save_model(iris_model, tmp_path / "unsigned", sign=False).path


def _versions(name: str) -> list[int]:
    return sorted(v.version for v in modelyard.search_model_versions(f"name = '{name}'"))


def test_nothing_is_required_until_someone_says_so(any_yard: Yard, unsigned_model: Path) -> None:
    policy = modelyard.get_signing_policy()
    assert not policy.require
    assert not policy.requires("fraud")
    assert modelyard.register_model(unsigned_model, "fraud").version == 1


def test_a_model_that_requires_signatures_refuses_an_unsigned_version_and_keeps_nothing(
    any_yard: Yard, unsigned_model: Path, signed_model: Path, own_key: SigningKey
) -> None:
    modelyard.register_model(unsigned_model, "fraud")
    modelyard.require_signatures("fraud")
    assert modelyard.get_signing_policy().models == ("fraud",)
    with pytest.raises(SignatureRequired, match=r"not signed.*'fraud' requires signatures"):
        modelyard.register_model(unsigned_model, "fraud")
    # signed, but by a key the yard does not know
    with pytest.raises(SignatureRequired, match=own_key.key_id):
        modelyard.register_model(signed_model, "fraud")
    assert _versions("fraud") == [1]
    modelyard.trust_signer(own_key.public_key, "me")
    assert modelyard.register_model(signed_model, "fraud").version == 2
    # another model is not bound by fraud's rule
    assert modelyard.register_model(unsigned_model, "other").version == 1


def test_an_alias_moves_only_to_a_signed_version(
    any_yard: Yard, unsigned_model: Path, signed_model: Path, own_key: SigningKey
) -> None:
    modelyard.register_model(unsigned_model, "fraud")
    modelyard.set_alias("fraud", "champion", 1)
    modelyard.trust_signer(own_key.public_key, "me")
    modelyard.require_signatures("fraud")
    modelyard.register_model(signed_model, "fraud")
    modelyard.set_alias("fraud", "champion", 2)
    with pytest.raises(SignatureRequired, match="moving @champion of 'fraud' to version 1"):
        modelyard.set_alias("fraud", "champion", 1)
    assert modelyard.get_model_version_by_alias("fraud", "champion").version == 2
    with pytest.raises(SignatureRequired):
        modelyard.set_alias("fraud", "staging", 1)
    assert "staging" not in modelyard.get_registered_model("fraud").aliases


def test_the_signature_of_a_version_cannot_be_removed_or_forged_while_required(
    any_yard: Yard,
    signed_model: Path,
    unsigned_model: Path,
    own_key: SigningKey,
    iris: tuple[Any, Any],
) -> None:
    modelyard.trust_signer(own_key.public_key, "me")
    modelyard.create_registered_model("fraud")
    modelyard.require_signatures("fraud")
    modelyard.register_model(signed_model, "fraud")
    kept = modelyard.get_model_version("fraud", 1).tags[VERSION_TAG]
    with pytest.raises(SignatureRequired):
        modelyard.delete_model_version_tag("fraud", 1, VERSION_TAG)
    with pytest.raises(SignatureRequired, match="payloadType"):
        modelyard.set_model_version_tag("fraud", 1, VERSION_TAG, '{"payload": "x"}')
    assert modelyard.get_model_version("fraud", 1).tags[VERSION_TAG] == kept
    # another model's signature does not cover this version's files
    from sklearn.tree import DecisionTreeClassifier

    x, y = iris
    tree = DecisionTreeClassifier(max_depth=2).fit(x, y)
    other = modelyard.save_model(tree, unsigned_model.parent / "other").path
    modelyard.register_model(other, "fraud")
    theirs = modelyard.get_model_version("fraud", 2).tags[VERSION_TAG]
    with pytest.raises(SignatureRequired, match="version 1"):
        modelyard.set_model_version_tag("fraud", 1, VERSION_TAG, theirs)
    assert modelyard.get_model_version("fraud", 1).tags[VERSION_TAG] == kept


def test_requiring_signatures_of_a_model_that_does_not_exist_names_it(any_yard: Yard) -> None:
    with pytest.raises(RegisteredModelNotFound, match="fraud"):
        modelyard.require_signatures("fraud")


def test_a_yard_wide_rule_binds_every_model_and_a_models_own_lift_does_not_lift_it(
    any_yard: Yard, unsigned_model: Path, signed_model: Path, own_key: SigningKey
) -> None:
    modelyard.register_model(unsigned_model, "fraud")
    policy = modelyard.require_signatures()
    assert policy.require
    assert policy.requires("anything")
    with pytest.raises(SignatureRequired, match="'brand-new' requires signatures"):
        modelyard.register_model(unsigned_model, "brand-new")
    # the refusal created nothing, not even the registered model
    assert [m.name for m in modelyard.search_registered_models()] == ["fraud"]
    modelyard.require_signatures("fraud", required=False)
    with pytest.raises(SignatureRequired):
        modelyard.register_model(unsigned_model, "fraud")
    modelyard.trust_signer(own_key.public_key, "me")
    assert modelyard.register_model(signed_model, "brand-new").version == 1
    modelyard.require_signatures(required=False)
    assert modelyard.register_model(unsigned_model, "fraud").version == 2


def test_a_revoked_signer_admits_nothing_more(
    any_yard: Yard, signed_model: Path, own_key: SigningKey
) -> None:
    modelyard.trust_signer(own_key.public_key, "me")
    modelyard.create_registered_model("fraud")
    modelyard.require_signatures("fraud")
    modelyard.register_model(signed_model, "fraud")
    policy = modelyard.revoke_signer(own_key.key_id)
    assert own_key.key_id in policy.trust.revoked
    assert own_key.key_id not in policy.trust.keys
    with pytest.raises(SignatureRequired, match="revoked"):
        modelyard.register_model(signed_model, "fraud")
    with pytest.raises(SignatureError, match="stays revoked"):
        modelyard.trust_signer(own_key.public_key, "me again")
    assert _versions("fraud") == [1]


def test_two_signers_when_the_yard_asks_for_two(
    any_yard: Yard, tmp_path: Path, iris_model: Any, own_key: SigningKey
) -> None:
    other = SigningKey.generate(name="other")
    modelyard.trust_signer(own_key.public_key, "me")
    modelyard.trust_signer(other.public_key, "other")
    store = any_yard.metadata
    policy = store.get_signing_policy()
    store.set_signing_policy(replace(policy, trust=replace(policy.trust, threshold=2)))
    modelyard.create_registered_model("fraud")
    modelyard.require_signatures("fraud")
    once = modelyard.save_model(iris_model, tmp_path / "once").path
    with pytest.raises(SignatureRequired, match="2 are required"):
        modelyard.register_model(once, "fraud")
    sign_directory(once, other)
    assert modelyard.register_model(once, "fraud").version == 1


def test_runs_uris_carry_their_signature_into_a_yard_that_requires_one(
    any_yard: Yard, iris_model: Any, own_key: SigningKey
) -> None:
    modelyard.trust_signer(own_key.public_key, "me")
    modelyard.require_signatures()
    with modelyard.start_run() as run:
        modelyard.log_model(iris_model, "model")
        modelyard.log_model(iris_model, "plain", sign=False)
    assert modelyard.register_model(f"runs:/{run.run_id}/model", "fraud").version == 1
    with pytest.raises(SignatureRequired):
        modelyard.register_model(f"runs:/{run.run_id}/plain", "fraud")
    # a copy of a signed version keeps its signature
    assert modelyard.register_model("models:/fraud/1", "copy").version == 1


def test_an_edit_made_from_an_older_read_does_not_bring_a_revoked_key_back(
    any_yard: Yard, own_key: SigningKey
) -> None:
    modelyard.trust_signer(own_key.public_key, "me")
    stale = any_yard.metadata.get_signing_policy()  # read before the revocation
    modelyard.revoke_signer(own_key.key_id)
    other = SigningKey.generate(name="other")
    stored = any_yard.metadata.set_signing_policy(stale.trusting(other.public_key, "other"))
    assert own_key.key_id in stored.trust.revoked
    assert own_key.key_id not in stored.trust.keys
    assert other.key_id in stored.trust.keys
    assert own_key.key_id in modelyard.get_signing_policy().trust.revoked
