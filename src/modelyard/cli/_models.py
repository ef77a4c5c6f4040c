"""``modelyard models list|show|versions`` and ``modelyard alias set|delete|history``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from modelyard.cli._output import emit_json, emit_table, friendly_errors, json_option
from modelyard.cli._yard import aliases, short, source, table, when, yard_option

if TYPE_CHECKING:
    from modelyard.store.entities import ModelVersion


@click.group("models")
def models_group() -> None:
    """Registered models and their versions."""


@models_group.command("list")
@click.option(
    "--filter", "filter_string", help="e.g. \"name LIKE 'fraud%' AND tags.team = 'risk'\""
)
@click.option("--max", "max_results", default=100, show_default=True, help="At most this many.")
@json_option
@yard_option
@friendly_errors
def models_list(filter_string: str | None, max_results: int, as_json: bool) -> None:
    """List registered models: latest version, aliases, last change."""
    from modelyard.registry import search_registered_models

    found = search_registered_models(filter_string, max_results=max_results)
    if as_json:
        emit_json([m.to_dict() for m in found])
        return
    table(
        ["name", "latest", "aliases", "updated (UTC)", "description"],
        [
            [m.name, m.latest_version, aliases(m.aliases), when(m.updated_at), m.description]
            for m in found
        ],
    )


@models_group.command("show")
@click.argument("name")
@json_option
@yard_option
@friendly_errors
def models_show(name: str, as_json: bool) -> None:
    """Describe one registered model and its newest versions."""
    from modelyard.registry import get_registered_model, search_model_versions

    model = get_registered_model(name)
    versions = search_model_versions(f"name = '{_quote(name)}'", max_results=10)
    if as_json:
        emit_json({**model.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    emit_table(
        None,
        ["", ""],
        [
            ("name", model.name),
            ("description", model.description or ""),
            ("latest version", model.latest_version or "none"),
            ("aliases", aliases(model.aliases) or "none"),
            ("tags", ", ".join(f"{k}={v}" for k, v in model.tags.items()) or "none"),
            ("created (UTC)", when(model.created_at)),
            ("updated (UTC)", when(model.updated_at)),
        ],
    )
    _versions_table(versions)


@models_group.command("versions")
@click.argument("name")
@click.option("--max", "max_results", default=1000, show_default=True, help="At most this many.")
@json_option
@yard_option
@friendly_errors
def models_versions(name: str, max_results: int, as_json: bool) -> None:
    """List a model's versions, newest first."""
    from modelyard.registry import get_registered_model, search_model_versions

    get_registered_model(name)  # an unknown name is an error with suggestions, not an empty list
    versions = search_model_versions(f"name = '{_quote(name)}'", max_results=max_results)
    if as_json:
        emit_json([v.to_dict() for v in versions])
        return
    _versions_table(versions)


def _versions_table(versions: Sequence[ModelVersion]) -> None:
    table(
        ["version", "aliases", "digest", "source", "created (UTC)", "by", "description"],
        [
            [
                v.version,
                ", ".join(f"@{a}" for a in v.aliases),
                short(v.digest),
                source(v.source),
                when(v.created_at),
                v.created_by,
                v.description,
            ]
            for v in versions
        ],
    )


@click.group("alias")
def alias_group() -> None:
    """Point aliases (@champion, ...) at versions; see who moved them when."""


@alias_group.command("set")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=click.IntRange(min=1))
@json_option
@yard_option
@friendly_errors
def alias_set(name: str, alias: str, version: int, as_json: bool) -> None:
    """Point ALIAS of model NAME at VERSION (moving it if it exists)."""
    from modelyard.registry import get_alias_history, set_alias

    set_alias(name, alias, version)
    last = get_alias_history(name, alias)[-1]
    if as_json:
        emit_json(last.to_dict())
        return
    was = f" (was v{last.from_version})" if last.from_version else ""
    click.echo(f"models:/{name}@{alias} -> v{version}{was}")


@alias_group.command("delete")
@click.argument("name")
@click.argument("alias")
@yard_option
@friendly_errors
def alias_delete(name: str, alias: str) -> None:
    """Remove ALIAS from model NAME."""
    from modelyard.registry import delete_alias

    delete_alias(name, alias)
    click.echo(f"removed models:/{name}@{alias}")


@alias_group.command("history")
@click.argument("name")
@click.argument("alias")
@json_option
@yard_option
@friendly_errors
def alias_history(name: str, alias: str, as_json: bool) -> None:
    """Every move of ALIAS on NAME: when, from, to, by whom."""
    from modelyard.registry import get_alias_history

    changes = get_alias_history(name, alias)
    if as_json:
        emit_json([c.to_dict() for c in changes])
        return
    table(
        ["when (UTC)", "from", "to", "by"],
        [
            [
                when(c.changed_at),
                f"v{c.from_version}" if c.from_version else "-",
                f"v{c.to_version}" if c.to_version else "(removed)",
                c.changed_by,
            ]
            for c in changes
        ],
    )


@alias_group.command("protect")
@click.argument("name")
@click.argument("alias")
@click.option("--undo", is_flag=True, help="Stop protecting it.")
@yard_option
@friendly_errors
def alias_protect(name: str, alias: str, undo: bool) -> None:
    """Let only users with manage on NAME move or delete ALIAS (on a yard server)."""
    from modelyard.store.rest.admin import server_admin
    from modelyard.uri import validate_alias, validate_name

    server_admin().protect_alias(validate_name(name), validate_alias(alias), not undo)
    click.echo(f"models:/{name}@{alias} is {'no longer ' if undo else ''}protected")


def _quote(text: str) -> str:
    return text.replace("'", "''")
