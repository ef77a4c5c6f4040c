"""The yard's tables (SQLAlchemy Core), the same for SQLite and PostgreSQL.

Core tables rather than ORM classes: every query here is a handful of
columns, and the ORM would cost a cold process ~50 ms of imports for nothing.
Alembic migrations in :mod:`modelyard.store.migrations` create and change these
tables; :data:`SCHEMA_REVISION` is the newest revision, checked cheaply on
every open so Alembic is imported only when an upgrade is due.

Times are integer milliseconds since the epoch (portable, cheap to compare).
Version numbers come from ``registered_models.next_version``, bumped by an
``UPDATE ... RETURNING`` that row-locks the model: unique and gap-free under
concurrent writers, and never reused after a delete.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy import false as sa_false

from modelyard.store.sql.revision import SCHEMA_REVISION, SCHEMA_REVISIONS

__all__ = [
    "SCHEMA_REVISION",
    "SCHEMA_REVISIONS",
    "alias_history",
    "alias_records",
    "audit_log",
    "experiment_grants",
    "experiments",
    "idempotency_keys",
    "logged_model_files",
    "logged_model_params",
    "logged_model_tags",
    "logged_models",
    "metadata",
    "model_aliases",
    "model_grants",
    "model_tags",
    "model_versions",
    "protected_aliases",
    "registered_models",
    "run_artifacts",
    "run_latest_metrics",
    "run_metrics",
    "run_params",
    "run_tags",
    "runs",
    "signed_models",
    "tokens",
    "users",
    "version_files",
    "version_tags",
    "yard_settings",
]


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

_NAME = 255
_KEY = 250
_RUN_ID = 32
_DIGEST = 71  # "sha256:" + 64 hex

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(_NAME), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(_RUN_ID), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(_NAME)),
    Column("status", String(16), nullable=False),
    Column("start_time", BigInteger, nullable=False),
    Column("end_time", BigInteger),
    Column("parent_run_id", String(_RUN_ID), ForeignKey("runs.run_id", ondelete="SET NULL")),
    Column("created_by", String(_NAME)),
)

run_params = Table(
    "run_params",
    metadata,
    Column(
        "run_id", String(_RUN_ID), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(_KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("metric_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "run_id", String(_RUN_ID), ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False
    ),
    Column("key", String(_KEY), nullable=False),
    # NULL is NaN: SQLite cannot store NaN, so both databases store it the same way.
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_run_metrics_run_id_key", "run_id", "key"),
)

run_latest_metrics = Table(
    "run_latest_metrics",
    metadata,
    Column(
        "run_id", String(_RUN_ID), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(_KEY), primary_key=True),
    Column("value", Float),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Index("ix_run_latest_metrics_key_value", "key", "value"),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column(
        "run_id", String(_RUN_ID), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(_KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column(
        "run_id", String(_RUN_ID), ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True
    ),
    Column("path", String(1000), primary_key=True),
    # indexed in revision 0003: blob reads are authorised through the runs holding them
    Column("sha256", String(64), nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
)

registered_models = Table(
    "registered_models",
    metadata,
    Column("model_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(_NAME), nullable=False, unique=True),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # The number the next version gets; only ever incremented.
    Column("next_version", Integer, nullable=False, server_default="1"),
)

model_tags = Table(
    "model_tags",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(_KEY), primary_key=True),
    Column("value", Text, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("digest", String(_DIGEST), nullable=False),
    Column("source", Text, nullable=False),
    Column("run_id", String(_RUN_ID), index=True),
    Column("status", String(32), nullable=False),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(_NAME)),
)

version_tags = Table(
    "version_tags",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("key", String(_KEY), primary_key=True),
    Column("value", Text, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("alias", String(_NAME), primary_key=True),
    Column("version", Integer, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

# Added in revision 0002: who moved which alias when, from where to where.
alias_history = Table(
    "alias_history",
    metadata,
    Column("change_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("alias", String(_NAME), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("changed_at", BigInteger, nullable=False),
    Column("changed_by", String(_NAME)),
    Index("ix_alias_history_model_id_alias", "model_id", "alias", "change_id"),
)

# -- added in revision 0003: the team server -------------------------------------------

# Each version's files (the content manifest as rows): what blob reads are
# authorised against, and what listings show without reading blobs.
version_files = Table(
    "version_files",
    metadata,
    Column("model_id", Integer, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        ondelete="CASCADE",
    ),
)

users = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(_NAME), nullable=False, unique=True),
    # reader | writer | admin
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=sa_false()),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(_NAME)),
)

# Only a hash of each token is stored: the token itself is shown once, when made.
tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(_NAME)),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("last_used_at", BigInteger),
)


# Grants are keyed by the resource's id, never its name, and go with it when it is
# deleted: a model deleted and made again under the same name starts with none.
def _grants(kind: str, owner: str, column: str) -> Table:
    return Table(
        f"{kind}_grants",
        metadata,
        Column(
            column, Integer, ForeignKey(f"{owner}.{column}", ondelete="CASCADE"), primary_key=True
        ),
        Column(
            "user_id", Integer, ForeignKey("users.user_id", ondelete="CASCADE"), primary_key=True
        ),
        # none | read | edit | manage
        Column("permission", String(16), nullable=False),
        Index(f"ix_{kind}_grants_user_id", "user_id"),
    )


model_grants = _grants("model", "registered_models", "model_id")
experiment_grants = _grants("experiment", "experiments", "experiment_id")

# Aliases only `manage` may move or delete (e.g. champion).
protected_aliases = Table(
    "protected_aliases",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("alias", String(_NAME), primary_key=True),
)

# Registered models whose versions must be signed by a key the yard trusts
# (modelyard.trust.admission); the yard-wide rule and the keys are in yard_settings.
signed_models = Table(
    "signed_models",
    metadata,
    Column(
        "model_id",
        Integer,
        ForeignKey("registered_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

# Settings of the whole yard, one JSON document each (e.g. "signing").
yard_settings = Table(
    "yard_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Added in revision 0006: each alias's move sequence and the signed record of its last
# move (modelyard.trust.alias_records). By name, with no foreign key, so a sequence
# outlives a deleted alias or model and an old record cannot be replayed after.
alias_records = Table(
    "alias_records",
    metadata,
    Column("model_name", String(_NAME), primary_key=True),
    Column("alias", String(_NAME), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("record", Text),
)

# Every write through the server. No foreign keys: the record outlives what it names.
audit_log = Table(
    "audit_log",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("at", BigInteger, nullable=False, index=True),
    Column("actor", String(_NAME)),
    Column("action", String(64), nullable=False),
    Column("target", String(1000), nullable=False),
    # JSON: what changed (from -> to), never secrets
    Column("detail", Text),
    Column("request_id", String(32)),
    Column("client", String(64)),
    Index("ix_audit_log_actor_at", "actor", "at"),
    Index("ix_audit_log_target_at", "target", "at"),
)

# A retried write with the same Idempotency-Key gets the first answer again.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", Integer, primary_key=True),
    Column("key", String(64), primary_key=True),
    Column("route", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    # NULL while the first attempt runs
    Column("status", Integer),
    Column("response", Text),
    Column("created_at", BigInteger, nullable=False, index=True),
)


# -- added in revision 0004: models logged by MLflow's client ---------------------------

# MLflow 3 logs a model as a "logged model" (``m-<32 hex>``) of an experiment,
# uploads its files, then marks it READY; a registry version is made from it.
# Its files are recorded as they arrive (each hashed by the server, never by
# the client's word), so a version made from it is content-addressed as ours.
logged_models = Table(
    "logged_models",
    metadata,
    Column("model_id", String(34), primary_key=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(_NAME), nullable=False),
    Column("source_run_id", String(_RUN_ID), ForeignKey("runs.run_id", ondelete="SET NULL")),
    Column("model_type", String(_NAME)),
    Column("status", String(32), nullable=False),
    #: the content manifest's digest, fixed when the model is marked READY
    Column("digest", String(_DIGEST)),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(_NAME)),
    Index("ix_logged_models_source_run_id", "source_run_id"),
)


def _logged_kv(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column(
            "model_id",
            String(34),
            ForeignKey("logged_models.model_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("key", String(_KEY), primary_key=True),
        Column("value", Text, nullable=False),
    )


logged_model_tags = _logged_kv("logged_model_tags")
logged_model_params = _logged_kv("logged_model_params")

logged_model_files = Table(
    "logged_model_files",
    metadata,
    Column(
        "model_id",
        String(34),
        ForeignKey("logged_models.model_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("path", String(1000), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False, index=True),
)
