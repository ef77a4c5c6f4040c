"""``modelyard server`` and ``mlflow server`` side by side: processes, databases, probes.

Shared by the ``server_*`` benches:

- :func:`database`: a PostgreSQL database of the bench's own (created, dropped after);
- :func:`mlflow_server_python`: a bench-only venv with MLflow 3.17.2 plus
  ``psycopg2-binary`` and ``boto3`` (what ``mlflow server`` needs for PostgreSQL and
  S3; the interop tests' MLflow venv is left as it is);
- :func:`start_modelyard` / :func:`start_mlflow`: a server in its own session, ready
  once ``/health`` answers, stopped by its process group;
- :class:`RssSampler`: the summed RSS and PSS of a server's whole process tree,
  sampled in a thread while something runs;
- :class:`CountingProxy`: a TCP proxy on loopback that counts the bytes each way and
  records the HTTP request lines it sees (how many blob GETs a load made);
- :func:`wrk_get`: wrk with GET requests, headers and optional random names (Lua).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._util import (
    FIXTURES,
    BenchError,
    _locked,
    mlflow_env,
    mlflow_version,
    project_env,
    project_python,
)

POSTGRES = os.environ.get("MODELYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
READY_TIMEOUT_S = 180.0
#: the same number of worker processes for both servers (the machine has 2 cores)
WORKERS = int(os.environ.get("BENCH_SERVER_WORKERS", "2"))


# -- databases ----------------------------------------------------------------------


@contextlib.contextmanager
def database(prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database on :data:`POSTGRES`'s server; its URL (dropped after)."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(POSTGRES, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def psycopg2_url(url: str) -> str:
    """``postgresql+psycopg2://...``: SQLAlchemy 2.1 reads plain ``postgresql://`` as psycopg 3."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


# -- the MLflow server's venv ----------------------------------------------------------


