"""The unmodified MLflow client against ``modelyard server`` vs against ``mlflow server``.

The same MLflow 3.17.2 client (the interop venv, :func:`~bench._util.mlflow_python`)
runs the same flows, with ``MLFLOW_TRACKING_URI`` pointing at one server or the
other (and ``MLFLOW_TRACKING_TOKEN`` a modelyard admin token; MLflow runs without
an auth app and ignores it). Both servers run over PostgreSQL (a fresh database
each, on the same server), on loopback, with the same worker count
(``BENCH_SERVER_WORKERS``, default 2); ``mlflow server --serve-artifacts
--artifacts-destination DIR`` and ``modelyard server`` over
``postgresql://...?blobs=DIR``, both folders on the same disk.

Each registry is seeded first with 1,000 models (``m0`` .. ``m999``) x 10
versions, each version with a run id of its own, bulk-inserted into the server's
own schema after its own code created it (as :mod:`bench.server_resolve` does),
then ``ANALYZE``.

Flows, whole processes, alternating (modelyard, MLflow, modelyard, ...), 1 warm-up
round then ``BENCH_RUNS`` timed rounds; ratios are the median (min..max) of the
per-round pairs:

1. **log + register**: a fresh process unpickles a 100-tree iris
   ``RandomForestClassifier`` (trained once, beforehand) and runs
   ``with mlflow.start_run(): log_params; log_metrics;
   mlflow.sklearn.log_model(forest, name="model", registered_model_name="forest")``.
   The logging part is timed inside the process (target), the whole process too.
   The version it registered must be the next one.
2. **search**: ``MlflowClient().search_model_versions(filter)`` for
   ``name = 'm42'`` (10 versions, target), ``run_id = '<one version's run>'``
   (1) and ``name LIKE 'm99%'`` (110), in the 10,000-version registry; each
   filter ``SEARCH_CALLS`` times (default 20) after one untimed call, the filters
   interleaved, the median call per process; every answer's count is checked.
3. **load by alias**: a fresh process running
   ``mlflow.pyfunc.load_model("models:/forest@champion").predict(X[:1])``
   (``@champion`` set on version 1 after flow 1; ``TMPDIR`` fresh each round),
   whole-process wall; the prediction is checked.

Then, untimed, one run of flows 1 and 3 per server with ``requests.Session.send``
wrapped to count the client's HTTP requests and the time it waited on each kind
(until the answer's headers): how much of each flow is the server.

Target for each flow: modelyard server <= 0.5x MLflow server's wall time.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._servers import (
    WORKERS,
    ServerProc,
    database,
    init_admin,
    seed_mlflow,
    seed_modelyard,
    start_mlflow,
    start_modelyard,
)
from bench._util import (
    RUNS,
    RUNS_HEADERS,
    WARMUP,
    BenchError,
    Command,
    Run,
    Summary,
    mlflow_env,
    mlflow_fixture,
    mlflow_python,
    paired_ratios,
    print_table,
    ratios,
    run_once,
    run_python,
    runs_json,
    runs_row,
    verdict,
    write_results,
)

MODELS = int(os.environ.get("BENCH_CLIENT_MODELS", "1000"))
VERSIONS = int(os.environ.get("BENCH_CLIENT_VERSIONS", "10"))
SEARCH_CALLS = int(os.environ.get("SEARCH_CALLS", "20"))
TALLY_RUNS = int(os.environ.get("TALLY_RUNS", "3"))
TARGET = 0.5
SEED = 0
LABELS = ("modelyard", "mlflow")

# -- the forest, trained once ----------------------------------------------------------

FOREST = """
import json, pickle, sys
from pathlib import Path
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
X, y = load_iris(return_X_y=True)
forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y)
out = Path(sys.argv[1])
(out / "forest.pkl").write_bytes(pickle.dumps(forest))
(out / "expected.json").write_text(json.dumps(forest.predict(X[:1]).tolist()))
"""

# -- the client's scripts (MLflow venv) ------------------------------------------------------

#: prepended to a flow for the untimed HTTP tally: wraps requests.Session.send
HTTP_TALLY = """
import atexit as _atexit, json as _json, os as _os, re as _re, time as _time
import requests as _requests
_TALLY = {}
_send = _requests.Session.send
_ID = _re.compile(r"(?<=/)(m-)?[0-9a-f]{32}(?=/|$)|(?<=/)\\d+(?=/|$)")
def _timed_send(self, request, **kw):
    start = _time.perf_counter()
    try:
        return _send(self, request, **kw)
    finally:
        path = request.path_url.split("?")[0]
        if "/mlflow-artifacts/artifacts/" in path:
            path = "/api/2.0/mlflow-artifacts/artifacts/.../" + path.rsplit("/", 1)[1]
        key = request.method + " " + _ID.sub("*", path)
        n, s = _TALLY.get(key, (0, 0.0))
        _TALLY[key] = (n + 1, s + _time.perf_counter() - start)
