"""``modelyard keys create|list|export|trust|revoke``: signing keys and whom to trust."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelyard.cli._output import emit_json, emit_table, friendly_errors, json_option

if TYPE_CHECKING:
    from modelyard.trust.keys import PublicKey


@click.group("keys")
def keys_group() -> None:
    """Signing keys (in the config home) and the public keys you trust."""


@keys_group.command("create")
@click.argument("name")
@click.option(
    "--algorithm",
    type=click.Choice(["ed25519", "p256"]),
    default="ed25519",
    show_default=True,
    help="Ed25519, or ECDSA over NIST P-256 with SHA-256.",
)
@friendly_errors
def keys_create(name: str, algorithm: str) -> None:
    """Create a key pair NAME (encrypted when MODELYARD_KEY_PASSWORD is set)."""
    from modelyard.trust.keys import create_key

    key = create_key(name, "p256" if algorithm == "p256" else "ed25519")
    click.echo(f"created {key.algorithm} key {name!r}: {key.key_id}")
    click.echo(f"private key: {key.path}")
    click.echo(f"share the public key with `modelyard keys export {name}`")


@keys_group.command("list")
@json_option
@friendly_errors
def keys_list(as_json: bool) -> None:
    """Your key pairs, the keys you trust, and revoked key ids."""
    from modelyard.trust.keys import TrustStore, list_local_keys

    store = TrustStore.load()
    rows: list[dict[str, Any]] = []
    shown: set[str] = set()
    for own in list_local_keys():
        kid = own.public_key.key_id
        status = "revoked" if store.is_revoked(kid) else "own"
        if status == "own" and store.trusted(kid) is not None:
            status = "own, trusted"
        if not own.has_private:
            status += " (public key only)"
        rows.append(_row(own.name, own.public_key.algorithm, kid, status))
        shown.add(kid)
    for kid, trusted in sorted(store.keys.items(), key=lambda kv: kv[1].label):
        if kid not in shown:
            status = "revoked" if store.is_revoked(kid) else "trusted"
            rows.append(_row(trusted.label, trusted.public_key.algorithm, kid, status))
            shown.add(kid)
    rows.extend(_row("", "", kid, "revoked") for kid in sorted(store.revoked - shown))
    if as_json:
        emit_json(rows)
        return
    emit_table(
        None,
        ["name", "algorithm", "key id", "status"],
        [[r["name"], r["algorithm"], r["key_id"], r["status"]] for r in rows],
    )


def _row(name: str, algorithm: str, key_id: str, status: str) -> dict[str, Any]:
    return {"name": name, "algorithm": algorithm, "key_id": key_id, "status": status}


@keys_group.command("export")
@click.argument("name")
@friendly_errors
def keys_export(name: str) -> None:
    """Print the public key of your key pair NAME (PEM), to give to whoever verifies."""
    from modelyard.errors import SignatureError
    from modelyard.trust.keys import list_local_keys

    for own in list_local_keys():
        if own.name == name:
            click.echo(own.public_key.to_pem(), nl=False)
            return
    raise SignatureError(f"no key named {name!r}; see `modelyard keys list`")


@keys_group.command("trust")
@click.argument("source", metavar="FILE_OR_PEM")
@click.option("--label", help="Who the key belongs to (default: the file's name).")
@friendly_errors
def keys_trust(source: str, label: str | None) -> None:
    """Trust a public key: a PEM file, '-' for stdin, or the PEM text itself (after '--').

    Anything the key signs verifies here from now on, unless it is revoked.
    """
    from modelyard.trust.keys import trust_key

    public, default_label = read_public_key(source)
    chosen = label or default_label or public.key_id[:19]
    trusted = trust_key(public, chosen)
    click.echo(f"trusted {public.algorithm} key {trusted.key_id} as {chosen!r}")


@keys_group.command("revoke")
@click.argument("key_id")
@friendly_errors
def keys_revoke(key_id: str) -> None:
    """Revoke KEY_ID: nothing it signed verifies here any more, even if trusted."""
    from modelyard.trust.keys import DEFAULT_KEY, list_local_keys, revoke_key

    revoke_key(key_id)
    click.echo(f"revoked {key_id}")
    if any(k.name == DEFAULT_KEY and k.public_key.key_id == key_id for k in list_local_keys()):
        click.echo(
            "note: that is your own default key; move keys/default.key aside and save again "
            "to get a new one",
            err=True,
        )


def read_public_key(source: str) -> tuple[PublicKey, str | None]:
    """A public key from a PEM file, ``-`` (stdin) or the PEM text; and the file's stem."""
    from modelyard.errors import SignatureError
    from modelyard.trust.keys import PublicKey

    if source == "-":
        pem, default_label = sys.stdin.read(), None
    elif source.lstrip().startswith("-----BEGIN"):
        pem, default_label = source, None
    else:
        file = Path(source)
        try:
            pem = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SignatureError(f"cannot read public key {source!r}: {exc}") from None
        default_label = file.stem
    return PublicKey.from_pem(pem, source=source if default_label else "public key"), default_label
