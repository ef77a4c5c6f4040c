"""Batch scoring: files in, predictions out, in constant memory.

- :mod:`modelyard.batch.files`: streaming readers and atomic writers for CSV,
  Parquet and JSON lines (also ``-`` for stdin/stdout);
- :mod:`modelyard.batch.scoring`: the chunked scoring loop behind ``modelyard predict``;
- :mod:`modelyard.batch.spark`: the Apache Spark pandas UDF (``modelyard.spark.udf``).

Nothing heavy is imported here; each module imports pyarrow/pandas when used.
"""
