"""Signed alias records: every move is signed with a sequence; the yard refuses an old
or foreign record, and a loader refuses an answer older than one it has seen.

The rollback tests play the attacker who controls the yard's answers: they put an
old, genuinely signed record back into the database (a restored backup, a
replaying proxy) and check that a loader that saw a newer one refuses it before
any file is fetched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import modelyard
from modelyard.errors import (
    ModelNotFound,
    RollbackRefused,
    SignatureError,
    SignatureRequired,
    StaleAliasRecord,
    UntrustedKey,
)
from modelyard.store.sql.schema import alias_records, model_aliases, registered_models
from modelyard.trust.alias_records import (
    AliasRecord,
    SeenSequences,
    check_resolved,
    open_record,
    sign_record,
)
from modelyard.trust.keys import SigningKey, TrustedKey, TrustStore, default_key
from modelyard.yard import Yard
from tests._server import YardServer
from tests._yard import is_http
from tests.trust._home import config_home_fixture  # noqa: F401  (fixture)


@pytest.fixture
def own_key(config_home: Path) -> SigningKey:
    key = default_key(create=True)
    assert key is not None
    return key


@pytest.fixture
def two_versions(tmp_path: Path, iris_model: Any, own_key: SigningKey) -> list[int]:
    out = []
    for i in (1, 2):
        saved = modelyard.save_model(iris_model, tmp_path / f"v{i}").path
        out.append(modelyard.register_model(saved, "fraud").version)
    return out


def _record_now(name: str = "fraud", alias: str = "champion") -> str | None:
    return modelyard.get_yard().metadata.resolve(name, alias=alias).alias_record


@pytest.fixture
def database(any_yard: Yard, request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """The SQL database behind the yard: its own, or the server's over HTTP."""
    if not is_http(any_yard):
        yield any_yard.metadata.db.engine  # type: ignore[attr-defined]
        return
    server: YardServer = request.getfixturevalue("yard_server")
    engine = sa.create_engine(server.database)
    yield engine
    engine.dispose()


def _restore(engine: sa.Engine, *, version: int, sequence: int, record: str | None) -> None:
    """What an attacker with the database (or a replaying proxy) does: put back an old answer
    for fraud@champion."""
    name, alias = "fraud", "champion"
    with engine.begin() as conn:
        model_id = conn.execute(
            sa.select(registered_models.c.model_id).where(registered_models.c.name == name)
        ).scalar()
        conn.execute(
            sa.update(model_aliases)
            .where(model_aliases.c.model_id == model_id, model_aliases.c.alias == alias)
            .values(version=version)
        )
        conn.execute(
            sa.update(alias_records)
            .where(alias_records.c.model_name == name, alias_records.c.alias == alias)
            .values(sequence=sequence, record=record)
        )


# -- the record itself ---------------------------------------------------------------------


def _record(**changes: Any) -> AliasRecord:
    facts: dict[str, Any] = {
        "yard": "y1",
        "model": "fraud",
        "alias": "champion",
        "version": 2,
        "digest": "sha256:" + "ab" * 32,
        "sequence": 5,
    }
    return AliasRecord.now(**(facts | changes))


def test_a_record_round_trips_and_its_parse_is_strict(own_key: SigningKey) -> None:
    record = _record()
    envelope = sign_record(record, own_key)
    assert open_record(envelope.to_json())[0] == record
    doc = json.loads(record.to_payload())
    for broken, says in [
        ({**doc, "extra": 1}, "fields"),
        ({k: v for k, v in doc.items() if k != "sequence"}, "fields"),
        ({**doc, "sequence": "5"}, "'sequence' must be a positive integer"),
        ({**doc, "version": True}, "'version' must be a positive integer"),
        ({**doc, "_type": "https://example.com/other"}, "record type"),
        ({**doc, "alias": ""}, "'alias' must be a non-empty string"),
    ]:
        with pytest.raises(SignatureError, match=says):
            AliasRecord.from_payload(json.dumps(broken).encode(), source="test")
    other = envelope.__class__(envelope.payload, "application/vnd.in-toto+json")
    with pytest.raises(SignatureError, match="payload type"):
        open_record(other.to_json())


