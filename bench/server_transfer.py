"""Uploading and downloading a 1 GB model through each server: modelyard vs MLflow.

The model: one directory saved once by ``mlflow.pyfunc.save_model`` (a custom
``PythonModel`` with two artifacts: ``weights.bin``, 1 GiB of random bytes, and a
small ``config.json``); its ``load_context`` stats the weights and reads the
config, ``predict`` answers ``size + config["n"]``, so a load that lost or cut a
file fails the check. The same directory goes to both servers:

- upload, modelyard: ``modelyard.register_model(DIR, "big")`` (hash, ask which
  blobs are missing, stream them);
- upload, MLflow: ``mlflow.log_artifacts(DIR, "model")`` in a run, then
  ``mlflow.register_model("runs:/<run>/model", "big")``;
- download: a fresh process loads ``models:/big/<version>`` and predicts one row
  (modelyard with an empty ``MODELYARD_CACHE``, MLflow into a fresh ``TMPDIR``).

Each round first rewrites the weights' first bytes, so every upload carries a
new 1 GiB file on both sides (modelyard would otherwise find it stored already).
Times are taken inside the client process around the call (imports excluded);
throughput is MiB / s of the directory. While each transfer runs, the server's
summed RSS (every process of it: parent, workers) is sampled every 50 ms, and
its summed PSS (``/proc/<pid>/smaps_rollup``: pages the pre-forked workers
share with the parent counted once, not once per process) every 250 ms.

Then a second version that changes only ``config.json`` is registered through a
counting TCP proxy on each side: the bytes the client sent.

Servers: PostgreSQL metadata (a database each), same worker count, and two
artifact stores in turn: a local blob folder / ``--artifacts-destination DIR``
on the same disk, then S3 (a throwaway Ceph RGW from ``scripts/s3-server.sh``
with an in-memory OSD; a bucket each: ``?artifacts=s3://...`` for modelyard,
``--artifacts-destination s3://...`` with ``MLFLOW_S3_ENDPOINT_URL`` for MLflow,
whose client still goes through the server; modelyard's downloads of big blobs
come from presigned URLs, past the server). Targets: >= 2x
MLflow's throughput both ways; server RSS < 300 MB while streaming; the
one-small-file version uploads < 1 MB. Knobs: ``BENCH_TRANSFER_MB`` (1024),
``BENCH_TRANSFER_RUNS`` (3), ``BENCH_TRANSFER_S3_RUNS`` (2),
``BENCH_TRANSFER_STORES`` (``local,s3``), ``BENCH_TRANSFER_S3_BYTES`` (the OSD's
memory, 8 GiB).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench._servers import (
    CountingProxy,
    RssSampler,
    ServerProc,
    database,
    init_admin,
    start_mlflow,
    start_modelyard,
)
from bench._util import (
    BenchError,
    Summary,
    mlflow_env,
    mlflow_python,
    print_table,
    project_env,
    project_python,
    ratios,
    run_python,
    write_results,
)

MB = int(os.environ.get("BENCH_TRANSFER_MB", "1024"))
ROUNDS = int(os.environ.get("BENCH_TRANSFER_RUNS", "3"))
S3_ROUNDS = int(os.environ.get("BENCH_TRANSFER_S3_RUNS", "2"))
STORES = [s for s in os.environ.get("BENCH_TRANSFER_STORES", "local,s3").split(",") if s]
#: the in-memory OSD must hold every version both servers keep (2 GiB a round, + the change)
S3_BYTES = int(os.environ.get("BENCH_TRANSFER_S3_BYTES", str(8 * 1024**3)))
S3_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "s3-server.sh"
TARGET_SPEED = 2.0
TARGET_RSS_MB = 300.0
TARGET_DELTA_BYTES = 1_000_000

MAKE = """
import json, os, sys
import mlflow.pyfunc

