"""Which yard is in use, and how a yard URI is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import modelyard as my
from modelyard.errors import InvalidURI, YardNotFound
from modelyard.yard import DEFAULT_FOLDER, parse_yard_uri


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODELYARD_URI", raising=False)
    monkeypatch.delenv("MODELYARD_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    my.set_yard(None)


def test_embedded_folder_forms(tmp_path: Path) -> None:
    for uri in (str(tmp_path / "y"), tmp_path / "y", (tmp_path / "y").as_uri()):
        spec, cache = parse_yard_uri(uri)
        assert spec.scheme == "file"
        assert spec.database_url == f"sqlite:///{tmp_path / 'y' / 'yard.db'}"
        assert spec.artifacts == str(tmp_path / "y" / "blobs")
        assert cache == tmp_path / "y" / "cache"
        assert spec.display == str(tmp_path / "y")


def test_sqlite_and_postgresql_uris(tmp_path: Path) -> None:
    spec, cache = parse_yard_uri(f"sqlite:///{tmp_path}/meta.db")
    assert (spec.scheme, spec.artifacts, cache) == (
        "sqlite",
        str(tmp_path / "blobs"),
        tmp_path / "cache",
    )
    spec, _ = parse_yard_uri(f"sqlite:///{tmp_path}/meta.db?blobs={tmp_path}/shared")
    assert spec.artifacts == str(tmp_path / "shared")
    assert "blobs" not in spec.database_url
    spec, cache = parse_yard_uri(
        "postgresql://ana:s3cret@db.internal:5432/yard?blobs=/mnt/yard&sslmode=require"
    )
    assert spec.scheme == "postgresql"
    assert spec.artifacts == "/mnt/yard"
    assert spec.database_url == "postgresql://ana:s3cret@db.internal:5432/yard?sslmode=require"
    assert "s3cret" not in spec.display
    assert "s3cret" not in repr(spec)
    assert "ana:***@db.internal:5432" in spec.display
    assert cache == tmp_path / "xdg" / "modelyard" / "models"
    spec, _ = parse_yard_uri("postgres://u@h/db?blobs=/b")
    assert spec.database_url.startswith("postgresql://")


def test_artifacts_param_names_any_artifact_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, cache = parse_yard_uri("postgresql://u@h/db?artifacts=s3://models/yard&sslmode=require")
    assert spec.artifacts == "s3://models/yard"
    assert spec.database_url == "postgresql://u@h/db?sslmode=require"
    assert cache == tmp_path / "xdg" / "modelyard" / "models"
    spec, cache = parse_yard_uri(f"sqlite:///{tmp_path}/yard.db?artifacts=s3://b/p")
    assert (spec.artifacts, cache) == ("s3://b/p", tmp_path / "cache")
    assert spec.database_url == f"sqlite:///{tmp_path}/yard.db"  # the empty host stays
    # a folder, as a path or a file: URI, is kept as its absolute path (as ?blobs= is)
    spec, _ = parse_yard_uri(f"sqlite:///{tmp_path}/yard.db?artifacts=file://{tmp_path}/b")
    assert spec.artifacts == str(tmp_path / "b")
    monkeypatch.chdir(tmp_path)
    spec, _ = parse_yard_uri("postgresql://u@h/db?artifacts=rel/blobs")
    assert spec.artifacts == str(tmp_path / "rel" / "blobs")
    described = my.set_yard(f"sqlite:///{tmp_path}/y.db?artifacts=s3://b/p").describe()
    assert described["artifacts"] == "s3://b/p"
    # one Yard per place however spelled: ?blobs=DIR is ?artifacts=DIR
    a = my.set_yard(f"sqlite:///{tmp_path}/y.db?blobs={tmp_path}/b")
    assert my.set_yard(f"sqlite:///{tmp_path}/y.db?artifacts={tmp_path}/b") is a


@pytest.mark.parametrize(
    ("query", "part", "message"),
    [
        ("blobs=/a&artifacts=s3://b/p", "artifacts", r"\?blobs= and \?artifacts= both"),
        ("artifacts=/a&artifacts=/b", "artifacts", "both name the artifact store"),
        ("artifacts=", "artifacts", r"\?artifacts= needs a value"),
        ("blobs=", "blobs", r"\?blobs= needs a value"),
        ("artifacts=s3://", "artifacts", "needs a bucket"),
        ("artifacts=s3://b/p?region=x", "artifacts", "AWS_"),
        ("artifacts=s3://user:pw@b/p", "artifacts", "not a bucket name"),
        ("artifacts=s3://b/a/../c", "artifacts", "plain path segments"),
        ("artifacts=gs://b/p", "artifacts", "no artifact store for scheme 'gs'"),
        ("artifacts=s3a://b/p", "artifacts", "did you mean 's3'"),
        ("artifacts=file://host/x", "artifacts", "must not name a host"),
    ],
)
def test_bad_artifact_stores_are_named(query: str, part: str, message: str) -> None:
    for base in ("postgresql://u:secret@h/db", "sqlite:///tmp/yard.db"):
        with pytest.raises(InvalidURI, match=message) as info:
            parse_yard_uri(f"{base}?{query}")
        assert info.value.part == part
        assert "secret" not in str(info.value)


def test_bad_yard_uris(tmp_path: Path) -> None:
    with pytest.raises(InvalidURI, match=r"\?artifacts=s3://.*\?blobs=") as info:
        parse_yard_uri("postgresql://u@h/db")
    assert info.value.part == "artifacts"
    with pytest.raises(InvalidURI, match="host"):
        parse_yard_uri("file://evil.example/x")
    with pytest.raises(InvalidURI, match="database file"):
        parse_yard_uri("sqlite:///:memory:")
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidURI, match="is a file"):
        parse_yard_uri(tmp_path / "f")
    with pytest.raises(InvalidURI, match="no store for scheme 'mongodb'"):
        my.set_yard("mongodb://h/db").metadata


def test_precedence_set_yard_then_env_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert my.get_yard().uri == str(tmp_path / DEFAULT_FOLDER)
    assert my.get_yard().kind == "embedded"
    monkeypatch.setenv("MODELYARD_URI", str(tmp_path / "from-env"))
    assert my.get_yard().uri == str(tmp_path / "from-env")
    chosen = my.set_yard(tmp_path / "chosen")
    assert my.get_yard() is chosen
    assert my.set_yard(tmp_path / "chosen") is chosen  # one Yard (one pool) per place
    my.set_yard(None)
    assert my.get_yard().uri == str(tmp_path / "from-env")
    monkeypatch.setenv("MODELYARD_CACHE", str(tmp_path / "c"))
    assert my.get_yard().cache_root == tmp_path / "c"
    assert "embedded" in repr(my.get_yard())
    assert my.get_yard().describe()["cache"] == str(tmp_path / "c")


def test_default_yard_is_created_on_first_write_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, saved_iris: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(YardNotFound):
        my.search_registered_models()
    assert not (tmp_path / DEFAULT_FOLDER).exists()
    my.register_model(saved_iris, "iris")
    assert (tmp_path / DEFAULT_FOLDER / "yard.db").is_file()
    assert my.load_model("models:/iris/1").version == 1
    my.get_yard().close()


def test_loading_by_alias_from_an_embedded_yard_imports_no_sql_toolkit(
    tmp_path: Path, saved_iris: Path
) -> None:
    my.set_yard(tmp_path / "y")
    my.set_alias("iris", "champion", my.register_model(saved_iris, "iris").version)
    my.load_model("models:/iris@champion")  # fills the cache
    my.get_yard().close()
    code = (
        "import sys, modelyard; "
        "from modelyard.loading.fetch import fetch; "
        "from modelyard.loading.resolve import resolve; "
        f"modelyard.set_yard({str(tmp_path / 'y')!r}); "
        "ref = resolve('models:/iris@champion'); local = fetch(ref); "
        "print(ref.version, local.copied, sorted(m for m in ('alembic', 'sqlalchemy', 'sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1 False []"
