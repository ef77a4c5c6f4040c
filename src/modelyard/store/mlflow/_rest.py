"""A running ``mlflow server``, read over its REST API and ``mlflow-artifacts`` proxy.

Credentials are MLflow's own: ``MLFLOW_TRACKING_USERNAME`` and
``MLFLOW_TRACKING_PASSWORD`` (Basic, which wins, as in MLflow's client), else
``MLFLOW_TRACKING_TOKEN`` (Bearer). Only GET requests are sent. Files are read
through the server's artifact proxy (``--serve-artifacts``); a download URI that
names another host is refused, so the credentials never travel to a host the
user did not name.
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import quote, urlencode, urlsplit

from modelyard.errors import (
    MlflowArtifactsRefused,
    MlflowSourceError,
    ModelVersionNotFound,
    RegisteredModelNotFound,
)
from modelyard.store.mlflow import (
    ArtifactFile,
    MlflowMetric,
    MlflowModel,
    MlflowRun,
    MlflowVersion,
)
from modelyard.store.rest._transport import Answer, Transport, TransportError

__all__ = ["RestSource", "credentials_header"]

API = "/api/2.0/mlflow"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_MAX_FILES = 100_000


def credentials_header() -> dict[str, str]:
    """The ``Authorization`` header MLflow's client would send, from its variables."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password is not None:
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"authorization": f"Basic {pair}"}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return {"authorization": f"Bearer {token}"} if token else {}


