"""Per-call cost of signature enforcement: ``Model.predict`` over the raw estimator.

The model is iris ``LogisticRegression(max_iter=1000, random_state=0)`` with a
4-column ``double`` signature, trained the same way in both environments:

- ours: saved and loaded with modelyard; ``raw`` is ``model.unwrap().predict``;
- MLflow's: saved with ``mlflow.sklearn.save_model`` (signature from
  ``infer_signature``), loaded with ``mlflow.pyfunc.load_model``; ``raw`` is
  the estimator from ``mlflow.sklearn.load_model``. It runs in MLflow's venv, in
  a worker process that this one drives line by line.

Input: float64 DataFrames of 1, 100 and 10,000 rows with the model's column
names (numpy seed 0, the same values on both sides). A sample calls raw and
wrapped predict back to back, alternately first, timing every call, for about
``BENCH_MIN_REPEAT_S``; it yields the median raw call, the median wrapped call
and the median of the paired differences (the overhead). Each repeat takes one
sample of every (side, size) in turn, so machine noise falls on all alike; the
table shows the median over repeats (and min..max of the overhead). Target
(issue 3): at 1 row, ours at most 1/5 of MLflow's overhead.

``enforce alone`` times ``enforce_input(df, schema)`` by itself: the part of
the overhead that is schema enforcement, without the noise of sklearn's predict;
on the same frame each call (as in the predict loops) and on a new frame each
call (a server's case: a new column Index, so no identity shortcut).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._util import (
    MIN_REPEAT_S,
    REPEATS,
    BenchError,
    Summary,
    mlflow_env,
    mlflow_python,
    mlflow_version,
    print_table,
    verdict,
    write_results,
)

SIZES = (1, 100, 10_000)
TARGET = 0.2  # ours / MLflow's overhead at 1 row
MIN_CALLS = 400  # per sample

# Model and data, identical in both interpreters.
COMMON = """
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
estimator = LogisticRegression(max_iter=1000, random_state=0).fit(X, y)
SIZES = (1, 100, 10_000)

def frames():
    rng = np.random.default_rng(0)
    return {
        n: pd.DataFrame(rng.normal(3.0, 1.5, (n, 4)), columns=list(X.columns)) for n in SIZES
    }
"""

# Call by call, raw and wrapped back to back (alternating which goes first),
# each call timed on its own: medians of single calls shrug off the bursts of a
# shared machine that would swamp a difference of a few microseconds.
PAIRED = """
import statistics, time

def paired(raw, wrapped, df, calls):
    clock = time.perf_counter
    t_raw, t_wrapped, diff = [], [], []
    for i in range(calls):
        if i % 2:
            a = clock(); raw(df); b = clock(); wrapped(df); c = clock()
            r, w = b - a, c - b
        else:
            a = clock(); wrapped(df); b = clock(); raw(df); c = clock()
            w, r = b - a, c - b
        t_raw.append(r)
        t_wrapped.append(w)
        diff.append(w - r)
    med = statistics.median
    return {"raw": med(t_raw), "wrapped": med(t_wrapped), "overhead": med(diff)}
"""

# Answers "sample <rows> <calls>" with the medians of one sample.
WORKER = (
    COMMON
    + PAIRED
    + """
import json, sys, tempfile, time, warnings
warnings.simplefilter("ignore")
import mlflow.pyfunc, mlflow.sklearn
from mlflow.models import infer_signature

path = tempfile.mkdtemp() + "/iris"
mlflow.sklearn.save_model(estimator, path, signature=infer_signature(X, estimator.predict(X)))
wrapped = mlflow.pyfunc.load_model(path)
raw = mlflow.sklearn.load_model(path)
data = frames()
fns = {"raw": raw.predict, "wrapped": wrapped.predict}
assert (wrapped.predict(data[100]) == raw.predict(data[100])).all()

print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    _, n, calls = line.split()
    print(json.dumps(paired(fns["raw"], fns["wrapped"], data[int(n)], int(calls))), flush=True)
