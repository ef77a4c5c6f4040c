"""Every error modelyard raises derives from :class:`ModelyardError`.

The hierarchy::

    ModelyardError
    ├── InvalidURI                 a model reference that cannot be parsed or is unsafe
    ├── ModelNotFound              nothing exists where a reference points
    ├── ModelFormatError           the model directory is not a valid model
    │   ├── MLmodelNotFound        no MLmodel file where one was expected
    │   ├── MalformedMLmodel       MLmodel exists but cannot be read
    │   └── IntegrityError         a file differs from the content manifest
    ├── FlavorError                picking, saving or loading through a flavor
    │   ├── UnknownFlavor          no flavor registered under that name / for that type
    │   ├── SaveError              saving failed; nothing was left behind
    │   ├── CorruptModelFile       a flavor file could not be deserialised
    │   └── UntrustedTypes         a skops file holds types nobody trusted
    ├── ConfigError                a model_config override is not accepted
    ├── EnvironmentMismatch        the running environment differs (env="strict")
    └── SchemaError                input or params do not satisfy the signature

Each subclass keeps the context it was raised with as attributes, so callers can
act on the error without parsing its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelyard.loading.check import EnvironmentReport

__all__ = [
    "ConfigError",
    "CorruptModelFile",
    "EnvironmentMismatch",
    "FlavorError",
    "IntegrityError",
    "InvalidURI",
    "MLmodelNotFound",
    "MalformedMLmodel",
    "ModelFormatError",
    "ModelNotFound",
    "ModelyardError",
    "SaveError",
    "SchemaError",
    "UnknownFlavor",
    "UntrustedTypes",
]


class ModelyardError(Exception):
    """Base class of every error raised by modelyard."""


class InvalidURI(ModelyardError, ValueError):
    """A model URI could not be parsed, or one of its parts is unsafe."""

    def __init__(self, uri: str, reason: str, *, part: str | None = None) -> None:
        self.uri = uri
        self.reason = reason
        self.part = part
        where = f" ({part})" if part else ""
        super().__init__(f"invalid model URI {uri!r}{where}: {reason}")


class ModelNotFound(ModelyardError, LookupError):
    """Nothing exists where a model reference points."""

    def __init__(self, uri: str, reason: str, *, suggestions: Sequence[str] = ()) -> None:
        self.uri = uri
        self.reason = reason
        self.suggestions = tuple(suggestions)
        super().__init__(f"{reason} ({uri})" if reason else f"no model at {uri!r}")


class ModelFormatError(ModelyardError):
    """The model directory is not a valid modelyard / MLflow model."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(message)


class MLmodelNotFound(ModelFormatError):
    """No ``MLmodel`` file where a model directory was expected."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(f"no MLmodel file in {str(path)!r}: not a model directory", path=path)


class MalformedMLmodel(ModelFormatError):
    """The ``MLmodel`` file exists but is not valid YAML or lacks required fields."""

    def __init__(self, path: Path | str, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(f"malformed MLmodel at {str(path)!r}: {reason}", path=path)


class IntegrityError(ModelFormatError):
    """A file of the model differs from what its content manifest records."""

    def __init__(self, path: Path | str, file: str, problem: str) -> None:
        self.file = file
        self.problem = problem
        super().__init__(f"model file {file!r} in {str(path)!r} {problem}", path=path)


class FlavorError(ModelyardError):
    """Base class for errors while picking, saving or loading through a flavor."""


class UnknownFlavor(FlavorError, LookupError):
    """No flavor is registered under a name, or none knows an object's type."""

    def __init__(self, message: str, *, name: str | None = None, known: Sequence[str] = ()) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(message)


class SaveError(FlavorError):
    """Saving a model failed; the destination was left untouched."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"could not save model to {str(path)!r}: {reason}")


class CorruptModelFile(FlavorError):
    """A flavor's file could not be deserialised; ``__cause__`` holds the original error."""

    def __init__(self, path: Path | str, flavor: str, reason: str) -> None:
        self.path = Path(path)
        self.flavor = flavor
        self.reason = reason
        super().__init__(f"cannot load {flavor} model file {str(path)!r}: {reason}")


class UntrustedTypes(FlavorError):
    """A skops file holds types that neither the caller nor modelyard's default trusts."""

    def __init__(self, path: Path | str, types: Sequence[str]) -> None:
        self.path = Path(path)
        self.types = tuple(types)
        super().__init__(
            f"refusing to load {str(path)!r}: it holds untrusted types {list(self.types)}. "
            "If you trust them, pass model_config={'skops_trusted_types': [...]} to load_model"
        )


class ConfigError(ModelyardError, ValueError):
    """A ``model_config`` override was rejected."""

    def __init__(
        self, message: str, *, keys: Sequence[str] = (), declared: Sequence[str] = ()
    ) -> None:
        self.keys = tuple(keys)
        self.declared = tuple(declared)
        super().__init__(message)


class EnvironmentMismatch(ModelyardError):
    """The running environment does not satisfy the model's (raised under ``env="strict"``)."""

    def __init__(self, report: EnvironmentReport) -> None:
        self.report = report
        super().__init__(report.summary())


class SchemaError(ModelyardError, ValueError):
    """Input data or params do not satisfy the model's signature.

    The message names the column or param and the types involved; it never
    contains the data itself.
    """

    def __init__(
        self,
        message: str,
        *,
        column: str | None = None,
        expected: str | None = None,
        received: str | None = None,
    ) -> None:
        self.column = column
        self.expected = expected
        self.received = received
        super().__init__(message)
