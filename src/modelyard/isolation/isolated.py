"""A model running in its own environment, behind the same ``predict`` as :class:`Model`.

>>> with IsolatedModel.start("models:/fraud@champion") as model:   # doctest: +SKIP
...     model.predict(df)

The URI is resolved and fetched here (so the digest is pinned by this
process); the environment comes from :func:`modelyard.isolation.envs.ensure_env`;
the model is loaded once in a child process of that environment's Python and
each ``predict`` is one round trip over its stdin/stdout pipes. Calls from
several threads are serialised. Schema errors raised in the child come back
as :class:`SchemaError`; other failures as :class:`WorkerError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from modelyard.errors import SchemaError, WorkerError
from modelyard.isolation import _wire
from modelyard.isolation.envs import Env, _clean_env, ensure_env

if TYPE_CHECKING:
    from modelyard.loading.resolve import ModelRef
    from modelyard.trust.policy import LoadTrust, TrustInput

_UNSET: Any = object()
#: how much of a model process's stderr is kept for the error when it dies
_STDERR_TAIL_BYTES = 64 * 1024
log = logging.getLogger("modelyard")


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
        ref: ModelRef | None = None,
        env_check: str = "warn",
        trust: TrustInput = None,
        verify: str = "auto",
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
        #: registry facts when the URI named a registered model
        self.name: str | None = ref.name if ref is not None else None
        self.version: int | None = ref.version if ref is not None else None
        self.alias: str | None = ref.alias if ref is not None else None
        self._config = read_config(model_config) if model_config is not None else None
        self._env_check = env_check
        # a list for the JSON header; the child applies both before it unpickles anything
        self._trust = trust if trust is None or isinstance(trust, str) else list(trust)
        # "required" was enforced by start() with the yard's copy of the signature, which
        # the child cannot see; the child still verifies what the directory holds
        self._verify = "auto" if verify == "required" else verify
        #: how the child trusted the model (its ``Model.trust``)
        self.trust: LoadTrust | None = None
        self._example: Any = _UNSET
        self._lock = threading.Lock()
        self._closed = False
        self._spawn()

    def _spawn(self) -> None:
        """Start the child and load the model there (the caller holds the lock, or is alone)."""
        read_end, write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [str(self.env.python), "-m", "modelyard.isolation._worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=write_end,
                env={**_clean_env(), "PYTHONNOUSERSITE": "1"},
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._stderr = _StderrPump(read_end)
        # The process ends with this object even when nobody calls close(): a served
        # version dropped after an alias moved is released by the last request using it.
        self._stop = weakref.finalize(self, _stop, self._proc, self._stderr)
        try:
            header = {
                "path": str(self.path),
                "model_config": self._config,
                "env": self._env_check,
                "trust": self._trust,
                "verify": self._verify,
            }
            reply = self._exchange(header)[0]
        except BaseException:
            self._stop()
            raise
        self.flavor: str = reply["flavor"]
        self.digest: str = reply["digest"]
        #: the environment report from inside the child (should be all ok)
        self.environment: dict[str, Any] = reply["environment"]
        if reply.get("trust"):
            from modelyard.trust.policy import LoadTrust

            facts = dict(reply["trust"])
            facts["entries"] = tuple(facts.get("entries") or ())
            self.trust = LoadTrust(**facts)

    @classmethod
    def start(
        cls,
        uri: str | os.PathLike[str],
        *,
        model_config: Mapping[str, Any] | str | None = None,
        env_root: Path | None = None,
        env_check: str = "warn",
        trust: TrustInput = None,
        verify: str = "auto",
    ) -> IsolatedModel:
        """Resolve and fetch ``uri``, get its environment (building it once), start the model.

        ``env_check`` is the environment check inside the child, as ``load_model(env=)``;
        ``trust`` and ``verify`` are ``load_model``'s, applied there too. A model that
        ``verify`` refuses is refused here, before its environment is built.
        """
        from modelyard.loading import signature_status
        from modelyard.loading.fetch import fetch
        from modelyard.loading.resolve import resolve

        ref = resolve(uri, verify=verify)
        local = fetch(ref)
        # the child sees only the directory; the yard's copy of the signature is checked here
        signature_status(local, verify=verify)
        env = ensure_env(local.path, root=env_root)
        return cls(
            local.path,
            env,
            model_config=model_config,
            uri=ref.uri,
            ref=ref,
            env_check=env_check,
            trust=trust,
            verify=verify,
        )

    @property
    def input_example(self) -> Any:
        """The saved input example (read here, on first access), or ``None``."""
        if self._example is _UNSET:
            from modelyard.format.example import load_typed_example

            schema = self.signature.inputs if self.signature is not None else None
            info = self.mlmodel.saved_input_example_info
            self._example = load_typed_example(self.path, info, schema)
        return self._example

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """The child's predictions: arrays, frames, dicts or plain values, as the model gave."""
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
        self._closed = True
        self._stop()

    def reopen(self) -> None:
        """Start a model process of this process's own, after a fork.

        A forked server worker inherits the parent's pipes; two processes writing
        to one child would interleave their messages, so each worker gets its own.
        """
        self._stop.detach()  # the inherited child is the parent's to stop
        # Our copies of its pipes (the thread reading its stderr did not survive the fork).
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._stderr.forget()
        self._lock = threading.Lock()  # a fork copies a lock in whatever state it was
        self._closed = False
        self._spawn()

    def __enter__(self) -> IsolatedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<IsolatedModel {self.uri!r} in {self.env.path}>"

    def _call(self, header: dict[str, Any], payload: bytes = b"") -> tuple[dict[str, Any], bytes]:
        with self._lock:
            if self._closed:
                raise WorkerError("the model process was closed", python=self.env.python)
            if not self._stop.alive or self._proc.poll() is not None:
                # It died (killed, out of memory) during an earlier call, which got the
                # error; later calls get a fresh process instead of the same error forever.
                log.warning("the model process of %s had stopped; starting a new one", self.uri)
                self._stop()
                self._spawn()
            return self._exchange(header, payload)

    def _exchange(
        self, header: dict[str, Any], payload: bytes = b""
    ) -> tuple[dict[str, Any], bytes]:
        proc = self._proc
        stdin: IO[bytes] | None = proc.stdin
        stdout: IO[bytes] | None = proc.stdout
        assert stdin is not None
        assert stdout is not None
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
        # Its pipes closed as it exited: give it a moment so the exit status can be told.
        try:
            code: int | None = self._proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        log = self._stderr.tail(ended=code is not None)
        status = f" (exit status {code})" if code is not None else ""
        return WorkerError(
            f"the model process stopped{status}: {what}", python=self.env.python, log=log
        )


