"""Access log lines in Common Log Format, buffered so logging costs almost nothing.

One line per request: ``host - - [date] "METHOD path HTTP/v" status bytes`` then
the time taken in microseconds and the model version that answered. Lines are
collected in memory and written out a few times a second (and at shutdown),
not one write per request.
"""

from __future__ import annotations

import time
from typing import TextIO

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
FLUSH_EVERY_S = 0.25
_MAX_BUFFERED = 512


class AccessLog:
    """A buffered access log writing to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._second = -1
        self._stamp = ""

    def record(
        self,
        *,
        client: str,
        method: str,
        path: str,
        http_version: str,
        status: int,
        size: int,
        seconds: float,
        answered_by: str,
    ) -> None:
        """Add one request's line."""
        now = int(time.time())
        if now != self._second:
            self._second = now
            t = time.gmtime(now)
            self._stamp = (
                f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
                f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
            )
        self._lines.append(
            f'{client} - - [{self._stamp}] "{method} {path} HTTP/{http_version}" {status} {size}'
            f" {int(seconds * 1e6)}us {answered_by}\n"
        )
        if len(self._lines) >= _MAX_BUFFERED:
            self.flush()

    def flush(self) -> None:
        """Write buffered lines out."""
        if self._lines:
            lines, self._lines = self._lines, []
            try:
                self._stream.write("".join(lines))
                self._stream.flush()
            except (OSError, ValueError):  # closed or broken stream: drop, never fail a request
                pass
