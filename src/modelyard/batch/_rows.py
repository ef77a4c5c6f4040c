"""Row-level records shared by the file readers, the CSV parser and the scoring loop.

Their own module, below :mod:`modelyard.batch.files` and
:mod:`modelyard.batch._parse`, so that neither has to import the other for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RowFailure:
    """One input row that could not be scored, and why."""

    #: 0-based index of the row among the input's data rows
    row: int
    reason: str
    column: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The side-file record."""
        return {"row": self.row, "column": self.column, "error": self.reason, "values": self.values}
