"""Custom Python models: subclasses of :class:`PythonModel`.

The layout is MLflow's custom-pyfunc layout (``python_model.pkl``,
``artifacts/``, ``loader_module: mlflow.pyfunc.model``), so a model written
with ``mlflow.pyfunc.PythonModel`` loads here without MLflow installed: its
pickled references to MLflow's base classes are mapped to the ones below.
"""

from __future__ import annotations

import importlib
import inspect
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from modelyard.errors import CorruptModelFile
from modelyard.flavors import _pickle
from modelyard.flavors._base import Predictor, SavedFlavor, reject_unknown_options
from modelyard.format.environment import pinned
from modelyard.format.mlmodel import MLmodel

PICKLE_FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"
_COMPRESSION = {"lzma": "lzma", "bzip2": "bz2", "gzip": "gzip"}


class PythonModelContext:
    """What a :class:`PythonModel` gets at load time: its artifacts and config."""

    def __init__(self, artifacts: Mapping[str, str], model_config: Mapping[str, Any] | None):
        self._artifacts = dict(artifacts)
        self._model_config = dict(model_config) if model_config is not None else None

    @property
    def artifacts(self) -> dict[str, str]:
        """Artifact name -> absolute local path inside the loaded model."""
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        """The effective model config (saved values with load-time overrides)."""
        return self._model_config

    def __repr__(self) -> str:
        return f"PythonModelContext(artifacts={sorted(self._artifacts)}, model_config=...)"


class PythonModel:
    """Base class for custom models.

    Override :meth:`predict`; override :meth:`load_context` to load artifacts
    once when the model is loaded::

        class Doubler(PythonModel):
            def predict(self, context, model_input, params=None):
                return model_input * 2

    ``predict`` may also leave out ``context``: ``predict(self, model_input, params=None)``.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once after loading, with the model's artifacts and config."""

    def predict(self, context: PythonModelContext, model_input: Any, params: Any = None) -> Any:
        """Compute predictions for ``model_input``."""
        raise NotImplementedError(f"{type(self).__name__} must implement predict()")

    @property
    def predict_type_hints(self) -> TypeHints:
        """What MLflow's loader should make of ``predict``'s type hints: nothing.

        ``mlflow.pyfunc.load_model`` reads this attribute of every custom model
        and converts inputs by it (a DataFrame into a list for ``list[str]``).
        modelyard passes inputs through as given, so it reports no hints and
        MLflow, loading a model saved here, passes them through the same way.
        """
        return TypeHints()


@dataclass(frozen=True)
class TypeHints:
    """Type hints of ``predict`` as MLflow's loader reads them (``input``, ``output``)."""

    input: Any = None
    output: Any = None


class PythonModelFlavor:
    """The ``python_model`` flavor."""

    name = "python_model"
    loader_modules = ("mlflow.pyfunc.model", "modelyard.flavors.python_model")
    config_keys: frozenset[str] = frozenset()

    def can_save(self, obj: Any) -> bool:
        """Instances of :class:`PythonModel` subclasses."""
        return isinstance(obj, PythonModel)

    def save(self, obj: Any, model_dir: Path, options: Mapping[str, Any]) -> SavedFlavor:
        """Pickle the model with cloudpickle and copy ``artifacts`` into the model."""
        reject_unknown_options(self.name, options, {"artifacts"})
        artifacts = _copy_artifacts(options.get("artifacts") or {}, model_dir)
        _pickle.dump(obj, model_dir / PICKLE_FILE, serializer="cloudpickle")
        return SavedFlavor(
            flavor_conf={},
            pyfunc_conf={
                "loader_module": "mlflow.pyfunc.model",
                "python_model": PICKLE_FILE,
                "cloudpickle_version": _cloudpickle_version(),
                "artifacts": artifacts,
                "code": None,
                "streamable": False,
            },
            requirements=(pinned("cloudpickle"),),
        )

    def load(self, model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> Any:
        """Unpickle the model and call its ``load_context``."""
        conf = mlmodel.pyfunc
        if conf.get("model_code_path"):
            raise CorruptModelFile(
                model_dir / str(conf["model_code_path"]).rsplit("/", 1)[-1],
                self.name,
                "models-from-code (a script executed at load time) is not supported: "
                "modelyard never executes a model's script on load",
            )
        rel = conf.get("python_model")
        if not rel:
            raise CorruptModelFile(model_dir, self.name, "MLmodel names no python_model file")
        opener = _opener(conf.get("python_model_compression"))
        model = _pickle.load(model_dir / str(rel), flavor=self.name, opener=opener)
        if not hasattr(model, "predict"):
            raise CorruptModelFile(
                model_dir / str(rel), self.name, f"{type(model).__name__} has no predict method"
            )
        load_context = getattr(model, "load_context", None)
        if callable(load_context):
            load_context(_context(model_dir, mlmodel, config))
        return model

    def predictor(self, native: Any, mlmodel: MLmodel, config: Mapping[str, Any]) -> Predictor:
        """Call the user's ``predict``, with ``context`` and ``params`` when it takes them."""
        fn = _user_predict(native)
        names = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ][1:]  # drop self
        takes_context = bool(names) and names[0] == "context"
        takes_params = "params" in names
        context = _context(mlmodel.path or Path("."), mlmodel, config)

        def predict(data: Any, params: Mapping[str, Any] | None) -> Any:
            args = (native, context, data) if takes_context else (native, data)
            if takes_params:
                return fn(*args, params=dict(params) if params is not None else None)
            return fn(*args)

        return predict


