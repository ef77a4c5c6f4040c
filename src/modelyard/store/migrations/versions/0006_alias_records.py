"""Signed alias records: each alias's move sequence and the signed record of its last move,
and the yard's own id, which every record names.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``alias_records`` and give the yard its id."""
    # Keyed by the model's name, with no foreign key: the sequence must outlive a
    # deleted alias or model, or an old record could be replayed after re-creation.
    op.create_table(
        "alias_records",
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("record", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("model_name", "alias", name="pk_alias_records"),
    )
    settings = sa.table("yard_settings", sa.column("name"), sa.column("value"))
    op.bulk_insert(settings, [{"name": "yard_id", "value": uuid.uuid4().hex}])


def downgrade() -> None:
    """Drop them."""
    op.execute("DELETE FROM yard_settings WHERE name = 'yard_id'")
    op.drop_table("alias_records")
