"""``modelyard server`` (and ``server init-admin``), ``token``, ``permission``, ``audit``.

``server`` runs next to the database; the other commands talk to a running
server (``MODELYARD_URI=http://host:port`` and ``MODELYARD_TOKEN``).
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Any

import click

from modelyard.cli._output import (
    emit_json,
    emit_table,
    friendly_errors,
    json_option,
    setup_logging,
)
from modelyard.cli._yard import yard_option

__all__ = ["audit_command", "permission_group", "server_group", "token_group"]

_YARD_HELP = "The yard to serve (default: $MODELYARD_URI, else ./.modelyard)."


def _yard_arg(value: str | None) -> str | None:
    if value and value.startswith(("http://", "https://")):
        raise click.BadParameter("serve a database yard, not another server", param_hint="--yard")
    return value or os.environ.get("MODELYARD_URI") or None


@click.group("server", invoke_without_command=True)
@click.option("--yard", "yard_uri", metavar="URI", help=_YARD_HELP)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="0 picks a free port.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes sharing the port.",
)
@click.option(
    "--certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="TLS certificate chain (PEM); serve HTTPS.",
)
@click.option(
    "--keyfile",
    type=click.Path(exists=True, dir_okay=False),
    help="The certificate's private key (PEM).",
)
@click.option(
    "--init-admin",
    is_flag=True,
    help="If the yard has no users yet, make user 'admin' and print its token once.",
)
@click.option(
    "--max-upload",
    "max_upload",
    default="256G",
    show_default=True,
    metavar="SIZE",
    help="The largest file a client may upload (e.g. 500M, 2G).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Host header to answer to (repeatable; '*' for any). Default: loopback "
    "names when listening on loopback, else any.",
)
@click.pass_context
@friendly_errors
def server_group(  # noqa: PLR0917 - click passes every option by name
    ctx: click.Context,
    yard_uri: str | None,
    host: str,
    port: int,
    workers: int,
    certfile: str | None,
    keyfile: str | None,
    init_admin: bool,
    max_upload: str,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve a yard over HTTP to a team: REST API, tokens, grants, audit log.

    \b
      modelyard server init-admin --yard postgresql://db/yard?artifacts=s3://models/yard
      modelyard server --yard postgresql://db/yard?artifacts=s3://models/yard --workers 4
    """
    if ctx.invoked_subcommand is not None:
        return
    if bool(certfile) != bool(keyfile):
        raise click.UsageError("--certfile and --keyfile go together")
    from modelyard._asgi_run import TlsFiles
    from modelyard.server.run import ServerOptions, run_server
    from modelyard.server.state import ServerSettings

    setup_logging()
    options = ServerOptions(
        yard=_yard_arg(yard_uri),
        host=host,
        port=port,
        workers=workers,
        tls=TlsFiles(certfile, keyfile) if certfile and keyfile else None,
        init_admin=init_admin,
        allowed_hosts=allowed_hosts or None,
        settings=ServerSettings(max_blob_bytes=_size(max_upload)),
    )
    run_server(options)