def _opener(compression: Any) -> Callable[..., Any]:
    if not compression:
        return open
    module = _COMPRESSION.get(str(compression))
    if module is None:
        raise CorruptModelFile(PICKLE_FILE, "python_model", f"unknown compression {compression!r}")
    return importlib.import_module(module).open  # type: ignore[no-any-return]


def _context(model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> PythonModelContext:
    return PythonModelContext(_artifact_paths(model_dir, mlmodel.pyfunc), dict(config) or None)


def _user_predict(model: Any) -> Callable[..., Any]:
    return unwrap_mlflow(type(model).predict)


def unwrap_mlflow(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The user's own function under MLflow's type-hint wrappers.

    MLflow wraps ``predict`` of every ``PythonModel`` subclass, and every plain
    function model, for type-hint validation (the wrapper is marked
    ``_is_pyfunc`` and keeps the original as ``__wrapped__``). We enforce
    signatures ourselves, so we call the user's function directly: the wrapper
    refers to MLflow internals that are not installed here.
    """
    while getattr(fn, "_is_pyfunc", False) and callable(getattr(fn, "__wrapped__", None)):
        fn = fn.__wrapped__  # type: ignore[attr-defined]
    return fn


def _copy_artifacts(artifacts: Mapping[str, Any], model_dir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    used: set[str] = set()
    for name, uri in artifacts.items():
        src = _local_artifact_path(name, uri)
        rel = f"{ARTIFACTS_DIR}/{src.name}"
        i = 0
        while rel in used:
            rel = f"{ARTIFACTS_DIR}/{i}/{src.name}"
            i += 1
        used.add(rel)
        dest = model_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copy2(src, dest)
        out[str(name)] = {"path": rel, "uri": str(uri)}
    return out


def _local_artifact_path(name: str, uri: Any) -> Path:
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme == "file":
        text = parsed.path
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise ValueError(
            f"artifact {name!r}: only local paths are supported, not {parsed.scheme}:// URIs"
        )
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"artifact {name!r}: {text!r} does not exist")
    return path


def _artifact_paths(model_dir: Path, conf: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    root = model_dir.resolve()
    for name, spec in (conf.get("artifacts") or {}).items():
        rel = spec.get("path") if isinstance(spec, dict) else None
        target = (model_dir / str(rel)).resolve() if rel else None
        if target is None or not target.is_relative_to(root):
            raise CorruptModelFile(
                model_dir, "python_model", f"artifact {name!r} points outside the model: {rel!r}"
            )
        out[str(name)] = str(target)
    return out


def _cloudpickle_version() -> str:
    import cloudpickle

    return str(cloudpickle.__version__)


flavor = PythonModelFlavor()
