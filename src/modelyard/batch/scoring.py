"""The chunked scoring loop behind ``modelyard predict``.

Input is read in batches of ``batch_size`` rows, each batch goes through the
model's own ``predict`` (so the same schema enforcement as
:meth:`modelyard.Model.predict` applies), and the output, kept input columns
plus one column per model output, is streamed to a temporary file that
replaces the destination only when every batch succeeded.

>>> model = modelyard.load_model("./iris-model")                       # doctest: +SKIP
>>> score_file(model, "in.parquet", "out.parquet",
...            options=ScoreOptions(keep_columns=("id",)))              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from modelyard.batch import _signature
from modelyard.batch._outputs import OutputShapeError, prediction_columns
from modelyard.batch._pipeline import WriteBehind, read_ahead
from modelyard.batch._progress import progress as progress_bar
from modelyard.batch._rows import RowFailure
from modelyard.batch.files import (
    STDIO,
    AtomicWriter,
    BatchReader,
    Chunk,
    arrow_type,
    detect_format,
    publish,
    temp_sibling,
)
from modelyard.errors import DataFileError, ModelyardError, ScoringError

if TYPE_CHECKING:
    import pyarrow as pa

ON_ERROR = ("stop", "skip")
DEFAULT_BATCH_SIZE = 50_000


class Scorable(Protocol):
    """What the loop needs from a model: :class:`modelyard.Model` or an isolated one."""

    @property
    def signature(self) -> Any:
        """The model's signature, or ``None``."""
        ...

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> Any:
        """Predictions for ``data``."""
        ...


@dataclass(frozen=True)
class ScoreOptions:
    """How to score: batch size, output layout, params and what a bad row does."""

    batch_size: int = DEFAULT_BATCH_SIZE
    #: input columns copied to the output, before the predictions (an id, say)
    keep_columns: tuple[str, ...] = ()
    #: name of the prediction column of single-output models
    result_column: str = "prediction"
    params: Mapping[str, Any] | None = None
    #: "stop": fail on the first bad batch, write nothing; "skip": log bad rows and go on
    on_error: str = "stop"
    #: where "skip" writes the failed rows (JSON lines); default ``<output>.errors.jsonl``
    errors_path: str | None = None


@dataclass(frozen=True)
class ScoreReport:
    """What a run did."""

    rows_read: int
    rows_written: int
    rows_failed: int
    seconds: float
    output: str
    errors_path: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return dict(self.__dict__)


def score_file(
    model: Scorable,
    input_path: str,
    output_path: str,
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    options: ScoreOptions = ScoreOptions(),
    progress: bool | None = None,
) -> ScoreReport:
    """Score ``input_path`` into ``output_path`` (``-`` for stdin / stdout).

    Formats come from the file names unless given; the output defaults to the
    input's format. ``progress=None`` shows a bar when stderr is a terminal.
    Raises :class:`ScoringError` (rows and column named) on the first bad batch
    when ``options.on_error == "stop"``; the output is then left untouched.
    """
    if options.on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, not {options.on_error!r}")
    fmt_in = detect_format(input_path, input_format)
    fmt_out = _output_format(output_path, output_format, fmt_in)
    errors_path = _errors_path(options, output_path)
    declared = _signature.input_columns(model.signature)
    types = {n: t for n, t in ((n, arrow_type(k)) for n, k in declared) if t is not None}
    started = time.perf_counter()
    with BatchReader(
        input_path, fmt_in, batch_size=options.batch_size, column_types=types
    ) as reader:
        plan = _Plan.make(model, reader.schema, options, output_path)
        writer = AtomicWriter(output_path, fmt_out, empty_schema=plan.empty_schema(reader.schema))
        failures = _FailureLog(errors_path) if errors_path else None
        label = Path(input_path).name if input_path != STDIO else "stdin"
        behind = WriteBehind(writer.write)
        try:
            with progress_bar(progress, reader.progress_total, label) as update:
                rows_read = 0
                for chunk in read_ahead(reader):
                    rows_read = chunk.stop
                    table = plan.score(chunk, failures)
                    if table is not None:
                        behind.put(table)
                    update(rows_read, reader.progress_position())
            behind.close()
            if failures is not None:
                failures.commit()
            writer.commit()
        except BaseException:
            with contextlib.suppress(BaseException):
                behind.close()
            writer.abort()
            if failures is not None:
                failures.abort()
            raise
    return ScoreReport(
        rows_read=rows_read,
        rows_written=writer.rows,
        rows_failed=failures.count if failures else 0,
        seconds=time.perf_counter() - started,
        output=output_path,
        errors_path=errors_path,
    )


def _output_format(path: str, given: str | None, fmt_in: str) -> str:
    if given is not None or path == STDIO:
        return detect_format(path, given or fmt_in)
    try:
        return detect_format(path)
    except DataFileError:
        return fmt_in


def _errors_path(options: ScoreOptions, output: str) -> str | None:
    if options.on_error != "skip":
        return None
    if options.errors_path:
        return options.errors_path
    if output == STDIO:
        raise DataFileError(output, "--on-error skip with output to stdout needs --errors-file")
    return f"{output}.errors.jsonl"


