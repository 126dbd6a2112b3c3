"""The formats records are handed out in: NDJSON, CSV, Arrow IPC stream and Parquet.

Each is a DRF renderer, so that DRF's content negotiation picks it (``Accept``, or
``?format=``, which wins) and drf-spectacular lists its media type, and each encodes the
text-form batches of ``records.representation`` into chunks of bytes, a batch at a time: the
streams, ``GET /records/id/{rid}`` and ``export_records`` all use them. Every step works on
whole Arrow columns; Python touches a value only to JSON-escape the few distinct names of a
batch (and, for CSV, to write JSON text compactly).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from rest_framework import renderers

from models_api.api import json_values
from records.representation import JSON_FIELDS, RECORD_FIELDS, TIME_FIELDS

#: Fields whose text never needs escaping in JSON (ids, dates, times).
_PLAIN_TEXT = frozenset(
    {"id", "timestamp", "collection_date", "model_id", "dataset_id", "experiment_id",
     "season_id", "site_id", "created_at", "updated_at"}
)
_UTC_MICROSECONDS = pa.timestamp("us", tz="UTC")
#: The typed columns of the Arrow and Parquet formats.
ARROW_SCHEMA = pa.schema(
    [
        (
            name,
            _UTC_MICROSECONDS if name in TIME_FIELDS
            else pa.date32() if name == "collection_date"
            else pa.json_() if name in JSON_FIELDS
            else pa.string(),
        )
        for name in RECORD_FIELDS
    ]
)


class RecordRenderer(renderers.BaseRenderer):
    """A format of records: its media type, its ``?format=`` name, and an encoder."""

    charset = None  # only CSV names one: the others are UTF-8 JSON or binary by definition
    #: The file name extension of an export.
    extension = ""
    #: Whether the answer is an attachment (a download) rather than shown.
    attachment = False

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset={self.charset}" if self.charset else self.media_type

    def render(self, data, accepted_media_type=None, renderer_context=None):
        raise NotImplementedError("Records are streamed: use encode().")

    def encode(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        raise NotImplementedError


# --- NDJSON ----------------------------------------------------------------------------------


def _as_json_strings(column: pa.Array) -> pa.Array:
    """Each value as a JSON string (null as ``null``), escaping only the distinct values."""
    encoded = pc.dictionary_encode(column)
    escaped = pa.array(
        [json_values.dumps(value).decode() for value in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    return pc.fill_null(pc.take(escaped, encoded.indices), "null")


def _join_text(pieces: list[str | pa.Array]) -> pa.Array:
    """The element-wise concatenation of ``pieces`` (literals and columns)."""
    merged: list[str | pa.Array] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        else:
            merged.append(piece)
    return pc.binary_join_element_wise(*merged, "")


def _bytes_of(text: pa.Array) -> bytes:
    """The characters of a string column, end to end (its data buffer, no copy per value)."""
    if text.null_count:  # a null input would drop its whole line: never send that
        raise ValueError("A record's line could not be written: a field is missing.")
    _, offsets, data = text.buffers()
    offsets = memoryview(offsets).cast("i")
    return data[offsets[text.offset] : offsets[text.offset + len(text)]].to_pybytes()


#: The fields that come in pairs, an id and the name of the row it points at.
_REFERENCES = tuple(
    (f"{kind}_id", f"{kind}_name") for kind in ("model", "dataset", "experiment", "season", "site")
)


def _reference_json(ids: pa.Array, names: pa.Array, id_field: str, name_field: str) -> pa.Array:
    """``"<kind>_id":"...","<kind>_name":"..."`` for each row, written once per distinct id
    (an id always has the one name: a stream is read in one snapshot)."""
    encoded = pc.dictionary_encode(ids)
    first = pc.index_in(encoded.dictionary, value_set=ids)
    pairs = zip(
        encoded.dictionary.to_pylist(), pc.take(names, first).to_pylist(), strict=True
    )
    fragments = pa.array(
        [f'"{id_field}":"{id_}","{name_field}":{json_values.dumps(name).decode()}'
         for id_, name in pairs],
        pa.string(),
    )
    return pc.take(fragments, encoded.indices)


def ndjson_lines(batch: pa.RecordBatch) -> bytes:
    """The batch's records as NDJSON lines, each the contract's JSON object."""
    references = {
        id_field: _reference_json(batch.column(id_field), batch.column(name_field),
                                  id_field, name_field)
        for id_field, name_field in _REFERENCES
    }
    pieces: list[str | pa.Array] = []
    for number, name in enumerate(RECORD_FIELDS):
        separator = "{" if number == 0 else ","
        if name in references:
            pieces += [separator, references[name]]
        elif name.endswith("_name"):
            continue  # written with its id
        elif name in _PLAIN_TEXT:
            pieces += [f'{separator}"{name}":"', batch.column(name), '"']
        elif name in JSON_FIELDS:
            pieces += [f'{separator}"{name}":', batch.column(name)]
        else:
            pieces += [f'{separator}"{name}":', _as_json_strings(batch.column(name))]
    pieces.append("}\n")
    return _bytes_of(_join_text(pieces))


class NDJSONRenderer(RecordRenderer):
    media_type = "application/x-ndjson"
    format = "ndjson"
    extension = "ndjson"

    def encode(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        for batch in batches:
            yield ndjson_lines(batch)


class JSONAsNDJSONRenderer(NDJSONRenderer):
    """NDJSON for a client that asks for ``application/json``, as the seed's clients do."""

    media_type = "application/json"

    @property
    def content_type(self) -> str:
        return NDJSONRenderer.media_type


