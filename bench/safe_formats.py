"""Safe formats vs pickle: save and cold-load time, side by side (trust issue, section 3).

Does saving in a non-executable format cost anything? Four models, two formats each:

- ``mlp``: a small torch MLP (``bench._safe_nets.SmallMLP``, 4 -> 64 -> 3);
- ``big``: a ~200 MB torch MLP (``bench._safe_nets.BigMLP``: ``Linear(4, 4096)``,
  3 x ``Linear(4096, 4096)``, ``Linear(4096, 3)``, 201.5 MB of float32 weights);
  torch formats: ``pickle`` (modelyard's default, MLflow's layout: the whole module by
  ``torch.save``; loaded by ``torch.load(weights_only=True)`` behind the scan, or the
  restricted unpickler for a signed model whose class is not on the allow-list) vs
  ``safetensors`` (the weights, and the class by reference, inferred by
  ``save_model(net, path, serialization_format="safetensors")``);
- ``iris``: ``LogisticRegression`` on iris; ``forest``: a 100-tree
  ``RandomForestClassifier`` on iris; sklearn formats: ``pickle`` (modelyard's default
  stream, cloudpickle, scanned and admitted by the trust policy before it is unpickled)
  vs ``skops`` (``skops.io`` with the trusted types taken from modelyard's policy, and
  the trees checked node by node).

The classes are importable user classes, not on the allow-list, so every model is
saved signed with the bench's own key (the default, ``sign=None``, in an empty
temporary config home) and both formats load because that key vouches for them.

Fresh processes, ``BENCH_WARMUP`` round(s) then ``max(BENCH_RUNS, 5)`` timed rounds,
the variants alternating in each round:

- save: the child builds (torch, seeded) or fits (sklearn) the model, untimed, then
  times ``modelyard.save_model(model, fresh_dir, ...)`` (signing included, lazy
  imports of the serializer included: the first save of a process);
- load: the child times from before ``import modelyard`` to after
  ``modelyard.load_model(dir)`` and a one-row predict, which must match the model's.

The page cache is warm (the warm-up round reads every file). Reported: medians (min..max)
and, for the safe format over pickle, the ratio of the medians and the median of the
per-round ratios. "As fast" means a ratio of medians of at most ``AS_FAST`` (1.05).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._util import (
    ROOT,
    RUNS,
    WARMUP,
    BenchError,
    Summary,
    _progress,
    print_table,
    project_python,
    ratios,
    scratch_with_own_keys,
    write_results,
)

MODELS = ("mlp", "big", "iris", "forest")
FORMATS = {
    "mlp": ("pickle", "safetensors"),
    "big": ("pickle", "safetensors"),
    "iris": ("pickle", "skops"),
    "forest": ("pickle", "skops"),
}
RUNS_MIN = 5
#: a safe format is "as fast" when its median is at most this times pickle's
AS_FAST = 1.05

IRIS_COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROW = [[5.1, 3.5, 1.4, 0.2]]

# -- the children ---------------------------------------------------------------------

# argv: root, kind, format, directory. The model is built exactly as in make_model below.
_BUILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
kind, fmt, path = sys.argv[2], sys.argv[3], sys.argv[4]
if kind in ("mlp", "big"):
    import torch
    from bench._safe_nets import BigMLP, SmallMLP
    torch.manual_seed(0)
    model = (SmallMLP() if kind == "mlp" else BigMLP()).eval()
else:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    x, y = load_iris(return_X_y=True, as_frame=True)
    if kind == "iris":
        model = LogisticRegression(max_iter=1000, random_state=0).fit(x, y)
    else:
        model = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
"""

SAVE = (
    _BUILD
    + """
import modelyard
options = {} if fmt == "pickle" else {"serialization_format": fmt}
t0 = time.perf_counter()
modelyard.save_model(model, path, **options)
t1 = time.perf_counter()
print(json.dumps({"t": t1 - t0}))
"""
)

