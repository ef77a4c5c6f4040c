"""``modelyard predict`` vs ``mlflow models predict`` (local env) and a hand-written loop.

Data: ``BENCH_BATCH_ROWS`` rows (default 1,000,000) of 20 float64 columns plus an
``id``, as Parquet and as CSV (MLflow's predict command reads only CSV and JSON).
Model: a scikit-learn ``LinearRegression`` saved by MLflow (cloudpickle), so
predict itself is cheap and the tools' own overhead shows.

Whole processes, alternating rounds (``bench._util.time_commands``):

- ``modelyard parquet``: ``modelyard predict -i data.parquet -o out.parquet --keep-columns id``
- ``modelyard csv``: ``modelyard predict -i data.csv -o out.csv``
- ``mlflow csv``: ``mlflow models predict -i data.csv -t csv --env-manager local``
- ``mlflow python``: ``mlflow.pyfunc.load_model`` + ``pd.read_parquet`` + ``predict`` +
  ``to_parquet`` (what an MLflow user writes for Parquet)
- ``raw loop``: unpickle the estimator, ``iter_batches`` (same batch size, and
  ``pre_buffer=False`` like modelyard: pyarrow's default pre-buffering caches the
  whole file, 2.2 GB at 10 M rows) -> ``to_pandas`` -> ``predict`` -> ``ParquetWriter``:
  the floor for the target "throughput within 1.2x of calling the raw model's
  predict on the same batches".

Then, once, ``BENCH_BATCH_BIG_ROWS`` rows (default 10,000,000; 0 skips):
``modelyard parquet`` against ``raw loop``, for the targets peak RSS < 1 GiB and
wall within 1.2x.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from bench._util import (
    FIXTURES,
    RUNS_HEADERS,
    Command,
    _locked,
    mlflow_env,
    mlflow_fixture,
    mlflow_python,
    paired_ratios,
    print_table,
    project_env,
    project_python,
    rss,
    run_python,
    runs_json,
    runs_row,
    time_commands,
    verdict,
    write_results,
)

ROWS = int(os.environ.get("BENCH_BATCH_ROWS", "1000000"))
BIG_ROWS = int(os.environ.get("BENCH_BATCH_BIG_ROWS", "10000000"))
BATCH = 50_000
COLUMNS = 20

MAKE_MODEL = """
import sys
import numpy as np, pandas as pd
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression

rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(10_000, 20)), columns=[f"f{i}" for i in range(20)])
y = X.to_numpy() @ rng.normal(size=20) + rng.normal(size=10_000) * 0.1
est = LinearRegression().fit(X, y)
mlflow.sklearn.save_model(est, sys.argv[1] + "/model", serialization_format="cloudpickle",
                          signature=infer_signature(X, est.predict(X[:5])))
print("{}")
"""

MAKE_DATA = """
import sys
import numpy as np, pyarrow as pa, pyarrow.csv as pcsv, pyarrow.parquet as pq
rows, out, csv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = np.random.default_rng(1)
names = ["id"] + [f"f{i}" for i in range(20)]
writer = csvw = None
for start in range(0, rows, 1_000_000):
    n = min(1_000_000, rows - start)
    cols = [pa.array(np.arange(start, start + n))] + [pa.array(c) for c in rng.normal(size=(20, n))]
    t = pa.table(cols, names=names)
    writer = writer or pq.ParquetWriter(out, t.schema)
    writer.write_table(t, row_group_size=250_000)
    if csv != "-":
        csvw = csvw or pcsv.CSVWriter(csv, t.schema)
        csvw.write_table(t)
writer.close()
if csvw is not None:
    csvw.close()
print("{}")
"""

RAW_LOOP = """
import sys, cloudpickle, pyarrow as pa, pyarrow.parquet as pq
model, src, dest, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with open(model + "/model.pkl", "rb") as f:
    est = cloudpickle.load(f)
