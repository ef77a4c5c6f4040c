"""A progress bar (rows, rows/s, ETA) on stderr, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# update(rows_done, position): position is in the reader's unit (rows or bytes).
Update = Callable[[int, int], None]


def _noop(rows: int, position: int) -> None:
    pass


@contextmanager
def progress(enabled: bool | None, total: int | None, label: str) -> Iterator[Update]:
    """Yield an ``update`` function; ``enabled=None`` means "when stderr is a terminal"."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield _noop
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    start = time.perf_counter()
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(label, total=total, rows=0, rate=0.0)

        def update(rows: int, position: int) -> None:
            elapsed = max(time.perf_counter() - start, 1e-9)
            bar.update(task, completed=position, rows=rows, rate=rows / elapsed)

        yield update
        if total is not None:
            bar.update(task, completed=total)
