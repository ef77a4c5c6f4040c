"""Loading registered models by alias: first and second ``load_model``, and a cold process.

The same two scikit-learn models are trained, logged and registered with
``@champion`` on both sides, cloudpickle format (MLflow's pre-skops default and
modelyard's): ``iris`` (LogisticRegression) and ``forest`` (RandomForest, 100
trees on 2000 x 20). modelyard uses an embedded yard; MLflow a SQLite tracking
store with local artifacts.

1. In fresh processes, alternating: the first ``load_model("models:/<m>@champion")``
   (modelyard with its cache emptied before each process, and again with the
   cache warm), then 20 more loads of the same URI (median = "second load").
2. Whole processes (``bench._util.time_commands``): import, load
   ``models:/iris@champion``, predict one row; vs MLflow doing the same from its
   store, and vs the floor (import sklearn + pandas, unpickle, predict).

Targets (issue 4): second load of ``forest`` at least 5x faster than MLflow's;
first load no slower than MLflow's; the cold process at most 1.25x the floor and
at most 0.5x MLflow.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._util import (
    RUNS,
    RUNS_HEADERS,
    Command,
    Summary,
    mlflow_env,
    mlflow_python,
    paired_ratios,
    print_table,
    project_env,
    project_python,
    ratios,
    run_mlflow,
    run_python,
    runs_json,
    runs_row,
    time_commands,
    verdict,
    write_results,
)

MODELS = ("iris", "forest")
LOADS = int(os.environ.get("BENCH_LOADS", "20"))
TARGET_SECOND = 5.0  # MLflow's second load / ours, at least
TARGET_FLOOR = 1.25
TARGET_MLFLOW = 0.5
EXPECT = "[0]"

TRAIN = """
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
import pandas as pd

def train():
    X, y = load_iris(return_X_y=True, as_frame=True)
    iris = LogisticRegression(max_iter=1000, random_state=0).fit(X, y)
    Xf, yf = make_classification(n_samples=2000, n_features=20, random_state=0)
    Xf = pd.DataFrame(Xf, columns=[f"f{i}" for i in range(20)])
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(Xf, yf)
    return {"iris": (iris, X.head(3)), "forest": (forest, Xf.head(3))}
"""

OURS_LOG = (
    TRAIN
    + """
import sys
import modelyard
modelyard.set_yard(sys.argv[1])
for name, (model, example) in train().items():
    info = modelyard.log_model(model, "model", registered_model_name=name, input_example=example)
    modelyard.set_alias(name, "champion", info.registered_version.version)
print("{}")
"""
)

MLFLOW_LOG = (
    TRAIN
    + """
import json, sys
import mlflow, mlflow.sklearn
from mlflow import MlflowClient
root = sys.argv[1]
mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
mlflow.set_experiment("bench")
exp = mlflow.get_experiment_by_name("bench")
for name, (model, example) in train().items():
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", serialization_format="cloudpickle",
            registered_model_name=name, input_example=example,
        )
    MlflowClient().set_registered_model_alias(name, "champion", "1")
print(json.dumps({"artifacts": exp.artifact_location}))
"""
)

# First load in a fresh process, then LOADS more loads of the same URI.
OURS_LOADS = """
import json, sys, time
import modelyard
uri, loads = sys.argv[1], int(sys.argv[2])
t = time.perf_counter(); modelyard.load_model(uri); first = time.perf_counter() - t
later = []
for _ in range(loads):
    t = time.perf_counter(); m = modelyard.load_model(uri); later.append(time.perf_counter() - t)
assert m.version == 1 and m.alias == "champion"
print(json.dumps({"first": first, "later": later}))
"""

MLFLOW_LOADS = """
import json, sys, time
import mlflow, mlflow.pyfunc
uri, loads, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
t = time.perf_counter(); mlflow.pyfunc.load_model(uri); first = time.perf_counter() - t
later = []
for _ in range(loads):
    t = time.perf_counter(); mlflow.pyfunc.load_model(uri); later.append(time.perf_counter() - t)
