"""modelyard: persist trained models, keep them in a registry, load any of them back.

>>> import modelyard as my
>>> model = my.load_model("./iris-model")  # doctest: +SKIP
>>> model.predict(df)                       # doctest: +SKIP
"""

from modelyard._version import __version__
from modelyard.errors import (
    ConfigError,
    CorruptModelFile,
    EnvironmentMismatch,
    FlavorError,
    IntegrityError,
    InvalidURI,
    MalformedMLmodel,
    MLmodelNotFound,
    ModelFormatError,
    ModelNotFound,
    ModelyardError,
    SaveError,
    SchemaError,
    UnknownFlavor,
    UntrustedTypes,
)
from modelyard.flavors import list_flavors, register_flavor
from modelyard.flavors.python_model import PythonModel, PythonModelContext
from modelyard.format.signature import Signature, infer_signature
from modelyard.loading import check_environment, load_model
from modelyard.loading.check import EnvironmentReport
from modelyard.model import Model
from modelyard.saving import ModelInfo, save_model

__all__ = [
    "ConfigError",
    "CorruptModelFile",
    "EnvironmentMismatch",
    "EnvironmentReport",
    "FlavorError",
    "IntegrityError",
    "InvalidURI",
    "MLmodelNotFound",
    "MalformedMLmodel",
    "Model",
    "ModelFormatError",
    "ModelInfo",
    "ModelNotFound",
    "ModelyardError",
    "PythonModel",
    "PythonModelContext",
    "SaveError",
    "SchemaError",
    "Signature",
    "UnknownFlavor",
    "UntrustedTypes",
    "__version__",
    "check_environment",
    "infer_signature",
    "list_flavors",
    "load_model",
    "register_flavor",
    "save_model",
]