_requests.Session.send = _timed_send
@_atexit.register
def _dump():
    with open(_os.environ["BENCH_HTTP_OUT"], "w") as f:
        _json.dump(_TALLY, f)
"""

LOG = """
import json, os, pickle, sys, time
start = time.perf_counter()
import mlflow, mlflow.sklearn
with open(sys.argv[1], "rb") as f:
    forest = pickle.load(f)
ready = time.perf_counter()
with mlflow.start_run() as run:
    mlflow.log_params({"n_estimators": 100, "criterion": "gini", "random_state": 0})
    mlflow.log_metrics({"accuracy": 0.98, "f1": 0.97})
    info = mlflow.sklearn.log_model(
        forest, name="model", registered_model_name="forest", serialization_format="cloudpickle"
    )
done = time.perf_counter()
with open(os.environ["BENCH_OUT"], "w") as f:
    json.dump({"import_s": ready - start, "log_s": done - ready, "run_id": run.info.run_id}, f)
print("registered forest version", info.registered_model_version)
"""

SEARCH = """
import json, os, statistics, sys, time
import requests
from mlflow import MlflowClient
cases = json.loads(sys.argv[1])
calls = int(sys.argv[2])
client = MlflowClient()
# the same GET without MLflow's client (one keep-alive session): the server's share
session = requests.Session()
session.headers["Authorization"] = "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]
url = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/model-versions/search"
def check(label, got, case):
    names = sorted({v.name for v in got})
    if len(got) != case["count"] or names != case["names"]:
        raise SystemExit(f"{label}: {len(got)} versions of {names[:5]}, expected {case}")
def raw(case):
    r = session.get(url, params={"filter": case["filter"], "max_results": 10000})
    r.raise_for_status()
    got = r.json().get("model_versions", [])
    if len(got) != case["count"]:
        raise SystemExit(f"raw GET: {len(got)} versions, expected {case}")
for label, case in cases.items():  # first calls: connections, lazy imports
    check(label, client.search_model_versions(case["filter"]), case)
    raw(case)
times = {label: [] for label in cases}
raw_times = {label: [] for label in cases}
for i in range(calls):
    order = list(cases)
    order = order[i % len(order):] + order[:i % len(order)]
    for label in order:
        case = cases[label]
        start = time.perf_counter()
        got = client.search_model_versions(case["filter"])
        times[label].append(time.perf_counter() - start)
        check(label, got, case)
        start = time.perf_counter()
        raw(case)
        raw_times[label].append(time.perf_counter() - start)
with open(os.environ["BENCH_OUT"], "w") as f:
    json.dump({
        "client": {label: statistics.median(t) for label, t in times.items()},
        "raw": {label: statistics.median(t) for label, t in raw_times.items()},
    }, f)
