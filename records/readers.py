"""Records read from the formats the streams write besides NDJSON (CSV, Arrow IPC stream,
Parquet), a batch (or a CSV row) at a time, each row numbered from 1 and checked by
``records.validation`` exactly as a form's fields are (values as text, JSON fields as JSON
text). The bulk endpoint reads its CSV, Arrow and Parquet bodies with these, and
``import_records`` its Arrow and Parquet files.

A column that is not a record field is refused before any row is read, as is a body that is
not what it claims to be (``InvalidInput``); ``ignore`` names the columns an export adds (ids,
names, times) that a reader accepts and drops (``import_records`` does; the endpoint, like its
NDJSON body, refuses them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from models_api.api.errors import NON_FIELD, InvalidInput
from records.representation import RECORD_FIELDS
from records.validation import INPUT_FIELDS, REQUIRED_FIELDS, parse_record

#: A row's number, and its record or the messages that say what is wrong with it.
ParsedRow = tuple[int, Any]
#: Rows of a batch turned into Python values at a time: a client's batch may hold a whole
#: body, and its rows as dicts take many times its Arrow bytes.
ROWS_AT_A_TIME = 1_000
#: ... and about the most bytes of them: large records come fewer at a time.
BYTES_AT_A_TIME = 1024 * 1024
#: Bytes of a Parquet column chunk read at a time.
PARQUET_BUFFER_BYTES = 1024 * 1024
#: The largest CSV cell read (csv's default, 128 KiB, is less than a bulk line may hold).
CSV_FIELD_SIZE_LIMIT = 64 * 1024 * 1024
#: Fields a record has but a write does not take: the server assigns them.
ASSIGNED_FIELDS = frozenset(RECORD_FIELDS) - INPUT_FIELDS - {"record_file"}
#: The end-of-stream marker of the Arrow IPC stream format (a continuation, length 0).
_ARROW_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def check_columns(names: list[str], ignore: frozenset[str] = frozenset()) -> None:
    """``InvalidInput`` naming each unknown, repeated or missing column."""
    unknown = [name for name in names if name not in INPUT_FIELDS | ignore | {"record_file"}]
    repeated = sorted({name for name in names if names.count(name) > 1})
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    errors = {
        name: [
            "Unknown column: the server assigns this field (an export's column); drop it."
            if name in ASSIGNED_FIELDS
            else "Unknown column."
        ]
        for name in unknown
    }
    errors.update({name: ["This column is given more than once."] for name in repeated})
    errors.update({name: ["This column is required."] for name in missing})
    if errors:
        raise InvalidInput(errors)


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column's values as text: times in ISO 8601, JSON as its text, names as they are."""
    if isinstance(column.type, pa.ExtensionType):
        column = column.storage if isinstance(column, pa.Array) else pa.chunked_array(
            [chunk.storage for chunk in column.chunks], column.type.storage_type
        )
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    return pc.cast(column, pa.string())


