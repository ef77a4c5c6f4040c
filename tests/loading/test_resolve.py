"""Every URI form loads; resolution happens once; misses name what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import modelyard as my
from modelyard import loading
from modelyard.errors import (
    AliasNotFound,
    ArtifactNotFound,
    InvalidURI,
    ModelNotFound,
    ModelVersionNotFound,
    RegisteredModelNotFound,
    RunNotFound,
    YardNotFound,
)
from modelyard.loading.resolve import resolve
from modelyard.yard import Yard


@pytest.fixture
def registered(yard: Yard, iris_model: Any, iris: Any) -> str:
    """iris v1 (logged in a run, @champion) and v2 (@challenger); returns the run id."""
    with my.start_run(experiment="iris") as run:
        my.log_model(iris_model, "model", registered_model_name="iris", input_example=iris[0][:2])
    my.set_alias("iris", "champion", 1)
    from sklearn.dummy import DummyClassifier

    dummy = DummyClassifier(strategy="constant", constant=2).fit(*iris)
    my.log_model(dummy, "model", registered_model_name="iris")
    my.set_alias("iris", "challenger", 2)
    return run.run_id


def test_every_uri_form_loads(registered: str, saved_iris: Path, iris: Any) -> None:
    X = iris[0].head(5)
    cases = {
        "models:/iris/1": ("iris", 1, None, 0),
        "models:/iris@champion": ("iris", 1, "champion", 0),
        "models:/iris@challenger": ("iris", 2, "challenger", 2),
        "models:/iris/latest": ("iris", 2, None, 2),
        "models:/iris/LATEST": ("iris", 2, None, 2),
        f"runs:/{registered}/model": (None, None, None, 0),
        str(saved_iris): (None, None, None, 0),
        saved_iris.as_uri(): (None, None, None, 0),
    }
    for uri, (name, version, alias, label) in cases.items():
        model = my.load_model(uri)
        assert (model.name, model.version, model.alias) == (name, version, alias), uri
        assert model.uri == uri
        assert model.digest.startswith("sha256:")
        assert list(model.predict(X)) == [label] * 5, uri
    # The run's copy and the registered version are the same files.
    assert (
        my.load_model(f"runs:/{registered}/model").digest == my.load_model("models:/iris/1").digest
    )
    assert "iris v1 (@champion)" in repr(my.load_model("models:/iris@champion"))


def test_alias_moved_mid_load_still_loads_one_version(
    registered: str, monkeypatch: pytest.MonkeyPatch, iris: Any
) -> None:
    real_fetch = loading.fetch

    def fetch_after_a_move(ref: Any) -> Any:
        my.set_alias("iris", "champion", 2)  # someone promotes v2 right now
        return real_fetch(ref)

    monkeypatch.setattr(loading, "fetch", fetch_after_a_move)
    model = my.load_model("models:/iris@champion")
    assert model.version == 1
    assert model.digest == my.get_model_version("iris", 1).digest
    assert list(model.predict(iris[0].head(3))) == [0, 0, 0]  # v1's answers, not v2's
    monkeypatch.setattr(loading, "fetch", real_fetch)
    assert my.load_model("models:/iris@champion").version == 2


def test_resolution_reads_the_registry_once(registered: str) -> None:
    ref = resolve("models:/iris@champion")
    assert (ref.name, ref.version, ref.alias, ref.run_id) == ("iris", 1, "champion", registered)
    assert ref.digest == my.get_model_version("iris", 1).digest
    assert ref.location is None
    ref = resolve(f"runs:/{registered}/model")
    assert ref.manifest is not None
    assert ref.digest == ref.manifest.digest


def test_sub_paths_of_versions(registered: str, yard: Yard, tmp_path: Path) -> None:
    model = my.load_model(f"runs:/{registered}/model")
    assert model.path.is_dir()
    with pytest.raises(ArtifactNotFound, match="no path 'nothing'"):
        my.load_model("models:/iris/1/nothing")


def test_misses_name_what_is_missing(registered: str) -> None:
    with pytest.raises(
        RegisteredModelNotFound, match="no registered model 'irs'; did you mean 'iris'"
    ):
        my.load_model("models:/irs@champion")
    with pytest.raises(ModelVersionNotFound, match=r"no version 7 \(versions: 1-2\)"):
        my.load_model("models:/iris/7")
    with pytest.raises(AliasNotFound) as info:
        my.load_model("models:/iris@champoin")
    assert "did you mean 'champion'" in str(info.value)
    assert "@challenger -> v2, @champion -> v1" in str(info.value)
    assert info.value.uri == "models:/iris@champoin"
    with pytest.raises(RunNotFound) as run_info:
        my.load_model(f"runs:/{registered[:10]}{'0' * 22}/model")
    assert run_info.value.suggestions == (registered,)
    with pytest.raises(ArtifactNotFound, match="did you mean 'model'"):
        my.load_model(f"runs:/{registered}/modle")
    with pytest.raises(ModelNotFound, match="is a file"):
        my.load_model(f"runs:/{registered}/model/MLmodel")
    for bad in ("models:/iris", "models:/iris/0", "models:/iris@latest", "unknown:/x"):
        with pytest.raises(InvalidURI):
            my.load_model(bad)


def test_a_yard_that_was_never_written_is_not_created_by_a_read(tmp_path: Path) -> None:
    my.set_yard(tmp_path / "nothing-here")
    try:
        with pytest.raises(YardNotFound, match="nothing has been logged"):
            my.load_model("models:/iris@champion")
        assert not (tmp_path / "nothing-here").exists()
    finally:
        my.set_yard(None)
