"""Bulk ingest: many records in one atomic request (``application/x-ndjson``) or import.

Every line is checked, and any bad line means nothing is written; the answer then names each
bad line by its number. Records that already exist, or repeat an earlier line, are skipped
and counted.

Rows go to a *sink*: on PostgreSQL :class:`records.postgres.CopySink`, which sends them
through ``COPY`` straight into the record table while the lines are still being read, so that
Python's parsing overlaps the database's work instead of preceding it; elsewhere
:class:`SQLiteSink`, batched ``INSERT OR IGNORE``. Both write segments of at most
``SEGMENT_ROWS`` rows and ``SEGMENT_BYTES`` bytes of JSON text, which bounds the memory held
however large each record is; the records read ahead are bounded the same way.
"""

from __future__ import annotations

import datetime
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import psycopg
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from models_api.api import json_values
from models_api.api.errors import NON_FIELD, InvalidInput, ReferenceDeleted
from models_api.api.ids import new_id_text
from models_api.models import MLModel
from records import postgres
from records.models import ModelRecord, json_for_save
from records.segments import SegmentSize
from records.services import ReferenceResolver, References, link_references
from records.validation import RecordInput, parse_record

#: Bad lines listed in an answer; the detail gives the total.
MAX_LISTED_LINE_ERRORS = 100
#: Rows written per segment (and held in memory at most, for a rollback)...
SEGMENT_ROWS = 20_000
#: ... and the most bytes of their ``model_data`` and ``record_info`` text, for large records.
SEGMENT_BYTES = 4 * 1024 * 1024


class IngestRow(NamedTuple):
    """One row of the record table as the sinks write it: the columns of
    ``records.models.RECORD_COLUMNS``, in that order (a test holds the two together).
    Ids are UUID text, ``model_data`` and ``record_info`` JSON text."""

    id: str
    model_id: str
    timestamp: datetime.datetime
    collection_date: datetime.date
    dataset_id: str
    experiment_id: str
    season_id: str
    site_id: str
    model_data: str
    record_file: str | None
    record_info: str
    created_at: datetime.datetime
    updated_at: datetime.datetime