print(json.dumps({"first": first, "later": later}))
"""

_ROW = (
    "import pandas as pd\n"
    "row = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=['sepal length (cm)', "
    "'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'])\n"
)
FLOOR = (
    "import pickle, sys\nimport sklearn\n"
    + _ROW
    + "with open(sys.argv[1], 'rb') as fh:\n    model = pickle.load(fh)\n"
    "print(model.predict(row).tolist())\n"
)
OURS_COLD = (
    "import modelyard\n" + _ROW + "model = modelyard.load_model('models:/iris@champion')\n"
    "print(model.predict(row).tolist())\n"
)
MLFLOW_COLD = (
    "import mlflow.pyfunc\n" + _ROW + "model = mlflow.pyfunc.load_model('models:/iris@champion')\n"
    "print(model.predict(row).tolist())\n"
)


def _setup(tmp: Path) -> tuple[Path, Path]:
    ours, theirs = tmp / "ours", tmp / "mlflow"
    theirs.mkdir()
    run_python(project_python(), OURS_LOG, str(ours), env=project_env())
    run_mlflow(MLFLOW_LOG, str(theirs), cwd=theirs)
    return ours, theirs


def _loads(ours: Path, theirs: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per model and side: one {"first", "later"} record per fresh process."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name in MODELS:
        uri = f"models:/{name}@champion"
        sides: dict[str, list[dict[str, Any]]] = {"cold cache": [], "warm cache": [], "mlflow": []}
        env = project_env(MODELYARD_URI=str(ours))
        for _ in range(RUNS):
            shutil.rmtree(ours / "cache", ignore_errors=True)
            sides["cold cache"].append(
                run_python(project_python(), OURS_LOADS, uri, str(LOADS), env=env)
            )
            sides["warm cache"].append(
                run_python(project_python(), OURS_LOADS, uri, str(LOADS), env=env)
            )
            sides["mlflow"].append(
                run_mlflow(MLFLOW_LOADS, uri, str(LOADS), str(theirs), cwd=theirs)
            )
        out[name] = sides
    return out


def _cold_commands(ours: Path, theirs: Path) -> list[Command]:
    # The floor unpickles the very file modelyard loads (and this load warms the cache).
    where = run_python(
        project_python(),
        "import json, modelyard\n"
        "print(json.dumps(str(modelyard.load_model('models:/iris@champion').path)))",
        env=project_env(MODELYARD_URI=str(ours)),
    )
    pickled = Path(where) / "model.pkl"
    py, mlpy = str(project_python()), str(mlflow_python())
    return [
        Command("floor", (py, "-c", FLOOR, str(pickled)), expect=EXPECT),
        Command(
            "modelyard",
            (py, "-c", OURS_COLD),
            env=project_env(MODELYARD_URI=str(ours)),
            expect=EXPECT,
        ),
        Command(
            "mlflow",
            (mlpy, "-c", MLFLOW_COLD),
            env=mlflow_env(MLFLOW_TRACKING_URI=f"sqlite:///{theirs}/mlflow.db"),
            cwd=theirs,
            expect=EXPECT,
        ),
    ]


def main() -> None:
    """Set up both registries, time the loads and the cold processes, print the verdicts."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-yard-load-"))
    results: dict[str, Any] = {"loads_per_process": LOADS, "format": "cloudpickle"}
    try:
        ours, theirs = _setup(tmp)
        loads = _loads(ours, theirs)
        cold = time_commands(_cold_commands(ours, theirs))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows, verdicts = [], []
    for name, sides in loads.items():
        firsts = {side: [r["first"] for r in recs] for side, recs in sides.items()}
        seconds = {
            side: [statistics.median(r["later"]) for r in recs] for side, recs in sides.items()
        }
        for side in sides:
            rows.append(
                [
                    name,
                    "modelyard, " + side if side != "mlflow" else "mlflow",
                    Summary.of(firsts[side]).fmt(1, 1000),
                    Summary.of(seconds[side]).fmt(2, 1000),
                ]
            )
        speedup = Summary.of(ratios(seconds["mlflow"], seconds["warm cache"]))
        first_ratio = Summary.of(ratios(firsts["cold cache"], firsts["mlflow"]))
        results[name] = {
            "first_ms": {s: asdict(Summary.of([v * 1000 for v in f])) for s, f in firsts.items()},
            "second_ms": {s: asdict(Summary.of([v * 1000 for v in f])) for s, f in seconds.items()},
            "second_speedup_mlflow_over_ours": asdict(speedup),
            "first_ratio_ours_cold_over_mlflow": asdict(first_ratio),
        }
        if name == "forest":
            verdicts.append(
                [
                    "forest: second load, MLflow / modelyard",
                    speedup.fmt(1),
                    f">= {TARGET_SECOND}",
                    "ok" if speedup.median >= TARGET_SECOND else "MISSED",
                ]
            )
        verdicts.append(
            [
                f"{name}: first load (cold cache), modelyard / MLflow",
                first_ratio.fmt(2),
                "<= 1",
                verdict(first_ratio.median, 1.0),
            ]
        )
    print_table(
        f"load_model('models:/<m>@champion'): first call in a fresh process, then the median of "
        f"{LOADS} more (ms; median (min..max) over {RUNS} processes)",
        ["model", "side", "first load ms", "second load ms"],
        rows,
    )
    print_table(
        "Cold process: import, load models:/iris@champion, predict one row",
        RUNS_HEADERS,
        [runs_row(label, r) for label, r in cold.items()],
    )
    vs_floor = paired_ratios(cold["modelyard"], cold["floor"])
    vs_mlflow = paired_ratios(cold["modelyard"], cold["mlflow"])
    verdicts += [
        [
            "cold process, modelyard / floor",
            vs_floor.fmt(2),
            f"<= {TARGET_FLOOR}",
            verdict(vs_floor.median, TARGET_FLOOR),
        ],
        [
            "cold process, modelyard / MLflow",
            vs_mlflow.fmt(2),
            f"<= {TARGET_MLFLOW}",
            verdict(vs_mlflow.median, TARGET_MLFLOW),
        ],
    ]
    print_table(
        "Targets (ratios: median of pairs (min..max))", ["figure", "ratio", "target", ""], verdicts
    )
    results["cold_process"] = {
        "commands": {label: runs_json(r) for label, r in cold.items()},
        "modelyard/floor": asdict(vs_floor),
        "modelyard/mlflow": asdict(vs_mlflow),
    }
    results["verdicts"] = [
        dict(zip(("figure", "ratio", "target", "verdict"), v, strict=True)) for v in verdicts
    ]
    write_results("yard_load", results)
    print(json.dumps({v[0]: v[3] for v in verdicts}, indent=1))


if __name__ == "__main__":
    main()
