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
summed RSS (every process of it: parent, workers) is sampled every 50 ms.

Then a second version that changes only ``config.json`` is registered through a
counting TCP proxy on each side: the bytes the client sent.

Servers: PostgreSQL metadata (a database each), local blob folder /
``--artifacts-destination`` on the same disk, same worker count. Targets: >= 2x
MLflow's throughput both ways; server RSS < 300 MB while streaming; the
one-small-file version uploads < 1 MB. Knobs: ``BENCH_TRANSFER_MB`` (1024),
``BENCH_TRANSFER_RUNS`` (3).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
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
        return dict(out)


def _rounds(sides: Sides, model: Path, size: int, expected: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    scratch = sides.tmp / "scratch"
    order = ["modelyard", "mlflow"]
    for r in range(ROUNDS):
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
                f"  round {r + 1} {side:9s} up {up['mib_s']:7.1f} MiB/s "
                f"(server RSS peak {up['rss_peak_mib']:.0f} MiB), down {down['mib_s']:7.1f} MiB/s "
                f"(server RSS peak {down['rss_peak_mib']:.0f} MiB)  load {os.getloadavg()[0]:.1f}",
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


def main() -> None:
    """Make the model, run the rounds and the small-change version, print the verdicts."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-transfer-"))
    servers: list[ServerProc] = []
    try:
        (tmp / "scratch").mkdir()
        model = tmp / "model"
        made = run_python(mlflow_python(), MAKE, str(model), str(MB), env=mlflow_env(), cwd=tmp)
        size = int(made["size"])
        expected = _weights(model).stat().st_size + 1
        with database("bench_srv_my") as my_db, database("bench_srv_ml") as ml_db:
            yard = f"{my_db}?blobs={tmp / 'blobs'}"
            token = init_admin(yard)
            ours = start_modelyard("modelyard", yard, tmp / "logs")
            servers.append(ours)
            theirs = start_mlflow("mlflow", ml_db, str(tmp / "mlartifacts"), tmp / "logs")
            servers.append(theirs)
            sides = Sides(ours, theirs, token, tmp)
            rounds = _rounds(sides, model, size, expected)
            delta = _delta(sides, model, expected)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(rounds, delta, size)


def report(rounds: dict[str, list[dict[str, Any]]], delta: dict[str, Any], size: int) -> None:
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
            ]
        )
    print_table(
        f"{size / 2**20:,.0f} MiB model through the server, median (min..max) of {ROUNDS} rounds",
        [
            "transfer",
            "MiB/s",
            "seconds",
            "server RSS peak MiB (all processes)",
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
        "Targets (ratios: median of pairs (min..max))", ["figure", "value", "target", ""], verdicts
    )
    write_results(
        "server_transfer",
        {
            "model_bytes": size,
            "rounds": ROUNDS,
            "transfers": rounds,
            "medians_mib_s": {
                k: statistics.median(r["mib_s"] for r in v) for k, v in rounds.items()
            },
            "small_change": delta,
            "verdicts": [
                dict(zip(("figure", "value", "target", "verdict"), v, strict=True))
                for v in verdicts
            ],
        },
    )


if __name__ == "__main__":
    main()
