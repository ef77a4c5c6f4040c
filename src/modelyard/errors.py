"""Every error modelyard raises derives from :class:`ModelyardError`.

The hierarchy::

    ModelyardError
    ├── InvalidURI                 a model reference that cannot be parsed or is unsafe
    ├── ModelNotFound              nothing exists where a reference points
    │   ├── RegisteredModelNotFound  no registered model by that name
    │   ├── ModelVersionNotFound   the model has no such version
    │   ├── AliasNotFound          the model has no such alias
    │   ├── ExperimentNotFound     no experiment by that name
    │   ├── RunNotFound            no run with that id
    │   ├── ArtifactNotFound       no such path in a run (or in a model version)
    │   └── YardNotFound           no yard where the URI points (nothing stored yet)
    ├── YardError                  the yard cannot be opened, read or written as asked
    │   ├── AlreadyExists          a registered model or experiment with that name exists
    │   ├── SchemaMismatch         the yard's database schema is newer than this modelyard
    │   ├── AccessDenied           a yard server refused the token (401) or the action (403)
    │   ├── ArtifactStoreError     the artifact store is unreachable, refuses us or has no bucket
    │   ├── ServerError            a yard server's answer that is no error of these kinds
    │   ├── MlflowSourceError      an MLflow store cannot be read (unreachable, 401/403, ...)
    │   │   └── MlflowArtifactsRefused  a version's files lie outside the MLflow store
    │   └── ReadOnlyYard           a write on a read-only (mlflow+) yard
    ├── TrackingError              a run cannot take what was logged (no active run, ...)
    ├── InvalidFilter              a search filter or order_by string cannot be parsed
    ├── ModelFormatError           the model directory is not a valid model
    │   ├── MLmodelNotFound        no MLmodel file where one was expected
    │   ├── MalformedMLmodel       MLmodel exists but cannot be read
    │   └── IntegrityError         a file differs from the content manifest
    ├── FlavorError                picking, saving or loading through a flavor
    │   ├── UnknownFlavor          no flavor registered under that name / for that type
    │   ├── SaveError              saving failed; nothing was left behind
    │   ├── CorruptModelFile       a flavor file could not be deserialised
    │   └── UntrustedTypes         a skops file holds types nobody trusted
    ├── TrustError                 the trust policy refuses a model (before any of its code runs)
    │   ├── UnsafePickle           a pickle the scanner cannot vouch for (parse error, EXT, budget)
    │   ├── UntrustedModel         a pickle imports globals outside the allow-list
    │   └── SignatureError         a signature is missing, does not verify, or is not trusted
    │       ├── TamperedModel      a file differs from what the signature covers (file named)
    │       ├── UntrustedKey       signed by a key that is unknown or revoked (key named)
    │       ├── SignatureRequired  unsigned (or not trusted) where the policy requires a signature
    │       ├── StaleAliasRecord   a signed alias move that another move overtook
    │       └── RollbackRefused    an older signed record than one already seen (replay)
    ├── ConfigError                a model_config override is not accepted
    ├── EnvironmentMismatch        the running environment differs (env="strict")
    ├── SchemaError                input or params do not satisfy the signature
    └── BatchError                 batch scoring: files, Spark, isolated environments
        ├── DataFileError          an input or output file cannot be read or written as asked
        ├── ScoringError           a batch of rows failed to score (rows and column named)
        ├── ResultTypeError        predictions cannot be converted to the requested type
        ├── EnvironmentBuildError  building a model's isolated environment failed
        └── WorkerError            the model's isolated process failed or died

Each subclass keeps the context it was raised with as attributes, so callers can
act on the error without parsing its message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

# errors.py is the ground floor: every module may import it and it imports no
# module of modelyard's, so no layer (format, flavors, loading ...) can close a
# circle through it. What an error carries from upper layers is typed by shape.


class EnvironmentReportLike(Protocol):
    """What :class:`EnvironmentMismatch` needs of a report (``loading.check.EnvironmentReport``)."""

    @property
    def ok(self) -> bool:
        """No mismatch at all."""
        ...

    def summary(self) -> str:
        """One short paragraph naming every mismatch."""
        ...

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly form."""
        ...