print("search ok")
"""

LOAD = """
import mlflow.pyfunc
from sklearn.datasets import load_iris
X, _ = load_iris(return_X_y=True)
model = mlflow.pyfunc.load_model("models:/forest@champion")
print("prediction", model.predict(X[:1]).tolist())
"""

SET_ALIAS = """
from mlflow import MlflowClient
client = MlflowClient()
client.set_registered_model_alias("forest", "champion", "1")
print(client.get_model_version_by_alias("forest", "champion").version)
"""

# -- seeding -----------------------------------------------------------------------------


def name_of(i: int) -> str:
    return f"m{i}"


def run_of(i: int, v: int) -> str:
    """The run id of model ``i``'s version ``v`` (32 hex digits, one per version)."""
    return random.Random(f"{SEED}-{i}-{v}").getrandbits(128).to_bytes(16, "big").hex()


def _versions() -> list[tuple[str, int, str, str]]:
    """(name, version, sha256 hex, run id) for every seeded version."""
    rng = random.Random(SEED)
    return [
        (name_of(i), v, f"{rng.getrandbits(256):064x}", run_of(i, v))
        for i in range(MODELS)
        for v in range(1, VERSIONS + 1)
    ]


def _search_cases() -> dict[str, dict[str, Any]]:
    """Filter, expected count and model names of each search."""
    like = sorted(name_of(i) for i in range(MODELS) if name_of(i).startswith("m99"))
    mid = MODELS // 2
    return {
        "name = 'm42'": {"filter": "name = 'm42'", "count": VERSIONS, "names": ["m42"]},
        "run_id = ...": {
            "filter": f"run_id = '{run_of(mid, 3)}'",
            "count": 1,
            "names": [name_of(mid)],
        },
        "name LIKE 'm99%'": {
            "filter": "name LIKE 'm99%'",
            "count": VERSIONS * len(like),
            "names": like,
        },
    }


def fill_modelyard(url: str) -> None:
    """The registry in modelyard's schema (made by its own store code), with file lists."""
    from modelyard.store.sql.schema import model_versions, registered_models, version_files

    now = int(time.time() * 1000)
    versions = _versions()
    ids = {name_of(i): i + 1 for i in range(MODELS)}
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
                for n in ids
            ],
        ),
        (
            model_versions,
            [
                {
                    "model_id": ids[n],
                    "version": v,
                    "digest": f"sha256:{h}",
                    "source": f"runs:/{r}/model",
                    "run_id": r,
                    "status": "READY",
                    "created_at": now,
                    "updated_at": now,
                    "created_by": "bench",
                }
                for n, v, h, r in versions
            ],
        ),
        (
            version_files,
            [
                {"model_id": ids[n], "version": v, "path": "MLmodel", "size": 512, "sha256": h}
                for n, v, h, _ in versions
            ],
        ),
    ]
    seed_modelyard(url, tables, len(ids))


def fill_mlflow(url: str, server: ServerProc) -> None:
    """The same registry in MLflow's schema (see :func:`bench._servers.seed_mlflow`)."""
    rows = [
        (
            n,
            v,
            {
                "run_id": r,
                "source": f"runs:/{r}/model",
                "storage_location": f"mlflow-artifacts:/0/{r}/artifacts/model",
            },
        )
        for n, v, _, r in _versions()
    ]
    seed_mlflow(url, server, [name_of(i) for i in range(MODELS)], rows)


# -- running the flows --------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """Both servers, the token, the pickled forest and its expected prediction."""

    servers: dict[str, ServerProc]
    token: str
    forest: Path
    expected: str
    scratch: Path


def _client_env(s: Setup, label: str, workdir: Path, **extra: str) -> dict[str, str]:
    return mlflow_env(
        MLFLOW_TRACKING_URI=s.servers[label].url,
        MLFLOW_TRACKING_TOKEN=s.token,
        TMPDIR=str(workdir),
        **extra,
    )


def _workdir(s: Setup, label: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=s.scratch))


def _run_flow(
    s: Setup, label: str, code: str, args: tuple[str, ...], expect: str, **extra: str
) -> tuple[Run, dict[str, Any]]:
    """One client process; its timing and what it wrote to ``BENCH_OUT`` (if anything)."""
    work = _workdir(s, label)
    out = work / "out.json"
    env = _client_env(s, label, work, BENCH_OUT=str(out), **extra)
    run = run_once(
        Command(label, (str(mlflow_python()), "-c", code, *args), env=env, cwd=work, expect=expect)
    )
    data = json.loads(out.read_text()) if out.exists() else {}
    shutil.rmtree(work, ignore_errors=True)
    return run, data