def test_a_loader_checks_the_record_against_the_answer_and_its_sequence(
    tmp_path: Path, own_key: SigningKey
) -> None:
    record = _record()
    text = sign_record(record, own_key).to_json()
    store = TrustStore({own_key.key_id: TrustedKey(own_key.public_key, "me", "test")})
    seen = SeenSequences(tmp_path / "seen.json")
    answer = {
        "yard_id": "y1",
        "model": "fraud",
        "alias": "champion",
        "version": 2,
        "digest": record.digest,
    }
    checked = check_resolved(**answer, record=text, verify="auto", store=store, seen=seen)
    assert (checked.state, checked.sequence) == ("verified", 5)
    assert seen.highest("y1/fraud@champion") == 5
    # the same record again is fine; an older one is not
    check_resolved(**answer, record=text, verify="required", store=store, seen=seen)
    older = sign_record(_record(sequence=4), own_key).to_json()
    with pytest.raises(RollbackRefused, match="sequence 4 is older than 5"):
        check_resolved(**answer, record=older, verify="auto", store=store, seen=seen)
    # a record of another move is not this answer's, whatever its sequence
    for field, value in [("version", 1), ("alias", "staging"), ("yard", "y2"), ("model", "x")]:
        foreign = sign_record(_record(sequence=9, **{field: value}), own_key).to_json()
        with pytest.raises(SignatureError, match=f"names {field}"):
            check_resolved(**answer, record=foreign, verify="auto", store=store, seen=seen)
    assert seen.highest("y1/fraud@champion") == 5
    # by a key this machine does not trust: nothing to hold it to under auto, refused under required
    stranger = SigningKey.generate()
    unknown = sign_record(_record(sequence=1), stranger).to_json()
    assert check_resolved(
        **answer, record=unknown, verify="auto", store=store, seen=seen
    ).state == ("untrusted")
    with pytest.raises(SignatureRequired, match="keys this machine does not trust"):
        check_resolved(**answer, record=unknown, verify="required", store=store, seen=seen)
    with pytest.raises(SignatureRequired, match="carries no signed record"):
        check_resolved(**answer, record=None, verify="required", store=store, seen=seen)
    assert (
        check_resolved(**answer, record=older, verify="off", store=store, seen=seen).state == "off"
    )


def test_a_damaged_seen_file_refuses_rather_than_forgets(tmp_path: Path) -> None:
    seen = SeenSequences(tmp_path / "seen.json")
    seen.path.write_text("{not json")
    with pytest.raises(SignatureError, match="alias sequences"):
        seen.check_and_remember("y/fraud@champion", 1, what="x")


# -- in a yard: sqlite, postgresql, http -----------------------------------------------------


def test_every_move_is_signed_with_the_next_sequence_and_loads_verified(
    any_yard: Yard, two_versions: list[int]
) -> None:
    modelyard.set_alias("fraud", "champion", 1)
    first = open_record(_record_now() or "")[0]
    assert (first.version, first.sequence, first.model, first.alias) == (1, 1, "fraud", "champion")
    loaded = modelyard.load_model("models:/fraud@champion")
    assert loaded.trust is not None
    assert (loaded.trust.alias_record, loaded.trust.alias_sequence) == ("verified", 1)

    modelyard.set_alias("fraud", "champion", 2)
    assert open_record(_record_now() or "")[0].sequence == 2
    # an unsigned move (no yard rule here) clears the record and still counts
    modelyard.set_alias("fraud", "champion", 1, sign=False)
    assert _record_now() is None
    assert modelyard.get_yard().metadata.alias_sequence("fraud", "champion").sequence == 3
    assert modelyard.load_model("models:/fraud@champion").trust.alias_record is None  # type: ignore[union-attr]
    with pytest.raises(SignatureRequired, match="carries no signed record"):
        modelyard.load_model("models:/fraud@champion", verify="required")
    # deleting and re-creating the alias continues the count
    modelyard.delete_alias("fraud", "champion")
    modelyard.set_alias("fraud", "champion", 2)
    assert open_record(_record_now() or "")[0].sequence == 5
    assert modelyard.load_model("models:/fraud@champion").trust.alias_sequence == 5  # type: ignore[union-attr]