#: A line's number, and its record or the messages that say what is wrong with it.
ParsedLine = tuple[int, RecordInput | list[str]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    created: int
    skipped_existing: int


def parse_ndjson(
    lines: Iterable[tuple[int, bytes]], *, ignore: frozenset[str] = frozenset()
) -> Iterator[ParsedLine]:
    """Records from NDJSON lines (blank lines are skipped but keep their numbers).

    ``ignore``: fields accepted and dropped (``import_records`` reads exports, whose lines
    carry ids and times); the API's bulk body refuses them as unknown.
    """
    for number, line in lines:
        if not line.strip():
            continue
        try:
            value = json_values.loads(line)
            yield number, parse_record(
                value, ignore=ignore, json_checked=json_values.text_is_safe(line)
            )
        except json_values.JSONNumberError as error:
            field = f"{error.field}: " if error.field is not None else ""
            yield number, [f"{field}{error.message()}"]
        except json_values.JSONDecodeError as error:
            yield number, [f"The line is not valid JSON: {error.msg}."]
        except InvalidInput as invalid:
            yield number, invalid.lines()


class _Errors:
    def __init__(self, unit: str) -> None:
        self.unit = unit
        self.count = 0
        self.listed: dict[str, list[str]] = {}

    def add(self, number: int, messages: list[str]) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED_LINE_ERRORS:
            self.listed[str(number)] = messages

    def raise_if_any(self) -> None:
        if not self.count:
            return
        noun = f"{self.unit} is" if self.count == 1 else f"{self.unit}s are"
        listed = (
            f" (the first {MAX_LISTED_LINE_ERRORS} are listed)"
            if self.count > MAX_LISTED_LINE_ERRORS
            else ""
        )
        raise InvalidInput(
            self.listed, detail=f"{self.count} {noun} invalid{listed}; nothing was written."
        )


class SQLiteSink:
    """Batched ``INSERT OR IGNORE``; SQLite itself counts the rows it inserted."""

    def __init__(self, connection, *, segment_rows: int, segment_bytes: int) -> None:
        self.connection = connection
        self.size = SegmentSize(segment_rows, segment_bytes)
        self.segment: list[IngestRow] = []
        self.created = 0

    def write(self, row: IngestRow) -> None:
        self.segment.append(row)
        if self.size.full(row):
            self.pause()

    def pause(self) -> None:
        self.size.reset()
        if not self.segment:
            return
        self.connection.ensure_connection()
        before = self.connection.connection.total_changes
        ModelRecord.objects.bulk_create(
            [
                ModelRecord(**row._replace(
                    model_data=json_for_save(json_values.loads(row.model_data)),
                    record_info=json_values.loads(row.record_info),
                )._asdict())
                for row in self.segment
            ],
            ignore_conflicts=True,
        )
        self.created += self.connection.connection.total_changes - before
        self.segment = []

    def discard(self) -> None:
        self.segment = []
        self.size.reset()

    def finish(self) -> int:
        self.pause()
        return self.created


class _Linked:
    """A record's references as the rows are written: their ids as text, once per distinct
    set (compared by identity, so that a record's key hashes cheaply)."""

    __slots__ = ("refs", "texts")

    def __init__(self, refs: References) -> None:
        self.refs = refs
        self.texts = tuple(
            str(value)
            for value in (refs.dataset_id, refs.experiment_id, refs.season_id, refs.site_id)
        )


#: Parsed records handed from the reading thread to the writing one at a time, at most...
_READ_AHEAD_CHUNK = 500
#: ... and the most bytes of their JSON text (a chunk ends with the record that passes it).
_READ_AHEAD_CHUNK_BYTES = 128 * 1024
#: Chunks read ahead at most (bounds the records held in memory).
_READ_AHEAD_CHUNKS = 40
_END = object()

#: A record read ahead: its number, and its record with its ``model_data`` and
#: ``record_info`` as JSON text, or the messages that say what is wrong with it.
ReadAhead = tuple[int, RecordInput, tuple[str, str]] | tuple[int, list[str], None]


def _chunks(records: Iterable[ParsedLine]) -> Iterator[list[ReadAhead]]:
    """``records`` in chunks of at most ``_READ_AHEAD_CHUNK`` records and about
    ``_READ_AHEAD_CHUNK_BYTES`` of JSON text, each record's text encoded here (in the reading
    thread: it is what the row written needs, and what measures the memory it holds)."""
    chunk: list[ReadAhead] = []
    size = 0
    dumps = json_values.dumps
    for number, record in records:
        if isinstance(record, RecordInput):
            texts = (dumps(record.model_data).decode(), dumps(record.record_info).decode())
            size += len(texts[0]) + len(texts[1])
            # The values themselves are not needed any more: only their text waits.
            chunk.append((number, record.without_values(), texts))
        else:
            chunk.append((number, record, None))
        if len(chunk) >= _READ_AHEAD_CHUNK or size >= _READ_AHEAD_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def parsed_ahead(records: Iterable[ParsedLine]) -> Iterator[ReadAhead]:
    """``records``, read and checked in a thread of their own while the caller writes the
    ones before, each with its JSON text (see :func:`_chunks`).

    Reading a line and checking its fields is Python's work; inserting and checking the rows
    (foreign keys, uniqueness) is the database's, most of it while a COPY segment ends, when
    the writing thread only waits. Reading ahead lets both go on at the same time. At most
    ``_READ_AHEAD_CHUNKS`` chunks wait; an error met while reading
    (a body over its limit, a broken file) is raised in the caller's thread.
    """
    chunks: queue.Queue = queue.Queue(maxsize=_READ_AHEAD_CHUNKS)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in _chunks(records):
                if not put(chunk):
                    return
            put(_END)
        except BaseException as error:  # raised again in the caller's thread
            put(error)

    reader = threading.Thread(target=read, name="records-reader", daemon=True)
    reader.start()
    try:
        while (chunk := chunks.get()) is not _END:
            if isinstance(chunk, BaseException):
                raise chunk
            yield from chunk
    finally:
        stop.set()
        reader.join()


def ingest_records(
    *, model: MLModel, records: Iterable[ParsedLine], unit: str = "line"
) -> IngestResult:
    """Add many records in one transaction; any bad line means nothing is written.

    ``unit``: what the numbers of ``records`` count, as the refusal names them (``"row"`` for
    CSV, Arrow and Parquet bodies).

    The records are read ahead in a thread of their own (:func:`parsed_ahead`), so that
    reading and checking the next lines goes on while the database writes the previous ones.
    """
    connection = connections[router.db_for_write(ModelRecord)]
    resolver = ReferenceResolver(model)
    errors = _Errors(unit)
    by_names: dict[tuple, _Linked] = {}  # a record's names -> its references
    by_ids: dict[tuple, _Linked] = {}  # the same references whatever names led to them
    seen: set[tuple] = set()
    links: set[_Linked] = set()
    total = 0
    now = timezone.now()
    model_id = str(model.id)
    try:
        with transaction.atomic(using=connection.alias):
            sink = (postgres.CopySink if connection.vendor == "postgresql" else SQLiteSink)(
                connection, segment_rows=SEGMENT_ROWS, segment_bytes=SEGMENT_BYTES
            )
            for number, record, texts in parsed_ahead(records):
                total += 1
                if texts is None:
                    errors.add(number, record)
                    sink.discard()
                    continue
                names = (record.experiment_name, record.season_name, record.site_name,
                         record.dataset_name or record.collection_date)
                linked = by_names.get(names)
                if linked is None:
                    refs = resolver.cached(record)
                    if refs is None:  # a name not seen yet in this request: look it up
                        sink.pause()
                        try:
                            refs = resolver.resolve(record, create_dataset=not errors.count)
                        except InvalidInput as invalid:
                            errors.add(number, invalid.lines())
                            sink.discard()
                            continue
                    if errors.count:
                        continue  # only checking from here on: nothing will be written
                    ids = (refs.dataset_id, refs.experiment_id, refs.season_id, refs.site_id)
                    linked = by_names[names] = by_ids.setdefault(ids, _Linked(refs))
                if errors.count:
                    continue
                key = (record.timestamp, record.collection_date, linked)
                if key in seen:
                    continue
                if len(seen) >= SEGMENT_ROWS:
                    # Bounded memory: a repeat further apart than this is still skipped, by
                    # the database's unique constraint (the segment's fallback path).
                    seen.clear()
                seen.add(key)
                links.add(linked)
                sink.write(IngestRow(
                    new_id_text(), model_id, record.timestamp, record.collection_date,
                    *linked.texts, texts[0], None, texts[1], now, now,
                ))
            errors.raise_if_any()
            if not total:
                raise InvalidInput({NON_FIELD: ["The body holds no records."]})
            created = sink.finish()
            link_references(
                model,
                [(r.refs.experiment_id, r.refs.site_id, r.refs.dataset_id) for r in links],
            )
    except (IntegrityError, psycopg.errors.ForeignKeyViolation):
        # Something the lines name was deleted meanwhile (the COPY raises psycopg's own).
        raise ReferenceDeleted() from None
    return IngestResult(created=created, skipped_existing=total - created)
