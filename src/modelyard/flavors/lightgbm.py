"""LightGBM models: the native ``Booster`` and the scikit-learn API (``LGBMClassifier``, ...).

Files and MLmodel keys are MLflow's (``mlflow/lightgbm/__init__.py``):

- a ``lightgbm.Booster`` is ``model.lgb``, LightGBM's own text format
  (``Booster.save_model``), read back with ``Booster(model_file=...)``: a parser
  of numbers and trees, no code runs;
- a scikit-learn model (``LGBMClassifier``, ``LGBMRegressor``, ``LGBMRanker``) is
  serialized like a scikit-learn estimator: ``model.pkl`` (``cloudpickle``, the
  default here as for the sklearn flavor, or ``pickle``) through modelyard's
  pickle path, or ``model.skops`` (MLflow's default outside Databricks) through
  the sklearn flavor's skops loader. A pickle runs code from the file when it
  loads: load only what you trust.

``flavors.lightgbm`` holds ``data``, ``model_class``, ``lgb_version`` and, for the
scikit-learn API, ``serialization_format`` and ``skops_trusted_types``;
``python_function`` has ``loader_module: mlflow.lightgbm`` and ``data``.

predict is MLflow's: ``model.predict(data)``, so a Booster returns what its
objective says (probabilities for a classifier) and a classifier returns labels;
``params`` are ignored, as in MLflow. ``model_config={"predict_fn":
"predict_proba"}`` (modelyard's) calls another method of a scikit-learn model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelyard.errors import ConfigError, CorruptModelFile
from modelyard.flavors import _pickle
from modelyard.flavors._base import Predictor, SavedFlavor, inside, reject_unknown_options
from modelyard.format.environment import pinned
from modelyard.format.mlmodel import MLmodel

BOOSTER = "lightgbm.basic.Booster"
BOOSTER_FILE = "model.lgb"
FORMATS = ("cloudpickle", "pickle", "skops")
_FILES = {"cloudpickle": "model.pkl", "pickle": "model.pkl", "skops": "model.skops"}
# What a skops file of LightGBM's scikit-learn API holds beyond scikit-learn's own
# types (the list MLflow 3.17 writes). LightGBM's estimators keep their Booster as
# its text model, which the C library parses; nothing of theirs calls code that
# the file names, so they are trusted by default like scikit-learn's estimators.
SKOPS_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRanker",
        "lightgbm.sklearn.LGBMRegressor",
    }
)


class LightGBMFlavor:
    """The ``lightgbm`` flavor."""

    name = "lightgbm"
    loader_modules = ("mlflow.lightgbm", "modelyard.flavors.lightgbm")
    config_keys = frozenset({"predict_fn", "skops_trusted_types"})

    def can_save(self, obj: Any) -> bool:
        """A ``Booster`` or an ``LGBMModel`` subclass, checked without importing lightgbm.

        The scikit-learn classes derive from scikit-learn's too: this flavor is
        asked before the sklearn one, so they keep MLflow's lightgbm layout.
        """
        return any(
            (getattr(c, "__module__", ""), getattr(c, "__qualname__", ""))
            in {("lightgbm.basic", "Booster"), ("lightgbm.sklearn", "LGBMModel")}
            for c in type(obj).__mro__
        )

    def save(self, obj: Any, model_dir: Path, options: Mapping[str, Any]) -> SavedFlavor:
        """A Booster as ``model.lgb``; a scikit-learn model in ``serialization_format``."""
        reject_unknown_options(self.name, options, {"serialization_format"})
        import lightgbm

        cls = type(obj)
        conf: dict[str, Any] = {
            "code": None,
            "lgb_version": str(lightgbm.__version__),
            "model_class": f"{cls.__module__}.{cls.__qualname__}",
        }
        requirements = [pinned("lightgbm")]
        if isinstance(obj, lightgbm.Booster):
            if "serialization_format" in options:
                raise ValueError(
                    "serialization_format applies to LightGBM's scikit-learn API; "
                    "a Booster is always saved in LightGBM's text format (model.lgb)"
                )
            obj.save_model(str(model_dir / BOOSTER_FILE))
            file = BOOSTER_FILE
        elif isinstance(obj, lightgbm.LGBMModel):
            fmt = options.get("serialization_format", "cloudpickle")
            if fmt not in FORMATS:
                raise ValueError(f"serialization_format must be one of {FORMATS}, not {fmt!r}")
            file = _FILES[fmt]
            trusted = None
            if fmt == "skops":
                import skops.io

                skops.io.dump(obj, model_dir / file)
                # MLflow loads skops files with exactly this list; modelyard never reads it.
                trusted = sorted(skops.io.get_untrusted_types(file=model_dir / file))
                requirements.append(pinned("skops"))
            else:
                _pickle.dump(obj, model_dir / file, serializer=fmt)
                if fmt == "cloudpickle":
                    requirements.append(pinned("cloudpickle"))
            requirements.append(pinned("scikit-learn"))
            conf.update(serialization_format=fmt, skops_trusted_types=trusted)
        else:
            raise TypeError(
                f"the lightgbm flavor saves lightgbm.Booster or LGBMModel, not {cls.__name__}"
            )
        return SavedFlavor(
            flavor_conf={**conf, "data": file},
            pyfunc_conf={"loader_module": "mlflow.lightgbm", "data": file},
            requirements=tuple(requirements),
        )

    def load(self, model_dir: Path, mlmodel: MLmodel, config: Mapping[str, Any]) -> Any:
        """The Booster or the scikit-learn model, by ``model_class`` as MLflow decides."""
        conf = mlmodel.flavors.get(self.name) or {}
        rel = conf.get("data") or mlmodel.pyfunc.get("data")
        if not rel:
            raise CorruptModelFile(model_dir, self.name, "MLmodel names no data file")
        file = inside(model_dir, rel, self.name)
        if not file.is_file():
            raise CorruptModelFile(file, self.name, "the file is missing")
        if (conf.get("model_class") or BOOSTER) == BOOSTER:
            import lightgbm

            try:
                return lightgbm.Booster(model_file=str(file))
            except Exception as exc:
                raise CorruptModelFile(file, self.name, f"{type(exc).__name__}: {exc}") from exc
        # MLflow: a missing serialization_format means cloudpickle (read like pickle).
        fmt = conf.get("serialization_format") or "cloudpickle"
        if fmt == "skops":
            from modelyard.flavors.sklearn import load_skops

            return load_skops(
                file, config.get("skops_trusted_types"), flavor=self.name, vouched=SKOPS_TYPES
            )
        if fmt not in FORMATS:
            raise CorruptModelFile(file, self.name, f"unknown serialization_format {fmt!r}")
        return _pickle.load(file, flavor=self.name)

    def predictor(self, native: Any, mlmodel: MLmodel, config: Mapping[str, Any]) -> Predictor:
        """``predict`` (or ``predict_fn``) on the data; params are ignored, as in MLflow."""
        name = str(config.get("predict_fn") or "predict")
        fn = getattr(native, name, None)
        if not callable(fn):
            raise ConfigError(
                f"model_config 'predict_fn': {type(native).__name__} has no method {name!r}",
                keys=["predict_fn"],
                declared=["predict_fn"],
            )

        def predict(data: Any, params: Mapping[str, Any] | None) -> Any:
            return fn(data)

        return predict


flavor = LightGBMFlavor()
