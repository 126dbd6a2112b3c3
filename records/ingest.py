"""Bulk ingest: many records in one atomic request (``application/x-ndjson``) or import.

Every line is checked, and any bad line means nothing is written; the answer then names each
bad line by its number. Records that already exist, or repeat an earlier line, are skipped
and counted.

On PostgreSQL the rows go through ``COPY`` straight into the record table while the lines are
still being read, so that Python's parsing overlaps the database's work instead of preceding
it. The rows are sent in segments, each under a savepoint:

- a segment ends early when a name has to be looked up (no other statement can run while a
  COPY is open), and every ``SEGMENT_ROWS`` rows, which bounds the memory held;
- when a segment meets an existing record (a unique violation), it is rolled back and its
  rows, and all later ones, go through a scratch table and ``INSERT ... ON CONFLICT DO
  NOTHING`` instead, which skips what exists. Retries of a batch take this path.

Foreign keys stay in force and are checked at the end of each segment: Django creates them
``DEFERRABLE INITIALLY DEFERRED``, and the ingest sets them ``IMMEDIATE`` while it runs.
Deferred to commit, every row's checks would wait in the server's memory (measured: 12.6 MB
per 200,000 rows, gigabytes for an import of tens of millions in one transaction).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import psycopg
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from models_api import json_values
from models_api.exceptions import InvalidInput
from models_api.ids import new_id
from models_api.models import MLModel
from records.models import ModelRecord, json_for_save
from records.services import ReferenceResolver, link_references, reference_deleted
from records.validation import RecordInput, RecordInvalid, parse_record

#: Bad lines listed in an answer; the detail gives the total.
MAX_LISTED_LINE_ERRORS = 100
#: Rows sent per COPY segment (and held in memory at most, for a rollback).
SEGMENT_ROWS = 20_000

COLUMNS = (
    "id", "model_id", "timestamp", "collection_date", "dataset_id", "experiment_id",
    "season_id", "site_id", "model_data", "record_file", "record_info", "created_at",
    "updated_at",
)

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
        except json_values.JSONDecodeError as error:
            yield number, [f"The line is not valid JSON: {error.msg}."]
        except RecordInvalid as invalid:
            yield number, invalid.lines()


class _Errors:
    def __init__(self) -> None:
        self.count = 0
        self.listed: dict[str, list[str]] = {}

    def add(self, number: int, messages: list[str]) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED_LINE_ERRORS:
            self.listed[str(number)] = messages

    def raise_if_any(self) -> None:
        if not self.count:
            return
        noun = "line is" if self.count == 1 else "lines are"
        listed = (
            f" (the first {MAX_LISTED_LINE_ERRORS} are listed)"
            if self.count > MAX_LISTED_LINE_ERRORS
            else ""
        )
        raise InvalidInput(
            f"{self.count} {noun} invalid{listed}; nothing was written.", errors=self.listed
        )


_COPY_NULL = "\\N"


def _copy_escape(json_text: str) -> str:
    # COPY's text format treats backslash as an escape; JSON text holds no raw tab or newline.
    return json_text.replace("\\", "\\\\")


def _copy_line(row: tuple) -> str:
    """One row in COPY's text format (formatting rows here is several times cheaper than
    psycopg's per-value ``write_row``)."""
    (record_id, model_id, timestamp, collection_date, dataset_id, experiment_id, season_id,
     site_id, model_data, record_file, record_info, created_at, updated_at) = row
    file_text = _COPY_NULL if record_file is None else _copy_escape(record_file)
    return (
        f"{record_id}\t{model_id}\t{timestamp.isoformat()}\t{collection_date.isoformat()}\t"
        f"{dataset_id}\t{experiment_id}\t{season_id}\t{site_id}\t{_copy_escape(model_data)}\t"
        f"{file_text}\t{_copy_escape(record_info)}\t"
        f"{created_at.isoformat()}\t{updated_at.isoformat()}\n"
    )