class RestSource:
    """An MLflow tracking server, read-only."""

    def __init__(self, url: str) -> None:
        base = url.split("+", 1)[1] if url.lower().startswith("mlflow+") else url
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MlflowSourceError(url, "an MLflow server URI is http(s)://host[:port]")
        self.base = base.rstrip("/")
        self.location = f"{parts.scheme}://{parts.hostname}" + (
            f":{parts.port}" if parts.port else ""
        )
        self._host = (parts.hostname, parts.port)
        self._prefix = parts.path.rstrip("/")
        self.transport = Transport(
            self.location, headers={**credentials_header(), "user-agent": "modelyard-import"}
        )
        self._experiments: dict[str, str] = {}

    # -- registry ------------------------------------------------------------------------

    def list_models(self) -> list[MlflowModel]:
        """Every registered model, by name."""
        out: list[MlflowModel] = []
        token: str | None = None
        while True:
            page = self._get("/registered-models/search", max_results=1000, page_token=token)
            out.extend(_model(m) for m in page.get("registered_models", []))
            token = page.get("next_page_token")
            if not token:
                return sorted(out, key=lambda m: m.name)

    def get_model(self, name: str) -> MlflowModel:
        """One registered model."""
        answer = self._get("/registered-models/get", missing=True, name=name)
        if answer is None:
            raise RegisteredModelNotFound(name)
        return _model(answer["registered_model"])

    def list_versions(self, name: str) -> list[MlflowVersion]:
        """The live versions of ``name``, lowest number first."""
        self.get_model(name)  # a missing model is a RegisteredModelNotFound, not []
        quoted = "'" + name.replace("'", "\\'") + "'"
        out: list[MlflowVersion] = []
        token: str | None = None
        while True:
            page = self._get(
                "/model-versions/search",
                filter=f"name = {quoted}",
                max_results=10000,
                page_token=token,
            )
            out.extend(self._version(v) for v in page.get("model_versions", []))
            token = page.get("next_page_token")
            if not token:
                return sorted(out, key=lambda v: v.version)

    def get_version(self, name: str, version: int) -> MlflowVersion:
        """One live version."""
        found = self._get("/model-versions/get", missing=True, name=name, version=str(version))
        if found is None:
            numbers = [v.version for v in self.list_versions(name)]
            raise ModelVersionNotFound(name, version, versions=numbers)
        return self._version(found["model_version"])

    # -- runs ----------------------------------------------------------------------------

    def get_run(self, run_id: str) -> MlflowRun | None:
        """A run with params, its whole metric history and tags."""
        found = self._get("/runs/get", missing=True, run_id=run_id)
        if found is None:
            return None
        run = found["run"]
        info, data = run.get("info", {}), run.get("data", {})
        metrics: list[MlflowMetric] = []
        for key in sorted({m["key"] for m in data.get("metrics", [])}):
            history = self._get(
                "/metrics/get-history", run_id=run_id, metric_key=key, max_results=25000
            )
            metrics.extend(
                MlflowMetric(
                    key, float(m["value"]), int(m.get("step", 0)), int(m.get("timestamp", 0))
                )
                for m in history.get("metrics", [])
            )
        metrics = sorted(set(metrics), key=lambda m: (m.key, m.step, m.timestamp))
        return MlflowRun(
            run_id=run_id,
            experiment=self._experiment(str(info.get("experiment_id", "0"))),
            name=info.get("run_name") or None,
            status=str(info.get("status") or "FINISHED"),
            start_ms=info.get("start_time"),
            end_ms=info.get("end_time"),
            user=info.get("user_id") or None,
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            metrics=tuple(metrics),
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
        )

    # -- files ---------------------------------------------------------------------------

    def list_files(self, version: MlflowVersion) -> list[ArtifactFile]:
        """Every file of the version, listed through the artifact proxy (recursively)."""
        root = self._proxied(version)
        out: list[ArtifactFile] = []
        pending = [""]
        while pending:
            rel = pending.pop()
            listing = self._artifacts_get(version, f"{root}/{rel}".rstrip("/"))
            for entry in listing.get("files", []):
                name = str(entry.get("path", ""))
                base = name.rsplit("/", 1)[-1]
                if base in ("", ".", "..") or "\\" in base:
                    raise MlflowArtifactsRefused(
                        self.location, version.name, version.version, name, "an unsafe file name"
                    )
                path = f"{rel}/{base}" if rel else base
                if entry.get("is_dir"):
                    pending.append(path)
                else:
                    size = entry.get("file_size")
                    out.append(ArtifactFile(path, int(size) if size is not None else None))
            if len(out) > _MAX_FILES:
                raise MlflowSourceError(
                    self.location, f"{version.name} version {version.version}: too many files"
                )
        if not out:
            raise MlflowSourceError(
                self.location,
                f"{version.name} version {version.version}: its artifacts are missing "
                f"(nothing at {version.storage!r})",
            )
        return sorted(out, key=lambda f: f.path)

    @contextmanager
    def open_file(self, version: MlflowVersion, path: str) -> Iterator[IO[bytes]]:
        """One file of the version, streamed from the artifact proxy."""
        target = f"{self._prefix}{ARTIFACTS}/{quote(self._proxied(version) + '/' + path)}"
        try:
            with self.transport.stream("GET", target) as answer:
                if answer.status_code != 200:
                    answer.content  # noqa: B018 - frees the connection
                    self._raise(answer, f"{version.name} version {version.version}: {path!r}")
                yield io.BufferedReader(_Stream(answer.iter_bytes()), 1 << 20)
        except TransportError as exc:
            raise self._unreachable(exc) from None

    def close(self) -> None:
        """Close idle connections."""
        self.transport.close()

    # -- helpers ---------------------------------------------------------------------------

    def _proxied(self, version: MlflowVersion) -> str:
        """The version's path under the server's artifact proxy, or a refusal."""
        where = version.storage
        parts = urlsplit(where)
        if parts.scheme != "mlflow-artifacts":
            raise MlflowArtifactsRefused(
                self.location,
                version.name,
                version.version,
                where,
                "the server does not serve these files through its artifact proxy "
                "(start it with --serve-artifacts, or import from its database and folder)",
            )
        if parts.netloc and (parts.hostname, parts.port) != self._host:
            raise MlflowArtifactsRefused(
                self.location,
                version.name,
                version.version,
                where,
                "the files are on another server; credentials are not sent there",
            )
        path = parts.path.strip("/")
        if any(seg in ("", ".", "..") for seg in path.split("/")):
            raise MlflowArtifactsRefused(
                self.location, version.name, version.version, where, "an unsafe artifact path"
            )
        return path

    def _version(self, v: dict[str, Any]) -> MlflowVersion:
        name, number = str(v["name"]), int(v["version"])
        found = self._get(
            "/model-versions/get-download-uri", name=name, version=str(number), missing=True
        )
        storage = (found or {}).get("artifact_uri") or str(v.get("source", ""))
        return MlflowVersion(
            name=name,
            version=number,
            source=str(v.get("source", "")),
            run_id=v.get("run_id") or None,
            status=str(v.get("status") or "READY"),
            description=v.get("description") or None,
            created_ms=v.get("creation_timestamp"),
            storage=str(storage),
            created_by=v.get("user_id") or None,
            tags={t["key"]: t.get("value", "") for t in v.get("tags", [])},
        )

    def _experiment(self, experiment_id: str) -> str:
        if experiment_id not in self._experiments:
            found = self._get("/experiments/get", missing=True, experiment_id=experiment_id)
            name = (found or {}).get("experiment", {}).get("name") or "Default"
            self._experiments[experiment_id] = str(name)
        return self._experiments[experiment_id]

    def _artifacts_get(self, version: MlflowVersion, path: str) -> dict[str, Any]:
        target = f"{self._prefix}{ARTIFACTS}?{urlencode({'path': path})}"
        answer = self._send(target)
        if answer.status_code != 200:
            self._raise(answer, f"{version.name} version {version.version}: listing {path!r}")
        return _json(answer)

    def _get(self, route: str, *, missing: bool = False, **query: Any) -> Any:
        params = {k: v for k, v in query.items() if v is not None}
        target = f"{self._prefix}{API}{route}" + (f"?{urlencode(params)}" if params else "")
        answer = self._send(target)
        if answer.status_code == 404 and missing:
            return None
        if answer.status_code == 400 and missing and b"RESOURCE_DOES_NOT_EXIST" in answer.content:
            return None
        if answer.status_code != 200:
            self._raise(answer, route.lstrip("/"))
        return _json(answer)

    def _send(self, target: str) -> Answer:
        try:
            return self.transport.get(target)
        except TransportError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: TransportError) -> MlflowSourceError:
        why = (
            "connection refused (is `mlflow server` running there?)" if exc.refused else exc.reason
        )
        return MlflowSourceError(self.location, f"unreachable: {why}")

    def _raise(self, answer: Answer, what: str) -> None:
        status = answer.status_code
        message = _message(answer)
        if status in (401, 403):
            hint = (
                "check MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME/PASSWORD"
                if credentials_header()
                else "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME/PASSWORD"
            )
            word = "refused the credentials" if status == 401 else "denied access"
            raise MlflowSourceError(
                self.location, f"the server {word} ({status}) for {what}: {hint}", status=status
            )
        if status == 404:
            raise MlflowSourceError(
                self.location, f"{what}: not found (404){message}", status=status
            )
        raise MlflowSourceError(self.location, f"{what}: HTTP {status}{message}", status=status)


class _Stream(io.RawIOBase):
    """A raw stream over an iterator of byte chunks (a streamed response body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._left:
            self._left = next(self._chunks, b"")
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def _model(m: dict[str, Any]) -> MlflowModel:
    return MlflowModel(
        name=str(m["name"]),
        description=m.get("description") or None,
        created_ms=m.get("creation_timestamp"),
        tags={t["key"]: t.get("value", "") for t in m.get("tags", [])},
        aliases={a["alias"]: int(a["version"]) for a in m.get("aliases", [])},
    )


def _json(answer: Answer) -> dict[str, Any]:
    try:
        data = json.loads(answer.content or b"{}")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise MlflowSourceError("server", "answered with something that is not JSON")
    return data


def _message(answer: Answer) -> str:
    try:
        data = json.loads(answer.content)
    except ValueError:
        return ""
    if isinstance(data, dict) and data.get("message"):
        return f": {str(data['message'])[:300]}"
    return ""
