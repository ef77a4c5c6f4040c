"""Alias resolution over HTTP: ``modelyard server`` vs ``mlflow server``, 10,000 x 10 registry.

Both servers run over PostgreSQL (a database each, on the same server), on
loopback, with the same number of worker processes (``BENCH_SERVER_WORKERS``,
default 2: the machine has 2 cores). Each registry gets the same content, bulk
inserted into the server's own schema after the server's own code created it
(tables and indexes): 10,000 models (``iris`` and ``model-00001`` ..
``model-09999``), 10 versions each, ``@champion`` on one version of every model,
``@challenger`` on every tenth; then ``ANALYZE``.

Load: wrk, 1 thread, concurrency 1 and 16, keep-alive, GET with the header a
client sends (``Authorization: Bearer <token>``; MLflow runs without an auth app
and ignores it, so it does less work per request than modelyard, which checks the
token):

- modelyard: ``GET /api/v1/models/iris/resolve?alias=champion``
- MLflow: ``GET /api/2.0/mlflow/registered-models/alias?name=iris&alias=champion``

and the same with a random model name per request (a Lua ``request``). The
answers are checked before the load (iris resolves to its champion version on
both) and every wrk run must have no errors and no non-2xx answers. Servers are
up at the same time and loaded in turn, the order rotating each round.

Targets (the server issue): >= 10x MLflow's req/s and p50 < 2 ms, for
``models:/iris@champion``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._servers import (
    WORKERS,
    ServerProc,
    database,
    http_json,
    init_admin,
    seed_mlflow,
    seed_modelyard,
    start_mlflow,
    start_modelyard,
    wrk_get,
)
from bench._util import BenchError, Summary, print_table, write_results

MODELS = int(os.environ.get("BENCH_YARD_MODELS", "10000"))
VERSIONS = int(os.environ.get("BENCH_YARD_VERSIONS", "10"))
DURATION = int(os.environ.get("SERVER_DURATION", "10"))
WARMUP = int(os.environ.get("SERVER_WARMUP", "3"))
ROUNDS = int(os.environ.get("SERVER_ROUNDS", "3"))
CONCURRENCY = [int(c) for c in os.environ.get("SERVER_CONC", "1,16").split(",")]
TARGET_RATIO = 10.0
TARGET_P50_MS = 2.0
SEED = 0


def name_of(i: int) -> str:
    return "iris" if i == 0 else f"model-{i:05d}"


def champion(i: int) -> int:
    return 1 + (i * 7 + 6) % VERSIONS  # iris: version 7


def _rows() -> tuple[list[str], list[tuple[str, int, str]], list[tuple[str, str, int]]]:
    """Names; (name, version, sha256-hex) per version; (name, alias, version) per alias."""
    rng = random.Random(SEED)
    names = [name_of(i) for i in range(MODELS)]
    versions = [
        (n, v, f"{rng.getrandbits(256):064x}") for n in names for v in range(1, VERSIONS + 1)
    ]
    aliases = [(name_of(i), "champion", champion(i)) for i in range(MODELS)]
    aliases += [(name_of(i), "challenger", VERSIONS) for i in range(0, MODELS, 10)]
    return names, versions, aliases


def fill_modelyard(url: str) -> None:
    """The registry in modelyard's schema (made by its own store code), plus file lists."""
    from modelyard.store.sql.schema import (
        alias_history,
        model_aliases,
        model_versions,
        registered_models,
        version_files,
    )

    now = int(time.time() * 1000)
    names, versions, aliases = _rows()
    ids = {n: i + 1 for i, n in enumerate(names)}
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (
            registered_models,
            [
                {
                    "model_id": ids[n],
                    "name": n,
                    "created_at": now,
                    "updated_at": now,
                    "next_version": VERSIONS + 1,
                }
                for n in names
            ],
        ),
        (
            model_versions,
            [
                {
                    "model_id": ids[n],
                    "version": v,
                    "digest": f"sha256:{h}",
                    "source": f"sha256:{h}",
                    "status": "READY",
                    "created_at": now,
                    "updated_at": now,
                    "created_by": "bench",
                }
                for n, v, h in versions
            ],
        ),
        (
            version_files,
            [
                {"model_id": ids[n], "version": v, "path": "MLmodel", "size": 512, "sha256": h}
                for n, v, h in versions
            ],
        ),
        (
            model_aliases,
            [{"model_id": ids[n], "alias": a, "version": v} for n, a, v in aliases],
        ),
        (
            alias_history,
            [
                {"model_id": ids[n], "alias": a, "to_version": v, "changed_at": now}
                for n, a, v in aliases
            ],
        ),
    ]
    seed_modelyard(url, tables, len(ids))