features = [f"f{i}" for i in range(20)]
writer = None
for b in pq.ParquetFile(src, pre_buffer=False).iter_batches(batch_size=batch):
    pred = est.predict(b.select(features).to_pandas())
    out = pa.table({"id": b.column("id"), "prediction": pred})
    writer = writer or pq.ParquetWriter(dest, out.schema)
    writer.write_table(out)
writer.close()
print("done")
"""

MLFLOW_PYTHON = """
import sys, pandas as pd, mlflow.pyfunc
model = mlflow.pyfunc.load_model(sys.argv[1])
df = pd.read_parquet(sys.argv[2])
pd.DataFrame({"id": df["id"], "prediction": model.predict(df.drop(columns="id"))}).to_parquet(
    sys.argv[3], index=False)
print("done")
"""


def _data(rows: int, with_csv: bool) -> tuple[Path, Path | None]:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    parquet = FIXTURES / f"batch-{rows}.parquet"
    csv = FIXTURES / f"batch-{rows}.csv" if with_csv else None
    with _locked(FIXTURES / ".batch-data.lock"):
        if not parquet.exists() or (csv is not None and not csv.exists()):
            tmp_p = parquet.with_suffix(".tmp.parquet")
            tmp_c = csv.with_suffix(".tmp.csv") if csv else None
            run_python(
                project_python(), MAKE_DATA, str(rows), str(tmp_p), str(tmp_c) if tmp_c else "-"
            )
            tmp_p.replace(parquet)
            if csv is not None and tmp_c is not None:
                tmp_c.replace(csv)
    return parquet, csv


def _modelyard(args: list[str]) -> list[str]:
    exe = project_python().with_name("modelyard")
    return [str(exe), "predict", *args, "--batch-size", str(BATCH), "--no-progress"]


def _check(outputs: dict[str, Path], rows: int) -> None:
    """Every tool wrote ``rows`` predictions and they agree."""
    import numpy as np
    import pyarrow.parquet as pq

    ours = pq.read_table(outputs["modelyard parquet"]).column("prediction").to_numpy()
    raw = pq.read_table(outputs["raw loop"]).column("prediction").to_numpy()
    assert len(ours) == rows, len(ours)
    np.testing.assert_allclose(ours, raw)
    if "mlflow csv" in outputs:
        theirs = json.loads(outputs["mlflow csv"].read_text())["predictions"]
        np.testing.assert_allclose(ours, np.asarray(theirs, dtype=float))


def main() -> None:
    """Run the benchmark and print its tables."""
    model = mlflow_fixture("batch-linear", MAKE_MODEL) / "model"
    parquet, csv = _data(ROWS, with_csv=True)
    assert csv is not None
    work = FIXTURES / "batch-out"
    work.mkdir(exist_ok=True)
    out = {
        "modelyard parquet": work / "ours.parquet",
        "modelyard csv": work / "ours.csv",
        "mlflow csv": work / "mlflow.json",
        "mlflow python": work / "mlflow.parquet",
        "raw loop": work / "raw.parquet",
    }
    mlflow_cli = mlflow_python().with_name("mlflow")
    cmds = [
        Command(
            "modelyard parquet",
            _modelyard(
                [
                    "-m",
                    str(model),
                    "-i",
                    str(parquet),
                    "-o",
                    str(out["modelyard parquet"]),
                    "--keep-columns",
                    "id",
                ]
            ),
        ),
        Command(
            "modelyard csv",
            _modelyard(["-m", str(model), "-i", str(csv), "-o", str(out["modelyard csv"])]),
        ),
        Command(
            "mlflow csv",
            [
                str(mlflow_cli),
                "models",
                "predict",
                "-m",
                str(model),
                "-i",
                str(csv),
                "-t",
                "csv",
                "-o",
                str(out["mlflow csv"]),
                "--env-manager",
                "local",
            ],
            env=mlflow_env(),
        ),
        Command(
            "mlflow python",
            [
                str(mlflow_python()),
                "-c",
                MLFLOW_PYTHON,
                str(model),
                str(parquet),
                str(out["mlflow python"]),
            ],
            env=mlflow_env(),
            expect="done",
        ),
        Command(
            "raw loop",
            [
                str(project_python()),
                "-c",
                RAW_LOOP,
                str(model),
                str(parquet),
                str(out["raw loop"]),
                str(BATCH),
            ],
            env=project_env(),
            expect="done",
        ),
    ]
    runs = time_commands(cmds)
    _check(out, ROWS)
    print_table(
        f"{ROWS:,} rows x {COLUMNS} float columns, batch {BATCH:,}",
        RUNS_HEADERS,
        [runs_row(c.label, runs[c.label]) for c in cmds],
    )
    pairs = [
        ("modelyard parquet", "mlflow csv"),
        ("modelyard csv", "mlflow csv"),
        ("modelyard parquet", "mlflow python"),
        ("modelyard parquet", "raw loop"),
    ]
    ratio_rows = []
    results: dict[str, object] = {
        "rows": ROWS,
        "batch_size": BATCH,
        "commands": {k: runs_json(v) for k, v in runs.items()},
    }
    for a, b in pairs:
        wall = paired_ratios(runs[a], runs[b])
        mem = paired_ratios(runs[a], runs[b], "peak_rss_mib")
        ratio_rows.append([f"{a} / {b}", wall.fmt(2), mem.fmt(2)])
        results[f"{a} / {b}"] = {"wall": wall.median, "peak_rss": mem.median}
    raw_ratio = paired_ratios(runs["modelyard parquet"], runs["raw loop"]).median
    ratio_rows.append(
        ["target: modelyard / raw loop <= 1.2", f"{raw_ratio:.2f}", verdict(raw_ratio, 1.2)]
    )
    print_table("ratios, median of pairs (min..max)", ["pair", "wall", "peak RSS"], ratio_rows)

    if BIG_ROWS:
        big, _ = _data(BIG_ROWS, with_csv=False)
        big_out = {
            "modelyard parquet": work / "big-ours.parquet",
            "raw loop": work / "big-raw.parquet",
        }
        big_cmds = [
            Command(
                "modelyard parquet",
                _modelyard(
                    [
                        "-m",
                        str(model),
                        "-i",
                        str(big),
                        "-o",
                        str(big_out["modelyard parquet"]),
                        "--keep-columns",
                        "id",
                    ]
                ),
            ),
            Command(
                "raw loop",
                [
                    str(project_python()),
                    "-c",
                    RAW_LOOP,
                    str(model),
                    str(big),
                    str(big_out["raw loop"]),
                    str(BATCH),
                ],
                expect="done",
            ),
        ]
        big_runs = time_commands(big_cmds, runs=1, warmup=0)
        _check(big_out, BIG_ROWS)
        peak = statistics.median(rss(big_runs["modelyard parquet"]))
        ratio = paired_ratios(big_runs["modelyard parquet"], big_runs["raw loop"]).median
        print_table(
            f"{BIG_ROWS:,} rows, one run each",
            RUNS_HEADERS,
            [runs_row(c.label, big_runs[c.label]) for c in big_cmds],
        )
        print_table(
            "targets",
            ["target", "value", "verdict"],
            [
                ["peak RSS < 1024 MiB", f"{peak:.0f} MiB", verdict(peak, 1024)],
                ["wall / raw loop <= 1.2", f"{ratio:.2f}", verdict(ratio, 1.2)],
            ],
        )
        results["big"] = {
            "rows": BIG_ROWS,
            "peak_rss_mib": peak,
            "wall_vs_raw": ratio,
            "commands": {k: runs_json(v) for k, v in big_runs.items()},
        }
    write_results("batch_predict", results)


if __name__ == "__main__":
    main()
