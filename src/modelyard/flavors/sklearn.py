"""scikit-learn estimators and pipelines.

Files and MLmodel keys are MLflow's (``model.pkl`` / ``model.skops``,
``loader_module: mlflow.sklearn``), so MLflow loads what we save and we load
what MLflow saves. Three serializations: ``cloudpickle`` (default, as MLflow
outside Databricks used to), ``pickle`` and ``skops``.

skops files are loaded with a trusted-types list given by the caller
(``model_config={"skops_trusted_types": [...]}``) or modelyard's own safe
default (:mod:`modelyard.flavors._skops_trust`); the list MLflow stores in the
file is never used, since whoever wrote the file also wrote that list. On
save we still write that list (the types of the file skops does not trust by
itself) because MLflow needs it to load what we save.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import ConfigError, CorruptModelFile, UntrustedTypes
from modelyard.flavors import _pickle, _skops_trust
from modelyard.flavors._base import Predictor, SavedFlavor, reject_unknown_options, type_modules
from modelyard.format.environment import pinned
from modelyard.format.mlmodel import MLmodel

FORMATS = ("cloudpickle", "pickle", "skops")
_FILES = {"cloudpickle": "model.pkl", "pickle": "model.pkl", "skops": "model.skops"}


class SklearnFlavor:
    """The ``sklearn`` flavor."""

    name = "sklearn"
    loader_modules = ("mlflow.sklearn", "modelyard.flavors.sklearn")
    config_keys = frozenset({"predict_fn", "skops_trusted_types"})

    def can_save(self, obj: Any) -> bool:
        """Any object whose class derives from a scikit-learn class and can ``fit``."""
        return hasattr(obj, "fit") and any(m.startswith("sklearn.") for m in type_modules(obj))

    def save(self, obj: Any, model_dir: Path, options: Mapping[str, Any]) -> SavedFlavor:
        """Serialise the estimator; options: ``serialization_format``, ``predict_fn``."""
        reject_unknown_options(self.name, options, {"serialization_format", "predict_fn"})
        fmt = options.get("serialization_format", "cloudpickle")
        predict_fn = options.get("predict_fn", "predict")
        if fmt not in FORMATS:
            raise ValueError(f"serialization_format must be one of {FORMATS}, not {fmt!r}")
        if not callable(getattr(obj, predict_fn, None)):
            raise ValueError(f"{type(obj).__name__} has no method {predict_fn!r} (predict_fn)")
        file = _FILES[fmt]
        trusted_for_mlflow = None
        if fmt == "skops":
            import skops.io

            skops.io.dump(obj, model_dir / file)
            serializer_req = pinned("skops")
            # MLflow loads skops files with exactly this list; we never read it.
            trusted_for_mlflow = sorted(skops.io.get_untrusted_types(file=model_dir / file))
        else:
            _pickle.dump(obj, model_dir / file, serializer=fmt)
            serializer_req = pinned("cloudpickle") if fmt == "cloudpickle" else ""
        return SavedFlavor(
            flavor_conf={
                "pickled_model": file,
                "serialization_format": fmt,
                "sklearn_version": _sklearn_version(),
                "code": None,
                **({"skops_trusted_types": trusted_for_mlflow or None} if fmt == "skops" else {}),
            },
            pyfunc_conf={
                "loader_module": "mlflow.sklearn",
                "model_path": file,
                "predict_fn": predict_fn,
            },
            requirements=tuple(filter(None, (pinned("scikit-learn"), serializer_req))),
        )

    def load(self, model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> Any:
        """Deserialise the estimator with the format recorded in MLmodel."""
        conf = mlmodel.flavors.get(self.name, {})
        file = model_dir / str(conf.get("pickled_model") or mlmodel.pyfunc.get("model_path"))
        # MLflow: a missing serialization_format means pickle.
        fmt = conf.get("serialization_format") or "pickle"
        if fmt == "skops":
            return load_skops(file, config.get("skops_trusted_types"))
        if fmt not in FORMATS:
            raise CorruptModelFile(file, self.name, f"unknown serialization_format {fmt!r}")
        return _pickle.load(file, flavor=self.name)

    def predictor(self, native: Any, mlmodel: MLmodel, config: Mapping[str, Any]) -> Predictor:
        """Call ``predict_fn`` (``predict`` unless saved or configured otherwise)."""
        name = str(config.get("predict_fn") or mlmodel.pyfunc.get("predict_fn") or "predict")
        fn = getattr(native, name, None)
        if not callable(fn):
            raise CorruptModelFile(
                mlmodel.path or ".", self.name, f"{type(native).__name__} has no method {name!r}"
            )

        def predict(data: Any, params: Mapping[str, Any] | None) -> Any:
            return fn(data)

        return predict


def is_safe_type(qualified: str) -> bool:
    """Whether modelyard trusts a type found in a skops file by default.

    >>> is_safe_type("sklearn.linear_model._logistic.LogisticRegression")
    True
    >>> is_safe_type("builtins.eval")
    False
    """
    return _skops_trust.is_safe_type(qualified)


def load_skops(
    file: Path, trusted: Any, *, flavor: str = "sklearn", vouched: frozenset[str] = frozenset()
) -> Any:
    """Load a skops file, trusting ``trusted`` (the caller's list) or, when the caller
    names none, modelyard's safe default plus ``vouched`` (the classes a flavor's own
    framework defines, such as LightGBM's estimators); the file's own list is never used.
    """
    try:
        import skops.io
    except ModuleNotFoundError as exc:
        raise CorruptModelFile(
            file, flavor, "it is a skops file and skops is not installed (modelyard[sklearn])"
        ) from exc
    try:
        found = skops.io.get_untrusted_types(file=file)
    except Exception as exc:
        raise CorruptModelFile(file, flavor, f"{type(exc).__name__}: {exc}") from exc
    if trusted is not None and (
        isinstance(trusted, (str, bytes)) or not all(isinstance(t, str) for t in trusted)
    ):
        raise ConfigError(
            "model_config 'skops_trusted_types' must be a list of type names, "
            f"not {type(trusted).__name__}",
            keys=["skops_trusted_types"],
        )
    allowed = (
        set(trusted)
        if trusted is not None
        else {t for t in found if t in vouched or is_safe_type(t)}
    )
    refused = sorted(set(found) - allowed)
    if refused:
        raise UntrustedTypes(file, refused)
    try:
        model = skops.io.load(file, trusted=sorted(set(found)))
    except Exception as exc:
        raise CorruptModelFile(file, flavor, f"{type(exc).__name__}: {exc}") from exc
    if trusted is None and _skops_trust.TREE in found:
        # Trusted by default only once its content is known to be in bounds.
        report = _skops_trust.tree_problems(model)
        if report.corrupt:
            raise CorruptModelFile(
                file,
                flavor,
                f"{_skops_trust.TREE} failed modelyard's safety checks: {report.corrupt[0]}",
            )
        if report.unvouched:
            raise UntrustedTypes(file, [_skops_trust.TREE])
    return model


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)


flavor = SklearnFlavor()