@dataclass(frozen=True)
class _Plan:
    """Which columns go to the model and which to the output, checked once up front."""

    model: Scorable
    features: tuple[str, ...] | None  # None: every input column
    keep: tuple[str, ...]
    options: ScoreOptions
    output: str
    output_names: tuple[str, ...]
    to_model: Any  # table -> what the model's predict takes

    @classmethod
    def make(cls, model: Scorable, schema: pa.Schema, options: ScoreOptions, output: str) -> _Plan:
        names = schema.names
        missing = [c for c in options.keep_columns if c not in names]
        if missing:
            raise DataFileError(
                output,
                f"--keep-columns {', '.join(map(repr, missing))} not in the input "
                f"(its columns: {', '.join(names)})",
            )
        declared = [n for n, _ in _signature.input_columns(model.signature)]
        # Declared columns, in the signature's order, when all of them are there; extra
        # input columns (ids...) then stay out of the model. Otherwise pass everything
        # and let the model's schema enforcement name what is missing.
        features = tuple(declared) if declared and all(n in names for n in declared) else None
        if getattr(model, "accepts_arrow", False):
            to_model: Any = _identity
        else:
            to_model = _to_pandas
        return cls(
            model=model,
            features=features,
            keep=tuple(options.keep_columns),
            options=options,
            output=output,
            output_names=tuple(_signature.output_names(model.signature)),
            to_model=to_model,
        )

    def empty_schema(self, schema: pa.Schema) -> pa.Schema:
        import pyarrow as pa

        fields = [schema.field(c) for c in self.keep]
        return pa.schema([*fields, pa.field(self.options.result_column, pa.null())])

    def score(self, chunk: Chunk, failures: _FailureLog | None) -> pa.Table | None:
        """The output rows for ``chunk`` (``None`` when none is left)."""
        if chunk.failures and failures is None:
            first = chunk.failures[0]
            raise ScoringError(
                first.row, first.row, first.reason, column=first.column, output=self.output
            )
        table = chunk.table
        failed = list(chunk.failures)
        pieces: list[pa.Table] = []
        try:
            if table.num_rows:
                pieces.append(self._score(table))
        except Exception as exc:
            if isinstance(exc, OutputShapeError) or failures is None:
                lo, hi = chunk.row_index(0), chunk.row_index(table.num_rows - 1)
                raise self._error(exc, lo, hi) from exc
            self._bisect(chunk, 0, table.num_rows, pieces, failed)
        if failures is not None and failed:
            failures.add(sorted(failed, key=lambda f: f.row))
        if len(pieces) <= 1:
            return pieces[0] if pieces else None
        import pyarrow as pa

        return pa.concat_tables(pieces, promote_options="permissive")

    def _score(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        features = table.select(list(self.features)) if self.features is not None else table
        pred = self.model.predict(self.to_model(features), self.options.params)
        cols = prediction_columns(
            pred, table.num_rows, self.options.result_column, self.output_names
        )
        clash = sorted({n for n, _ in cols} & set(self.keep))
        if clash:
            raise OutputShapeError(
                f"output column(s) {clash} are also kept input columns; "
                "pass another --result-column or keep other columns"
            )
        kept = [(c, table.column(c)) for c in self.keep]
        return pa.table([c for _, c in kept + cols], names=[n for n, _ in kept + cols])

    def _bisect(
        self, chunk: Chunk, lo: int, hi: int, pieces: list[pa.Table], failed: list[RowFailure]
    ) -> None:
        # Halve the failing range until single rows: O(k log n) predict calls for k bad rows.
        part = chunk.table.slice(lo, hi - lo)
        try:
            pieces.append(self._score(part))
            return
        except OutputShapeError as exc:
            raise self._error(exc, chunk.row_index(lo), chunk.row_index(hi - 1)) from exc
        except Exception as exc:
            if hi - lo == 1:
                failed.append(_failure(chunk.row_index(lo), exc, part))
                return
        mid = (lo + hi) // 2
        self._bisect(chunk, lo, mid, pieces, failed)
        self._bisect(chunk, mid, hi, pieces, failed)

    def _error(self, exc: Exception, first: int, last: int) -> ScoringError:
        reason = str(exc) if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
        err = ScoringError(first, last, reason, column=_column_of(exc), output=self.output)
        err.__cause__ = exc
        return err


def _identity(table: pa.Table) -> pa.Table:
    return table


def _to_pandas(table: pa.Table) -> Any:
    return table.to_pandas()


def _column_of(exc: BaseException) -> str | None:
    column = getattr(exc, "column", None)
    return str(column) if column is not None else None


def _failure(row: int, exc: Exception, part: pa.Table) -> RowFailure:
    reason = str(exc) if isinstance(exc, ModelyardError) else f"{type(exc).__name__}: {exc}"
    return RowFailure(row=row, reason=reason, column=_column_of(exc), values=part.to_pylist()[0])


class _FailureLog:
    """Failed rows as JSON lines, published next to the output when the run ends."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp = temp_sibling(path)
        self._file = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in commit/abort
        self.count = 0

    def add(self, failures: Sequence[RowFailure]) -> None:
        for f in failures:
            self._file.write(json.dumps(_json_safe(f.to_dict()), default=str) + "\n")
        self.count += len(failures)

    def commit(self) -> None:
        self._file.close()
        publish(self.tmp, self.path)

    def abort(self) -> None:
        self._file.close()
        self.tmp.unlink(missing_ok=True)


def _json_safe(value: Any) -> Any:
    """NaN and infinities as null: the side file stays valid JSON."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
