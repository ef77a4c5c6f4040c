"""A model running in its own environment, behind the same ``predict`` as :class:`Model`.

>>> with IsolatedModel.start("models:/fraud@champion") as model:   # doctest: +SKIP
...     model.predict(df)

The URI is resolved and fetched here (so the digest is pinned by this
process); the environment comes from :func:`modelyard.batch.envs.ensure_env`;
the model is loaded once in a child process of that environment's Python and
each ``predict`` is one round trip over its stdin/stdout pipes. Calls from
several threads are serialised. Schema errors raised in the child come back
as :class:`SchemaError`; other failures as :class:`WorkerError`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from modelyard.batch import _wire
from modelyard.batch.envs import Env, _clean_env, ensure_env
from modelyard.errors import SchemaError, WorkerError


class IsolatedModel:
    """A model loaded in a child process of its own environment."""

    #: the scoring loop may hand Arrow tables straight through
    accepts_arrow = True

    def __init__(
        self,
        path: Path,
        env: Env,
        *,
        model_config: Mapping[str, Any] | str | None = None,
        uri: str | None = None,
    ) -> None:
        from modelyard.format.mlmodel import MLmodel
        from modelyard.format.signature import Signature
        from modelyard.loading.configure import read_config

        self.path = path
        self.env = env
        self.uri = uri or str(path)
        self.mlmodel = MLmodel.read(path)
        block = self.mlmodel.signature
        self.signature = Signature.from_mlmodel(block) if block else None
        config = read_config(model_config) if model_config is not None else None
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            [str(env.python), "-m", "modelyard.batch._worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**_clean_env(), "PYTHONNOUSERSITE": "1"},
        )
        try:
            reply = self._call({"path": str(path), "model_config": config})[0]
        except BaseException:
            self.close()
            raise
        self.flavor: str = reply["flavor"]
        self.digest: str = reply["digest"]
        #: the environment report from inside the child (should be all ok)
        self.environment: dict[str, Any] = reply["environment"]

    @classmethod
    def start(
        cls,
        uri: str | os.PathLike[str],
        *,
        model_config: Mapping[str, Any] | str | None = None,
        env_root: Path | None = None,
    ) -> IsolatedModel:
        """Resolve and fetch ``uri``, get its environment (building it once), start the model."""
        from modelyard.loading.fetch import fetch
        from modelyard.loading.resolve import resolve

        ref = resolve(uri)
        local = fetch(ref)
        env = ensure_env(local.path, root=env_root)
        return cls(local.path, env, model_config=model_config, uri=ref.uri)

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """Predictions from the child: arrays, Series or DataFrames, as the model returned."""
        kind, extra, payload = _wire.encode(data)
        header = {"op": "predict", "kind": kind, "extra": extra, "params": params}
        reply, body = self._call(header, payload)
        return _wire.decode(reply["kind"], reply.get("extra"), body)

    def versions(self, *packages: str) -> dict[str, Any]:
        """Python and package versions inside the environment (``None``: not installed)."""
        reply, _ = self._call({"op": "versions", "packages": list(packages)})
        return {"python": reply["python"], **reply["versions"]}

    def close(self) -> None:
        """Stop the child (closing its stdin ends it) and release its files."""
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(OSError):  # a dead child: nothing left to flush to
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self._stderr.close()

    def __enter__(self) -> IsolatedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<IsolatedModel {self.uri!r} in {self.env.path}>"

    def _call(self, header: dict[str, Any], payload: bytes = b"") -> tuple[dict[str, Any], bytes]:
        proc = self._proc
        stdin: IO[bytes] | None = proc.stdin
        stdout: IO[bytes] | None = proc.stdout
        assert stdin is not None
        assert stdout is not None
        with self._lock:
            try:
                _wire.send(stdin, header, payload)
                message = _wire.receive(stdout)
            except (BrokenPipeError, EOFError, OSError) as exc:
                raise self._died(f"{type(exc).__name__}: {exc}") from exc
        if message is None:
            raise self._died("it exited")
        reply, body = message
        if not reply.get("ok"):
            raise _remote_error(reply.get("error") or {}, self.env.python)
        return reply, body

    def _died(self, what: str) -> WorkerError:
        code = self._proc.poll()
        self._stderr.seek(0)
        log = self._stderr.read().decode("utf-8", "replace")
        status = f" (exit status {code})" if code is not None else ""
        return WorkerError(
            f"the model process stopped{status}: {what}", python=self.env.python, log=log
        )


def _remote_error(error: Mapping[str, Any], python: Path) -> Exception:
    kind = str(error.get("type") or "Exception")
    message = str(error.get("message") or "")
    if kind == "SchemaError":
        return SchemaError(
            message,
            column=error.get("column"),
            expected=error.get("expected"),
            received=error.get("received"),
        )
    return WorkerError(f"{kind}: {message}", python=python, remote_type=kind)
