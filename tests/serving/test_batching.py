"""Micro-batching: concurrent requests share one predict, and a bad one fails alone."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import modelyard
from modelyard.serving.app import AppSettings, ScoringApp
from modelyard.serving.slot import ModelSlot, load_served
from tests.serving.conftest import StartServer, iris_split


def _app(path: Path, name: str, **settings: Any) -> ScoringApp:
    loaded = load_served(str(path), name)
    return ScoringApp([ModelSlot(name, str(path), loaded)], settings=AppSettings(**settings))


async def _call(app: ScoringApp, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    raw = json.dumps(body).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "http_version": "1.1",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)  # let the other requests start too, as on a busy server
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


def _split(x: list[float]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": ["x"], "data": [[v] for v in x]}}


def test_concurrent_requests_share_one_predict(doubler_model: Path) -> None:
    app = _app(doubler_model, "doubler", max_batch_size=64)
    calls: list[int] = []
    loaded = app.default.current
    real = loaded.model.predict

    def counting(data: Any, params: Any = None) -> Any:
        calls.append(len(data))
        return real(data, params)

    object.__setattr__(loaded.model, "predict", counting)

    async def main() -> list[tuple[int, Any]]:
        app.startup()
        try:
            bodies = [_split([float(i), float(i) + 0.5]) for i in range(10)]
            return await asyncio.gather(*(_call(app, "/invocations", b) for b in bodies))
        finally:
            await app.shutdown()

    results = asyncio.run(main())
    for i, (status, body) in enumerate(results):
        assert status == 200
        assert body == {"predictions": [2.0 * i, 2.0 * i + 1.0]}
    assert calls == [20]  # ten 2-row requests, one 20-row predict
    assert app.batchers["doubler"].batches == 1


def test_a_bad_request_in_a_batch_fails_alone(doubler_model: Path) -> None:
    app = _app(doubler_model, "doubler", max_batch_size=64)

    async def main() -> list[tuple[int, Any]]:
        app.startup()
        try:
            bodies = [_split([1.0]), _split([-1.0]), _split([3.0])]
            return await asyncio.gather(*(_call(app, "/invocations", b) for b in bodies))
        finally:
            await app.shutdown()

    (s1, b1), (s2, b2), (s3, b3) = asyncio.run(main())
    assert (s1, b1) == (200, {"predictions": [2.0]})
    assert s2 == 500
    assert b2["error_code"] == "INTERNAL_ERROR"
    assert (s3, b3) == (200, {"predictions": [6.0]})
    assert app.batchers["doubler"].batches == 1  # tried together first


def test_schema_error_in_a_batch_is_that_requests_400(doubler_model: Path) -> None:
    app = _app(doubler_model, "doubler", max_batch_size=64)

    async def main() -> list[tuple[int, Any]]:
        app.startup()
        try:
            bad = {"dataframe_split": {"columns": ["y"], "data": [[1.0]]}}
            bodies = [_split([1.0]), bad, _split([2.0])]
            return await asyncio.gather(*(_call(app, "/invocations", b) for b in bodies))
        finally:
            await app.shutdown()

    (s1, _), (s2, b2), (s3, _) = asyncio.run(main())
    assert (s1, s2, s3) == (200, 400, 200)
    assert "'x'" in b2["message"]


def test_batches_respect_max_size(iris_array_model: Path) -> None:
    app = _app(iris_array_model, "arr", max_batch_size=4)
    sizes: list[int] = []
    loaded = app.default.current
    real = loaded.model.predict

    def counting(data: Any, params: Any = None) -> Any:
        sizes.append(len(data))
        return real(data, params)

    object.__setattr__(loaded.model, "predict", counting)
    rows = [[5.1, 3.5, 1.4, 0.2]]

    async def main() -> list[tuple[int, Any]]:
        app.startup()
        try:
            return await asyncio.gather(
                *(_call(app, "/invocations", iris_split(rows)) for _ in range(10))
            )
        finally:
            await app.shutdown()

    results = asyncio.run(main())
    assert all(status == 200 for status, _ in results)
    assert sum(sizes) == 10
    assert max(sizes) <= 4


@pytest.mark.slow
def test_batching_over_http_gives_the_same_answers(
    start_server: StartServer, iris_array_model: Path
) -> None:
    server = start_server(iris_array_model, "--max-batch-size", "32", "--no-access-log")
    rng = np.random.default_rng(0)
    rows = rng.uniform(0, 7, size=(160, 4)).round(2)
    want = [int(v) for v in modelyard.load_model(iris_array_model).predict(rows)]

    def one(i: int) -> tuple[int, Any]:
        with httpx.Client(timeout=30) as client:
            body = {
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": rows[i].tolist()}
                ]
            }
            r = client.post(f"{server.url}/v2/models/iris-array/infer", json=body)
            return r.status_code, r.json()["outputs"][0]["data"][0]

    with ThreadPoolExecutor(16) as pool:
        got = list(pool.map(one, range(len(rows))))
    assert [s for s, _ in got] == [200] * len(rows)
    assert [p for _, p in got] == want
    health = httpx.get(f"{server.url}/health").json()["models"][0]
    assert health["batches"]["requests"] > 0  # 16 clients at once: some were combined