class Weights(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.size = os.path.getsize(context.artifacts["weights"])
        with open(context.artifacts["config"]) as fh:
            self.n = json.load(fh)["n"]

    def predict(self, context, model_input, params=None):
        return [self.size + self.n] * len(model_input)

out, mb = sys.argv[1], int(sys.argv[2])
src = out + ".src"
os.makedirs(src)
with open(f"{src}/weights.bin", "wb") as fh:
    for _ in range(mb):
        fh.write(os.urandom(1 << 20))
with open(f"{src}/config.json", "w") as fh:
    json.dump({"n": 1}, fh)
artifacts = {"weights": f"{src}/weights.bin", "config": f"{src}/config.json"}
mlflow.pyfunc.save_model(out, python_model=Weights(), artifacts=artifacts)
os.remove(f"{src}/weights.bin")
print(json.dumps({"size": sum(f.stat().st_size for f in __import__("pathlib").Path(out).rglob("*")
                              if f.is_file())}))
"""

OURS_UP = """
import json, sys, time
import modelyard
t = time.perf_counter()
mv = modelyard.register_model(sys.argv[1], "big")
print(json.dumps({"seconds": time.perf_counter() - t, "version": mv.version}))
"""

MLFLOW_UP = """
import json, sys, time
import mlflow
mlflow.set_experiment("bench")
t = time.perf_counter()
with mlflow.start_run() as run:
    mlflow.log_artifacts(sys.argv[1], "model")
mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "big")
print(json.dumps({"seconds": time.perf_counter() - t, "version": int(mv.version)}))
"""

_DOWN = """
import json, sys, time
import pandas as pd
{imp}
t = time.perf_counter()
model = {load}(f"models:/big/{{sys.argv[1]}}")
seconds = time.perf_counter() - t
out = list(model.predict(pd.DataFrame({{"x": [1.0]}})))
print(json.dumps({{"seconds": seconds, "prediction": [int(v) for v in out]}}))
"""
OURS_DOWN = _DOWN.format(imp="import modelyard", load="modelyard.load_model")
MLFLOW_DOWN = _DOWN.format(imp="import mlflow.pyfunc", load="mlflow.pyfunc.load_model")


def _weights(model: Path) -> Path:
    found = list(model.rglob("weights.bin"))
    if len(found) != 1:
        raise BenchError(f"no single weights.bin in {model}: {found}")
    return found[0]


def _stamp(model: Path, round_: int) -> None:
    """Make the weights a new file (new sha256) without rewriting all of it."""
    with open(_weights(model), "r+b") as fh:
        fh.write(f"round{round_:04d}".encode())


class Sides:
    """Both servers and how each side's client is run."""

    def __init__(self, ours: ServerProc, theirs: ServerProc, token: str, tmp: Path) -> None:
        self.ours, self.theirs, self.token, self.tmp = ours, theirs, token, tmp

    def ours_env(self, url: str | None = None, cache: Path | None = None) -> dict[str, str]:
        cache = cache or Path(tempfile.mkdtemp(prefix="cache-", dir=self.tmp / "scratch"))
        return project_env(
            MODELYARD_URI=url or self.ours.url,
            MODELYARD_TOKEN=self.token,
            MODELYARD_CACHE=str(cache),
        )

    def mlflow_env(self, url: str | None = None) -> dict[str, str]:
        return mlflow_env(
            MLFLOW_TRACKING_URI=url or self.theirs.url,
            MLFLOW_TRACKING_TOKEN=self.token,
            TMPDIR=tempfile.mkdtemp(prefix="tmp-", dir=self.tmp / "scratch"),
        )

    def run(self, side: str, code: str, *args: str, url: str | None = None) -> dict[str, Any]:
        server = self.ours if side == "modelyard" else self.theirs
        with RssSampler(server) as rss:
            if side == "modelyard":
                out = run_python(project_python(), code, *args, env=self.ours_env(url))
            else:
                env = self.mlflow_env(url)
                out = run_python(mlflow_python(), code, *args, env=env, cwd=Path(env["TMPDIR"]))
        out["rss_peak_mib"] = rss.peak
        out["rss_before_mib"] = rss.baseline
        out["rss_peak_process_mib"] = rss.peak_process
        out["pss_peak_mib"] = rss.pss_peak
        out["pss_before_mib"] = rss.pss_baseline
        out["pss_peak_process_mib"] = rss.pss_peak_process
        return dict(out)


