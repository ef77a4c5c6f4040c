"""The yard's signing policy over HTTP: who must sign, and whose keys the yard accepts.

Anyone signed in may read the policy (a publisher needs to know whose key
counts); only an admin changes the yard-wide part; whoever has ``manage`` on a
model makes it require signatures or lifts that (the yard-wide rule still
holds). The check itself runs in the store, on every path into the registry.
"""

from __future__ import annotations

from typing import Any

import msgspec

from modelyard.server._routing import ApiRoute, Call
from modelyard.server.access import SIGNED_IN, on_model, role
from modelyard.server.errors import ApiError
from modelyard.store.rest import wire
from modelyard.store.rest.wire import Out, Strict

__all__ = ["ROUTES"]

P = wire.API_PREFIX


class KeyIO(Strict, kw_only=True):
    label: str
    public_key: str
    key_id: str | None = None


class PolicyIn(Strict, kw_only=True):
    require: bool = False
    keys: list[KeyIO] = []
    revoked: list[str] = []
    threshold: int = 1


class KeyOut(Out, kw_only=True):
    label: str
    key_id: str
    public_key: str


class PolicyOut(Out, kw_only=True):
    require: bool
    keys: list[KeyOut]
    revoked: list[str]
    threshold: int
    #: the registered models that require signatures on their own
    models: list[str]


class Changed(Out, kw_only=True):
    changed: bool


def _out(policy: Any) -> PolicyOut:
    doc = policy.to_document()
    return PolicyOut(
        require=doc["require"],
        keys=[KeyOut(**k) for k in doc["keys"]],
        revoked=doc["revoked"],
        threshold=doc["threshold"],
        models=list(policy.models),
    )


def get_policy(call: Call) -> PolicyOut:
    """The yard's signing policy."""
    return _out(call.state.metadata.get_signing_policy())


def set_policy(call: Call) -> PolicyOut:
    """Replace the yard-wide part of the policy (admins)."""
    from modelyard.errors import SignatureError
    from modelyard.trust.admission import SigningPolicy

    doc = {**msgspec.to_builtins(call.body), "version": 1}
    try:
        policy = SigningPolicy.from_document(doc, source="the policy sent")
    except SignatureError as exc:
        raise ApiError(400, "invalid_value", str(exc)) from None
    stored = call.state.metadata.set_signing_policy(policy)
    call.audit("signing.set", "yard", require=stored.require, keys=sorted(stored.trust.keys))
    return _out(stored)


def require_model(call: Call) -> Changed:
    """Make versions of a model require signatures."""
    return _model_rule(call, required=True)


def lift_model(call: Call) -> Changed:
    """Stop requiring signatures on a model (a yard-wide rule still holds)."""
    return _model_rule(call, required=False)


def _model_rule(call: Call, *, required: bool) -> Changed:
    name = call.path["name"]
    changed = call.state.metadata.require_model_signatures(name, required)
    if changed:
        call.audit("signing.require" if required else "signing.lift", f"models:/{name}")
    return Changed(changed=changed)


ROUTES = [
    ApiRoute(P + "/signing", get_policy, method="GET", access=SIGNED_IN, response=PolicyOut),
    ApiRoute(
        P + "/signing",
        set_policy,
        method="PUT",
        access=role("admin"),
        body=PolicyIn,
        response=PolicyOut,
    ),
    ApiRoute(
        P + "/models/{name}/signing",
        require_model,
        method="PUT",
        access=on_model("manage"),
        response=Changed,
    ),
    ApiRoute(
        P + "/models/{name}/signing",
        lift_model,
        method="DELETE",
        access=on_model("manage"),
        response=Changed,
    ),
]
