"""Users, tokens, grants, protected aliases, the audit log and idempotency keys, in SQL.

The tables live in the yard's own database (revision 0003), so every server
process in front of one database sees the same users and grants at once: a
revoked token is refused by every server on its next request. Nothing here is
cached between requests.

Tokens are 256-bit random strings; only their sha256 is stored (a token is
not a password: it is long and random, so a slow hash would only cost every
request time). Lookups go by that hash through a unique index.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from modelyard.errors import AlreadyExists, RegisteredModelNotFound, YardError
from modelyard.format.content import FileEntry
from modelyard.store.access import (
    AuditEvent,
    Grant,
    Permission,
    Principal,
    ResourceKind,
    Role,
    TokenInfo,
    User,
    check_permission,
    check_role,
)
from modelyard.store.entities import from_millis, now_millis
from modelyard.store.sql._sql import close_matches, insert_ignore, upsert
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import (
    audit_log,
    experiment_grants,
    experiments,
    idempotency_keys,
    logged_model_files,
    logged_models,
    model_grants,
    model_versions,
    protected_aliases,
    registered_models,
    run_artifacts,
    runs,
    tokens,
    users,
    version_files,
)

__all__ = [
    "TOKEN_PREFIX",
    "IdempotentReply",
    "NoSuchUser",
    "SqlAuthStore",
    "hash_token",
    "visible_experiment",
    "visible_model",
]

#: every token starts with this, so secret scanners (and people) recognise one
TOKEN_PREFIX = "myd_"
#: write the last-used time at most this often per token (a write per request would
#: make every read a write)
_LAST_USED_EVERY_MS = 60_000
#: a first attempt that has not answered within this time is taken as lost
IDEMPOTENCY_PENDING_MS = 120_000
#: answers are replayed for this long
IDEMPOTENCY_KEEP_MS = 24 * 3600 * 1000

_U = users.c
_T = tokens.c
_MG = model_grants.c
_EG = experiment_grants.c
_M = registered_models.c


class NoSuchUser(YardError, LookupError):
    """No user by that name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no user {name!r}")


