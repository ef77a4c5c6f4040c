"""Real server processes on loopback ports: ``modelyard serve`` and ``modelyard server``.

``ServerProcess(args)`` runs ``modelyard serve ... --port 0`` (or another
``command``) in a subprocess, reads the address it chose from its log, and
stops it (SIGTERM, then SIGKILL of its whole process group after a bound).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
_URL = re.compile(r"serving .* on (https?://127\.0\.0\.1:\d+)")


class ServerProcess:
    """A running ``modelyard serve`` (or ``command``) subprocess."""

    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, *, command: str = "serve"
    ) -> None:
        cmd = [sys.executable, "-c", "from modelyard.cli import main; main()", command, *args]
        if "--port" not in args:
            cmd += ["--port", "0"]
        full_env = {**os.environ, **(env or {})}
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            # its own process group, so a stop that times out can kill the workers too
            start_new_session=True,
        )
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        self._pumps = [
            threading.Thread(target=self._pump_err, daemon=True),
            threading.Thread(target=self._pump_out, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()
        if not self._ready.wait(START_TIMEOUT_S) or not self.url:
            self.stop()
            raise AssertionError("server did not start:\n" + self.log)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line)
            m = _URL.search(line)
            if m and not self.url:
                self.url = m.group(1)
                self._ready.set()
        self._ready.set()  # exited before serving

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)

    @property
    def log(self) -> str:
        """Everything the server wrote to stderr so far."""
        return "".join(self.stderr_lines)

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> str:
        """Wait until a stderr line matches ``pattern``; returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.stderr_lines):
                if rx.search(line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no log line matching {pattern!r}:\n{self.log}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the server; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # Workers and model processes outlive a killed parent and keep its
                # pipes open (a pump would never see their end): kill them all.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(STOP_TIMEOUT_S)
        for pump in self._pumps:
            pump.join(5)
        if not any(pump.is_alive() for pump in self._pumps):
            # closing a pipe a pump still reads from would block on its buffer's lock
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
        return self.proc.returncode


StartServer = Callable[..., ServerProcess]


def _servers() -> Iterator[StartServer]:
    """A ``start`` function; every server it started is stopped when the caller resumes it."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess([str(a) for a in args], env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start servers for one test; all are stopped at its end."""
    yield from _servers()


@pytest.fixture(scope="module")
def module_server() -> Iterator[StartServer]:
    """Like ``start_server`` but shared by a module's tests."""
    yield from _servers()
