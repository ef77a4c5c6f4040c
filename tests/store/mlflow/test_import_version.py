"""``import_model_version``: a version with a given number, on every store (SQLite,
PostgreSQL, a real server over HTTP), idempotent and never reusing a number."""

from __future__ import annotations

import pytest

from modelyard.errors import AlreadyExists
from modelyard.store import MetadataStore
from modelyard.yard import Yard
from tests.store.test_metadata_contract import D1, D2, artifacts

__all__ = ["artifacts"]


@pytest.fixture
def store(any_yard: Yard, artifacts: object) -> MetadataStore:
    return any_yard.metadata


def test_keeps_the_number_and_repeats_are_the_same_version(store: MetadataStore) -> None:
    v3 = store.import_model_version("m", 3, digest=D1, source=D1, created_at=1_000_000)
    assert (v3.version, v3.digest) == (3, D1)
    assert int(v3.created_at.timestamp() * 1000) == 1_000_000
    again = store.import_model_version("m", 3, digest=D1, source=D1)
    assert (again.version, again.created_at) == (3, v3.created_at)
    # a gap (MLflow deleted version 4) and then a later number
    assert store.import_model_version("m", 5, digest=D2, source=D2).version == 5
    # the next new version comes after the highest imported one
    assert store.create_model_version("m", digest=D1, source=D1).version == 6
    assert [v.version for v in store.search_model_versions("name = 'm'")] == [6, 5, 3]


def test_other_files_or_a_number_given_out_before_are_refused(store: MetadataStore) -> None:
    store.import_model_version("m", 2, digest=D1, source=D1)
    with pytest.raises(AlreadyExists, match="m/2"):
        store.import_model_version("m", 2, digest=D2, source=D2)
    with pytest.raises(AlreadyExists, match="m/1"):
        store.import_model_version("m", 1, digest=D1, source=D1)  # below the next free number
    assert [v.version for v in store.search_model_versions("name = 'm'")] == [2]
