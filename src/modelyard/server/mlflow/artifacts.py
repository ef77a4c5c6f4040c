"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/...``) and ``server-info``.

MLflow's client uploads each file of a run or a logged model with one PUT and
reads it back with GETs; it lists folders one level at a time. Here every PUT
is hashed by the server as it arrives and stored in the yard's
content-addressed store (a file already stored is not written again); the
file row names that hash, never one the client declared. Files of a
registered version are served read-only under ``registry/<name>/<version>/``.
Deleting files is refused (a version's files are pinned by its digest).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mimetypes
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import anyio.to_thread
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from modelyard._version import __version__
from modelyard.format.content import FileEntry
from modelyard.server._routing import ApiRoute, Call, json_response
from modelyard.server.access import PUBLIC, on_resource
from modelyard.server.errors import ApiError
from modelyard.server.mlflow import _find
from modelyard.server.mlflow._find import Target
from modelyard.server.mlflow.wire import In, file_listing
from modelyard.store.sql.logged import READY, SqlLoggedModels

__all__ = ["ROUTES", "files_of"]

A = "/api/2.0/mlflow-artifacts/artifacts"
#: an upload is held in memory up to this size, then spooled to a temporary file
_IN_MEMORY = 8 << 20


class ListQuery(In, kw_only=True):
    path: str | None = None


def files_of(call: Call, target: Target) -> list[FileEntry]:
    """Every file of the target's owner under ``target.rest`` (paths relative to the owner)."""
    if target.kind == "run":
        return call.state.metadata.list_artifacts(target.owner, target.rest)
    if target.kind == "logged":
        return SqlLoggedModels(call.state.metadata.db).files(target.owner, target.rest)
    assert target.version is not None
    version = call.state.metadata.get_model_version(target.owner, target.version)
    entries = _manifest_entries(call, version.digest)
    if not target.rest:
        return list(entries)
    return [e for e in entries if e.path.startswith(target.rest + "/")]


# A manifest never changes (it is named by its hash): MLflow's client GETs each file of
# a version in turn, and reading and parsing the manifest again for each one showed.
_MANIFESTS: dict[str, tuple[FileEntry, ...]] = {}
_MANIFESTS_KEPT = 256


def _manifest_entries(call: Call, digest: str) -> tuple[FileEntry, ...]:
    found = _MANIFESTS.get(digest)
    if found is None:
        from modelyard.store.trees import read_manifest

        found = read_manifest(call.state.artifacts, digest).entries
        if len(_MANIFESTS) >= _MANIFESTS_KEPT:
            with contextlib.suppress(RuntimeError, StopIteration):  # another thread's eviction
                _MANIFESTS.pop(next(iter(_MANIFESTS)), None)
        _MANIFESTS[digest] = found
    return found


def _file(call: Call, target: Target) -> FileEntry | None:
    if not target.rest:
        return None
    parent = target.rest.rpartition("/")[0]
    folder = Target(target.kind, target.owner, parent, target.experiment_id, target.version)
    found = [e for e in files_of(call, folder) if e.path == target.rest]
    return found[0] if found else None


def list_dir(call: Call) -> dict[str, Any]:
    """The files and folders directly under ``path`` (names only, as MLflow answers)."""
    target: Target = call.path["target"]
    files = file_listing(files_of(call, target), target.rest, full_paths=False)
    return {"files": files} if files else {}


async def get_file(call: Call) -> Response:
    """A file's bytes; a folder or a missing file is a 404 (the client probes folders so)."""
    target: Target = call.path["target"]
    entry = await anyio.to_thread.run_sync(_file, call, target)
    if entry is None:
        raise ApiError(404, "not_found", f"no file {call.path['path']!r}", field="path")
    kind = mimetypes.guess_type(entry.path)[0] or "application/octet-stream"
    headers = {"content-length": str(entry.size), "x-sha256": entry.sha256}
    if entry.size == 0:
        return Response(b"", 200, headers=headers, media_type=kind)
    chunks = call.state.artifacts.iter_bytes(entry.sha256, 0, entry.size)
    return StreamingResponse(chunks, 200, headers=headers, media_type=kind)


async def put_file(call: Call) -> Response:
    """Store one uploaded file of a run or of a logged model that is not READY yet."""
    target: Target = call.path["target"]
    if target.kind == "version":
        raise ApiError(
            400, "invalid_value", "a registered version's files cannot change", field="path"
        )
    if not target.rest:
        raise ApiError(400, "invalid_value", "the path names a folder, not a file", field="path")
    logged = SqlLoggedModels(call.state.metadata.db)
    if target.kind == "logged":
        found = await anyio.to_thread.run_sync(logged.get, target.owner)
        if found is not None and found.status == READY:
            raise ApiError(
                400,
                "invalid_value",
                f"logged model {target.owner} is finalized; its files cannot change",
                field="path",
            )
    entry = await _receive(call, target.rest)
    if target.kind == "run":
        await anyio.to_thread.run_sync(call.state.metadata.add_artifacts, target.owner, [entry])
    else:
        await anyio.to_thread.run_sync(logged.put_files, target.owner, [entry])
    call.audit("artifact.put", call.path["path"], sha256=entry.sha256, size=entry.size)
    return json_response({})


def delete_file(call: Call) -> None:
    """Refused: files are kept by digest for the versions that pin them."""
    raise ApiError(
        501,
        "not_implemented",
        "deleting artifacts is not supported: registered versions keep their files by digest",
    )


def server_info(call: Call) -> dict[str, Any]:
    """What MLflow's client probes before big transfers: no multipart here (uploads
    stream through the server, hashed on the way)."""
    return {
        "store_type": "SqlStore",
        "workspaces_enabled": False,
        "trace_archival_enabled": False,
        "multipart_uploads_enabled": False,
        "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False,
        "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
        "modelyard_version": __version__,
    }


async def _receive(call: Call, path: str) -> FileEntry:
    """The body, hashed as it arrives, stored by its sha256."""
    limit = call.state.settings.max_blob_bytes
    digest = hashlib.sha256()
    size = 0
    memory = io.BytesIO()
    spool: IO[bytes] | None = None
    try:
        try:
            async for chunk in call.request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "payload_too_large", f"a file may be at most {limit} bytes")
                digest.update(chunk)
                if spool is None and size > _IN_MEMORY:
                    # closed and removed in the finally below, after the store read it
                    spool = tempfile.NamedTemporaryFile(  # noqa: SIM115
                        prefix="modelyard-upload-", delete=False
                    )
                    spool.write(memory.getvalue())
                    memory = io.BytesIO()
                if spool is not None:
                    await anyio.to_thread.run_sync(spool.write, chunk)
                else:
                    memory.write(chunk)
        except ClientDisconnect:
            raise ApiError(400, "incomplete_body", "the upload ended before the body did") from None
        sha256 = digest.hexdigest()
        artifacts = call.state.artifacts
        if spool is None:
            data = memory.getvalue()
            await anyio.to_thread.run_sync(artifacts.put_bytes, data)
        else:
            spool.close()
            name = Path(spool.name)
            await anyio.to_thread.run_sync(lambda: artifacts.put_file(name, sha256=sha256))
        return FileEntry(path, size, sha256)
    finally:
        if spool is not None:
            spool.close()
            with contextlib.suppress(OSError):
                os.unlink(spool.name)


_PATH = _find.artifact_target("path")

ROUTES = [
    ApiRoute(
        A,
        list_dir,
        method="GET",
        access=on_resource("read", "artifact folder", _find.artifact_target("query.path")),
        query=ListQuery,
    ),
    ApiRoute(
        A + "/{path:path}", get_file, method="GET", access=on_resource("read", "artifact", _PATH)
    ),
    ApiRoute(
        A + "/{path:path}",
        put_file,
        method="PUT",
        access=on_resource("edit", "artifact", _PATH),
        raw_body=True,
    ),
    ApiRoute(
        A + "/{path:path}",
        delete_file,
        method="DELETE",
        access=on_resource("edit", "artifact", _PATH),
    ),
    ApiRoute("/api/3.0/mlflow/server-info", server_info, method="GET", access=PUBLIC),
]
