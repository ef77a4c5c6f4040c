"""``modelyard runs list``: the runs of an experiment, filtered and ordered."""

from __future__ import annotations

import click

from modelyard.cli._output import emit_json, friendly_errors, json_option
from modelyard.cli._yard import pairs, table, when, yard_option


@click.group("runs")
def runs_group() -> None:
    """Training runs: params, metrics, tags, files."""


@runs_group.command("list")
@click.option("-e", "--experiment", multiple=True, help="Only this experiment (repeatable).")
@click.option("--filter", "filter_string", help="e.g. \"metrics.auc > 0.9 AND params.C = '1'\"")
@click.option("--order-by", multiple=True, help="e.g. 'metrics.auc DESC' (repeatable).")
@click.option("--max", "max_results", default=50, show_default=True, help="At most this many.")
@json_option
@yard_option
@friendly_errors
def runs_list(
    experiment: tuple[str, ...],
    filter_string: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    as_json: bool,
) -> None:
    """List runs, newest first unless --order-by says otherwise."""
    from modelyard.tracking import search_runs

    found = search_runs(
        list(experiment) or None,
        filter_string,
        order_by=list(order_by),
        max_results=max_results,
    )
    if as_json:
        emit_json([r.to_dict() for r in found])
        return
    table(
        ["run id", "experiment", "name", "status", "started (UTC)", "params", "metrics"],
        [
            [
                r.run_id,
                r.experiment,
                r.name,
                r.status,
                when(r.start_time),
                pairs(r.params),
                pairs(r.metrics),
            ]
            for r in found
        ],
    )
