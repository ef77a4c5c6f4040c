"""The MetadataStore contract: every store implementation passes this suite.

Runs on the embedded SQLite yard, on the real PostgreSQL server and over HTTP
through a real ``modelyard server`` (``any_yard``). The server checks more than
a bare SQL store, so the suite uses only what it accepts everywhere: the
digests D1..D4 are real (tiny) model directories whose blobs and manifests are
stored in the yard's artifact store, runs are real runs (holding the files of
the version they are the source of), and who acted is given the way each store
takes it (see :func:`acting`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Callable, Iterator

import pytest

from modelyard.errors import (
    AliasNotFound,
    AlreadyExists,
    ExperimentNotFound,
    InvalidFilter,
    ModelVersionNotFound,
    RegisteredModelNotFound,
    RunNotFound,
    TrackingError,
)
from modelyard.format.content import ContentManifest, FileEntry
from modelyard.store import ArtifactStore, MetadataStore
from modelyard.store.entities import Metric, RunStatus
from modelyard.store.sql.schema import SCHEMA_REVISION
from modelyard.store.trees import store_manifest
from modelyard.yard import Yard
from tests._server import YardServer
from tests._yard import is_http


def _tiny_model(n: int) -> tuple[ContentManifest, dict[str, bytes]]:
    files = {
        "MLmodel": f"flavors:\n  python_function:\n    loader_module: contract_{n}\n".encode(),
        "weights.bin": bytes([n]) * (n + 1),
    }
    entries = [FileEntry(p, len(b), hashlib.sha256(b).hexdigest()) for p, b in files.items()]
    return ContentManifest(tuple(sorted(entries, key=lambda e: e.path))), files


MODELS = {m.digest: (m, files) for m, files in map(_tiny_model, range(1, 5))}
D1, D2, D3, D4 = MODELS
Acting = Callable[[str], MetadataStore]


@pytest.fixture
def artifacts(any_yard: Yard) -> ArtifactStore:
    """The yard's artifact store, holding the four models D1..D4."""
    any_yard.metadata  # creates the yard
    store = any_yard.artifacts
    for manifest, files in MODELS.values():
        for data in files.values():
            store.put_bytes(data)
        assert store_manifest(store, manifest) == manifest.digest
    return store


@pytest.fixture
def store(any_yard: Yard, artifacts: ArtifactStore) -> MetadataStore:
    return any_yard.metadata


@pytest.fixture
def acting(
    any_yard: Yard, store: MetadataStore, request: pytest.FixtureRequest
) -> Iterator[Acting]:
    """``acting(name)``: the store, acting as user ``name``.

    A SQL store records the ``user=`` / ``created_by=`` it is given, so that is
    the store itself (the test passes the name too). Over HTTP those arguments
    are ignored and the server records the token's user: that is a client of
    the same server holding a token of ``name`` (an admin, so no permission is in
    question here).
    """
    if not is_http(any_yard):
        yield lambda name: store
        return
    from modelyard.store.rest._http import HttpSession
    from modelyard.store.rest.admin import ServerAdmin
    from modelyard.store.rest.metadata import RestMetadataStore

    server: YardServer = request.getfixturevalue("yard_server")
    opened: dict[str, RestMetadataStore] = {}

    def act(name: str) -> MetadataStore:
        if name not in opened:
            session = HttpSession(server.url, token=server.token(name, "admin"))
            me = ServerAdmin(session).whoami()
            assert (me["name"], me["role"]) == (name, "admin"), me
            opened[name] = RestMetadataStore(session)
        return opened[name]

    yield act
    for client in opened.values():
        client.close()


def _versions(store: MetadataStore, name: str, count: int) -> list[int]:
    return [store.create_model_version(name, digest=D1, source=D1).version for _ in range(count)]


def _run(store: MetadataStore, holding: str | None = None, path: str = "model") -> str:
    """A new run (holding the files of model ``holding`` under ``path``); its id."""
    experiment = store.get_or_create_experiment("contract-runs")
    run_id = store.create_run(experiment.experiment_id).run_id
    if holding is not None:
        manifest = MODELS[holding][0]
        store.add_artifacts(
            run_id, [FileEntry(f"{path}/{e.path}", e.size, e.sha256) for e in manifest.entries]
        )
    return run_id


def _blob(artifacts: ArtifactStore, path: str, data: bytes) -> FileEntry:
    """A run file entry whose blob is really stored."""
    return FileEntry(path, len(data), artifacts.put_bytes(data).sha256)


# -- registered models -------------------------------------------------------------


