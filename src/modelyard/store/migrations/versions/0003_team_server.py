"""The team server: users, tokens, grants, protected aliases, audit log, idempotency
keys, and each version's file list.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the server's tables; index run files by blob."""
    op.create_index("ix_run_artifacts_sha256", "run_artifacts", ["sha256"])
    op.create_table(
        "version_files",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "version", "path", name="pk_version_files"),
        sa.ForeignKeyConstraint(
            ["model_id", "version"],
            ["model_versions.model_id", "model_versions.version"],
            name="fk_version_files_model_id_version_model_versions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_version_files_sha256", "version_files", ["sha256"])
    op.create_table(
        "users",
        sa.Column("user_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.PrimaryKeyConstraint("user_id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "tokens",
        sa.Column("token_id", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger()),
        sa.Column("revoked_at", sa.BigInteger()),
        sa.Column("last_used_at", sa.BigInteger()),
        sa.PrimaryKeyConstraint("token_id", name="pk_tokens"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.user_id"], name="fk_tokens_user_id_users", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
    )
    for kind, table, column in (
        ("model", "registered_models", "model_id"),
        ("experiment", "experiments", "experiment_id"),
    ):
        op.create_table(
            f"{kind}_grants",
            sa.Column(column, sa.Integer(), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("permission", sa.String(16), nullable=False),
            sa.PrimaryKeyConstraint(column, "user_id", name=f"pk_{kind}_grants"),
            sa.ForeignKeyConstraint(
                [column],
                [f"{table}.{column}"],
                name=f"fk_{kind}_grants_{column}_{table}",
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.user_id"],
                name=f"fk_{kind}_grants_user_id_users",
                ondelete="CASCADE",
            ),
        )
        op.create_index(f"ix_{kind}_grants_user_id", f"{kind}_grants", ["user_id"])
    op.create_table(
        "protected_aliases",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_protected_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.model_id"],
            name="fk_protected_aliases_model_id_registered_models",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "audit_log",
        sa.Column("event_id", _BIGINT_ID, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(255)),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(1000), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.Column("request_id", sa.String(32)),
        sa.Column("client", sa.String(64)),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor", "at"])
    op.create_index("ix_audit_log_target_at", "audit_log", ["target", "at"])
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer()),
        sa.Column("response", sa.Text()),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    """Drop the server's tables."""
    for table in (
        "idempotency_keys",
        "audit_log",
        "protected_aliases",
        "experiment_grants",
        "model_grants",
        "tokens",
        "users",
        "version_files",
    ):
        op.drop_table(table)
    op.drop_index("ix_run_artifacts_sha256", "run_artifacts")
