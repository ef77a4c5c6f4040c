"""``modelyard serve URI [URI ...]``: the scoring server."""

from __future__ import annotations

import click

from modelyard.cli._output import friendly_errors, setup_logging
from modelyard.cli._trust import load_trust_options, trust_input


@click.command()
@click.argument("uris", nargs=-1, required=True, metavar="[NAME=]URI...")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    "-p",
    default=5000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 picks a free one and logs it).",
)
@click.option(
    "--workers",
    "-w",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; they share one loaded copy of each model.",
)
@click.option(
    "--timeout",
    "-t",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a prediction may take before the caller gets a 504.",
)
@click.option(
    "--model-config",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML file of model_config overrides, applied to every model.",
)
@click.option(
    "--poll-interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between registry checks for aliases and /latest (0: never follow).",
)
@click.option(
    "--max-batch-size",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Micro-batching: combine concurrent requests into predicts of up to N rows (1: off).",
)
@click.option(
    "--max-batch-wait-ms",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Micro-batching: wait at most this long for requests already arriving.",
)
@click.option(
    "--max-body-size",
    default=100.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest request body in MB; larger ones get a 413.",
)
@click.option("--default", "default", help="Name of the model served at /invocations.")
@click.option(
    "--env-check",
    "env",
    type=click.Choice(["warn", "strict", "ignore"]),
    default="warn",
    show_default=True,
    help="What a mismatch with the model's environment does.",
)
@click.option(
    "--env",
    "env_manager",
    type=click.Choice(["local", "uv"]),
    default="local",
    show_default=True,
    help="local: this environment; uv: each model in one built from its own requirements.",
)
@click.option("--no-access-log", is_flag=True, help="Do not write one line per request.")
@load_trust_options
@friendly_errors
def serve(  # noqa: PLR0917 - click passes every option positionally by name
    uris: tuple[str, ...],
    host: str,
    port: int,
    workers: int,
    timeout: float,
    model_config: str | None,
    poll_interval: float,
    max_batch_size: int,
    max_batch_wait_ms: float,
    max_body_size: float,
    default: str | None,
    env: str,
    env_manager: str,
    no_access_log: bool,
    trust_entries: tuple[str, ...],
    verify: str,
) -> None:
    """Serve models over HTTP: MLflow's /invocations and Open Inference Protocol v2.

    Several models are served side by side under their names (NAME=URI to pick
    one); the first, or --default, answers /invocations. models:/NAME@ALIAS and
    models:/NAME/latest are followed: a new version is loaded in the background
    and swapped in without dropping a request. A version the trust policy refuses
    (--verify required and no trusted signature, a pickle global outside the
    allow-list and --trust) is never loaded: at start the server does not start,
    later the old version keeps serving and /health says why.

    \b
      modelyard serve models:/iris@champion
      curl -H 'Content-Type: application/json' localhost:5000/invocations \\
        -d '{"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, 2.0]]}}'
    """
    from modelyard.serving.app import AppSettings
    from modelyard.serving.server import ServeOptions
    from modelyard.serving.server import serve as run

    setup_logging()
    settings = AppSettings(
        timeout=timeout,
        max_body_bytes=int(max_body_size * 1024 * 1024),
        max_batch_size=max_batch_size,
        max_batch_wait_s=max_batch_wait_ms / 1000.0,
        poll_interval=poll_interval,
    )
    options = ServeOptions(
        host=host,
        port=port,
        workers=workers,
        default=default,
        model_config=model_config,
        env=env,
        env_manager=env_manager,
        access_log=not no_access_log,
        trust=trust_input(trust_entries),
        verify=verify,
        settings=settings,
    )
    try:
        run(list(uris), options)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
