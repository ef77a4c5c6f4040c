"""Users, tokens, grants and the audit log; plus ``/health``, ``/version`` and ``whoami``.

Only an admin makes users and tokens (there is no sign-up); anyone may list
and revoke their own tokens. Grants on a model or experiment are managed by
whoever has ``manage`` on it. The audit log is for admins.
"""

from __future__ import annotations

from typing import Any

from modelyard._version import __version__
from modelyard.server._pages import page
from modelyard.server._routing import ApiRoute, Call
from modelyard.server.access import PUBLIC, SIGNED_IN, on_experiment, on_model, role
from modelyard.server.errors import ApiError
from modelyard.store.access import check_permission, check_role
from modelyard.store.entities import now_millis, to_millis
from modelyard.store.rest import wire
from modelyard.store.rest.wire import Out, Strict
from modelyard.store.sql.auth import NoSuchUser
from modelyard.uri import validate_name

__all__ = ["ROUTES"]

P = wire.API_PREFIX
_MAX_TOKEN_DAYS = 3650


class UserOut(Out, kw_only=True):
    name: str
    role: str
    disabled: bool
    created_at: int
    created_by: str | None = None


class Users(Out, kw_only=True):
    users: list[UserOut]


class CreateUser(Strict, kw_only=True):
    name: str
    role: str


class UpdateUser(Strict, kw_only=True):
    role: str | None = None
    disabled: bool | None = None


class TokenOut(Out, kw_only=True):
    token_id: str
    user: str
    name: str | None = None
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    active: bool


class NewToken(Out, kw_only=True):
    token: str
    info: TokenOut


class Tokens(Out, kw_only=True):
    tokens: list[TokenOut]


class CreateToken(Strict, kw_only=True):
    user: str
    name: str | None = None
    expires_in_days: int | None = None


class TokenQuery(Strict, kw_only=True):
    user: str | None = None


class SetGrant(Strict, kw_only=True):
    permission: str


class GrantOut(Out, kw_only=True):
    kind: str
    resource: str
    user: str
    permission: str


class Grants(Out, kw_only=True):
    grants: list[GrantOut]


class GrantQuery(Strict, kw_only=True):
    user: str | None = None


class AuditQuery(Strict, kw_only=True):
    since: int | None = None
    until: int | None = None
    actor: str | None = None
    action: str | None = None
    target: str | None = None
    max_results: int = 100
    page_token: str | None = None


class EventOut(Out, kw_only=True):
    event_id: int
    at: int
    actor: str | None = None
    action: str
    target: str
    detail: dict[str, Any] = {}
    request_id: str | None = None
    client: str | None = None


class Events(Out, kw_only=True):
    events: list[EventOut]
    next_page_token: str | None = None


class WhoAmI(Out, kw_only=True):
    name: str
    role: str
    token_id: str


class Health(Out, kw_only=True):
    status: str


class Version(Out, kw_only=True):
    version: str
    api: str
    schema: str


# -- meta ------------------------------------------------------------------------------


def health(call: Call) -> Health:
    """Liveness; needs no token (and touches no database)."""
    return Health(status="ok")


def version(call: Call) -> Version:
    """modelyard's version and the API's; needs no token."""
    from modelyard.store.sql.revision import SCHEMA_REVISION

    return Version(version=__version__, api="v1", schema=SCHEMA_REVISION)


def whoami(call: Call) -> WhoAmI:
    """Who the token belongs to."""
    return WhoAmI(name=call.user.name, role=call.user.role, token_id=call.user.token_id)


# -- users -------------------------------------------------------------------------------


def _user_out(u: Any) -> UserOut:
    return UserOut(
        name=u.name,
        role=u.role,
        disabled=u.disabled,
        created_at=to_millis(u.created_at),
        created_by=u.created_by,
    )


def create_user(call: Call) -> UserOut:
    """Make a user (admins only: there is no sign-up)."""
    body: CreateUser = call.body
    name = validate_name(body.name, "user name")
    made = call.state.auth.create_user(name, _role(body.role), created_by=call.user.name)
    call.audit("user.create", f"users/{name}", role=body.role)
    return _user_out(made)


def list_users(call: Call) -> Users:
    """Every user."""
    return Users(users=[_user_out(u) for u in call.state.auth.list_users()])


def update_user(call: Call) -> UserOut:
    """Change a user's role, or disable them (their tokens stop working at once)."""
    name = call.path["user"]
    body: UpdateUser = call.body
    auth = call.state.auth
    before = _known(lambda: auth.get_user(name), name)
    after = auth.update_user(
        name, role=_role(body.role) if body.role else None, disabled=body.disabled
    )
    call.audit(
        "user.update",
        f"users/{name}",
        **{
            "from": {"role": before.role, "disabled": before.disabled},
            "to": {"role": after.role, "disabled": after.disabled},
        },
    )
    return _user_out(after)


