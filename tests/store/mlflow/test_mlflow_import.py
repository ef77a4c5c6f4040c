"""``modelyard import mlflow`` and the readers, against stores the real MLflow 3.17 made.

Sources: an ``mlflow.db``, a ``./mlruns`` file store and a real ``mlflow server``
(``--serve-artifacts``) on loopback. Targets: an embedded yard, a SQLite yard,
PostgreSQL and a real ``modelyard server`` over HTTP. No mocks: what is read is
what MLflow wrote; a kill is a SIGKILL to a real ``modelyard import`` process.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelyard as my
from modelyard.errors import MlflowArtifactsRefused, MlflowSourceError, ReadOnlyYard
from modelyard.store.mlflow import MlflowSource, open_mlflow_source
from modelyard.store.mlflow.importer import IMPORTED_RUN, import_mlflow
from modelyard.yard import Yard
from tests._proxy import FORWARD, Answer, HttpProxy, Seen
from tests.store.mlflow.conftest import MlflowStores, free_port

CLI = [sys.executable, "-c", "from modelyard.cli import main; main()"]


def iris_frame() -> object:
    from sklearn.datasets import load_iris

    X = load_iris(as_frame=True).data
    X.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in X.columns]
    return X


@pytest.fixture(params=["sqlite", "files", "server"])
def source_uri(request: pytest.FixtureRequest, mlflow_stores: MlflowStores) -> str:
    """Each of the three MLflow stores, by its tracking URI."""
    return str(getattr(mlflow_stores, request.param))


@pytest.fixture
def source(source_uri: str) -> Iterator[MlflowSource]:
    reader = open_mlflow_source(source_uri)
    yield reader
    reader.close()


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache home (mlflow+ yards stage files there) and model cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("MODELYARD_CACHE", str(tmp_path / "model-cache"))
    return tmp_path / "xdg"


def blobs_of(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file() and len(p.name) == 64}


# -- the readers ------------------------------------------------------------------------------


def test_each_reader_sees_what_mlflow_wrote(source: MlflowSource, source_uri: str) -> None:
    names = [m.name for m in source.list_models()]
    assert {"iris", "twin", "broken"} <= set(names)
    iris = source.get_model("iris")
    assert iris.description == "iris classifiers"
    assert iris.tags == {"owner": "ana"}
    assert iris.aliases == {"champion": 2, "challenger": 3}  # champion was moved from 1
    versions = source.list_versions("iris")
    assert [v.version for v in versions] == [1, 2, 3]
    v2 = versions[1]
    assert (v2.description, v2.tags) == ("the good one", {"validated": "yes"})
    assert v2.source.startswith("models:/m-")  # MLflow 3: a logged model
    assert "/models/m-" in v2.storage
    assert v2.storage.endswith("/artifacts")
    files = {f.path for f in source.list_files(v2)}
    assert {"MLmodel", "model.skops", "requirements.txt"} <= files
    run = source.get_run(str(v2.run_id))
    assert run is not None
    assert (run.experiment, run.status) == ("iris-training", "FINISHED")
    assert run.params == {"C": "1.0", "solver": "lbfgs"}
    assert run.tags["team"] == "vision"
    loss = [(m.step, m.value) for m in run.metrics if m.key == "loss"]
    assert loss == [(0, 1 / 2.0), (1, 1 / 3.0), (2, 1 / 4.0)]  # every step, once
    with source.open_file(v2, "MLmodel") as f:
        assert b"flavors:" in f.read()


def test_sqlite_is_opened_read_only(mlflow_stores: MlflowStores) -> None:
    from modelyard.store.mlflow._sql import SqlSource

    db = mlflow_stores.root / "mlflow.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    reader = SqlSource(mlflow_stores.sqlite)
    import sqlalchemy as sa

    with pytest.raises(sa.exc.OperationalError, match="readonly"), reader.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM registered_models"))
    assert [m.name for m in reader.list_models()]
    reader.close()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


# -- import -------------------------------------------------------------------------------------


def test_import_keeps_numbers_aliases_runs_and_predictions(
    mlflow_stores: MlflowStores, source: MlflowSource, source_uri: str, tmp_path: Path
) -> None:
    yard = Yard(tmp_path / "yard")
    report = import_mlflow(source, yard.metadata, yard.artifacts, models="[it]*")
    assert (report.models, report.versions, report.versions_present) == (2, 4, 0)
    assert (report.runs, report.aliases, report.skipped) == (3, 3, ())  # twin/1 is iris/3's
    # twin/1 holds iris/3's files and every version shares its environment files
    assert report.deduplicated >= 7 + 2 * 3
    assert report.bytes_stored < report.bytes_read
    store = yard.metadata
    iris = store.get_registered_model("iris")
    assert (iris.description, iris.tags, iris.aliases) == (
        "iris classifiers",
        {"owner": "ana"},
        {"champion": 2, "challenger": 3},
    )
    v2 = store.get_model_version("iris", 2)
    assert v2.description == "the good one"
    assert v2.tags["validated"] == "yes"
    run = store.get_run(str(v2.run_id))
    assert run.params == {"C": "1.0", "solver": "lbfgs"}
    assert run.tags[IMPORTED_RUN] == mlflow_stores.made[source_uri]["runs"]["iris/2"]
    history = store.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 1 / 3), (2, 0.25)]
    assert store.get_model_version("iris", 3).digest == store.get_model_version("twin", 1).digest

    # the same values as MLflow's model, through the yard's own loading path
    model = my.load_model("models:/iris@champion", yard=yard)
    assert list(model.predict(iris_frame())) == mlflow_stores.predictions(source_uri, "iris/2")

    again = import_mlflow(source, yard.metadata, yard.artifacts, models="[it]*")
    assert (again.versions, again.versions_present, again.runs, again.files) == (0, 4, 0, 0)
    assert len(store.search_model_versions("name = 'iris'")) == 3
    assert len(store.search_runs()) == 3
    yard.close()


def test_import_into_any_yard(mlflow_stores: MlflowStores, any_yard: Yard) -> None:
    """Embedded SQLite, PostgreSQL and a modelyard server over HTTP take the same import."""
    source = open_mlflow_source(mlflow_stores.sqlite)
    report = import_mlflow(source, any_yard.metadata, any_yard.artifacts, models="iris")
    assert (report.versions, report.aliases, report.skipped) == (3, 2, ())
    assert [v.version for v in any_yard.metadata.search_model_versions("name = 'iris'")] == [
        3,
        2,
        1,
    ]
    model = my.load_model("models:/iris@challenger")
    assert list(model.predict(iris_frame())) == mlflow_stores.predictions(
        mlflow_stores.sqlite, "iris/3"
    )
    again = import_mlflow(source, any_yard.metadata, any_yard.artifacts, models="iris")
    assert (again.versions, again.versions_present) == (0, 3)
    source.close()


def test_bad_entries_are_named_and_nothing_is_half_imported(
    mlflow_stores: MlflowStores, tmp_path: Path
) -> None:
    yard = Yard(tmp_path / "yard")
    source = open_mlflow_source(mlflow_stores.sqlite)
    report = import_mlflow(source, yard.metadata, yard.artifacts)
    reasons = {s.item: s.reason for s in report.skipped}
    assert "artifacts are missing" in reasons["broken version 1"]
    assert "outside the MLflow store's artifact roots" in reasons["outside version 1"]
    assert report.versions == 4
    assert report.models == 2  # no empty entry for models none of whose versions came
    for name in ("broken", "outside"):
        assert yard.metadata.search_model_versions(f"name = '{name}'") == []
        assert yard.metadata.search_registered_models(f"name = '{name}'") == []
    # the file beside the outside model was never read into the yard
    secret = (mlflow_stores.outside / "model" / "secret.txt").read_bytes()
    assert hashlib.sha256(secret).hexdigest() not in blobs_of(tmp_path / "yard" / "blobs")
    source.close()
    yard.close()


def test_cli_import_reports_and_exits_1_on_skips(
    mlflow_stores: MlflowStores, tmp_path: Path
) -> None:
    yard = tmp_path / "yard"
    cmd = [*CLI, "import", "mlflow", mlflow_stores.files]
    ok = subprocess.run(
        [*cmd, "--yard", str(yard), "--models", "iris"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert "versions:  3 new, 0 already there" in ok.stdout
    assert "de-duplicated" in ok.stdout
    assert "iris version 2: imported" in ok.stderr
    bad = subprocess.run([*cmd, "--yard", str(yard)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "versions:  1 new, 3 already there" in bad.stdout  # twin/1 only
    assert "broken version 1: " in bad.stdout
    assert "outside version 1: " in bad.stdout


def test_a_killed_import_resumes_to_whole_versions(
    mlflow_stores: MlflowStores, tmp_path: Path
) -> None:
    yard_dir = tmp_path / "yard"
    cmd = [*CLI, "import", "mlflow", mlflow_stores.server]
    child = subprocess.Popen(
        [*cmd, "--yard", str(yard_dir), "--models", "[it]*"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    for line in child.stderr:
        if line.startswith("iris version 1: imported"):
            child.send_signal(signal.SIGKILL)  # mid-import: version 2 is on its way
            break
    assert child.wait() == -signal.SIGKILL
    child.stderr.close()
    yard = Yard(yard_dir)
    held = [v.version for v in yard.metadata.search_model_versions("name = 'iris'")]
    assert 1 in held, held
    assert len(held) < 3, held
    source = open_mlflow_source(mlflow_stores.server)
    report = import_mlflow(source, yard.metadata, yard.artifacts, models="[it]*")
    assert report.skipped == ()
    assert report.versions + report.versions_present == 4
    assert report.versions_present >= 1
    # each version once, whole; each run once, with its whole history
    assert sorted(v.version for v in yard.metadata.search_model_versions("name = 'iris'")) == [
        1,
        2,
        3,
    ]
    runs = yard.metadata.search_runs()
    assert len(runs) == 3
    assert len({r.tags[IMPORTED_RUN] for r in runs}) == 3
    for run in runs:
        assert len(yard.metadata.get_metric_history(run.run_id, "loss")) == 3
    for name, number in (("iris", 1), ("iris", 2), ("iris", 3), ("twin", 1)):
        version = yard.metadata.get_model_version(name, number)
        from modelyard.store.trees import read_manifest

        manifest = read_manifest(yard.artifacts, version.digest)
        assert all(yard.artifacts.exists(e.sha256) for e in manifest.entries)
    model = my.load_model("models:/iris/2", yard=yard)
    assert list(model.predict(iris_frame())) == mlflow_stores.predictions(
        mlflow_stores.server, "iris/2"
    )
    source.close()
    yard.close()


def test_unreachable_source_and_wrong_token(
    mlflow_stores: MlflowStores, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    yard = Yard(tmp_path / "yard")
    nobody = open_mlflow_source(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(MlflowSourceError, match="unreachable: connection refused"):
        import_mlflow(nobody, yard.metadata, yard.artifacts)
    nobody.close()

    # MLflow behind a token-checking proxy (how teams usually guard an mlflow server)
    def guard(seen: Seen) -> object:
        if seen.headers.get("authorization") != "Bearer right":
            return Answer(401, {"content-type": "text/plain"}, b"Unauthorized")
        return FORWARD

    with HttpProxy(mlflow_stores.server, guard) as proxy:  # type: ignore[arg-type]
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "wrong")
        refused = open_mlflow_source(proxy.url)
        with pytest.raises(MlflowSourceError, match=r"refused the credentials \(401\)") as info:
            import_mlflow(refused, yard.metadata, yard.artifacts)
        refused.close()
        assert info.value.status == 401
        assert "wrong" not in str(info.value)
        assert yard.metadata.search_registered_models() == []  # nothing written
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "right")
        allowed = open_mlflow_source(proxy.url)
        report = import_mlflow(allowed, yard.metadata, yard.artifacts)
        allowed.close()
        assert report.versions == 4
        assert {s.item for s in report.skipped} == {"broken version 1"}
    cli = subprocess.run(
        [*CLI, "import", "mlflow", nobody.location],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MODELYARD_URI": str(tmp_path / "other")},
    )
    assert cli.returncode == 1
    assert "unreachable" in cli.stderr
    assert "Traceback" not in cli.stderr
    yard.close()


# -- read without migrating ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "files", "server"])
def test_mlflow_yards_load_by_alias_and_version_read_only(
    mlflow_stores: MlflowStores, kind: str, cache_home: Path
) -> None:
    uri = str(getattr(mlflow_stores, kind))
    yard_uri = "mlflow+" + uri
    X = iris_frame()
    champion = my.load_model("models:/iris@champion", yard=yard_uri)
    assert list(champion.predict(X)) == mlflow_stores.predictions(uri, "iris/2")
    v3 = my.load_model("models:/iris/3", yard=yard_uri)
    assert list(v3.predict(X)) == mlflow_stores.predictions(uri, "iris/3")
    assert my.load_model("models:/twin@champion", yard=yard_uri).digest == v3.digest
    # the digest is computed from the files: the same as an import of that version gives
    assert champion.digest.startswith("sha256:")
    staged = blobs_of(cache_home / "modelyard" / "mlflow")
    again = my.load_model("models:/iris@champion", yard=yard_uri)
    assert again.digest == champion.digest
    assert blobs_of(cache_home / "modelyard" / "mlflow") == staged  # nothing fetched again

    yard = my.yard.yard_at(yard_uri)
    with pytest.raises(ReadOnlyYard, match="read-only"):
        yard.metadata.set_alias("iris", "champion", 1)
    with pytest.raises(ReadOnlyYard, match="read-only"):
        yard.artifacts.put_bytes(b"x")
    with pytest.raises(ReadOnlyYard):
        yard.metadata.create_model_version("iris", digest=champion.digest, source="x")
    assert yard.metadata.get_registered_model("iris").aliases["champion"] == 2


def test_mlflow_yard_refuses_files_outside_the_store(
    mlflow_stores: MlflowStores, cache_home: Path
) -> None:
    with pytest.raises(MlflowArtifactsRefused, match="outside the MLflow store") as info:
        my.load_model("models:/outside/1", yard="mlflow+" + mlflow_stores.sqlite)
    assert (info.value.name, info.value.version) == ("outside", 1)
    assert not list((cache_home / "modelyard" / "mlflow").rglob("secret.txt"))
    with pytest.raises(MlflowSourceError, match="artifacts are missing"):
        my.load_model("models:/broken/1", yard="mlflow+" + mlflow_stores.files)


def test_modelyard_serve_sits_on_an_mlflow_server(
    mlflow_stores: MlflowStores, tmp_path: Path
) -> None:
    """``modelyard serve`` with MODELYARD_URI=mlflow+http://… answers with MLflow's model."""
    import httpx

    from tests._process import ServerProcess

    env = {
        "MODELYARD_URI": "mlflow+" + mlflow_stores.server,
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "MODELYARD_CACHE": str(tmp_path / "models"),
    }
    server = ServerProcess(["models:/iris@champion"], env=env)
    try:
        rows = iris_frame().head(5)  # type: ignore[attr-defined]
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
        answer = httpx.post(f"{server.url}/invocations", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        expected = mlflow_stores.predictions(mlflow_stores.server, "iris/2")[:5]
        assert answer.json()["predictions"] == expected
    finally:
        server.stop()