def test_satisfies_protocol_and_is_at_head(store: MetadataStore) -> None:
    assert isinstance(store, MetadataStore)
    assert store.schema_revision() == SCHEMA_REVISION


def test_create_and_get_registered_model(store: MetadataStore) -> None:
    made = store.create_registered_model("fraud", description="d", tags={"team": "risk"})
    got = store.get_registered_model("fraud")
    assert got == made
    assert got.description == "d"
    assert got.tags == {"team": "risk"}
    assert got.latest_version is None
    assert got.aliases == {}
    assert got.created_at.tzinfo is not None
    with pytest.raises(AlreadyExists, match="fraud"):
        store.create_registered_model("fraud")
    assert store.create_registered_model("fraud", exist_ok=True).tags == {"team": "risk"}


def test_unknown_model_suggests_close_names(store: MetadataStore) -> None:
    store.create_registered_model("fraud")
    store.create_registered_model("churn")
    with pytest.raises(RegisteredModelNotFound) as info:
        store.get_registered_model("frod")
    assert info.value.suggestions == ("fraud",)
    assert "did you mean 'fraud'?" in str(info.value)
    with pytest.raises(RegisteredModelNotFound) as info:
        store.get_registered_model("Fraud")
    assert info.value.suggestions[0] == "fraud"


def test_version_numbers_count_up_and_are_never_reused(store: MetadataStore) -> None:
    assert _versions(store, "m", 3) == [1, 2, 3]
    store.delete_model_version("m", 2)
    store.delete_model_version("m", 3)  # the highest: max()+1 would hand out 3 again
    assert _versions(store, "m", 1) == [4]
    with pytest.raises(ModelVersionNotFound) as info:
        store.get_model_version("m", 3)
    assert info.value.versions == (1, 4)
    assert "versions: 1, 4" in str(info.value)


def test_version_fields(store: MetadataStore, acting: Acting) -> None:
    run_id = _run(store, holding=D1)
    v = acting("ana").create_model_version(
        "m",
        digest=D1,
        source=f"runs:/{run_id}/model",
        run_id=run_id,
        description="first",
        tags={"k": "v"},
        created_by="ana",
    )
    got = store.get_model_version("m", 1)
    assert got == v
    assert (got.digest, got.source, got.run_id, got.status) == (
        D1,
        f"runs:/{run_id}/model",
        run_id,
        "READY",
    )
    assert (got.description, got.tags, got.created_by) == ("first", {"k": "v"}, "ana")
    assert got.uri == "models:/m/1"
    assert store.get_registered_model("m").latest_version == 1


def test_resolve_version_alias_latest(store: MetadataStore) -> None:
    r1 = _run(store)
    store.create_model_version("m", digest=D1, source=D1, run_id=r1)
    store.create_model_version("m", digest=D2, source=D2)
    store.set_alias("m", "champion", 1)
    assert store.resolve("m", version=2).digest == D2
    champion = store.resolve("m", alias="champion")
    assert (champion.version, champion.digest, champion.run_id) == (1, D1, r1)
    assert store.resolve("m").version == 2


def test_resolve_errors_name_what_is_missing(store: MetadataStore) -> None:
    store.create_model_version("fraud", digest=D1, source=D1)
    store.set_alias("fraud", "champion", 1)
    with pytest.raises(RegisteredModelNotFound, match="did you mean 'fraud'"):
        store.resolve("frod", alias="champion")
    with pytest.raises(ModelVersionNotFound, match=r"no version 9 \(versions: 1\)"):
        store.resolve("fraud", version=9)
    with pytest.raises(AliasNotFound) as info:
        store.resolve("fraud", alias="champoin")
    assert info.value.aliases == {"champion": 1}
    assert info.value.suggestions == ("champion",)
    assert "@champion -> v1" in str(info.value)
    store.create_registered_model("empty")
    with pytest.raises(ModelVersionNotFound, match="no versions"):
        store.resolve("empty")


def test_rename_keeps_versions_aliases_history(store: MetadataStore) -> None:
    store.create_model_version("old", digest=D1, source=D1)
    store.set_alias("old", "champion", 1)
    store.create_registered_model("taken")
    with pytest.raises(AlreadyExists):
        store.rename_registered_model("old", "taken")
    assert store.get_registered_model("old").aliases == {"champion": 1}  # nothing changed
    renamed = store.rename_registered_model("old", "new")
    assert renamed.aliases == {"champion": 1}
    assert store.resolve("new", alias="champion").digest == D1
    assert len(store.get_alias_history("new", "champion")) == 1
    with pytest.raises(RegisteredModelNotFound):
        store.get_registered_model("old")
    with pytest.raises(RegisteredModelNotFound):
        store.rename_registered_model("nope", "x")


