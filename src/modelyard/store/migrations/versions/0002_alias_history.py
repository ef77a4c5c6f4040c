"""Alias history: who moved which alias when, from which version to which.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``alias_history`` and record the aliases that exist as created now."""
    history = op.create_table(
        "alias_history",
        sa.Column(
            "change_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("from_version", sa.Integer()),
        sa.Column("to_version", sa.Integer()),
        sa.Column("changed_at", sa.BigInteger(), nullable=False),
        sa.Column("changed_by", sa.String(255)),
        sa.PrimaryKeyConstraint("change_id", name="pk_alias_history"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name="fk_alias_history_model_id_registered_models",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_alias_history_model_id_alias", "alias_history", ["model_id", "alias", "change_id"]
    )
    # Aliases set before history was kept: one "created" entry each, stamped with
    # the version's time (the best known bound), so every alias has a history.
    aliases = sa.table(
        "model_aliases", sa.column("model_id"), sa.column("alias"), sa.column("version")
    )
    versions = sa.table(
        "model_versions", sa.column("model_id"), sa.column("version"), sa.column("created_at")
    )
    select = sa.select(
        aliases.c.model_id, aliases.c.alias, aliases.c.version, versions.c.created_at
    ).join(
        versions,
        sa.and_(versions.c.model_id == aliases.c.model_id, versions.c.version == aliases.c.version),
    )
    assert history is not None
    op.execute(
        history.insert().from_select(["model_id", "alias", "to_version", "changed_at"], select)
    )


def downgrade() -> None:
    """Drop ``alias_history``."""
    op.drop_table("alias_history")