# The clock starts before the first import of the load.
LOAD = f"""
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
kind, path = sys.argv[2], sys.argv[4]
import modelyard
if kind in ("mlp", "big"):
    import numpy as np
    row = np.asarray({ROW!r}, dtype="float32")
else:
    import pandas as pd
    row = pd.DataFrame({ROW!r}, columns={IRIS_COLUMNS!r})
model = modelyard.load_model(path)
pred = model.predict(row)
t1 = time.perf_counter()
print(json.dumps({{"t": t1 - t0, "pred": [[float(v) for v in r] for r in
    (pred.reshape(len(pred), -1) if hasattr(pred, "reshape") else [[p] for p in pred])]}}))
"""


@dataclass(frozen=True)
class Child:
    """One fresh process: the time it measured itself and its whole-process wall."""

    t: float
    wall: float


def _run(script: str, kind: str, fmt: str, path: Path, env: dict[str, str]) -> dict[str, Any]:
    argv = [str(project_python()), "-c", textwrap.dedent(script), str(ROOT), kind, fmt, str(path)]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(
            f"{kind}/{fmt}: child failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    out: dict[str, Any] = json.loads(lines[-1])
    out["wall"] = wall
    return out


def _close(got: Sequence[Sequence[float]], want: Sequence[Sequence[float]]) -> bool:
    return len(got) == len(want) and all(
        len(g) == len(w)
        and all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(g, w, strict=True))
        for g, w in zip(got, want, strict=True)
    )


# -- the models -------------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    """One saved model: its folder, its format as MLmodel says, bytes on disk, the answer."""

    kind: str
    fmt: str
    path: Path
    recorded: str
    files: tuple[str, ...]
    size: int
    expected: list[list[float]]


def make_model(kind: str) -> Any:
    """The model the children build (same seeds, same data)."""
    if kind in ("mlp", "big"):
        import torch

        from bench._safe_nets import BigMLP, SmallMLP

        torch.manual_seed(0)
        return (SmallMLP() if kind == "mlp" else BigMLP()).eval()
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    if kind == "iris":
        return LogisticRegression(max_iter=1000, random_state=0).fit(x, y)
    return RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)


def _expected(kind: str, model: Any) -> list[list[float]]:
    import numpy as np

    if kind in ("mlp", "big"):
        import torch

        with torch.no_grad():
            out = model(torch.from_numpy(np.asarray(ROW, dtype="float32"))).numpy()
        return [[float(v) for v in r] for r in out]
    import pandas as pd

    return [[float(p)] for p in model.predict(pd.DataFrame(ROW, columns=IRIS_COLUMNS))]


def make_models(tmp: Path) -> dict[tuple[str, str], Saved]:
    """Save every (model, format) once under ``tmp``, as the children save them."""
    import modelyard
    from modelyard.format.mlmodel import MLmodel

    out = {}
    for kind in MODELS:
        model = make_model(kind)
        expected = _expected(kind, model)
        for fmt in FORMATS[kind]:
            path = tmp / f"{kind}-{fmt}"
            options = {} if fmt == "pickle" else {"serialization_format": fmt}
            modelyard.save_model(model, path, **options)
            mlmodel = MLmodel.read(path)
            conf = mlmodel.flavors.get("pytorch") or mlmodel.flavors.get("sklearn") or {}
            recorded = str(conf.get("serialization_format") or "pickle")
            if (fmt == "pickle") != (recorded in ("pickle", "cloudpickle")):
                raise BenchError(f"{kind}: asked for {fmt}, MLmodel says {recorded}")
            files = tuple(
                sorted(
                    p.relative_to(path).as_posix()
                    for p in path.rglob("*")
                    if p.is_file() and p.name.startswith("model")
                )
            )
            size = sum((path / f).stat().st_size for f in files)
            out[kind, fmt] = Saved(kind, fmt, path, recorded, files, size, expected)
        del model
    return out


# -- timing -------------------------------------------------------------------------------


def time_children(
    saved: dict[tuple[str, str], Saved], tmp: Path, env: dict[str, str], runs: int
) -> dict[tuple[str, str, str], list[Child]]:
    """Warm-up round(s), then ``runs`` rounds: per model, load and save of each format."""
    out: dict[tuple[str, str, str], list[Child]] = {
        (k, f, op): [] for (k, f) in saved for op in ("load", "save")
    }
    total = WARMUP + runs
    for round_ in range(total):
        for kind in MODELS:
            for op in ("load", "save"):
                for fmt in FORMATS[kind]:
                    s = saved[kind, fmt]
                    if op == "load":
                        got = _run(LOAD, kind, fmt, s.path, env)
                        if not _close(got["pred"], s.expected):
                            raise BenchError(
                                f"{kind}/{fmt}: predicted {got['pred']}, expected {s.expected}"
                            )
                    else:
                        dest = tmp / f"save-{kind}-{fmt}"
                        got = _run(SAVE, kind, fmt, dest, env)
                        shutil.rmtree(dest)
                    if round_ >= WARMUP:
                        out[kind, fmt, op].append(Child(got["t"], got["wall"]))
        _progress(f"round {round_ + 1}/{total}, load {os.getloadavg()[0]:.1f}")
    _progress("")
    return out