"""
)


class _Side:
    """One implementation: ``sample(rows, calls)`` -> medians of single calls, in seconds."""

    def __init__(self, label: str, sample: Callable[[int, int], dict[str, float]]) -> None:
        self.label = label
        self.sample = sample
        self.calls: dict[int, int] = {}

    def calibrate(self, size: int) -> None:
        """Calls per sample so that one sample lasts about ``BENCH_MIN_REPEAT_S``."""
        got = self.sample(size, 5)
        per_pair = got["raw"] + got["wrapped"]
        # Enough single calls for a stable median even when one sample is short.
        self.calls[size] = max(MIN_CALLS, int(MIN_REPEAT_S / max(per_pair, 1e-9)))


def _ours(tmp: Path) -> tuple[_Side, dict[int, Any], Any]:
    import warnings

    import modelyard

    scope: dict[str, Any] = {}
    exec(COMMON + PAIRED, scope)
    X, estimator = scope["X"], scope["estimator"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        modelyard.save_model(estimator, tmp / "iris", input_example=X.head(5))
    model = modelyard.load_model(tmp / "iris")
    raw = model.unwrap()
    data = scope["frames"]()
    if not (model.predict(data[100]) == raw.predict(data[100])).all():
        raise BenchError("modelyard's predictions differ from the estimator's")
    paired = scope["paired"]

    def sample(size: int, calls: int) -> dict[str, float]:
        result: dict[str, float] = paired(raw.predict, model.predict, data[size], calls)
        return result

    return _Side("modelyard", sample), data, model


def _mlflow() -> tuple[_Side, subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [str(mlflow_python()), "-c", WORKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mlflow_env(),
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    if not stdout.readline().strip():
        raise BenchError(f"MLflow worker failed to start:\n{proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]

    def sample(size: int, calls: int) -> dict[str, float]:
        stdin.write(f"sample {size} {calls}\n")
        stdin.flush()
        line = stdout.readline()
        if not line:
            raise BenchError(f"MLflow worker died:\n{proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
        result: dict[str, float] = json.loads(line)
        return result

    return _Side("mlflow", sample), proc


def _enforce_alone(data: dict[int, Any], model: Any) -> dict[str, dict[int, float]]:
    """Seconds per ``enforce_input`` call (median of repeats), on the same frame each
    call and on a new frame each call (what a server sees: a new column Index every time).
    """
    import pandas as pd

    from modelyard import enforce_input

    schema = model.input_schema
    out: dict[str, dict[int, float]] = {"same frame": {}, "new frame": {}}
    for size, df in data.items():
        fresh = [pd.DataFrame(df.to_numpy(), columns=list(df.columns)) for _ in range(2_000)]
        for label, frames in (("same frame", [df] * len(fresh)), ("new frame", fresh)):
            if any(enforce_input(f, schema) is not f for f in frames[:3]):
                raise BenchError("the bench's frames should take the fast path")
            per_call = []
            for _ in range(7):
                start = time.perf_counter()
                for f in frames:
                    enforce_input(f, schema)
                per_call.append((time.perf_counter() - start) / len(frames))
            out[label][size] = statistics.median(per_call)
    return out


def main() -> None:
    """Measure both sides, interleaved; print the table and the ratio to MLflow's overhead."""
    with tempfile.TemporaryDirectory() as tmp:
        ours, data, model = _ours(Path(tmp))
        theirs, proc = _mlflow()
        try:
            sides = (ours, theirs)
            for side in sides:
                for size in SIZES:
                    side.calibrate(size)
            samples: dict[tuple[str, int], list[dict[str, float]]] = {
                (s.label, n): [] for s in sides for n in SIZES
            }
            for rep in range(REPEATS):
                for size in SIZES:
                    for side in sides if rep % 2 == 0 else sides[::-1]:
                        got = side.sample(size, side.calls[size])
                        samples[side.label, size].append(got)
                _progress(f"repeat {rep + 1}/{REPEATS}")
            _progress("")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        alone = _enforce_alone(data, model)

    us = 1e6
    rows, figures = [], {}
    for size in SIZES:
        row: list[str] = [f"{size:,}"]
        entry: dict[str, Any] = {}
        for side in (ours, theirs):
            got = samples[side.label, size]
            raw = Summary.of([g["raw"] for g in got])
            wrapped = Summary.of([g["wrapped"] for g in got])
            over = Summary.of([g["overhead"] for g in got])
            row += [f"{raw.median * us:.1f}", f"{wrapped.median * us:.1f}", over.fmt(1, us)]
            entry[side.label] = {
                "raw_s": raw.median,
                "wrapped_s": wrapped.median,
                "overhead_s": over.median,
                "overhead_min_s": over.min,
                "overhead_max_s": over.max,
                "samples": got,
            }
        ratio = entry["modelyard"]["overhead_s"] / entry["mlflow"]["overhead_s"]
        entry["ratio"] = ratio
        entry["enforce_alone_s"] = {k: v[size] for k, v in alone.items()}
        same, new = alone["same frame"][size], alone["new frame"][size]
        row += [f"{same * us:.1f} / {new * us:.1f}", f"{ratio:.3f}"]
        rows.append(row)
        figures[str(size)] = entry
    print_table(
        f"Predict overhead over the raw estimator, us per call, median of {REPEATS} repeats "
        f"(overhead: median (min..max) over repeats); MLflow {mlflow_version()}",
        [
            "rows",
            "ours raw",
            "ours predict",
            "ours overhead",
            "mlflow raw",
            "mlflow predict",
            "mlflow overhead",
            "ours enforce alone (same / new frame)",
            "ours/mlflow overhead",
        ],
        rows,
    )
    one = figures["1"]["ratio"]
    print(
        f"\nat 1 row: ours/MLflow overhead = {one:.3f} (target <= {TARGET}): {verdict(one, TARGET)}"
    )
    write_results(
        "schema_overhead",
        {
            "model": "iris LogisticRegression(max_iter=1000, random_state=0), 4 double columns",
            "sizes": figures,
            "target": {"overhead ratio at 1 row": TARGET, "met": one <= TARGET},
        },
    )


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\033[K{text}")
        sys.stderr.flush()


if __name__ == "__main__":
    main()