# -- tokens ------------------------------------------------------------------------------


def _token_out(t: Any) -> TokenOut:
    return TokenOut(
        token_id=t.token_id,
        user=t.user,
        name=t.name,
        created_at=to_millis(t.created_at),
        expires_at=to_millis(t.expires_at) if t.expires_at else None,
        revoked_at=to_millis(t.revoked_at) if t.revoked_at else None,
        last_used_at=to_millis(t.last_used_at) if t.last_used_at else None,
        active=t.active,
    )


def create_token(call: Call) -> NewToken:
    """A new token for a user; the secret is in this answer and nowhere else, ever."""
    body: CreateToken = call.body
    user = validate_name(body.user, "user name")
    expires = None
    if body.expires_in_days is not None:
        if not 1 <= body.expires_in_days <= _MAX_TOKEN_DAYS:
            raise ApiError(
                400,
                "invalid_value",
                f"expires_in_days must be 1..{_MAX_TOKEN_DAYS}",
                field="expires_in_days",
            )
        expires = now_millis() + body.expires_in_days * 86_400_000
    info, secret = _known(
        lambda: call.state.auth.create_token(user, name=body.name, expires_at_ms=expires), user
    )
    call.audit(
        "token.create", f"users/{user}/tokens/{info.token_id}", name=body.name, expires_at=expires
    )
    return NewToken(token=secret, info=_token_out(info))


def list_tokens(call: Call) -> Tokens:
    """Tokens: an admin's view is everyone's (or ``user``'s); others see their own."""
    q: TokenQuery = call.query or TokenQuery()
    user = q.user
    if not call.user.is_admin:
        if user is not None and user != call.user.name:
            raise ApiError(403, "permission_denied", "only admins list other users' tokens")
        user = call.user.name
    return Tokens(tokens=[_token_out(t) for t in call.state.auth.list_tokens(user)])


def revoke_token(call: Call) -> None:
    """Revoke a token (an admin any; others their own)."""
    token_id = call.path["token_id"]
    auth = call.state.auth
    found = auth.get_token(token_id)
    if found is None or (not call.user.is_admin and found.user != call.user.name):
        raise ApiError(404, "token_not_found", f"no token {token_id} of yours", field="token_id")
    if auth.revoke_token(token_id):
        call.audit("token.revoke", f"users/{found.user}/tokens/{token_id}")


# -- grants ------------------------------------------------------------------------------


def _grant_out(g: Any) -> GrantOut:
    return GrantOut(kind=g.kind, resource=g.resource, user=g.user, permission=g.permission)


def list_model_grants(call: Call) -> Grants:
    """Who has which grant on a model."""
    assert call.model_id is not None
    found = call.state.auth.list_grants(kind="model", resource_id=call.model_id, user=None)
    return Grants(grants=[_grant_out(g) for g in found])


def set_model_grant(call: Call) -> None:
    """Give a user a permission on a model (``none`` hides it from them)."""
    body: SetGrant = call.body
    name, user = call.path["name"], call.path["user"]
    assert call.model_id is not None
    old = _known(
        lambda: call.state.auth.set_grant(
            "model", call.model_id, user, _permission(body.permission)
        ),
        user,
    )
    call.audit("grant.set", f"models:/{name}", user=user, **{"from": old, "to": body.permission})


def delete_model_grant(call: Call) -> None:
    """Remove a user's grant on a model (they fall back to their role)."""
    name, user = call.path["name"], call.path["user"]
    assert call.model_id is not None
    old = _known(lambda: call.state.auth.delete_grant("model", call.model_id, user), user)
    if old is not None:
        call.audit("grant.delete", f"models:/{name}", user=user, **{"from": old, "to": None})


def _experiment_id(call: Call) -> int:
    experiment_id, _ = call.state.auth.experiment_access(call.user, name=call.path["experiment"])
    assert experiment_id is not None  # the access check found it
    return experiment_id


def list_experiment_grants(call: Call) -> Grants:
    """Who has which grant on an experiment."""
    found = call.state.auth.list_grants(
        kind="experiment", resource_id=_experiment_id(call), user=None
    )
    return Grants(grants=[_grant_out(g) for g in found])


def set_experiment_grant(call: Call) -> None:
    """Give a user a permission on an experiment and its runs."""
    body: SetGrant = call.body
    name, user = call.path["experiment"], call.path["user"]
    experiment_id = _experiment_id(call)
    old = _known(
        lambda: call.state.auth.set_grant(
            "experiment", experiment_id, user, _permission(body.permission)
        ),
        user,
    )
    call.audit(
        "grant.set", f"experiments/{name}", user=user, **{"from": old, "to": body.permission}
    )


