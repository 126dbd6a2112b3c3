"""The one representation of a record, for ``GET /records/id/{rid}`` and every stream line.

A stream may carry millions of records, so no DRF serializer runs per row:

- On PostgreSQL the database writes each line itself (``row_to_json``) and the rows leave
  through ``COPY ... TO STDOUT``, which streams without a cursor's round trips; Python only
  gathers the bytes into large chunks (``records.postgres``).
- On SQLite the rows come through ``QuerySet.iterator()`` and orjson encodes them.

Both give the contract's shape: fields in a fixed order, UUIDs as strings, dates as
``YYYY-MM-DD`` and times in UTC as ``2024-06-01T10:00:00Z`` (with ``.123456`` when the
microseconds are not zero). Single records use the same code, so a stream line and
``GET /records/id/{rid}`` are the same object by construction; a record just added is
encoded from the values in hand (``render_new``), which the tests hold to the same object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from django.db import connections
from django.db.models import F, QuerySet

from models_api.api import json_values
from records import postgres

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
DATETIME_FIELDS = frozenset({"timestamp", "created_at", "updated_at"})
_NAMES = {
    "model_name": F("model__model_name"),
    "dataset_name": F("dataset__dataset_name"),
    "experiment_name": F("experiment__experiment_name"),
    "season_name": F("season__season_name"),
    "site_name": F("site__site_name"),
}
#: Bytes gathered before a chunk goes to the client: few large writes, flat memory.
CHUNK_BYTES = 256 * 1024
#: Rows fetched per round trip on SQLite.
ITERATOR_CHUNK_SIZE = 2000


def record_values(queryset: QuerySet) -> QuerySet:
    """The record's columns and the names of its references, as ``values()`` rows."""
    own = [name for name in RECORD_FIELDS if name not in _NAMES]
    return queryset.values(*own, **_NAMES)


def _encode(row: dict[str, Any]) -> bytes:
    return json_values.dumps({name: row[name] for name in RECORD_FIELDS}, option=orjson.OPT_UTC_Z)


def _chunks(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """``pieces`` gathered into chunks of about ``CHUNK_BYTES``: few large writes, flat memory."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _python_lines(queryset: QuerySet, offset: int, limit: int | None) -> Iterator[bytes]:
    ordered = record_values(queryset.in_stream_order())
    if offset or limit is not None:  # LIMIT and OFFSET in the query, after its ORDER BY
        ordered = ordered[offset : None if limit is None else offset + limit]
    for row in ordered.iterator(chunk_size=ITERATOR_CHUNK_SIZE):
        yield _encode(row) + b"\n"


def render_lines(
    queryset: QuerySet, *, offset: int = 0, limit: int | None = None
) -> Iterator[bytes]:
    """NDJSON chunks of the records of ``queryset``, ordered by timestamp then id: ``offset``
    records skipped, then at most ``limit`` (``None``: every one).

    Lazy: nothing is read until the first chunk is asked for, and memory stays flat however
    many records match. The skipped records are skipped by the database, never read.
    """
    if connections[queryset.db].vendor == "postgresql":
        lines = postgres.json_lines(
            record_values(queryset), RECORD_FIELDS, DATETIME_FIELDS, offset=offset, limit=limit
        )
    else:
        lines = _python_lines(queryset, offset, limit)
    return _chunks(lines)


def render_new(record, *, model_name: str, dataset_name: str, experiment_name: str,
               season_name: str, site_name: str) -> bytes:
    """The JSON of a record just written, from the values in hand (no query).

    Gives the same object as ``render_one`` would read back: the same fields, formats and
    values.
    """
    row = {
        name: getattr(record, name)
        for name in RECORD_FIELDS
        if name not in _NAMES
    }
    row.update(
        model_name=model_name,
        dataset_name=dataset_name,
        experiment_name=experiment_name,
        season_name=season_name,
        site_name=site_name,
    )
    return _encode(row)


def render_one(queryset: QuerySet) -> bytes | None:
    """The JSON of the first record of ``queryset`` (in stream order), or None."""
    if connections[queryset.db].vendor == "postgresql":
        return postgres.one_json(record_values(queryset), RECORD_FIELDS, DATETIME_FIELDS)
    row = record_values(queryset.in_stream_order()).first()
    return _encode(row) if row else None
