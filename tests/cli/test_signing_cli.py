"""``modelyard signing ...``: the yard's signing policy from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import modelyard
from modelyard.cli import main
from modelyard.errors import SignatureRequired
from modelyard.trust.keys import SigningKey, create_key, default_key
from modelyard.yard import Yard
from tests._yard import yard_uri
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def own_key(config_home: Path) -> SigningKey:
    key = default_key(create=True)
    assert key is not None
    return key


@pytest.fixture
def public_pem(tmp_path: Path, own_key: SigningKey) -> Path:
    file = tmp_path / "alice.pub"
    file.write_text(own_key.public_key.to_pem())
    return file


def _show(uri: str) -> dict[str, Any]:
    result = _run("signing", "show", "--json", "--yard", uri)
    assert result.exit_code == 0, result.output
    shown: dict[str, Any] = json.loads(result.output)
    return shown


def test_require_trust_lift_and_revoke_change_what_the_yard_admits(
    any_yard: Yard, tmp_path: Path, iris_model: Any, own_key: SigningKey, public_pem: Path
) -> None:
    uri = yard_uri(any_yard)
    unsigned = modelyard.save_model(iris_model, tmp_path / "unsigned", sign=False).path
    signed = modelyard.save_model(iris_model, tmp_path / "signed").path
    assert _show(uri) == {
        "require": False,
        "keys": [],
        "revoked": [],
        "threshold": 1,
        "models": [],
    }

    result = _run("signing", "require", "--yard", uri)
    assert result.exit_code == 0, result.output
    assert "every model in the yard" in result.output
    assert "the yard trusts no key yet" in result.output
    with pytest.raises(SignatureRequired):
        modelyard.register_model(signed, "fraud")

    result = _run("signing", "trust-key", str(public_pem), "--yard", uri)
    assert result.exit_code == 0, result.output
    assert own_key.key_id in result.output
    assert modelyard.register_model(signed, "fraud").version == 1
    with pytest.raises(SignatureRequired):
        modelyard.register_model(unsigned, "fraud")
    shown = _show(uri)
    assert shown["require"] is True
    assert [(k["label"], k["key_id"]) for k in shown["keys"]] == [("alice", own_key.key_id)]

    result = _run("signing", "show", "--yard", uri)
    assert "signatures required: for every model" in result.output
    assert "alice" in result.output

    # the yard-wide rule lifted, fraud's own rule stays until lifted too
    assert _run("signing", "require", "fraud", "--yard", uri).exit_code == 0
    assert _run("signing", "lift", "--yard", uri).exit_code == 0
    assert _show(uri)["models"] == ["fraud"]
    with pytest.raises(SignatureRequired):
        modelyard.register_model(unsigned, "fraud")
    assert _run("signing", "lift", "fraud", "--yard", uri).exit_code == 0
    assert modelyard.register_model(unsigned, "fraud").version == 2

    assert _run("signing", "require", "fraud", "--yard", uri).exit_code == 0
    result = _run("signing", "revoke-key", own_key.key_id, "--yard", uri)
    assert result.exit_code == 0, result.output
    assert _show(uri)["revoked"] == [own_key.key_id]
    with pytest.raises(SignatureRequired):
        modelyard.register_model(signed, "fraud")
    result = _run("signing", "trust-key", str(public_pem), "--yard", uri)
    assert result.exit_code == 1
    assert "was revoked in this yard" in result.output


def test_a_mistake_is_one_line_and_changes_nothing(
    yard: Yard, tmp_path: Path, config_home: Path
) -> None:
    uri = yard_uri(yard)
    before = _show(uri)
    not_pem = tmp_path / "not.pub"
    not_pem.write_text("hello")
    for args, says in [
        (("require", "nobody"), "nobody"),
        (("trust-key", str(tmp_path / "absent.pub")), "cannot read public key"),
        (("trust-key", str(not_pem)), "not.pub"),
        (("revoke-key", "sha256:xyz"), "sha256:xyz"),
    ]:
        result = _run("signing", *args, "--yard", uri)
        assert result.exit_code != 0, (args, result.output)
        assert says in result.output, (args, result.output)
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert _show(uri) == before


def test_a_second_key_can_be_trusted_by_pem_text(
    yard: Yard, config_home: Path, own_key: SigningKey
) -> None:
    other = create_key("bob", "p256")
    uri = yard_uri(yard)
    pem = other.public_key.to_pem()
    result = _run("signing", "trust-key", "--label", "bob", "--yard", uri, "--", pem)
    assert result.exit_code == 0, result.output
    assert [(k["label"], k["key_id"]) for k in _show(uri)["keys"]] == [("bob", other.key_id)]
    assert "p256" in _run("signing", "show", "--yard", uri).output
