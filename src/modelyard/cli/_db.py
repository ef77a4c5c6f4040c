"""``modelyard db upgrade|status``: the yard's database schema."""

from __future__ import annotations

import click

from modelyard.cli._output import emit_json, emit_table, friendly_errors, json_option
from modelyard.cli._yard import yard_option


@click.group("db")
def db_group() -> None:
    """The yard's database: where it is, its schema revision, upgrades."""


@db_group.command("upgrade")
@json_option
@yard_option
@friendly_errors
def db_upgrade(as_json: bool) -> None:
    """Migrate the yard's database to this modelyard's schema (creating it if needed).

    Opening a yard upgrades it too; this does it explicitly, e.g. before a
    deployment, without touching any model.
    """
    from modelyard.yard import get_yard

    yard = get_yard()
    yard.close()  # reopen: what this command reports is what opening did now
    store = yard.metadata  # opening creates the database or upgrades an older schema
    upgraded = getattr(store, "last_upgrade", None)
    current = store.schema_revision()
    start, end = upgraded if upgraded else (current, current)
    if as_json:
        emit_json({"yard": yard.uri, "from": start, "to": end})
        return
    if start == end:
        click.echo(f"{yard.uri}: schema already at {end}")
    else:
        click.echo(f"{yard.uri}: schema upgraded from {start or 'nothing'} to {end}")


@db_group.command("status")
@json_option
@yard_option
@friendly_errors
def db_status(as_json: bool) -> None:
    """Where the yard is (database, blobs, cache) and its schema revision."""
    from modelyard.yard import get_yard

    yard = get_yard()
    facts = {**yard.describe(), "schema": yard.reader().schema_revision() or ""}
    if as_json:
        emit_json(facts)
        return
    emit_table(None, ["", ""], list(facts.items()))
