"""Step 1, resolve: turn a model reference into a :class:`ModelRef`.

Registry and run lookups happen here and only here, once per load, so a load
of ``@champion`` whose alias moves mid-load still loads one version.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import ModelNotFound
from modelyard.uri import ModelsURI, ModelURI, PathURI, RunsURI, parse_uri


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


def resolve(uri: str | os.PathLike[str]) -> ModelRef:
    """Resolve ``uri``; a path that does not exist is :class:`ModelNotFound`."""
    target = parse_uri(uri)
    text = str(uri)
    if isinstance(target, PathURI):
        path = target.path.expanduser()
        if not path.exists():
            raise ModelNotFound(text, f"no such directory {str(path)!r}")
        if not path.is_dir():
            raise ModelNotFound(text, f"{str(path)!r} is a file, not a model directory")
        return ModelRef(uri=text, target=target, location=path.resolve())
    if isinstance(target, (ModelsURI, RunsURI)):
        raise ModelNotFound(text, "models:/ and runs:/ URIs need a yard, which is not built yet")
    raise AssertionError(target)  # pragma: no cover - parse_uri returns one of the above