def _stop(proc: subprocess.Popen[bytes], stderr: _StderrPump) -> None:
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
    stderr.close()


class _StderrPump:
    """Passes the model process's stderr on to ours, keeping its last bytes.

    What the model prints shows where a model loaded here would print it, and a
    long-lived server holds only a bounded tail for error reports. It works on
    raw file descriptors: a server forks while this thread is blocked reading,
    and a Python file object's lock, held by a thread the fork did not copy,
    would never be released in the child.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._tail = b""
        self._thread = threading.Thread(
            target=self._run, name="modelyard-model-stderr", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self._tail = (self._tail + chunk)[-_STDERR_TAIL_BYTES:]
            with contextlib.suppress(OSError):
                while chunk:
                    chunk = chunk[os.write(2, chunk) :]

    def tail(self, *, ended: bool) -> str:
        """The last output of the process; once it has ended, up to its very last byte."""
        if ended:
            self._thread.join(timeout=2)
        return self._tail.decode("utf-8", "replace")

    def close(self) -> None:
        """Wait for the last output (the process has ended), then close the pipe."""
        self._thread.join(timeout=2)
        # Closing it under a thread still reading could hand the number to another file.
        if not self._thread.is_alive():
            os.close(self._fd)

    def forget(self) -> None:
        """In a forked child: close our copy of the pipe (the reading thread is not here)."""
        with contextlib.suppress(OSError):
            os.close(self._fd)


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
