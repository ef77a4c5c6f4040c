"""The ``--yard`` option shared by the yard's commands, and small formatters."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _use_yard(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        from modelyard.yard import set_yard

        set_yard(value)


yard_option: Callable[[F], F] = click.option(
    "--yard",
    metavar="URI",
    expose_value=False,
    is_eager=True,
    callback=_use_yard,
    help="The yard to use (default: $MODELYARD_URI, else ./.modelyard).",
)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a table, leaving out columns that are empty in every row (narrow terminals)."""
    from modelyard.cli._output import emit_table

    keep = [i for i in range(len(columns)) if any(r[i] not in (None, "") for r in rows)] or list(
        range(len(columns))
    )
    emit_table(None, [columns[i] for i in keep], [[r[i] for i in keep] for r in rows])


def source(text: str) -> str:
    """A version's source, short: ``runs:/4f1c2a9b…/model``, ``(copied in)``."""
    if text.startswith("sha256:"):
        return "(copied in)"
    if text.startswith("runs:/"):
        run_id, _, path = text[len("runs:/") :].partition("/")
        return f"runs:/{run_id[:8]}…/{path}" if len(run_id) > 8 else text
    return text


def when(moment: _dt.datetime | None) -> str:
    """``2026-03-01 14:05`` (UTC), or nothing."""
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def short(digest: str) -> str:
    """The first 12 hex digits of a ``sha256:`` digest, as people quote them."""
    return digest.split(":", 1)[-1][:12]


def pairs(mapping: Mapping[str, Any], limit: int = 4) -> str:
    """``a=1, b=2`` (the first few)."""
    items = [f"{k}={_num(v)}" for k, v in list(mapping.items())[:limit]]
    more = len(mapping) - limit
    return ", ".join(items) + (f", +{more}" if more > 0 else "")


def aliases(mapping: Mapping[str, int]) -> str:
    """``@champion v3, @challenger v4``."""
    return ", ".join(f"@{a} v{v}" for a, v in sorted(mapping.items()))


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
