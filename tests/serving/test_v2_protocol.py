"""Open Inference Protocol v2 against a real server holding several models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import modelyard
from tests.serving.conftest import IRIS_COLUMNS, ServerProcess, StartServer, iris_split

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def server(
    module_server: StartServer, iris_frame_model: Path, iris_array_model: Path, echo_model: Path
) -> ServerProcess:
    return module_server(
        iris_frame_model, f"arr={iris_array_model}", echo_model, "--default", "arr"
    )


def tensor(name: str, rows: list[list[float]], datatype: str = "FP64") -> dict[str, Any]:
    flat = [v for row in rows for v in row]
    return {"name": name, "shape": [len(rows), len(rows[0])], "datatype": datatype, "data": flat}


def infer(
    server: ServerProcess, model: str, body: Any, version: str | None = None
) -> httpx.Response:
    where = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
    return httpx.post(f"{server.url}{where}", json=body, timeout=30)


def expected(path: Path, data: Any) -> list[int]:
    return [int(v) for v in modelyard.load_model(path).predict(data)]


def test_server_health_and_metadata(server: ServerProcess) -> None:
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    assert httpx.get(f"{server.url}/v2/health/ready").status_code == 200
    meta = httpx.get(f"{server.url}/v2").json()
    assert meta["name"] == "modelyard"
    assert meta["version"] == modelyard.__version__


def test_model_metadata_comes_from_the_signature(server: ServerProcess) -> None:
    iris = httpx.get(f"{server.url}/v2/models/iris").json()
    assert iris["name"] == "iris"
    assert [i["name"] for i in iris["inputs"]] == IRIS_COLUMNS
    assert {i["datatype"] for i in iris["inputs"]} == {"FP64"}
    arr = httpx.get(f"{server.url}/v2/models/arr").json()
    assert arr["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert httpx.get(f"{server.url}/v2/models/iris/ready").status_code == 200


def test_infer_tensor_model(server: ServerProcess, iris_array_model: Path) -> None:
    r = infer(server, "arr", {"id": "req-1", "inputs": [tensor("input-0", ROWS)]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == "arr"
    assert body["id"] == "req-1"
    (out,) = body["outputs"]
    assert out["datatype"] == "INT64"
    assert out["shape"] == [2]
    assert out["data"] == expected(iris_array_model, np.array(ROWS))
    assert r.headers["x-model-name"] == "arr"


def test_infer_column_model_with_one_2d_tensor(
    server: ServerProcess, iris_frame_model: Path
) -> None:
    r = infer(server, "iris", {"inputs": [tensor("input-0", ROWS)]})
    assert r.status_code == 200, r.text
    want = expected(iris_frame_model, pd.DataFrame(ROWS, columns=IRIS_COLUMNS))
    assert r.json()["outputs"][0]["data"] == want


def test_infer_column_model_with_one_tensor_per_column(
    server: ServerProcess, iris_frame_model: Path
) -> None:
    inputs = [
        {"name": c, "shape": [2], "datatype": "FP64", "data": [row[i] for row in ROWS]}
        for i, c in enumerate(IRIS_COLUMNS)
    ]
    r = infer(server, "iris", {"inputs": list(reversed(inputs))})
    assert r.status_code == 200, r.text
    want = expected(iris_frame_model, pd.DataFrame(ROWS, columns=IRIS_COLUMNS))
    assert r.json()["outputs"][0]["data"] == want


def test_versioned_routes(server: ServerProcess) -> None:
    version = httpx.get(f"{server.url}/v2/models/arr").json()["versions"][0]
    ok = infer(server, "arr", {"inputs": [tensor("x", ROWS)]}, version=version)
    assert ok.status_code == 200
    assert ok.json()["model_version"] == version
    missing = infer(server, "arr", {"inputs": [tensor("x", ROWS)]}, version="999")
    assert missing.status_code == 404
    assert "999" in missing.json()["error"]
    assert httpx.get(f"{server.url}/v2/models/arr/versions/999/ready").status_code == 404


def test_unknown_model_is_a_404(server: ServerProcess) -> None:
    r = infer(server, "nope", {"inputs": [tensor("x", ROWS)]})
    assert r.status_code == 404
    assert "nope" in r.json()["error"]


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([], "non-empty list"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP128", "data": [1, 2, 3, 4]}], "FP128"),
        ([{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3, 4]}], "holds 3"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ["a", 2, 3, 4]}], "numbers"),
        ([{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [1.5, 2, 3, 4]}], "non-int"),
        ([{"name": "x", "shape": [1, 4], "datatype": "INT8", "data": [1000, 2, 3, 4]}], "range"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP64"}], "'data' is missing"),
        ([{"shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}], "name"),
        ([{"name": "x", "shape": [-1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}], "shape"),
    ],
)
def test_bad_tensors_are_400s_naming_the_input(
    server: ServerProcess, inputs: list[Any], fragment: str
) -> None:
    r = infer(server, "arr", {"inputs": inputs})
    assert r.status_code == 400, r.text
    assert fragment in r.json()["error"]


def test_wrong_width_for_a_column_model_is_a_400(server: ServerProcess) -> None:
    r = infer(server, "iris", {"inputs": [tensor("input-0", [[1.0, 2.0, 3.0]])]})
    assert r.status_code == 400
    assert "4" in r.json()["error"]


def test_requested_outputs(server: ServerProcess) -> None:
    ok = infer(server, "arr", {"inputs": [tensor("x", ROWS)], "outputs": [{"name": "output-0"}]})
    assert ok.status_code == 200
    bad = infer(server, "arr", {"inputs": [tensor("x", ROWS)], "outputs": [{"name": "proba"}]})
    assert bad.status_code == 400
    assert "proba" in bad.json()["error"]


def test_model_without_signature_gets_named_arrays(server: ServerProcess) -> None:
    r = infer(
        server,
        "echo",
        {
            "inputs": [
                {"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]},
                {"name": "b", "shape": [2], "datatype": "BYTES", "data": ["x", "y"]},
            ]
        },
    )
    assert r.status_code == 200, r.text
    outputs = {o["name"]: o["data"] for o in r.json()["outputs"]}
    assert outputs["type"] == ["dict"]
    assert outputs["keys"] == ["a", "b"]


def test_default_model_answers_invocations(server: ServerProcess, iris_array_model: Path) -> None:
    r = httpx.post(f"{server.url}/invocations", json=iris_split(ROWS))
    assert r.status_code == 200, r.text
    assert r.headers["x-model-name"] == "arr"
    assert r.json() == {"predictions": expected(iris_array_model, np.array(ROWS))}


def test_several_models_are_listed_in_health(server: ServerProcess) -> None:
    names = [m["name"] for m in httpx.get(f"{server.url}/health").json()["models"]]
    assert names == ["iris", "arr", "echo"]


def test_duplicate_names_are_refused(start_server: StartServer, iris_frame_model: Path) -> None:
    with pytest.raises(AssertionError, match="two models would be served as 'iris'"):
        start_server(iris_frame_model, iris_frame_model)


def test_binary_tensors_both_ways_as_triton_clients_send_them(
    server: ServerProcess, iris_array_model: Path
) -> None:
    """Triton's clients send tensors as raw bytes and, with no outputs named, ask for
    binary outputs back (the binary tensor data extension)."""
    assert "binary_tensor_data" in httpx.get(f"{server.url}/v2").json()["extensions"]
    rows = np.array(ROWS, dtype=np.float64)
    raw = rows.astype("<f8").tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(rows.shape),
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    r = httpx.post(
        f"{server.url}/v2/models/arr/infer",
        content=head + raw,
        headers={
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(head)),
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    size = int(r.headers["inference-header-content-length"])
    doc = json.loads(r.content[:size])
    (out,) = doc["outputs"]
    assert out["datatype"] == "INT64"
    assert out["parameters"]["binary_data_size"] == len(r.content) - size == 16
    got = np.frombuffer(r.content[size:], dtype="<i8").tolist()
    assert got == expected(iris_array_model, rows)


def test_a_binary_body_with_a_wrong_size_is_a_400(server: ServerProcess) -> None:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 4],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 16},
                }
            ]
        }
    ).encode()
    r = httpx.post(
        f"{server.url}/v2/models/arr/infer",
        content=head + b"\0" * 16,
        headers={"Inference-Header-Content-Length": str(len(head))},
        timeout=30,
    )
    assert r.status_code == 400
    assert "4 FP64 values take 32 bytes" in r.json()["error"]
    r = httpx.post(
        f"{server.url}/v2/models/arr/infer",
        content=head,
        headers={"Inference-Header-Content-Length": "99999"},
        timeout=30,
    )
    assert r.status_code == 400
    assert "Inference-Header-Content-Length" in r.json()["error"]
