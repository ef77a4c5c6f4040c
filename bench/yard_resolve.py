"""Resolving ``models:/<name>@champion`` in a big registry: 10,000 models, 100,000 versions.

Both registries are filled with the same shape (10 versions per model,
``@champion`` on one of them, ``@challenger`` on every tenth model) by bulk
inserts into the stores' own tables, then resolved in-process for random names:

- ``modelyard``: :func:`modelyard.loading.resolve.resolve` on the URI (parse + one
  query), on the embedded SQLite yard, and on PostgreSQL (for information);
- ``mlflow``: ``ModelsArtifactRepository.get_underlying_uri`` on the same URI
  (the lookups ``load_model`` does before downloading), on its SQLite store.

Target (issue 4): modelyard on SQLite under 5 ms median per resolve.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._util import (
    Summary,
    interleave,
    print_table,
    run_mlflow,
    write_results,
)

MODELS = int(os.environ.get("BENCH_YARD_MODELS", "10000"))
VERSIONS = int(os.environ.get("BENCH_YARD_VERSIONS", "10"))
TARGET_MS = 5.0
POSTGRES = os.environ.get("MODELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SEED = 0


def _champion(i: int) -> int:
    return 1 + (i * 7) % VERSIONS


def fill_modelyard(url: str) -> None:
    """Create the schema through the store, then bulk-insert the registry."""
    import sqlalchemy as sa

    from modelyard.store.sql.schema import (
        alias_history,
        model_aliases,
        model_versions,
        registered_models,
    )
    from modelyard.store.sql.store import SqlMetadataStore

    store = SqlMetadataStore(url)
    now = int(time.time() * 1000)
    rng = random.Random(SEED)
    models, versions, aliases, history = [], [], [], []
    for i in range(MODELS):
        model_id = i + 1
        models.append(
            {
                "model_id": model_id,
                "name": f"model-{i:05d}",
                "created_at": now,
                "updated_at": now,
                "next_version": VERSIONS + 1,
            }
        )
        for v in range(1, VERSIONS + 1):
            digest = f"sha256:{rng.getrandbits(256):064x}"
            versions.append(
                {
                    "model_id": model_id,
                    "version": v,
                    "digest": digest,
                    "source": digest,
                    "status": "READY",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        picks = [("champion", _champion(i))] + ([("challenger", VERSIONS)] if i % 10 == 0 else [])
        for alias, v in picks:
            aliases.append({"model_id": model_id, "alias": alias, "version": v})
            history.append(
                {"model_id": model_id, "alias": alias, "to_version": v, "changed_at": now}
            )
    with store.db.write() as conn:
        for table, rows in (
            (registered_models, models),
            (model_versions, versions),
            (model_aliases, aliases),
            (alias_history, history),
        ):
            for start in range(0, len(rows), 20000):
                conn.execute(sa.insert(table), rows[start : start + 20000])
    if store.db.dialect == "postgresql":
        with store.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    store.close()


def _names(count: int) -> Iterator[int]:
    rng = random.Random(SEED + 1)
    while True:
        yield rng.randrange(count)


def time_modelyard(yard_uri: str) -> dict[str, list[float]]:
    """Seconds per resolve of random names, for @champion, /<version> and /latest."""
    import modelyard
    from modelyard.loading.resolve import resolve

    modelyard.set_yard(yard_uri)
    picks = _names(MODELS)

    def by(form: str) -> Callable[[], object]:
        def call() -> object:
            i = next(picks)
            uri = {
                "alias": f"models:/model-{i:05d}@champion",
                "version": f"models:/model-{i:05d}/{_champion(i)}",
                "latest": f"models:/model-{i:05d}/latest",
            }[form]
            ref = resolve(uri)
            if form != "latest" and ref.version != _champion(i):
                raise AssertionError(f"{uri} resolved to v{ref.version}")
            return ref

        return call

    samples = interleave({form: by(form) for form in ("alias", "version", "latest")})
    modelyard.get_yard().close()
    modelyard.set_yard(None)
    return samples


MLFLOW_SCRIPT = """
import json, os, random, sys, time

import mlflow
from mlflow import MlflowClient
from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

from bench._util import interleave

root, models, versions, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
uri = f"sqlite:///{root}/mlflow.db"
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
client = MlflowClient()

# One real model and version as templates, so every column MLflow has gets a value.
client.create_registered_model("template")
client.create_model_version("template", source=f"{root}/artifacts/model", run_id=None)
client.set_registered_model_alias("template", "champion", "1")

import sqlite3
con = sqlite3.connect(f"{root}/mlflow.db")
con.row_factory = sqlite3.Row

def template(table):
    row = dict(con.execute(f"SELECT * FROM {table} LIMIT 1").fetchone())
    return row

