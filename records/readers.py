"""Records read from the columnar formats the streams write (Arrow IPC stream, Parquet), a
batch at a time, each row numbered from 1 and checked by ``records.validation`` exactly as a
form's fields are (values as text, JSON fields as JSON text).

A column that is not a record field is refused before any row is read, as is a file that is
not what it claims to be (``InvalidInput``); ``ignore`` names the columns an export adds (ids,
names, times) that a reader accepts and drops.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from models_api.api.errors import NON_FIELD, InvalidInput
from records.validation import INPUT_FIELDS, REQUIRED_FIELDS, parse_record

#: A row's number, and its record or the messages that say what is wrong with it.
ParsedRow = tuple[int, Any]


def _check_columns(schema: pa.Schema, ignore: frozenset[str]) -> None:
    names = schema.names
    unknown = [name for name in names if name not in INPUT_FIELDS | ignore | {"record_file"}]
    repeated = sorted({name for name in names if names.count(name) > 1})
    missing = [name for name in REQUIRED_FIELDS if name not in names]
    errors = {name: ["Unknown column."] for name in unknown}
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


def _rows(batch: pa.RecordBatch | pa.Table, ignore: frozenset[str]) -> list[dict]:
    kept = [name for name in batch.schema.names if name not in ignore]
    columns = [_as_text(batch.column(name)) for name in kept]
    return [
        {name: value for name, value in zip(kept, values, strict=True) if value is not None}
        for values in zip(*(column.to_pylist() for column in columns), strict=True)
    ]


def table_records(
    schema: pa.Schema, batches: Iterable[pa.RecordBatch], *, ignore: frozenset[str] = frozenset()
) -> Iterator[ParsedRow]:
    """The records of ``batches`` (of ``schema``), numbered from 1."""
    _check_columns(schema, ignore)
    number = 0
    for batch in batches:
        for row in _rows(batch, ignore):
            number += 1
            if row.pop("record_file", None) is not None:
                # An exported record with a file: loading it without its file would lose data.
                yield number, ["record_file: Files cannot be loaded this way; leave it null."]
                continue
            try:
                yield number, parse_record(row, form=True)
            except InvalidInput as invalid:
                yield number, invalid.lines()


def arrow_records(
    stream: IO[bytes], *, ignore: frozenset[str] = frozenset()
) -> Iterator[ParsedRow]:
    """Records from an Arrow IPC stream, a batch at a time."""
    try:
        reader = ipc.open_stream(stream)
    except (pa.ArrowInvalid, OSError):
        raise InvalidInput({NON_FIELD: ["This is not an Arrow IPC stream."]}) from None
    return table_records(reader.schema, _checked(reader, "Arrow IPC stream"), ignore=ignore)


def parquet_records(source: Any, *, ignore: frozenset[str] = frozenset()) -> Iterator[ParsedRow]:
    """Records from a Parquet file (a path or a seekable binary file), a row group at a time."""
    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowInvalid, OSError):
        raise InvalidInput({NON_FIELD: ["This is not a Parquet file."]}) from None
    return table_records(
        parquet.schema_arrow, _checked(parquet.iter_batches(), "Parquet file"), ignore=ignore
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
