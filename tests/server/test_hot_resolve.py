"""The one-statement resolve answers exactly what the ordinary route does, or leaves it.

Each case is asked in this process of :mod:`modelyard.server._hot` and of the
running server (whose answer, once a token has been used, comes from the same
code); whenever the one statement answers, the bytes equal the server's, and
whenever the server refuses, the one statement did not answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelyard.server import _hot
from modelyard.server.state import ServerState
from modelyard.store.access import Principal
from modelyard.store.entities import now_millis
from modelyard.store.trees import store_directory
from modelyard.yard import Yard
from tests._server import YardServer

P = "/api/v1/models"


@pytest.fixture
def state(yard_server: YardServer, saved_iris: Path) -> Iterator[ServerState]:
    yard_server.empty()
    yard = Yard(yard_server.backing)
    s = ServerState.open(yard)
    manifest = store_directory(s.artifacts, saved_iris)
    for _ in range(2):
        s.metadata.create_model_version(
            "m", digest=manifest.digest, source=manifest.digest, files=manifest.entries
        )
    s.metadata.set_alias("m", "champion", 1)
    try:
        yield s
    finally:
        yard.close()


def test_answers_match_the_ordinary_route(yard_server: YardServer, state: ServerState) -> None:
    auth = state.auth
    admin_user = auth.get_user("admin")
    admin = Principal(admin_user.user_id, "admin", "admin", "-")
    model_id, _ = auth.model_access(admin, "m")
    assert model_id is not None
    reader = yard_server.token("hotrita", "reader")
    hidden = yard_server.token("hothugo", "reader")
    auth.set_grant("model", model_id, "hothugo", "none")
    # valid throughout the loop even on a loaded machine (the expiry itself is tested below)
    _, expiring = auth.create_token("hotrita", expires_at_ms=now_millis() + 60_000)
    tokens = {
        "admin": yard_server.admin_token,
        "reader": reader,
        "hidden": hidden,
        "expiring": expiring,
        "bad": "myd_" + "y" * 43,
    }
    answered = 0
    queries = ["alias=champion", "version=2", "", "alias=nope", "version=9", "alias=champion&x=1"]
    for who, token in tokens.items():
        headers = {"authorization": f"Bearer {token}"}
        httpx.get(yard_server.url + "/api/v1/whoami", headers=headers)  # records the use
        for name in ("m", "absent"):
            for query in queries:
                path = f"{P}/{name}/resolve"
                asked = _hot.match(path, query.encode(), headers["authorization"])
                mine = _hot.resolve(state, asked) if asked is not None else None
                theirs = httpx.get(f"{yard_server.url}{path}?{query}", headers=headers)
                if mine is not None:
                    answered += 1
                    assert theirs.status_code == 200, (who, name, query)
                    assert mine == theirs.content, (who, name, query)
                elif theirs.status_code == 200:
                    # only a use not yet recorded may go the ordinary way with success
                    assert who in ("admin", "reader", "expiring"), (who, name, query)
    assert answered >= 9  # admin, reader, expiring x the three that exist
    # the hidden user and the bad token are never answered by the one statement
    for token in (hidden, "myd_" + "y" * 43):
        asked = _hot.match(f"{P}/m/resolve", b"alias=champion", f"Bearer {token}")
        assert asked is not None
        assert _hot.resolve(state, asked) is None


def test_an_expired_token_is_not_answered(yard_server: YardServer, state: ServerState) -> None:
    _, token = state.auth.create_token("admin", expires_at_ms=now_millis() - 1)
    asked = _hot.match(f"{P}/m/resolve", b"alias=champion", f"Bearer {token}")
    assert asked is not None
    assert _hot.resolve(state, asked) is None
    response = httpx.get(
        f"{yard_server.url}{P}/m/resolve?alias=champion",
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
