"""Streaming readers and atomic writers for CSV, Parquet and JSON lines.

Readers yield :class:`Chunk` s of at most ``batch_size`` rows, so memory
stays flat whatever the file size. ``-`` reads stdin / writes stdout (the
format must then be given). Writers build the output in a temporary file and
rename it into place (or copy it to stdout) only when everything succeeded:
a failed run leaves no partial output behind.

Text formats carry no types: CSV columns the model's signature declares are
read as text and parsed into the declared type here, so one unparsable value
fails one row (with its column named) instead of the whole file. Typed
formats (Parquet, JSON values) are passed on as they are; the model's schema
enforcement decides what it accepts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# RowFailure lives below this module and the CSV parser (which both make them);
# a Chunk carries them.
from modelyard.batch._rows import RowFailure
from modelyard.errors import DataFileError

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS: tuple[str, ...] = ("csv", "parquet", "jsonl")
STDIO = "-"
_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
# Big enough that a typical row of a few hundred bytes parses thousands at a time.
_BLOCK_SIZE = 4 << 20


def detect_format(path: str, given: str | None = None) -> str:
    """The format of ``path``: ``given`` if set, else from the file extension.

    >>> detect_format("scores.csv.gz")
    'csv'
    """
    if given is not None:
        if given not in FORMATS:
            raise DataFileError(path, f"unknown format {given!r}; use one of {', '.join(FORMATS)}")
        return given
    if path == STDIO:
        raise DataFileError(path, "stdin/stdout has no extension: pass --format")
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        known = ", ".join(sorted(_EXTENSIONS))
        raise DataFileError(path, f"cannot tell the format from the name ({known}): pass --format")
    if fmt == "parquet" and Path(path).suffix.lower() in _COMPRESSED:
        raise DataFileError(path, "Parquet compresses internally; do not wrap it in .gz/.zst")
    return fmt


def arrow_type(signature_type: str) -> pa.DataType | None:
    """The Arrow type a signature column type is read as (``None``: leave it inferred)."""
    import pyarrow as pa

    types = {
        "boolean": pa.bool_(),
        "integer": pa.int32(),
        "long": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "string": pa.string(),
        "binary": pa.binary(),
        "datetime": pa.timestamp("ns"),
    }
    return types.get(signature_type)


# -- reading ----------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """Rows ``start .. stop-1`` of the input; rows that failed to parse are left out."""

    table: pa.Table
    start: int
    stop: int
    #: the input row index of each row of ``table``; ``None`` when they are contiguous
    rows: Sequence[int] | None = None
    failures: tuple[RowFailure, ...] = ()

    def row_index(self, i: int) -> int:
        """The input row index of ``table`` row ``i``."""
        return self.start + i if self.rows is None else self.rows[i]


class BatchReader:
    """Iterate a file as :class:`Chunk` s; use as a context manager.

    ``column_types`` maps column names to Arrow types for the text formats
    (from the model's signature); ``progress_total`` / :meth:`progress_position`
    measure rows (Parquet) or bytes (text files), ``None`` when unknown.
    """

    def __init__(
        self,
        path: str,
        fmt: str,
        *,
        batch_size: int,
        column_types: Mapping[str, pa.DataType] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self.path = path
        self.format = fmt
        self.batch_size = batch_size
        self.column_types = dict(column_types or {})
        self.progress_total: int | None = None
        self._stack = contextlib.ExitStack()
        self._raw: Any = None  # the byte source, for the position of text readers
        self._rows_read = 0
        self._schema: pa.Schema | None = None
        try:
            self._batches = self._open()
        except BaseException:
            self._stack.close()
            raise

    @property
    def schema(self) -> pa.Schema:
        """Column names and types as read (before text parsing)."""
        assert self._schema is not None
        return self._schema

    def progress_position(self) -> int:
        """Rows (Parquet) or bytes read so far."""
        if self.format == "parquet" or self._raw is None:
            return self._rows_read
        try:
            return int(self._raw.tell())
        except Exception:
            return 0

    def __enter__(self) -> BatchReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file (and delete a spooled copy of stdin)."""
        self._stack.close()

    def __iter__(self) -> Iterator[Chunk]:
        start = 0
        for table in _rebatch(self._batches, self.batch_size, self.path):
            self._rows_read = start + table.num_rows
            yield self._chunk(table, start)
            start += table.num_rows

    # -- per format -----------------------------------------------------------------

    def _open(self) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            return self._open_parquet()
        if self.format == "csv":
            return self._open_csv()
        if self.format == "jsonl":
            return self._open_json()
        raise DataFileError(self.path, f"unknown format {self.format!r}")

    def _source(self) -> Any:
        import pyarrow as pa

        if self.path == STDIO:
            return pa.PythonFile(sys.stdin.buffer, mode="r")
        path = Path(self.path)
        if not path.is_file():
            raise DataFileError(self.path, "no such file" if not path.exists() else "not a file")
        raw = self._stack.enter_context(pa.OSFile(str(path), "rb"))
        self._raw = raw
        self.progress_total = path.stat().st_size
        codec = _COMPRESSED.get(path.suffix.lower())
        return pa.CompressedInputStream(raw, codec) if codec else raw

    def _open_parquet(self) -> Iterator[pa.RecordBatch]:
        import pyarrow.parquet as pq

        path = self.path
        if path == STDIO:
            # Parquet keeps its index at the end of the file: stdin is spooled to disk.
            spool = self._stack.enter_context(
                tempfile.NamedTemporaryFile(suffix=".parquet")  # noqa: SIM115 - closed by the stack
            )
            shutil.copyfileobj(sys.stdin.buffer, spool, 1 << 20)
            spool.flush()
            path = spool.name
        elif not Path(path).is_file():
            raise DataFileError(path, "no such file" if not Path(path).exists() else "not a file")
        try:
            # pre_buffer (pyarrow's default) caches every column chunk it reads ahead, for
            # the whole file: memory would grow with the file. Without it, pages stream.
            pf = pq.ParquetFile(path, pre_buffer=False)
        except Exception as exc:
            raise DataFileError(self.path, f"not a readable Parquet file: {exc}") from exc
        self._stack.callback(pf.close)
        self._schema = pf.schema_arrow
        self.progress_total = pf.metadata.num_rows
        return _guard(pf.iter_batches(batch_size=self.batch_size), self.path)

    def _open_csv(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        # Declared columns are read as text and parsed in _parse_text, so a bad value
        # fails its row only; undeclared columns keep pyarrow's inference.
        convert = pcsv.ConvertOptions(
            column_types={name: pa.string() for name in self.column_types},
            strings_can_be_null=True,
        )
        try:
            reader = pcsv.open_csv(
                self._source(),
                read_options=pcsv.ReadOptions(block_size=_BLOCK_SIZE),
                convert_options=convert,
            )
        except pa.ArrowInvalid as exc:
            raise DataFileError(self.path, f"not a readable CSV file: {exc}") from exc
        self._schema = reader.schema
        return _guard(iter(reader), self.path)

    def _open_json(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        import pyarrow.json as pjson

        explicit = pa.schema(list(self.column_types.items())) if self.column_types else None
        try:
            reader = pjson.open_json(
                self._source(),
                read_options=pjson.ReadOptions(block_size=_BLOCK_SIZE),
                parse_options=pjson.ParseOptions(
                    explicit_schema=explicit, unexpected_field_behavior="infer"
                ),
            )
        except pa.ArrowInvalid as exc:
            raise DataFileError(self.path, f"not readable as JSON lines: {exc}") from exc
        self._schema = reader.schema
        return _guard(iter(reader), self.path)

    def _chunk(self, table: pa.Table, start: int) -> Chunk:
        stop = start + table.num_rows
        if self.format != "csv" or not self.column_types:
            return Chunk(table, start, stop)
        from modelyard.batch._parse import parse_text_columns

        parsed, keep, failures = parse_text_columns(table, self.column_types, start)
        if not failures:
            return Chunk(parsed, start, stop)
        return Chunk(parsed, start, stop, rows=[start + i for i in keep], failures=failures)


def _guard(batches: Iterator[pa.RecordBatch], path: str) -> Iterator[pa.RecordBatch]:
    """Turn a reader's mid-file Arrow error into :class:`DataFileError`."""
    import pyarrow as pa

    rows = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise DataFileError(path, f"after row {rows}: {exc}", row=rows) from exc
        rows += batch.num_rows
        yield batch


def _rebatch(batches: Iterator[pa.RecordBatch], size: int, path: str) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last may be shorter), whatever the reader's blocks."""
    import pyarrow as pa

    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= size:
            try:
                table = pa.Table.from_batches(pending)
            except pa.ArrowInvalid as exc:  # a later block inferred other column types
                raise DataFileError(path, f"column types changed mid-file: {exc}") from exc
            yield table.slice(0, size)
            rest = table.slice(size)
            pending = rest.to_batches()
            count = rest.num_rows
    if count:
        try:
            yield pa.Table.from_batches(pending)
        except pa.ArrowInvalid as exc:
            raise DataFileError(path, f"column types changed mid-file: {exc}") from exc


# -- writing ----------------------------------------------------------------------


def temp_sibling(dest: str) -> Path:
    """A fresh temporary path next to ``dest`` (same filesystem, so a rename is atomic).

    The destination's suffixes are kept, so compression is detected from the name.
    """
    if dest == STDIO:
        return Path(tempfile.gettempdir()) / f".modelyard-{uuid.uuid4().hex[:12]}.out"
    path = Path(dest)
    if not path.parent.is_dir():
        raise DataFileError(dest, f"directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise DataFileError(dest, "is a directory")
    return path.parent / f".tmp-{uuid.uuid4().hex[:12]}-{path.name}"


def publish(tmp: Path, dest: str) -> None:
    """Move a finished temporary file into place, or copy it to stdout for ``-``."""
    if dest == STDIO:
        try:
            with open(tmp, "rb") as src:
                shutil.copyfileobj(src, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): as for any Unix filter, that is not an error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        finally:
            tmp.unlink()
    else:
        os.replace(tmp, dest)


class AtomicWriter:
    """Write tables to ``dest`` in ``fmt``; nothing appears there until :meth:`commit`.

    ``empty_schema`` is written when no table ever came (an empty input).
    """

    def __init__(self, dest: str, fmt: str, *, empty_schema: pa.Schema | None = None) -> None:
        self.dest = dest
        self.format = fmt
        self.empty_schema = empty_schema
        self.tmp = temp_sibling(dest)
        self._writer: Any = None
        self._sink: Any = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write(self, table: pa.Table) -> None:
        """Append ``table``; later tables are cast to the first one's schema."""
        if self._schema is None:
            self._start(table.schema)
        else:
            table = self._conform(table)
        if self.format == "jsonl":
            self._sink.write(_jsonl_bytes(table))
        else:
            self._writer.write_table(table)
        self.rows += table.num_rows

    def commit(self) -> None:
        """Finish the file and move it into place."""
        if self._schema is None:
            import pyarrow as pa

            self._start(self.empty_schema or pa.schema([]))
        self._close()
        publish(self.tmp, self.dest)

    def abort(self) -> None:
        """Drop everything written so far."""
        with contextlib.suppress(Exception):
            self._close()
        self.tmp.unlink(missing_ok=True)

    def _start(self, schema: pa.Schema) -> None:
        import pyarrow as pa

        self._schema = schema
        if self.format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(str(self.tmp), schema)
            return
        codec = _COMPRESSED.get(Path(self.dest).suffix.lower()) if self.dest != STDIO else None
        self._sink = pa.output_stream(str(self.tmp), compression=codec)
        if self.format == "csv":
            import pyarrow.csv as pcsv

            self._writer = pcsv.CSVWriter(self._sink, schema)

    def _conform(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        assert self._schema is not None
        if table.schema.equals(self._schema):
            return table
        if table.schema.names != self._schema.names:
            raise DataFileError(
                self.dest,
                f"output columns changed from {self._schema.names} to {table.schema.names}",
            )
        try:
            return table.cast(self._schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            changed = [
                f"{f.name!r} ({g.type} after {f.type})"
                for f, g in zip(self._schema, table.schema, strict=True)
                if f.type != g.type
            ]
            raise DataFileError(
                self.dest, f"output column types changed mid-file: {', '.join(changed)}"
            ) from exc

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._sink is not None:
            self._sink.close()
            self._sink = None


def _jsonl_bytes(table: pa.Table) -> bytes:
    """JSON lines with exact floats (``repr``), NaN written as null."""
    import json

    import pyarrow as pa
    import pyarrow.compute as pc

    cols = []
    for col in table.columns:
        if pa.types.is_floating(col.type):
            cols.append(pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col))
        else:
            cols.append(col)
    clean = pa.table(cols, names=table.column_names)
    dumps = json.JSONEncoder(default=_json_default, ensure_ascii=False, allow_nan=False).encode
    return "".join(dumps(row) + "\n" for row in clean.to_pylist()).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
