"""``modelyard serve`` against ``mlflow models serve`` (and Seldon MLServer) under wrk load.

Same machine, one run, 1 worker each, 1-row requests at concurrency 1, 8 and 32,
each level a warm-up (discarded) then a measured run, every server fresh:

- ``/invocations`` with a ``dataframe_split`` body against ``mlflow models serve``
  (``--env-manager local``, from the cached MLflow venv), for two iris
  ``LogisticRegression`` models saved by modelyard and served by both:
  ``iris-array`` (fitted on the numpy array, tensor signature; the model of the
  MLServer reference) and ``iris-frame`` (fitted on a DataFrame, column signature;
  the model of the MLflow reference). Target: at least 3x MLflow's requests/s
  and a lower p99 at every level.
- Open Inference Protocol v2 ``infer`` with one FP64 [1, 4] tensor, plain and with
  micro-batching (``--max-batch-size 32``), against MLServer 1.7.1
  (``mlserver-sklearn``, ``parallel_workers 0``; with batching ``max_batch_size 32,
  max_batch_time 0.005``) when ``BENCH_MLSERVER_VENV`` names a venv that has it, and
  against the figures recorded in ``../shared/anchors/serving-bench.md`` otherwise.
- Resident memory with 1, 2 and 4 workers: RSS and PSS of every process, for
  modelyard (models loaded once, then forked) and MLflow (each worker loads its own).

Needs Debian's wrk (``apt-get install -y wrk``) and the ``serve`` extra
(``pip install -e '.[serve]'``: uvloop and httptools). Access logs stay on for
every server, as in the references. Knobs: ``SERVE_DURATION`` (8 s),
``SERVE_WARMUP`` (3 s), ``SERVE_CONC`` ("1,8,32"), ``SERVE_ROUNDS`` (1; medians over
rounds), ``SERVE_CASES`` (all of split-iris-array, split-iris-frame, v2, v2-batched,
memory). Servers compared with each other
are up at the same time and loaded in turn, level by level, so background noise
falls on both alike.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._util import (
    BenchError,
    mlflow_env,
    mlflow_python,
    print_table,
    project_env,
    project_python,
    write_results,
)

DURATION = int(os.environ.get("SERVE_DURATION", "8"))
WARMUP = int(os.environ.get("SERVE_WARMUP", "3"))
CONCURRENCY = [int(c) for c in os.environ.get("SERVE_CONC", "1,8,32").split(",")]
MLSERVER_VENV = os.environ.get("BENCH_MLSERVER_VENV")
ROUNDS = int(os.environ.get("SERVE_ROUNDS", "1"))
ALL_CASES = ("split-iris-array", "split-iris-frame", "v2", "v2-batched", "memory")
CASES = [c for c in os.environ.get("SERVE_CASES", ",".join(ALL_CASES)).split(",") if c]
READY_TIMEOUT_S = 180.0
ROW = [0.5, 1.0, 1.5, 2.0]
COLUMNS = ["sl", "sw", "pl", "pw"]
SPLIT_BODY = json.dumps({"dataframe_split": {"columns": COLUMNS, "data": [ROW]}})
V2_BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
)
# ../shared/anchors/serving-bench.md, main table (medians of 3 rounds, same machine kind)
MLSERVER_ANCHOR = {
    "plain": {1: (1263.0, 1.2), 8: (1299.5, 9.9), 32: (1326.6, 215.6)},
    "batched": {1: (141.6, 8.5), 8: (731.5, 31.2), 32: (1418.9, 121.9)},
}


@dataclass(frozen=True)
class Load:
    """One wrk run's figures."""

    server: str
    case: str
    conc: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


# -- models -----------------------------------------------------------------------