def test_descriptions_and_tags(store: MetadataStore) -> None:
    store.create_model_version("m", digest=D1, source=D1)
    assert store.update_registered_model("m", "about m").description == "about m"
    assert store.update_model_version("m", 1, "v1 notes").description == "v1 notes"
    store.set_registered_model_tag("m", "team", "risk")
    store.set_registered_model_tag("m", "team", "fraud")
    store.set_model_version_tag("m", 1, "validated", "yes")
    assert store.get_registered_model("m").tags == {"team": "fraud"}
    assert store.get_model_version("m", 1).tags == {"validated": "yes"}
    store.delete_registered_model_tag("m", "team")
    store.delete_registered_model_tag("m", "absent")
    store.delete_model_version_tag("m", 1, "validated")
    assert store.get_registered_model("m").tags == {}
    assert store.get_model_version("m", 1).tags == {}
    with pytest.raises(ModelVersionNotFound):
        store.set_model_version_tag("m", 5, "k", "v")
    with pytest.raises(ModelVersionNotFound):
        store.update_model_version("m", 5, "x")


def test_delete_registered_model_removes_everything(store: MetadataStore) -> None:
    store.create_model_version("m", digest=D1, source=D1, tags={"a": "b"})
    store.set_alias("m", "champion", 1)
    store.set_registered_model_tag("m", "k", "v")
    store.delete_registered_model("m")
    with pytest.raises(RegisteredModelNotFound):
        store.get_registered_model("m")
    assert store.search_model_versions("name = 'm'") == []
    # The name is free again; a new model starts its own numbering.
    assert store.create_model_version("m", digest=D2, source=D2).version == 1
    with pytest.raises(AliasNotFound):
        store.get_alias_history("m", "champion")


# -- aliases ---------------------------------------------------------------------------


def test_alias_moves_are_recorded(store: MetadataStore, acting: Acting) -> None:
    _versions(store, "m", 3)
    acting("ana").set_alias("m", "champion", 1, user="ana")
    acting("ana").set_alias("m", "champion", 1, user="ana")  # no move, no entry
    acting("bo").set_alias("m", "champion", 3, user="bo")
    store.set_alias("m", "challenger", 2)
    acting("cy").delete_alias("m", "champion", user="cy")
    history = store.get_alias_history("m", "champion")
    assert [(c.from_version, c.to_version, c.changed_by) for c in history] == [
        (None, 1, "ana"),
        (1, 3, "bo"),
        (3, None, "cy"),
    ]
    times = [c.changed_at for c in history]
    assert times == sorted(times)
    assert all(abs(t - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5) for t in times)
    assert store.get_registered_model("m").aliases == {"challenger": 2}
    assert store.get_model_version("m", 2).aliases == ("challenger",)
    with pytest.raises(AliasNotFound, match="challenger"):
        store.delete_alias("m", "champion")


def test_alias_to_missing_version_changes_nothing(store: MetadataStore) -> None:
    _versions(store, "m", 1)
    store.set_alias("m", "champion", 1)
    with pytest.raises(ModelVersionNotFound):
        store.set_alias("m", "champion", 7)
    assert store.resolve("m", alias="champion").version == 1
    assert len(store.get_alias_history("m", "champion")) == 1
    with pytest.raises(RegisteredModelNotFound):
        store.set_alias("nope", "champion", 1)


def test_deleting_a_version_removes_its_aliases(store: MetadataStore, acting: Acting) -> None:
    _versions(store, "m", 2)
    store.set_alias("m", "champion", 2)
    store.set_alias("m", "stable", 2)
    store.set_alias("m", "old", 1)
    acting("ana").delete_model_version("m", 2, user="ana")
    assert store.get_registered_model("m").aliases == {"old": 1}
    last = store.get_alias_history("m", "champion")[-1]
    assert (last.from_version, last.to_version, last.changed_by) == (2, None, "ana")
    with pytest.raises(AliasNotFound):
        store.get_model_version_by_alias("m", "champion")
    with pytest.raises(ModelVersionNotFound):
        store.delete_model_version("m", 2)


def test_get_model_version_by_alias(store: MetadataStore) -> None:
    _versions(store, "m", 2)
    store.set_alias("m", "champion", 2)
    store.set_alias("m", "stable", 2)
    got = store.get_model_version_by_alias("m", "champion")
    assert got.version == 2
    assert got.aliases == ("champion", "stable")


# -- search ---------------------------------------------------------------------------


