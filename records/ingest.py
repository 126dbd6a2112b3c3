"""Bulk ingest: many records in one atomic request (``application/x-ndjson``) or import.

Every line is checked, and any bad line means nothing is written; the answer then names each
bad line by its number. Records that already exist, or repeat an earlier line, are skipped
and counted.

Rows go to a *sink*: on PostgreSQL :class:`records.postgres.CopySink`, which sends them
through ``COPY`` straight into the record table while the lines are still being read, so that
Python's parsing overlaps the database's work instead of preceding it; elsewhere
:class:`SQLiteSink`, batched ``INSERT OR IGNORE``. Both write segments of at most
``SEGMENT_ROWS`` rows, which bounds the memory held.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import psycopg
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone

from models_api.api import json_values
from models_api.api.errors import NON_FIELD, InvalidInput, ReferenceDeleted
from models_api.api.ids import new_id
from models_api.models import MLModel
from records import postgres
from records.models import ModelRecord, json_for_save
from records.services import ReferenceResolver, link_references
from records.validation import RecordInput, parse_record

#: Bad lines listed in an answer; the detail gives the total.
MAX_LISTED_LINE_ERRORS = 100
#: Rows written per segment (and held in memory at most, for a rollback).
SEGMENT_ROWS = 20_000


class IngestRow(NamedTuple):
    """One row of the record table as the sinks write it: the columns of
    ``records.models.RECORD_COLUMNS``, in that order (a test holds the two together).
    ``model_data`` and ``record_info`` are JSON text."""

    id: uuid.UUID
    model_id: uuid.UUID
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
            self.listed, detail=f"{self.count} {noun} invalid{listed}; nothing was written."
        )


class SQLiteSink:
    """Batched ``INSERT OR IGNORE``; SQLite itself counts the rows it inserted."""

    def __init__(self, connection, *, segment_rows: int) -> None:
        self.connection = connection
        self.segment_rows = segment_rows
        self.segment: list[IngestRow] = []
        self.created = 0

    def write(self, row: IngestRow) -> None:
        self.segment.append(row)
        if len(self.segment) >= self.segment_rows:
            self.pause()

    def pause(self) -> None:
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
            sink = (postgres.CopySink if connection.vendor == "postgresql" else SQLiteSink)(
                connection, segment_rows=SEGMENT_ROWS
            )
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
                    except InvalidInput as invalid:
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
                sink.write(IngestRow(
                    new_id(), model.id, record.timestamp, record.collection_date, refs.dataset_id,
                    refs.experiment_id, refs.season_id, refs.site_id,
                    json_values.dumps(record.model_data).decode(), None,
                    json_values.dumps(record.record_info).decode(), now, now,
                ))
            errors.raise_if_any()
            if not total:
                raise InvalidInput({NON_FIELD: ["The body holds no records."]})
            created = sink.finish()
            link_references(model, links)
    except (IntegrityError, psycopg.errors.ForeignKeyViolation):
        # Something the lines name was deleted meanwhile (the COPY raises psycopg's own).
        raise ReferenceDeleted() from None
    return IngestResult(created=created, skipped_existing=total - created)
