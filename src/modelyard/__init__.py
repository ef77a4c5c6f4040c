"""modelyard: persist trained models, keep them in a registry, load any of them back.

>>> import modelyard as my
>>> model = my.load_model("./iris-model")  # doctest: +SKIP
>>> model.predict(df)                       # doctest: +SKIP
"""

from modelyard._version import __version__
from modelyard.errors import (
    AccessDenied,
    AliasNotFound,
    AlreadyExists,
    ArtifactNotFound,
    ArtifactStoreError,
    BatchError,
    ConfigError,
    CorruptModelFile,
    DataFileError,
    EnvironmentBuildError,
    EnvironmentMismatch,
    ExperimentNotFound,
    FlavorError,
    IntegrityError,
    InvalidFilter,
    InvalidURI,
    MalformedMLmodel,
    MlflowArtifactsRefused,
    MlflowSourceError,
    MLmodelNotFound,
    ModelFormatError,
    ModelNotFound,
    ModelVersionNotFound,
    ModelyardError,
    ReadOnlyYard,
    RegisteredModelNotFound,
    ResultTypeError,
    RunNotFound,
    SaveError,
    SchemaError,
    SchemaMismatch,
    ScoringError,
    ServerError,
    TrackingError,
    UnknownFlavor,
    UntrustedTypes,
    WorkerError,
    YardError,
    YardNotFound,
)
from modelyard.flavors import list_flavors, register_flavor
from modelyard.flavors.python_model import PythonModel, PythonModelContext
from modelyard.format.enforce import ExtraInputsWarning, enforce_input, enforce_params
from modelyard.format.schema import ColSpec, DataType, ParamSchema, ParamSpec, Schema, TensorSpec
from modelyard.format.signature import Signature, infer_signature
from modelyard.loading import check_environment, load_model
from modelyard.loading.check import EnvironmentReport
from modelyard.model import Model
from modelyard.registry import (
    create_registered_model,
    delete_alias,
    delete_model_version,
    delete_model_version_tag,
    delete_registered_model,
    delete_registered_model_tag,
    get_alias_history,
    get_model_version,
    get_model_version_by_alias,
    get_registered_model,
    get_signing_policy,
    register_model,
    rename_registered_model,
    require_signatures,
    revoke_signer,
    search_model_versions,
    search_registered_models,
    set_alias,
    set_model_version_tag,
    set_registered_model_tag,
    trust_signer,
    update_model_version,
    update_registered_model,
)
from modelyard.saving import ModelInfo, save_model
from modelyard.store.entities import AliasChange, ModelVersion, RegisteredModel, Run
from modelyard.tracking import (
    ActiveRun,
    LoggedModel,
    active_run,
    end_run,
    get_run,
    list_artifacts,
    log_artifact,
    log_artifacts,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    search_runs,
    set_experiment,
    set_tag,
    set_tags,
    start_run,
)
from modelyard.yard import Yard, get_yard, set_yard

__all__ = [
    "AccessDenied",
    "ActiveRun",
    "AliasChange",
    "AliasNotFound",
    "AlreadyExists",
    "ArtifactNotFound",
    "ArtifactStoreError",
    "BatchError",
    "ColSpec",
    "ConfigError",
    "CorruptModelFile",
    "DataFileError",
    "DataType",
    "EnvironmentBuildError",
    "EnvironmentMismatch",
    "EnvironmentReport",
    "ExperimentNotFound",
    "ExtraInputsWarning",
    "FlavorError",
    "IntegrityError",
    "InvalidFilter",
    "InvalidURI",
    "LoggedModel",
    "MLmodelNotFound",
    "MalformedMLmodel",
    "MlflowArtifactsRefused",
    "MlflowSourceError",
    "Model",
    "ModelFormatError",
    "ModelInfo",
    "ModelNotFound",
    "ModelVersion",
    "ModelVersionNotFound",
    "ModelyardError",
    "ParamSchema",
    "ParamSpec",
    "PythonModel",
    "PythonModelContext",
    "ReadOnlyYard",
    "RegisteredModel",
    "RegisteredModelNotFound",
    "ResultTypeError",
    "Run",
    "RunNotFound",
    "SaveError",
    "Schema",
    "SchemaError",
    "SchemaMismatch",
    "ScoringError",
    "ServerError",
    "Signature",
    "TensorSpec",
    "TrackingError",
    "UnknownFlavor",
    "UntrustedTypes",
    "WorkerError",
    "Yard",
    "YardError",
    "YardNotFound",
    "__version__",
    "active_run",
    "check_environment",
    "create_registered_model",
    "delete_alias",
    "delete_model_version",
    "delete_model_version_tag",
    "delete_registered_model",
    "delete_registered_model_tag",
    "end_run",
    "enforce_input",
    "enforce_params",
    "get_alias_history",
    "get_model_version",
    "get_model_version_by_alias",
    "get_registered_model",
    "get_run",
    "get_signing_policy",
    "get_yard",
    "infer_signature",
    "list_artifacts",
    "list_flavors",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "register_flavor",
    "register_model",
    "rename_registered_model",
    "require_signatures",
    "revoke_signer",
    "save_model",
    "search_model_versions",
    "search_registered_models",
    "search_runs",
    "set_alias",
    "set_experiment",
    "set_model_version_tag",
    "set_registered_model_tag",
    "set_tag",
    "set_tags",
    "set_yard",
    "start_run",
    "trust_signer",
    "update_model_version",
    "update_registered_model",
]

# Submodules that bring an engine (Spark, the scoring server, batch scoring) are
# attributes too, so `import modelyard; modelyard.spark.udf(...)` works, but they are
# imported on first access (PEP 562), never by `import modelyard`: that stays cheap
# and pulls in no framework. They are modules, not API names, so not in __all__.
_LAZY_SUBMODULES = frozenset({"batch", "serving", "spark"})


def __getattr__(name: str) -> object:
    """Import a lazy submodule on first attribute access."""
    if name in _LAZY_SUBMODULES:
        import importlib

        # import_module also binds the submodule on this package, so later
        # accesses no longer reach __getattr__.
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """Public names plus the lazy submodules, for completion in notebooks."""
    return sorted({*globals(), *_LAZY_SUBMODULES})
