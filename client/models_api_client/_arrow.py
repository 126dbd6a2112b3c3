"""Records as Arrow: the stream's columns and types, reading a streamed Arrow body batch by
batch, the same table built from NDJSON lines (for a server without the formats), and the
input columns of a bulk body built from tables, DataFrames or dicts.

The types are the ones the formats issue fixes for the record streams: ids as strings,
``timestamp``/``created_at``/``updated_at`` as ``timestamp[us, tz=UTC]``, ``collection_date``
as ``date32``, ``model_data``/``record_info`` as JSON text, ``record_file`` a nullable string.
"""

from __future__ import annotations

import datetime
import decimal
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv
import pyarrow.parquet

from models_api_client.objects import format_datetime, parse_datetime

RECORD_FIELDS = (
    "id",
    "timestamp",
    "collection_date",
    "model_id",
    "model_name",
    "model_data",
    "dataset_id",
    "dataset_name",
    "experiment_id",
    "experiment_name",
    "season_id",
    "season_name",
    "site_id",
    "site_name",
    "record_file",
    "record_info",
    "created_at",
    "updated_at",
)
TIMESTAMP = pa.timestamp("us", tz="UTC")
_TIMES = frozenset({"timestamp", "created_at", "updated_at"})
JSON_FIELDS = frozenset({"model_data", "record_info"})
RECORD_SCHEMA = pa.schema(
    [
        (name, TIMESTAMP if name in _TIMES else pa.date32() if name == "collection_date" else
         pa.string())
        for name in RECORD_FIELDS
    ]
)

#: A record's input fields (the columns of a bulk body), in the contract's order.
INPUT_FIELDS = (
    "timestamp",
    "collection_date",
    "model_data",
    "dataset_name",
    "experiment_name",
    "season_name",
    "site_name",
    "record_info",
)
REQUIRED_INPUT = frozenset(
    {"timestamp", "model_data", "experiment_name", "season_name", "site_name"}
)
#: Fields a record has but a write does not take (an export's ids and times, its file key):
#: dropped from the input, as ``manage.py import_records`` drops them, so an export imports.
OUTPUT_ONLY = frozenset(RECORD_FIELDS) - frozenset(INPUT_FIELDS)


# --- Reading -----------------------------------------------------------------------------------


class _ChunkReader(io.RawIOBase):
    """A read-only file over an iterator of byte chunks (a streamed HTTP body): what
    ``pyarrow.ipc.open_stream`` reads, holding one chunk at a time."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._chunk = b""
        self._position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._position >= len(self._chunk):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk, self._position = chunk, 0
        size = min(len(view), len(self._chunk) - self._position)
        view[:size] = self._chunk[self._position : self._position + size]
        self._position += size
        return size


def open_chunks(chunks: Iterator[bytes]) -> io.BufferedReader:
    """A buffered file over byte chunks (reads of n bytes give n bytes until the end)."""
    return io.BufferedReader(_ChunkReader(chunks), buffer_size=256 * 1024)


def _plain(column: Any) -> Any:
    """An extension column (``arrow.json``) as its storage, a dictionary one decoded."""
    if isinstance(column.type, pa.BaseExtensionType):
        column = column.storage
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def normalize_records(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A stream's batch with the record columns in the client's types (so that a server's
    ``large_string`` or ``arrow.json`` columns and the NDJSON fallback give equal tables)."""
    arrays = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        column = _plain(column)
        target = RECORD_SCHEMA.field(field.name).type if field.name in RECORD_FIELDS else None
        if target is not None and column.type != target:
            column = column.cast(target, safe=False)  # e.g. nanoseconds cut to microseconds
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def dumps(value: Any) -> str:
    """Compact JSON text (the form a record's JSON fields take in a table or a body)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return format_datetime(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def batch_from_json(rows: list[Mapping[str, Any]]) -> pa.RecordBatch:
    """Records in their JSON form (NDJSON lines) as a batch of the stream's columns."""
    arrays: list[Any] = []
    for field in RECORD_SCHEMA:
        name = field.name
        values: list[Any] = [row.get(name) for row in rows]
        if name in JSON_FIELDS:
            arrays.append(pa.array([dumps(value) for value in values], type=pa.string()))
            continue
        text = pa.array(values, type=pa.string())
        if name in _TIMES or name == "collection_date":
            try:  # the service's own forms ("...Z", "YYYY-MM-DD"), parsed by Arrow
                arrays.append(text.cast(field.type))
                continue
            except pa.ArrowInvalid:
                parse = parse_datetime if name in _TIMES else datetime.date.fromisoformat
                arrays.append(pa.array([None if v is None else parse(v) for v in values],
                                       type=field.type))
                continue
        arrays.append(text)
    return pa.RecordBatch.from_arrays(arrays, schema=RECORD_SCHEMA)


# --- Writing (bulk bodies) ---------------------------------------------------------------------


def check_columns(names: Iterable[str]) -> None:
    """ValueError, before any request, for unknown or missing input columns."""
    names = list(names)
    unknown = [name for name in names if name not in RECORD_FIELDS]
    if unknown:
        raise ValueError(
            f"Unknown record field(s): {', '.join(map(repr, unknown))}; a record takes "
            f"{', '.join(INPUT_FIELDS)}."
        )
    missing = sorted(REQUIRED_INPUT - set(names))
    if missing:
        raise ValueError(f"Every record needs {', '.join(missing)}.")


