"""``modelyard signing show|require|lift|trust-key|revoke-key``: what a yard admits.

The yard's signing policy decides which versions may be registered and aliased;
``modelyard keys`` decides what this machine trusts when it loads. They are kept
apart on purpose: a key the yard accepts is not a key every scoring host trusts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from modelyard.cli._output import emit_json, emit_table, friendly_errors, json_option
from modelyard.cli._yard import yard_option

if TYPE_CHECKING:
    from modelyard.trust.admission import SigningPolicy


@click.group("signing")
def signing_group() -> None:
    """The yard's signing policy: which models need signed versions, whose signatures count."""


@signing_group.command("show")
@yard_option
@json_option
@friendly_errors
def signing_show(as_json: bool) -> None:
    """Print whether signatures are required (yard-wide, per model) and the yard's keys."""
    from modelyard.registry import get_signing_policy

    policy = get_signing_policy()
    if as_json:
        emit_json(_document(policy))
        return
    _print(policy)


@signing_group.command("require")
@click.argument("name", required=False)
@yard_option
@friendly_errors
def signing_require(name: str | None) -> None:
    """Require signed versions for model NAME, or for every model when NAME is left out.

    \b
      modelyard signing trust-key alice.pub --label alice
      modelyard signing require fraud
    """
    from modelyard.registry import require_signatures

    policy = require_signatures(name, required=True)
    click.echo(f"signatures are now required for {_scope(name)}")
    if not policy.trust.keys:
        click.echo(
            "the yard trusts no key yet, so nothing new can be registered there: "
            "add one with `modelyard signing trust-key PEM --label WHO`",
            err=True,
        )


@signing_group.command("lift")
@click.argument("name", required=False)
@yard_option
@friendly_errors
def signing_lift(name: str | None) -> None:
    """Stop requiring signatures for model NAME, or yard-wide when NAME is left out."""
    from modelyard.registry import require_signatures

    policy = require_signatures(name, required=False)
    click.echo(f"signatures are no longer required for {_scope(name)}")
    if name is not None and policy.require:
        click.echo("they still are yard-wide (`modelyard signing lift` lifts that)", err=True)


@signing_group.command("trust-key")
@click.argument("source", metavar="FILE_OR_PEM")
@click.option("--label", help="Who the key belongs to (default: the file's name).")
@yard_option
@friendly_errors
def signing_trust_key(source: str, label: str | None) -> None:
    """Accept signatures by a public key in this yard: a PEM file, '-' for stdin, or the PEM."""
    from modelyard.cli._keys import read_public_key
    from modelyard.registry import trust_signer

    public, default_label = read_public_key(source)
    chosen = label or default_label or public.key_id[:19]
    trust_signer(public, chosen)
    click.echo(
        f"the yard now accepts signatures by {public.algorithm} key {public.key_id} ({chosen})"
    )


@signing_group.command("revoke-key")
@click.argument("key_id")
@yard_option
@friendly_errors
def signing_revoke_key(key_id: str) -> None:
    """Stop accepting signatures by KEY_ID in this yard, for good."""
    from modelyard.registry import revoke_signer

    revoke_signer(key_id)
    click.echo(f"the yard no longer accepts signatures by {key_id}; a revoked key stays revoked")


def _scope(name: str | None) -> str:
    return f"model {name!r}" if name else "every model in the yard"


def _document(policy: SigningPolicy) -> dict[str, Any]:
    doc = policy.to_document()
    doc.pop("version", None)
    for key in doc["keys"]:
        key.pop("public_key", None)
    doc["models"] = list(policy.models)
    return doc


def _print(policy: SigningPolicy) -> None:
    if policy.require:
        click.echo("signatures required: for every model")
    elif policy.models:
        click.echo(f"signatures required: for {', '.join(policy.models)}")
    else:
        click.echo("signatures required: no")
    store = policy.trust
    click.echo(f"signatures needed per version: {store.threshold}")
    rows: list[tuple[str, str, str, str]] = [
        (k.label, k.public_key.algorithm, kid, "revoked" if store.is_revoked(kid) else "accepted")
        for kid, k in sorted(store.keys.items(), key=lambda kv: kv[1].label)
    ]
    rows += [("", "", kid, "revoked") for kid in sorted(store.revoked) if kid not in store.keys]
    if rows:
        emit_table(None, ["label", "algorithm", "key id", "status"], rows)
    else:
        click.echo("keys: none (`modelyard signing trust-key PEM --label WHO` adds one)")
