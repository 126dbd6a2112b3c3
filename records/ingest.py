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
import gc
import queue
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import psycopg
from django.conf import settings
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
    The record's own ids are UUID text, its references UUIDs, ``model_data`` and
    ``record_info`` JSON text."""

    id: str
    model_id: str
    timestamp: datetime.datetime
    collection_date: datetime.date
    dataset_id: uuid.UUID
    experiment_id: uuid.UUID
    season_id: uuid.UUID
    site_id: uuid.UUID
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
    max_depth = settings.JSON_MAX_DEPTH
    for number, line in lines:
        if not line.strip():
            continue
        try:
            value, safe = json_values.loads_checked(line, max_depth=max_depth)
            yield number, parse_record(value, ignore=ignore, json_checked=safe)
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
    """Batched ``INSERT OR IGNORE``; SQLite itself counts the rows it inserted.

    Like :class:`records.postgres.CopySink`: :meth:`prepare` runs in the reading thread (what
    can be done before a record's references are known), :meth:`write` in the writing one.
    """

    def __init__(
        self, connection, *, model_id: str, now: datetime.datetime,
        segment_rows: int, segment_bytes: int,
    ) -> None:
        self.connection = connection
        self.model_id, self.now = model_id, now
        self.size = SegmentSize(segment_rows, segment_bytes)
        self.segment: list[IngestRow] = []
        self.created = 0

    @staticmethod
    def prepare(record: RecordInput, model_data: bytes, record_info: bytes) -> tuple:
        # As text: orjson's bytes keep the room they were written in, several times their
        # length, and a segment holds them until it is written.
        return (
            new_id_text(), record.timestamp, record.collection_date,
            model_data.decode(), record_info.decode(),
        )

    @staticmethod
    def references(ids: tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]) -> tuple:
        return ids

    def write(self, prepared: tuple, references: tuple) -> None:
        record_id, timestamp, collection_date, model_data, record_info = prepared
        self.segment.append(IngestRow(
            record_id, self.model_id, timestamp, collection_date, *references,
            model_data, None, record_info, self.now, self.now,
        ))
        if self.size.full(len(model_data) + len(record_info)):
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
    """A record's references as the rows are written: in the sink's form (see the sinks'
    ``references``), made once per distinct set (compared by identity, so that a record's key
    hashes cheaply)."""

    __slots__ = ("refs", "written")

    def __init__(self, refs: References, sink) -> None:
        self.refs = refs
        self.written = sink.references(
            (refs.dataset_id, refs.experiment_id, refs.season_id, refs.site_id)
        )


#: Parsed records handed from the reading thread to the writing one at a time, at most...
_READ_AHEAD_CHUNK = 500
#: ... and the most bytes of their JSON text (a chunk ends with the record that passes it).
_READ_AHEAD_CHUNK_BYTES = 128 * 1024
#: Chunks read ahead at most (bounds the records held in memory).
_READ_AHEAD_CHUNKS = 40
#: Distinct sets of names the reading thread notes for the writing one at most (see
#: :class:`_NamesAhead`); past that, each is looked up when its first record is written.
_NAMES_AHEAD = 10_000
_END = object()

#: A record's names as the ingest tells its references apart: experiment, season, site, and
#: the dataset's name or, for the default dataset, the collection date.
Names = tuple


def names_of(record: RecordInput) -> Names:
    return (record.experiment_name, record.season_name, record.site_name,
            record.dataset_name or record.collection_date)


#: A record read ahead: its number, and its record (without its JSON values), its names and
#: what the sink prepared from it, or the messages that say what is wrong with it.
ReadAhead = tuple[int, RecordInput, Names, object] | tuple[int, list[str], None, None]


class _NamesAhead:
    """The names of the records read ahead, the first record of each set, as the reading
    thread meets them; the writing thread looks them all up whenever it has to end a COPY
    segment for one, rather than ending a segment for each (a body spread over 100 days
    names 100 default datasets).

    Shared by the two threads through single dictionary operations, which the GIL makes
    atomic."""

    def __init__(self) -> None:
        self.first: dict[Names, RecordInput] = {}
        self._met: set[Names] = set()

    def meet(self, names: Names, record: RecordInput) -> None:
        if names not in self._met and len(self._met) < _NAMES_AHEAD:
            self._met.add(names)
            self.first[names] = record

    def take(self) -> list[tuple[Names, RecordInput]]:
        """The names met since the last take."""
        taken = []
        for names in list(self.first):
            record = self.first.pop(names, None)
            if record is not None:
                taken.append((names, record))
        return taken


def _chunks(
    records: Iterable[ParsedLine], prepare: Callable, names_ahead: _NamesAhead
) -> Iterator[list[ReadAhead]]:
    """``records`` in chunks of at most ``_READ_AHEAD_CHUNK`` records and about
    ``_READ_AHEAD_CHUNK_BYTES`` of JSON text, each valid record's JSON text encoded and the
    rest of the sink's row made here (``prepare``: all that does not need the references),
    in the reading thread, so that the writing one has little to do but write."""
    chunk: list[ReadAhead] = []
    size = 0
    dumps = json_values.dumps
    for number, record in records:
        if isinstance(record, RecordInput):
            model_data = dumps(record.model_data)
            record_info = dumps(record.record_info)
            size += len(model_data) + len(record_info)
            names = names_of(record)
            # The values themselves are not needed any more: only their text waits.
            record = record.without_values()
            names_ahead.meet(names, record)
            chunk.append((number, record, names, prepare(record, model_data, record_info)))
        else:
            chunk.append((number, record, None, None))
        if len(chunk) >= _READ_AHEAD_CHUNK or size >= _READ_AHEAD_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class _ThreadsTuned:
    """The interpreter tuned for an ingest's two threads while any ingest runs in the process
    (a counted context manager: concurrent ingests share it, the last one out restores).

    - The GIL is handed over every :data:`SWITCH_INTERVAL` seconds instead of Python's 5 ms.
      The writing thread needs it back after each wait on the database (a segment's end, a
      name looked up, a full socket), and with the reading thread busy it would wait up to the
      whole interval each time, with the database idle meanwhile.
    - The cyclic collector's youngest generation is collected every
      :data:`YOUNG_GENERATION_THRESHOLD` allocations instead of 700. The records read ahead
      live long enough to be promoted, so the default thresholds also start full collections
      every few segments, each holding the GIL for tens of milliseconds; the ingest makes no
      reference cycles of its own, and collections still run, only less often.
    """

    SWITCH_INTERVAL = 0.0005
    YOUNG_GENERATION_THRESHOLD = 50_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved: tuple[float, tuple[int, ...]] | None = None

    def __enter__(self) -> None:
        with self._lock:
            if not self._users:
                self._saved = (sys.getswitchinterval(), gc.get_threshold())
                sys.setswitchinterval(self.SWITCH_INTERVAL)
                young, *older = self._saved[1]
                gc.set_threshold(max(young, self.YOUNG_GENERATION_THRESHOLD), *older)
            self._users += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._users -= 1
            if not self._users and self._saved is not None:
                switch_interval, thresholds = self._saved
                sys.setswitchinterval(switch_interval)
                gc.set_threshold(*thresholds)
                self._saved = None


threads_tuned = _ThreadsTuned()


def parsed_ahead(
    records: Iterable[ParsedLine], prepare: Callable, names_ahead: _NamesAhead
) -> Iterator[ReadAhead]:
    """``records``, read, checked and prepared for the sink (see :func:`_chunks`) in a thread
    of their own while the caller writes the ones before.

    Reading a line and checking its fields is Python's work; inserting and checking the rows
    (foreign keys, uniqueness) is the database's, most of it while a COPY segment ends, when
    the writing thread only waits. Reading ahead lets both go on at the same time. At most
    ``_READ_AHEAD_CHUNKS`` chunks wait; an error met while reading
    (a body over its limit, a broken file) is raised in the caller's thread. The interpreter
    is tuned for the two threads meanwhile (:class:`_ThreadsTuned`).
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
            for chunk in _chunks(records, prepare, names_ahead):
                if not put(chunk):
                    return
            put(_END)
        except BaseException as error:  # raised again in the caller's thread
            put(error)

    reader = threading.Thread(target=read, name="records-reader", daemon=True)
    with threads_tuned:
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
    After the first bad line nothing more is written: the rest are only checked, so that the
    refusal names every bad line.
    """
    connection = connections[router.db_for_write(ModelRecord)]
    errors = _Errors(unit)
    names_ahead = _NamesAhead()
    repeats = _Repeats(SEGMENT_ROWS)
    total = 0
    try:
        with transaction.atomic(using=connection.alias):
            sink = (postgres.CopySink if connection.vendor == "postgresql" else SQLiteSink)(
                connection, model_id=str(model.id), now=timezone.now(),
                segment_rows=SEGMENT_ROWS, segment_bytes=SEGMENT_BYTES,
            )
            references = _References(model, sink, names_ahead)
            for number, record, names, prepared in parsed_ahead(
                records, sink.prepare, names_ahead
            ):
                total += 1
                if names is None:  # a bad line: ``record`` holds what is wrong with it
                    errors.add(number, record)
                    sink.discard()
                    continue
                try:
                    linked = references.of(names, record, checking=bool(errors.count))
                except InvalidInput as invalid:
                    errors.add(number, invalid.lines())
                    sink.discard()
                    continue
                if linked is None or repeats.seen(
                    (record.timestamp, record.collection_date, linked)
                ):
                    continue
                references.written.add(linked)
                sink.write(prepared, linked.written)
            errors.raise_if_any()
            if not total:
                raise InvalidInput({NON_FIELD: ["The body holds no records."]})
            created = sink.finish()
            link_references(
                model,
                [
                    (r.refs.experiment_id, r.refs.site_id, r.refs.dataset_id)
                    for r in references.written
                ],
            )
    except (IntegrityError, psycopg.errors.ForeignKeyViolation):
        # Something the lines name was deleted meanwhile (the COPY raises psycopg's own).
        raise ReferenceDeleted() from None
    return IngestResult(created=created, skipped_existing=total - created)


class _References:
    """The references of one ingest's records, looked up once per set of names.

    Names already met are a dictionary lookup. A new set has to end the sink's COPY segment
    (no other statement can run while a COPY is open), so the names of every record read
    ahead are looked up at the same time, while the connection is free anyway.
    """

    def __init__(self, model: MLModel, sink, names_ahead: _NamesAhead) -> None:
        self.resolver = ReferenceResolver(model)
        self.sink = sink
        self.names_ahead = names_ahead
        self.by_names: dict[Names, _Linked] = {}
        #: The same references whatever names led to them.
        self.by_ids: dict[tuple, _Linked] = {}
        #: The references of the rows written, which the model is linked to at the end.
        self.written: set[_Linked] = set()

    def of(self, names: Names, record: RecordInput, *, checking: bool) -> _Linked | None:
        """The record's references; ``None`` when ``checking`` (a line before was bad, so
        nothing will be written and no dataset is created). Raises :class:`InvalidInput`
        for names that name nothing."""
        linked = self.by_names.get(names)
        if linked is not None:
            return None if checking else linked
        refs = self.resolver.cached(record)
        if refs is None:  # names not met yet in this request: look them up
            self.sink.pause()
            refs = self.resolver.resolve(record, create_dataset=not checking)
            if not checking:
                self._resolve_ahead()
        return None if checking else self._link(names, refs)

    def _link(self, names: Names, refs: References) -> _Linked:
        ids = (refs.dataset_id, refs.experiment_id, refs.season_id, refs.site_id)
        if ids not in self.by_ids:
            self.by_ids[ids] = _Linked(refs, self.sink)
        self.by_names[names] = self.by_ids[ids]
        return self.by_ids[ids]

    def _resolve_ahead(self) -> None:
        """Look up the names of the records read ahead (creating their datasets). A set that
        cannot be resolved is left for its record, whose number the refusal then names."""
        for names, record in self.names_ahead.take():
            if names in self.by_names:
                continue
            try:
                self._link(names, self.resolver.resolve(record, create_dataset=True))
            except InvalidInput:
                continue


class _Repeats:
    """The keys of the records written so far, to skip a repeat within the body.

    Bounded memory: past ``limit`` keys it starts afresh, and a repeat further apart than that
    is still skipped, by the database's unique constraint (the segment's fallback path)."""

    def __init__(self, limit: int) -> None:
        self.keys: set[tuple] = set()
        self.limit = limit

    def seen(self, key: tuple) -> bool:
        if key in self.keys:
            return True
        if len(self.keys) >= self.limit:
            self.keys.clear()
        self.keys.add(key)
        return False