def _rows_at_a_time(bytes_per_row: float) -> int:
    """Rows to turn into Python values at a time: :data:`ROWS_AT_A_TIME`, or fewer, so that
    they hold about :data:`BYTES_AT_A_TIME` at most."""
    return max(1, min(ROWS_AT_A_TIME, int(BYTES_AT_A_TIME // max(bytes_per_row, 1.0))))


def _rows(batch: pa.RecordBatch | pa.Table, ignore: frozenset[str]) -> Iterator[dict]:
    kept = [name for name in batch.schema.names if name not in ignore]
    step = _rows_at_a_time(batch.nbytes / batch.num_rows) if batch.num_rows else 1
    for start in range(0, batch.num_rows, step):
        part = batch.slice(start, step)
        columns = [_as_text(part.column(name)) for name in kept]
        for values in zip(*(column.to_pylist() for column in columns), strict=True):
            yield {
                name: value for name, value in zip(kept, values, strict=True) if value is not None
            }


def _record(number: int, row: dict) -> ParsedRow:
    if row.pop("record_file", None) is not None:
        # An exported record with a file: loading it without its file would lose data.
        return number, ["record_file: Files cannot be loaded this way; leave it null."]
    try:
        return number, parse_record(row, form=True)
    except InvalidInput as invalid:
        return number, invalid.lines()


def table_records(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, ignore: frozenset[str] = frozenset()
) -> Iterator[ParsedRow]:
    """The records of ``batches`` (of ``schema``), numbered from 1."""
    check_columns(schema.names, ignore)
    return _table_rows(batches, ignore)


def _table_rows(batches: Iterable[pa.RecordBatch], ignore: frozenset[str]) -> Iterator[ParsedRow]:
    number = 0
    for batch in batches:
        for row in _rows(batch, ignore):
            number += 1
            yield _record(number, row)


class _EndWatch(io.RawIOBase):
    """A stream, read through, keeping its last bytes: pyarrow takes a stream that simply
    stops after a batch for a whole one, so a body cut between two batches would load in
    part. Every Arrow writer ends its streams with the end-of-stream marker; its absence
    shows the cut."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self.stream = stream
        self.tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.stream.read(len(view))
        view[: len(data)] = data
        self.tail = (self.tail + data[-len(_ARROW_END):])[-len(_ARROW_END):]
        return len(data)


def arrow_records(
    stream: IO[bytes], *, ignore: frozenset[str] = frozenset()
) -> Iterator[ParsedRow]:
    """Records from an Arrow IPC stream, a batch at a time."""
    watch = _EndWatch(stream)
    try:
        reader = ipc.open_stream(watch)
    except (pa.ArrowInvalid, OSError):
        raise InvalidInput({NON_FIELD: ["This is not an Arrow IPC stream."]}) from None
    return table_records(reader.schema, _whole_stream(reader, watch), ignore=ignore)


def _whole_stream(
    reader: ipc.RecordBatchStreamReader, watch: _EndWatch
) -> Iterator[pa.RecordBatch]:
    yield from _checked(reader, "Arrow IPC stream")
    if watch.tail != _ARROW_END:
        raise InvalidInput({NON_FIELD: [
            "The Arrow IPC stream ends without its end-of-stream marker: it was cut short."
        ]})
    if watch.read(1):
        raise InvalidInput({NON_FIELD: ["The Arrow IPC stream goes on after its end."]})


def parquet_records(source: Any, *, ignore: frozenset[str] = frozenset()) -> Iterator[ParsedRow]:
    """Records from a Parquet file (a path or a seekable binary file), a row group at a time
    in batches of :data:`ROWS_AT_A_TIME` rows (fewer when its rows are large).

    pyarrow's default reads ahead every row group asked for (``pre_buffer``), which for
    ``iter_batches`` is the whole file; without it, through a buffered stream, memory holds
    about one row group's column chunks (the streams' exports write a row group per batch).
    """
    try:
        parquet = pq.ParquetFile(source, pre_buffer=False, buffer_size=PARQUET_BUFFER_BYTES)
    except (pa.ArrowInvalid, OSError):
        raise InvalidInput({NON_FIELD: [
            "This is not a Parquet file, or not a whole one (its footer is missing)."
        ]}) from None
    metadata = parquet.metadata
    row_bytes = sum(
        metadata.row_group(group).total_byte_size for group in range(metadata.num_row_groups)
    ) / max(metadata.num_rows, 1)
    return table_records(
        parquet.schema_arrow,
        _checked(parquet.iter_batches(batch_size=_rows_at_a_time(row_bytes)), "Parquet file"),
        ignore=ignore,
    )


def _checked(batches: Iterable[pa.RecordBatch], kind: str) -> Iterator[pa.RecordBatch]:
    """``batches``, a broken one (a file cut short, a corrupt page) an ``InvalidInput``."""
    iterator = iter(batches)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError):
            raise InvalidInput({NON_FIELD: [f"The {kind} is cut short or damaged."]}) from None
        yield batch


def csv_reader(stream: IO[bytes]) -> Any:
    """A ``csv.reader`` of ``stream`` as the streams write CSV: RFC 4180 in UTF-8 (a BOM
    skipped), with cells as large as a bulk line may hold."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_SIZE_LIMIT))
    return csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""), strict=True)


def csv_fields(header: list[str], cells: list[str], ignore: frozenset[str]) -> dict | list[str]:
    """A CSV row's cells as a record's fields (an empty cell is a field not given, the
    ``ignore`` columns are dropped), or what is wrong with the row."""
    if len(cells) != len(header):
        return [f"The row has {len(cells)} cells; the header names {len(header)} columns."]
    return {
        name: value
        for name, value in zip(header, cells, strict=True)
        if value != "" and name not in ignore
    }


def csv_records(stream: IO[bytes], *, ignore: frozenset[str] = frozenset()) -> Iterator[ParsedRow]:
    """Records from CSV (RFC 4180, UTF-8) whose header row names the columns, read a row at a
    time; the header is checked before any row is read.

    Rows are numbered from 1 after the header; a blank line is skipped but keeps its number,
    as in NDJSON. An empty cell is a field not given; ``model_data`` and ``record_info`` cells
    hold JSON text (a row is checked like a multipart form).
    """
    reader = csv_reader(stream)
    try:
        header = next(reader, None)
    except UnicodeDecodeError:
        raise InvalidInput({NON_FIELD: ["This is not CSV text: it is not valid UTF-8."]}) from None
    except csv.Error as error:
        raise InvalidInput({NON_FIELD: [f"The CSV header cannot be read: {error}."]}) from None
    if header is None:
        raise InvalidInput({NON_FIELD: ["The body holds no records."]})
    check_columns(header, ignore)
    return _csv_rows(reader, header, ignore)


def csv_rows(reader: Any, *, unit: str, whole: str) -> Iterator[list[str] | str]:
    """Each row's cells from a ``csv.reader``, or, last, the one sentence that says why
    reading stopped early (``unit``: what a row is called, ``whole``: what holds them).

    The reader cannot find the next row reliably after a CSV fault, and text is decoded in
    blocks, so a UTF-8 fault may lie a few rows on: either ends the reading.
    """
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield f"The {unit} is not valid CSV: {error}."
            return
        except UnicodeDecodeError:
            yield f"The {whole} is not valid UTF-8 from this {unit} on."
            return
        yield cells


def _csv_rows(reader: Any, header: list[str], ignore: frozenset[str]) -> Iterator[ParsedRow]:
    for number, cells in enumerate(csv_rows(reader, unit="row", whole="body"), start=1):
        if isinstance(cells, str):
            yield number, [cells]
        elif cells:  # a blank line is skipped, but keeps its number
            fields = csv_fields(header, cells, ignore)
            yield (number, fields) if isinstance(fields, list) else _record(number, fields)
