"""Who may do what in a shared yard: roles, permissions, users, tokens, grants, audit.

A yard served by ``modelyard server`` has users; each has a **role** and any
number of **tokens** (only their hashes are stored). A role gives every
registered model and experiment a default **permission**; a **grant** on one
model or experiment replaces that default for one user, narrowing it
(``none`` hides the resource) or widening it:

=========  ====================  =====================  =====================
role       registered models     experiments and runs   also
=========  ====================  =====================  =====================
reader     read                  read
writer     read                  edit                   create models and
                                                        experiments (and get
                                                        ``manage`` on them)
admin      manage (grants are    manage                 users, tokens, grants,
           ignored)                                     the audit log
=========  ====================  =====================  =====================

Permissions are ordered: ``none`` < ``read`` < ``edit`` < ``manage``.
``read`` loads, lists and searches; ``edit`` registers versions, sets tags,
descriptions and unprotected aliases; ``manage`` also deletes, moves
protected aliases and grants permissions on the resource.

These values are shared by the SQL implementation
(:mod:`modelyard.store.sql.auth`), the server and its client.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "AuditEvent",
    "Grant",
    "Permission",
    "Principal",
    "Role",
    "TokenInfo",
    "User",
    "at_least",
    "check_permission",
    "check_role",
    "default_permission",
]

Role = Literal["reader", "writer", "admin"]
Permission = Literal["none", "read", "edit", "manage"]
ResourceKind = Literal["model", "experiment"]

ROLES: tuple[Role, ...] = ("reader", "writer", "admin")
PERMISSIONS: tuple[Permission, ...] = ("none", "read", "edit", "manage")
_RANK = {p: i for i, p in enumerate(PERMISSIONS)}

_DEFAULTS: dict[tuple[str, str], Permission] = {
    ("reader", "model"): "read",
    ("reader", "experiment"): "read",
    ("writer", "model"): "read",
    ("writer", "experiment"): "edit",
    ("admin", "model"): "manage",
    ("admin", "experiment"): "manage",
}


def check_role(value: str) -> Role:
    """``value`` as a role; :class:`ValueError` naming the roles otherwise."""
    if value not in ROLES:
        raise ValueError(f"unknown role {value!r}; use one of {', '.join(ROLES)}")
    return value


def check_permission(value: str) -> Permission:
    """``value`` as a permission; :class:`ValueError` naming the permissions otherwise."""
    if value not in PERMISSIONS:
        raise ValueError(f"unknown permission {value!r}; use one of {', '.join(PERMISSIONS)}")
    return value


def at_least(have: Permission, need: Permission) -> bool:
    """Whether ``have`` allows what ``need`` does."""
    return _RANK[have] >= _RANK[need]


def default_permission(role: Role, kind: ResourceKind) -> Permission:
    """What ``role`` may do on a model or experiment without a grant."""
    return _DEFAULTS[(role, kind)]


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a user, through one of their tokens."""

    user_id: int
    name: str
    role: Role
    token_id: str

    @property
    def is_admin(self) -> bool:
        """Admins bypass grants."""
        return self.role == "admin"

    def effective(self, kind: ResourceKind, grant: Permission | None) -> Permission:
        """The permission on one resource, given this user's grant on it (if any)."""
        if self.is_admin:
            return "manage"
        return grant if grant is not None else default_permission(self.role, kind)


@dataclass(frozen=True)
class User:
    """A user of a served yard."""

    user_id: int
    name: str
    role: Role
    disabled: bool
    created_at: _dt.datetime
    created_by: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "name": self.name,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the secret, which is shown once when it is made."""

    token_id: str
    user: str
    name: str | None
    created_at: _dt.datetime
    expires_at: _dt.datetime | None = None
    revoked_at: _dt.datetime | None = None
    last_used_at: _dt.datetime | None = None

    @property
    def active(self) -> bool:
        """Neither revoked nor expired."""
        now = _dt.datetime.now(_dt.timezone.utc)
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "token_id": self.token_id,
            "user": self.user,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "active": self.active,
        }


@dataclass(frozen=True)
class Grant:
    """One user's permission on one registered model or experiment."""

    kind: ResourceKind
    resource: str
    user: str
    permission: Permission

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "kind": self.kind,
            "resource": self.resource,
            "user": self.user,
            "permission": self.permission,
        }


@dataclass(frozen=True)
class AuditEvent:
    """One write through the server: who did what to which thing, and what changed."""

    event_id: int
    at: _dt.datetime
    actor: str | None
    action: str
    target: str
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    client: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "event_id": self.event_id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "detail": dict(self.detail),
            "request_id": self.request_id,
            "client": self.client,
        }


class AuditLog(Protocol):
    """Where the server records writes."""

    def record(
        self,
        actor: Principal | None,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        client: str | None = None,
    ) -> None:
        """Append one event."""
        ...