def test_a_restored_old_answer_is_refused_by_a_loader_that_saw_a_newer_one(
    any_yard: Yard, two_versions: list[int], database: sa.Engine
) -> None:
    modelyard.set_alias("fraud", "champion", 1)
    old = _record_now()
    assert old is not None
    modelyard.load_model("models:/fraud@champion")
    # v1 is withdrawn: champion moves on, and this machine sees the newer record
    modelyard.set_alias("fraud", "champion", 2)
    assert modelyard.load_model("models:/fraud@champion").version == 2

    _restore(database, version=1, sequence=1, record=old)
    assert modelyard.get_yard().metadata.resolve("fraud", alias="champion").version == 1
    with pytest.raises(RollbackRefused, match=r"@champion of 'fraud'.*sequence 1 is older than 2"):
        modelyard.load_model("models:/fraud@champion")
    # a stripped record does not get past a loader that requires one either
    _restore(database, version=1, sequence=1, record=None)
    with pytest.raises(SignatureRequired):
        modelyard.load_model("models:/fraud@champion", verify="required")


def test_the_yard_refuses_a_replayed_or_foreign_record_and_moves_nothing(
    any_yard: Yard, two_versions: list[int]
) -> None:
    store = modelyard.get_yard().metadata
    modelyard.set_alias("fraud", "champion", 1)
    used = _record_now()
    assert used is not None
    modelyard.set_alias("fraud", "champion", 2)
    with pytest.raises(StaleAliasRecord, match="a record is used once"):
        store.set_alias("fraud", "champion", 1, record=used)
    key = default_key(create=False)
    assert key is not None
    position = store.alias_sequence("fraud", "champion")
    digest = store.resolve("fraud", version=1).digest
    for field, value in [("version", 2), ("alias", "staging"), ("yard", "elsewhere")]:
        facts: dict[str, Any] = {
            "yard": position.yard_id,
            "model": "fraud",
            "alias": "champion",
            "version": 1,
            "digest": digest,
            "sequence": position.sequence + 1,
        }
        forged = sign_record(AliasRecord.now(**(facts | {field: value})), key).to_json()
        with pytest.raises(SignatureError, match=f"names {field}"):
            store.set_alias("fraud", "champion", 1, record=forged)
    with pytest.raises(SignatureError):
        store.set_alias("fraud", "champion", 1, record='{"payload": "e30="}')
    assert store.resolve("fraud", alias="champion").version == 2
    assert store.alias_sequence("fraud", "champion").sequence == position.sequence


def test_where_signatures_are_required_only_a_record_by_a_yard_key_moves_an_alias(
    any_yard: Yard, two_versions: list[int], own_key: SigningKey
) -> None:
    modelyard.trust_signer(own_key.public_key, "me")
    modelyard.require_signatures("fraud")
    with pytest.raises(SignatureRequired, match="an alias move must be a signed record"):
        modelyard.set_alias("fraud", "champion", 1, sign=False)
    with pytest.raises(ModelNotFound):
        modelyard.get_yard().metadata.resolve("fraud", alias="champion")
    stranger = SigningKey.generate(name="stranger")
    with pytest.raises(UntrustedKey, match="is not a key this yard accepts"):
        modelyard.set_alias("fraud", "champion", 1, sign=stranger)
    modelyard.set_alias("fraud", "champion", 1)
    assert modelyard.load_model("models:/fraud@champion", verify="required").version == 1


def test_a_renamed_model_continues_its_aliases_count(
    any_yard: Yard, two_versions: list[int]
) -> None:
    modelyard.set_alias("fraud", "champion", 1)
    modelyard.set_alias("fraud", "champion", 2)
    modelyard.rename_registered_model("fraud", "fraud2")
    store = modelyard.get_yard().metadata
    assert store.resolve("fraud2", alias="champion").alias_record is None
    assert store.alias_sequence("fraud2", "champion").sequence == 3
    modelyard.set_alias("fraud2", "champion", 1)
    assert open_record(_record_now("fraud2") or "")[0].sequence == 4
    assert modelyard.load_model("models:/fraud2@champion").version == 1