def input_reader(data: Any) -> tuple[pa.RecordBatchReader, int | None]:
    """A table-like input (pyarrow Table, RecordBatch or RecordBatchReader, pandas or Polars
    DataFrame) as a reader of its batches, with its row count when known."""
    if isinstance(data, pa.RecordBatchReader):
        return data, None
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    elif not isinstance(data, pa.Table):
        data = _dataframe_table(data)
    return pa.RecordBatchReader.from_batches(data.schema, data.to_batches()), data.num_rows


def is_table_like(data: Any) -> bool:
    if isinstance(data, pa.Table | pa.RecordBatch | pa.RecordBatchReader):
        return True
    module = type(data).__module__.split(".")[0]
    return module in {"pandas", "polars"} and type(data).__name__ == "DataFrame"


def _dataframe_table(frame: Any) -> pa.Table:
    module = type(frame).__module__.split(".")[0]
    if module == "polars":
        table: pa.Table = frame.to_arrow()
        return table
    if module == "pandas":
        frame = frame.copy(deep=False)
        for name in JSON_FIELDS & set(frame.columns):
            if frame[name].dtype == object:
                # Python values (dicts, lists, numbers) become JSON text; text stays as it is.
                frame[name] = [
                    value if isinstance(value, str) or value is None else dumps(value)
                    for value in frame[name]
                ]
        return pa.Table.from_pandas(frame, preserve_index=False)
    raise TypeError(f"Cannot read records from a {type(frame).__name__}.")


def input_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch of input rows with the bulk body's columns: the record's input fields (output
    fields dropped), times in UTC (``timestamp[us, tz=UTC]``; a time without a zone is UTC,
    as the contract reads it; text is left as text), JSON fields as JSON text."""
    check_columns(batch.schema.names)
    arrays, names = [], []
    for name in INPUT_FIELDS:
        if name not in batch.schema.names:
            continue
        column = _plain(batch.column(name))
        kind = column.type
        if name == "timestamp" and pa.types.is_timestamp(kind):
            if kind.tz is None:
                column = pc.assume_timezone(column, "UTC")
            column = column.cast(TIMESTAMP, safe=False)
        elif name == "collection_date" and (pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
            column = column.cast(pa.date32())
        elif name in JSON_FIELDS:
            if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
                column = column.cast(pa.string())
            elif not pa.types.is_string(kind):
                values = column.to_pylist()
                if name == "model_data":
                    column = pa.array([dumps(value) for value in values], type=pa.string())
                else:
                    column = pa.array(
                        [None if value is None else dumps(value) for value in values],
                        type=pa.string(),
                    )
        elif pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            column = column.cast(pa.string())
        arrays.append(column)
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays, names=names)


#: Rows of an Arrow batch or a Parquet row group in a bulk body: the service holds one at a
#: time, so a body of many small ones keeps its memory small.
BODY_BATCH_ROWS = 10_000


def ipc_bytes(batch: pa.RecordBatch) -> bytes:
    """A batch as an Arrow IPC stream (a bulk body), in batches of ``BODY_BATCH_ROWS``."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(pa.Table.from_batches([batch]), max_chunksize=BODY_BATCH_ROWS)
    result: bytes = sink.getvalue().to_pybytes()
    return result


def body_bytes(batch: pa.RecordBatch, fmt: str) -> bytes:
    """An input batch as a bulk body of a columnar or CSV format (``arrow``, ``csv``,
    ``parquet``): the service reads each as it reads an export of that format."""
    if fmt == "arrow":
        return ipc_bytes(batch)
    sink = io.BytesIO()
    if fmt == "csv":
        pa.csv.write_csv(batch, sink)
    elif fmt == "parquet":
        pa.parquet.write_table(
            pa.Table.from_batches([batch]), sink, row_group_size=BODY_BATCH_ROWS
        )
    else:
        raise ValueError(f"No bulk body format {fmt!r}.")
    return sink.getvalue()


def batch_lines(batch: pa.RecordBatch) -> list[bytes]:
    """An input batch (from :func:`input_batch`) as NDJSON lines, nulls left out (so that
    the service applies its defaults)."""
    lines = []
    for row in batch.to_pylist():
        record: dict[str, Any] = {}
        for name, value in row.items():
            if value is None and name != "model_data":
                continue
            if name in JSON_FIELDS:
                value = json.loads(value) if isinstance(value, str) else value
            elif isinstance(value, datetime.datetime):
                value = format_datetime(value)
            elif isinstance(value, datetime.date):
                value = value.isoformat()
            record[name] = value
        lines.append(dumps(record).encode())
    return lines


def prepare_row(number: int, row: Mapping[str, Any]) -> dict[str, Any]:
    """A record given as a dict, in its JSON form: output fields dropped, times and dates as
    text, unknown or missing fields a ValueError naming the row (counted from 1)."""
    try:
        check_columns(row.keys())
    except ValueError as error:
        raise ValueError(f"Record {number}: {error}") from None
    record: dict[str, Any] = {}
    for name, value in row.items():
        if name in OUTPUT_ONLY:
            continue
        if value is None and name not in {"model_data"}:
            continue
        if isinstance(value, datetime.datetime):
            value = format_datetime(value) if value.tzinfo else value.isoformat()
        elif isinstance(value, datetime.date):
            value = value.isoformat()
        record[name] = value
    return record


def rows_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """Prepared dict rows as an Arrow input batch: every column text (times as given, JSON
    fields as JSON text)."""
    names = [name for name in INPUT_FIELDS if any(name in row for row in rows)]
    arrays = []
    for name in names:
        values = [row.get(name) for row in rows]
        if name in JSON_FIELDS:
            values = [
                dumps(value) if name in row else None
                for value, row in zip(values, rows, strict=True)
            ]
        arrays.append(pa.array(values, type=pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=names)
