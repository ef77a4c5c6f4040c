"""The SQL metadata store: one class over SQLite and PostgreSQL."""

from __future__ import annotations

from modelyard.store.sql.alias_records import AliasRecordQueries
from modelyard.store.sql.engine import Database
from modelyard.store.sql.registry import RegistryQueries
from modelyard.store.sql.runs import RunQueries
from modelyard.store.sql.signing import SigningQueries

__all__ = ["SqlMetadataStore"]


class SqlMetadataStore(RegistryQueries, RunQueries, SigningQueries, AliasRecordQueries):
    """Experiments, runs and the registry in a SQL database (SQLAlchemy Core).

    Opening checks the schema revision with one query and upgrades an older
    database (Alembic is imported only then). ``create=False`` refuses to
    create a SQLite file that does not exist (:class:`YardNotFound`).
    """

    def __init__(self, url: str, *, display: str | None = None, create: bool = True) -> None:
        self.db = Database(url, display=display or url, create=create)
        try:
            #: (from, to) when opening upgraded the schema, else None
            self.last_upgrade = self.db.ensure_schema()
        except BaseException:
            self.db.dispose()
            raise

    @property
    def location(self) -> str:
        """The database URI as shown to people."""
        return self.db.display

    def __repr__(self) -> str:
        return f"SqlMetadataStore({self.db.display!r})"

    def schema_revision(self) -> str | None:
        """The schema revision the database is at."""
        return self.db.revision()

    def upgrade(self) -> tuple[str | None, str]:
        """Migrate to the newest schema; (from, to)."""
        return self.db.upgrade()

    def close(self) -> None:
        """Release pooled connections."""
        self.db.dispose()

    def after_fork(self) -> None:
        """In a forked child: drop the parent's pooled connections without closing them."""
        self.db.engine.dispose(close=False)