def delete_experiment_grant(call: Call) -> None:
    """Remove a user's grant on an experiment."""
    name, user = call.path["experiment"], call.path["user"]
    experiment_id = _experiment_id(call)
    old = _known(lambda: call.state.auth.delete_grant("experiment", experiment_id, user), user)
    if old is not None:
        call.audit("grant.delete", f"experiments/{name}", user=user, **{"from": old, "to": None})


def list_user_grants(call: Call) -> Grants:
    """Every grant a user holds (admins; anyone for themselves)."""
    q: GrantQuery = call.query or GrantQuery()
    user = q.user or call.user.name
    if user != call.user.name and not call.user.is_admin:
        raise ApiError(403, "permission_denied", "only admins list other users' grants")
    return Grants(grants=[_grant_out(g) for g in call.state.auth.list_grants(user=user)])


# -- audit ---------------------------------------------------------------------------------


def audit(call: Call) -> Events:
    """The audit log, newest first: who did what to which thing, when, from -> to."""
    q: AuditQuery = call.query or AuditQuery()
    found, token = page(
        lambda limit, offset: call.state.auth.audit(
            since_ms=q.since,
            until_ms=q.until,
            actor=q.actor,
            action=q.action,
            target=q.target,
            max_results=limit,
            offset=offset,
        ),
        token=q.page_token,
        query=("audit", q.since, q.until, q.actor, q.action, q.target),
        requested=q.max_results,
        cap=call.state.settings.max_page["audit"],
    )
    events = [
        EventOut(
            event_id=e.event_id,
            at=to_millis(e.at),
            actor=e.actor,
            action=e.action,
            target=e.target,
            detail=e.detail,
            request_id=e.request_id,
            client=e.client,
        )
        for e in found
    ]
    return Events(events=events, next_page_token=token)


# -- helpers --------------------------------------------------------------------------------


def _role(value: str) -> str:
    try:
        return check_role(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_value", str(exc), field="role") from None


def _permission(value: str) -> Any:
    try:
        return check_permission(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_value", str(exc), field="permission") from None


def _known(fn: Any, user: str) -> Any:
    try:
        return fn()
    except NoSuchUser:
        raise ApiError(404, "user_not_found", f"no user {user!r}", field="user") from None


def _route(path: str, handler: Any, method: str, access: Any, **kw: Any) -> ApiRoute:
    return ApiRoute(path, handler, method=method, access=access, **kw)


MG = P + "/models/{name}/grants"
EG = P + "/experiments/{experiment}/grants"

ROUTES = [
    _route("/health", health, "GET", PUBLIC, response=Health),
    _route("/version", version, "GET", PUBLIC, response=Version),
    _route(P + "/whoami", whoami, "GET", SIGNED_IN, response=WhoAmI),
    _route(
        P + "/users",
        create_user,
        "POST",
        role("admin"),
        body=CreateUser,
        status=201,
        response=UserOut,
    ),
    _route(P + "/users", list_users, "GET", role("admin"), response=Users),
    _route(
        P + "/users/{user}", update_user, "PATCH", role("admin"), body=UpdateUser, response=UserOut
    ),
    _route(
        P + "/tokens",
        create_token,
        "POST",
        role("admin"),
        body=CreateToken,
        status=201,
        response=NewToken,
    ),
    _route(P + "/tokens", list_tokens, "GET", SIGNED_IN, query=TokenQuery, response=Tokens),
    _route(P + "/tokens/{token_id}", revoke_token, "DELETE", SIGNED_IN),
    _route(MG, list_model_grants, "GET", on_model("manage"), response=Grants),
    _route(MG + "/{user}", set_model_grant, "PUT", on_model("manage"), body=SetGrant),
    _route(MG + "/{user}", delete_model_grant, "DELETE", on_model("manage")),
    _route(
        EG, list_experiment_grants, "GET", on_experiment("manage", "experiment"), response=Grants
    ),
    _route(
        EG + "/{user}",
        set_experiment_grant,
        "PUT",
        on_experiment("manage", "experiment"),
        body=SetGrant,
    ),
    _route(
        EG + "/{user}", delete_experiment_grant, "DELETE", on_experiment("manage", "experiment")
    ),
    _route(P + "/grants", list_user_grants, "GET", SIGNED_IN, query=GrantQuery, response=Grants),
    _route(P + "/audit", audit, "GET", role("admin"), query=AuditQuery, response=Events),
]
