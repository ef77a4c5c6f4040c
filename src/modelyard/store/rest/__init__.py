"""A yard reached over HTTP: ``MODELYARD_URI=http(s)://host:port`` (a ``modelyard server``).

Registered for the yard URI schemes ``http`` and ``https``. Both stores share
one :class:`~modelyard.store.rest._http.HttpSession` (one connection pool, the
token from ``MODELYARD_TOKEN``). :mod:`modelyard.store.rest.wire` is the wire
format, shared with the server.
"""

from __future__ import annotations

from modelyard.store import Stores, StoreSpec

__all__ = ["open_stores"]


def open_stores(spec: StoreSpec) -> Stores:
    """Open the REST metadata store and the HTTP artifact store of a yard server."""
    from modelyard.store.rest._http import HttpSession
    from modelyard.store.rest.artifacts import HttpArtifactStore
    from modelyard.store.rest.metadata import RestMetadataStore

    session = HttpSession(spec.database_url)
    return Stores(metadata=RestMetadataStore(session), artifacts=HttpArtifactStore(session))
