"""The registry API: versions pinned to digests in the yard, aliases with history, validation."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import modelyard as my
from modelyard.errors import (
    AliasNotFound,
    ArtifactNotFound,
    IntegrityError,
    InvalidURI,
    MLmodelNotFound,
    ModelFormatError,
    ModelNotFound,
    ModelVersionNotFound,
    RegisteredModelNotFound,
)
from modelyard.yard import Yard


def _blob_files(blobs: Path) -> list[Path]:
    found = [p for p in (blobs / "sha256").rglob("*") if p.is_file()]
    assert found, f"no blobs under {blobs}"
    return found


def test_register_a_local_directory_copies_it_into_the_yard(
    any_yard: Yard, saved_iris: Path, iris: Any
) -> None:
    version = my.register_model(saved_iris, "iris", description="first", tags={"team": "ds"})
    assert (version.name, version.version) == ("iris", 1)
    assert version.digest == my.load_model(saved_iris).digest
    # The recorded source is the yard's own digest, never the local path.
    assert version.source == version.digest
    assert str(saved_iris) not in version.source
    assert version.created_by is not None
    shutil.rmtree(saved_iris)  # the yard holds its own copy
    model = my.load_model("models:/iris/1")
    assert model.digest == version.digest
    assert list(model.predict(iris[0].head(3))) == [0, 0, 0]
    # the directory's signature came along, beside the files, and still verifies
    tags = my.get_model_version("iris", "1").tags
    assert tags.pop("modelyard.signature").startswith('{"payload"')
    assert tags == {"team": "ds"}
    assert model.trust is not None
    assert model.trust.signature == "verified"


def test_identical_files_are_stored_once(
    any_yard: Yard, yard_blobs: Path, saved_iris: Path
) -> None:
    my.register_model(saved_iris, "a")
    count = len(_blob_files(yard_blobs))
    for name in ("a", "a", "b", "c"):
        my.register_model(saved_iris, name)
    assert len(_blob_files(yard_blobs)) == count
    assert my.get_registered_model("a").latest_version == 3


def test_register_from_runs_and_models_uris(any_yard: Yard, iris_model: Any) -> None:
    with my.start_run() as run:
        logged = my.log_model(iris_model, "model")
    v1 = my.register_model(f"runs:/{run.run_id}/model", "iris")
    assert (v1.source, v1.run_id, v1.digest) == (logged.model_uri, run.run_id, logged.digest)
    my.set_alias("iris", "champion", 1)
    copy = my.register_model("models:/iris@champion", "iris-eu")
    assert (copy.source, copy.digest, copy.run_id) == ("models:/iris/1", v1.digest, run.run_id)
    latest = my.register_model("models:/iris-eu/latest", "iris-eu")
    assert latest.version == 2
    assert latest.source == "models:/iris-eu/1"


def test_register_refuses_what_is_not_a_model(any_yard: Yard, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hi")
    with pytest.raises(MLmodelNotFound):
        my.register_model(tmp_path / "notes", "m")
    with pytest.raises(ModelNotFound, match="no model directory"):
        my.register_model(tmp_path / "missing", "m")
    with my.start_run() as run:
        my.log_artifact(tmp_path / "notes" / "a.txt", "docs")
    with pytest.raises(MLmodelNotFound):
        my.register_model(f"runs:/{run.run_id}/docs", "m")
    with pytest.raises(ArtifactNotFound, match="did you mean 'docs'"):
        my.register_model(f"runs:/{run.run_id}/doc", "m")
    with pytest.raises(ModelNotFound, match="is a file"):
        my.register_model(f"runs:/{run.run_id}/docs/a.txt", "m")
    with pytest.raises(RegisteredModelNotFound):
        my.get_registered_model("m")  # nothing was created along the way


@pytest.mark.parametrize(
    "source",
    [
        "s3://bucket/model",
        "http://127.0.0.1:1/model",
        "ftp://host/model",
        "mlflow-artifacts:/x",
        "models:/../etc/1",
        "models:/a/1/../../x",
        "runs:/abc/../../etc",
        "runs:/abc//etc/passwd",
        "models:/a b/1\x00",
    ],
)
def test_unsafe_or_unknown_sources_are_refused(any_yard: Yard, source: str) -> None:
    with pytest.raises(InvalidURI):
        my.register_model(source, "m")
    assert my.search_registered_models() == []


def test_a_tampered_or_leaking_directory_is_refused(
    any_yard: Yard, saved_iris: Path, tmp_path: Path
) -> None:
    with open(saved_iris / "model.pkl", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        my.register_model(saved_iris, "m")
    secret = tmp_path / "id_rsa"
    secret.write_text("key")
    clean = tmp_path / "clean"
    shutil.copytree(saved_iris, clean)
    (clean / "MANIFEST.sha256").unlink()
    (clean / "leak").symlink_to(secret)
    with pytest.raises(ModelFormatError, match="pointing outside"):
        my.register_model(clean, "m")
    assert my.search_registered_models() == []


@pytest.mark.parametrize(
    ("name", "part"),
    [("a/b", "model name"), ("..", "model name"), ("a:b", "model name"), ("", "model name")],
)
def test_names_are_validated(any_yard: Yard, saved_iris: Path, name: str, part: str) -> None:
    with pytest.raises(InvalidURI) as info:
        my.register_model(saved_iris, name)
    assert info.value.part == part


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v3", "V12", "a b", "a/b", "a..b", "x@y"])
def test_aliases_are_validated(any_yard: Yard, saved_iris: Path, alias: str) -> None:
    my.register_model(saved_iris, "m")
    with pytest.raises(InvalidURI):
        my.set_alias("m", alias, 1)
    assert my.get_registered_model("m").aliases == {}


def test_tag_keys_are_validated(any_yard: Yard, saved_iris: Path) -> None:
    my.register_model(saved_iris, "m")
    for bad in ("a/b", "..", "x\ny"):
        with pytest.raises(InvalidURI):
            my.set_registered_model_tag("m", bad, "v")
        with pytest.raises(InvalidURI):
            my.set_model_version_tag("m", 1, bad, "v")
    with pytest.raises(ValueError, match="positive integer"):
        my.get_model_version("m", 0)
    with pytest.raises(ValueError, match="positive integer"):
        my.get_model_version("m", "one")


def test_alias_history_answers_which_version_was_champion_when(
    any_yard: Yard, saved_iris: Path
) -> None:
    for _ in range(3):
        my.register_model(saved_iris, "fraud")
    my.set_alias("fraud", "champion", 1)
    time.sleep(0.02)
    moment = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.02)
    my.set_alias("fraud", "champion", 3)
    history = my.get_alias_history("fraud", "champion")
    assert [(c.from_version, c.to_version) for c in history] == [(None, 1), (1, 3)]
    assert all(c.changed_by == history[0].changed_by for c in history)
    assert my.get_model_version_by_alias("fraud", "champion", at=moment).version == 1
    assert my.get_model_version_by_alias("fraud", "champion").version == 3
    with pytest.raises(AliasNotFound):
        my.get_model_version_by_alias("fraud", "champion", at=dt.datetime(2000, 1, 1))
    with pytest.raises(AliasNotFound, match="did you mean 'champion'"):
        my.get_alias_history("fraud", "champoin")


def test_delete_version_moves_nothing_silently(any_yard: Yard, saved_iris: Path) -> None:
    for _ in range(2):
        my.register_model(saved_iris, "m")
    my.set_alias("m", "champion", 2)
    my.delete_model_version("m", 2)
    with pytest.raises(AliasNotFound, match="it has no aliases"):
        my.load_model("models:/m@champion")
    with pytest.raises(ModelVersionNotFound):
        my.get_model_version("m", 2)
    assert my.register_model(saved_iris, "m").version == 3
    assert my.load_model("models:/m/latest").version == 3
    assert my.get_alias_history("m", "champion")[-1].to_version is None


def test_rename_descriptions_search(any_yard: Yard, saved_iris: Path) -> None:
    my.register_model(saved_iris, "fraud")
    my.set_alias("fraud", "champion", 1)
    my.update_registered_model("fraud", description="fraud scoring")
    my.update_model_version("fraud", 1, description="baseline")
    my.set_registered_model_tag("fraud", "team", "risk")
    renamed = my.rename_registered_model("fraud", "fraud-v2")
    assert renamed.description == "fraud scoring"
    assert renamed.aliases == {"champion": 1}
    assert my.load_model("models:/fraud-v2@champion").version == 1
    assert [m.name for m in my.search_registered_models("tags.team = 'risk'")] == ["fraud-v2"]
    found = my.search_model_versions("name = 'fraud-v2'")
    assert [(v.version, v.description, v.aliases) for v in found] == [
        (1, "baseline", ("champion",))
    ]
    my.delete_registered_model_tag("fraud-v2", "team")
    my.delete_registered_model("fraud-v2")
    assert my.search_registered_models() == []