def _rounds(s: Setup, step: Any) -> dict[str, list[Any]]:
    """``step(label, round)`` for each server, alternating, warm-up rounds dropped."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        print(f"note: the machine is busy (load {load:.1f} on {cores} cores); wall times are noisy")
    out: dict[str, list[Any]] = {label: [] for label in LABELS}
    for round_ in range(WARMUP + RUNS):
        for label in LABELS:
            got = step(label, round_)
            if round_ >= WARMUP:
                out[label].append(got)
    return out


def flow_log(s: Setup) -> dict[str, list[tuple[Run, dict[str, Any]]]]:
    def step(label: str, round_: int) -> tuple[Run, dict[str, Any]]:
        expect = f"registered forest version {round_ + 1}\n"
        run, data = _run_flow(s, label, LOG, (str(s.forest),), expect)
        print(
            f"  log+register {label:9s} round {round_}: log {data['log_s']:.3f} s,"
            f" process {run.wall:.3f} s",
            flush=True,
        )
        return run, data

    return _rounds(s, step)


def flow_search(s: Setup) -> dict[str, list[tuple[Run, dict[str, Any]]]]:
    cases = json.dumps(_search_cases())

    def step(label: str, round_: int) -> tuple[Run, dict[str, Any]]:
        run, data = _run_flow(s, label, SEARCH, (cases, str(SEARCH_CALLS)), "search ok")
        per = ", ".join(
            f"{k} {v * 1e3:.1f} ms (raw {data['raw'][k] * 1e3:.1f})"
            for k, v in data["client"].items()
        )
        print(f"  search {label:9s} round {round_}: {per}", flush=True)
        return run, data

    return _rounds(s, step)


def flow_load(s: Setup) -> dict[str, list[Run]]:
    def step(label: str, round_: int) -> Run:
        run, _ = _run_flow(s, label, LOAD, (), f"prediction {s.expected}")
        print(f"  load {label:9s} round {round_}: {run.wall:.3f} s", flush=True)
        return run

    return _rounds(s, step)


def set_alias(s: Setup) -> None:
    for label in LABELS:
        work = _workdir(s, label)
        got = run_python(mlflow_python(), SET_ALIAS, env=_client_env(s, label, work), cwd=work)
        if str(got) != "1":
            raise BenchError(f"{label}: forest@champion is version {got}, not 1")


def http_tally(s: Setup, next_version: int) -> dict[str, dict[str, Any]]:
    """Flows 1 and 3, ``TALLY_RUNS`` rounds per server, the client's HTTP requests timed.

    Per flow and server: the median wall, the median time the client waited on
    the server in all (``http_s``) and per kind of request (summed over the
    rounds, then divided by them).
    """
    flows = (
        ("log+register", LOG, (str(s.forest),)),
        ("load by alias", LOAD, ()),
    )
    samples: dict[str, list[tuple[Run, dict[str, Any], dict[str, list[float]]]]] = {}
    version = dict.fromkeys(LABELS, next_version)
    for _ in range(TALLY_RUNS):
        for flow, code, args in flows:
            for label in LABELS:
                if flow == "log+register":
                    expect = f"registered forest version {version[label]}\n"
                    version[label] += 1
                else:
                    expect = f"prediction {s.expected}"
                tally_file = s.scratch / f"http-{label}.json"
                run, data = _run_flow(
                    s, label, HTTP_TALLY + code, args, expect, BENCH_HTTP_OUT=str(tally_file)
                )
                tally = json.loads(tally_file.read_text())
                samples.setdefault(f"{flow}, {label}", []).append((run, data, tally))
    out: dict[str, dict[str, Any]] = {}
    for key, rounds in samples.items():
        by_route: dict[str, dict[str, float]] = {}
        for _, _, tally in rounds:
            for route, (n, secs) in tally.items():
                got = by_route.setdefault(route, {"n": 0.0, "s": 0.0})
                got["n"] += n / len(rounds)
                got["s"] += secs / len(rounds)
        out[key] = {
            "wall": Summary.of([r.wall for r, _, _ in rounds]).median,
            "log_s": (
                Summary.of([d["log_s"] for _, d, _ in rounds]).median
                if "log_s" in rounds[0][1]
                else None
            ),
            "requests": Summary.of([sum(n for n, _ in t.values()) for _, _, t in rounds]).median,
            "http_s": Summary.of([sum(x for _, x in t.values()) for _, _, t in rounds]).median,
            "by_route": dict(sorted(by_route.items(), key=lambda kv: -kv[1]["s"])),
        }
    return out


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Seed both registries, start both servers, run the three flows, print the verdicts."""
    signal.signal(signal.SIGTERM, _interrupt)
    fixture = mlflow_fixture("iris-forest-pickle", FOREST)
    expected = json.loads((fixture / "expected.json").read_text())
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-mlflow-client-"))
    servers: dict[str, ServerProc] = {}
    try:
        with database("bench_cli_my") as my_db, database("bench_cli_ml") as ml_db:
            start = time.perf_counter()
            fill_modelyard(my_db)
            fill_my_s = time.perf_counter() - start
            yard = f"{my_db}?blobs={tmp / 'blobs'}"
            token = init_admin(yard)
            servers["modelyard"] = start_modelyard("modelyard", yard, tmp / "logs")
            servers["mlflow"] = start_mlflow(
                "mlflow", ml_db, str(tmp / "mlartifacts"), tmp / "logs"
            )
            start = time.perf_counter()
            fill_mlflow(ml_db, servers["mlflow"])
            fill_ml_s = time.perf_counter() - start
            print(f"seeded: modelyard {fill_my_s:.1f} s, MLflow {fill_ml_s:.1f} s", flush=True)
            scratch = tmp / "scratch"
            scratch.mkdir()
            s = Setup(servers, token, fixture / "forest.pkl", str(expected), scratch)
            logs = flow_log(s)
            set_alias(s)
            searches = flow_search(s)
            loads = flow_load(s)
            tally = http_tally(s, WARMUP + RUNS + 1)
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(logs, searches, loads, tally)