# -- main ---------------------------------------------------------------------------------


def main() -> None:
    """Save the models, time the children, print the tables, write the results."""
    runs = max(RUNS, RUNS_MIN)
    with scratch_with_own_keys("bench-safe-formats-") as (tmp, env):
        saved = make_models(tmp / "models")
        load_before = os.getloadavg()
        children = time_children(saved, tmp, env, runs)
        load_after = os.getloadavg()
    report(saved, children, runs, (load_before, load_after))


def _ms(values: Sequence[float]) -> str:
    return Summary.of(values).fmt(0, 1e3)


def report(
    saved: dict[tuple[str, str], Saved],
    children: dict[tuple[str, str, str], list[Child]],
    runs: int,
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    """Print the tables and write ``bench/results/safe_formats.json``."""
    rows, ratio_rows, data = [], [], {}
    for kind in MODELS:
        base, safe = FORMATS[kind]
        for fmt in (base, safe):
            s = saved[kind, fmt]
            save_t = [c.t for c in children[kind, fmt, "save"]]
            load_t = [c.t for c in children[kind, fmt, "load"]]
            load_w = [c.wall for c in children[kind, fmt, "load"]]
            rows.append(
                [
                    kind,
                    f"{fmt} ({s.recorded})" if s.recorded != fmt else fmt,
                    ", ".join(s.files),
                    f"{s.size / 1e6:.3f}" if s.size < 1e6 else f"{s.size / 1e6:.1f}",
                    _ms(save_t),
                    _ms(load_t),
                    Summary.of(load_w).fmt(2),
                ]
            )
            data[f"{kind}/{fmt}"] = {
                "recorded_format": s.recorded,
                "files": list(s.files),
                "bytes": s.size,
                "save": [asdict(c) for c in children[kind, fmt, "save"]],
                "load": [asdict(c) for c in children[kind, fmt, "load"]],
                "save_t": asdict(Summary.of(save_t)),
                "load_t": asdict(Summary.of(load_t)),
                "load_wall": asdict(Summary.of(load_w)),
            }
        entry: dict[str, Any] = {}
        cells = [kind, f"{safe} / {base}"]
        for op in ("save", "load"):
            a = [c.t for c in children[kind, safe, op]]
            b = [c.t for c in children[kind, base, op]]
            of_medians = statistics.median(a) / statistics.median(b)
            pairs = Summary.of(ratios(a, b))
            cells += [f"{of_medians:.2f}", pairs.fmt(2)]
            entry[op] = {"ratio_of_medians": of_medians, "paired": asdict(pairs)}
        load_ratio = entry["load"]["ratio_of_medians"]
        entry["as_fast"] = load_ratio <= AS_FAST
        cells.append("as fast" if entry["as_fast"] else "slower")
        ratio_rows.append(cells)
        data[f"{kind}/{safe}_over_{base}"] = entry
    print_table(
        f"Fresh processes, page cache warm; {runs} rounds; ms median (min..max). save: "
        "save_model alone (signed); load: import + load_model + 1-row predict",
        ["model", "format", "files", "MB", "save ms", "load ms", "load, whole process s"],
        rows,
    )
    print_table(
        f"Safe format / pickle: ratio of medians, and median (min..max) of the per-round "
        f"ratios; 'as fast' = load ratio of medians <= {AS_FAST}",
        ["model", "ratio", "save", "save, pairs", "load", "load, pairs", "load"],
        ratio_rows,
    )
    write_results(
        "safe_formats",
        {"runs_min": runs, "as_fast": AS_FAST, "loadavg_before_after": loads, "models": data},
    )


if __name__ == "__main__":
    main()
