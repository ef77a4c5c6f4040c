"""``load_model``: the loader pipeline, one module per step.

resolve → fetch → read → check → configure → load → wrap
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelyard.errors import CorruptModelFile, InvalidURI, MalformedMLmodel, ModelyardError
from modelyard.flavors import flavor_for_mlmodel
from modelyard.format.mlmodel import MLmodel
from modelyard.loading.check import EnvironmentReport, apply_policy, check
from modelyard.loading.configure import ConfigInput, merge_config
from modelyard.loading.fetch import Fetched, fetch
from modelyard.loading.resolve import ModelRef, resolve
from modelyard.model import Model
from modelyard.trust import policy as trust_policy
from modelyard.uri import validate_relative_path

if TYPE_CHECKING:
    from modelyard.trust.signing import SignatureStatus
    from modelyard.yard import Yard

__all__ = ["ModelRef", "check_environment", "load_model", "signature_status"]


def load_model(
    uri: str | os.PathLike[str],
    *,
    model_config: ConfigInput = None,
    env: str = "warn",
    yard: str | os.PathLike[str] | Yard | None = None,
    trust: trust_policy.TrustInput = None,
    verify: str = "auto",
) -> Model:
    """Load a model by URI or path and wrap it in :class:`Model`.

    ``model_config`` (a dict or a YAML file path) overrides the saved config;
    a key the model does not declare is an error. ``env`` decides what a
    mismatch between the model's environment and this one does: ``"warn"``
    logs one warning, ``"strict"`` raises :class:`EnvironmentMismatch`,
    ``"ignore"`` does nothing. The report is on ``Model.environment``. ``yard`` (a yard
    URI or :class:`Yard`, e.g. ``"mlflow+sqlite:///mlflow.db"``) is where ``models:/`` and
    ``runs:/`` references are looked up, instead of the yard in use.

    Nothing in a pickle is unpickled unless the trust policy admits it
    (:mod:`modelyard.trust`): every global must be on the allow-list, the
    machine's trust file or ``trust`` (names such as ``"mypkg.MyModel"``, or
    ``"all"`` to turn the list off), or the model must be signed by a key
    you trust. A refusal raises :class:`UntrustedModel` naming each global.

    ``verify`` decides what signatures do: ``"auto"`` verifies what is signed
    (a broken or revoked signature raises), ``"required"`` refuses a model
    not signed by a trusted key, ``"off"`` skips the check. An ``@alias``'s
    signed move record is checked the same way, and one older than this machine
    has seen is refused (:class:`RollbackRefused`). The outcome is on ``Model.trust``.

    >>> model = load_model("./iris-model")  # doctest: +SKIP
    >>> model.predict(df)                    # doctest: +SKIP
    """
    ref = resolve(uri, in_yard=yard, verify=verify)
    local = fetch(ref)
    mlmodel = MLmodel.read(local.path)
    report = check(local.path, mlmodel)
    apply_policy(report, env, uri=ref.uri)
    flavor = flavor_for_mlmodel(mlmodel)
    config = merge_config(mlmodel, model_config, flavor.config_keys)
    signed = signature_status(local, verify=verify)
    policy = trust_policy.policy_for(trust, vouched_by=signed.vouched_by)
    _add_code_dir(local.path, mlmodel)
    try:
        with trust_policy.using(policy):
            native = flavor.load(local.path, mlmodel, config)
        predictor = flavor.predictor(native, mlmodel, config)
    except ModelyardError:
        raise
    except Exception as exc:
        raise CorruptModelFile(local.path, flavor.name, f"{type(exc).__name__}: {exc}") from exc
    return Model(
        mlmodel=mlmodel,
        native=native,
        predictor=predictor,
        flavor=flavor.name,
        path=local.path,
        digest=local.digest,
        model_config=config,
        environment=report,
        ref=ref,
        trust=trust_policy.LoadTrust.of(policy, signed, alias=ref.alias_check),
    )


def signature_status(local: Fetched, *, verify: str = "auto") -> SignatureStatus:
    """The signature check of a fetched model: its ``MANIFEST.sig`` and the yard's.

    >>> signature_status(fetch(resolve("./iris-model"))).state  # doctest: +SKIP
    'verified'
    """
    from modelyard.loading.fetch import kept_signature
    from modelyard.trust.signing import check_signature

    kept = kept_signature(local.digest)
    envelopes = [kept] if kept is not None else []
    return check_signature(local.path, local.digest, verify=verify, envelopes=envelopes)  # type: ignore[arg-type]


def check_environment(uri: str | os.PathLike[str]) -> EnvironmentReport:
    """The environment report for a model, without loading it.

    >>> check_environment("./iris-model").ok  # doctest: +SKIP
    True
    """
    ref = resolve(uri)
    local = fetch(ref)
    return check(local.path, MLmodel.read(local.path))


def _add_code_dir(path: Any, mlmodel: MLmodel) -> None:
    # Code shipped with the model must be importable while unpickling and later
    # at predict time, so it stays on sys.path (as MLflow does); added once.
    code = mlmodel.pyfunc.get("code")
    for conf in mlmodel.flavors.values():
        code = code or (conf.get("code") if isinstance(conf, Mapping) else None)
    if code:
        try:
            rel = validate_relative_path(str(code), "code directory")
        except InvalidURI as exc:
            # MLmodel is input we did not write: never put a path outside the model on sys.path
            raise MalformedMLmodel(path, exc.reason, field="flavors.python_function.code") from None
        entry = str(path / rel)
        if entry not in sys.path:
            sys.path.insert(0, entry)
