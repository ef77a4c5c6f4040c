"""``modelyard trust show|add|remove|scan``: the pickle allow-list and what a model holds."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from modelyard.cli._output import emit_json, emit_table, friendly_errors, json_option

F = TypeVar("F", bound=Callable[..., Any])


def load_trust_options(func: F) -> F:
    """``--trust GLOBAL`` (repeatable, or ``all``) and ``--verify``: ``load_model``'s own."""
    func = click.option(
        "--verify",
        type=click.Choice(["auto", "required", "off"]),
        default="auto",
        show_default=True,
        help="Signatures: auto verifies what is signed; required refuses a model "
        "no trusted key signed; off skips the check.",
    )(func)
    return click.option(
        "--trust",
        "trust_entries",
        multiple=True,
        metavar="GLOBAL",
        help="Also allow this pickle global, e.g. mypkg.MyModel (repeatable); "
        "'all' turns the allow-list off.",
    )(func)


def trust_input(entries: tuple[str, ...]) -> str | tuple[str, ...] | None:
    """What ``--trust`` values mean as ``load_model(trust=)``; names are checked here."""
    from modelyard.errors import ConfigError
    from modelyard.trust.allowlist import parse_entry

    if "all" in entries:
        if len(entries) > 1:
            raise click.BadParameter(
                "'all' already allows every global: give it alone", param_hint="--trust"
            )
        return "all"
    for entry in entries:
        try:
            parse_entry(entry)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--trust") from None
    return entries or None


@click.group("trust")
def trust_group() -> None:
    """The pickle allow-list: show it, extend it for this machine, scan a model against it."""


@trust_group.command("show")
@json_option
@friendly_errors
def trust_show(as_json: bool) -> None:
    """Print the built-in allow-list (with its version) and this machine's entries."""
    from modelyard.trust.allowlist import builtin
    from modelyard.trust.policy import machine_entries, trust_file

    listed = builtin().describe()
    machine = list(machine_entries())
    if as_json:
        emit_json({"builtin": listed, "machine": machine, "trust_file": str(trust_file())})
        return
    click.echo(f"built-in allow-list, version {listed['version']}")
    click.echo("  globals:\n" + "".join(f"    {g}\n" for g in listed["globals"]), nl=False)
    for rule in listed["classes"]:
        left_out = f" (except {', '.join(rule['except'])})" if rule["except"] else ""
        click.echo(f"  any class defined in {rule['package']}{left_out}")
    for kind in listed["kinds"]:
        click.echo(f"  any {kind['kind']} of {kind['package']}")
    click.echo(f"this machine ({trust_file()}):")
    click.echo("".join(f"  {e}\n" for e in machine) or "  (no entries)\n", nl=False)


@trust_group.command("add")
@click.argument("names", nargs=-1, required=True)
@friendly_errors
def trust_add(names: tuple[str, ...]) -> None:
    """Trust globals on this machine: ``pkg.mod.Name``, ``pkg.mod:Outer.Inner`` or ``pkg.*``."""
    from modelyard.trust.policy import add_machine_entries, trust_file

    add_machine_entries(names)
    click.echo(f"trusted on this machine ({trust_file()}): {', '.join(names)}")


@trust_group.command("remove")
@click.argument("names", nargs=-1, required=True)
@friendly_errors
def trust_remove(names: tuple[str, ...]) -> None:
    """Stop trusting globals added with ``modelyard trust add``."""
    from modelyard.trust.policy import remove_machine_entries

    remove_machine_entries(names)
    click.echo(f"no longer trusted: {', '.join(names)}")


@trust_group.command("scan")
@click.argument("uri")
@click.option("--trust", "entries", multiple=True, help="Also allow this global (repeatable).")
@json_option
@friendly_errors
def trust_scan(uri: str, entries: tuple[str, ...], as_json: bool) -> None:
    """Scan every file of a model (path or URI) without loading it; exit 1 if any is refused."""
    from modelyard.loading.fetch import fetch
    from modelyard.loading.resolve import resolve
    from modelyard.trust.policy import policy_for
    from modelyard.trust.report import scan_model

    local = fetch(resolve(uri))
    verdicts = scan_model(local.path, policy_for(list(entries) or None))
    if as_json:
        emit_json([v.to_dict() for v in verdicts])
    else:
        emit_table(
            None,
            ["file", "format", "verdict", "why", "outside the allow-list"],
            [(v.path, v.format, v.verdict, v.reason, ", ".join(v.outside)) for v in verdicts],
        )
        if not verdicts:
            click.echo("no file holds executable content (no pickle, no TorchScript)")
    if any(v.verdict == "refused" for v in verdicts):
        sys.exit(1)
