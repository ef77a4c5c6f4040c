"""Models logged by MLflow's client: logged models, their tags, params and files.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the logged-model tables."""
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(34), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("source_run_id", sa.String(32)),
        sa.Column("model_type", sa.String(255)),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(71)),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.PrimaryKeyConstraint("model_id", name="pk_logged_models"),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.experiment_id"],
            name="fk_logged_models_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_run_id"],
            ["runs.run_id"],
            name="fk_logged_models_source_run_id_runs",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_logged_models_experiment_id", "logged_models", ["experiment_id"])
    op.create_index("ix_logged_models_source_run_id", "logged_models", ["source_run_id"])
    for table in ("logged_model_tags", "logged_model_params"):
        op.create_table(
            table,
            sa.Column("model_id", sa.String(34), nullable=False),
            sa.Column("key", sa.String(250), nullable=False),
            sa.Column("value", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("model_id", "key", name=f"pk_{table}"),
            sa.ForeignKeyConstraint(
                ["model_id"],
                ["logged_models.model_id"],
                name=f"fk_{table}_model_id_logged_models",
                ondelete="CASCADE",
            ),
        )
    op.create_table(
        "logged_model_files",
        sa.Column("model_id", sa.String(34), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "path", name="pk_logged_model_files"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["logged_models.model_id"],
            name="fk_logged_model_files_model_id_logged_models",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_logged_model_files_sha256", "logged_model_files", ["sha256"])


def downgrade() -> None:
    """Drop them."""
    for table in ("logged_model_files", "logged_model_params", "logged_model_tags"):
        op.drop_table(table)
    op.drop_table("logged_models")
