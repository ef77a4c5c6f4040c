"""``modelyard predict``: score a CSV / Parquet / JSON-lines file in constant memory."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

import click

from modelyard.cli._output import friendly_errors
from modelyard.cli._trust import load_trust_options, trust_input

_FORMATS = ("csv", "parquet", "jsonl")


@click.command()
@click.option("-m", "--model-uri", "model_uri", required=True, help="Model URI or path.")
@click.option("-i", "--input", "input_path", required=True, help="Input file, or - for stdin.")
@click.option("-o", "--output", "output_path", required=True, help="Output file, or - for stdout.")
@click.option(
    "--format",
    "input_format",
    type=click.Choice(_FORMATS),
    help="Input format (default: from the file extension).",
)
@click.option(
    "--output-format",
    type=click.Choice(_FORMATS),
    help="Output format (default: from the extension, else the input's).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=50_000, show_default=True)
@click.option("--keep-columns", default="", help="Input columns to copy to the output: a,b")
@click.option("--result-column", default="prediction", show_default=True)
@click.option("--params", "params_json", help="Inference params as a JSON object.")
@click.option(
    "--model-config",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file of model_config overrides.",
)
@click.option(
    "--on-error",
    type=click.Choice(["stop", "skip"]),
    default="stop",
    show_default=True,
    help="stop: fail on the first bad batch, write nothing; skip: log bad rows, go on.",
)
@click.option("--errors-file", help="Where --on-error skip logs failed rows (JSON lines).")
@click.option(
    "--env",
    type=click.Choice(["local", "uv"]),
    default="local",
    show_default=True,
    help="local: this environment; uv: an environment built from the model's requirements.",
)
@click.option("--progress/--no-progress", default=None, help="Default: on a terminal only.")
@load_trust_options
@friendly_errors
def predict(  # noqa: PLR0917 - one parameter per option
    model_uri: str,
    input_path: str,
    output_path: str,
    input_format: str | None,
    output_format: str | None,
    batch_size: int,
    keep_columns: str,
    result_column: str,
    params_json: str | None,
    model_config: str | None,
    on_error: str,
    errors_file: str | None,
    env: str,
    progress: bool | None,
    trust_entries: tuple[str, ...],
    verify: str,
) -> None:
    """Score INPUT with a model and write OUTPUT, streaming in batches.

    \b
    modelyard predict -m ./iris-model -i in.parquet -o out.parquet --keep-columns id
    cat in.csv | modelyard predict -m models:/fraud@champion -i - -o - --format csv
    """
    from modelyard.batch.scoring import ScoreOptions, score_file

    options = ScoreOptions(
        batch_size=batch_size,
        keep_columns=tuple(c.strip() for c in keep_columns.split(",") if c.strip()),
        result_column=result_column,
        params=_parse_params(params_json),
        on_error=on_error,
        errors_path=errors_file,
    )
    trust = trust_input(trust_entries)
    with ExitStack() as stack:
        model: Any
        if env == "uv":
            from modelyard.isolation.isolated import IsolatedModel

            model = stack.enter_context(
                IsolatedModel.start(
                    model_uri, model_config=model_config, trust=trust, verify=verify
                )
            )
        else:
            from modelyard.loading import load_model

            model = load_model(model_uri, model_config=model_config, trust=trust, verify=verify)
        report = score_file(
            model,
            input_path,
            output_path,
            input_format=input_format,
            output_format=output_format,
            options=options,
            progress=progress,
        )
    where = "stdout" if output_path == "-" else output_path
    line = f"scored {report.rows_read:,} rows into {where} in {report.seconds:.1f} s"
    if report.errors_path is not None:
        line += f"; {report.rows_failed:,} failed rows in {report.errors_path}"
    click.echo(line, err=True)


def _parse_params(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--params") from exc
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--params")
    return value
