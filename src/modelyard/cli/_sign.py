"""``modelyard sign PATH`` and ``modelyard verify PATH``: signatures of model directories."""

from __future__ import annotations

from pathlib import Path

import click

from modelyard.cli._output import emit_json, friendly_errors, json_option

_YARD_PREFIXES = ("models:/", "runs:/", "s3://", "http://", "https://", "mlflow+")


def _model_dir(target: str, action: str) -> Path:
    """The local directory ``target`` names; yard URIs are refused for now, in one line."""
    from modelyard.errors import SignatureError

    if target.startswith(_YARD_PREFIXES):
        raise SignatureError(
            f"cannot {action} {target!r}: only a model directory on disk can be signed or "
            "verified here so far (fetch it, or pass its path)"
        )
    path = Path(target.removeprefix("file://")).expanduser()
    if not path.is_dir():
        raise SignatureError(f"cannot {action} {target!r}: no model directory there", path=path)
    return path


@click.command("sign")
@click.argument("target", metavar="PATH")
@click.option(
    "--key",
    "key_name",
    default="default",
    show_default=True,
    help="A key name (see `modelyard keys list`) or a PEM private key file.",
)
@click.option("--name", help="Bind this registered model name into the signature.")
@friendly_errors
def sign(target: str, key_name: str, name: str | None) -> None:
    """Sign the model directory PATH: write or extend its MANIFEST.sig."""
    from modelyard.errors import SignatureError
    from modelyard.trust.keys import DEFAULT_KEY, default_key, load_signing_key
    from modelyard.trust.signing import sign_directory

    path = _model_dir(target, "sign")
    key = default_key(create=True) if key_name == DEFAULT_KEY else load_signing_key(key_name)
    if key is None:  # create=True makes one; typed Optional for create=False
        raise SignatureError(f"no signing key {key_name!r}")
    envelope = sign_directory(path, key, name=name)
    click.echo(
        f"signed {path} with {key.algorithm} key {key.name!r} ({key.key_id}); "
        f"{len(envelope.signatures)} signature(s) in MANIFEST.sig"
    )


@click.command("verify")
@click.argument("target", metavar="PATH")
@json_option
@friendly_errors
def verify(target: str, as_json: bool) -> None:
    """Check that a trusted key signed exactly the files of PATH (exit 1 if not)."""
    from modelyard.trust.signing import verify_directory

    path = _model_dir(target, "verify")
    found = verify_directory(path)
    if as_json:
        emit_json(
            {
                "path": str(path),
                "digest": found.digest,
                "key_id": found.key_id,
                "key_ids": list(found.key_ids),
                "signer": found.label,
                "algorithm": found.algorithm,
                "created_at": found.created_at,
                "name": found.name,
            }
        )
        return
    bound = f", for {found.name!r}" if found.name else ""
    click.echo(
        f"verified {path}: signed by {found.label} ({found.algorithm} key {found.key_id})"
        f"{bound}, statement made {found.created_at}; digest {found.digest}"
    )