# --- CSV -------------------------------------------------------------------------------------


def _compact_json(column: pa.Array) -> pa.Array:
    """JSON text written compactly (each distinct value once)."""
    encoded = pc.dictionary_encode(column)
    compact = pa.array(
        [json_values.dumps(json_values.loads(text)).decode()
         for text in encoded.dictionary.to_pylist()],
        pa.string(),
    )
    return pc.take(compact, encoded.indices)


class CSVRenderer(RecordRenderer):
    """RFC 4180: a header row of the 18 field names, then one row per record (CRLF line ends,
    text in double quotes, null as an empty field, JSON fields as compact JSON text)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"
    extension = "csv"
    OPTIONS = pacsv.WriteOptions(include_header=False, eol="\r\n", quoting_style="needed")

    def encode(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        yield (",".join(RECORD_FIELDS) + "\r\n").encode()
        for batch in batches:
            for name in JSON_FIELDS:
                index = batch.schema.get_field_index(name)
                batch = batch.set_column(index, name, _compact_json(batch.column(index)))
            sink = io.BytesIO()
            pacsv.write_csv(batch, sink, write_options=self.OPTIONS)
            yield sink.getvalue()


# --- Arrow and Parquet -----------------------------------------------------------------------


def typed_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The text form in the Arrow schema's types (times, dates, JSON)."""
    columns = []
    for field in ARROW_SCHEMA:
        column = batch.column(field.name)
        if field.type == pa.json_():
            column = pa.ExtensionArray.from_storage(field.type, column)
        elif field.type != pa.string():
            column = pc.cast(column, field.type)
        columns.append(column)
    return pa.record_batch(columns, schema=ARROW_SCHEMA)


class _Drain(io.RawIOBase):
    """A file that keeps what is written until it is taken: a writer's bytes go to the client
    as soon as a batch is written."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class ArrowStreamRenderer(RecordRenderer):
    """The Arrow IPC stream format: the schema, then one record batch per batch read."""

    media_type = "application/vnd.apache.arrow.stream"
    format = "arrow"
    extension = "arrows"

    def encode(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        sink = _Drain()
        with ipc.new_stream(sink, ARROW_SCHEMA) as writer:
            yield sink.take()
            for batch in batches:
                writer.write_batch(typed_batch(batch))
                yield sink.take()
        yield sink.take()


class ParquetRenderer(RecordRenderer):
    """Parquet, a row group per batch read, sent as an attachment."""

    media_type = "application/vnd.apache.parquet"
    format = "parquet"
    extension = "parquet"
    attachment = True

    def encode(self, batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
        sink = _Drain()
        with pq.ParquetWriter(sink, ARROW_SCHEMA) as writer:
            for batch in batches:
                writer.write_batch(typed_batch(batch))
                yield sink.take()
        yield sink.take()


#: Every format, the default (NDJSON, also for ``*/*`` and ``application/json``) first.
RECORD_RENDERERS = (
    NDJSONRenderer,
    JSONAsNDJSONRenderer,
    CSVRenderer,
    ArrowStreamRenderer,
    ParquetRenderer,
)
#: ``export_records --format`` and the formats' file extensions.
FORMATS = {renderer.format: renderer for renderer in RECORD_RENDERERS}
