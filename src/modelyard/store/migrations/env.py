"""Alembic environment: runs on the connection modelyard hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from modelyard.store.sql.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    # `alembic revision` from the command line: a throwaway database is enough.
    url = context.config.get_main_option("sqlalchemy.url") or "sqlite:///:memory:"
    with create_engine(url).connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
