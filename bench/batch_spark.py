"""``modelyard.spark.udf`` vs ``mlflow.pyfunc.spark_udf`` on the same DataFrame, local mode.

Both score ``BENCH_SPARK_ROWS`` rows (default 1,000,000) of 20 float columns read
from one Parquet file, with the MLflow-saved scikit-learn model of
``batch_predict``, in a ``local[2]`` session configured as in the tests; a job
is ``select(udf(*columns)).agg(sum)``, so every row is scored. Each side runs in
its own process and session: one warm-up job (Python workers start and load the
model), then ``BENCH_RUNS`` timed jobs. Reported: the median job time of each
and their ratio (sessions cannot alternate job by job, so this is a ratio of
medians, not of pairs), and the first job's time.

modelyard runs in ``.venv-spark`` (pyspark, pandas<3); MLflow in a bench-only
venv holding mlflow 3.17.2, pyspark and pandas<3
(``~/.cache/modelyard/bench/mlflow-spark-3.17.2``, built once): the shared
MLflow venv of the interop tests has no pyspark and is left as it is.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench._util import (
    FIXTURES,
    ROOT,
    RUNS,
    BenchError,
    _locked,
    clean_env,
    mlflow_fixture,
    mlflow_version,
    print_table,
    run_python,
    write_results,
)
from bench.batch_predict import MAKE_MODEL

ROWS = int(os.environ.get("BENCH_SPARK_ROWS", "1000000"))

JOB = """
import json, os, sys, time
os.environ["PYSPARK_PYTHON"] = sys.executable
from pyspark.sql import SparkSession, functions as F
side, model, data, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "4").config("spark.driver.memory", "1g")
         .config("spark.sql.execution.arrow.pyspark.enabled", "true").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = spark.read.parquet(data)
cols = [f"f{i}" for i in range(20)]
if side == "modelyard":
    from modelyard.spark import udf
    predict = udf(spark, model)
else:
    import mlflow.pyfunc
    predict = mlflow.pyfunc.spark_udf(spark, model, result_type="double", env_manager="local")
times, total = [], None
for i in range(runs + 1):
    start = time.perf_counter()
    total = df.select(predict(*cols).alias("p")).agg(F.sum("p")).collect()[0][0]
    times.append(time.perf_counter() - start)
spark.stop()
print(json.dumps({"first": times[0], "jobs": times[1:], "sum": total}))
"""

MAKE_DATA = """
import sys
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
rows, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(3)
cols = [pa.array(c) for c in rng.normal(size=(20, rows))]
pq.write_table(pa.table(cols, names=[f"f{i}" for i in range(20)]), out, row_group_size=125_000)
print("{}")
"""


def _mlflow_spark_python() -> Path:
    """A bench-only venv with MLflow and pyspark (never the interop tests' MLflow venv)."""
    env = FIXTURES / f"mlflow-spark-{mlflow_version()}"
    FIXTURES.mkdir(parents=True, exist_ok=True)
    with _locked(FIXTURES / ".mlflow-spark.lock"):
        if not (env / ".complete").exists():
            print("building the MLflow + pyspark bench venv (once)...", flush=True)
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(env)], check=True)
            pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q"]
            proc = subprocess.run(
                [*pip, f"mlflow=={mlflow_version()}", "pyspark==4.3.0", "pandas<3"],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise BenchError(f"pip failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            (env / ".complete").write_text("ok")
    return env / "bin" / "python"


def main() -> None:
    """Run the benchmark and print its tables."""
    spark_python = ROOT / ".venv-spark" / "bin" / "python"
    if not spark_python.exists():
        raise BenchError("needs .venv-spark (make test builds it)")
    model = mlflow_fixture("batch-linear", MAKE_MODEL) / "model"
    data = FIXTURES / f"spark-{ROWS}.parquet"
    with _locked(FIXTURES / ".spark-data.lock"):
        if not data.exists():
            run_python(spark_python, MAKE_DATA, str(ROWS), str(data))
    sides = {
        "modelyard.spark.udf": ("modelyard", spark_python, clean_env()),
        "mlflow spark_udf": (
            "mlflow",
            _mlflow_spark_python(),
            clean_env(MLFLOW_DISABLE_TELEMETRY="true", GIT_PYTHON_REFRESH="quiet"),
        ),
    }
    results = {}
    for label, (side, python, env) in sides.items():
        results[label] = run_python(python, JOB, side, str(model), str(data), str(RUNS), env=env)
    ours, theirs = results["modelyard.spark.udf"], results["mlflow spark_udf"]
    if abs(ours["sum"] - theirs["sum"]) > 1e-6 * max(1.0, abs(theirs["sum"])):
        raise BenchError(f"the two UDFs disagree: {ours['sum']} vs {theirs['sum']}")
    rows = []
    for label, r in results.items():
        jobs = r["jobs"]
        rows.append(
            [
                label,
                f"{statistics.median(jobs):.3f} ({min(jobs):.3f}..{max(jobs):.3f})",
                f"{r['first']:.3f}",
            ]
        )
    ratio = statistics.median(ours["jobs"]) / statistics.median(theirs["jobs"])
    first = ours["first"] / theirs["first"]
    print_table(
        f"{ROWS:,} rows x 20 float columns, local[2], {RUNS} jobs after a warm-up",
        ["udf", "job s median (min..max)", "first job s"],
        rows,
    )
    print_table(
        "modelyard / mlflow",
        ["", "ratio"],
        [["job wall (ratio of medians)", f"{ratio:.2f}"], ["first job", f"{first:.2f}"]],
    )
    write_results(
        "batch_spark",
        {"rows": ROWS, "results": results, "job_ratio": ratio, "first_job_ratio": first},
    )


if __name__ == "__main__":
    main()
