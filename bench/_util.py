"""Shared helpers for the side-by-side benchmarks (stdlib only at import).

A bench module is ``bench/<name>.py`` with a ``main() -> None`` that measures,
prints a table (:func:`print_table`) and saves its figures
(:func:`write_results`). ``python -m bench [name ...]`` runs them.

Whole processes (what a user waits for)::

    cmds = [
        Command("modelyard", (str(project_python()), "-c", "import modelyard")),
        Command("mlflow", (str(mlflow_python()), "-c", "import mlflow"), env=mlflow_env()),
    ]
    runs = time_commands(cmds)               # warm-up, then A B A B ... RUNS times
    wall = paired_ratios(runs["modelyard"], runs["mlflow"])    # Summary of A/B per pair

In-process loops (per-call cost), in this venv or, through :func:`run_mlflow`
with ``with_bench=True``, in MLflow's::

    per_call = interleave({"ours": lambda: m.predict(df), "raw": lambda: est.predict(df)})
    Summary.of(per_call["ours"]), Summary.of(ratios(per_call["ours"], per_call["raw"]))

Models made by MLflow for a bench: :func:`mlflow_fixture` runs a script once in
MLflow's venv and caches its output directory by the script's hash.

Knobs (environment): ``BENCH_RUNS`` (5), ``BENCH_WARMUP`` (1), ``BENCH_REPEATS``
(21), ``BENCH_MIN_REPEAT_S`` (0.2), ``MODELYARD_BENCH_CACHE`` (fixture cache).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "1"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "21"))
MIN_REPEAT_S = float(os.environ.get("BENCH_MIN_REPEAT_S", "0.2"))
FIXTURES = Path(
    os.environ.get("MODELYARD_BENCH_CACHE", Path.home() / ".cache" / "modelyard" / "bench")
)


class BenchError(RuntimeError):
    """A benchmarked command failed or did not do what it should."""


# -- statistics ------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Median, min and max of some samples."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        """Summarise ``values`` (at least one)."""
        if not values:
            raise ValueError("no samples to summarise")
        return cls(statistics.median(values), min(values), max(values), len(values))

    def fmt(self, digits: int = 3, scale: float = 1.0) -> str:
        """``median (min..max)``, each multiplied by ``scale``."""
        m, lo, hi = (v * scale for v in (self.median, self.min, self.max))
        return f"{m:.{digits}f} ({lo:.{digits}f}..{hi:.{digits}f})"


def ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """``a[i] / b[i]`` pair by pair (samples taken alternately)."""
    if len(a) != len(b):
        raise ValueError(f"unpaired samples: {len(a)} vs {len(b)}")
    return [x / y for x, y in zip(a, b, strict=True)]


# -- whole processes --------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """One command to time as a whole process.

    ``env`` is the child's whole environment (default :func:`project_env`).
    ``expect``, when given, must appear in the command's stdout: a bench that
    times a command which silently did nothing measures nothing.
    """

    label: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    expect: str | None = None


@dataclass(frozen=True)
class Run:
    """One timed run of a command: wall and CPU seconds, peak RSS of the child."""

    wall: float
    cpu: float
    peak_rss_mib: float


def run_once(cmd: Command) -> Run:
    """Run ``cmd`` once; :class:`BenchError` if it fails or misses ``expect``.

    Wall time is measured here; CPU (user + sys) comes from ``wait4`` on the
    child. Peak RSS comes from ``/usr/bin/time``, which the child is started
    through when present: a child forked straight from this (large) process
    would report this process's RSS as its own floor.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss_file,
    ):
        argv = list(cmd.argv)
        if _TIME.exists():
            argv = [str(_TIME), "-q", "-f", "%M", "-o", rss_file.name, *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(cmd.env if cmd.env is not None else project_env()),
            cwd=cmd.cwd,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        rss_kib = _parse_rss(rss_file.read()) or usage.ru_maxrss
    if proc.returncode != 0:
        raise BenchError(
            f"{cmd.label!r} exited with {proc.returncode}:\n{stdout[-2000:]}\n{stderr[-4000:]}"
        )
    if cmd.expect is not None and cmd.expect not in stdout:
        raise BenchError(
            f"{cmd.label!r}: expected {cmd.expect!r} in its output, got:\n"
            f"{stdout[-2000:]}\n{stderr[-2000:]}"
        )
    return Run(wall, usage.ru_utime + usage.ru_stime, rss_kib / 1024)


_TIME = Path("/usr/bin/time")


def _parse_rss(text: str) -> int | None:
    lines = text.strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].strip().isdigit() else None


