"""XGBoost models: the native ``Booster`` and the scikit-learn API (``XGBClassifier``, ...).

Files and MLmodel keys are MLflow's (``mlflow/xgboost/__init__.py``): one file
``model.<model_format>`` at the root, written by the model's own ``save_model``;
``flavors.xgboost`` holds ``data``, ``model_class`` (the fully qualified class,
instantiated empty and then ``load_model``-ed), ``model_format`` and
``xgb_version``; ``python_function`` has ``loader_module: mlflow.xgboost`` and
the same ``data``. So MLflow loads what we save and we load what MLflow saves.

Formats (``save_model(..., model_format=...)``): ``"ubj"`` (default, as MLflow
3.x), ``"json"`` and ``"xgb"``. All three are data, not code: loading parses
XGBoost's own model schema and runs nothing from the file. ``"xgb"`` is
MLflow's old default name; xgboost >= 3.1 writes UBJSON bytes under it (the
extension says nothing about the encoding) and loading sniffs the bytes.

predict follows MLflow's pyfunc: a ``Booster`` predicts on ``DMatrix(data)``
(probabilities or raw scores, as the objective says), a scikit-learn model calls
its ``predict`` (class labels for a classifier), both with
``validate_features=True``; ``params`` whose names the predict method takes
(``output_margin``, ``iteration_range``, ...) are passed on, others dropped with
a warning. ``model_config={"predict_fn": "predict_proba"}`` (modelyard's, as
for sklearn) calls another method of a scikit-learn model; ``unwrap()`` gives the
native object.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import ConfigError, CorruptModelFile, SchemaError
from modelyard.flavors._base import Predictor, SavedFlavor, inside, reject_unknown_options
from modelyard.format.environment import installed_version
from modelyard.format.mlmodel import MLmodel

FORMATS = ("ubj", "json", "xgb")
BOOSTER = "xgboost.core.Booster"
# Distributions that install `import xgboost`: the CPU-only wheel first (what
# this project installs), then the default one with CUDA.
_DISTRIBUTIONS = ("xgboost-cpu", "xgboost")
logger = logging.getLogger("modelyard")


class XGBoostFlavor:
    """The ``xgboost`` flavor."""

    name = "xgboost"
    loader_modules = ("mlflow.xgboost", "modelyard.flavors.xgboost")
    config_keys = frozenset({"predict_fn"})

    def can_save(self, obj: Any) -> bool:
        """A ``Booster`` or an ``XGBModel`` subclass, checked without importing xgboost.

        The scikit-learn classes derive from scikit-learn's too: this flavor is
        asked before the sklearn one, so they are saved in XGBoost's own format.
        """
        return any(
            (getattr(c, "__module__", ""), getattr(c, "__qualname__", ""))
            in {("xgboost.core", "Booster"), ("xgboost.sklearn", "XGBModel")}
            for c in type(obj).__mro__
        )

    def save(self, obj: Any, model_dir: Path, options: Mapping[str, Any]) -> SavedFlavor:
        """Write ``model.<model_format>``; option ``model_format`` (``ubj``, ``json``, ``xgb``)."""
        reject_unknown_options(self.name, options, {"model_format"})
        fmt = options.get("model_format", "ubj")
        if fmt not in FORMATS:
            raise ValueError(f"model_format must be one of {FORMATS}, not {fmt!r}")
        import xgboost

        if not isinstance(obj, (xgboost.Booster, xgboost.XGBModel)):
            raise TypeError(
                f"the xgboost flavor saves xgboost.Booster or XGBModel, not {type(obj).__name__}"
            )
        file = f"model.{fmt}"
        if fmt == "xgb":
            # xgboost >= 3.1 writes UBJSON for an unknown extension and warns about
            # it; write the same bytes under the name MLflow expects, quietly.
            obj.save_model(model_dir / "model.ubj")
            (model_dir / "model.ubj").rename(model_dir / file)
        else:
            obj.save_model(model_dir / file)
        cls = type(obj)
        return SavedFlavor(
            flavor_conf={
                "code": None,
                "data": file,
                "model_class": f"{cls.__module__}.{cls.__qualname__}",
                "model_format": fmt,
                "xgb_version": str(xgboost.__version__),
            },
            pyfunc_conf={"loader_module": "mlflow.xgboost", "data": file},
            requirements=(xgboost_requirement(),),
        )

    def load(self, model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> Any:
        """An empty ``model_class`` (a Booster when MLmodel names none) with the file loaded."""
        conf = mlmodel.flavors.get(self.name) or {}
        rel = conf.get("data") or mlmodel.pyfunc.get("data")
        if not rel:
            raise CorruptModelFile(model_dir, self.name, "MLmodel names no data file")
        file = inside(model_dir, rel, self.name)
        cls = model_class(str(conf.get("model_class") or BOOSTER), file)
        model = cls()
        try:
            # .ubj and .json by path; anything else (model.xgb) as bytes, which
            # xgboost sniffs without warning about the extension.
            source: Path | bytearray = (
                file if file.suffix in (".ubj", ".json") else bytearray(file.read_bytes())
            )
            model.load_model(source)
        except FileNotFoundError as exc:
            raise CorruptModelFile(file, self.name, "the file is missing") from exc
        except Exception as exc:
            raise CorruptModelFile(file, self.name, _load_failure(file, exc)) from exc
        return model

    def predictor(self, native: Any, mlmodel: MLmodel, config: Mapping[str, Any]) -> Predictor:
        """MLflow's pyfunc predict, or ``predict_fn`` of a scikit-learn model."""
        import xgboost

        name = config.get("predict_fn")
        if isinstance(native, xgboost.Booster):
            if name not in (None, "predict"):
                raise ConfigError(
                    f"model_config 'predict_fn': a Booster only has 'predict', not {name!r}",
                    keys=["predict_fn"],
                    declared=["predict_fn"],
                )
            booster = native

            def booster_predict(data: Any, params: Mapping[str, Any] | None) -> Any:
                kwargs = accepted_params(xgboost.Booster.predict, params)
                return _validated(lambda: booster.predict(_dmatrix(xgboost, data), **kwargs))

            return booster_predict
        fn = getattr(native, str(name or "predict"), None)
        if not callable(fn):
            raise ConfigError(
                f"model_config 'predict_fn': {type(native).__name__} has no method {name!r}",
                keys=["predict_fn"],
                declared=["predict_fn"],
            )
        method: Callable[..., Any] = fn
        # MLflow's pyfunc calls predict(..., validate_features=True); a predict_fn
        # that takes no such argument gets none.
        checks = {"validate_features": True} if _takes(method, "validate_features") else {}

        def sklearn_predict(data: Any, params: Mapping[str, Any] | None) -> Any:
            kwargs = accepted_params(method, params)
            return _validated(lambda: method(data, **checks, **kwargs))

        return sklearn_predict


