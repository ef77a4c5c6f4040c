"""MLflow's scoring protocol against a real ``modelyard serve`` on a loopback port."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import modelyard
from tests.serving.conftest import IRIS_COLUMNS, ServerProcess, StartServer, iris_split

JSON = {"Content-Type": "application/json"}
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture(scope="module")
def server(module_server: StartServer, iris_frame_model: Path) -> ServerProcess:
    return module_server(iris_frame_model, "--max-body-size", "0.05")


@pytest.fixture(scope="module")
def expected(iris_frame_model: Path) -> list[int]:
    model = modelyard.load_model(iris_frame_model)
    return [int(v) for v in model.predict(pd.DataFrame(ROWS, columns=IRIS_COLUMNS))]


def post(server: ServerProcess, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{server.url}/invocations", content=content, headers=headers or JSON, timeout=30
    )


# -- routes -------------------------------------------------------------------------


def test_ping_health_version(server: ServerProcess) -> None:
    ping = httpx.get(f"{server.url}/ping")
    assert (ping.status_code, ping.text) == (200, "\n")
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    (model,) = health["models"]
    assert model["name"] == "iris"
    assert model["flavor"] == "sklearn"
    assert model["digest"].startswith("sha256:")
    version = httpx.get(f"{server.url}/version")
    assert version.status_code == 200
    assert version.text == modelyard.__version__


# -- every payload format gives the in-process predictions ------------------------


def test_dataframe_split(server: ServerProcess, expected: list[int]) -> None:
    r = post(server, iris_split(ROWS))
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected}


def test_response_names_the_version_that_answered(
    server: ServerProcess, iris_frame_model: Path
) -> None:
    r = post(server, iris_split(ROWS[:1]))
    digest = modelyard.load_model(iris_frame_model).digest
    assert r.headers["x-model-name"] == "iris"
    assert r.headers["x-model-digest"] == digest
    assert digest.removeprefix("sha256:").startswith(r.headers["x-model-version"])


def test_dataframe_split_with_columns_out_of_order(
    server: ServerProcess, expected: list[int]
) -> None:
    cols = list(reversed(IRIS_COLUMNS))
    rows = [list(reversed(r)) for r in ROWS]
    r = post(server, {"dataframe_split": {"columns": cols, "data": rows, "index": [7, 8, 9]}})
    assert r.json() == {"predictions": expected}


def test_dataframe_records(server: ServerProcess, expected: list[int]) -> None:
    records = [dict(zip(IRIS_COLUMNS, row, strict=True)) for row in ROWS]
    assert post(server, {"dataframe_records": records}).json() == {"predictions": expected}


def test_instances(server: ServerProcess, expected: list[int]) -> None:
    records = [dict(zip(IRIS_COLUMNS, row, strict=True)) for row in ROWS]
    assert post(server, {"instances": records}).json() == {"predictions": expected}


def test_inputs_as_columns(server: ServerProcess, expected: list[int]) -> None:
    columns = {c: [row[i] for row in ROWS] for i, c in enumerate(IRIS_COLUMNS)}
    assert post(server, {"inputs": columns}).json() == {"predictions": expected}


def test_csv(server: ServerProcess, expected: list[int]) -> None:
    body = pd.DataFrame(ROWS, columns=IRIS_COLUMNS).to_csv(index=False).encode()
    r = post(server, body, {"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected}


def test_csv_with_charset(server: ServerProcess, expected: list[int]) -> None:
    body = pd.DataFrame(ROWS, columns=IRIS_COLUMNS).to_csv(index=False).encode()
    r = post(server, body, {"Content-Type": "text/csv; charset=UTF-8"})
    assert r.json() == {"predictions": expected}


def test_parquet(server: ServerProcess, expected: list[int]) -> None:
    buf = io.BytesIO()
    pd.DataFrame(ROWS, columns=IRIS_COLUMNS).to_parquet(buf)
    r = post(server, buf.getvalue(), {"Content-Type": "application/vnd.apache.parquet"})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": expected}


def test_integers_for_double_columns_are_accepted(server: ServerProcess) -> None:
    # JSON has no int/float distinction: exact integers fit a double column losslessly.
    r = post(server, iris_split([[5, 3, 1, 0]]))
    assert r.status_code == 200, r.text
    as_float = post(server, iris_split([[5.0, 3.0, 1.0, 0.0]]))
    assert r.json() == as_float.json()


# -- bad input: a 4xx that names what was wrong, never a 500 ----------------------


def test_missing_column_is_a_400_naming_it(server: ServerProcess) -> None:
    r = post(server, {"dataframe_split": {"columns": IRIS_COLUMNS[:3], "data": [[1.0, 2.0, 3.0]]}})
    assert r.status_code == 400
    body = r.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert body["error_class"] == "SCHEMA_ENFORCEMENT_FAILED"
    assert "petal width (cm)" in body["message"]


def test_string_for_a_double_column_is_a_400_without_echoing_data(server: ServerProcess) -> None:
    r = post(server, iris_split([[5.1, 3.5, 1.4, "s3cr3t-value"]]))
    assert r.status_code == 400
    body = r.json()
    assert "petal width (cm)" in body["message"]
    assert "s3cr3t-value" not in r.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"dataframe_split": ', "valid JSON"),
        (b"[1, 2]", "Received a list"),
        (b'"text"', "JSON object"),
        (b'{"inputs": [1], "instances": [1]}', "exactly one of the input fields"),
        (b'{"columns": ["a"], "data": [[1]]}', "exactly one of the input fields"),
        (b'{"dataframe_split": {"rows": []}}', "'data' field"),
        (b'{"dataframe_split": {"data": 5}}', "list of rows"),
        (b'{"dataframe_records": {"a": 1}}', "list of records"),
        (b'{"dataframe_split": {"data": [[1]]}, "params": [1]}', "'params' must be"),
        (b"\xff\xfe\x00", "UTF-8"),
    ],
)
def test_malformed_json_bodies_are_400s(server: ServerProcess, body: bytes, fragment: str) -> None:
    r = post(server, body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "BAD_REQUEST"
    assert fragment in r.json()["message"]


def test_invalid_json_is_not_echoed(server: ServerProcess) -> None:
    r = post(server, b'{"dataframe_split": {"data": [[1, 2]], "secret": "hunter2"')
    assert r.status_code == 400
    assert "hunter2" not in r.text


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        (None, "no Content-Type"),
        ("text/plain", "only supports the following content types"),
        ("application/json; charset=latin-1", "only supports UTF-8"),
        ("text/csv; format=pandas-split", "Unrecognized content type parameters: format"),
    ],
)
def test_content_type_problems_are_415s(
    server: ServerProcess, content_type: str | None, fragment: str
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    with httpx.Client() as client:
        request = client.build_request(
            "POST",
            f"{server.url}/invocations",
            content=json.dumps(iris_split(ROWS)).encode(),
            headers=headers,
        )
        assert "content-type" not in request.headers or content_type is not None
        r = client.send(request)
    assert r.status_code == 415
    assert fragment in r.json()["message"]


def test_csv_that_does_not_parse_is_a_400(server: ServerProcess) -> None:
    r = post(server, b"", {"Content-Type": "text/csv"})
    assert r.status_code == 400
    assert "Failed to parse input" in r.json()["message"]


def test_corrupt_parquet_is_a_400(server: ServerProcess) -> None:
    r = post(server, b"PAR1 not really", {"Content-Type": "application/vnd.apache.parquet"})
    assert r.status_code == 400


def test_body_over_the_limit_is_a_413(server: ServerProcess) -> None:
    rows = [[5.1, 3.5, 1.4, 0.2]] * 4000  # ~100 KB, the limit is 0.05 MB
    r = post(server, iris_split(rows))
    assert r.status_code == 413
    assert r.json()["error_code"] == "REQUEST_ENTITY_TOO_LARGE"


def test_unknown_route_and_wrong_method(server: ServerProcess) -> None:
    missing = httpx.get(f"{server.url}/nope")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    wrong = httpx.get(f"{server.url}/invocations")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"


def test_server_stays_up_after_garbage(server: ServerProcess, expected: list[int]) -> None:
    garbage = [b"\x00" * 100, b"{" * 5000, b'{"inputs": ' + b"[" * 5000, b"nan", b"{}"]
    for body in garbage:
        assert post(server, body).status_code == 400
    assert post(server, iris_split(ROWS)).json() == {"predictions": expected}


def test_openapi_document_lists_every_route(server: ServerProcess) -> None:
    doc = httpx.get(f"{server.url}/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for route in (
        "/ping",
        "/health",
        "/version",
        "/invocations",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{model_name}",
        "/v2/models/{model_name}/ready",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    ):
        assert route in paths, route
    split = doc["components"]["schemas"]["InvocationsRequest"]["properties"]["dataframe_split"]
    assert split["properties"]["columns"]["example"] == IRIS_COLUMNS
    names = paths["/v2/models/{model_name}/infer"]["post"]["parameters"][0]["schema"]["enum"]
    assert names == ["iris"]


def test_access_log_has_one_line_per_request(server: ServerProcess) -> None:
    post(server, iris_split(ROWS[:1]), {"Content-Type": "application/json"})
    httpx.get(f"{server.url}/ping?probe=access-log")
    deadline_lines = server.stdout_lines
    for _ in range(40):
        if any('"GET /ping HTTP/1.1" 200' in line for line in deadline_lines):
            break
        time.sleep(0.05)
    line = next(line for line in deadline_lines if '"POST /invocations HTTP/1.1" 200' in line)
    assert line.startswith("127.0.0.1 - - [")
    assert "iris/" in line


# -- the model itself failing -------------------------------------------------------


def test_model_exception_is_a_500_without_trace(
    start_server: StartServer, doubler_model: Path
) -> None:
    server = start_server(doubler_model)
    ok = post(server, {"dataframe_split": {"columns": ["x"], "data": [[1.5]]}})
    assert ok.json() == {"predictions": [3.0]}
    r = post(server, {"dataframe_split": {"columns": ["x"], "data": [[-1.0]]}})
    assert r.status_code == 500
    body = r.json()
    assert body["error_code"] == "INTERNAL_ERROR"
    assert "RuntimeError" in body["message"]
    assert "Traceback" not in r.text
    assert "secret internal detail" not in r.text
    # the trace is in the server log, under the reference the caller was given
    ref = body["message"].rsplit("under ", 1)[1]
    server.wait_for_log("secret internal detail")
    assert ref in server.log
    assert "Traceback" in server.log


def test_timeout_is_a_504_and_the_server_keeps_answering(
    start_server: StartServer, sleeper_model: Path
) -> None:
    server = start_server(sleeper_model, "--timeout", "0.5")
    body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
    # the first overrun ran inline (the model had been fast): 504 once it returns
    slow = post(server, {**body, "params": {"seconds": 1.0}})
    assert slow.status_code == 504
    assert slow.json()["error_code"] == "DEADLINE_EXCEEDED"
    # later calls run in the pool, where the deadline cuts the wait short
    start = time.monotonic()
    slow = post(server, {**body, "params": {"seconds": 5.0}})
    assert slow.status_code == 504
    assert time.monotonic() - start < 3.0
    fast = post(server, body)
    assert fast.status_code == 200
    assert fast.json() == {"predictions": [0.0]}


def test_params_reach_the_model_and_bad_params_are_400s(
    start_server: StartServer, sleeper_model: Path
) -> None:
    server = start_server(sleeper_model)
    body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
    assert post(server, {**body, "params": {"seconds": 0.01}}).status_code == 200
    bad = post(server, {**body, "params": {"seconds": "soon"}})
    assert bad.status_code == 400
    assert "seconds" in bad.json()["message"]


def test_model_without_signature_gets_the_parsed_body(
    start_server: StartServer, echo_model: Path
) -> None:
    server = start_server(echo_model)
    r = post(server, {"inputs": {"a": [1, 2], "b": ["x", "y"]}})
    assert r.json()["predictions"] == {"type": "dict", "keys": ["a", "b"], "params": None}
    r = post(server, {"dataframe_records": [{"a": 1}]})
    assert r.json()["predictions"]["type"] == "DataFrame"
    # MLflow's unified LLM format: the body is the input, the answer is unwrapped
    r = post(server, {"messages": [{"role": "user", "content": "hi"}]})
    assert r.json() == {"type": "dict", "keys": ["messages"], "params": None}


def test_type_hinted_signature_takes_raw_inputs_only(
    start_server: StartServer, echo_model: Path, tmp_path: Path
) -> None:
    # MLflow marks signatures inferred from predict's type hints at the top level of
    # MLmodel; such models get `inputs` as sent, and other body formats are refused.
    import shutil

    import yaml

    hinted = tmp_path / "hinted"
    shutil.copytree(echo_model, hinted)
    (hinted / "MANIFEST.sha256").unlink()
    (hinted / "MANIFEST.sig").unlink(missing_ok=True)
    doc = yaml.safe_load((hinted / "MLmodel").read_text())
    doc["is_signature_from_type_hint"] = True
    (hinted / "MLmodel").write_text(yaml.safe_dump(doc))
    # edited by hand, so signed again by its owner: its code loads in the server
    from modelyard.format.content import ContentManifest
    from modelyard.trust.keys import default_key
    from modelyard.trust.signing import sign_directory

    ContentManifest.build(hinted).write(hinted)
    key = default_key()
    assert key is not None
    sign_directory(hinted, key)
    server = start_server(hinted)
    raw = post(server, {"inputs": {"a": 1, "b": [2, 3]}})
    assert raw.status_code == 200
    assert raw.json()["predictions"]["keys"] == ["a", "b"]
    split = post(server, {"dataframe_split": {"columns": ["a"], "data": [[1]]}})
    assert split.status_code == 400
    assert "inputs" in split.json()["message"]