def time_commands(
    cmds: Sequence[Command], *, runs: int | None = None, warmup: int | None = None
) -> dict[str, list[Run]]:
    """Time every command ``runs`` times after ``warmup`` rounds, alternating.

    Rounds run the commands in order (A B C A B C ...), so noise from the rest of
    the machine falls on all of them alike and :func:`ratios` can pair them by
    round. Warm-up rounds fill the page cache and bytecode caches and are dropped.
    """
    runs = RUNS if runs is None else runs
    warmup = WARMUP if warmup is None else warmup
    labels = [c.label for c in cmds]
    if len(set(labels)) != len(labels):
        raise ValueError(f"command labels must be unique: {labels}")
    out: dict[str, list[Run]] = {c.label: [] for c in cmds}
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        print(f"note: the machine is busy (load {load:.1f} on {cores} cores); wall times are noisy")
    for round_ in range(warmup + runs):
        for cmd in cmds:
            run = run_once(cmd)
            if round_ >= warmup:
                out[cmd.label].append(run)
        _progress(f"round {round_ + 1}/{warmup + runs}")
    _progress("")
    return out


def walls(runs: Sequence[Run]) -> list[float]:
    """Wall seconds of each run."""
    return [r.wall for r in runs]


def cpus(runs: Sequence[Run]) -> list[float]:
    """CPU seconds (user + sys) of each run."""
    return [r.cpu for r in runs]


def rss(runs: Sequence[Run]) -> list[float]:
    """Peak RSS in MiB of each run."""
    return [r.peak_rss_mib for r in runs]


def paired_ratios(a: Sequence[Run], b: Sequence[Run], what: str = "wall") -> Summary:
    """Summary of ``a/b`` pair by pair for ``what`` (``wall``, ``cpu``, ``peak_rss_mib``)."""
    return Summary.of(ratios([getattr(r, what) for r in a], [getattr(r, what) for r in b]))


def runs_row(label: str, runs: Sequence[Run]) -> list[str]:
    """A table row: label, wall median (min..max), CPU median, peak RSS median."""
    return [
        label,
        Summary.of(walls(runs)).fmt(3),
        f"{statistics.median(cpus(runs)):.3f}",
        f"{statistics.median(rss(runs)):.1f}",
    ]


RUNS_HEADERS = ["command", "wall s median (min..max)", "cpu s", "peak RSS MiB"]


def runs_json(runs: Sequence[Run]) -> dict[str, Any]:
    """Raw samples and summaries of some runs, for :func:`write_results`."""
    return {
        "runs": [asdict(r) for r in runs],
        "wall": asdict(Summary.of(walls(runs))),
        "cpu": asdict(Summary.of(cpus(runs))),
        "peak_rss_mib": asdict(Summary.of(rss(runs))),
    }


# -- in-process loops ---------------------------------------------------------


