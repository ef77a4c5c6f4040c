"""What a server process holds: the yard's stores, its access tables and its settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelyard.errors import YardError

if TYPE_CHECKING:
    from modelyard.store import ArtifactStore
    from modelyard.store.sql.auth import SqlAuthStore
    from modelyard.store.sql.store import SqlMetadataStore
    from modelyard.yard import Yard

__all__ = ["ServerSettings", "ServerState"]


@dataclass(frozen=True)
class ServerSettings:
    """Limits and policies of one server."""

    #: JSON request bodies above this many bytes get a 413
    max_json_bytes: int = 16 * 1024 * 1024
    #: blob uploads above this many bytes get a 413
    max_blob_bytes: int = 256 * 1024**3
    #: Host header values accepted (``*`` for any); DNS rebinding is refused otherwise
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
    #: blobs at least this big are handed out as presigned URLs when the store can
    presign_min_bytes: int = 8 * 1024 * 1024
    #: how long a presigned URL is valid
    presign_seconds: int = 300
    #: request threads per worker process, and pooled database connections
    threads: int = 16
    #: parts of one upload in flight to an object store (MODELYARD_S3_CONCURRENCY wins)
    upload_parts: int = 4
    #: page size caps per listing
    max_page: dict[str, int] = field(
        default_factory=lambda: {"models": 1000, "versions": 10000, "runs": 5000, "audit": 1000}
    )


@dataclass
class ServerState:
    """One process's view of the yard it serves."""

    yard: Yard
    metadata: SqlMetadataStore
    artifacts: ArtifactStore
    auth: SqlAuthStore
    settings: ServerSettings

    @classmethod
    def open(cls, yard: Yard, settings: ServerSettings | None = None) -> ServerState:
        """Open ``yard`` (upgrading its schema) for serving; it must be a database yard."""
        from modelyard.store.sql.auth import SqlAuthStore
        from modelyard.store.sql.store import SqlMetadataStore

        metadata = yard.metadata
        if not isinstance(metadata, SqlMetadataStore):
            raise YardError(
                f"modelyard server serves a database yard (embedded, sqlite: or postgresql:), "
                f"not {yard.uri!r}"
            )
        settings = settings or ServerSettings()
        metadata.db.serve(settings.threads + 4)  # a few more for calls off the request threads
        artifacts = yard.artifacts
        if hasattr(artifacts, "concurrency") and not os.environ.get("MODELYARD_S3_CONCURRENCY"):
            # A client's upload holds concurrency x part size in the server: keep a few
            # uploads at once within the server's memory (4 x 16 MiB each by default).
            artifacts.concurrency = min(artifacts.concurrency, settings.upload_parts)
        return cls(
            yard=yard,
            metadata=metadata,
            artifacts=artifacts,
            auth=SqlAuthStore(metadata.db),
            settings=settings,
        )
