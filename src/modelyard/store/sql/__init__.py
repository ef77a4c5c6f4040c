"""The SQL stores: metadata in SQLite or PostgreSQL, blobs in a folder or an S3 bucket.

Registered for the yard URI schemes ``file`` (an embedded folder),
``sqlite`` and ``postgresql``. SQLAlchemy is imported when a store opens, not
when this package is imported, so :mod:`modelyard.store.sql.lookup` (the light
path ``load_model`` takes on SQLite) stays free of it.
"""

from __future__ import annotations

from modelyard.store import Stores, StoreSpec

__all__ = ["open_stores"]


def open_stores(spec: StoreSpec) -> Stores:
    """Open a SQL metadata store and the artifact store ``spec.artifacts`` names."""
    from modelyard.store.artifacts import open_artifact_store
    from modelyard.store.sql.store import SqlMetadataStore

    artifacts = open_artifact_store(spec.artifacts)
    metadata = SqlMetadataStore(spec.database_url, display=spec.display, create=spec.create)
    return Stores(metadata=metadata, artifacts=artifacts)
