"""The SQL stores: metadata in SQLite or PostgreSQL, blobs in a folder.

Registered for the yard URI schemes ``file`` (an embedded folder),
``sqlite`` and ``postgresql``. Importing this package imports SQLAlchemy;
nothing imports it until a yard is opened.
"""

from __future__ import annotations

from modelyard.store import Stores, StoreSpec
from modelyard.store.blobs import LocalBlobStore
from modelyard.store.sql.store import SqlMetadataStore

__all__ = ["SqlMetadataStore", "open_stores"]


def open_stores(spec: StoreSpec) -> Stores:
    """Open a SQL metadata store and the blob folder beside it."""
    metadata = SqlMetadataStore(spec.database_url, display=spec.display, create=spec.create)
    return Stores(metadata=metadata, artifacts=LocalBlobStore(spec.blob_root))
