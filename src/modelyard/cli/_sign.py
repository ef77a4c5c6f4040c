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


_FORMATS = ("modelyard", "model-signing")
_FORMAT_HELP = (
    "modelyard: MANIFEST.sig in the directory (the default). model-signing: an OpenSSF "
    "model-signing v1.0 bundle file (--bundle; implied by --bundle)."
)


def _format(fmt: str | None, bundle: Path | None) -> str:
    """The format asked for: ``--bundle`` alone means model-signing; each needs the other."""
    if fmt is None:
        return "model-signing" if bundle is not None else "modelyard"
    if fmt == "model-signing" and bundle is None:
        raise click.UsageError("--format model-signing needs --bundle FILE")
    if fmt == "modelyard" and bundle is not None:
        raise click.UsageError("--bundle is for --format model-signing")
    return fmt


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
@click.option("--format", "fmt", type=click.Choice(_FORMATS), help=_FORMAT_HELP)
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write a model-signing bundle here (a P-256 key: model-signing has no Ed25519).",
)
@click.option(
    "--certificate-chain",
    "chain",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="model-signing certificate method: PEM with the key's certificate first, then "
    "its intermediates.",
)
@friendly_errors
def sign(  # noqa: PLR0917 - click passes every option by name
    target: str,
    key_name: str,
    name: str | None,
    fmt: str | None,
    bundle: Path | None,
    chain: Path | None,
) -> None:
    """Sign the model directory PATH: write or extend its MANIFEST.sig, or write a bundle."""
    from modelyard.errors import SignatureError
    from modelyard.trust.keys import DEFAULT_KEY, default_key, load_signing_key

    chosen = _format(fmt, bundle)
    if chosen == "model-signing" and name is not None:
        raise click.UsageError("--name binds a name into modelyard signatures only")
    if chosen == "modelyard" and chain is not None:
        raise click.UsageError("--certificate-chain is for --format model-signing")
    path = _model_dir(target, "sign")
    key = default_key(create=True) if key_name == DEFAULT_KEY else load_signing_key(key_name)
    if key is None:  # create=True makes one; typed Optional for create=False
        raise SignatureError(f"no signing key {key_name!r}")
    if bundle is not None:
        from modelyard.trust.bundle import export_bundle

        done = export_bundle(path, key, bundle, certificate_chain=chain)
        via = " and its certificate" if done.method == "certificate" else ""
        click.echo(
            f"exported {path} as model-signing bundle {bundle}, signed with {key.algorithm} "
            f"key {key.name!r} ({key.key_id}){via}; {len(done.files)} file(s), "
            f"digest {done.digest}"
        )
        return
    from modelyard.trust.signing import sign_directory

    envelope = sign_directory(path, key, name=name)
    click.echo(
        f"signed {path} with {key.algorithm} key {key.name!r} ({key.key_id}); "
        f"{len(envelope.signatures)} signature(s) in MANIFEST.sig"
    )


@click.command("verify")
@click.argument("target", metavar="PATH")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), help=_FORMAT_HELP)
@click.option(
    "--bundle",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify against this model-signing bundle file.",
)
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="model-signing key method: the signer's PEM public key.",
)
@click.option(
    "--certificate-chain",
    "chain",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="model-signing certificate method: PEM root certificate(s) to trust.",
)
@click.option(
    "--identity",
    help="model-signing certificate method: require this SAN (email, URI or DNS name).",
)
@json_option
@friendly_errors
def verify(  # noqa: PLR0917 - click passes every option by name
    target: str,
    fmt: str | None,
    bundle: Path | None,
    public_key: Path | None,
    chain: Path | None,
    identity: str | None,
    as_json: bool,
) -> None:
    """Check that a trusted key signed exactly the files of PATH (exit 1 if not)."""
    chosen = _format(fmt, bundle)
    if chosen == "modelyard" and (public_key or chain or identity):
        raise click.UsageError(
            "--public-key, --certificate-chain and --identity are for --format model-signing"
        )
    if bundle is not None:
        if (public_key is None) == (chain is None):
            raise click.UsageError("give one of --public-key and --certificate-chain")
        if identity is not None and chain is None:
            raise click.UsageError("--identity needs --certificate-chain")
        _verify_bundle(
            target, bundle, public_key=public_key, chain=chain, identity=identity, as_json=as_json
        )
        return
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


def _verify_bundle(
    target: str,
    bundle: Path,
    *,
    public_key: Path | None,
    chain: Path | None,
    identity: str | None,
    as_json: bool,
) -> None:
    from modelyard.trust.bundle import verify_bundle

    path = _model_dir(target, "verify")
    found = verify_bundle(
        path, bundle, public_key=public_key, certificate_chain=chain, identity=identity
    )
    if as_json:
        emit_json(
            {
                "path": str(path),
                "bundle": found.bundle,
                "format": "model-signing",
                "method": found.method,
                "digest": found.digest,
                "key_id": found.key_id,
                "algorithm": found.algorithm,
                "model_name": found.model_name,
                "files": list(found.files),
                "subject": found.subject,
                "identities": list(found.identities),
            }
        )
        return
    by = (
        f"certificate {found.subject} ({found.algorithm} key {found.key_id})"
        if (found.method == "certificate")
        else f"{found.algorithm} key {found.key_id}"
    )
    click.echo(
        f"verified {path} against model-signing bundle {bundle}: signed by {by}; "
        f"{len(found.files)} file(s), digest {found.digest}"
    )
