"""Administering a yard server: users, tokens, grants, protected aliases, the audit log.

What a ``MetadataStore`` has no words for, over the same HTTP session:

>>> admin = server_admin()                              # doctest: +SKIP
>>> token = admin.create_token("ci", name="nightly")    # doctest: +SKIP
>>> admin.grant("model", "fraud", "ci", "edit")         # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Literal

from modelyard.errors import YardError
from modelyard.store.rest._http import HttpSession, seg

__all__ = ["ServerAdmin", "server_admin"]

Kind = Literal["model", "experiment"]


def server_admin(yard: Any = None) -> ServerAdmin:
    """The admin client of the yard in use (it must be a ``modelyard server``)."""
    from modelyard.store.rest.metadata import RestMetadataStore
    from modelyard.yard import get_yard

    yard = yard or get_yard()
    # Asked before opening: a folder that is no yard yet is still no server.
    store = yard.reader() if yard.spec.scheme in ("http", "https") else None
    if not isinstance(store, RestMetadataStore):
        raise YardError(
            f"the yard in use ({yard.uri}) is not a modelyard server: users, tokens, "
            "permissions and the audit log live on one; set MODELYARD_URI=http://host:port "
            "(and MODELYARD_TOKEN)"
        )
    return ServerAdmin(store.session)


class ServerAdmin:
    """Calls for a server's access tables (most need an admin's token)."""

    def __init__(self, session: HttpSession) -> None:
        self.session = session

    def whoami(self) -> dict[str, Any]:
        """The caller: name, role, token id."""
        return dict(self.session.api("GET", "/whoami"))

    # -- users ---------------------------------------------------------------------------

    def create_user(self, name: str, role: str) -> dict[str, Any]:
        """A new user with ``role`` (reader, writer or admin)."""
        return dict(self.session.api("POST", "/users", json={"name": name, "role": role}))

    def list_users(self) -> list[dict[str, Any]]:
        """Every user."""
        return list(self.session.api("GET", "/users")["users"])

    def update_user(
        self, name: str, *, role: str | None = None, disabled: bool | None = None
    ) -> dict[str, Any]:
        """Change a user's role or disable them."""
        body = {"role": role, "disabled": disabled}
        return dict(self.session.api("PATCH", f"/users/{seg(name)}", json=body))

    # -- tokens --------------------------------------------------------------------------

    def create_token(
        self, user: str, *, name: str | None = None, expires_in_days: int | None = None
    ) -> dict[str, Any]:
        """A new token for ``user``: ``{"token": <secret, shown once>, "info": {...}}``."""
        body = {"user": user, "name": name, "expires_in_days": expires_in_days}
        return dict(self.session.api("POST", "/tokens", json=body))

    def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        """Tokens (an admin sees everyone's)."""
        return list(self.session.api("GET", "/tokens", params={"user": user})["tokens"])

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token: it is refused from the next request on, by every server."""
        self.session.api("DELETE", f"/tokens/{seg(token_id)}")

    # -- grants --------------------------------------------------------------------------

    def _grants_path(self, kind: Kind, resource: str) -> str:
        base = "/models" if kind == "model" else "/experiments"
        return f"{base}/{seg(resource)}/grants"

    def grant(self, kind: Kind, resource: str, user: str, permission: str) -> None:
        """Give ``user`` ``permission`` (none, read, edit, manage) on a model or experiment."""
        self.session.api(
            "PUT",
            f"{self._grants_path(kind, resource)}/{seg(user)}",
            json={"permission": permission},
        )

    def revoke(self, kind: Kind, resource: str, user: str) -> None:
        """Remove ``user``'s grant (they fall back to their role's default)."""
        self.session.api("DELETE", f"{self._grants_path(kind, resource)}/{seg(user)}")

    def grants(
        self, kind: Kind | None = None, resource: str | None = None, user: str | None = None
    ) -> list[dict[str, Any]]:
        """Grants on a resource, or every grant of a user (yours by default)."""
        if kind is not None and resource is not None:
            found = self.session.api("GET", self._grants_path(kind, resource))["grants"]
            return [g for g in found if user is None or g["user"] == user]
        return list(self.session.api("GET", "/grants", params={"user": user})["grants"])

    # -- protected aliases -------------------------------------------------------------------

    def protect_alias(self, model: str, alias: str, protect: bool = True) -> None:
        """Make ``alias`` movable only with ``manage`` (or lift that)."""
        self.session.api(
            "PUT" if protect else "DELETE", f"/models/{seg(model)}/protected-aliases/{seg(alias)}"
        )

    # -- audit ---------------------------------------------------------------------------

    def audit(
        self,
        *,
        since: int | None = None,
        until: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        max_results: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit events, newest first (times in ms since the epoch)."""
        out: list[dict[str, Any]] = []
        token = None
        while len(out) < max_results:
            params = {
                "since": since,
                "until": until,
                "actor": actor,
                "action": action,
                "target": target,
                "max_results": min(max_results - len(out), 1000),
                "page_token": token,
            }
            page = self.session.api("GET", "/audit", params=params)
            out += page["events"]
            token = page.get("next_page_token")
            if not token:
                break
        return out
