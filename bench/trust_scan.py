"""The cost of the pickle trust scan on a cold load (issue 11 section 1, "Cost").

Every pickle modelyard loads is scanned first (:func:`modelyard.trust.scan.scan_bytes`)
and checked against the load's policy (``TrustPolicy.admit``) before it is unpickled.
Three models, saved by ``modelyard.save_model(..., sign=False)`` into a temporary folder
(deleted afterwards):

- ``iris``: ``LogisticRegression`` on iris (cloudpickle, as modelyard saves sklearn);
- ``forest``: a 100-tree ``RandomForestClassifier`` on iris;
- ``torch``: an ``nn.Sequential`` MLP with ~200 MB of float32 weights (three
  ``Linear(4096, 4096)``), ``torch.save`` with cloudpickle's pickler as modelyard saves it.

For each, alternating fresh processes (cold interpreter; the OS page cache is warm,
the warm-up round fills it), ``max(BENCH_RUNS, 7)`` timed rounds after the warm-up:

- (a) ``scanned``: ``modelyard.load_model(dir)`` + a one-row predict; the child also
  times the ``scan_bytes`` calls made inside that load (first calls in a cold process);
- (b) ``unscanned``: the plain deserializer on the same file (``pickle.load``, or
  ``torch.load(weights_only=False)``) + the same predict.

Each child times itself from before its first import to after the prediction (the
interpreter's start is left out; the parent's whole-process wall is reported too) and
prints the prediction, which must match the model's. Then, in this process, (c) the scan
alone on the same bytes (torch: ``data.pkl`` as torch's archive reader returns it):
``scan_bytes``, and ``scan_bytes`` + ``TrustPolicy().admit`` (the policy built as a load
builds it), at least 21 samples each, interleaved.

Targets (issue 11): scan + admit at most 5% of (a) for the forest and the torch model,
at most 10 ms on iris; figures are ratios of medians. The config home is an empty
temporary folder, so no trust file of this machine's changes the policy.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import statistics
import subprocess
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._util import (
    REPEATS,
    RUNS,
    WARMUP,
    BenchError,
    Summary,
    _progress,
    interleave,
    print_table,
    project_python,
    scratch_with_own_keys,
    verdict,
    write_results,
)

MODELS = ("iris", "forest", "torch")
RUNS_MIN = 7
REPEATS_MIN = 21
MIN_SAMPLE_S = 0.05
#: scan + admit as a share of (a), at most
TARGET_SHARE = {"forest": 0.05, "torch": 0.05}
#: scan + admit in ms, at most
TARGET_MS = {"iris": 10.0}

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROW = [[5.1, 3.5, 1.4, 0.2]]

# -- the children -------------------------------------------------------------------

# Shared head: the clock starts before the first import of the load.
_HEAD = """
import json, sys, time
t0 = time.perf_counter()
path = sys.argv[1]
"""

_SK_ROW = f"""
import pandas as pd
row = pd.DataFrame({ROW!r}, columns={IRIS_COLUMNS!r})
"""

_TORCH_ROW = f"""
import numpy as np
row = np.asarray({ROW!r}, dtype="float32")
"""

# The scan_bytes calls inside the load are timed through a wrapper; the patch is two
# attribute assignments, and the flavor modules are imported by the load anyway.
SCANNED = (
    _HEAD
    + """
scans = []
import modelyard
import modelyard.flavors._pickle as _flavor_pickle

