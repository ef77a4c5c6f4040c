"""Runs: status, nesting, params/metrics/tags, files that cannot leave the run, log_model."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest

import modelyard as my
from modelyard.errors import (
    ExperimentNotFound,
    InvalidURI,
    RunNotFound,
    TrackingError,
)
from modelyard.yard import Yard


def test_a_run_finishes_or_fails_with_its_block(yard: Yard) -> None:
    with my.start_run(experiment="fraud", run_name="ok") as run:
        assert my.active_run() is run
        assert run.info.status == "RUNNING"
    assert my.active_run() is None
    assert my.get_run(run.run_id).status == "FINISHED"
    with pytest.raises(ZeroDivisionError), my.start_run(experiment="fraud") as failed:
        1 / 0
    got = my.get_run(failed.run_id)
    assert got.status == "FAILED"
    assert got.end_time is not None
    assert got.experiment == "fraud"
    assert my.active_run() is None


def test_nested_runs_record_their_parent(yard: Yard) -> None:
    with my.start_run(experiment="tune") as parent:
        with pytest.raises(TrackingError, match="already active"):
            my.start_run()
        with my.start_run(nested=True, run_name="trial") as child:
            my.log_metric("loss", 0.3)
            assert my.active_run() is child
        assert my.active_run() is parent
    assert my.get_run(child.run_id).parent_run_id == parent.run_id
    assert my.get_run(child.run_id).metrics == {"loss": 0.3}
    assert my.get_run(parent.run_id).metrics == {}


def test_active_runs_are_per_thread(yard: Yard) -> None:
    seen: list[object] = []
    with my.start_run():
        t = threading.Thread(target=lambda: seen.append(my.active_run()))
        t.start()
        t.join()
    assert seen == [None]


def test_params_metrics_tags(yard: Yard) -> None:
    with my.start_run(experiment="e", tags={"team": "risk"}) as run:
        my.log_param("C", 1.0)
        my.log_params({"max_iter": 1000, "solver": "lbfgs"})
        my.log_param("C", "1.0")  # the same value again is fine
        with pytest.raises(TrackingError, match=r"already '1\.0'"):
            my.log_param("C", 2.0)
        for step, loss in enumerate([0.9, 0.5, 0.4]):
            my.log_metric("loss", loss, step=step)
        my.log_metrics({"auc": 0.93, "nan": math.nan})
        my.set_tag("stage", "dev")
        my.set_tags({"owner": "ana"})
        run.log_metric("direct", 1)
    got = my.get_run(run.run_id)
    assert got.params == {"C": "1.0", "max_iter": "1000", "solver": "lbfgs"}
    assert got.metrics["loss"] == 0.4
    assert got.metrics["auc"] == 0.93
    assert math.isnan(got.metrics["nan"])
    assert got.metrics["direct"] == 1.0
    assert got.tags == {"team": "risk", "stage": "dev", "owner": "ana"}
    history = yard.metadata.get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.4)]


def test_bad_keys_and_values_are_refused(yard: Yard) -> None:
    with my.start_run():
        for bad in ("", "a\nb", "../x", "/abs", "x" * 300, "semi;colon"):
            with pytest.raises(TrackingError):
                my.log_param(bad, 1)
        with pytest.raises(TrackingError, match="must be a number"):
            my.log_metric("m", "high")  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match="step"):
            my.log_metric("m", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(TrackingError, match="longer than"):
            my.log_param("long", "x" * 7000)
        my.log_metric("train/loss", 0.1)  # slashes are fine in keys


def test_logging_needs_an_active_run(yard: Yard, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    for call in (
        lambda: my.log_param("a", 1),
        lambda: my.log_metric("a", 1),
        lambda: my.set_tag("a", 1),
        lambda: my.log_artifact(tmp_path / "f.txt"),
    ):
        with pytest.raises(TrackingError, match="needs an active run"):
            call()


def test_artifacts_land_where_asked_and_never_outside_the_run(yard: Yard, tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("report")
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    (data / "a.csv").write_text("a")
    (data / "nested" / "b.csv").write_text("b")
    with my.start_run() as run:
        assert my.log_artifact(tmp_path / "report.txt") == "report.txt"
        assert my.log_artifact(tmp_path / "report.txt", "docs/v1") == "docs/v1/report.txt"
        assert my.log_artifacts(data, "inputs") == ["inputs/a.csv", "inputs/nested/b.csv"]
        for bad in ("../escape", "/etc", "a/../../b", "C:\\x", "..\\..\\x"):
            with pytest.raises(InvalidURI, match="artifact path"):
                my.log_artifact(tmp_path / "report.txt", bad)
        with pytest.raises(TrackingError, match="needs a directory"):
            my.log_artifacts(tmp_path / "report.txt")
        with pytest.raises(TrackingError, match="needs a file"):
            my.log_artifact(data)
    paths = [e.path for e in my.list_artifacts(run.run_id)]
    assert paths == ["docs/v1/report.txt", "inputs/a.csv", "inputs/nested/b.csv", "report.txt"]
    assert [e.path for e in my.list_artifacts(run.run_id, "inputs")] == [
        "inputs/a.csv",
        "inputs/nested/b.csv",
    ]
    # The same file logged twice is one blob.
    entries = my.list_artifacts(run.run_id)
    assert entries[0].sha256 == entries[-1].sha256
    assert yard.artifacts.read_bytes(entries[0].sha256) == b"report"
    with pytest.raises(InvalidURI):
        my.list_artifacts(run.run_id, "../x")


def test_log_model_and_load_it_back(yard: Yard, iris_model: Any, iris: Any) -> None:
    X, _ = iris
    with my.start_run(experiment="iris") as run:
        info = my.log_model(iris_model, "model", input_example=X.head(3))
    assert info.model_uri == f"runs:/{run.run_id}/model"
    assert info.flavor == "sklearn"
    assert info.signature is not None
    assert info.registered_version is None
    model = my.load_model(info.model_uri)
    assert model.digest == info.digest
    assert model.name is None
    assert (model.predict(X) == iris_model.predict(X)).all()
    paths = {e.path for e in my.list_artifacts(run.run_id, "model")}
    assert {"model/MLmodel", "model/model.pkl", "model/requirements.txt"} <= paths


def test_log_model_without_a_run_makes_a_finished_one(yard: Yard, iris_model: Any) -> None:
    info = my.log_model(iris_model, "clf", registered_model_name="iris")
    assert my.get_run(info.run_id).status == "FINISHED"
    assert info.registered_version is not None
    assert info.registered_version.version == 1
    assert info.registered_version.source == info.model_uri
    assert my.load_model("models:/iris/1").digest == info.digest
    assert my.active_run() is None
    with pytest.raises(InvalidURI):
        my.log_model(iris_model, "../x")
    with pytest.raises(TrackingError, match="non-empty"):
        my.log_model(iris_model, "")


def test_search_runs(yard: Yard) -> None:
    for c, auc in [(0.1, 0.8), (1.0, 0.9), (10.0, 0.85)]:
        with my.start_run(experiment="tune"):
            my.log_params({"C": c})
            my.log_metric("auc", auc)
    with my.start_run(experiment="other"):
        my.log_metric("auc", 0.99)
    best = my.search_runs("tune", order_by=["metrics.auc DESC"])
    assert [r.params["C"] for r in best] == ["1.0", "10.0", "0.1"]
    assert [r.params["C"] for r in my.search_runs("tune", "metrics.auc >= 0.85")] != []
    assert len(my.search_runs(["tune", "other"])) == 4
    assert len(my.search_runs()) == 4
    assert [r.params for r in my.search_runs("tune", "params.C = '10.0'")] == [{"C": "10.0"}]
    with pytest.raises(ExperimentNotFound, match="did you mean 'tune'"):
        my.search_runs("tun")
    with pytest.raises(RunNotFound):
        my.get_run("0" * 32)


def test_set_experiment(yard: Yard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("modelyard.tracking._Defaults.experiment", None)
    my.set_experiment("chosen")
    with my.start_run() as run:
        pass
    assert my.get_run(run.run_id).experiment == "chosen"
    with pytest.raises(InvalidURI):
        my.set_experiment("a/b")


def test_a_run_stays_in_its_yard(yard: Yard, tmp_path: Path, iris_model: Any) -> None:
    with my.start_run() as run:
        my.set_yard(tmp_path / "elsewhere")
        try:
            my.log_metric("m", 1.0)
            info = my.log_model(iris_model, "model", registered_model_name="iris")
        finally:
            my.set_yard(yard.uri)
    assert my.get_run(run.run_id).metrics == {"m": 1.0}
    assert my.get_run(run.run_id).status == "FINISHED"
    assert info.registered_version is not None
    assert my.get_model_version("iris", 1).run_id == run.run_id
    assert not (tmp_path / "elsewhere").exists()
