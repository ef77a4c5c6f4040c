"""OpenSSF model-signing 1.1.1, the real one, against modelyard: both ways, key and certificate.

- theirs → ours: ``model_signing sign key|certificate`` (and its Python API)
  sign a model directory; :func:`modelyard.trust.bundle.verify_bundle` and
  ``modelyard verify --bundle`` accept it, and refuse every tampering by name.
- ours → theirs: :func:`modelyard.trust.bundle.export_bundle` and ``modelyard
  sign --bundle`` write a bundle that ``model_signing verify key|certificate``
  accepts, and rejects once a file changes.

model_signing runs from its own cached environment (``_model_signing_env``);
nothing here touches the network once that is built.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

import modelyard
from modelyard.cli import main
from modelyard.errors import TamperedModel
from modelyard.trust.bundle import export_bundle, verify_bundle
from modelyard.trust.keys import SigningKey, create_key
from modelyard.trust.signing import sign_directory
from tests.interop._model_signing_env import make_pki, model_signing_env
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("config_home")


@pytest.fixture(scope="session")
def model_signing_bin() -> Path:
    """The ``bin`` folder of the cached model-signing environment (built on first use)."""
    return model_signing_env()


@pytest.fixture
def model(tmp_path: Path, iris_model: Any) -> Path:
    """A real modelyard model directory (unsigned by modelyard)."""
    path = tmp_path / "iris"
    modelyard.save_model(iris_model, path, sign=False)
    return path


def _run(bin_dir: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run(
        [str(bin_dir / str(args[0])), *map(str, args[1:])],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )


def _ms(bin_dir: Path, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run(bin_dir, "model_signing", *args, cwd=cwd)


def _ok(proc: subprocess.CompletedProcess[str], word: str) -> None:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert word in proc.stdout


def _failed(proc: subprocess.CompletedProcess[str]) -> str:
    # model-signing < 1.0.1 printed success and exited 0 after failing: check both
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "succeeded" not in proc.stdout
    return proc.stderr


def _key_files(tmp_path: Path, key: SigningKey) -> tuple[Path, Path]:
    private, public = tmp_path / "signer.key", tmp_path / "signer.pub"
    private.write_bytes(key.private_pem())
    public.write_text(key.public_key.to_pem())
    return private, public


def _ec(key: SigningKey) -> ec.EllipticCurvePublicKey:
    public = serialization.load_der_public_key(key.public_key.der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    return public


# -- theirs → ours ----------------------------------------------------------------------


def test_their_key_signature_verifies_and_tampering_is_named(
    model_signing_bin: Path, model: Path, tmp_path: Path
) -> None:
    key = SigningKey.generate("p256")
    private, public = _key_files(tmp_path, key)
    sig = tmp_path / "iris.sig"
    _ok(
        _ms(model_signing_bin, "sign", "key", model, "--private_key", private, "--signature", sig,
            cwd=tmp_path),
        "Signing succeeded",
    )  # fmt: skip
    found = verify_bundle(model, sig, public_key=public)
    assert found.key_id == key.key_id
    assert found.model_name == "iris"
    assert "MLmodel" in found.files
    assert "MANIFEST.sha256" in found.files
    cli = CliRunner().invoke(
        main, ["verify", str(model), "--bundle", str(sig), "--public-key", str(public)]
    )
    assert cli.exit_code == 0, cli.output
    assert key.key_id in cli.output
    # the model still loads as modelyard's own: the bundle lies outside it
    assert modelyard.load_model(model) is not None

    weights = next(f for f in found.files if f.endswith((".skops", ".pkl")))
    data = bytearray((model / weights).read_bytes())
    data[len(data) // 2] ^= 0x01  # one byte, same size
    (model / weights).write_bytes(bytes(data))
    with pytest.raises(TamperedModel, match="was changed") as caught:
        verify_bundle(model, sig, public_key=public)
    assert caught.value.file == weights
    # model-signing itself agrees
    _failed(
        _ms(model_signing_bin, "verify", "key", model, "--public_key", public, "--signature", sig,
            cwd=tmp_path)
    )  # fmt: skip
    data[len(data) // 2] ^= 0x01
    (model / weights).write_bytes(bytes(data))
    assert verify_bundle(model, sig, public_key=public)

    (model / "MLmodel").rename(model / "MLmodel.yaml")
    with pytest.raises(TamperedModel, match=r"renamed to 'MLmodel\.yaml'") as caught:
        verify_bundle(model, sig, public_key=public)
    assert caught.value.file == "MLmodel"
    (model / "MLmodel.yaml").rename(model / "MLmodel")

    (model / "model.pkl.extra").write_bytes(b"\x80\x04N.")
    with pytest.raises(TamperedModel, match="not covered") as caught:
        verify_bundle(model, sig, public_key=public)
    assert caught.value.file == "model.pkl.extra"
    (model / "model.pkl.extra").unlink()

    removed = sorted(f for f in found.files if f.startswith("python_env") or f.endswith(".txt"))
    (model / removed[0]).unlink()
    with pytest.raises(TamperedModel, match="is missing") as caught:
        verify_bundle(model, sig, public_key=public)
    assert caught.value.file == removed[0]


def test_their_certificate_signature_verifies(
    model_signing_bin: Path, model: Path, tmp_path: Path
) -> None:
    key = SigningKey.generate("p256")
    private, _ = _key_files(tmp_path, key)
    pki = make_pki(_ec(key))
    (tmp_path / "leaf.pem").write_bytes(pki.leaf_pem())
    (tmp_path / "root.pem").write_bytes(pki.root_pem())
    sig = model / "model.sig"  # in the model folder, as model_signing's default
    _ok(
        _ms(model_signing_bin, "sign", "certificate", model, "--private_key", private,
            "--signing_certificate", "leaf.pem", "--certificate_chain", "root.pem",
            "--signature", sig, cwd=tmp_path),
        "Signing succeeded",
    )  # fmt: skip
    found = verify_bundle(
        model, sig, certificate_chain=tmp_path / "root.pem", identity="signer@example.com"
    )
    assert found.method == "certificate"
    assert found.key_id == key.key_id
    assert "model.sig" not in found.files
    cli = CliRunner().invoke(
        main,
        ["verify", str(model), "--bundle", str(sig), "--certificate-chain",
         str(tmp_path / "root.pem"), "--json"],
    )  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert '"subject": "CN=modelyard test signer"' in cli.output
    # another root does not vouch for it
    other = make_pki(_ec(SigningKey.generate("p256")))
    (tmp_path / "other.pem").write_bytes(other.root_pem())
    bad = CliRunner().invoke(
        main,
        ["verify", str(model), "--bundle", str(sig), "--certificate-chain",
         str(tmp_path / "other.pem")],
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "does not chain up to the given root" in bad.output
    (model / "MLmodel").write_text((model / "MLmodel").read_text().replace("a", "b", 1))
    with pytest.raises(TamperedModel, match="MLmodel"):
        verify_bundle(model, sig, certificate_chain=tmp_path / "root.pem")


def test_their_python_api_with_a_p384_key(
    model_signing_bin: Path, model: Path, tmp_path: Path
) -> None:
    private = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "p384.key").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    script = tmp_path / "sign.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import model_signing
            model_signing.signing.Config().use_elliptic_key_signer(
                private_key={str(tmp_path / "p384.key")!r}
            ).sign({str(model)!r}, {str(tmp_path / "api.sig")!r})
            print("signed")
            """
        )
    )
    _ok(_run(model_signing_bin, "python", script, cwd=tmp_path), "signed")
    found = verify_bundle(model, tmp_path / "api.sig", public_key=public_pem)
    assert found.algorithm == "p384"