def test_search_registered_models(store: MetadataStore) -> None:
    for name, team in [("fraud", "risk"), ("fraud-eu", "risk"), ("churn", "growth")]:
        store.create_registered_model(name, tags={"team": team})
    names = [m.name for m in store.search_registered_models()]
    assert names == ["churn", "fraud", "fraud-eu"]
    assert [m.name for m in store.search_registered_models("name LIKE 'fraud%'")] == [
        "fraud",
        "fraud-eu",
    ]
    # LIKE is case-sensitive on both databases; ILIKE is not.
    assert store.search_registered_models("name LIKE 'FRAUD%'") == []
    assert len(store.search_registered_models("name ILIKE 'FRAUD%'")) == 2
    assert [m.name for m in store.search_registered_models("tags.team = 'growth'")] == ["churn"]
    assert [
        m.name
        for m in store.search_registered_models(
            "tags.team = 'risk' AND name != 'fraud'", order_by=["name DESC"]
        )
    ] == ["fraud-eu"]
    assert len(store.search_registered_models(max_results=2)) == 2
    with pytest.raises(InvalidFilter, match="unknown field"):
        store.search_registered_models("params.x = '1'")


def test_search_model_versions(store: MetadataStore) -> None:
    r1, r2 = _run(store), _run(store)
    store.create_model_version("a", digest=D1, source=D1, run_id=r1)
    store.create_model_version("a", digest=D2, source=D2, run_id=r2, tags={"ok": "yes"})
    store.create_model_version("b", digest=D3, source=D3, run_id=r2)
    found = store.search_model_versions(f"run_id = '{r2}'")
    assert [(v.name, v.version) for v in found] == [("a", 2), ("b", 1)]
    found = store.search_model_versions("name = 'a' AND version_number >= 2")
    assert [(v.name, v.version) for v in found] == [("a", 2)]
    assert [v.version for v in store.search_model_versions("tags.ok = 'yes'")] == [2]
    ordered = store.search_model_versions("name = 'a'", order_by=["version_number ASC"])
    assert [v.version for v in ordered] == [1, 2]
    assert [v.name for v in store.search_model_versions(f"run_id IN ('{r1}', 'zz')")] == ["a"]
    assert [v.digest for v in store.search_model_versions(f"digest = '{D3}'")] == [D3]


# -- tracking -------------------------------------------------------------------------


def test_experiments(store: MetadataStore) -> None:
    a = store.get_or_create_experiment("fraud")
    assert store.get_or_create_experiment("fraud") == a
    assert store.get_experiment("fraud") == a
    store.get_or_create_experiment("churn")
    assert [e.name for e in store.list_experiments()] == ["churn", "fraud"]
    with pytest.raises(ExperimentNotFound, match="did you mean 'fraud'"):
        store.get_experiment("frod")


def test_runs_params_metrics_tags(store: MetadataStore, acting: Acting) -> None:
    exp = store.get_or_create_experiment("e")
    run = acting("ana").create_run(exp.experiment_id, name="r", created_by="ana", tags={"t": "1"})
    assert run.status == RunStatus.RUNNING
    assert (run.experiment, run.name, run.created_by, run.tags) == ("e", "r", "ana", {"t": "1"})
    store.log_params(run.run_id, {"alpha": "0.5", "depth": "3"})
    store.log_params(run.run_id, {"alpha": "0.5"})  # same value: fine
    with pytest.raises(TrackingError, match="alpha"):
        store.log_params(run.run_id, {"alpha": "0.7", "new": "x"})
    assert "new" not in store.get_run(run.run_id).params  # the failed call logged nothing
    store.log_metrics(
        run.run_id,
        [Metric("loss", 0.9, 0, 1000), Metric("loss", 0.5, 2, 3000), Metric("loss", 0.7, 1, 4000)],
    )
    store.log_metrics(run.run_id, [Metric("nan", math.nan, 0, 1)])
    store.set_tags(run.run_id, {"t": "2", "u": "x"})
    store.end_run(run.run_id, RunStatus.FINISHED)
    got = store.get_run(run.run_id)
    assert got.params == {"alpha": "0.5", "depth": "3"}
    assert got.metrics["loss"] == 0.5  # the highest step wins, not the last logged
    assert math.isnan(got.metrics["nan"])
    assert got.tags == {"t": "2", "u": "x"}
    assert got.status == RunStatus.FINISHED
    assert got.end_time is not None
    assert got.end_time >= got.start_time
    history = store.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.7), (2, 0.5)]
    with pytest.raises(TrackingError, match="status"):
        store.end_run(run.run_id, "DONE")