def make_models(root: Path) -> dict[str, Path]:
    """The two iris models, saved by modelyard (MLflow serves the same directories)."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    import modelyard

    X, y = load_iris(return_X_y=True)
    frame = pd.DataFrame(X, columns=COLUMNS)
    out = {"iris-array": root / "iris-array", "iris-frame": root / "iris-frame"}
    # pickle: the format MLflow's sklearn loader reads without extra settings
    opts = {"serialization_format": "pickle"}
    modelyard.save_model(
        LogisticRegression(max_iter=1000, random_state=0).fit(X, y),
        out["iris-array"],
        input_example=X[:3],
        **opts,
    )
    modelyard.save_model(
        LogisticRegression(max_iter=1000, random_state=0).fit(frame, y),
        out["iris-frame"],
        input_example=frame.head(3),
        **opts,
    )
    return out


# -- servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process started in its own session, stopped by its process group id."""

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        *,
        port: int,
        env: dict[str, str],
        probe_path: str,
        probe_body: str,
        expect: Any,
        logdir: Path,
        cwd: Path | None = None,
    ) -> None:
        self.label = label
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = logdir / f"{label}.log"
        self._log = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.startup_s = self._wait_ready(probe_path, probe_body, expect) - started

    def _wait_ready(self, path: str, body: str, expect: Any) -> float:
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                r = httpx.post(
                    self.url + path,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    timeout=5,
                )
                if r.status_code == 200:
                    got = r.json()
                    if not _matches(got, expect):
                        self.stop()
                        raise BenchError(f"{self.label} answered {got}, expected {expect}")
                    return time.perf_counter()
                last = f"{r.status_code} {r.text[:200]}"
            except (httpx.TransportError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.05)
        self.stop()
        tail = self.log.read_text(errors="replace")[-3000:]
        raise BenchError(f"{self.label} did not become ready ({last}):\n{tail}")

    def pids(self) -> list[int]:
        """The server's process tree."""
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            with contextlib.suppress(OSError):
                todo += [
                    int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                ]
        return out

    def memory(self) -> list[dict[str, Any]]:
        """RSS and PSS (MiB) of every process of the server."""
        rows = []
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            rows.append(
                {
                    "pid": pid,
                    "cmd": cmd.decode(errors="replace")[:60],
                    "rss_mib": _kib(status, "VmRSS") / 1024,
                    "pss_mib": _kib(rollup, "Pss") / 1024,
                }
            )
        return rows

    def stop(self) -> None:
        """SIGTERM to the server's process group (its own session), SIGKILL after 20 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(20)
            except ProcessLookupError:
                pass
        self._log.close()


def _kib(text: str, key: str) -> float:
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)
    return float(m.group(1)) if m else 0.0


def _matches(got: Any, expect: Any) -> bool:
    if isinstance(expect, dict) and "outputs" in expect:
        return [o["data"] for o in got.get("outputs", [])] == expect["outputs"]
    return bool(got == expect)


def start_modelyard(
    label: str,
    model: Path,
    logdir: Path,
    *extra: str,
    path: str = "/invocations",
    body: str = SPLIT_BODY,
    expect: Any = None,
) -> Server:
    port = free_port()
    argv = [
        str(project_python()),
        "-c",
        "from modelyard.cli import main; main()",
        "serve",
        str(model),
        "--port",
        str(port),
        *extra,
    ]
    return Server(
        label,
        argv,
        port=port,
        env=project_env(),
        probe_path=path,
        probe_body=body,
        expect=expect if expect is not None else {"predictions": [0]},
        logdir=logdir,
    )


def start_mlflow(label: str, model: Path, logdir: Path, *extra: str) -> Server:
    port = free_port()
    python = mlflow_python()
    bindir = python.parent
    env = mlflow_env(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    argv = [
        str(bindir / "mlflow"),
        "models",
        "serve",
        "-m",
        str(model),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        *extra,
    ]
    return Server(
        label,
        argv,
        port=port,
        env=env,
        probe_path="/invocations",
        probe_body=SPLIT_BODY,
        expect={"predictions": [0]},
        logdir=logdir,
    )


def start_mlserver(label: str, model: Path, logdir: Path, *, batched: bool) -> Server:
    assert MLSERVER_VENV
    venv = Path(MLSERVER_VENV)
    port = free_port()
    root = logdir / label
    (root / "iris").mkdir(parents=True, exist_ok=True)
    ports = {"http_port": port, "grpc_port": free_port(), "metrics_port": free_port()}
    (root / "settings.json").write_text(
        json.dumps({"host": "127.0.0.1", "parallel_workers": 0, **ports})
    )
    settings: dict[str, Any] = {
        "name": "iris",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    if batched:
        settings.update(max_batch_size=32, max_batch_time=0.005)
    (root / "iris" / "model-settings.json").write_text(json.dumps(settings))
    # the same fitted estimator as modelyard's iris-array, dumped with joblib
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sys, pickle, joblib; joblib.dump(pickle.load(open(sys.argv[1], 'rb')),"
            " sys.argv[2])",
            str(model / "model.pkl"),
            str(root / "iris" / "model.joblib"),
        ],
        check=True,
    )
    env = project_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    return Server(
        label,
        [str(venv / "bin" / "mlserver"), "start", str(root)],
        port=port,
        env=env,
        probe_path="/v2/models/iris/infer",
        probe_body=V2_BODY,
        expect={"outputs": [[0]]},
        logdir=logdir,
        cwd=root,
    )


# -- load -------------------------------------------------------------------------


def wrk(url: str, body: str, conc: int, seconds: int, script_dir: Path) -> dict[str, float]:
    script = script_dir / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    proc = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{conc}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    )
    return parse_wrk(proc.stdout)


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s, p50, p99 (ms) and errors (socket errors + non-2xx) from wrk's output."""
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise BenchError(f"cannot read wrk's output:\n{text}")
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    return {
        "rps": float(m.group(1)),
        "p50_ms": _latency(text, "50"),
        "p99_ms": _latency(text, "99"),
        "errors": errors,
    }


