"""The yard's signing policy: its settings document and the models that require signatures.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``yard_settings`` and ``signed_models``."""
    op.create_table(
        "yard_settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_yard_settings"),
    )
    op.create_table(
        "signed_models",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_signed_models"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name="fk_signed_models_model_id_registered_models",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("signed_models")
    op.drop_table("yard_settings")
