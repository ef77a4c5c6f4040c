"""``modelyard import mlflow SOURCE``: copy an MLflow registry into the yard."""

from __future__ import annotations

import click

from modelyard.cli._output import emit_json, friendly_errors, json_option
from modelyard.cli._yard import yard_option


@click.group("import")
def import_group() -> None:
    """Bring models in from other registries."""


@import_group.command("mlflow")
@click.argument("source", metavar="SOURCE")
@click.option(
    "--models",
    "pattern",
    metavar="PATTERN",
    help="Only registered models whose name matches this glob (e.g. 'fraud-*').",
)
@click.option("-q", "--quiet", is_flag=True, help="No line per version while importing.")
@json_option
@yard_option
@friendly_errors
def import_mlflow_command(source: str, pattern: str | None, quiet: bool, as_json: bool) -> None:
    """Copy an MLflow registry into the yard: models, versions (numbers kept), aliases,
    tags, descriptions, the runs that produced them, and their files (hashed, stored once).

    SOURCE is an MLflow tracking URI: http(s)://host:5000 (a running server;
    MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD), sqlite:///mlflow.db,
    postgresql://… (read-only), or a ./mlruns folder. Running it again, or after it was
    interrupted, copies only what is missing. Exits 1 if anything was skipped (listed
    in the report with the reason).
    """
    from modelyard.store.mlflow import open_mlflow_source
    from modelyard.store.mlflow.importer import import_mlflow
    from modelyard.yard import get_yard

    yard = get_yard()
    reader = open_mlflow_source(source)
    try:

        def progress(line: str) -> None:
            if not quiet and not as_json:
                click.echo(line, err=True)

        report = import_mlflow(
            reader, yard.metadata, yard.artifacts, models=pattern, progress=progress
        )
    finally:
        reader.close()
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo("\n".join(report.lines()))
    if not report.ok:
        raise SystemExit(1)