def model_class(qualified: str, file: Path) -> type[Any]:
    """The class MLmodel names, if it is XGBoost's ``Booster`` or an ``XGBModel``.

    MLflow imports whatever ``model_class`` says; modelyard only instantiates
    XGBoost's own classes, so an MLmodel cannot make a load import other code.
    """
    module_name, _, qualname = qualified.rpartition(".")
    if module_name != "xgboost" and not module_name.startswith("xgboost."):
        raise CorruptModelFile(
            file, "xgboost", f"model_class {qualified!r} is not an XGBoost class"
        )
    import importlib

    import xgboost

    try:
        cls = getattr(importlib.import_module(module_name), qualname)
    except (ImportError, AttributeError) as exc:
        raise CorruptModelFile(
            file,
            "xgboost",
            f"model_class {qualified!r} does not exist in xgboost {xgboost.__version__}",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, (xgboost.Booster, xgboost.XGBModel))):
        raise CorruptModelFile(
            file, "xgboost", f"model_class {qualified!r} is no Booster or XGBModel"
        )
    return cls


def accepted_params(fn: Callable[..., Any], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``params`` ``fn`` takes as keywords; the others are dropped with a warning, as in
    MLflow (``validate_features`` and the data argument are the flavor's, never a caller's)."""
    if not params:
        return {}
    try:
        names = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):  # a builtin without a signature: pass nothing on
        names = set()
    names -= {"self", "data", "X", "validate_features"}
    kept = {k: v for k, v in params.items() if k in names}
    dropped = sorted(set(params) - set(kept))
    if dropped:
        logger.warning(
            "xgboost: params %s are not arguments of %s and were ignored",
            dropped,
            getattr(fn, "__qualname__", "predict"),
        )
    return kept


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def xgboost_requirement() -> str:
    """``<distribution>==<version>`` of whichever distribution installed ``import xgboost``.

    The environment check treats ``xgboost`` and ``xgboost-cpu`` as one package.
    """
    for dist in _DISTRIBUTIONS:
        version = installed_version(dist)
        if version is not None:
            return f"{dist}=={version}"
    return "xgboost"


def _dmatrix(xgboost: Any, data: Any) -> Any:
    if isinstance(data, xgboost.DMatrix):
        return data
    try:
        return xgboost.DMatrix(data)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"xgboost cannot read this input: {exc}") from exc


def _validated(call: Callable[[], Any]) -> Any:
    # validate_features=True makes xgboost raise ValueError on missing, extra or
    # misordered feature names: the input's fault, so a SchemaError (a 4xx when
    # served), not a crash.
    try:
        return call()
    except ValueError as exc:
        if "feature" in str(exc):
            raise SchemaError(f"the input's features do not match the model's: {exc}") from exc
        raise


def _load_failure(file: Path, exc: Exception) -> str:
    reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc) else ''}"
    try:
        head = file.read_bytes()[:1]
    except OSError:
        return reason
    if head != b"{":  # JSON and UBJSON models both open with '{'
        import xgboost

        return (
            f"{reason} (this looks like XGBoost's old binary format, which xgboost "
            f"{xgboost.__version__} no longer reads: load it with xgboost<3.1 and save it "
            "again as ubj)"
        )
    return reason


flavor = XGBoostFlavor()
