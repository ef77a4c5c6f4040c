"""Concurrent writers are real processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import modelyard
from modelyard.yard import Yard
from tests._yard import yard_uri
from tests.store import _workers

WORKERS = 8
pytestmark = pytest.mark.slow


def _run_all(fn: Callable[..., Any], args: list[tuple[Any, ...]]) -> list[Any]:
    # spawn, not fork: each worker is a fresh interpreter with its own connections.
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Manager().Barrier(len(args))
    with ctx.Pool(len(args)) as pool:
        pending = [pool.apply_async(fn, (*a, barrier)) for a in args]
        return [p.get(timeout=300) for p in pending]


def _cache(yard: Yard) -> str:
    return str(yard.cache_root)


def test_eight_processes_get_versions_one_to_eight(any_yard: Yard, saved_iris: Path) -> None:
    uri = yard_uri(any_yard)
    args = [(uri, _cache(any_yard), str(saved_iris), "raced")] * WORKERS
    # The model does not exist yet: creating it is part of the race.
    first = _run_all(_workers.register, args)
    assert sorted(first) == list(range(1, WORKERS + 1))
    second = _run_all(_workers.register, args)
    assert sorted(second) == list(range(WORKERS + 1, 2 * WORKERS + 1))
    versions = [v.version for v in modelyard.search_model_versions("name = 'raced'")]
    assert sorted(versions) == list(range(1, 2 * WORKERS + 1))
    # Sixteen registrations of the same directory: one digest, every blob stored once.
    digests = {v.digest for v in modelyard.search_model_versions("name = 'raced'")}
    assert len(digests) == 1


def test_concurrent_alias_moves_form_one_history(any_yard: Yard, saved_iris: Path) -> None:
    for _ in range(WORKERS):
        modelyard.register_model(saved_iris, "m")
    uri = yard_uri(any_yard)
    _run_all(
        _workers.move_alias,
        [(uri, _cache(any_yard), "m", v) for v in range(1, WORKERS + 1)],
    )
    history = modelyard.get_alias_history("m", "champion")
    assert len(history) == WORKERS
    assert history[0].from_version is None
    # Linearizable: every move starts from where the previous one left the alias.
    for before, after in itertools.pairwise(history):
        assert after.from_version == before.to_version
    assert sorted(c.to_version for c in history) == list(range(1, WORKERS + 1))  # type: ignore[type-var]
    current = modelyard.get_model_version_by_alias("m", "champion").version
    assert current == history[-1].to_version


def test_concurrent_first_loads_build_one_cache_entry(any_yard: Yard, saved_iris: Path) -> None:
    modelyard.register_model(saved_iris, "iris")
    uri = yard_uri(any_yard)
    digests = _run_all(_workers.load, [(uri, _cache(any_yard), "models:/iris/1")] * 4)
    assert len(set(digests)) == 1
    entries = list((any_yard.cache_root / "sha256").glob("*.stamp"))
    assert len(entries) == 1
    assert not any((any_yard.cache_root / "tmp").iterdir())
