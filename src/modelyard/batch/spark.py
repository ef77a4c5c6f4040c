"""Score Spark DataFrames with any model: ``modelyard.spark.udf``.

>>> from modelyard.spark import udf                                     # doctest: +SKIP
>>> predict = udf(spark, "models:/fraud@champion")                      # doctest: +SKIP
>>> df.withColumn("score", predict("amount", "country"))                # doctest: +SKIP
>>> df.withColumn("score", predict(struct(*feature_columns)))           # doctest: +SKIP

The URI is resolved once, on the driver: every executor scores the same
digest even if the alias moves while the job runs. The model directory
reaches each executor once (see :mod:`modelyard.batch._shipping`) and is
loaded once per Python worker, then reused for every batch that worker sees.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.batch._shipping import Shipped, materialize, ship
from modelyard.batch._udf_io import ResultType, align_inputs, coerce_result
from modelyard.errors import ResultTypeError

ENVS = ("local", "uv")
# One loaded model per Python worker process, keyed by what makes it differ.
_LOADED: dict[str, Any] = {}


@dataclass(frozen=True)
class _WorkerSpec:
    """Everything a Python worker needs, pickled into the UDF."""

    uri: str
    shipped: Shipped
    model_config: Mapping[str, Any] | None
    params: Mapping[str, Any] | None
    env: str
    env_dir: str | None
    result: ResultType
    names: tuple[str, ...]
    required: tuple[str, ...]

    @property
    def key(self) -> str:
        config = json.dumps(self.model_config, sort_keys=True, default=str)
        return f"{self.shipped.digest}|{self.env}|{self.env_dir}|{config}"


def udf(  # noqa: PLR0917 - MLflow's spark_udf takes these positionally too
    spark: Any,
    uri: str,
    result_type: Any = "double",
    params: Mapping[str, Any] | None = None,
    model_config: Mapping[str, Any] | str | None = None,
    env: str = "local",
) -> ModelUDF:
    """A Spark pandas UDF that scores rows with the model at ``uri``.

    ``result_type`` is a Spark type or its DDL string: ``"double"``,
    ``"long"``, ``"string"``, ``"array<double>"``, or
    ``"struct<a:double,b:double>"`` for multi-output models. ``model_config``
    (a dict or a YAML file, read here on the driver) overrides the saved config;
    ``params`` go to every ``predict``. ``env="uv"`` runs the model in an
    environment built from its own requirements (see :mod:`modelyard.isolation.envs`).

    Call the result with column names or Columns (mapped to the signature's
    inputs by name, else by position), with one ``struct(...)`` column, or with
    nothing to use the signature's input names.
    """
    from modelyard.batch import _signature
    from modelyard.flavors import flavor_for_mlmodel
    from modelyard.format.mlmodel import MLmodel
    from modelyard.format.signature import Signature
    from modelyard.loading.configure import merge_config, read_config
    from modelyard.loading.fetch import fetch
    from modelyard.loading.resolve import resolve

    if env not in ENVS:
        raise ValueError(f"env must be one of {ENVS}, not {env!r}")
    spark_type, rtype = _result_type(result_type)
    ref = resolve(uri)
    local = fetch(ref)
    mlmodel = MLmodel.read(local.path)
    config = read_config(model_config) if model_config is not None else None
    if config is not None:  # a bad key fails here, on the driver, not in every task
        merge_config(mlmodel, config, flavor_for_mlmodel(mlmodel).config_keys)
    env_dir = None
    if env == "uv":
        from modelyard.isolation.envs import ensure_env

        env_dir = str(ensure_env(local.path).path)
    block = mlmodel.signature
    signature = Signature.from_mlmodel(block) if block else None
    columns = _signature.input_columns(signature)
    optional = set(_optional_inputs(signature))
    spec = _WorkerSpec(
        uri=ref.uri,
        shipped=ship(spark, local.path, local.digest),
        model_config=config,
        params=dict(params) if params is not None else None,
        env=env,
        env_dir=env_dir,
        result=rtype,
        names=tuple(n for n, _ in columns),
        required=tuple(n for n, _ in columns if n not in optional),
    )
    return ModelUDF(spec, spark_type)


class ModelUDF:
    """Callable returned by :func:`udf`: ``model_udf(*columns) -> Column``."""

    def __init__(self, spec: _WorkerSpec, spark_type: Any) -> None:
        self._spec = spec
        self.return_type = spark_type

    @property
    def digest(self) -> str:
        """The model digest every executor scores with."""
        return self._spec.shipped.digest

    def __call__(self, *cols: Any) -> Any:
        from pyspark.sql import functions as F

        if not cols:
            if not self._spec.names:
                raise TypeError(
                    f"{self._spec.uri} declares no named inputs: pass the columns to score"
                )
            cols = self._spec.names
        if len(cols) == 1:
            # One argument: a struct column arrives as a DataFrame with its field names;
            # a single plain column arrives as a Series, named here.
            return self._pandas_udf(_column_name(cols[0]))(cols[0])
        return self._pandas_udf(None)(F.struct(*cols))

    def _pandas_udf(self, single_name: str | None) -> Any:
        import pandas as pd
        from pyspark.sql.functions import pandas_udf

        spec = self._spec

        def predict(batches: Any) -> Any:
            yield from _score_batches(spec, single_name, batches)

        out = pd.DataFrame if spec.result.kind == "struct" else pd.Series
        # Spark picks the UDF kind from real annotation objects; this module postpones
        # its annotations, so they are set here.
        predict.__annotations__ = {
            "batches": Iterator[typing.Union[pd.Series, pd.DataFrame]],  # noqa: UP007
            "return": Iterator[out],  # type: ignore[valid-type]
        }
        return pandas_udf(predict, returnType=self.return_type)


def _score_batches(spec: _WorkerSpec, single_name: str | None, batches: Any) -> Iterator[Any]:
    """Worker side: load once per process, then score batch after batch."""
    import pandas as pd

    model = _worker_model(spec)
    for item in batches:
        batch = item[0] if isinstance(item, tuple) else item
        frame = batch if isinstance(batch, pd.DataFrame) else batch.to_frame(single_name or "0")
        frame = align_inputs(frame, spec.names, spec.required)
        pred = model.predict(frame, spec.params)
        yield coerce_result(pred, spec.result, len(frame))


def _worker_model(spec: _WorkerSpec) -> Any:
    model = _LOADED.get(spec.key)
    if model is None:
        path = materialize(spec.shipped)
        if spec.env == "uv":
            from modelyard.isolation.isolated import IsolatedModel

            model = IsolatedModel.start(str(path), model_config=spec.model_config)
        else:
            from modelyard.loading import load_model

            model = load_model(path, model_config=spec.model_config)
        _LOADED[spec.key] = model
    return model


def _column_name(col: Any) -> str | None:
    if isinstance(col, str):
        return col
    # "Column<'name'>" in classic PySpark and Spark Connect alike
    m = re.fullmatch(r"Column<'(.*)'>", str(col), flags=re.DOTALL)
    if m is None:
        return None
    text = m.group(1)
    alias = re.search(r" AS `?([^`]+)`?$", text)
    return alias.group(1) if alias else text.strip("`")


def _optional_inputs(signature: Any) -> list[str]:
    specs = getattr(signature, "inputs", None) or ()
    out = []
    for s in specs:
        get = s.get if hasattr(s, "get") else lambda k, s=s: getattr(s, k, None)
        if get("required") is False and get("name") is not None:
            out.append(str(get("name")))
    return out


def _result_type(result_type: Any) -> tuple[Any, ResultType]:
    from pyspark.sql import types as T

    if isinstance(result_type, str):
        try:
            spark_type = T.DataType.fromDDL(result_type)
        except Exception as exc:
            raise ResultTypeError(result_type, "a type name", f"not a Spark type: {exc}") from exc
    elif isinstance(result_type, T.DataType):
        spark_type = result_type
    else:
        raise ResultTypeError(str(result_type), type(result_type).__name__, "not a Spark type")
    return spark_type, _convert(spark_type, str(result_type))


def _convert(t: Any, given: str) -> ResultType:
    from pyspark.sql import types as T

    atomic = {
        T.DoubleType: "double",
        T.FloatType: "float",
        T.LongType: "long",
        T.IntegerType: "integer",
        T.ShortType: "short",
        T.ByteType: "byte",
        T.BooleanType: "boolean",
        T.StringType: "string",
        T.BinaryType: "binary",
    }
    for cls, kind in atomic.items():
        if isinstance(t, cls):
            return ResultType(kind)
    if isinstance(t, T.ArrayType):
        return ResultType("array", element=_convert(t.elementType, given))
    if isinstance(t, T.StructType):
        return ResultType("struct", fields=tuple((f.name, _convert(f.dataType, given)) for f in t))
    raise ResultTypeError(
        given,
        t.simpleString(),
        "supported: numbers, boolean, string, binary, array<...> and struct<...> of those",
    )
