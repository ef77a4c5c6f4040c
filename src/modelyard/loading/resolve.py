"""Step 1, resolve: turn a model reference into a :class:`ModelRef`.

Registry and run lookups happen here and only here, once per load: the
reference is pinned to a content digest, and every later step works from that
digest, so a load of ``@champion`` whose alias moves mid-load still loads one
version. A ``models:/`` reference costs one indexed query; a ``runs:/`` one
reads the run's file list for the path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.errors import ArtifactNotFound, ModelNotFound
from modelyard.uri import ModelsURI, ModelURI, PathURI, RunsURI, parse_uri

if TYPE_CHECKING:
    from modelyard.format.content import ContentManifest
    from modelyard.trust.alias_records import AliasCheck
    from modelyard.yard import Yard


@dataclass(frozen=True)
class ModelRef:
    """What a URI resolved to: where the files are and what they must hash to."""

    uri: str
    target: ModelURI
    #: local directory holding the model, for path URIs
    location: Path | None = None
    #: digest the files must have (pinned by the registry), when known up front
    digest: str | None = None
    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    #: the yard whose blob store holds the files (registry and run references)
    yard: Yard | None = field(default=None, compare=False, repr=False)
    #: the file list, when resolving already had it (runs:/ paths, models:/ sub-paths)
    manifest: ContentManifest | None = field(default=None, compare=False, repr=False)
    #: for ``@alias``: how the alias's signed record checked out
    alias_check: AliasCheck | None = field(default=None, compare=False, repr=False)


def resolve(
    uri: str | os.PathLike[str],
    *,
    in_yard: str | os.PathLike[str] | Yard | None = None,
    verify: str = "auto",
) -> ModelRef:
    """Resolve ``uri``; anything missing is a :class:`ModelNotFound` naming what and why.

    Registry and run references are looked up in ``in_yard`` (a yard URI or :class:`Yard`),
    else in the yard in use (:func:`~modelyard.yard.get_yard`). For ``@alias`` the
    alias's signed record is checked as ``verify`` says (``load_model``'s modes; see
    :func:`modelyard.trust.alias_records.check_resolved`): an answer older than one
    this machine has seen is a :class:`RollbackRefused`.

    >>> resolve("models:/fraud@champion").version  # doctest: +SKIP
    7
    """
    target = parse_uri(uri)
    text = str(uri)
    if isinstance(target, PathURI):
        path = target.path.expanduser()
        if not path.exists():
            raise ModelNotFound(text, f"no such directory {str(path)!r}")
        if not path.is_dir():
            raise ModelNotFound(text, f"{str(path)!r} is a file, not a model directory")
        return ModelRef(uri=text, target=target, location=path.resolve())
    from modelyard.yard import get_yard, yard_at

    yard = get_yard() if in_yard is None else yard_at(in_yard)
    if isinstance(target, ModelsURI):
        found = yard.resolve(
            target.name,
            version=None if target.latest else target.version,
            alias=target.alias,
        )
        digest, manifest = found.digest, None
        if target.subpath:
            from modelyard.store.trees import read_manifest, subtree

            manifest = subtree(read_manifest(yard.artifacts, digest), target.subpath)
            if not manifest.entries:
                owner = f"models:/{found.name}/{found.version}"
                raise ArtifactNotFound(owner, target.subpath, uri=text)
            digest = manifest.digest
        alias_check = None
        if target.alias is not None and (found.alias_record is not None or verify == "required"):
            from modelyard.trust.alias_records import check_resolved

            alias_check = check_resolved(
                yard_id=found.yard_id,
                model=found.name,
                alias=target.alias,
                version=found.version,
                digest=found.digest,
                record=found.alias_record,
                verify=verify,
            )
        return ModelRef(
            uri=text,
            target=target,
            digest=digest,
            name=found.name,
            version=found.version,
            alias=target.alias,
            run_id=found.run_id,
            yard=yard,
            manifest=manifest,
            alias_check=alias_check,
        )
    if isinstance(target, RunsURI):
        from modelyard.store.trees import run_tree

        tree = run_tree(yard.reader(), target.run_id, target.path, uri=text)
        return ModelRef(
            uri=text,
            target=target,
            digest=tree.digest,
            run_id=target.run_id,
            yard=yard,
            manifest=tree,
        )
    raise AssertionError(target)  # pragma: no cover - parse_uri returns one of the above