def hash_token(secret: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(secret.encode()).hexdigest()


def visible_model(user_id: int, model_id: Any = _M.model_id) -> ColumnElement[bool]:
    """SQL: the model is not hidden from ``user_id`` by a ``none`` grant."""
    return ~sa.exists().where(
        _MG.model_id == model_id, _MG.user_id == user_id, _MG.permission == "none"
    )


def visible_experiment(user_id: int, experiment_id: Any) -> ColumnElement[bool]:
    """SQL: the experiment is not hidden from ``user_id`` by a ``none`` grant."""
    return ~sa.exists().where(
        _EG.experiment_id == experiment_id, _EG.user_id == user_id, _EG.permission == "none"
    )


@dataclass(frozen=True)
class IdempotentReply:
    """What the first attempt of a write answered (or that it is still running)."""

    pending: bool
    status: int | None = None
    response: str | None = None
    #: the key was used before for a different request
    mismatch: bool = False


class SqlAuthStore:
    """The server's access tables in a yard's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- users -------------------------------------------------------------------

    def has_users(self) -> bool:
        """Whether anyone can sign in yet."""
        with self.db.read() as conn:
            return conn.execute(sa.select(_U.user_id).limit(1)).first() is not None

    def create_user(self, name: str, role: str, *, created_by: str | None = None) -> User:
        """A new user; :class:`AlreadyExists` if the name is taken."""
        role = check_role(role)
        with self.db.write() as conn:
            row = {"name": name, "role": role, "created_at": now_millis(), "created_by": created_by}
            if not insert_ignore(conn, users, row, ["name"]):
                raise AlreadyExists("user", name)
            return _user(conn.execute(sa.select(users).where(_U.name == name)).one())

    def get_user(self, name: str) -> User:
        """One user; :class:`NoSuchUser` if there is none by that name."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(users).where(_U.name == name)).first()
        if row is None:
            raise NoSuchUser(name)
        return _user(row)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self.db.read() as conn:
            return [_user(r) for r in conn.execute(sa.select(users).order_by(_U.name))]

    def update_user(
        self, name: str, *, role: str | None = None, disabled: bool | None = None
    ) -> User:
        """Change a user's role or disable them (their tokens stop working at once)."""
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = check_role(role)
        if disabled is not None:
            values["disabled"] = disabled
        with self.db.write() as conn:
            if values:
                done = conn.execute(sa.update(users).where(_U.name == name).values(**values))
                if not done.rowcount:
                    raise NoSuchUser(name)
            row = conn.execute(sa.select(users).where(_U.name == name)).first()
        if row is None:
            raise NoSuchUser(name)
        return _user(row)

    # -- tokens ------------------------------------------------------------------

    def create_token(
        self, user: str, *, name: str | None = None, expires_at_ms: int | None = None
    ) -> tuple[TokenInfo, str]:
        """A new token for ``user``: its listing and the secret (shown this once)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = secrets.token_hex(6)
        now = now_millis()
        with self.db.write() as conn:
            user_id = conn.execute(sa.select(_U.user_id).where(_U.name == user)).scalar()
            if user_id is None:
                raise NoSuchUser(user)
            conn.execute(
                sa.insert(tokens).values(
                    token_id=token_id,
                    user_id=user_id,
                    name=name,
                    token_hash=hash_token(secret),
                    created_at=now,
                    expires_at=expires_at_ms,
                )
            )
        info = TokenInfo(token_id, user, name, _when(now), from_millis(expires_at_ms))
        return info, secret

    def list_tokens(self, user: str | None = None) -> list[TokenInfo]:
        """Tokens (of ``user``, or everyone's), newest first."""
        query = sa.select(tokens, _U.name.label("user_name")).join_from(
            tokens, users, _U.user_id == _T.user_id
        )
        if user is not None:
            query = query.where(_U.name == user)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(_T.created_at.desc(), _T.token_id))
            return [_token(r) for r in rows]

    def get_token(self, token_id: str) -> TokenInfo | None:
        """One token's listing, or ``None``."""
        query = (
            sa.select(tokens, _U.name.label("user_name"))
            .join_from(tokens, users, _U.user_id == _T.user_id)
            .where(_T.token_id == token_id)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        return _token(row) if row is not None else None

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token; whether it was active."""
        with self.db.write() as conn:
            done = conn.execute(
                sa.update(tokens)
                .where(_T.token_id == token_id, _T.revoked_at.is_(None))
                .values(revoked_at=now_millis())
            )
            return bool(done.rowcount)

    def authenticate(self, secret: str) -> Principal | None:
        """The principal a token belongs to, if it is active and its user is enabled."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        now = now_millis()
        query = (
            sa.select(_T.token_id, _T.expires_at, _T.revoked_at, _T.last_used_at, _U.user_id)
            .add_columns(_U.name, _U.role, _U.disabled)
            .join_from(tokens, users, _U.user_id == _T.user_id)
            .where(_T.token_hash == hash_token(secret))
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None or row.revoked_at is not None or row.disabled:
            return None
        if row.expires_at is not None and row.expires_at <= now:
            return None
        if row.last_used_at is None or now - row.last_used_at > _LAST_USED_EVERY_MS:
            with self.db.write() as conn:
                conn.execute(
                    sa.update(tokens).where(_T.token_id == row.token_id).values(last_used_at=now)
                )
        return Principal(int(row.user_id), row.name, check_role(row.role), row.token_id)

    # -- grants ------------------------------------------------------------------

    def model_access(self, principal: Principal, name: str) -> tuple[int | None, Permission]:
        """The model's id (``None`` if there is no such model) and what ``principal`` may do.

        One query. A model hidden by a ``none`` grant answers ``(id, "none")``.
        """
        return self._access(principal, "model", registered_models, _M.model_id, _M.name == name)

    def experiment_access(
        self, principal: Principal, *, name: str | None = None, experiment_id: int | None = None
    ) -> tuple[int | None, Permission]:
        """The experiment's id (``None`` if missing) and what ``principal`` may do on it."""
        e = experiments.c
        which = e.name == name if name is not None else e.experiment_id == experiment_id
        return self._access(principal, "experiment", experiments, e.experiment_id, which)

    def logged_model_access(
        self, principal: Principal, model_id: str
    ) -> tuple[int | None, Permission]:
        """The experiment id of a logged model (``None`` if missing) and what ``principal``
        may do on it: a logged model is its experiment's, like a run."""
        lm = logged_models.c
        return self._access(
            principal, "experiment", logged_models, lm.experiment_id, lm.model_id == model_id
        )

    def run_access(self, principal: Principal, run_id: str) -> tuple[bool, Permission]:
        """Whether the run exists, and what ``principal`` may do on it (its experiment's)."""
        r = runs.c
        found, permission = self._access(
            principal, "experiment", runs, r.experiment_id, r.run_id == run_id
        )
        return found is not None, permission

    def _access(
        self,
        principal: Principal,
        kind: ResourceKind,
        table: sa.Table,
        owner: Any,
        which: ColumnElement[bool],
    ) -> tuple[int | None, Permission]:
        # The row (a model, an experiment, or a run standing for its experiment) and
        # the caller's grant on its owner, in one query.
        grants, column = _grant_table(kind)
        query = (
            sa.select(owner, grants.c.permission)
            .select_from(table)
            .outerjoin(
                grants,
                sa.and_(grants.c[column] == owner, grants.c.user_id == principal.user_id),
            )
            .where(which)
        )
        with self.db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None, principal.effective(kind, None)
        grant = check_permission(row[1]) if row[1] is not None else None
        return int(row[0]), principal.effective(kind, grant)

    def set_grant(
        self, kind: ResourceKind, resource_id: int, user: str, permission: str
    ) -> Permission | None:
        """Give ``user`` ``permission`` on a model or experiment; the grant it replaced."""
        permission = check_permission(permission)
        table, column = _grant_table(kind)
        with self.db.write() as conn:
            user_id = self._user_id(conn, user)
            old = conn.execute(
                sa.select(table.c.permission).where(
                    table.c[column] == resource_id, table.c.user_id == user_id
                )
            ).scalar()
            upsert(
                conn,
                table,
                [{column: resource_id, "user_id": user_id, "permission": permission}],
                [column, "user_id"],
                ["permission"],
            )
        return check_permission(old) if old is not None else None

    def delete_grant(self, kind: ResourceKind, resource_id: int, user: str) -> Permission | None:
        """Remove ``user``'s grant (they fall back to their role); the grant removed."""
        table, column = _grant_table(kind)
        with self.db.write() as conn:
            user_id = self._user_id(conn, user)
            old = conn.execute(
                sa.delete(table)
                .where(table.c[column] == resource_id, table.c.user_id == user_id)
                .returning(table.c.permission)
            ).scalar()
        return check_permission(old) if old is not None else None

    def list_grants(
        self, *, kind: ResourceKind | None = None, resource_id: int | None = None, user: str | None
    ) -> list[Grant]:
        """Grants, filtered by resource and/or user."""
        out: list[Grant] = []
        kinds: Sequence[ResourceKind] = (kind,) if kind else ("model", "experiment")
        with self.db.read() as conn:
            for k in kinds:
                table, column = _grant_table(k)
                owner = registered_models if k == "model" else experiments
                query = (
                    sa.select(owner.c.name.label("resource"), _U.name.label("user"))
                    .add_columns(table.c.permission)
                    .select_from(table)
                    .join(owner, owner.c[column] == table.c[column])
                    .join(users, _U.user_id == table.c.user_id)
                )
                if resource_id is not None:
                    query = query.where(table.c[column] == resource_id)
                if user is not None:
                    query = query.where(_U.name == user)
                for r in conn.execute(query.order_by(owner.c.name, _U.name)):
                    out.append(Grant(k, r.resource, r.user, check_permission(r.permission)))
        return out

    def model_not_found(self, principal: Principal, name: str) -> RegisteredModelNotFound:
        """The not-found error for ``name``, suggesting only names ``principal`` may see."""
        query = sa.select(_M.name)
        if not principal.is_admin:
            query = query.where(visible_model(principal.user_id))
        with self.db.read() as conn:
            names = list(conn.execute(query).scalars())
        return RegisteredModelNotFound(name, suggestions=close_matches(name, names))

    def visible_names(self, principal: Principal, names: Iterable[str]) -> list[str]:
        """The registered-model ``names`` that ``principal`` may see (for suggestions)."""
        wanted = list(names)
        if principal.is_admin or not wanted:
            return wanted
        query = sa.select(_M.name).where(_M.name.in_(wanted), visible_model(principal.user_id))
        with self.db.read() as conn:
            seen = set(conn.execute(query).scalars())
        return [n for n in wanted if n in seen]

    # -- protected aliases ---------------------------------------------------------

    def is_protected(self, model_id: int, alias: str) -> bool:
        """Whether only ``manage`` may move or delete ``alias``."""
        p = protected_aliases.c
        with self.db.read() as conn:
            found = conn.execute(
                sa.select(p.alias).where(p.model_id == model_id, p.alias == alias)
            ).first()
        return found is not None

    def protect_alias(self, model_id: int, alias: str, protect: bool = True) -> bool:
        """Protect (or stop protecting) ``alias``; whether anything changed."""
        p = protected_aliases.c
        with self.db.write() as conn:
            if protect:
                return bool(
                    insert_ignore(
                        conn,
                        protected_aliases,
                        {"model_id": model_id, "alias": alias},
                        ["model_id", "alias"],
                    )
                )
            done = conn.execute(
                sa.delete(protected_aliases).where(p.model_id == model_id, p.alias == alias)
            )
            return bool(done.rowcount)

    # -- blobs -------------------------------------------------------------------

    def can_read_blob(self, principal: Principal, sha256: str) -> bool:
        """Whether a version, run or logged model that ``principal`` may read holds the blob.

        A blob no readable version, version manifest or run file names is refused
        (as if absent), whoever asks: knowing a hash is not a permission.
        """
        vf, mv, ra, r = version_files.c, model_versions.c, run_artifacts.c, runs.c
        as_file = sa.exists().where(vf.sha256 == sha256)
        as_manifest = sa.exists().where(mv.digest == "sha256:" + sha256)
        in_run = sa.exists().where(ra.sha256 == sha256, r.run_id == ra.run_id)
        lf, lm = logged_model_files.c, logged_models.c
        in_logged = sa.exists().where(lf.sha256 == sha256, lm.model_id == lf.model_id)
        if not principal.is_admin:
            u = principal.user_id
            as_file = as_file.where(visible_model(u, vf.model_id))
            as_manifest = as_manifest.where(visible_model(u, mv.model_id))
            in_run = in_run.where(visible_experiment(u, r.experiment_id))
            in_logged = in_logged.where(visible_experiment(u, lm.experiment_id))
        query = sa.select(sa.or_(as_file, as_manifest, in_run, in_logged))
        with self.db.read() as conn:
            return bool(conn.execute(query).scalar())

    def versions_without_files(self, limit: int = 500) -> list[tuple[int, int, str]]:
        """(model_id, version, digest) of versions whose file list is not recorded yet."""
        mv, vf = model_versions.c, version_files.c
        query = (
            sa.select(mv.model_id, mv.version, mv.digest)
            .where(~sa.exists().where(vf.model_id == mv.model_id, vf.version == mv.version))
            .limit(limit)
        )
        with self.db.read() as conn:
            return [(int(a), int(b), str(c)) for a, b, c in conn.execute(query)]

    def record_version_files(self, model_id: int, version: int, files: Sequence[FileEntry]) -> None:
        """Record a version's file list (from its manifest); existing rows are kept."""
        if not files:
            return
        rows = [
            {
                "model_id": model_id,
                "version": version,
                "path": f.path,
                "size": f.size,
                "sha256": f.sha256,
            }
            for f in files
        ]
        with self.db.write() as conn:
            upsert(conn, version_files, rows, ["model_id", "version", "path"], ["size", "sha256"])

    # -- audit -------------------------------------------------------------------

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
        """Append one event to the audit log."""
        with self.db.write() as conn:
            conn.execute(
                sa.insert(audit_log).values(
                    at=now_millis(),
                    actor=actor.name if actor else None,
                    action=action,
                    target=target[:1000],
                    detail=json.dumps(detail, sort_keys=True, default=str) if detail else None,
                    request_id=request_id,
                    client=(client or "")[:64] or None,
                )
            )

    def audit(
        self,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        max_results: int = 100,
        offset: int = 0,
    ) -> list[AuditEvent]:
        """Events, newest first; ``target`` matches itself and what is under it (``/``, ``@``)."""
        a = audit_log.c
        query = sa.select(audit_log)
        if since_ms is not None:
            query = query.where(a.at >= since_ms)
        if until_ms is not None:
            query = query.where(a.at < until_ms)
        if actor is not None:
            query = query.where(a.actor == actor)
        if action is not None:
            query = query.where(a.action == action)
        if target is not None:
            # models:/fraud also finds its versions (models:/fraud/3) and aliases (@champion)
            base = target.rstrip("/")
            query = query.where(
                sa.or_(
                    a.target == target,
                    a.target.startswith(base + "/", autoescape=True),
                    a.target.startswith(base + "@", autoescape=True),
                )
            )
        query = query.order_by(a.event_id.desc()).limit(max_results).offset(offset)
        with self.db.read() as conn:
            return [_event(r) for r in conn.execute(query)]

    # -- idempotency ---------------------------------------------------------------

    def begin_idempotent(
        self, user_id: int, key: str, route: str, request_hash: str
    ) -> IdempotentReply | None:
        """Claim ``key`` for a write; ``None`` when this is the first attempt.

        A later attempt gets the first one's answer, or ``pending`` while it runs.
        """
        now = now_millis()
        k = idempotency_keys.c
        with self.db.write() as conn:
            conn.execute(
                sa.delete(idempotency_keys).where(k.created_at < now - IDEMPOTENCY_KEEP_MS)
            )
            row = {
                "user_id": user_id,
                "key": key,
                "route": route,
                "request_hash": request_hash,
                "created_at": now,
            }
            if insert_ignore(conn, idempotency_keys, row, ["user_id", "key"]):
                return None
            found = conn.execute(
                sa.select(idempotency_keys).where(k.user_id == user_id, k.key == key)
            ).one()
            if found.route != route or found.request_hash != request_hash:
                return IdempotentReply(pending=False, mismatch=True)
            if found.status is None:
                if now - found.created_at > IDEMPOTENCY_PENDING_MS:
                    # The first attempt died without answering: let this one run.
                    conn.execute(
                        sa.update(idempotency_keys)
                        .where(k.user_id == user_id, k.key == key)
                        .values(created_at=now)
                    )
                    return None
                return IdempotentReply(pending=True)
            return IdempotentReply(pending=False, status=found.status, response=found.response)

    def finish_idempotent(self, user_id: int, key: str, status: int, response: str) -> None:
        """Store the answer of the first attempt."""
        k = idempotency_keys.c
        with self.db.write() as conn:
            conn.execute(
                sa.update(idempotency_keys)
                .where(k.user_id == user_id, k.key == key)
                .values(status=status, response=response)
            )

    def abandon_idempotent(self, user_id: int, key: str) -> None:
        """Forget a key whose first attempt failed before changing anything."""
        k = idempotency_keys.c
        with self.db.write() as conn:
            conn.execute(sa.delete(idempotency_keys).where(k.user_id == user_id, k.key == key))

    # -- helpers -----------------------------------------------------------------

    def _user_id(self, conn: Connection, name: str) -> int:
        user_id = conn.execute(sa.select(_U.user_id).where(_U.name == name)).scalar()
        if user_id is None:
            raise NoSuchUser(name)
        return int(user_id)


def _grant_table(kind: ResourceKind) -> tuple[sa.Table, str]:
    if kind == "model":
        return model_grants, "model_id"
    return experiment_grants, "experiment_id"


def _when(ms: int) -> Any:
    when = from_millis(ms)
    assert when is not None
    return when


def _user(row: Any) -> User:
    role: Role = check_role(row.role)
    return User(
        int(row.user_id), row.name, role, bool(row.disabled), _when(row.created_at), row.created_by
    )


def _token(row: Any) -> TokenInfo:
    return TokenInfo(
        token_id=row.token_id,
        user=row.user_name,
        name=row.name,
        created_at=_when(row.created_at),
        expires_at=from_millis(row.expires_at),
        revoked_at=from_millis(row.revoked_at),
        last_used_at=from_millis(row.last_used_at),
    )


def _event(row: Any) -> AuditEvent:
    return AuditEvent(
        event_id=int(row.event_id),
        at=_when(row.at),
        actor=row.actor,
        action=row.action,
        target=row.target,
        detail=json.loads(row.detail) if row.detail else {},
        request_id=row.request_id,
        client=row.client,
    )
