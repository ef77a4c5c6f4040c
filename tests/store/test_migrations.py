"""Schema migrations: a fresh database is created, an older one upgraded on open."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelyard.errors import SchemaMismatch
from modelyard.store import migrations
from modelyard.store.sql.engine import Database
from modelyard.store.sql.schema import SCHEMA_REVISION, SCHEMA_REVISIONS, metadata
from modelyard.store.sql.store import SqlMetadataStore
from tests._yard import POSTGRES, _admin


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'yard.db'}"
        return
    name = f"modelyard_test_{uuid.uuid4().hex[:12]}"
    admin = _admin(POSTGRES)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_code_revision_is_the_scripts_head() -> None:
    assert migrations.heads() == [SCHEMA_REVISION]
    assert SCHEMA_REVISIONS[-1] == SCHEMA_REVISION


def test_fresh_database_gets_a_schema_equal_to_the_tables(empty_db: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = SqlMetadataStore(empty_db)
    try:
        assert store.schema_revision() == SCHEMA_REVISION
        with store.db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        store.close()


def test_an_older_yard_is_upgraded_on_open(empty_db: str) -> None:
    db = Database(empty_db, display=empty_db)
    with db.write() as conn:
        migrations.upgrade(conn, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO registered_models (name, created_at, updated_at, next_version) "
                "VALUES ('fraud', 1000, 1000, 3)"
            )
        )
        for version in (1, 2):
            conn.execute(
                sa.text(
                    "INSERT INTO model_versions (model_id, version, digest, source, status, "
                    "created_at, updated_at) VALUES (1, :v, :d, :s, 'READY', :t, :u)"
                ),
                {
                    "v": version,
                    "d": f"sha256:{str(version) * 64}",
                    "s": f"sha256:{str(version) * 64}",
                    "t": 1000 * version,
                    "u": 1000 * version,
                },
            )
        conn.execute(
            sa.text(
                "INSERT INTO model_aliases (model_id, alias, version) VALUES (1, 'champion', 2)"
            )
        )
    assert db.revision() == "0001"
    db.dispose()

    store = SqlMetadataStore(empty_db)
    try:
        assert store.schema_revision() == SCHEMA_REVISION
        # The data survived, and the alias got a history entry from the upgrade.
        assert store.resolve("fraud", alias="champion").version == 2
        (created,) = store.get_alias_history("fraud", "champion")
        assert (created.from_version, created.to_version) == (None, 2)
        assert (
            store.create_model_version("fraud", digest="sha256:" + "3" * 64, source="x").version
            == 3
        )
    finally:
        store.close()


def test_a_newer_yard_is_refused_not_broken(empty_db: str) -> None:
    SqlMetadataStore(empty_db).close()
    engine = sa.create_engine(empty_db, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(SchemaMismatch, match="'9999'") as info:
        SqlMetadataStore(empty_db)
    assert info.value.revision == "9999"
    engine = sa.create_engine(empty_db, poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "9999"
    engine.dispose()


def test_concurrent_first_opens_create_the_schema_once(empty_db: str) -> None:
    errors: list[BaseException] = []
    stores: list[SqlMetadataStore] = []
    barrier = threading.Barrier(4)

    def open_it() -> None:
        try:
            barrier.wait()
            stores.append(SqlMetadataStore(empty_db))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {s.schema_revision() for s in stores} == {SCHEMA_REVISION}
    for s in stores:
        s.close()