def mlflow_server_python() -> Path:
    """A bench-only venv: MLflow, psycopg2-binary, boto3, skops (built once, cached)."""
    env = FIXTURES / f"mlflow-server-{mlflow_version()}"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with _locked(FIXTURES / ".mlflow-server.lock"):
        if not (env / ".complete").exists():
            print("building the MLflow server bench venv (once)...", flush=True)
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
            pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
            packages = [f"mlflow=={mlflow_version()}", "psycopg2-binary", "boto3", "skops"]
            proc = subprocess.run([*pip, *packages], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise BenchError(f"pip failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            (env / ".complete").write_text("ok")
    return env / "bin" / "python"


def mlflow_server_env(**extra: str) -> dict[str, str]:
    """Environment for the MLflow server venv's processes (its bin first on PATH)."""
    bindir = mlflow_server_python().parent
    return mlflow_env(PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}", **extra)


# -- server processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProc:
    """A server process in its own session, ready when ``GET /health`` answers 200."""

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str],
        logdir: Path,
        cwd: Path | None = None,
    ) -> None:
        self.label = label
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        logdir.mkdir(parents=True, exist_ok=True)
        self.log = logdir / f"{label}.log"
        self._log = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
        self._wait_ready()
        self.startup_s = time.perf_counter() - started

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.1)
        self.stop()
        tail = self.log.read_text(errors="replace")[-3000:]
        raise BenchError(f"{self.label} did not become ready ({last}):\n{tail}")

    def pids(self) -> list[int]:
        """The server's process tree (parent, workers, helpers)."""
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            with contextlib.suppress(OSError):
                todo += [
                    int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                ]
        return out

    def rss_mib(self) -> dict[int, float]:
        """RSS (MiB) of each process of the tree."""
        out = {}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
                if m:
                    out[pid] = int(m.group(1)) / 1024
        return out

    def pss_mib(self) -> dict[int, float]:
        """PSS (MiB) of each process of the tree, from ``/proc/<pid>/smaps_rollup``.

        Pre-forked workers share most of their pages with the parent (the code,
        the imported modules): RSS counts those once per process, PSS divides
        each shared page among the processes that map it, so the PSS of the
        tree sums to the memory the server really holds. Reading it walks the
        page tables (about 1 ms per 100 MiB mapped), so it is sampled less often.
        """
        out = {}
        for pid in self.pids():
            with contextlib.suppress(OSError):
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                m = re.search(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE)
                if m:
                    out[pid] = int(m.group(1)) / 1024
        return out

    def stop(self) -> None:
        """SIGTERM to the server's process group (its own session), SIGKILL after 30 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
            except ProcessLookupError:
                pass
        self._log.close()


def modelyard_cli(*args: str, env: Mapping[str, str] | None = None) -> str:
    """Run ``modelyard ARGS`` with the project's python; its stdout."""
    proc = subprocess.run(
        [str(project_python()), "-c", "from modelyard.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=dict(env if env is not None else project_env()),
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise BenchError(f"modelyard {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def init_admin(yard: str) -> str:
    """``modelyard server init-admin``: the admin token it prints."""
    lines = [ln for ln in modelyard_cli("server", "init-admin", "--yard", yard).splitlines() if ln]
    token = lines[-1].strip()
    if not token.startswith("myd_"):
        raise BenchError(f"init-admin printed no token: {lines}")
    return token


def start_modelyard(
    label: str,
    yard: str,
    logdir: Path,
    *,
    workers: int = WORKERS,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> ServerProc:
    """``modelyard server --yard YARD --workers N`` on a free loopback port."""
    port = port or free_port()
    argv = [
        str(project_python()),
        "-c",
        "from modelyard.cli import main; main()",
        "server",
        "--yard",
        yard,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return ServerProc(label, argv, port=port, env=project_env(**(env or {})), logdir=logdir)


def start_mlflow(
    label: str,
    backend: str,
    artifacts: str,
    logdir: Path,
    *,
    workers: int = WORKERS,
    env: Mapping[str, str] | None = None,
) -> ServerProc:
    """``mlflow server --serve-artifacts`` over ``backend`` (PostgreSQL), no auth app."""
    port = free_port()
    bindir = mlflow_server_python().parent
    argv = [
        str(bindir / "mlflow"),
        "server",
        "--backend-store-uri",
        psycopg2_url(backend),
        "--serve-artifacts",
        "--artifacts-destination",
        artifacts,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return ServerProc(
        label, argv, port=port, env=mlflow_server_env(**(env or {})), logdir=logdir, cwd=logdir
    )


# -- measuring -----------------------------------------------------------------------------


class RssSampler:
    """Sample a server's summed RSS every ``interval`` s in a thread (``with`` block).

    Every ``pss_every``-th sample also reads the summed PSS (:meth:`ServerProc.pss_mib`;
    dearer to read, so at 0.25 s by default): its peak may miss a short spike
    that the RSS samples catch.
    """

    def __init__(self, server: ServerProc, interval: float = 0.05, pss_every: int = 5) -> None:
        self.server = server
        self.interval = interval
        self.pss_every = pss_every
        self.samples: list[float] = []
        self.pss_samples: list[float] = []
        self.peak_process = 0.0
        self.pss_peak_process = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            per = self.server.rss_mib()
            if per:
                self.samples.append(sum(per.values()))
                self.peak_process = max(self.peak_process, *per.values())
            if n % self.pss_every == 0:
                pss = self.server.pss_mib()
                if pss:
                    self.pss_samples.append(sum(pss.values()))
                    self.pss_peak_process = max(self.pss_peak_process, *pss.values())
            n += 1
            self._stop.wait(self.interval)

    @property
    def peak(self) -> float:
        """The highest summed RSS seen (MiB)."""
        return max(self.samples) if self.samples else 0.0

    @property
    def baseline(self) -> float:
        """The first sample (MiB): the server before the transfer started."""
        return self.samples[0] if self.samples else 0.0

    @property
    def pss_peak(self) -> float:
        """The highest summed PSS seen (MiB)."""
        return max(self.pss_samples) if self.pss_samples else 0.0

    @property
    def pss_baseline(self) -> float:
        """The first PSS sample (MiB), taken with the first RSS sample."""
        return self.pss_samples[0] if self.pss_samples else 0.0


_REQUEST_LINE = re.compile(rb"(GET|PUT|POST|HEAD|PATCH|DELETE) (/[^ \r\n]*) HTTP/1\.[01]\r\n")


@dataclass
class Traffic:
    """What went through a :class:`CountingProxy` since its last reset."""

    up: int = 0  # client -> server bytes
    down: int = 0  # server -> client bytes
    requests: list[str] = field(default_factory=list)

    def count(self, method: str, contains: str) -> int:
        return sum(1 for r in self.requests if r.startswith(method + " ") and contains in r)


class CountingProxy:
    """A loopback TCP proxy to ``target_port`` that counts bytes and request lines.

    Request lines are found by pattern in the client's stream (bodies included), so
    a body that happened to hold ``GET /x HTTP/1.1\\r\\n`` would count: good enough to
    tell "no blob GET" from "some". Used only where bytes are counted, never where
    throughput is timed.
    """

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self._lock = threading.Lock()
        self._traffic = Traffic()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> Traffic:
        """The traffic so far, and start counting afresh."""
        with self._lock:
            out, self._traffic = self._traffic, Traffic()
        return out

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        tail = b""
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        try:
            while True:
                n = src.recv_into(buf)
                if n == 0:
                    break
                dst.sendall(view[:n])
                with self._lock:
                    if up:
                        self._traffic.up += n
                        chunk = tail + bytes(view[:n])
                        self._traffic.requests += [
                            f"{m.group(1).decode()} {m.group(2).decode(errors='replace')}"
                            for m in _REQUEST_LINE.finditer(chunk)
                            if m.end() > len(tail)  # a line inside the tail was counted
                        ]
                        tail = chunk[-256:]
                    else:
                        self._traffic.down += n
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def http_json(
    method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None
) -> Any:
    """One JSON request with urllib; :class:`BenchError` on a non-2xx answer."""
    import json

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
    except urllib.error.HTTPError as exc:
        raise BenchError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from None
    return json.loads(text) if text else None


def wrk_get(
    url: str,
    *,
    headers: Mapping[str, str],
    conc: int,
    seconds: int,
    script_dir: Path,
    lua_request: str = "",
    threads: int = 1,
) -> dict[str, float]:
    """wrk GETs of ``url`` with ``headers`` (and a Lua ``request`` function body, if given)."""
    from bench.serve_http import parse_wrk

    lines = [f"wrk.headers[{_lua(k)}] = {_lua(v)}" for k, v in headers.items()]
    if lua_request:
        lines.append(lua_request)
    script = script_dir / f"get-{uuid.uuid4().hex[:8]}.lua"
    script.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
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
    script.unlink()
    return parse_wrk(proc.stdout)


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- seeding a registry fast (both schemas) -------------------------------------------------


def seed_modelyard(
    url: str, tables: Sequence[tuple[Any, list[dict[str, Any]]]], models: int
) -> None:
    """Bulk-insert rows into modelyard's tables (the schema made by its own store code).

    ``tables`` is ``[(table, rows)]`` in insert order; ``models`` rows of
    ``registered_models`` were given ids 1..models, so its sequence is moved past them.
    """
    import sqlalchemy as sa

    from modelyard.store.sql.store import SqlMetadataStore

    store = SqlMetadataStore(url)  # creates / upgrades the schema
    with store.db.write() as conn:
        for table, rows in tables:
            for start in range(0, len(rows), 20000):
                conn.execute(sa.insert(table), rows[start : start + 20000])
        conn.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('registered_models', 'model_id'), :n)"),
            {"n": models},
        )
    store.close()
    analyze(url)


def seed_mlflow(
    url: str,
    server: ServerProc,
    names: Iterable[str],
    versions: Iterable[tuple[str, int, dict[str, Any]]],
    aliases: Iterable[tuple[str, str, int]] = (),
) -> None:
    """Bulk-insert a registry into MLflow's schema (made by ``mlflow server``).

    One model and version are made through MLflow's API as a template, so every
    column gets the value MLflow itself gives; each of ``versions`` is
    ``(name, version, columns that differ from the template)``; the rows are COPYed in.
    """
    import psycopg

    api = server.url + "/api/2.0/mlflow"
    http_json("POST", api + "/registered-models/create", {"name": "template"})
    http_json(
        "POST", api + "/model-versions/create", {"name": "template", "source": "s3://bench/m"}
    )
    with psycopg.connect(url) as conn:
        cur = conn.cursor()
        cur.execute("SELECT * FROM registered_models WHERE name = 'template'")
        rm_cols = [d.name for d in cur.description or ()]
        rm = dict(zip(rm_cols, cur.fetchone() or (), strict=True))
        cur.execute("SELECT * FROM model_versions WHERE name = 'template'")
        mv_cols = [d.name for d in cur.description or ()]
        mv = dict(zip(mv_cols, cur.fetchone() or (), strict=True))
        cur.execute("DELETE FROM model_versions WHERE name = 'template'")
        cur.execute("DELETE FROM registered_models WHERE name = 'template'")
        with cur.copy(f"COPY registered_models ({', '.join(rm_cols)}) FROM STDIN") as copy:
            for n in names:
                copy.write_row([n if c == "name" else rm[c] for c in rm_cols])
        with cur.copy(f"COPY model_versions ({', '.join(mv_cols)}) FROM STDIN") as copy:
            for n, v, columns in versions:
                row = {**mv, "name": n, "version": v, **columns}
                copy.write_row([row[c] for c in mv_cols])
        with cur.copy("COPY registered_model_aliases (name, alias, version) FROM STDIN") as copy:
            for n, a, v in aliases:
                copy.write_row([n, a, v])
    analyze(url)


def analyze(url: str) -> None:
    """``ANALYZE`` the database, so the planner knows the bulk-inserted tables."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
