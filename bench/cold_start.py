"""Cold process: import, load an MLflow-saved sklearn directory, predict one row.

Three whole processes per serialization format, timed alternately:

- ``floor``: imports sklearn and pandas, deserialises the model file directly
  and predicts (what any loader must at least pay);
- ``modelyard``: ``modelyard.load_model(dir).predict(row)`` in the project's venv;
- ``mlflow``: ``mlflow.pyfunc.load_model(dir).predict(row)`` in MLflow's venv.

The model (iris ``LogisticRegression``, with signature and input example) is
saved by MLflow itself with ``mlflow.sklearn.save_model(...,
serialization_format=fmt)``. Targets (issue 2) apply to the pickle format:
modelyard at most 1.15x the floor (about 0.6x MLflow). The skops and
cloudpickle variants are reported for information.
"""

from __future__ import annotations

from dataclasses import asdict

from bench._util import (
    RUNS_HEADERS,
    Command,
    mlflow_env,
    mlflow_fixture,
    mlflow_python,
    paired_ratios,
    print_table,
    project_python,
    runs_json,
    runs_row,
    time_commands,
    verdict,
    write_results,
)

FORMATS = ("pickle", "cloudpickle", "skops")
TARGET_FLOOR = 1.15
RATIOS = {
    "modelyard/floor": ("modelyard", "floor"),
    "modelyard/mlflow": ("modelyard", "mlflow"),
    "mlflow/floor": ("mlflow", "floor"),
}

MAKE_MODELS = """
    import sys
    from pathlib import Path

    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    out = Path(sys.argv[1])
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=1000, random_state=0).fit(X, y)
    signature = infer_signature(X, model.predict(X))
    for fmt in ("pickle", "cloudpickle", "skops"):
        mlflow.sklearn.save_model(
            model,
            out / f"iris-{fmt}",
            serialization_format=fmt,
            signature=signature,
            input_example=X.head(3),
        )
    print("{}")
"""

# One row, the iris columns by name; class 0 is the answer every command must print.
_ROW = """
import pandas as pd
row = pd.DataFrame(
    [[5.1, 3.5, 1.4, 0.2]],
    columns=["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
)
"""
EXPECT = "[0]"

FLOOR = {
    "pickle": """
import pickle, sys
import sklearn
{row}
with open(sys.argv[1] + "/model.pkl", "rb") as fh:
    model = pickle.load(fh)
print(model.predict(row).tolist())
""",
    "skops": """
import sys
import sklearn
import skops.io
{row}
file = sys.argv[1] + "/model.skops"
model = skops.io.load(file, trusted=skops.io.get_untrusted_types(file=file))
print(model.predict(row).tolist())
""",
}
FLOOR["cloudpickle"] = FLOOR["pickle"]  # a cloudpickled estimator unpickles with pickle

MODELYARD = """
import sys
import modelyard
{row}
model = modelyard.load_model(sys.argv[1])
print(model.predict(row).tolist())
"""

MLFLOW = """
import sys
import mlflow.pyfunc
{row}
model = mlflow.pyfunc.load_model(sys.argv[1])
print(model.predict(row).tolist())
"""


def commands(fmt: str) -> list[Command]:
    """The floor, modelyard and MLflow commands for one serialization format."""
    model_dir = str(mlflow_fixture("cold-start-iris", MAKE_MODELS) / f"iris-{fmt}")
    ours, theirs = str(project_python()), str(mlflow_python())
    return [
        Command("floor", (ours, "-c", FLOOR[fmt].format(row=_ROW), model_dir), expect=EXPECT),
        Command("modelyard", (ours, "-c", MODELYARD.format(row=_ROW), model_dir), expect=EXPECT),
        Command(
            "mlflow",
            (theirs, "-c", MLFLOW.format(row=_ROW), model_dir),
            env=mlflow_env(),
            expect=EXPECT,
        ),
    ]


def main() -> None:
    """Time the three cold processes for each format and print the paired ratios."""
    results = {}
    ratio_rows = []
    for fmt in FORMATS:
        runs = time_commands(commands(fmt))
        print_table(
            f"Cold start, {fmt} format: import + load + predict one row",
            RUNS_HEADERS,
            [runs_row(label, r) for label, r in runs.items()],
        )
        pairs = {
            name: (paired_ratios(runs[a], runs[b]), paired_ratios(runs[a], runs[b], "cpu"))
            for name, (a, b) in RATIOS.items()
        }
        targets = {"modelyard/floor": TARGET_FLOOR} if fmt == "pickle" else {}
        for name, (wall, cpu) in pairs.items():
            target = targets.get(name)
            ratio_rows.append(
                [
                    fmt,
                    name,
                    wall.fmt(2),
                    cpu.fmt(2),
                    f"<= {target}" if target else "",
                    verdict(wall.median, target) if target else "",
                ]
            )
        results[fmt] = {
            "commands": {label: runs_json(r) for label, r in runs.items()},
            "ratios": {name: asdict(wall) for name, (wall, _) in pairs.items()},
            "cpu_ratios": {name: asdict(cpu) for name, (_, cpu) in pairs.items()},
        }
    print_table(
        "Paired ratios, median of pairs (min..max); the target is on wall time",
        ["format", "A / B", "wall", "cpu", "target", ""],
        ratio_rows,
    )
    met = results["pickle"]["ratios"]["modelyard/floor"]["median"] <= TARGET_FLOOR
    write_results(
        "cold_start",
        {
            "model": "iris LogisticRegression(max_iter=1000, random_state=0), saved by MLflow",
            "formats": results,
            "target": {"pickle modelyard/floor wall": TARGET_FLOOR, "met": met},
        },
    )


if __name__ == "__main__":
    main()