def fill_mlflow(url: str, server: ServerProc) -> None:
    """The same registry in MLflow's schema (see :func:`bench._servers.seed_mlflow`)."""
    names, versions, aliases = _rows()
    rows = [
        (n, v, {"source": f"s3://bench/{h[:32]}", "storage_location": f"s3://bench/{h[:32]}"})
        for n, v, h in versions
    ]
    seed_mlflow(url, server, names, rows, aliases)


def _random_names_lua(path_format: str) -> str:
    """A wrk ``request`` function asking about a random one of the models."""
    return (
        f"math.randomseed({SEED})\n"
        "request = function()\n"
        f"  local i = math.random(0, {MODELS - 1})\n"
        '  local name = "iris"\n'
        '  if i > 0 then name = string.format("model-%05d", i) end\n'
        f'  return wrk.format("GET", string.format("{path_format}", name))\n'
        "end"
    )


def _check(ours: ServerProc, theirs: ServerProc, token: str) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    got = http_json("GET", ours.url + "/api/v1/models/iris/resolve?alias=champion", None, bearer)
    if got.get("version") != champion(0):
        raise BenchError(f"modelyard resolved models:/iris@champion to {got}")
    for i in (1, MODELS // 2, MODELS - 1):
        got = http_json(
            "GET", ours.url + f"/api/v1/models/{name_of(i)}/resolve?alias=champion", None, bearer
        )
        if got.get("version") != champion(i):
            raise BenchError(f"modelyard resolved {name_of(i)}@champion to {got}")
        mv = http_json(
            "GET",
            theirs.url + f"/api/2.0/mlflow/registered-models/alias?name={name_of(i)}"
            "&alias=champion",
            None,
            bearer,
        )
        if int(mv["model_version"]["version"]) != champion(i):
            raise BenchError(f"MLflow resolved {name_of(i)}@champion to {mv}")
    mv = http_json(
        "GET",
        theirs.url + "/api/2.0/mlflow/registered-models/alias?name=iris&alias=champion",
        None,
        bearer,
    )
    if int(mv["model_version"]["version"]) != champion(0):
        raise BenchError(f"MLflow resolved models:/iris@champion to {mv}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Fill both registries, start both servers, load them in turn, print the verdicts."""
    signal.signal(signal.SIGTERM, _interrupt)
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-resolve-"))
    servers: list[ServerProc] = []
    try:
        with database("bench_srv_my") as my_db, database("bench_srv_ml") as ml_db:
            start = time.perf_counter()
            fill_modelyard(my_db)
            fill_my_s = time.perf_counter() - start
            yard = f"{my_db}?blobs={tmp / 'blobs'}"
            token = init_admin(yard)
            ours = start_modelyard("modelyard", yard, tmp / "logs")
            servers.append(ours)
            theirs = start_mlflow("mlflow", ml_db, str(tmp / "mlartifacts"), tmp / "logs")
            servers.append(theirs)
            start = time.perf_counter()
            fill_mlflow(ml_db, theirs)
            fill_ml_s = time.perf_counter() - start
            print(f"filled: modelyard {fill_my_s:.1f} s, MLflow {fill_ml_s:.1f} s", flush=True)
            _check(ours, theirs, token)
            samples = _load(ours, theirs, token, tmp)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(samples)


CASES = {
    "iris": (
        "/api/v1/models/iris/resolve?alias=champion",
        "/api/2.0/mlflow/registered-models/alias?name=iris&alias=champion",
    ),
    "random name": (
        "/api/v1/models/%s/resolve?alias=champion",
        "/api/2.0/mlflow/registered-models/alias?name=%s&alias=champion",
    ),
}


def _load(
    ours: ServerProc, theirs: ServerProc, token: str, tmp: Path
) -> dict[tuple[str, str, int], list[dict[str, float]]]:
    headers = {"Authorization": f"Bearer {token}"}
    out: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    pair = [("modelyard", ours, 0), ("mlflow", theirs, 1)]
    for case, paths in CASES.items():
        for conc in CONCURRENCY:
            for r in range(ROUNDS):
                for label, server, which in pair[r % 2 :] + pair[: r % 2]:
                    path = paths[which]
                    lua = _random_names_lua(path) if "%s" in path else ""
                    url = server.url + (path if not lua else "/")
                    kw = {"headers": headers, "conc": conc, "script_dir": tmp, "lua_request": lua}
                    wrk_get(url, seconds=WARMUP, **kw)  # type: ignore[arg-type]
                    got = wrk_get(url, seconds=DURATION, **kw)  # type: ignore[arg-type]
                    if got["errors"]:
                        raise BenchError(f"{label} {case} c={conc}: {got['errors']} errors")
                    got["load1"] = os.getloadavg()[0]
                    out.setdefault((label, case, conc), []).append(got)
                    print(
                        f"  {label:9s} {case:11s} c={conc:<3d} {got['rps']:8.1f} req/s"
                        f"  p50 {got['p50_ms']:6.2f} ms  p99 {got['p99_ms']:6.2f} ms"
                        f"  (load {got['load1']:.1f})",
                        flush=True,
                    )
    return out


def report(samples: dict[tuple[str, str, int], list[dict[str, float]]]) -> None:
    rows, results = [], []
    for (label, case, conc), runs in samples.items():
        rps = Summary.of([r["rps"] for r in runs])
        p50 = Summary.of([r["p50_ms"] for r in runs])
        p99 = Summary.of([r["p99_ms"] for r in runs])
        rows.append([label, case, conc, rps.fmt(0), p50.fmt(2), p99.fmt(2)])
        results.append(
            {"server": label, "case": case, "conc": conc, "runs": runs, "rps_median": rps.median}
        )
    print_table(
        f"Alias resolution over HTTP, {MODELS:,} models x {VERSIONS} versions, "
        f"{WORKERS} workers each, wrk -t1, {DURATION} s per run, median (min..max) of "
        f"{ROUNDS} rounds",
        ["server", "case", "conc", "req/s", "p50 ms", "p99 ms"],
        rows,
    )
    verdicts = []
    for case in CASES:
        for conc in CONCURRENCY:
            ours, theirs = samples[("modelyard", case, conc)], samples[("mlflow", case, conc)]
            ratio = statistics.median(r["rps"] for r in ours) / statistics.median(
                r["rps"] for r in theirs
            )
            ours_p50 = statistics.median(r["p50_ms"] for r in ours)
            target = case == "iris"
            verdicts.append(
                {
                    "case": case,
                    "conc": conc,
                    "rps_ratio": round(ratio, 2),
                    "p50_ms": ours_p50,
                    "ratio_met": ratio >= TARGET_RATIO,
                    "p50_met": ours_p50 < TARGET_P50_MS,
                    "targeted": target,
                }
            )
    print_table(
        f"modelyard / MLflow (targets for iris: >= {TARGET_RATIO:g}x req/s, "
        f"p50 < {TARGET_P50_MS:g} ms)",
        ["case", "conc", "req/s ratio", "modelyard p50 ms", "ratio", "p50"],
        [
            [
                v["case"],
                v["conc"],
                f"{v['rps_ratio']:.2f}x",
                f"{v['p50_ms']:.2f}",
                "ok" if v["ratio_met"] else "MISSED",
                "ok" if v["p50_met"] else "MISSED",
            ]
            for v in verdicts
        ],
    )
    write_results(
        "server_resolve",
        {
            "models": MODELS,
            "versions_per_model": VERSIONS,
            "workers": WORKERS,
            "duration_s": DURATION,
            "warmup_s": WARMUP,
            "rounds": ROUNDS,
            "loads": results,
            "verdicts": verdicts,
        },
    )


if __name__ == "__main__":
    main()
