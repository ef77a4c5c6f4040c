"""``modelyard keys ...``, ``modelyard sign`` and ``modelyard verify`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

import modelyard
from modelyard.cli import main
from modelyard.trust.keys import TrustStore, keys_dir, load_signing_key
from modelyard.trust.signing import SIGNATURE_FILE, read_signature_file
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("config_home")


def _run(*args: str, input: str | None = None) -> Result:
    # catch_exceptions=False: a traceback would fail the test instead of being swallowed.
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def _fails(result: Result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output  # one line, no traceback
    assert lines[0].startswith("Error: ")
    for word in words:
        assert word in lines[0]
    return lines[0]


@pytest.fixture
def model(tmp_path: Path, iris_model: Any) -> Path:
    path = tmp_path / "m"
    modelyard.save_model(iris_model, path, sign=False)
    return path


def test_create_list_export(tmp_path: Path) -> None:
    made = _run("keys", "create", "alice", "--algorithm", "p256")
    assert made.exit_code == 0, made.output
    key = load_signing_key("alice")
    assert key.key_id in made.output
    assert key.algorithm == "p256"
    listed = _run("keys", "list", "--json")
    assert json.loads(listed.output) == [
        {"name": "alice", "algorithm": "p256", "key_id": key.key_id, "status": "own"}
    ]
    exported = _run("keys", "export", "alice")
    assert exported.output == (keys_dir() / "alice.pub").read_text()
    assert exported.output.startswith("-----BEGIN PUBLIC KEY-----")
    _fails(_run("keys", "create", "alice"), "exists already")
    _fails(_run("keys", "export", "bob"), "no key named 'bob'")
    _fails(_run("keys", "create", "../x"), "invalid key name")


def test_trust_from_a_file_pem_text_or_stdin_then_revoke(tmp_path: Path, config_home: Path) -> None:
    from modelyard.trust.keys import SigningKey

    keys = [SigningKey.generate(), SigningKey.generate("p256"), SigningKey.generate()]
    file = tmp_path / "carol.pub"
    file.write_text(keys[0].public_key.to_pem())
    assert _run("keys", "trust", str(file)).exit_code == 0
    assert (
        _run("keys", "trust", "--label", "dave", "--", keys[1].public_key.to_pem()).exit_code == 0
    )
    piped = _run("keys", "trust", "-", "--label", "erin", input=keys[2].public_key.to_pem())
    assert piped.exit_code == 0, piped.output
    store = TrustStore.load()
    assert [store.keys[k.key_id].label for k in keys] == ["carol", "dave", "erin"]
    revoked = _run("keys", "revoke", keys[1].key_id)
    assert revoked.exit_code == 0
    assert TrustStore.load().trusted(keys[1].key_id) is None
    statuses = {r["name"]: r["status"] for r in json.loads(_run("keys", "list", "--json").output)}
    assert statuses == {"carol": "trusted", "dave": "revoked", "erin": "trusted"}
    _fails(_run("keys", "revoke", "nonsense"), "is not a key id")
    _fails(_run("keys", "trust", str(tmp_path / "missing.pub")), "cannot read public key")
    _fails(
        _run("keys", "trust", "--", "-----BEGIN PUBLIC KEY-----\nAAAA\n"), "not a PEM public key"
    )
    assert yaml.safe_load((config_home / "trust.yaml").read_text())["revoked"] == [keys[1].key_id]


def test_sign_then_verify(model: Path) -> None:
    assert _run("keys", "create", "release").exit_code == 0
    signed = _run("sign", str(model), "--key", "release", "--name", "fraud")
    assert signed.exit_code == 0, signed.output
    envelope = read_signature_file(model)
    assert envelope is not None
    key = load_signing_key("release")
    assert [s.keyid for s in envelope.signatures] == [key.key_id]
    # Signed by a key of this user's that is not the default one: not trusted yet.
    _fails(_run("verify", str(model)), key.key_id, "not in the trust store")
    assert _run("keys", "trust", str(keys_dir() / "release.pub")).exit_code == 0
    ok = _run("verify", str(model))
    assert ok.exit_code == 0, ok.output
    assert "signed by release" in ok.output
    assert key.key_id in ok.output
    facts = json.loads(_run("verify", str(model), "--json").output)
    assert (facts["key_id"], facts["name"], facts["algorithm"]) == (key.key_id, "fraud", "ed25519")


def test_sign_with_the_default_key_makes_it(model: Path) -> None:
    signed = _run("sign", f"file://{model}")
    assert signed.exit_code == 0, signed.output
    assert (keys_dir() / "default.key").exists()
    assert "signed by default (own key)" in _run("verify", str(model)).output


def test_failures_are_one_line(model: Path, tmp_path: Path) -> None:
    _fails(_run("verify", str(model)), "is not signed")
    _fails(_run("sign", "models:/fraud/1"), "only a model directory on disk")
    _fails(_run("verify", "runs:/abc/model"), "only a model directory on disk")
    _fails(_run("sign", str(tmp_path / "nowhere")), "no model directory there")
    _fails(_run("sign", str(model), "--key", "nope"), "no signing key 'nope'")
    assert _run("sign", str(model)).exit_code == 0
    (model / "model.pkl").write_bytes(b"\x80\x04K\x01.")
    _fails(_run("verify", str(model)), "model.pkl", "changed after it was signed")
    (model / SIGNATURE_FILE).write_text("{")
    _fails(_run("verify", str(model)), "not valid JSON")


def test_verify_exit_code_in_a_real_process(model: Path) -> None:
    # model-signing once printed success and exited 0 on a failed check: check the process.
    script = Path(sys.executable).with_name("modelyard")
    assert _run("sign", str(model)).exit_code == 0
    env = dict(os.environ)
    good = subprocess.run(
        [str(script), "verify", str(model)], capture_output=True, text=True, env=env, check=False
    )
    assert good.returncode == 0, good.stderr
    (model / "extra.pkl").write_bytes(b"x")
    bad = subprocess.run(
        [str(script), "verify", str(model)], capture_output=True, text=True, env=env, check=False
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "extra.pkl" in bad.stderr
    assert "Traceback" not in bad.stderr
