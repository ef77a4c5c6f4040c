"""``modelyard info URI``."""

from __future__ import annotations

from typing import Any

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
    signed, files = _trust(local)
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
        "signed_by": signed,
        "mlflow": _mlflow_loads(mlmodel),
        "files": files,
    }
    if as_json:
        emit_json(facts)
        return
    rows = [(k, v) for k, v in facts.items() if k not in ("signature", "environment", "files")]
    rows.append(("environment", "ok" if report.ok else report.summary()))
    for f in files:
        outside = f" (outside the allow-list: {', '.join(f['outside'])})" if f["outside"] else ""
        rows.append((f"file {f['path']}", f"{f['format']}: {f['verdict']}{outside}"))
    emit_table(None, ["", ""], rows)


def _trust(local: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The signature state and, file by file, the format and the scan's verdict."""
    from modelyard.loading import signature_status
    from modelyard.trust.policy import policy_for
    from modelyard.trust.report import scan_model

    status = signature_status(local)
    signed = {"state": status.state, "key_id": status.key_id, "signer": status.label}
    policy = policy_for(vouched_by=status.vouched_by)
    return signed, [v.to_dict() for v in scan_model(local.path, policy)]


def _mlflow_loads(mlmodel: Any) -> str:
    """Which loader ``mlflow.pyfunc`` would call: MLflow's own, or modelyard's (a format
    only modelyard reads, such as torch safetensors)."""
    loader = str(mlmodel.pyfunc.get("loader_module") or "")
    if not loader:
        return "no python_function flavor: mlflow.pyfunc cannot load it"
    if loader.split(".", maxsplit=1)[0] == "modelyard":
        return (
            f"modelyard's format: mlflow.pyfunc loads it only with modelyard installed "
            f"(loader_module {loader}); MLflow's own flavor loaders cannot"
        )
    return f"MLflow's own loader ({loader})"