def _latency(text: str, pct: str) -> float:
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not m:
        raise BenchError(f"no {pct}% latency in wrk's output:\n{text}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return float(m.group(1)) * scale


def measure(server: Server, case: str, path: str, body: str, *, conc: int, tmp: Path) -> Load:
    """A warm-up run (discarded), then the measured run."""
    wrk(server.url + path, body, conc, WARMUP, tmp)
    r = wrk(server.url + path, body, conc, DURATION, tmp)
    load = Load(server.label, case, conc, r["rps"], r["p50_ms"], r["p99_ms"], int(r["errors"]))
    print(
        f"  {server.label:28s} {case:22s} c={conc:<3d} {r['rps']:8.1f} req/s"
        f"  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}",
        flush=True,
    )
    return load


def run_group(
    starts: Sequence[tuple[Any, str]], case: str, body: str, tmp: Path
) -> tuple[list[Load], dict[str, float]]:
    """Servers compared with each other run at the same time and are loaded in turn.

    For each concurrency level and round the servers take turns (the order rotates),
    so the machine's background noise falls on all of them alike; each figure is
    the median over ``ROUNDS`` rounds.
    """
    servers: list[tuple[Server, str]] = []
    try:
        for start, path in starts:
            servers.append((start(), path))
        samples: dict[tuple[str, int], list[Load]] = {}
        for conc in CONCURRENCY:
            for r in range(ROUNDS):
                order = servers[r % len(servers) :] + servers[: r % len(servers)]
                for server, path in order:
                    load = measure(server, case, path, body, conc=conc, tmp=tmp)
                    samples.setdefault((server.label, conc), []).append(load)
        out = [_median(v) for v in samples.values()]
        return out, {s.label: round(s.startup_s, 2) for s, _ in servers}
    finally:
        for server, _ in servers:
            server.stop()


def _median(loads: list[Load]) -> Load:
    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    first = loads[0]
    return Load(
        first.server,
        first.case,
        first.conc,
        med([x.rps for x in loads]),
        med([x.p50_ms for x in loads]),
        med([x.p99_ms for x in loads]),
        sum(x.errors for x in loads),
    )


# -- memory -----------------------------------------------------------------------


def memory_case(start: Any, tmp: Path, path: str, body: str) -> dict[str, Any]:
    server = start()
    try:
        wrk(server.url + path, body, 8, 2, tmp)  # touch every worker's code paths
        time.sleep(1.0)
        procs = server.memory()
    finally:
        server.stop()
    return {
        "label": server.label,
        "processes": procs,
        "rss_mib": round(sum(p["rss_mib"] for p in procs), 1),
        "pss_mib": round(sum(p["pss_mib"] for p in procs), 1),
    }


# -- main -------------------------------------------------------------------------


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    # Stopped by SIGTERM or Ctrl-C (even when started in the background, where SIGINT
    # is ignored), the finally blocks still stop every server this bench started.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    if shutil.which("wrk") is None:
        raise BenchError("wrk is not installed: apt-get install -y wrk")
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        fast = True
    except ImportError:
        fast = False
        print("  note: uvloop/httptools missing (pip install -e '.[serve]'): pure-Python HTTP")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        _main(tmp, fast)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _main(tmp: Path, fast: bool) -> None:
    models = make_models(tmp / "models")
    logs = tmp / "logs"
    logs.mkdir()
    loads: list[Load] = []
    startup: dict[str, float] = {}

    def add(starts: Sequence[tuple[Any, str]], case: str, body: str) -> None:
        rows, secs = run_group(starts, case, body, tmp)
        loads.extend(rows)
        startup.update(secs)

    for name in ("iris-array", "iris-frame"):
        if f"split-{name}" not in CASES:
            continue
        model = models[name]
        add(
            [
                (lambda m=model, n=name: start_mlflow(f"mlflow-{n}", m, logs), "/invocations"),
                (
                    lambda m=model, n=name: start_modelyard(f"modelyard-{n}", m, logs),
                    "/invocations",
                ),
            ],
            f"split {name}",
            SPLIT_BODY,
        )
    v2_path = "/v2/models/iris-array/infer"
    mls_path = "/v2/models/iris/infer"
    v2_expect = {"outputs": [[0]]}
    for batched in (False, True):
        if ("v2-batched" if batched else "v2") not in CASES:
            continue
        extra = ("--max-batch-size", "32") if batched else ()
        suffix = "-batched" if batched else ""
        group: list[tuple[Any, str]] = [
            (
                lambda e=extra, x=suffix: start_modelyard(
                    f"modelyard-v2{x}",
                    models["iris-array"],
                    logs,
                    *e,
                    path=v2_path,
                    body=V2_BODY,
                    expect=v2_expect,
                ),
                v2_path,
            )
        ]
        if MLSERVER_VENV:
            group.append(
                (
                    lambda b=batched, x=suffix: start_mlserver(
                        f"mlserver{x}", models["iris-array"], logs, batched=b
                    ),
                    mls_path,
                )
            )
        add(group, "v2 batched" if batched else "v2", V2_BODY)

    memory: list[dict[str, Any]] = []
    if "memory" in CASES:
        for workers in (1, 2, 4):
            memory.append(
                memory_case(
                    lambda w=workers: start_modelyard(
                        f"modelyard-w{w}", models["iris-array"], logs, "--workers", str(w)
                    ),
                    tmp,
                    "/invocations",
                    SPLIT_BODY,
                )
            )
        for workers in (1, 2):
            memory.append(
                memory_case(
                    lambda w=workers: start_mlflow(
                        f"mlflow-w{w}", models["iris-array"], logs, "-w", str(w)
                    ),
                    tmp,
                    "/invocations",
                    SPLIT_BODY,
                )
            )
    report(loads, memory, startup, fast)


def report(
    loads: list[Load], memory: list[dict[str, Any]], startup: dict[str, float], fast: bool
) -> None:
    print_table(
        f"1-row requests, 1 worker each, wrk -t1, {WARMUP} s warm-up + {DURATION} s measured,"
        f" median of {ROUNDS} round(s)",
        ["server", "case", "conc", "req/s", "p50 ms", "p99 ms", "errors"],
        [
            [
                x.server,
                x.case,
                x.conc,
                f"{x.rps:.1f}",
                f"{x.p50_ms:.2f}",
                f"{x.p99_ms:.2f}",
                x.errors,
            ]
            for x in loads
        ],
    )
    by = {(x.server, x.case, x.conc): x for x in loads}
    ratio_rows = []
    verdicts: dict[str, bool] = {}
    for name in ("iris-array", "iris-frame"):
        case = f"split {name}"
        if f"split-{name}" not in CASES:
            continue
        ok = True
        for c in CONCURRENCY:
            ours = by[(f"modelyard-{name}", case, c)]
            theirs = by[(f"mlflow-{name}", case, c)]
            ratio = ours.rps / theirs.rps
            lower = ours.p99_ms < theirs.p99_ms
            ok = ok and ratio >= 3.0 and lower and ours.errors == 0
            ratio_rows.append(
                [
                    case,
                    c,
                    f"{ratio:.2f}x",
                    f"{ours.p99_ms:.2f} vs {theirs.p99_ms:.2f}",
                    "yes" if lower else "NO",
                ]
            )
        verdicts[case] = ok
    print_table(
        "/invocations: modelyard / MLflow (target >= 3x req/s and lower p99)",
        ["case", "conc", "req/s ratio", "p99 ms (modelyard vs MLflow)", "lower p99"],
        ratio_rows,
    )
    v2_rows = []
    for case, anchor_key, label in (
        ("v2", "plain", "modelyard-v2"),
        ("v2 batched", "batched", "modelyard-v2-batched"),
    ):
        for c in CONCURRENCY:
            ours = by.get((label, case, c))
            mls = by.get(("mlserver" + ("-batched" if anchor_key == "batched" else ""), case, c))
            anchor = MLSERVER_ANCHOR[anchor_key].get(c)
            if ours is None:
                continue
            ref_rps, ref_p99 = (mls.rps, mls.p99_ms) if mls else anchor or (float("nan"),) * 2
            src = "side by side" if mls else "anchor"
            v2_rows.append(
                [
                    case,
                    c,
                    f"{ours.rps:.1f}",
                    f"{ref_rps:.1f}",
                    f"{ours.rps / ref_rps:.2f}x",
                    f"{ours.p99_ms:.2f} vs {ref_p99:.2f}",
                    src,
                ]
            )
    print_table(
        "OIP v2 infer, FP64 [1,4]: modelyard vs MLServer 1.7.1",
        [
            "case",
            "conc",
            "modelyard req/s",
            "MLServer req/s",
            "ratio",
            "p99 ms (modelyard vs MLServer)",
            "MLServer figures",
        ],
        v2_rows,
    )
    if memory:
        rows = []
        for m in memory:
            procs = ", ".join(f"{p['rss_mib']:.0f}/{p['pss_mib']:.0f}" for p in m["processes"])
            rows.append([m["label"], m["rss_mib"], m["pss_mib"], procs])
        print_table(
            "Memory after load (MiB): total RSS, total PSS, per process RSS/PSS",
            ["server", "RSS", "PSS", "processes (RSS/PSS)"],
            rows,
        )
        per = {m["label"]: m for m in memory}
        extra = []
        for prefix, a, b in (("modelyard", 1, 2), ("modelyard", 2, 4), ("mlflow", 1, 2)):
            x, y = per.get(f"{prefix}-w{a}"), per.get(f"{prefix}-w{b}")
            if x and y:
                n = b - a
                extra.append(
                    [
                        prefix,
                        f"{a} -> {b}",
                        f"{(y['rss_mib'] - x['rss_mib']) / n:.1f}",
                        f"{(y['pss_mib'] - x['pss_mib']) / n:.1f}",
                    ]
                )
        print_table("Memory per extra worker (MiB)", ["server", "workers", "RSS", "PSS"], extra)
    print(f"\nstart to first good answer (s): {startup}")
    print(f"uvloop + httptools: {'yes' if fast else 'no'}")
    for case, ok in verdicts.items():
        print(
            f"{case}: {'ok' if ok else 'MISSED'} (>= 3x MLflow req/s and lower p99 at every level)"
        )
    write_results(
        "serve_http",
        {
            "loads": [asdict(x) for x in loads],
            "memory": memory,
            "startup_s": startup,
            "fast_http": fast,
            "duration_s": DURATION,
            "rounds": ROUNDS,
            "warmup_s": WARMUP,
            "mlserver_anchor": MLSERVER_ANCHOR,
            "verdicts": verdicts,
            "python": sys.version.split()[0],
        },
    )


if __name__ == "__main__":
    main()