def interleave(
    fns: Mapping[str, Callable[[], object]],
    *,
    repeats: int | None = None,
    min_time: float | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function, ``repeats`` samples each, interleaved.

    Each function gets a loop count making one sample last at least
    ``min_time``; every repeat then runs one sample of each function, rotating
    the order so none always runs first. Samples of different functions with the
    same index are paired (use :func:`ratios`). Stdlib only, so scripts run by
    :func:`run_mlflow` (``with_bench=True``) can use it too.
    """
    repeats = REPEATS if repeats is None else repeats
    min_time = MIN_REPEAT_S if min_time is None else min_time
    names = list(fns)
    loops = {name: _calibrate(fns[name], min_time) for name in names}
    out: dict[str, list[float]] = {name: [] for name in names}
    for i in range(repeats):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            fn, n = fns[name], loops[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            out[name].append((time.perf_counter() - start) / n)
    return out


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    fn()  # first call: lazy imports and caches are not what is measured
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return n
        n = max(n * 2, int(n * min_time / max(elapsed, 1e-9) * 1.1))


# -- interpreters and environments --------------------------------------------------


def project_python() -> Path:
    """The interpreter running the bench (the project's venv)."""
    return Path(sys.executable)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without ``PYTHON*``/``VIRTUAL_ENV`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(extra)
    return env


def project_env(**extra: str) -> dict[str, str]:
    """Environment for a child running the project's python."""
    return clean_env(**extra)


@contextlib.contextmanager
def scratch_with_own_keys(prefix: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A scratch folder and a project environment whose config home (keys, trust file)
    is a fresh one inside it, for this process too; both are gone afterwards.

    Saving signs with the user's default key: a bench must neither use nor
    create the real one.
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    config_home = tmp / "config"
    config_home.mkdir()
    old_home = os.environ.get("MODELYARD_CONFIG_HOME")
    os.environ["MODELYARD_CONFIG_HOME"] = str(config_home)
    try:
        yield tmp, project_env(MODELYARD_CONFIG_HOME=str(config_home))
    finally:
        if old_home is None:
            os.environ.pop("MODELYARD_CONFIG_HOME", None)
        else:
            os.environ["MODELYARD_CONFIG_HOME"] = old_home
        shutil.rmtree(tmp, ignore_errors=True)


def mlflow_env(**extra: str) -> dict[str, str]:
    """Environment for a child running MLflow's python (no telemetry, quiet git)."""
    return clean_env(MLFLOW_DISABLE_TELEMETRY="true", GIT_PYTHON_REFRESH="quiet", **extra)


def mlflow_python() -> Path:
    """The interpreter of the cached MLflow venv, built on first use (about two minutes).

    Shares the interop tests' cache, lock and build code
    (``tests/interop/conftest.py``), so a bench and a test session never build it twice.
    """
    interop = _interop()
    cache = Path(interop.CACHE)
    env = cache / f"mlflow-{interop.MLFLOW_VERSION}"
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / ".mlflow-env.lock"):
        if not (env / ".complete").exists():
            _progress("building the MLflow venv (once)...")
            shutil.rmtree(env, ignore_errors=True)
            interop._build(env)
    return env / "bin" / "python"


def mlflow_version() -> str:
    """The MLflow version the cached venv holds."""
    return str(_interop().MLFLOW_VERSION)


def _interop() -> Any:
    # The checkout's root must be importable for `tests.interop` (not the case
    # when a bench script is run by path rather than with `python -m bench`).
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.interop import conftest

    return conftest


def run_python(
    python: Path,
    code: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 900,
) -> Any:
    """Run ``code`` with ``python``; its last non-empty stdout line is parsed as JSON."""
    proc = subprocess.run(
        [str(python), "-c", textwrap.dedent(code), *args],
        check=False,
        capture_output=True,
        text=True,
        env=dict(env if env is not None else project_env()),
        cwd=cwd,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise BenchError(f"script failed ({python}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def run_mlflow(
    code: str,
    *args: str,
    with_bench: bool = False,
    with_modelyard: bool = False,
    cwd: Path | None = None,
) -> Any:
    """Run ``code`` in MLflow's venv; returns its last stdout line as JSON.

    ``with_bench`` makes ``from bench._util import interleave, ...`` work there
    (the checkout's root on ``PYTHONPATH``); ``with_modelyard`` adds ``src``.
    """
    paths = ([str(ROOT)] if with_bench else []) + ([str(ROOT / "src")] if with_modelyard else [])
    env = mlflow_env(PYTHONPATH=os.pathsep.join(paths)) if paths else mlflow_env()
    return run_python(mlflow_python(), code, *args, env=env, cwd=cwd)


def mlflow_fixture(name: str, script: str) -> Path:
    """A directory of models made by ``script`` in MLflow's venv, made once and cached.

    ``script`` receives the output directory as ``sys.argv[1]`` and must be
    deterministic (fixed seeds, built-in data sets). The cache key is the
    script's text and the MLflow version, so editing the script remakes it. It is
    built in a temporary sibling and renamed, so a crash leaves no half fixture.
    """
    script = textwrap.dedent(script)
    key = hashlib.sha256(f"{mlflow_version()}\n{script}".encode()).hexdigest()[:16]
    target = FIXTURES / f"{name}-{key}"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with _locked(FIXTURES / f".{name}.lock"):
        if not target.exists():
            _progress(f"making fixture {name} with MLflow (once)...")
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=FIXTURES))
            try:
                (tmp / "make.py").write_text(script, encoding="utf-8")
                run_mlflow(script, str(tmp))
                tmp.rename(target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            _progress("")
    return target


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# -- output -------------------------------------------------------------------


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print an aligned plain-text table under ``title``."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


@dataclass(frozen=True)
class _Machine:
    cpus: int | None = os.cpu_count()
    loadavg: tuple[float, ...] = field(default_factory=lambda: tuple(os.getloadavg()))
    python: str = platform.python_version()
    platform: str = platform.platform()


def write_results(name: str, data: Mapping[str, Any]) -> Path:
    """Save ``data`` with the machine, time and commit as ``bench/results/<name>.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "bench": name,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "machine": asdict(_Machine()),
        "settings": {
            "runs": RUNS,
            "warmup": WARMUP,
            "repeats": REPEATS,
            "min_repeat_s": MIN_REPEAT_S,
        },
        **data,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {path.relative_to(ROOT)}")
    return path


def verdict(value: float, target: float) -> str:
    """``ok`` or ``MISSED`` for an at-most target."""
    return "ok" if value <= target else "MISSED"


def _git_commit() -> str | None:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout.strip() or None


def _progress(text: str) -> None:
    # Progress goes to stderr on one line, so piped tables stay clean.
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{text}")
        sys.stderr.flush()
