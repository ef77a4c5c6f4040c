"""``import modelyard`` vs ``import mlflow``, as whole processes.

Target (issue 2): modelyard's wall time at most 0.1x MLflow's, paired ratio median.
An empty interpreter start is timed alongside as the floor of any process.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict

from bench._util import (
    RUNS_HEADERS,
    Command,
    mlflow_env,
    mlflow_python,
    paired_ratios,
    print_table,
    project_env,
    project_python,
    runs_json,
    runs_row,
    time_commands,
    verdict,
    write_results,
)

TARGET = 0.10


def main() -> None:
    """Time the three imports alternately and print the ratio to MLflow's."""
    ours, theirs = str(project_python()), str(mlflow_python())
    cmds = [
        Command("python -c pass", (ours, "-c", "print('ok')"), expect="ok"),
        Command("import modelyard", (ours, "-c", "import modelyard; print('ok')"), expect="ok"),
        Command(
            "import mlflow",
            (theirs, "-c", "import mlflow; print('ok')"),
            env=mlflow_env(),
            expect="ok",
        ),
    ]
    runs = time_commands(cmds)
    print_table(
        "Whole-process import (wall, CPU = user+sys, peak RSS)",
        RUNS_HEADERS,
        [runs_row(label, r) for label, r in runs.items()],
    )
    wall = paired_ratios(runs["import modelyard"], runs["import mlflow"])
    cpu = paired_ratios(runs["import modelyard"], runs["import mlflow"], "cpu")
    print_table(
        "Paired ratios, median of pairs (min..max)",
        ["A / B", "wall", "cpu", "target", ""],
        [
            [
                "import modelyard / import mlflow",
                wall.fmt(3),
                cpu.fmt(3),
                f"<= {TARGET}",
                verdict(wall.median, TARGET),
            ]
        ],
    )
    heaviest = _heaviest_imports(ours)
    print_table(
        "Heaviest modules under `import modelyard` (one run of -X importtime, cumulative us)",
        ["module", "cumulative us"],
        heaviest,
    )
    write_results(
        "import_time",
        {
            "commands": {c.label: list(c.argv) for c in cmds},
            "results": {label: runs_json(r) for label, r in runs.items()},
            "ratios": {
                "modelyard/mlflow": {"wall": asdict(wall), "cpu": asdict(cpu)},
            },
            "target": {"modelyard/mlflow wall": TARGET, "met": wall.median <= TARGET},
            "heaviest_imports_us": dict(heaviest),
        },
    )


def _heaviest_imports(python: str, top: int = 8) -> list[tuple[str, int]]:
    proc = subprocess.run(
        [python, "-X", "importtime", "-c", "import modelyard"],
        capture_output=True,
        text=True,
        check=True,
        env=project_env(),
    )
    rows = []
    for line in proc.stderr.splitlines():
        # "import time:  self [us] | cumulative | imported package"
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((parts[2].rstrip(), int(parts[1])))
    return sorted(rows, key=lambda r: -r[1])[:top]


if __name__ == "__main__":
    main()
