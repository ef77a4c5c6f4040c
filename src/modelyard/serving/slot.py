"""A served model: the version answering now, and how a new one replaces it.

A :class:`ModelSlot` holds one :class:`Loaded` version. Requests take the
current version once, at their start, and finish on it even if the slot is
swapped meanwhile; the swap itself is one reference assignment on the event
loop, so no request ever sees half a model. The old version is released when
its last request finishes (nothing else refers to it).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelyard.serving._spec import InputSpec
from modelyard.serving.runner import Timing

if TYPE_CHECKING:
    from modelyard.format.mlmodel import MLmodel
    from modelyard.format.signature import Signature
    from modelyard.trust.policy import LoadTrust, TrustInput

__all__ = ["Loaded", "ModelSlot", "ServedModel", "load_served", "served_name"]

log = logging.getLogger("modelyard.serving")

_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_NAME_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.\-]+")


class ServedModel(Protocol):
    """What the server needs of a model: a loaded :class:`~modelyard.Model`, or one
    running in its own environment (:class:`~modelyard.isolation.isolated.IsolatedModel`)."""

    @property
    def uri(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def digest(self) -> str: ...
    @property
    def flavor(self) -> str: ...
    @property
    def version(self) -> int | None: ...
    @property
    def mlmodel(self) -> MLmodel: ...
    @property
    def signature(self) -> Signature | None: ...
    @property
    def input_example(self) -> Any: ...
    @property
    def trust(self) -> LoadTrust | None: ...
    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True, eq=False)
class Loaded:
    """One loaded, warmed-up model version, ready to answer."""

    model: ServedModel
    name: str
    #: the registry version number, or the first 12 hex digits of the digest
    version: str
    digest: str
    spec: InputSpec
    load_seconds: float
    warmup_seconds: float | None
    #: response headers naming what answered, encoded once
    headers: tuple[tuple[bytes, bytes], ...]
    timing: Timing = field(repr=False)

    @property
    def flavor(self) -> str:
        """Flavor that loaded the model."""
        return self.model.flavor

    def matches_version(self, text: str) -> bool:
        """Whether an OIP ``/versions/{v}`` path segment names this version."""
        if text == self.version:
            return True
        hexdigest = self.digest.removeprefix("sha256:")
        text = text.removeprefix("sha256:")
        return len(text) >= 7 and hexdigest.startswith(text)

    def describe(self) -> dict[str, Any]:
        """Facts for ``/health`` and the start-up log."""
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "flavor": self.flavor,
            "uri": self.model.uri,
            "load_seconds": round(self.load_seconds, 3),
            "signature": _signature_fact(self.model.trust),
        }


def served_name(uri: str) -> str:
    """The name a URI is served under: the registered name, else the directory name."""
    from modelyard.uri import ModelsURI, RunsURI, parse_uri

    target = parse_uri(uri)
    if isinstance(target, ModelsURI):
        raw = target.name
    elif isinstance(target, RunsURI):
        raw = target.path.rsplit("/", 1)[-1] or target.run_id
    else:
        raw = Path(target.path).expanduser().resolve().name
    if _NAME_OK.match(raw):
        return raw
    cleaned = _NAME_BAD_CHARS.sub("-", raw).strip("-.") or "model"
    return cleaned if _NAME_OK.match(cleaned) else f"m-{cleaned}"


def check_name(name: str) -> str:
    """A served name must be usable in a URL path segment."""
    if not _NAME_OK.match(name):
        raise ValueError(
            f"model name {name!r} may only contain letters, digits, '_', '.' and '-'"
            " and must start with a letter or digit"
        )
    return name


def load_served(
    uri: str,
    name: str,
    *,
    model_config: Mapping[str, Any] | str | None = None,
    env: str = "warn",
    env_manager: str = "local",
    warm_up: bool = True,
    trust: TrustInput = None,
    verify: str = "auto",
) -> Loaded:
    """Load ``uri`` and warm it up with its saved input example.

    ``env_manager="uv"`` runs the model in an environment built from its own
    requirements (see :mod:`modelyard.isolation.envs`), behind a pipe. A warm-up that
    raises is a failed load: a version that cannot score its own example is not
    put in front of traffic. ``trust`` and ``verify`` are :func:`~modelyard.load_model`'s:
    a version they refuse is never loaded, so it never serves.
    """
    start = time.perf_counter()
    model: ServedModel
    if env_manager == "uv":
        from modelyard.isolation.isolated import IsolatedModel

        model = IsolatedModel.start(
            uri, model_config=model_config, env_check=env, trust=trust, verify=verify
        )
    elif env_manager == "local":
        from modelyard.loading import load_model

        model = load_model(uri, model_config=model_config, env=env, trust=trust, verify=verify)
    else:
        raise ValueError(f"unknown environment manager {env_manager!r}: use 'local' or 'uv'")
    loaded_at = time.perf_counter()
    timing = warm_up_model(model, name) if warm_up else Timing(None, None)
    version = str(model.version) if model.version is not None else _short(model.digest)
    headers = (
        (b"x-model-name", name.encode()),
        (b"x-model-version", version.encode()),
        (b"x-model-digest", model.digest.encode()),
    )
    return Loaded(
        model=model,
        name=name,
        version=version,
        digest=model.digest,
        spec=InputSpec.from_signature(
            model.signature,
            # MLflow writes this flag at the top level of MLmodel, not in the signature
            from_type_hints=bool(model.mlmodel.data.get("is_signature_from_type_hint")),
        ),
        load_seconds=loaded_at - start,
        warmup_seconds=timing.wall,
        headers=headers,
        timing=timing,
    )


def warm_up_model(model: ServedModel, name: str) -> Timing:
    """Score the saved input example twice; the second call is timed (``None``: no example)."""
    from modelyard.format.example import load_example_params

    example = model.input_example
    if example is None:
        return Timing(None, None)
    params = load_example_params(model.path, model.mlmodel.saved_input_example_info)
    t0 = time.perf_counter()
    model.predict(example, params)
    # the first call pays one-off costs (imports, caches): time a second one
    t1, c1 = time.perf_counter(), time.thread_time()
    model.predict(example, params)
    log.debug("warm-up of %s took %.1f ms", name, (t1 - t0) * 1000)
    return Timing(time.perf_counter() - t1, time.thread_time() - c1)


def _signature_fact(trust: LoadTrust | None) -> dict[str, Any] | None:
    if trust is None:
        return None
    fact: dict[str, Any] = {"state": trust.signature}
    if trust.signer or trust.key_id:
        fact |= {"signer": trust.signer, "key_id": trust.key_id}
    return fact


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


class ModelSlot:
    """One name on the server and the version currently answering under it."""

    def __init__(self, name: str, uri: str, loaded: Loaded, *, follows: bool = False) -> None:
        self.name = name
        self.uri = uri
        self.current = loaded
        #: the slot's URI can move (an alias or ``latest``) and is polled
        self.follows = follows
        #: why the last attempt to load a new version failed, while the old one serves on
        self.last_error: str | None = None
        self.last_checked: float | None = None
        self.swaps = 0

    def swap(self, new: Loaded) -> Loaded:
        """Make ``new`` answer from now on; returns the version it replaced."""
        old, self.current = self.current, new
        self.last_error = None
        self.swaps += 1
        return old

    def health(self) -> dict[str, Any]:
        """What ``/health`` reports for this slot."""
        out = {"uri": self.uri, **self.current.describe(), "follows": self.follows}
        if self.last_error:
            out["last_error"] = self.last_error
        return out