def _timed(fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            scans.append(time.perf_counter() - start)
    return wrapper

_flavor_pickle.scan_bytes = _timed(_flavor_pickle.scan_bytes)
if sys.argv[2] == "torch":
    import modelyard.flavors.pytorch as _flavor_torch
    _flavor_torch.scan_bytes = _timed(_flavor_torch.scan_bytes)
{row}
model = modelyard.load_model(path)
pred = model.predict(row)
t1 = time.perf_counter()
print(json.dumps({{"t": t1 - t0, "scans": scans, "pred": [[float(v) for v in r] for r in
    (pred.reshape(len(pred), -1) if hasattr(pred, "reshape") else [[p] for p in pred])]}}))
"""
)

UNSCANNED_SK = (
    _HEAD
    + """
import pickle
{row}
with open(path + "/model.pkl", "rb") as fh:
    model = pickle.load(fh)
pred = model.predict(row)
t1 = time.perf_counter()
print(json.dumps({{"t": t1 - t0, "pred": [[float(p)] for p in pred]}}))
"""
)

UNSCANNED_TORCH = (
    _HEAD
    + """
import torch
{row}
model = torch.load(path + "/data/model.pth", map_location="cpu", weights_only=False)
model.eval()
with torch.no_grad():
    pred = model(torch.from_numpy(row)).numpy()
t1 = time.perf_counter()
print(json.dumps({{"t": t1 - t0, "pred": [[float(v) for v in r] for r in pred]}}))
"""
)


def _scripts(model: str) -> dict[str, str]:
    row = _TORCH_ROW if model == "torch" else _SK_ROW
    unscanned = UNSCANNED_TORCH if model == "torch" else UNSCANNED_SK
    return {"scanned": SCANNED.format(row=row), "unscanned": unscanned.format(row=row)}


# -- the models ---------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    """One saved model: its folder, the pickle bytes the scan reads, the expected answer."""

    name: str
    path: Path
    pickle_file: Path
    data: bytes
    expected: list[list[float]]
    file_bytes: int


def _save(model: Any, dest: Path) -> None:
    import modelyard

    if "sign" in inspect.signature(modelyard.save_model).parameters:
        modelyard.save_model(model, dest, sign=False)
    else:  # before signing existed: nothing to turn off
        modelyard.save_model(model, dest)


def make_models(tmp: Path) -> dict[str, Saved]:
    """Train and save the three models under ``tmp``."""
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from modelyard.flavors.pytorch import _archive_pickle

    x, y = load_iris(return_X_y=True, as_frame=True)
    row = pd.DataFrame(ROW, columns=IRIS_COLUMNS)
    out: dict[str, Saved] = {}
    for name, est in (
        ("iris", LogisticRegression(max_iter=1000, random_state=0)),
        ("forest", RandomForestClassifier(n_estimators=100, random_state=0)),
    ):
        est.fit(x, y)
        _save(est, tmp / name)
        file = tmp / name / "model.pkl"
        out[name] = Saved(
            name,
            tmp / name,
            file,
            file.read_bytes(),
            [[float(p)] for p in est.predict(row)],
            file.stat().st_size,
        )
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = [torch.nn.Linear(4, 4096), torch.nn.ReLU()]
    for _ in range(3):  # 3 x 64 MiB of float32 weights
        layers += [torch.nn.Linear(4096, 4096), torch.nn.ReLU()]
    mlp = torch.nn.Sequential(*layers, torch.nn.Linear(4096, 3)).eval()
    with torch.no_grad():
        expected = mlp(torch.from_numpy(np.asarray(ROW, dtype="float32"))).numpy()
    _save(mlp, tmp / "torch")
    pth = tmp / "torch" / "data" / "model.pth"
    out["torch"] = Saved(
        "torch",
        tmp / "torch",
        pth,
        _archive_pickle(pth),
        [[float(v) for v in r] for r in expected],
        pth.stat().st_size,
    )
    del mlp, layers
    return out


# -- (a) and (b): fresh processes ------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """One fresh process: its own load + predict time, whole-process wall, scans inside."""

    t: float
    wall: float
    scans: tuple[float, ...]


def _run_child(script: str, saved: Saved, env: dict[str, str]) -> Child:
    argv = [str(project_python()), "-c", textwrap.dedent(script), str(saved.path), saved.name]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=300)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(
            f"{saved.name}: child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    out = json.loads(lines[-1])
    if not _close(out["pred"], saved.expected):
        raise BenchError(f"{saved.name}: predicted {out['pred']}, expected {saved.expected}")
    return Child(out["t"], wall, tuple(out.get("scans", ())))


def _close(got: Sequence[Sequence[float]], want: Sequence[Sequence[float]]) -> bool:
    return len(got) == len(want) and all(
        len(g) == len(w)
        and all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(g, w, strict=True))
        for g, w in zip(got, want, strict=True)
    )


def time_children(
    saved: dict[str, Saved], env: dict[str, str], runs: int
) -> dict[str, dict[str, list[Child]]]:
    """Warm-up round(s), then ``runs`` rounds of every (model, variant), alternating."""
    scripts = {name: _scripts(name) for name in saved}
    out: dict[str, dict[str, list[Child]]] = {
        name: {variant: [] for variant in scripts[name]} for name in saved
    }
    total = WARMUP + runs
    for round_ in range(total):
        for name, s in saved.items():
            for variant, script in scripts[name].items():
                child = _run_child(script, s, env)
                if round_ >= WARMUP:
                    out[name][variant].append(child)
        _progress(f"round {round_ + 1}/{total}, load {os.getloadavg()[0]:.1f}")
    _progress("")
    return out


# -- (c): the scan in this process -------------------------------------------------------


def time_scans(saved: dict[str, Saved]) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of the scan, the scan + admit (and torch's extra archive read)."""
    from modelyard.flavors.pytorch import _archive_pickle
    from modelyard.trust.policy import TrustPolicy
    from modelyard.trust.scan import scan_bytes

    out = {}
    for name, s in saved.items():
        fns: dict[str, Callable[[], object]] = {
            "scan": functools.partial(scan_bytes, s.data, source=s.pickle_file),
            "scan+admit": functools.partial(_scan_admit, TrustPolicy, scan_bytes, s),
        }
        if name == "torch":
            fns["archive read"] = functools.partial(_archive_pickle, s.pickle_file)
        out[name] = interleave(fns, repeats=max(REPEATS_MIN, REPEATS), min_time=MIN_SAMPLE_S)
    return out


def _scan_admit(policy: Callable[[], Any], scan: Callable[..., Any], s: Saved) -> object:
    # as a load does it: the policy built for the load, then the scan judged by it
    return policy().admit(scan(s.data, source=s.pickle_file), s.pickle_file)


# -- main ------------------------------------------------------------------------------


def main() -> None:
    """Save the models, time (a), (b) and (c), print the tables, write the results."""
    runs = max(RUNS, RUNS_MIN)
    with scratch_with_own_keys("bench-trust-scan-") as (tmp, env):
        saved = make_models(tmp / "models")
        load_before = os.getloadavg()
        children = time_children(saved, env, runs)
        scans = time_scans(saved)
        load_after = os.getloadavg()
    report(saved, children, scans, runs, (load_before, load_after))


def _ms(values: Sequence[float]) -> str:
    return Summary.of(values).fmt(1, 1e3)


def report(
    saved: dict[str, Saved],
    children: dict[str, dict[str, list[Child]]],
    scans: dict[str, dict[str, list[float]]],
    runs: int,
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    """Print the tables and write ``bench/results/trust_scan.json``."""
    from modelyard.trust.scan import scan_bytes

    load_rows, scan_rows, data = [], [], {}
    for name, s in saved.items():
        a, b = children[name]["scanned"], children[name]["unscanned"]
        a_t, b_t = [c.t for c in a], [c.t for c in b]
        a_w, b_w = [c.wall for c in a], [c.wall for c in b]
        in_load = [sum(c.scans) for c in a]
        med_a, med_b = statistics.median(a_t), statistics.median(b_t)
        load_rows.append(
            [
                name,
                f"{s.file_bytes / 1e6:.1f}",
                _ms(a_t),
                _ms(b_t),
                f"{med_a / med_b:.3f}",
                f"{(med_a - med_b) * 1e3:+.1f}",
                f"{statistics.median(a_w) / statistics.median(b_w):.3f}",
            ]
        )
        c = scans[name]
        scan_med, total_med = statistics.median(c["scan"]), statistics.median(c["scan+admit"])
        opcodes = scan_bytes(s.data).opcodes
        share = total_med / med_a
        if name in TARGET_MS:
            target, ok = f"<= {TARGET_MS[name]:.0f} ms", verdict(total_med * 1e3, TARGET_MS[name])
        else:
            target, ok = f"<= {TARGET_SHARE[name]:.0%}", verdict(share, TARGET_SHARE[name])
        scan_rows.append(
            [
                name,
                f"{len(s.data) / 1e3:.1f}",
                f"{opcodes}",
                _ms(c["scan"]),
                _ms(c["scan+admit"]),
                _ms(in_load),
                f"{share:.2%}",
                f"{statistics.median(in_load) / med_a:.2%}",
                f"{len(s.data) / scan_med / 1e6:.1f}",
                f"{opcodes / scan_med / 1e6:.2f}",
                target,
                ok,
            ]
        )
        data[name] = {
            "file_bytes": s.file_bytes,
            "pickle_bytes": len(s.data),
            "opcodes": opcodes,
            "scanned": [asdict(x) for x in a],
            "unscanned": [asdict(x) for x in b],
            "scanned_t": asdict(Summary.of(a_t)),
            "unscanned_t": asdict(Summary.of(b_t)),
            "ratio_of_medians_t": med_a / med_b,
            "ratio_of_medians_wall": statistics.median(a_w) / statistics.median(b_w),
            "scan_in_load": asdict(Summary.of(in_load)),
            "in_process": {k: {"samples": v, **asdict(Summary.of(v))} for k, v in c.items()},
            "share_of_load": share,
            "share_of_load_in_situ": statistics.median(in_load) / med_a,
            "mb_per_s": len(s.data) / scan_med / 1e6,
            "opcodes_per_s": opcodes / scan_med,
            "target": target,
            "verdict": ok,
        }
        if "archive read" in c:
            data[name]["archive_read"] = asdict(Summary.of(c["archive read"]))
    print_table(
        f"Cold process (page cache warm), load_model + 1-row predict: (a) scanned vs (b) the "
        f"plain deserializer; {runs} rounds, ms median (min..max), timed inside the child",
        ["model", "file MB", "(a) scanned ms", "(b) unscanned ms", "a/b", "a-b ms", "a/b wall"],
        load_rows,
    )
    print_table(
        "The scan: (c) in this process (>= 21 samples), 'in load' = scan_bytes inside (a); "
        "share = (c) scan+admit / (a), ratio of medians",
        [
            "model",
            "pickle kB",
            "opcodes",
            "scan ms",
            "scan+admit ms",
            "in load ms",
            "share",
            "in-load share",
            "MB/s",
            "Mop/s",
            "target",
            "",
        ],
        scan_rows,
    )
    if "torch" in scans and "archive read" in scans["torch"]:
        print(
            f"\ntorch: reading data.pkl with torch's archive reader for the scan (an extra "
            f"open of the archive): {_ms(scans['torch']['archive read'])} ms"
        )
    write_results(
        "trust_scan",
        {"runs_min": runs, "loadavg_before_after": loads, "models": data},
    )


if __name__ == "__main__":
    main()
