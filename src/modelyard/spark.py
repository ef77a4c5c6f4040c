"""Apache Spark integration: ``modelyard.spark.udf(spark, uri)``.

Needs ``pyspark`` (``pip install 'modelyard[spark]'``); see
:mod:`modelyard.batch.spark` for how the model reaches the executors.

>>> from modelyard.spark import udf                          # doctest: +SKIP
>>> df.withColumn("prediction", udf(spark, "./iris-model")("a", "b", "c", "d"))  # doctest: +SKIP
"""

from __future__ import annotations

from modelyard.batch.spark import ModelUDF, udf

__all__ = ["ModelUDF", "udf"]
