"""Run ``modelyard server``: open the yard, check it has an admin, serve the API.

The server holds no state of its own: users, grants, the audit log and
idempotency keys are in the yard's database, blobs in its artifact store. Two
server processes (or machines) in front of one PostgreSQL database and one
bucket are one yard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from modelyard._asgi_run import TlsFiles, bind_socket, catch_stop_signals, run_prefork, run_uvicorn
from modelyard.errors import AlreadyExists, YardError
from modelyard.server.state import ServerSettings, ServerState
from modelyard.yard import Yard

__all__ = ["ServerOptions", "backfill_version_files", "init_admin", "run_server"]

log = logging.getLogger("modelyard.server")

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_ADMIN = "admin"


@dataclass(frozen=True)
class ServerOptions:
    """Everything ``modelyard server`` can be told."""

    yard: str | None = None
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    tls: TlsFiles | None = None
    #: make an admin (and print its token once) if the yard has no users yet
    init_admin: bool = False
    #: Host header values to answer to; ``None``: loopback names for a loopback bind,
    #: else any
    allowed_hosts: tuple[str, ...] | None = None
    settings: ServerSettings = field(default_factory=ServerSettings)


def init_admin(yard: Yard, name: str = _ADMIN) -> str:
    """Make user ``name`` an admin (creating them) and return a new token for them.

    The token is returned once: only its hash is stored.
    """
    state = ServerState.open(yard)
    try:
        state.auth.create_user(name, "admin", created_by="init-admin")
    except AlreadyExists:
        user = state.auth.get_user(name)
        if user.role != "admin" or user.disabled:
            raise YardError(
                f"user {name!r} exists and is a {'disabled ' if user.disabled else ''}"
                f"{user.role}; give another name to make an admin"
            ) from None
    _, secret = state.auth.create_token(name, name="init-admin")
    state.auth.record(None, "token.create", f"users/{name}", {"by": "init-admin"})
    return secret


def backfill_version_files(state: ServerState) -> int:
    """Record the file list of versions registered before the server kept them.

    Blob reads are authorised through these lists, so a version without one
    could not be downloaded through the server. Returns how many were filled.
    """
    from modelyard.store.trees import read_manifest

    done = 0
    while True:
        pending = state.auth.versions_without_files()
        if not pending:
            return done
        filled = 0
        for model_id, version, digest in pending:
            try:
                manifest = read_manifest(state.artifacts, digest)
            except Exception as exc:  # a broken version must not stop the server
                log.warning(
                    "version %s of model %s: cannot read its manifest (%s)", version, model_id, exc
                )
                continue
            state.auth.record_version_files(model_id, version, manifest.entries)
            filled += 1
        done += filled
        if not filled:
            return done


def run_server(options: ServerOptions, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the yard until SIGTERM / Ctrl-C."""
    settings = replace(options.settings, allowed_hosts=_allowed_hosts(options))
    yard = Yard(options.yard)
    state = ServerState.open(yard, settings)
    if not state.auth.has_users():
        if not options.init_admin:
            raise YardError(
                f"the yard at {yard.uri} has no users yet, so nobody could sign in: run "
                "`modelyard server init-admin --yard URI` once, or start with --init-admin"
            )
        secret = init_admin(yard)
        # Printed once, to the operator's terminal; it is stored nowhere but as a hash.
        log.warning("created user 'admin'; its token (shown this once): %s", secret)
    filled = backfill_version_files(state)
    if filled:
        log.info("recorded the file lists of %d older version(s)", filled)
    catch_stop_signals()
    sock = bind_socket(options.host, options.port)
    host, port = sock.getsockname()[:2]
    scheme = "https" if options.tls else "http"
    url = f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}"
    log.info("modelyard server: serving %s on %s (workers: %d)", yard.uri, url, options.workers)
    if "*" in settings.allowed_hosts and options.host not in _LOOPBACK:
        log.info("answering any Host header; pass --allowed-host NAME to refuse others")
    if on_ready is not None:
        on_ready(url)
    # Children open their own connections: none may be shared across the fork.
    yard.close()
    from modelyard.server.app import ServerApp

    def serve_one(_index: int = 0) -> None:
        run_uvicorn(ServerApp(state), sock, drain_seconds=30, tls=options.tls)

    try:
        if options.workers <= 1:
            serve_one()
        else:
            run_prefork(options.workers, serve_one)
    finally:
        sock.close()
        log.info("stopped")


def _allowed_hosts(options: ServerOptions) -> tuple[str, ...]:
    if options.allowed_hosts:
        return tuple(h.lower() for h in options.allowed_hosts)
    if options.host in _LOOPBACK:
        return tuple(sorted(_LOOPBACK))
    return ("*",)