class _PostgresSink:
    """Sends rows to the record table through COPY segments (see the module docstring)."""

    #: Rows formatted before one write to the COPY stream.
    WRITE_ROWS = 500

    def __init__(self, connection) -> None:
        self.connection = connection
        self.cursor = connection.cursor()
        self.created = 0
        self.direct = True  # False once a segment has met an existing record
        self.segment: list[tuple] = []
        self._unsent = 0  # rows of the segment not yet written to the COPY stream
        self._copy_context = None
        self._copy = None
        self._savepoint = None
        self._columns = ", ".join(COLUMNS)
        self.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # see the module docstring

    def write(self, row: tuple) -> None:
        self.segment.append(row)
        if self.direct:
            self._unsent += 1
            if self._unsent >= self.WRITE_ROWS:
                self._send()
        if len(self.segment) >= SEGMENT_ROWS:
            self.pause()

    def _send(self) -> None:
        if self._copy is None:
            self._savepoint = transaction.savepoint()
            self._copy_context = self.cursor.cursor.copy(
                f"COPY records_modelrecord ({self._columns}) FROM STDIN"
            )
            self._copy = self._copy_context.__enter__()
        rows = self.segment[len(self.segment) - self._unsent :]
        self._copy.write("".join(map(_copy_line, rows)).encode())
        self._unsent = 0

    def pause(self) -> None:
        """End the current segment, so that the connection is free for other statements."""
        if self.direct and self._unsent:
            self._send()
        if self._copy is not None:
            copy_context, self._copy, self._copy_context = self._copy_context, None, None
            try:
                copy_context.__exit__(None, None, None)
            except psycopg.errors.UniqueViolation:
                transaction.savepoint_rollback(self._savepoint)
                self.direct = False
            else:
                transaction.savepoint_commit(self._savepoint)
                self.created += len(self.segment)
                self.segment = []
        if self.segment:  # rows that may exist already
            self.created += self._insert_new(self.segment)
            self.segment = []
        self._unsent = 0

    def _insert_new(self, rows: list[tuple]) -> int:
        cursor = self.cursor
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS records_ingest "
            "(LIKE records_modelrecord INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cursor.cursor.copy(f"COPY records_ingest ({self._columns}) FROM STDIN") as copy:
            copy.write("".join(map(_copy_line, rows)).encode())
        cursor.execute(
            f"INSERT INTO records_modelrecord ({self._columns}) "
            f"SELECT {self._columns} FROM records_ingest "
            "ON CONFLICT ON CONSTRAINT record_unique_key DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute("TRUNCATE records_ingest")
        return inserted

    def discard(self) -> None:
        """Stop sending rows (a bad line was met: the transaction will be rolled back)."""
        if self._copy is not None:
            copy_context, self._copy, self._copy_context = self._copy_context, None, None
            try:
                copy_context.__exit__(None, None, None)
            except psycopg.Error:
                pass
            transaction.savepoint_rollback(self._savepoint)
        self.segment = []
        self._unsent = 0

    def finish(self) -> int:
        self.pause()
        self.cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as Django declares them
        self.cursor.execute("DROP TABLE IF EXISTS records_ingest")
        self.cursor.close()
        return self.created


class _SQLiteSink:
    """Batched ``INSERT OR IGNORE``; SQLite itself counts the rows it inserted."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.segment: list[tuple] = []
        self.created = 0

    def write(self, row: tuple) -> None:
        self.segment.append(row)
        if len(self.segment) >= SEGMENT_ROWS:
            self.pause()

    def pause(self) -> None:
        if not self.segment:
            return
        self.connection.ensure_connection()
        before = self.connection.connection.total_changes
        ModelRecord.objects.bulk_create(
            [
                ModelRecord(**{**dict(zip(COLUMNS, row, strict=True)),
                               "model_data": json_for_save(json_values.loads(row[8])),
                               "record_info": json_values.loads(row[10])})
                for row in self.segment
            ],
            ignore_conflicts=True,
        )
        self.created += self.connection.connection.total_changes - before
        self.segment = []

    def discard(self) -> None:
        self.segment = []

    def finish(self) -> int:
        self.pause()
        return self.created


def ingest_records(*, model: MLModel, records: Iterable[ParsedLine]) -> IngestResult:
    """Add many records in one transaction; any bad line means nothing is written."""
    connection = connections[router.db_for_write(ModelRecord)]
    resolver = ReferenceResolver(model)
    errors = _Errors()
    seen: set[tuple] = set()
    links: set[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = set()
    total = 0
    now = timezone.now()
    try:
        with transaction.atomic(using=connection.alias):
            sink = (_PostgresSink if connection.vendor == "postgresql" else _SQLiteSink)(connection)
            for number, record in records:
                total += 1
                if not isinstance(record, RecordInput):
                    errors.add(number, record)
                    sink.discard()
                    continue
                refs = resolver.cached(record)
                if refs is None:  # a name not seen yet in this request: look it up
                    sink.pause()
                    try:
                        refs = resolver.resolve(record, create_dataset=not errors.count)
                    except RecordInvalid as invalid:
                        errors.add(number, invalid.lines())
                        sink.discard()
                        continue
                if errors.count:
                    continue  # only checking from here on: nothing will be written
                key = (record.timestamp, record.collection_date, refs.dataset_id,
                       refs.experiment_id, refs.season_id, refs.site_id)
                if key in seen:
                    continue
                if len(seen) >= SEGMENT_ROWS:
                    # Bounded memory: a repeat further apart than this is still skipped, by
                    # the database's unique constraint (the segment's fallback path).
                    seen.clear()
                seen.add(key)
                links.add((refs.experiment_id, refs.site_id, refs.dataset_id))
                sink.write((
                    new_id(), model.id, record.timestamp, record.collection_date, refs.dataset_id,
                    refs.experiment_id, refs.season_id, refs.site_id,
                    json_values.dumps(record.model_data).decode(), None,
                    json_values.dumps(record.record_info).decode(), now, now,
                ))
            errors.raise_if_any()
            if not total:
                raise ValidationError("The body holds no records.")
            created = sink.finish()
            link_references(model, links)
    except (IntegrityError, psycopg.errors.ForeignKeyViolation):
        # Something the lines name was deleted meanwhile (the COPY raises psycopg's own).
        raise reference_deleted() from None
    return IngestResult(created=created, skipped_existing=total - created)