def test_their_tool_has_no_ed25519(model_signing_bin: Path, model: Path, tmp_path: Path) -> None:
    # why an Ed25519 modelyard key cannot be exported: model-signing refuses the key type
    private = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "ed.key").write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    _failed(
        _ms(model_signing_bin, "sign", "key", model, "--private_key", "ed.key", "--signature",
            "ed.sig", cwd=tmp_path)
    )  # fmt: skip


# -- ours → theirs ----------------------------------------------------------------------


def test_our_export_verifies_in_model_signing(
    model_signing_bin: Path, model: Path, tmp_path: Path
) -> None:
    key = SigningKey.generate("p256")
    _, public = _key_files(tmp_path, key)
    sig = tmp_path / "ours.sig"
    export_bundle(model, key, sig)
    verify = ["verify", "key", model, "--public_key", public, "--signature", sig]
    _ok(_ms(model_signing_bin, *verify, cwd=tmp_path), "Verification succeeded")
    # a modelyard signature added afterwards (MANIFEST.sig, the bundle's ignore path)
    sign_directory(model, key)
    _ok(_ms(model_signing_bin, *verify, cwd=tmp_path), "Verification succeeded")
    (model / "MLmodel").write_text((model / "MLmodel").read_text() + "\n")
    assert "MLmodel" in _failed(_ms(model_signing_bin, *verify, cwd=tmp_path))


def test_our_certificate_export_verifies_in_model_signing(
    model_signing_bin: Path, model: Path, tmp_path: Path
) -> None:
    key = SigningKey.generate("p256")
    pki = make_pki(_ec(key))
    (tmp_path / "root.pem").write_bytes(pki.root_pem())
    sig = tmp_path / "ours.sig"
    assert export_bundle(model, key, sig, certificate_chain=[pki.leaf]).method == "certificate"
    verify = ["verify", "certificate", model, "--certificate_chain", "root.pem", "--signature", sig]
    _ok(_ms(model_signing_bin, *verify, cwd=tmp_path), "Verification succeeded")
    other = make_pki(_ec(SigningKey.generate("p256")))
    (tmp_path / "root.pem").write_bytes(other.root_pem())
    _failed(_ms(model_signing_bin, *verify, cwd=tmp_path))


def test_modelyard_sign_bundle_then_model_signing_verify(
    model_signing_bin: Path, model: Path, tmp_path: Path
) -> None:
    key = create_key("release", "p256")
    _, public = _key_files(tmp_path, key)
    sig = tmp_path / "cli.sig"
    made = CliRunner().invoke(
        main, ["sign", str(model), "--key", "release", "--format", "model-signing", "--bundle",
               str(sig)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    _ok(
        _ms(model_signing_bin, "verify", "key", model, "--public_key", public, "--signature", sig,
            cwd=tmp_path),
        "Verification succeeded",
    )  # fmt: skip
    # and back: the same bundle verifies in modelyard
    assert verify_bundle(model, sig, public_key=key.public_key).key_id == key.key_id
