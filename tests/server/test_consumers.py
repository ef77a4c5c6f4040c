"""The consumers load through a yard server: ``modelyard serve`` follows an alias moved
through it, ``modelyard predict`` scores a file with the version an alias names.

Both run as subprocesses with only ``MODELYARD_URI=http://...`` and a reader's
``MODELYARD_TOKEN`` (a consumer needs nothing more), their cache of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

import modelyard as my
from modelyard.store.rest.admin import server_admin
from modelyard.yard import Yard
from tests._process import ServerProcess
from tests._server import YardServer
from tests.serving import _models

BODY = {"dataframe_split": {"columns": ["x"], "data": [[1.0], [2.0], [3.0]]}}


def _consumer_env(server: YardServer, cache: Path) -> dict[str, str]:
    reader = server.token("rhea", "reader")
    return {**server.env(reader), "MODELYARD_CACHE": str(cache)}


def test_serve_follows_an_alias_moved_through_the_server(
    http_yard: Yard, yard_server: YardServer, tmp_path: Path
) -> None:
    for version in (1, 2):
        path = tmp_path / f"v{version}"
        my.save_model(_models.Versioned(version), path, input_example=pd.DataFrame({"x": [1.0]}))
        assert my.register_model(path, "fraud").version == version
    my.set_alias("fraud", "champion", 1)
    served = ServerProcess(
        ["models:/fraud@champion", "--poll-interval", "0.2"],
        env=_consumer_env(yard_server, tmp_path / "cache"),
    )
    try:
        first = httpx.post(f"{served.url}/invocations", json=BODY, timeout=30)
        assert first.status_code == 200, first.text
        assert first.headers["x-model-version"] == "1"
        assert first.json() == {"predictions": [1, 1, 1]}
        my.set_alias("fraud", "champion", 2)  # through the server, as its admin
        served.wait_for_log(r"fraud: version 2 .* answers now")
        moved = httpx.post(f"{served.url}/invocations", json=BODY, timeout=30)
        assert moved.headers["x-model-version"] == "2"
        assert moved.json() == {"predictions": [2, 2, 2]}
    finally:
        assert served.stop() == 0, served.log
    # the moves were the admin's; the consumer, a reader, changed nothing
    assert [e["actor"] for e in server_admin().audit(action="alias.set")] == ["admin", "admin"]
    assert not server_admin().audit(actor="rhea")


def test_predict_scores_a_file_with_the_champion(
    http_yard: Yard,
    yard_server: YardServer,
    iris_model: Any,
    iris: tuple[pd.DataFrame, pd.Series],
    tmp_path: Path,
) -> None:
    X, _ = iris
    with my.start_run(experiment="iris"):
        info = my.log_model(
            iris_model, "model", registered_model_name="iris", input_example=X.head()
        )
    assert info.registered_version is not None
    my.set_alias("iris", "champion", info.registered_version.version)
    source = tmp_path / "in.csv"
    X.to_csv(source, index=False)
    out = tmp_path / "out.parquet"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from modelyard.cli import main; main()",
            "predict",
            "-m",
            "models:/iris@champion",
            "-i",
            str(source),
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **_consumer_env(yard_server, tmp_path / "cache")},
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "scored 150 rows into" in done.stderr
    got = pd.read_parquet(out)
    np.testing.assert_array_equal(got["prediction"].to_numpy(), iris_model.predict(X))
