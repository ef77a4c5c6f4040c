"""Pinned versions a client has resolved before: ``models:/name/7`` costs no request.

A registered version never changes its files, so once the server said
``fraud/7`` is ``sha256:…`` the client keeps that answer (under the model
cache, ``pins/``) and a later load of ``models:/fraud/7`` goes straight to the
local, verified copy. Aliases and ``latest`` move, so they are always asked.
What a pin cannot know: a version deleted on the server, or a name deleted and
made again, still loads the files it named here (they are still the files of
that digest, checked as always); ``modelyard`` loads by alias are unaffected.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from modelyard._stamps import read_json, write_atomic
from modelyard.store.entities import ResolvedVersion

__all__ = ["PinCache"]


class PinCache:
    """``(server, name, version) -> digest`` answers, one small file each."""

    def __init__(self, cache_root: Path) -> None:
        self.root = cache_root / "pins"

    def _file(self, server: str, name: str, version: int) -> Path:
        key = hashlib.sha256(f"{server}\0{name}\0{version}".encode()).hexdigest()[:32]
        return self.root / f"{key}.json"

    def get(self, server: str, name: str, version: int) -> ResolvedVersion | None:
        """The remembered answer, if any."""
        data = read_json(self._file(server, name, version))
        if not isinstance(data, dict) or data.get("name") != name or data.get("version") != version:
            return None
        digest, run_id = data.get("digest"), data.get("run_id")
        if not isinstance(digest, str) or not digest.startswith("sha256:"):
            return None
        return ResolvedVersion(name, version, digest, run_id if isinstance(run_id, str) else None)

    def put(self, server: str, found: ResolvedVersion) -> None:
        """Remember an answer (a read-only cache only costs the next load a request)."""
        with contextlib.suppress(OSError):
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(
                self._file(server, found.name, found.version),
                json.dumps(
                    {
                        "name": found.name,
                        "version": found.version,
                        "digest": found.digest,
                        "run_id": found.run_id,
                    }
                ),
            )
