"""8 processes registering versions of one model through two ``modelyard server`` processes.

A correctness check, printed with the bench: two servers on two ports over the
same PostgreSQL database and the same blob folder; 8 client processes (4
through each server) each register a different model directory as a new
version of one model, all released at the same instant. Each round uses a new
model name; it passes when the versions handed out are exactly 1..8, each
process got a different one, each version holds the digest of the directory
that process registered, and there is no version 9. Also printed: how long
the 8 registrations took from the release to the last answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._servers import ServerProc, database, init_admin, start_modelyard
from bench._util import (
    RUNS,
    BenchError,
    Summary,
    print_table,
    project_env,
    project_python,
    run_python,
    write_results,
)

PROCESSES = 8
ROUNDS = int(os.environ.get("BENCH_CONCURRENCY_ROUNDS", str(RUNS)))

REGISTER = """
import json, sys, time
import modelyard
path, name, release = sys.argv[1], sys.argv[2], float(sys.argv[3])
modelyard.get_yard()  # connect before the release
time.sleep(max(0.0, release - time.time()))
start = time.time()
mv = modelyard.register_model(path, name)
print(json.dumps({"version": mv.version, "digest": mv.digest, "start": start,
                  "end": time.time()}))
"""

CHECK = """
import json, sys
import modelyard
name, n = sys.argv[1], int(sys.argv[2])
found = {v: modelyard.get_model_version(name, v).digest for v in range(1, n + 1)}
try:
    modelyard.get_model_version(name, n + 1)
    extra = True
except modelyard.ModelVersionNotFound:
    extra = False
print(json.dumps({"digests": found, "extra": extra}))
"""

MAKE = """
import sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
import modelyard
X, y = load_iris(return_X_y=True)
for i in range(int(sys.argv[2])):  # a different fit, so a different digest, each
    model = LogisticRegression(C=1.0 + i, max_iter=1000).fit(X, y)
    modelyard.save_model(model, f"{sys.argv[1]}/model-{i}")
print("{}")
"""


def _dirs(tmp: Path) -> list[Path]:
    run_python(project_python(), MAKE, str(tmp / "models"), str(PROCESSES))
    return [tmp / "models" / f"model-{i}" for i in range(PROCESSES)]


def _round(name: str, servers: list[ServerProc], token: str, dirs: list[Path], tmp: Path) -> dict:
    release = time.time() + 6.0
    procs = []
    for i, d in enumerate(dirs):
        env = project_env(
            MODELYARD_URI=servers[i % 2].url,
            MODELYARD_TOKEN=token,
            MODELYARD_CACHE=str(tmp / f"cache-{i}"),
        )
        procs.append(
            subprocess.Popen(
                [str(project_python()), "-c", REGISTER, str(d), name, str(release)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    answers: list[dict[str, Any]] = []
    for i, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            raise BenchError(f"process {i} failed:\n{out[-2000:]}\n{err[-4000:]}")
        answers.append({**json.loads(out.strip().splitlines()[-1]), "process": i})
    check = run_python(
        project_python(),
        CHECK,
        name,
        str(PROCESSES),
        env=project_env(MODELYARD_URI=servers[0].url, MODELYARD_TOKEN=token),
    )
    versions = sorted(a["version"] for a in answers)
    digests_ok = all(check["digests"][str(a["version"])] == a["digest"] for a in answers)
    ok = versions == list(range(1, PROCESSES + 1)) and digests_ok and not check["extra"]
    late = max(a["start"] for a in answers) - release
    return {
        "model": name,
        "versions": versions,
        "by_process": {a["process"]: a["version"] for a in answers},
        "digests_match": digests_ok,
        "version_9_exists": check["extra"],
        "ok": ok,
        "seconds": max(a["end"] for a in answers) - release,
        "latest_start_after_release_s": late,
    }


def main() -> None:
    """Two servers over one database and blob folder; ROUNDS rounds of 8 writers."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-conc-"))
    servers: list[ServerProc] = []
    rounds = []
    try:
        dirs = _dirs(tmp)
        with database("bench_srv_conc") as db:
            yard = f"{db}?blobs={tmp / 'blobs'}"
            token = init_admin(yard)
            servers = [
                start_modelyard(f"modelyard-{i}", yard, tmp / "logs", workers=1) for i in (0, 1)
            ]
            for r in range(ROUNDS):
                got = _round(f"shared-{r}", servers, token, dirs, tmp)
                rounds.append(got)
                print(
                    f"  round {r + 1}: versions {got['versions']} "
                    f"{'ok' if got['ok'] else 'WRONG'} in {got['seconds']:.2f} s "
                    f"(load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(
        f"{PROCESSES} processes registering one model through 2 servers (1 worker each), "
        f"one PostgreSQL database and blob folder",
        ["round", "versions", "one each", "digests match", "no version 9", "seconds"],
        [
            [
                i + 1,
                ",".join(map(str, g["versions"])),
                "yes" if len(set(g["versions"])) == PROCESSES else "NO",
                "yes" if g["digests_match"] else "NO",
                "yes" if not g["version_9_exists"] else "NO",
                f"{g['seconds']:.2f}",
            ]
            for i, g in enumerate(rounds)
        ],
    )
    ok = all(g["ok"] for g in rounds)
    secs = Summary.of([g["seconds"] for g in rounds])
    print(f"\nversions exactly 1..{PROCESSES} in every round: {'ok' if ok else 'WRONG'}")
    print(f"8 registrations, release to last answer: {secs.fmt(2)} s")
    write_results("server_concurrency", {"rounds": rounds, "ok": ok, "seconds": secs.__dict__})
    if not ok:
        raise BenchError("concurrent registration handed out wrong version numbers")


if __name__ == "__main__":
    main()