def test_unknown_run_suggests_prefix_matches(store: MetadataStore) -> None:
    exp = store.get_or_create_experiment("e")
    run = store.create_run(exp.experiment_id)
    with pytest.raises(RunNotFound) as info:
        store.get_run(run.run_id[:8] + "0" * 24)
    assert info.value.suggestions == (run.run_id,)
    with pytest.raises(RunNotFound):
        store.log_params("f" * 32, {"a": "1"})
    with pytest.raises(RunNotFound):
        store.list_artifacts("f" * 32)


def test_nested_runs(store: MetadataStore) -> None:
    exp = store.get_or_create_experiment("e")
    parent = store.create_run(exp.experiment_id)
    child = store.create_run(exp.experiment_id, parent_run_id=parent.run_id)
    assert child.parent_run_id == parent.run_id
    found = store.search_runs([exp.experiment_id], f"parent_run_id = '{parent.run_id}'")
    assert [r.run_id for r in found] == [child.run_id]
    with pytest.raises(RunNotFound):
        store.create_run(exp.experiment_id, parent_run_id="0" * 32)


def test_search_runs_filters_and_orders(store: MetadataStore) -> None:
    exp = store.get_or_create_experiment("e")
    other = store.get_or_create_experiment("other")
    ids = {}
    for name, c, auc, team in [("a", "1", 0.9, "x"), ("b", "2", 0.95, "y"), ("c", "1", None, "x")]:
        run = store.create_run(exp.experiment_id, name=name)
        store.log_params(run.run_id, {"C": c})
        if auc is not None:
            store.log_metrics(run.run_id, [Metric("auc", auc, 0, 0)])
        store.set_tags(run.run_id, {"team": team})
        ids[name] = run.run_id
    store.create_run(other.experiment_id, name="elsewhere")

    def names(*args: object, **kwargs: object) -> list[str | None]:
        return [r.name for r in store.search_runs(*args, **kwargs)]  # type: ignore[arg-type]

    assert sorted(names([exp.experiment_id])) == ["a", "b", "c"]
    assert len(names(None)) == 4
    assert sorted(names([exp.experiment_id], "params.C = '1'")) == ["a", "c"]
    assert names([exp.experiment_id], "metrics.auc > 0.92") == ["b"]
    assert names([exp.experiment_id], "params.C = '1' AND tags.team = 'x' AND metrics.auc < 1") == [
        "a"
    ]
    # Runs without the metric sort last, both ways.
    assert names([exp.experiment_id], order_by=["metrics.auc DESC"]) == ["b", "a", "c"]
    assert names([exp.experiment_id], order_by=["metrics.auc ASC"]) == ["a", "b", "c"]
    assert names([exp.experiment_id], "attributes.run_name LIKE 'a%'") == ["a"]
    assert names([exp.experiment_id], f"run_id = '{ids['c']}'") == ["c"]
    assert names([exp.experiment_id], "status = 'RUNNING'", max_results=1) != []
    with pytest.raises(InvalidFilter, match="number"):
        store.search_runs(None, "metrics.auc > 'high'")


def test_artifacts_listing_and_prefixes(store: MetadataStore, artifacts: ArtifactStore) -> None:
    exp = store.get_or_create_experiment("e")
    run = store.create_run(exp.experiment_id)
    ten, one = b"0123456789", b"x"
    store.add_artifacts(
        run.run_id,
        [
            _blob(artifacts, "model/MLmodel", ten),
            _blob(artifacts, "model/sub/x.bin", ten),
            _blob(artifacts, "model2/MLmodel", ten),
            _blob(artifacts, "model-b/MLmodel", ten),
            _blob(artifacts, "notes.txt", b"abc"),
        ],
    )
    assert [e.path for e in store.list_artifacts(run.run_id, "model")] == [
        "model/MLmodel",
        "model/sub/x.bin",
    ]
    assert len(store.list_artifacts(run.run_id)) == 5
    assert store.list_artifacts(run.run_id, "nothing") == []
    # Re-logging a path replaces it.
    notes = _blob(artifacts, "notes.txt", b"abcd")
    store.add_artifacts(run.run_id, [notes])
    assert store.list_artifacts(run.run_id, "")[-1] == notes
    assert notes.size == 4
    # A path is a file or a directory, never both.
    with pytest.raises(TrackingError, match=r"'notes\.txt' is a file"):
        store.add_artifacts(run.run_id, [_blob(artifacts, "notes.txt/inner", one)])
    with pytest.raises(TrackingError, match=r"'model' in run .* is a directory"):
        store.add_artifacts(run.run_id, [_blob(artifacts, "model", one)])
