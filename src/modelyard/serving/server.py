"""Run the scoring server: load every model once, then serve from one or more workers.

With ``workers > 1`` the models are loaded (and warmed up) in the parent
process before it forks, so the workers share the loaded weights through
copy-on-write pages instead of each loading its own copy as MLflow's uvicorn
workers do. The listening socket is bound once in the parent and inherited.

SIGTERM or Ctrl-C drains: each worker stops accepting connections, finishes
the requests in flight (up to the request timeout) and exits; the parent waits
for its workers and exits 0.
"""

from __future__ import annotations

import gc
import logging
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelyard._asgi_run import bind_socket, catch_stop_signals, run_prefork, run_uvicorn
from modelyard.serving._access_log import AccessLog
from modelyard.serving.app import AppSettings, ScoringApp
from modelyard.serving.slot import Loaded, ModelSlot, check_name, load_served, served_name
from modelyard.serving.watcher import follows

__all__ = ["ServeOptions", "bind_socket", "build_app", "load_all", "serve"]

log = logging.getLogger("modelyard.serving")


@dataclass(frozen=True)
class ServeOptions:
    """Everything ``modelyard serve`` can be told."""

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    default: str | None = None
    model_config: Mapping[str, Any] | str | None = None
    env: str = "warn"
    #: "local": this environment; "uv": each model in one built from its requirements
    env_manager: str = "local"
    access_log: bool = True
    #: extra globals to allow, or "all" (``load_model(trust=)``)
    trust: str | tuple[str, ...] | None = None
    #: "auto", "required" or "off" (``load_model(verify=)``)
    verify: str = "auto"
    settings: AppSettings = field(default_factory=AppSettings)


def parse_targets(targets: Sequence[str]) -> list[tuple[str, str]]:
    """``URI`` or ``NAME=URI`` arguments -> (name, uri), names unique."""
    out: list[tuple[str, str]] = []
    for text in targets:
        name, sep, uri = text.partition("=")
        if sep and name and "/" not in name and ":" not in name:
            check_name(name)
        else:
            name, uri = served_name(text), text
        if any(n == name for n, _ in out):
            raise ValueError(f"two models would be served as {name!r}; name them: NAME=URI")
        out.append((name, uri))
    return out


def load_all(targets: Sequence[tuple[str, str]], options: ServeOptions) -> list[ModelSlot]:
    """Load and warm up every model, logging one line each."""
    slots = []
    for name, uri in targets:
        loaded = _load(uri, name, options)
        warm = (
            f", warm-up {loaded.warmup_seconds * 1000:.1f} ms"
            if loaded.warmup_seconds is not None
            else ", no input example to warm up with"
        )
        moving = follows(uri) and options.settings.poll_interval > 0
        log.info(
            "model %s: version %s, digest %s, flavor %s, loaded in %.2f s%s%s",
            name,
            loaded.version,
            loaded.digest,
            loaded.flavor,
            loaded.load_seconds,
            warm,
            f"; following {uri}" if moving else "",
        )
        slots.append(ModelSlot(name, uri, loaded, follows=moving))
    return slots


def _load(uri: str, name: str, options: ServeOptions) -> Loaded:
    return load_served(
        uri,
        name,
        model_config=options.model_config,
        env=options.env,
        env_manager=options.env_manager,
        trust=options.trust,
        verify=options.verify,
    )


def build_app(slots: Sequence[ModelSlot], options: ServeOptions) -> ScoringApp:
    """The ASGI app over loaded slots (one per worker process)."""

    def reload(slot: ModelSlot) -> Loaded:
        return _load(slot.uri, slot.name, options)

    return ScoringApp(
        slots,
        default=options.default,
        settings=options.settings,
        access_log=AccessLog(sys.stdout) if options.access_log else None,
        reload=reload,
    )


def serve(
    targets: Sequence[str],
    options: ServeOptions,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Load ``targets`` and serve them until SIGTERM / Ctrl-C."""
    pairs = parse_targets(targets)
    if options.default is not None and options.default not in {n for n, _ in pairs}:
        raise ValueError(
            f"--default {options.default!r} is not one of the served names {[n for n, _ in pairs]}"
        )
    slots = load_all(pairs, options)
    catch_stop_signals()
    sock = bind_socket(options.host, options.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    default = options.default or slots[0].name
    log.info(
        "serving %s on %s (/invocations -> %s; workers: %d)",
        ", ".join(s.name for s in slots),
        url,
        default,
        options.workers,
    )
    if on_ready is not None:
        on_ready(url)
    # Everything loaded so far lives as long as the server: keep it out of the cyclic
    # GC, whose full collections would otherwise walk every object of pandas, sklearn
    # and the model (tens of ms) in the middle of requests; in pre-forked workers it
    # also keeps the GC from touching, and so copying, the shared pages.
    gc.collect()
    gc.freeze()
    try:
        if options.workers <= 1:
            _run_worker(sock, slots, options)
        else:
            _prefork(sock, slots, options)
    finally:
        sock.close()


def _run_worker(sock: socket.socket, slots: Sequence[ModelSlot], options: ServeOptions) -> None:
    app = build_app(slots, options)
    run_uvicorn(app, sock, drain_seconds=int(options.settings.timeout) + 5)
    log.info("stopped")


def _own_model_processes(slots: Sequence[ModelSlot]) -> None:
    """In a forked worker: start (and warm up) its own process for each isolated model."""
    from modelyard.isolation.isolated import IsolatedModel
    from modelyard.serving.slot import warm_up_model

    for slot in slots:
        model = slot.current.model
        if isinstance(model, IsolatedModel):
            model.reopen()
            warm_up_model(model, slot.name)


def _release_model_processes(slots: Sequence[ModelSlot]) -> None:
    from modelyard.isolation.isolated import IsolatedModel

    for slot in slots:
        model = slot.current.model
        if isinstance(model, IsolatedModel):
            model.close()


def _prefork(sock: socket.socket, slots: Sequence[ModelSlot], options: ServeOptions) -> None:
    def child(index: int) -> None:  # pragma: no cover - runs in the child
        _own_model_processes(slots)
        _run_worker(sock, slots, options)

    # Models in their own environments were started here to check them before
    # listening; every worker then runs its own copies, so these would only idle.
    run_prefork(options.workers, child, after_spawn=lambda: _release_model_processes(slots))
