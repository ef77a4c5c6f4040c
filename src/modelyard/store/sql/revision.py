"""The schema revisions this code knows (no imports: read on the light lookup path too)."""

from __future__ import annotations

__all__ = ["SCHEMA_REVISION", "SCHEMA_REVISIONS"]

#: every revision, oldest first; the last is what this code writes
SCHEMA_REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006")
SCHEMA_REVISION = SCHEMA_REVISIONS[-1]