__all__ = [
    "AccessDenied",
    "AliasNotFound",
    "AlreadyExists",
    "ArtifactNotFound",
    "ArtifactStoreError",
    "BatchError",
    "ConfigError",
    "CorruptModelFile",
    "DataFileError",
    "EnvironmentBuildError",
    "EnvironmentMismatch",
    "ExperimentNotFound",
    "FlavorError",
    "IntegrityError",
    "InvalidFilter",
    "InvalidURI",
    "MLmodelNotFound",
    "MalformedMLmodel",
    "MlflowArtifactsRefused",
    "MlflowSourceError",
    "ModelFormatError",
    "ModelNotFound",
    "ModelVersionNotFound",
    "ModelyardError",
    "ReadOnlyYard",
    "RegisteredModelNotFound",
    "ResultTypeError",
    "RunNotFound",
    "SaveError",
    "SchemaError",
    "SchemaMismatch",
    "ScoringError",
    "ServerError",
    "TrackingError",
    "UnknownFlavor",
    "UntrustedTypes",
    "WorkerError",
    "YardError",
    "YardNotFound",
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


def _did_you_mean(suggestions: Sequence[str]) -> str:
    if not suggestions:
        return ""
    if len(suggestions) == 1:
        return f"; did you mean {suggestions[0]!r}?"
    return (
        "; did you mean "
        + ", ".join(repr(s) for s in suggestions[:-1])
        + (f" or {suggestions[-1]!r}?")
    )


class RegisteredModelNotFound(ModelNotFound):
    """No registered model by that name; ``suggestions`` holds close names."""

    def __init__(
        self, name: str, *, suggestions: Sequence[str] = (), uri: str | None = None
    ) -> None:
        self.name = name
        super().__init__(
            uri or f"models:/{name}",
            f"no registered model {name!r}{_did_you_mean(suggestions)}",
            suggestions=suggestions,
        )


class ModelVersionNotFound(ModelNotFound):
    """The registered model exists but has no such version; ``versions`` lists those it has."""

    def __init__(
        self,
        name: str,
        version: int | None,
        *,
        versions: Sequence[int] = (),
        uri: str | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.versions = tuple(versions)
        what = f"no version {version}" if version is not None else "no versions"
        have = (
            f" (versions: {_ranges(self.versions)})" if self.versions else " (it has no versions)"
        )
        super().__init__(uri or f"models:/{name}/{version}", f"model {name!r} has {what}{have}")


class AliasNotFound(ModelNotFound):
    """The registered model has no such alias; ``aliases`` maps its aliases to versions."""

    def __init__(
        self,
        name: str,
        alias: str,
        *,
        aliases: Mapping[str, int] | None = None,
        suggestions: Sequence[str] = (),
        uri: str | None = None,
    ) -> None:
        self.name = name
        self.alias = alias
        self.aliases = dict(aliases or {})
        if self.aliases:
            listing = ", ".join(f"@{a} -> v{v}" for a, v in sorted(self.aliases.items()))
            have = f" (its aliases: {listing})"
        else:
            have = " (it has no aliases)"
        super().__init__(
            uri or f"models:/{name}@{alias}",
            f"model {name!r} has no alias {alias!r}{_did_you_mean(suggestions)}{have}",
            suggestions=suggestions,
        )


class ExperimentNotFound(ModelNotFound):
    """No experiment by that name; ``suggestions`` holds close names."""

    def __init__(self, name: str, *, suggestions: Sequence[str] = ()) -> None:
        self.name = name
        self.uri = f"experiment {name!r}"
        self.reason = f"no experiment {name!r}{_did_you_mean(suggestions)}"
        self.suggestions = tuple(suggestions)
        ModelyardError.__init__(self, self.reason)


class RunNotFound(ModelNotFound):
    """No run with that id; ``suggestions`` holds ids that start alike."""

    def __init__(
        self, run_id: str, *, suggestions: Sequence[str] = (), uri: str | None = None
    ) -> None:
        self.run_id = run_id
        super().__init__(
            uri or f"runs:/{run_id}",
            f"no run {run_id!r}{_did_you_mean(suggestions)}",
            suggestions=suggestions,
        )


class ArtifactNotFound(ModelNotFound):
    """A path is not among a run's (or a model version's) files."""

    def __init__(
        self, owner: str, path: str, *, suggestions: Sequence[str] = (), uri: str | None = None
    ) -> None:
        self.owner = owner
        self.path = path
        super().__init__(
            uri or owner,
            f"{owner} has no path {path!r}{_did_you_mean(suggestions)}",
            suggestions=suggestions,
        )


class YardNotFound(ModelNotFound):
    """The yard a URI names holds nothing yet (its database does not exist)."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.uri = location
        self.reason = (
            f"no yard at {location!r}: nothing has been logged or registered there yet "
            "(set MODELYARD_URI or call modelyard.set_yard(...) to use another yard)"
        )
        self.suggestions = ()
        ModelyardError.__init__(self, self.reason)


class YardError(ModelyardError):
    """The yard cannot be opened, read or written as asked."""


class AlreadyExists(YardError, ValueError):
    """A registered model or experiment with that name already exists."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        super().__init__(f"a {kind} named {name!r} already exists")


class SchemaMismatch(YardError):
    """The yard's database was written by a newer modelyard (unknown schema revision)."""

    def __init__(self, location: str, revision: str, known: Sequence[str]) -> None:
        self.location = location
        self.revision = revision
        self.known = tuple(known)
        super().__init__(
            f"the yard at {location!r} has schema revision {revision!r}, which this modelyard "
            f"does not know (it knows {', '.join(self.known)}); upgrade modelyard to use it"
        )


class AccessDenied(YardError, PermissionError):
    """A yard server refused the request: no valid token (401) or not allowed (403)."""

    def __init__(self, url: str, status: int, code: str, message: str) -> None:
        self.url = url
        self.status = status
        self.code = code
        super().__init__(f"{message} ({url})")


class ArtifactStoreError(YardError):
    """The artifact store cannot be used: its bucket is missing, it refuses the credentials,
    or its endpoint does not answer. ``location`` names the store (``s3://bucket/prefix``)
    and ``endpoint`` where it was looked for."""

    def __init__(self, location: str, reason: str, *, endpoint: str | None = None) -> None:
        self.location = location
        self.reason = reason
        self.endpoint = endpoint
        at = f" at {endpoint}" if endpoint else ""
        super().__init__(f"artifact store {location}{at}: {reason}")


class ServerError(YardError):
    """A yard server answered with an error this client has no better class for.

    ``status`` is the HTTP status, ``code`` the server's stable error code and
    ``field`` the request field it names, if any.
    """

    def __init__(
        self,
        url: str,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.url = url
        self.status = status
        self.code = code
        self.field = field
        self.request_id = request_id
        super().__init__(f"{message} ({url}, HTTP {status})")


class TrackingError(ModelyardError, ValueError):
    """A run cannot take what was logged: no active run, a finished run, a changed param."""


class InvalidFilter(ModelyardError, ValueError):
    """A search filter or ``order_by`` string cannot be parsed or names an unknown field."""

    def __init__(self, text: str, reason: str, *, position: int | None = None) -> None:
        self.text = text
        self.reason = reason
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"invalid filter {text!r}{where}: {reason}")


def _ranges(numbers: Sequence[int]) -> str:
    """``1-3, 5, 7-9``: version lists stay short however many there are."""
    parts: list[str] = []
    nums = sorted(set(numbers))
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(parts)


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


class TrustError(ModelyardError):
    """The trust policy refuses a model; nothing of the model ran."""


class UnsafePickle(TrustError):
    """A pickle stream the scanner cannot vouch for: a parse error, ``EXT*``,
    trailing bytes, a second pickle, an exceeded budget, a non-constant import."""

    def __init__(self, file: Path | str, reason: str, *, offset: int | None = None) -> None:
        self.file = str(file)
        self.reason = reason
        self.offset = offset
        at = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"refusing to unpickle {self.file!r}: {reason}{at}")


class UntrustedModel(TrustError):
    """A pickle would import globals outside the allow-list.

    ``globals`` lists every one (``module.qualname``); the message says how to
    allow them.
    """

    def __init__(self, file: Path | str, globals: Sequence[str], *, hint: str = "") -> None:
        self.file = str(file)
        self.globals = tuple(globals)
        shown = ", ".join(self.globals[:20]) + (" ..." if len(self.globals) > 20 else "")
        tail = f". {hint}" if hint else ""
        super().__init__(
            f"refusing to unpickle {self.file!r}: it imports {len(self.globals)} global(s) "
            f"outside the trust allow-list: {shown}{tail}"
        )


class SignatureError(TrustError):
    """A model's signature is missing, does not verify, or is not trusted."""

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(message)


class TamperedModel(SignatureError):
    """A file differs from what the signature covers; ``file`` names it."""

    def __init__(self, path: Path | str, file: str, problem: str) -> None:
        self.file = file
        self.problem = problem
        super().__init__(f"model file {file!r} in {str(path)!r} {problem}", path=path)


class UntrustedKey(SignatureError):
    """The signing key is unknown to the trust store, or revoked; ``key_id`` names it."""

    def __init__(self, key_id: str, reason: str, *, path: Path | str | None = None) -> None:
        self.key_id = key_id
        self.reason = reason
        super().__init__(f"signature by key {key_id}: {reason}", path=path)


class SignatureRequired(SignatureError):
    """The policy requires a trusted signature and there is none."""


class StaleAliasRecord(SignatureError):
    """A signed alias move whose sequence is not the next one: another move came first."""


class RollbackRefused(SignatureError):
    """A signed record older than one already seen (a replayed alias move)."""

    def __init__(self, what: str, seen: int, got: int) -> None:
        self.what = what
        self.seen = seen
        self.got = got
        super().__init__(
            f"refusing {what}: its signed sequence {got} is older than {seen}, already seen here "
            "(a replayed or rolled-back record)"
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

    def __init__(self, report: EnvironmentReportLike) -> None:
        # In practice a modelyard.loading.check.EnvironmentReport (mismatches, python_*).
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


class BatchError(ModelyardError):
    """Base class for batch scoring errors (files, Spark, isolated environments)."""


class DataFileError(BatchError, ValueError):
    """An input or output file cannot be read or written as asked; nothing was written."""

    def __init__(self, path: str, reason: str, *, row: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.row = row
        super().__init__(f"{path}: {reason}")


class ScoringError(BatchError):
    """Rows ``first_row..last_row`` (0-based, inclusive) could not be scored."""

    def __init__(
        self,
        first_row: int,
        last_row: int,
        reason: str,
        *,
        column: str | None = None,
        output: str | None = None,
    ) -> None:
        self.first_row = first_row
        self.last_row = last_row
        self.reason = reason
        self.column = column
        self.output = output
        rows = f"row {first_row}" if first_row == last_row else f"rows {first_row}-{last_row}"
        where = f", column {column!r}" if column else ""
        tail = f"; nothing was written to {output}" if output else ""
        super().__init__(f"{rows}{where}: {reason}{tail}")


class ResultTypeError(BatchError, TypeError):
    """Predictions cannot be converted to the requested result type."""

    def __init__(self, result_type: str, received: str, reason: str) -> None:
        self.result_type = result_type
        self.received = received
        self.reason = reason
        super().__init__(
            f"the model's predictions ({received}) cannot be returned as {result_type}: {reason}"
        )


class EnvironmentBuildError(BatchError):
    """Building a model's isolated environment failed; ``log`` holds the tool's output."""

    def __init__(self, where: Path | str, reason: str, *, log: str = "") -> None:
        self.where = Path(where)
        self.reason = reason
        self.log = log
        tail = f"\n{log.strip()[-2000:]}" if log.strip() else ""
        super().__init__(f"could not build the environment {str(where)!r}: {reason}{tail}")


class WorkerError(BatchError):
    """The model's isolated process failed to start, died, or broke the protocol."""

    def __init__(
        self,
        reason: str,
        *,
        python: Path | str | None = None,
        log: str = "",
        remote_type: str | None = None,
    ) -> None:
        self.reason = reason
        self.python = Path(python) if python is not None else None
        self.log = log
        #: the exception class raised inside the model process, when it raised one
        self.remote_type = remote_type
        tail = f"\n{log.strip()[-2000:]}" if log.strip() else ""
        super().__init__(f"model process: {reason}{tail}")


# -- MLflow stores: reading them (mlflow+ yards) and importing them -----------------------


class MlflowSourceError(YardError):
    """An MLflow store (database, ``mlruns`` folder or server) cannot be read as asked.

    ``location`` is the store as shown to people (passwords masked); ``status`` the
    HTTP status a server answered with, when it answered.
    """

    def __init__(self, location: str, reason: str, *, status: int | None = None) -> None:
        self.location = location
        self.reason = reason
        self.status = status
        super().__init__(f"MLflow store {location!r}: {reason}")


class MlflowArtifactsRefused(MlflowSourceError):
    """A model version's files are somewhere modelyard will not read from: a local path
    outside the MLflow store's own artifact roots, or a place it cannot reach."""

    def __init__(self, location: str, name: str, version: int, where: str, reason: str) -> None:
        self.name = name
        self.version = version
        self.where = where
        super().__init__(location, f"{name} version {version}: {reason} ({where!r})")


class ReadOnlyYard(YardError):
    """A write on a yard that is only read (an ``mlflow+`` yard over an MLflow store)."""

    def __init__(self, location: str, action: str) -> None:
        self.location = location
        self.action = action
        super().__init__(
            f"the yard {location!r} is read-only (an MLflow store read in place): cannot "
            f"{action}; import it with `modelyard import mlflow` to write"
        )
