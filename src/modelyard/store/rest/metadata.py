"""The metadata store of a yard reached over HTTP: every call is one API request.

:class:`RestMetadataStore` satisfies :class:`~modelyard.store.MetadataStore`,
so tracking, the registry, loading and the CLI work on
``MODELYARD_URI=http://host:port`` unchanged. The server decides who acted
(from the token), so the ``user=`` / ``created_by=`` arguments are not sent;
nor is a version's file list, which the server reads from its own manifest.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.format.content import FileEntry
from modelyard.store.entities import (
    AliasChange,
    AliasSequence,
    Experiment,
    Metric,
    ModelVersion,
    RegisteredModel,
    ResolvedVersion,
    Run,
    to_millis,
)
from modelyard.store.rest import wire
from modelyard.store.rest._http import HttpSession, seg

if TYPE_CHECKING:
    from modelyard.trust.admission import SigningPolicy

__all__ = ["RestMetadataStore"]

_PAGE = {"models": 1000, "versions": 10000, "runs": 5000}


class RestMetadataStore:
    """Experiments, runs and the registry of a ``modelyard server``."""

    def __init__(self, session: HttpSession) -> None:
        self.session = session

    @property
    def location(self) -> str:
        """The server's URL."""
        return self.session.base_url

    def __repr__(self) -> str:
        return f"RestMetadataStore({self.location!r})"

    def schema_revision(self) -> str | None:
        """The schema revision of the server's database."""
        found = self.session.request("GET", "/version").json()
        return str(found.get("schema")) if found.get("schema") else None

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()

    def after_fork(self) -> None:
        """In a forked child: new connections."""
        self.session.after_fork()

    # -- registry ----------------------------------------------------------------------

    def create_registered_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        """Create a registered model; :class:`AlreadyExists` unless ``exist_ok``."""
        body = {
            "name": name,
            "description": description,
            "tags": dict(tags or {}),
            "exist_ok": exist_ok,
        }
        return wire.model_in(self.session.api("POST", "/models", json=body, into=wire.ModelOut))

    def get_registered_model(self, name: str) -> RegisteredModel:
        """One registered model."""
        return wire.model_in(self.session.api("GET", f"/models/{seg(name)}", into=wire.ModelOut))

    def search_registered_models(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 100,
    ) -> list[RegisteredModel]:
        """Registered models matching ``filter_string`` (pages fetched as needed)."""
        rows = self._pages("/models", "models", filter_string, order_by, max_results)
        return [wire.model_in(msgspec_convert(r, wire.ModelOut)) for r in rows]

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        """Rename a registered model."""
        return wire.model_in(
            self.session.api(
                "POST",
                f"/models/{seg(name)}/rename",
                json={"new_name": new_name},
                into=wire.ModelOut,
            )
        )

    def update_registered_model(self, name: str, description: str | None) -> RegisteredModel:
        """Set a registered model's description."""
        return wire.model_in(
            self.session.api(
                "PATCH",
                f"/models/{seg(name)}",
                json={"description": description},
                into=wire.ModelOut,
            )
        )

    def delete_registered_model(self, name: str) -> None:
        """Delete a registered model."""
        self.session.api("DELETE", f"/models/{seg(name)}")

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        """Set a tag on a registered model."""
        self.session.api("PUT", f"/models/{seg(name)}/tags/{seg(key)}", json={"value": value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Remove a tag from a registered model."""
        self.session.api("DELETE", f"/models/{seg(name)}/tags/{seg(key)}")

    def create_model_version(
        self,
        name: str,
        *,
        digest: str,
        source: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        created_by: str | None = None,
        files: Sequence[FileEntry] | None = None,
    ) -> ModelVersion:
        """A new version; a retried request never makes two (it carries an idempotency key)."""
        body = {
            "digest": digest,
            "source": source,
            "run_id": run_id,
            "description": description,
            "tags": dict(tags or {}),
        }
        return wire.version_in(
            self.session.api(
                "POST", f"/models/{seg(name)}/versions", json=body, into=wire.VersionOut
            )
        )

    def import_model_version(
        self,
        name: str,
        version: int,
        *,
        digest: str,
        source: str,
        run_id: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        created_by: str | None = None,
        files: Sequence[FileEntry] | None = None,
        created_at: int | None = None,
    ) -> ModelVersion:
        """Version ``version`` with that number: a PUT, so a retry returns the same version."""
        body = {
            "digest": digest,
            "source": source,
            "run_id": run_id,
            "description": description,
            "tags": dict(tags or {}),
            "created_at": created_at,
        }
        return wire.version_in(
            self.session.api(
                "PUT", f"/models/{seg(name)}/versions/{version}", json=body, into=wire.VersionOut
            )
        )

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version."""
        return wire.version_in(
            self.session.api("GET", f"/models/{seg(name)}/versions/{version}", into=wire.VersionOut)
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at."""
        return wire.version_in(
            self.session.api(
                "GET", f"/models/{seg(name)}/aliases/{seg(alias)}", into=wire.VersionOut
            )
        )

    def resolve(
        self, name: str, *, version: int | None = None, alias: str | None = None
    ) -> ResolvedVersion:
        """Name + version, name + alias, or the latest version: one request."""
        params = {"version": version, "alias": alias}
        return wire.resolved_in(
            self.session.api(
                "GET", f"/models/{seg(name)}/resolve", params=params, into=wire.ResolvedOut
            )
        )

    def search_model_versions(
        self,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[ModelVersion]:
        """Versions matching ``filter_string`` (pages fetched as needed)."""
        rows = self._pages("/versions", "versions", filter_string, order_by, max_results)
        return [wire.version_in(msgspec_convert(r, wire.VersionOut)) for r in rows]

    def update_model_version(
        self, name: str, version: int, description: str | None
    ) -> ModelVersion:
        """Set a version's description."""
        return wire.version_in(
            self.session.api(
                "PATCH",
                f"/models/{seg(name)}/versions/{version}",
                json={"description": description},
                into=wire.VersionOut,
            )
        )

    def delete_model_version(self, name: str, version: int, *, user: str | None = None) -> None:
        """Delete a version (the server records who)."""
        self.session.api("DELETE", f"/models/{seg(name)}/versions/{version}")

    def set_model_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        """Set a tag on a version."""
        self.session.api(
            "PUT", f"/models/{seg(name)}/versions/{version}/tags/{seg(key)}", json={"value": value}
        )

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Remove a tag from a version."""
        self.session.api("DELETE", f"/models/{seg(name)}/versions/{version}/tags/{seg(key)}")

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        user: str | None = None,
        record: str | None = None,
    ) -> None:
        """Point an alias at a version (the server records who moved it)."""
        body: dict[str, Any] = {"version": version}
        if record is not None:
            body["record"] = record
        self.session.api("PUT", f"/models/{seg(name)}/aliases/{seg(alias)}", json=body)

    def alias_sequence(self, name: str, alias: str) -> AliasSequence:
        """The yard's id and the sequence of the alias's last move."""
        found = self.session.api("GET", f"/models/{seg(name)}/aliases/{seg(alias)}/sequence")
        return AliasSequence(found.get("yard_id"), int(found.get("sequence") or 0))

    def delete_alias(self, name: str, alias: str, *, user: str | None = None) -> None:
        """Remove an alias."""
        self.session.api("DELETE", f"/models/{seg(name)}/aliases/{seg(alias)}")

    def get_alias_history(self, name: str, alias: str) -> list[AliasChange]:
        """Every move of an alias, oldest first."""
        found = self.session.api("GET", f"/models/{seg(name)}/aliases/{seg(alias)}/history")
        return [wire.change_in(msgspec_convert(c, wire.AliasChangeOut)) for c in found["changes"]]

    # -- signing policy ----------------------------------------------------------------

    def get_signing_policy(self) -> SigningPolicy:
        """The server's signing policy."""
        return _policy_in(self.session.api("GET", "/signing"))

    def set_signing_policy(self, policy: SigningPolicy) -> SigningPolicy:
        """Replace the yard-wide part of the policy (an admin's token)."""
        doc = policy.to_document()
        doc.pop("version", None)
        return _policy_in(self.session.api("PUT", "/signing", json=doc))

    def require_model_signatures(self, name: str, required: bool = True) -> bool:
        """Make versions of ``name`` require signatures, or lift that (``manage``)."""
        found = self.session.api("PUT" if required else "DELETE", f"/models/{seg(name)}/signing")
        return bool(found["changed"])

    # -- tracking ----------------------------------------------------------------------

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``, created if missing."""
        return wire.experiment_in(
            self.session.api("POST", "/experiments", json={"name": name}, into=wire.ExperimentOut)
        )

    def get_experiment(self, name: str) -> Experiment:
        """The experiment called ``name``."""
        return wire.experiment_in(
            self.session.api("GET", f"/experiments/{seg(name)}", into=wire.ExperimentOut)
        )

    def list_experiments(self) -> list[Experiment]:
        """Every experiment the token may see."""
        found = self.session.api("GET", "/experiments")
        return [
            wire.experiment_in(msgspec_convert(e, wire.ExperimentOut)) for e in found["experiments"]
        ]

    def create_run(
        self,
        experiment_id: int,
        *,
        name: str | None = None,
        parent_run_id: str | None = None,
        created_by: str | None = None,
        tags: Mapping[str, str] | None = None,
        start_time: _dt.datetime | None = None,
    ) -> Run:
        """A new RUNNING run (the server records who started it)."""
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "parent_run_id": parent_run_id,
            "tags": dict(tags or {}),
            "start_time": to_millis(start_time) if start_time else None,
        }
        return wire.run_in(self.session.api("POST", "/runs", json=body, into=wire.RunOut))

    def end_run(self, run_id: str, status: str, *, end_time: _dt.datetime | None = None) -> None:
        """Mark a run finished, failed or killed."""
        self.session.api(
            "POST",
            f"/runs/{seg(run_id)}/end",
            json={"status": status, "end_time": to_millis(end_time) if end_time else None},
        )

    def get_run(self, run_id: str) -> Run:
        """One run."""
        return wire.run_in(self.session.api("GET", f"/runs/{seg(run_id)}", into=wire.RunOut))

    def search_runs(
        self,
        experiment_ids: Sequence[int] | None = None,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
    ) -> list[Run]:
        """Runs matching ``filter_string`` (pages fetched as needed)."""
        out: list[Run] = []
        token: str | None = None
        while len(out) < max_results:
            body = {
                "experiment_ids": list(experiment_ids) if experiment_ids is not None else None,
                "filter": filter_string,
                "order_by": list(order_by or ()),
                "max_results": min(max_results - len(out), _PAGE["runs"]),
                "page_token": token,
            }
            page = self.session.api("POST", "/runs/search", json=body)
            out += [wire.run_in(msgspec_convert(r, wire.RunOut)) for r in page["runs"]]
            token = page.get("next_page_token")
            if not token:
                break
        return out

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Record params."""
        if params:
            self.session.api("POST", f"/runs/{seg(run_id)}/params", json={"params": dict(params)})

    def log_metrics(self, run_id: str, metrics: Iterable[Metric]) -> None:
        """Append metric values."""
        values = [wire.metric_out(m) for m in metrics]
        for i in range(0, len(values), 10_000):
            self.session.api(
                "POST", f"/runs/{seg(run_id)}/metrics", json={"metrics": values[i : i + 10_000]}
            )

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for ``key``."""
        found = self.session.api("GET", f"/runs/{seg(run_id)}/metrics", params={"key": key})
        return [wire.metric_in(msgspec_convert(m, wire.MetricIO)) for m in found["metrics"]]

    def set_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        """Set run tags."""
        if tags:
            self.session.api("POST", f"/runs/{seg(run_id)}/tags", json={"tags": dict(tags)})

    def add_artifacts(self, run_id: str, entries: Iterable[FileEntry]) -> None:
        """Record files of a run (their blobs are uploaded first)."""
        files = [wire.file_out(e) for e in entries]
        for i in range(0, len(files), 100_000):
            self.session.api(
                "POST", f"/runs/{seg(run_id)}/files", json={"files": files[i : i + 100_000]}
            )

    def list_artifacts(self, run_id: str, prefix: str = "") -> list[FileEntry]:
        """The run's files under ``prefix``."""
        found = self.session.api(
            "GET", f"/runs/{seg(run_id)}/files", params={"prefix": prefix or None}
        )
        return [wire.file_in(msgspec_convert(f, wire.FileOut)) for f in found["files"]]

    # -- helpers -------------------------------------------------------------------------

    def _pages(
        self,
        path: str,
        key: str,
        filter_string: str | None,
        order_by: Sequence[str] | None,
        max_results: int,
    ) -> list[Any]:
        out: list[Any] = []
        token: str | None = None
        while len(out) < max_results:
            params = {
                "filter": filter_string,
                "order_by": list(order_by or ()),
                "max_results": min(max_results - len(out), _PAGE[key]),
                "page_token": token,
            }
            page = self.session.api("GET", path, params=params)
            out += page[key]
            token = page.get("next_page_token")
            if not token:
                break
        return out


def msgspec_convert(value: Any, into: type[Any]) -> Any:
    """A decoded JSON object as the wire type ``into``."""
    import msgspec

    return msgspec.convert(value, into)


def _policy_in(found: Mapping[str, Any]) -> SigningPolicy:
    """A policy from the server's answer (its ``models`` beside the stored document)."""
    from modelyard.trust.admission import SigningPolicy

    doc = {k: v for k, v in found.items() if k != "models"}
    return SigningPolicy.from_document(
        {**doc, "version": 1},
        source="the server's signing policy",
        models=[str(m) for m in found.get("models") or []],
    )
