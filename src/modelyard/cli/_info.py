"""``modelyard info URI``."""

from __future__ import annotations

import click

from modelyard.cli._output import emit_json, emit_table, friendly_errors, json_option


@click.command()
@click.argument("uri")
@json_option
@friendly_errors
def info(uri: str, as_json: bool) -> None:
    """Describe a model without loading it: flavor, digest, signature, environment."""
    from modelyard.flavors import flavor_for_mlmodel
    from modelyard.format.mlmodel import MLmodel
    from modelyard.loading.check import check
    from modelyard.loading.fetch import fetch
    from modelyard.loading.resolve import resolve

    ref = resolve(uri)
    local = fetch(ref)
    mlmodel = MLmodel.read(local.path)
    report = check(local.path, mlmodel)
    facts = {
        "uri": ref.uri,
        "path": str(local.path),
        "digest": local.digest,
        "flavor": flavor_for_mlmodel(mlmodel).name,
        "flavors": sorted(mlmodel.flavors),
        "model_uuid": mlmodel.model_uuid,
        "created": mlmodel.utc_time_created,
        "signature": dict(mlmodel.signature) if mlmodel.signature else None,
        "model_config": dict(mlmodel.model_config),
        "environment": report.to_dict(),
    }
    if as_json:
        emit_json(facts)
        return
    rows = [(k, v) for k, v in facts.items() if k not in ("signature", "environment")]
    rows.append(("environment", "ok" if report.ok else report.summary()))
    emit_table(None, ["", ""], rows)
