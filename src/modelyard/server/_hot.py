"""The resolve route in one SQL statement: the call every load by alias makes.

``GET /api/v1/models/{name}/resolve`` normally takes three queries (token,
access, resolve). Here one statement checks the token, the caller's grant on
the model and finds the version, and answers when everything is there and
allowed. Anything else — an unknown token, a model or alias that does not
exist, a caller the model is hidden from, a token whose last use should be
recorded — is left to the ordinary route, which checks it all again and
explains the refusal. So this only ever answers what the ordinary route would
answer the same way (the route x caller matrix runs through both).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec
import sqlalchemy as sa

from modelyard.errors import InvalidURI
from modelyard.store.entities import now_millis
from modelyard.store.rest.wire import API_PREFIX, ResolvedOut
from modelyard.store.sql.auth import _LAST_USED_EVERY_MS, TOKEN_PREFIX, hash_token
from modelyard.uri import validate_alias, validate_name

if TYPE_CHECKING:
    from modelyard.server.state import ServerState

__all__ = ["match", "resolve"]

_PATH = re.compile(rf"^{re.escape(API_PREFIX)}/models/([^/]+)/resolve$")

_SELECT = """
SELECT u.role, t.expires_at, t.last_used_at, g.permission,
       m.name AS model, v.version, v.digest, v.run_id, {record}
FROM tokens t
JOIN users u ON u.user_id = t.user_id
LEFT JOIN registered_models m ON m.name = :name
LEFT JOIN model_grants g ON g.model_id = m.model_id AND g.user_id = t.user_id
"""
_NO_RECORD = "NULL AS record, NULL AS yard_id"
_WHERE = " WHERE t.token_hash = :hash AND t.revoked_at IS NULL AND NOT u.disabled"
_BY = {
    # an alias's answer carries its signed record and the yard's id (alias_records)
    "alias": sa.text(
        _SELECT.format(record="r.record, ys.value AS yard_id")
        + "LEFT JOIN model_aliases a ON a.model_id = m.model_id AND a.alias = :alias "
        + "LEFT JOIN model_versions v ON v.model_id = m.model_id AND v.version = a.version "
        + "LEFT JOIN alias_records r ON r.model_name = m.name AND r.alias = :alias "
        + "LEFT JOIN yard_settings ys ON ys.name = 'yard_id' AND r.record IS NOT NULL"
        + _WHERE
    ),
    "version": sa.text(
        _SELECT.format(record=_NO_RECORD)
        + "LEFT JOIN model_versions v ON v.model_id = m.model_id AND v.version = :version"
        + _WHERE
    ),
    "latest": sa.text(
        _SELECT.format(record=_NO_RECORD)
        + "LEFT JOIN model_versions v ON v.model_id = m.model_id AND v.version = "
        + "(SELECT max(x.version) FROM model_versions x WHERE x.model_id = m.model_id)"
        + _WHERE
    ),
}


def match(path: str, query: bytes, authorization: str | None) -> dict[str, Any] | None:
    """The request's parts when it is a resolve this module may answer, else ``None``."""
    found = _PATH.match(path)
    if found is None or authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    params = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    try:
        name = validate_name(found.group(1))
        if not params:
            return {"kind": "latest", "name": name, "hash": hash_token(token)}
        if len(params) != 1:
            return None
        key, value = params[0]
        if key == "alias":
            return {
                "kind": "alias",
                "name": name,
                "alias": validate_alias(value),
                "hash": hash_token(token),
            }
        if key == "version" and value.isdigit() and 0 < int(value) < 10**12:
            return {
                "kind": "version",
                "name": name,
                "version": int(value),
                "hash": hash_token(token),
            }
    except InvalidURI:
        return None
    return None


def resolve(state: ServerState, asked: dict[str, Any]) -> bytes | None:
    """The answer's JSON body, or ``None`` to leave the request to the ordinary route."""
    statement = _BY[asked.pop("kind")]
    db = state.metadata.db
    with db.engine.connect() as conn:
        # PostgreSQL: one round trip, no BEGIN/ROLLBACK around a single read
        use = (
            conn.execution_options(isolation_level="AUTOCOMMIT")
            if db.dialect == "postgresql"
            else conn
        )
        row = use.execute(statement, asked).first()
        if use.in_transaction():
            use.rollback()
    if row is None or row.version is None:
        return None
    now = now_millis()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.last_used_at is None or now - row.last_used_at > _LAST_USED_EVERY_MS:
        return None  # the ordinary route records the use
    if row.role != "admin" and row.permission == "none":
        return None
    return msgspec.json.encode(
        ResolvedOut(
            name=row.model,
            version=int(row.version),
            digest=row.digest,
            run_id=row.run_id,
            alias_record=row.record,
            yard_id=row.yard_id,
        )
    )
