"""The main job, end to end: train, log, register, set @champion, load by alias, predict, serve.

Everything lands in an embedded yard in ./demo-yard (a SQLite database and a
blob folder; nothing to start). Run it again and a new version is registered
and @champion moves to it; `make clean` removes the yard.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import modelyard as my

DEMO_YARD = "demo-yard"


def main(yard_uri: str = DEMO_YARD) -> None:
    """The main job on ``yard_uri`` (the embedded ./demo-yard unless told otherwise)."""
    yard = my.set_yard(yard_uri)
    print(f"yard    {yard.uri} ({yard.kind})")
    X, y = load_iris(return_X_y=True, as_frame=True)

    with my.start_run(experiment="iris", run_name="logistic-regression") as run:
        estimator = LogisticRegression(max_iter=1000).fit(X, y)
        my.log_params({"max_iter": 1000})
        my.log_metric("accuracy", estimator.score(X, y))
        info = my.log_model(
            estimator, "model", registered_model_name="iris", input_example=X.head(3)
        )
    version = info.registered_version
    assert version is not None
    print(f"logged  {info.model_uri} ({info.digest[:19]}...)")
    print(f"registered iris v{version.version}")

    my.set_alias("iris", "champion", version.version)
    move = my.get_alias_history("iris", "champion")[-1]
    was = f" (was v{move.from_version})" if move.from_version else ""
    print(f"alias   models:/iris@champion -> v{version.version}{was}")

    model = my.load_model("models:/iris@champion")
    print(f"loaded  {model!r}")
    # log_model signed it with your default key (made on first use); load_model verified
    # that signature and scanned the pickle against the allow-list before unpickling it
    trust = model.trust
    if trust is None or trust.signature != "verified":
        raise SystemExit(f"the model's signature did not verify: {trust}")
    print(f"trust   signature verified: {trust.signer}, key {str(trust.key_id)[:19]}...")
    predictions = model.predict(X.head(5))
    print(f"predict {predictions.tolist()} for the first 5 rows (truth {y.head(5).tolist()})")
    print(f"run     {run.run_id}: accuracy {my.get_run(run.run_id).metrics['accuracy']:.3f}")
    serve_and_score(X.head(1), yard_uri)


def serve_and_score(row: object, yard_uri: str) -> None:
    """Serve @champion over HTTP, score one row the way a client would, stop the server."""
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli = Path(sys.executable).with_name("modelyard")
    server = subprocess.Popen(
        [str(cli), "serve", "models:/iris@champion", "--port", str(port), "--no-access-log"],
        env={**os.environ, "MODELYARD_URI": yard_uri},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ping").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not come up")
            time.sleep(0.2)
        body = {"dataframe_split": row.to_dict(orient="split")}  # type: ignore[attr-defined]
        body["dataframe_split"].pop("index")
        reply = httpx.post(f"{base}/invocations", json=body)
        print(
            f"serve   {base}/invocations -> {reply.status_code} {reply.json()} "
            f"(answered by v{reply.headers['x-model-version']})"
        )
        print(
            f"        same with curl: curl -s {base}/invocations "
            f"-H 'Content-Type: application/json' -d '{json.dumps(body)}'"
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