# -- reporting ------------------------------------------------------------------------------


def report(
    logs: dict[str, list[tuple[Run, dict[str, Any]]]],
    searches: dict[str, list[tuple[Run, dict[str, Any]]]],
    loads: dict[str, list[Run]],
    tally: dict[str, dict[str, Any]],
) -> None:
    ours, theirs = LABELS
    log_s = {label: [d["log_s"] for _, d in logs[label]] for label in LABELS}
    log_runs = {label: [r for r, _ in logs[label]] for label in LABELS}
    search_runs = {label: [r for r, _ in searches[label]] for label in LABELS}
    cases = _search_cases()
    search_s = {
        (how, label, case): [d[how][case] for _, d in searches[label]]
        for how in ("client", "raw")
        for label in LABELS
        for case in cases
    }

    def pairs(how: str, case: str) -> Summary:
        return Summary.of(ratios(search_s[(how, ours, case)], search_s[(how, theirs, case)]))

    print_table(
        f"Flow 1, log + register (100-tree forest), {MODELS * VERSIONS:,} versions in the "
        f"registry, {WORKERS} workers each: the logging part, timed inside the process",
        ["server", "log s median (min..max)"],
        [[label, Summary.of(log_s[label]).fmt(3)] for label in LABELS],
    )
    print_table(
        "Flow 1, whole process", RUNS_HEADERS, [runs_row(k, v) for k, v in log_runs.items()]
    )
    print_table(
        f"Flow 2, search_model_versions (MLflow's client) and the same GET with a bare "
        f"requests.Session (raw): ms per call, median of {SEARCH_CALLS} calls per process, "
        "median (min..max) over rounds",
        ["filter", "versions", "how", *(f"{label} ms" for label in LABELS), "ratio (pairs)"],
        [
            [
                case,
                cases[case]["count"],
                how,
                *(Summary.of(search_s[(how, label, case)]).fmt(2, 1e3) for label in LABELS),
                pairs(how, case).fmt(2),
            ]
            for case in cases
            for how in ("client", "raw")
        ],
    )
    print_table(
        "Flow 2, whole process", RUNS_HEADERS, [runs_row(k, v) for k, v in search_runs.items()]
    )
    print_table(
        "Flow 3, a fresh process: load models:/forest@champion, predict one row",
        RUNS_HEADERS,
        [runs_row(k, v) for k, v in loads.items()],
    )
    print_table(
        f"Where the time goes: the client's HTTP requests, {TALLY_RUNS} untimed runs per "
        "server (medians; waited = until the answer's headers; 'server at 0 s' = the "
        "ratio modelyard would reach if each of its answers took no time at all)",
        ["flow, server", "wall s", "requests", "waited s", "slowest kinds (n, s per run)"],
        [
            [
                k,
                f"{v['wall']:.3f}",
                f"{v['requests']:g}",
                f"{v['http_s']:.3f}",
                "; ".join(
                    f"{route} ({x['n']:g}, {x['s']:.3f})"
                    for route, x in list(v["by_route"].items())[:3]
                ),
            ]
            for k, v in tally.items()
        ],
    )
    bounds = {}
    for flow in ("log+register", "load by alias"):
        mine, other = tally[f"{flow}, {ours}"], tally[f"{flow}, {theirs}"]
        bounds[flow] = {
            "waited_ratio": mine["http_s"] / other["http_s"],
            "server_at_0s": (other["wall"] - other["http_s"]) / other["wall"],
        }

    figures = {
        "log + register, logging part": Summary.of(ratios(log_s[ours], log_s[theirs])),
        "log + register, whole process": paired_ratios(log_runs[ours], log_runs[theirs]),
        **{f"search {case}, client": pairs("client", case) for case in cases},
        **{f"search {case}, raw GET": pairs("raw", case) for case in cases},
        "search, whole process": paired_ratios(search_runs[ours], search_runs[theirs]),
        "load by alias, whole process": paired_ratios(loads[ours], loads[theirs]),
    }
    targeted = {
        "log + register, logging part",
        "search name = 'm42', client",
        "load by alias, whole process",
    }
    verdicts: list[dict[str, Any]] = []
    rows: list[list[str]] = []
    for k, v in figures.items():
        target = f"<= {TARGET}" if k in targeted else ""
        met = verdict(v.median, TARGET) if k in targeted else ""
        verdicts.append({"figure": k, "ratio": asdict(v), "target": target, "verdict": met})
        rows.append([k, v.fmt(2), target, met])
    for flow, b in bounds.items():
        rows.append([f"{flow}: time waited on the server", f"{b['waited_ratio']:.2f}", "", ""])
        rows.append([f"{flow}: best possible (server at 0 s)", f"{b['server_at_0s']:.2f}", "", ""])
    print_table(
        "modelyard server / mlflow server (wall; median of pairs (min..max))",
        ["figure", "ratio", "target", ""],
        rows,
    )
    write_results(
        "server_mlflow_client",
        {
            "models": MODELS,
            "versions_per_model": VERSIONS,
            "workers": WORKERS,
            "search_calls": SEARCH_CALLS,
            "search_cases": cases,
            "log_register": {
                label: {"log_s": log_s[label], **runs_json(log_runs[label])} for label in LABELS
            },
            "search": {
                label: {
                    "per_call_s": {
                        how: {case: search_s[(how, label, case)] for case in cases}
                        for how in ("client", "raw")
                    },
                    **runs_json(search_runs[label]),
                }
                for label in LABELS
            },
            "load_by_alias": {label: runs_json(loads[label]) for label in LABELS},
            "http_tally": tally,
            "bounds": bounds,
            "verdicts": verdicts,
        },
    )


if __name__ == "__main__":
    main()
