"""``modelyard env show URI`` and ``modelyard env create URI``."""

from __future__ import annotations

import click

from modelyard.cli._output import emit_json, friendly_errors, json_option


@click.group("env")
def env_group() -> None:
    """A model's environment: requirements, how this one compares, an isolated copy."""


@env_group.command("show")
@click.argument("uri")
@json_option
@friendly_errors
def env_show(uri: str, as_json: bool) -> None:
    """Print the model's requirements and the mismatch report against this environment."""
    from modelyard.format.environment import read_requirements
    from modelyard.format.mlmodel import MLmodel
    from modelyard.loading.check import check
    from modelyard.loading.fetch import fetch
    from modelyard.loading.resolve import resolve

    local = fetch(resolve(uri))
    report = check(local.path, MLmodel.read(local.path))
    reqs = read_requirements(local.path)
    if as_json:
        emit_json({"requirements": reqs, "report": report.to_dict()})
        return
    click.echo("requirements:\n" + "".join(f"  {r}\n" for r in reqs))
    click.echo(report.summary())


@env_group.command("create")
@click.argument("uri")
@click.option("--rebuild", is_flag=True, help="Build again even if cached.")
@json_option
@friendly_errors
def env_create(uri: str, rebuild: bool, as_json: bool) -> None:
    """Build the model's isolated environment with uv (once; cached) and print where.

    `modelyard predict --env uv` and `modelyard.spark.udf(..., env="uv")` use it.
    """
    from modelyard.isolation.envs import ensure_env
    from modelyard.loading.fetch import fetch
    from modelyard.loading.resolve import resolve

    local = fetch(resolve(uri))
    env = ensure_env(local.path, rebuild=rebuild)
    facts = {
        "path": str(env.path),
        "python": str(env.python),
        "python_version": env.spec.python,
        "requirements": list(env.spec.requirements),
        "built": env.built,
        "seconds": round(env.seconds, 2),
    }
    if as_json:
        emit_json(facts)
        return
    how = f"built in {env.seconds:.1f} s" if env.built else "cached"
    click.echo(f"{env.path}  ({how}; python {env.spec.python})")