rm = template("registered_models")
mv = template("model_versions")
al = template("registered_model_aliases")
champion = lambda i: 1 + (i * 7) % versions
rng = random.Random(seed)
rows_m, rows_v, rows_a = [], [], []
for i in range(models):
    name = f"model-{i:05d}"
    rows_m.append({**rm, "name": name})
    for v in range(1, versions + 1):
        rows_v.append({**mv, "name": name, "version": v,
                       "source": f"{root}/artifacts/{rng.getrandbits(64):016x}",
                       "storage_location": f"{root}/artifacts/{v}"})
    rows_a.append({**al, "name": name, "alias": "champion", "version": champion(i)})
    if i % 10 == 0:
        rows_a.append({**al, "name": name, "alias": "challenger", "version": versions})

def insert(table, rows):
    cols = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    con.executemany(sql, [tuple(r[c] for c in cols) for r in rows])

insert("registered_models", rows_m)
insert("model_versions", rows_v)
insert("registered_model_aliases", rows_a)
con.commit()
con.close()

picks = random.Random(seed + 1)

def alias():
    i = picks.randrange(models)
    return ModelsArtifactRepository.get_underlying_uri(f"models:/model-{i:05d}@champion")

def by_alias_only():
    i = picks.randrange(models)
    v = client.get_model_version_by_alias(f"model-{i:05d}", "champion")
    assert int(v.version) == champion(i)
    return v

def version():
    i = picks.randrange(models)
    return ModelsArtifactRepository.get_underlying_uri(f"models:/model-{i:05d}/{champion(i)}")

samples = interleave(
    {"alias": alias, "version": version, "get_model_version_by_alias": by_alias_only}
)
print(json.dumps(samples))
"""


def time_mlflow(root: Path) -> dict[str, list[float]]:
    """The same registry in MLflow's SQLite store, resolved by MLflow."""
    out: dict[str, list[float]] = run_mlflow(
        MLFLOW_SCRIPT, str(root), str(MODELS), str(VERSIONS), str(SEED), with_bench=True
    )
    return out


def _postgres_db() -> tuple[str, Callable[[], None]] | None:
    try:
        import psycopg

        admin = psycopg.connect(POSTGRES, autocommit=True)
    except Exception as exc:  # the PostgreSQL figure is for information only
        print(f"(PostgreSQL not reachable, skipped: {exc})")
        return None
    name = f"modelyard_bench_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return f"{POSTGRES.rsplit('/', 1)[0]}/{name}", drop


def main() -> None:
    """Fill both registries, resolve random names, print medians and the target verdict."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-yard-resolve-"))
    results: dict[str, Any] = {"models": MODELS, "versions_per_model": VERSIONS}
    try:
        yard_dir = tmp / "yard"
        start = time.perf_counter()
        fill_modelyard(f"sqlite:///{yard_dir / 'yard.db'}")
        print(f"filled the modelyard registry in {time.perf_counter() - start:.1f} s")
        ours = time_modelyard(str(yard_dir))
        pg = _postgres_db()
        ours_pg: dict[str, list[float]] | None = None
        if pg is not None:
            url, drop = pg
            try:
                fill_modelyard(url)
                ours_pg = time_modelyard(f"{url}?blobs={tmp / 'pg-blobs'}")
            finally:
                drop()
        mlflow_root = tmp / "mlflow"
        mlflow_root.mkdir()
        theirs = time_mlflow(mlflow_root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for label, samples in (
        ("modelyard, SQLite", ours),
        ("modelyard, PostgreSQL", ours_pg),
        ("mlflow, SQLite", theirs),
    ):
        if samples is None:
            continue
        for form, values in samples.items():
            rows.append([label, form, Summary.of(values).fmt(3, 1000)])
        results[label] = {form: asdict(Summary.of(v)) for form, v in samples.items()}
    print_table(
        f"Resolve models:/<name>@champion etc., {MODELS:,} models x {VERSIONS} versions "
        "(ms per call, median (min..max) of repeats)",
        ["store", "form", "ms"],
        rows,
    )
    alias_ms = Summary.of(ours["alias"]).median * 1000
    mlflow_ms = Summary.of(theirs["alias"]).median * 1000
    verdict = "ok" if alias_ms < TARGET_MS else "MISSED"
    print(
        f"\n@champion on SQLite: modelyard {alias_ms:.3f} ms (target < {TARGET_MS} ms: {verdict}); "
        f"MLflow {mlflow_ms:.3f} ms, {mlflow_ms / alias_ms:.1f}x slower"
    )
    results["target"] = {
        "alias_ms_below": TARGET_MS,
        "alias_ms": alias_ms,
        "met": alias_ms < TARGET_MS,
    }
    write_results("yard_resolve", results)


if __name__ == "__main__":
    main()