def _size(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    value = text.strip().upper().removesuffix("B")
    number, unit = (value[:-1], value[-1]) if value[-1:] in units else (value, "")
    try:
        size = int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise click.BadParameter(
            f"{text!r} is not a size like 500M or 2G", param_hint="--max-upload"
        ) from None
    if size < 1:
        raise click.BadParameter("must be positive", param_hint="--max-upload")
    return size


@server_group.command("init-admin")
@click.option("--yard", "yard_uri", metavar="URI", help=_YARD_HELP)
@click.option("--name", default="admin", show_default=True, help="The admin's user name.")
@friendly_errors
def init_admin_command(yard_uri: str | None, name: str) -> None:
    """Make an admin user and print a token for it (once: only its hash is kept)."""
    from modelyard.server.run import init_admin
    from modelyard.uri import validate_name
    from modelyard.yard import Yard

    secret = init_admin(Yard(_yard_arg(yard_uri)), validate_name(name, "user name"))
    click.echo(f"created a token for admin {name!r}; it is shown this once:", err=True)
    click.echo(secret)


# -- tokens ---------------------------------------------------------------------------------


@click.group("token")
def token_group() -> None:
    """Tokens of a yard server's users (create needs an admin)."""


@token_group.command("create")
@click.option("--user", required=True, help="Whose token (made with --role if missing).")
@click.option(
    "--role",
    type=click.Choice(["reader", "writer", "admin"]),
    help="Create the user with this role if they do not exist.",
)
@click.option("--name", help="What the token is for (shown in listings).")
@click.option(
    "--expires-in",
    "expires_in_days",
    type=click.IntRange(1, 3650),
    metavar="DAYS",
    help="Expire after this many days.",
)
@json_option
@yard_option
@friendly_errors
def token_create(
    user: str, role: str | None, name: str | None, expires_in_days: int | None, as_json: bool
) -> None:
    """Make a token; the secret is printed once, on stdout."""
    from modelyard.errors import ServerError
    from modelyard.store.rest.admin import server_admin

    admin = server_admin()
    if role is not None:
        try:
            admin.create_user(user, role)
        except ServerError as exc:
            if exc.code != "already_exists":
                raise
    made = admin.create_token(user, name=name, expires_in_days=expires_in_days)
    if as_json:
        emit_json(made)
        return
    click.echo(f"token {made['info']['token_id']} for {user!r} (shown this once):", err=True)
    click.echo(made["token"])


@token_group.command("list")
@click.option("--user", help="Only this user's tokens (admins).")
@json_option
@yard_option
@friendly_errors
def token_list(user: str | None, as_json: bool) -> None:
    """List tokens (never their secrets)."""
    from modelyard.store.rest.admin import server_admin

    found = server_admin().list_tokens(user)
    if as_json:
        emit_json(found)
        return
    emit_table(
        None,
        ["id", "user", "name", "created", "expires", "last used", "state"],
        [
            [
                t["token_id"],
                t["user"],
                t["name"],
                _ms(t["created_at"]),
                _ms(t["expires_at"]),
                _ms(t["last_used_at"]),
                "active" if t["active"] else "revoked/expired",
            ]
            for t in found
        ],
    )


@token_group.command("revoke")
@click.argument("token_id")
@yard_option
@friendly_errors
def token_revoke(token_id: str) -> None:
    """Revoke a token: every server refuses it from the next request on."""
    from modelyard.store.rest.admin import server_admin

    server_admin().revoke_token(token_id)
    click.echo(f"revoked token {token_id}")


# -- permissions ------------------------------------------------------------------------------


def _target(model: str | None, experiment: str | None) -> tuple[Any, str]:
    if bool(model) == bool(experiment):
        raise click.UsageError("give exactly one of --model or --experiment")
    return ("model", model) if model else ("experiment", experiment)  # type: ignore[return-value]


@click.group("permission")
def permission_group() -> None:
    """Grants on registered models and experiments (needs manage on them)."""


@permission_group.command("grant")
@click.argument("user")
@click.argument("permission", type=click.Choice(["none", "read", "edit", "manage"]))
@click.option("--model", help="The registered model.")
@click.option("--experiment", help="The experiment (and its runs).")
@yard_option
@friendly_errors
def permission_grant(user: str, permission: str, model: str | None, experiment: str | None) -> None:
    """Give USER PERMISSION on a model or experiment ('none' hides it from them)."""
    from modelyard.store.rest.admin import server_admin

    kind, resource = _target(model, experiment)
    server_admin().grant(kind, resource, user, permission)
    click.echo(f"{user} now has {permission} on {kind} {resource!r}")


@permission_group.command("revoke")
@click.argument("user")
@click.option("--model", help="The registered model.")
@click.option("--experiment", help="The experiment.")
@yard_option
@friendly_errors
def permission_revoke(user: str, model: str | None, experiment: str | None) -> None:
    """Remove USER's grant: they fall back to their role's default."""
    from modelyard.store.rest.admin import server_admin

    kind, resource = _target(model, experiment)
    server_admin().revoke(kind, resource, user)
    click.echo(f"removed {user}'s grant on {kind} {resource!r}")


@permission_group.command("list")
@click.option("--model", help="Grants on this registered model.")
@click.option("--experiment", help="Grants on this experiment.")
@click.option("--user", help="Grants held by this user (default: yours).")
@json_option
@yard_option
@friendly_errors
def permission_list(
    model: str | None, experiment: str | None, user: str | None, as_json: bool
) -> None:
    """List grants on a resource, or held by a user."""
    from modelyard.store.rest.admin import server_admin

    admin = server_admin()
    if model or experiment:
        kind, resource = _target(model, experiment)
        found = admin.grants(kind, resource, user)
    else:
        found = admin.grants(user=user)
    if as_json:
        emit_json(found)
        return
    emit_table(
        None,
        ["kind", "resource", "user", "permission"],
        [[g["kind"], g["resource"], g["user"], g["permission"]] for g in found],
    )


# -- audit ---------------------------------------------------------------------------------------


@click.command("audit")
@click.option("--since", help="ISO date or time (UTC), e.g. 2026-12-01 or 2026-12-01T14:00.")
@click.option("--until", help="ISO date or time (UTC).")
@click.option("--actor", help="Only this user's actions.")
@click.option("--action", help="e.g. alias.set, version.create, token.revoke.")
@click.option("--target", help="e.g. models:/fraud (its versions and aliases too).")
@click.option("--max", "max_results", default=100, show_default=True)
@json_option
@yard_option
@friendly_errors
def audit_command(  # noqa: PLR0917
    since: str | None,
    until: str | None,
    actor: str | None,
    action: str | None,
    target: str | None,
    max_results: int,
    as_json: bool,
) -> None:
    """Who changed what, when, from what to what (admins)."""
    from modelyard.store.rest.admin import server_admin

    found = server_admin().audit(
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        actor=actor,
        action=action,
        target=target,
        max_results=max_results,
    )
    if as_json:
        emit_json(found)
        return
    emit_table(
        None,
        ["when (UTC)", "who", "action", "target", "detail"],
        [[_ms(e["at"]), e["actor"], e["action"], e["target"], _detail(e["detail"])] for e in found],
    )


def _when(text: str | None, flag: str) -> int | None:
    if not text:
        return None
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO date or time", param_hint=flag) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(moment.timestamp() * 1000)


def _ms(value: int | None) -> str:
    if value is None:
        return ""
    return _dt.datetime.fromtimestamp(value / 1000, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _detail(detail: dict[str, Any]) -> str:
    if "from" in detail or "to" in detail:
        rest = {k: v for k, v in detail.items() if k not in ("from", "to")}
        head = f"{detail.get('from')} -> {detail.get('to')}"
        return head + (f" {rest}" if rest else "")
    return ", ".join(f"{k}={v}" for k, v in detail.items())
