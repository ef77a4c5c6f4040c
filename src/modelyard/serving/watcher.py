"""Follow a moving reference (``models:/name@alias``, ``models:/name/latest``).

A background thread asks the registry every ``interval`` seconds which version
the reference points at (one resolve: a metadata lookup, no file is read).
When it changes, the new version is loaded and warmed up in that thread while
the old one keeps answering, then swapped in on the event loop. A version that
fails to load or to score its own input example is not swapped in: the old one
keeps serving, and ``/health`` and the log say why.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from modelyard.serving.slot import Loaded, ModelSlot

__all__ = ["AliasWatcher", "follows", "probe_uri"]

log = logging.getLogger("modelyard.serving")

# probe() -> (version, digest) the reference points at now
Probe = Callable[[], "tuple[Any, str | None]"]
# load() -> a loaded, warmed-up version
Load = Callable[[], Loaded]
#: after a version failed to load, retry it every this many polls (it may be a transient error)
RETRY_EVERY = 6
#: seconds to let requests on a replaced version finish before collecting it
DRAIN_S = 2.0


def follows(uri: str) -> bool:
    """Whether ``uri`` can point at another version later (an alias or ``latest``)."""
    from modelyard.uri import ModelsURI, parse_uri

    target = parse_uri(uri)
    return isinstance(target, ModelsURI) and (target.alias is not None or target.latest)


def probe_uri(uri: str) -> tuple[Any, str | None]:
    """The (version, digest) ``uri`` resolves to now: one registry lookup."""
    from modelyard.loading.resolve import resolve

    ref = resolve(uri)
    return ref.version, ref.digest


class AliasWatcher:
    """Polls one slot's reference and swaps in new versions."""

    def __init__(
        self,
        slot: ModelSlot,
        *,
        interval: float,
        loop: asyncio.AbstractEventLoop,
        load: Load,
        probe: Probe,
    ) -> None:
        self.slot = slot
        self.interval = interval
        self._loop = loop
        self._load = load
        self._probe = probe
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: tuple[Any, str | None] | None = None
        self._failed_polls = 0

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(
            target=self._run, name=f"modelyard-watch-{self.slot.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop polling; a load in progress is abandoned when it finishes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_once()

    def check_once(self) -> bool:
        """One poll; returns whether a new version was loaded and handed over."""
        slot = self.slot
        try:
            target = self._probe()
        except Exception as exc:
            slot.last_error = f"could not look up {slot.uri}: {exc}"
            log.warning("%s: %s", slot.name, slot.last_error)
            return False
        current = slot.current
        if _same(target, current):
            self._failed = None
            return False
        if target == self._failed:
            self._failed_polls += 1
            if self._failed_polls % RETRY_EVERY:
                return False
        log.info(
            "%s: %s now points at version %s; loading it in the background",
            slot.name,
            slot.uri,
            target[0],
        )
        try:
            new = self._load()
        except Exception as exc:
            self._failed = target
            self._failed_polls = 0
            slot.last_error = (
                f"version {target[0]} failed to load, version {current.version} keeps serving:"
                f" {type(exc).__name__}: {exc}"
            )
            log.error("%s: %s", slot.name, slot.last_error)
            return False
        if self._stop.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._swap, new)
        except RuntimeError:  # the loop closed while we were loading: shutting down
            return False
        self._failed = None
        self._refreeze()
        return True

    def _refreeze(self) -> None:
        # The server froze what it loaded at start (see server.serve). A replaced
        # version must become collectable: once its requests have had time to finish,
        # thaw, collect once (a one-off pause per alias move) and freeze the new state.
        if not gc.get_freeze_count() or self._stop.wait(DRAIN_S):
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _swap(self, new: Loaded) -> None:
        old = self.slot.swap(new)
        log.info(
            "%s: version %s (%s) answers now, after a %.2f s load; version %s released",
            self.slot.name,
            new.version,
            new.digest[:19],
            new.load_seconds,
            old.version,
        )
        weakref.finalize(old, log.info, "%s: version %s freed", self.slot.name, old.version)


def _same(target: tuple[Any, str | None], current: Loaded) -> bool:
    version, digest = target
    if digest is not None and digest != current.digest:
        return False
    if version is not None and current.model.version is not None:
        return str(version) == current.version
    return digest is not None