def _rounds(
    sides: Sides, model: Path, size: int, expected: int, count: int
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    scratch = sides.tmp / "scratch"
    order = ["modelyard", "mlflow"]
    for r in range(count):
        _stamp(model, r)
        for side in order[r % 2 :] + order[: r % 2]:
            up = sides.run(side, OURS_UP if side == "modelyard" else MLFLOW_UP, str(model))
            up["mib_s"] = size / 2**20 / up["seconds"]
            down = sides.run(
                side, OURS_DOWN if side == "modelyard" else MLFLOW_DOWN, str(up["version"])
            )
            if down["prediction"] != [expected]:
                raise BenchError(f"{side} loaded models:/big/{up['version']}: {down}")
            down["mib_s"] = size / 2**20 / down["seconds"]
            out.setdefault(f"{side} upload", []).append(up)
            out.setdefault(f"{side} download", []).append(down)
            print(
                f"  round {r + 1} {side:9s} up {up['mib_s']:7.1f} MiB/s (server RSS / PSS peak "
                f"{up['rss_peak_mib']:.0f} / {up['pss_peak_mib']:.0f} MiB), "
                f"down {down['mib_s']:7.1f} MiB/s (server RSS / PSS peak "
                f"{down['rss_peak_mib']:.0f} / {down['pss_peak_mib']:.0f} MiB)  "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
            for p in scratch.iterdir():
                shutil.rmtree(p, ignore_errors=True)
    return out


def _delta(sides: Sides, model: Path, expected: int) -> dict[str, Any]:
    """A version that changes config.json only, through counting proxies."""
    changed = sides.tmp / "changed"
    shutil.copytree(model, changed, copy_function=_link_big)
    config = next(changed.rglob("config.json"))
    config.unlink()  # a new file, not the hard link's target
    config.write_text(json.dumps({"n": 2}))
    out: dict[str, Any] = {}
    for side, server, code in (
        ("modelyard", sides.ours, OURS_UP),
        ("mlflow", sides.theirs, MLFLOW_UP),
    ):
        proxy = CountingProxy(server.port)
        try:
            got = sides.run(side, code, str(changed), url=proxy.url)
            traffic = proxy.reset()
        finally:
            proxy.close()
        out[side] = {
            "version": got["version"],
            "seconds": got["seconds"],
            "bytes_up": traffic.up,
            "bytes_down": traffic.down,
            "requests": len(traffic.requests),
            "puts": traffic.count("PUT", ""),
        }
    # the small-change version must load with the new config (and the old weights)
    down = sides.run("modelyard", OURS_DOWN, str(out["modelyard"]["version"]))
    if down["prediction"] != [expected + 1]:
        raise BenchError(f"the changed version loaded wrong: {down}")
    return out


def _link_big(src: str, dst: str) -> None:
    if os.path.getsize(src) > 1 << 20:
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


@contextlib.contextmanager
def _s3(tmp: Path) -> Iterator[dict[str, str] | None]:
    """A throwaway Ceph RGW (``scripts/s3-server.sh``) and its ``AWS_*`` variables, or None."""
    missing = [b for b in ("radosgw", "ceph-mon", "ceph-osd", "ceph") if shutil.which(b) is None]
    if missing or not S3_SCRIPT.exists():
        print(f"  S3 variant skipped: {', '.join(missing) or S3_SCRIPT} not found", flush=True)
        yield None
        return
    folder = tmp / "s3"
    env = {**os.environ, "MODELYARD_S3_SERVER_BYTES": str(S3_BYTES)}
    started = subprocess.run(
        [str(S3_SCRIPT), "start", str(folder)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    try:
        if started.returncode != 0:
            raise BenchError(f"the S3 server did not start: {started.stderr[-3000:]}")
        aws = {}
        for line in started.stdout.splitlines():
            if line.startswith("export ") and "=" in line:
                key, _, value = line[len("export ") :].partition("=")
                aws[key] = value
        aws.update(
            AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        yield aws
    finally:
        subprocess.run([str(S3_SCRIPT), "stop", str(folder)], timeout=120, check=False)


def _bucket(aws: dict[str, str], name: str) -> None:
    import boto3

    boto3.session.Session().client(
        "s3",
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name=aws["AWS_REGION"],
    ).create_bucket(Bucket=name)


def _one_store(
    store: str, model: Path, size: int, tmp: Path, aws: dict[str, str] | None
) -> dict[str, Any]:
    """Both servers over ``store`` (local folders or S3 buckets): rounds and the small change."""
    expected = _weights(model).stat().st_size + 1
    servers: list[ServerProc] = []
    work = tmp / store
    (work / "scratch").mkdir(parents=True)
    try:
        with database("bench_srv_my") as my_db, database("bench_srv_ml") as ml_db:
            ml_env: dict[str, str] = {}
            if aws is None:
                yard = f"{my_db}?blobs={work / 'blobs'}"
                ml_dest = str(work / "mlartifacts")
            else:
                _bucket(aws, "modelyard-bench")
                _bucket(aws, "mlflow-bench")
                yard = f"{my_db}?artifacts=s3://modelyard-bench/yard"
                ml_dest = "s3://mlflow-bench/mlflow"
                ml_env = {**aws, "MLFLOW_S3_ENDPOINT_URL": aws["AWS_ENDPOINT_URL"]}
            token = init_admin(yard) if aws is None else _init_admin_env(yard, aws)
            ours = start_modelyard("modelyard", yard, work / "logs", env=aws)
            servers.append(ours)
            theirs = start_mlflow("mlflow", ml_db, ml_dest, work / "logs", env=ml_env)
            servers.append(theirs)
            sides = Sides(ours, theirs, token, work)
            rounds = _rounds(sides, model, size, expected, S3_ROUNDS if aws else ROUNDS)
            delta = _delta(sides, model, expected)
    finally:
        for s in servers:
            s.stop()
    # the small-change copy shares the weights with the model by a hard link
    shutil.rmtree(work / "changed", ignore_errors=True)
    return report(store, rounds, delta, size)


def _init_admin_env(yard: str, aws: dict[str, str]) -> str:
    from bench._servers import modelyard_cli

    out = modelyard_cli("server", "init-admin", "--yard", yard, env=project_env(**aws))
    return out.strip().splitlines()[-1].strip()


def main() -> None:
    """Make the model; for each store, run the rounds and the small change; print the verdicts."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-transfer-"))
    results: dict[str, Any] = {}
    try:
        model = tmp / "model"
        made = run_python(mlflow_python(), MAKE, str(model), str(MB), env=mlflow_env(), cwd=tmp)
        size = int(made["size"])
        for store in STORES:
            if store == "local":
                results[store] = _one_store(store, model, size, tmp, None)
            elif store == "s3":
                with _s3(tmp) as aws:
                    results[store] = (
                        _one_store(store, model, size, tmp, aws)
                        if aws is not None
                        else {"skipped": "no Ceph binaries or scripts/s3-server.sh"}
                    )
            else:
                raise BenchError(f"unknown store {store!r} in BENCH_TRANSFER_STORES")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_results(
        "server_transfer",
        {"model_bytes": size, "rounds": ROUNDS, "s3_rounds": S3_ROUNDS, "stores": results},
    )


def report(
    store: str, rounds: dict[str, list[dict[str, Any]]], delta: dict[str, Any], size: int
) -> dict[str, Any]:
    rows = []
    for label, recs in rounds.items():
        rows.append(
            [
                label,
                Summary.of([r["mib_s"] for r in recs]).fmt(1),
                Summary.of([r["seconds"] for r in recs]).fmt(2),
                Summary.of([r["rss_peak_mib"] for r in recs]).fmt(0),
                Summary.of([r["rss_before_mib"] for r in recs]).fmt(0),
                Summary.of([r["rss_peak_process_mib"] for r in recs]).fmt(0),
                Summary.of([r["pss_peak_mib"] for r in recs]).fmt(0),
                Summary.of([r["pss_before_mib"] for r in recs]).fmt(0),
                Summary.of([r["pss_peak_process_mib"] for r in recs]).fmt(0),
            ]
        )
    print_table(
        f"{store}: {size / 2**20:,.0f} MiB model through the server, median (min..max) of "
        f"{len(next(iter(rounds.values())))} rounds",
        [
            "transfer",
            "MiB/s",
            "seconds",
            "server RSS peak MiB (all processes)",
            "before",
            "largest process",
            "server PSS peak MiB (all processes)",
            "before",
            "largest process",
        ],
        rows,
    )
    verdicts = []
    for way in ("upload", "download"):
        ours = [r["mib_s"] for r in rounds[f"modelyard {way}"]]
        theirs = [r["mib_s"] for r in rounds[f"mlflow {way}"]]
        ratio = Summary.of(ratios(ours, theirs))
        verdicts.append(
            [
                f"{way} throughput, modelyard / MLflow",
                ratio.fmt(2),
                f">= {TARGET_SPEED:g}x",
                "ok" if ratio.median >= TARGET_SPEED else "MISSED",
            ]
        )
    peak = max(r["rss_peak_mib"] for k, v in rounds.items() if "modelyard" in k for r in v)
    verdicts.append(
        [
            "modelyard server RSS while streaming (peak, all processes)",
            f"{peak:.0f} MiB",
            f"< {TARGET_RSS_MB:g} MB",
            "ok" if peak * 2**20 < TARGET_RSS_MB * 1e6 else "MISSED",
        ]
    )
    pss = max(r["pss_peak_mib"] for k, v in rounds.items() if "modelyard" in k for r in v)
    ml_pss = max(r["pss_peak_mib"] for k, v in rounds.items() if "mlflow" in k for r in v)
    verdicts.append(
        [
            "modelyard server PSS while streaming (peak, all processes; information)",
            f"{pss:.0f} MiB (MLflow {ml_pss:.0f} MiB)",
            "",
            "",
        ]
    )
    sent = delta["modelyard"]["bytes_up"]
    verdicts.append(
        [
            "new version changing config.json: bytes the client sent",
            f"{sent:,} (MLflow {delta['mlflow']['bytes_up']:,})",
            "< 1 MB",
            "ok" if sent < TARGET_DELTA_BYTES else "MISSED",
        ]
    )
    print_table(
        f"{store}: targets (ratios: median of pairs (min..max))",
        ["figure", "value", "target", ""],
        verdicts,
    )
    return {
        "transfers": rounds,
        "medians_mib_s": {k: statistics.median(r["mib_s"] for r in v) for k, v in rounds.items()},
        "small_change": delta,
        "verdicts": [
            dict(zip(("figure", "value", "target", "verdict"), v, strict=True)) for v in verdicts
        ],
    }


if __name__ == "__main__":
    main()
