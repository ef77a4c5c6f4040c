"""Alembic migrations of the yard's database.

A yard is upgraded on open when its schema revision is older than the code's
(:data:`modelyard.store.sql.revision.SCHEMA_REVISION`), or explicitly with
``modelyard db upgrade``. Alembic is imported only then.

New revision (from the checkout's root)::

    alembic -c src/modelyard/store/migrations/alembic.ini revision -m "what changed"

and add its id to ``SCHEMA_REVISIONS`` in ``store/sql/revision.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["HERE", "heads", "upgrade"]

HERE = Path(__file__).resolve().parent


def _config(connection: Connection | None = None) -> object:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` (inside its open transaction) to ``revision``."""
    from alembic import command

    command.upgrade(_config(connection), revision)  # type: ignore[arg-type]


def heads() -> list[str]:
    """The newest revision(s) the migration scripts define."""
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(_config()).get_heads())  # type: ignore[arg-type]
