"""The one representation of a record, for ``GET /records/id/{rid}`` and every stream line.

A stream may carry millions of records, so no DRF serializer runs per row:

- On PostgreSQL the database writes each line itself (``json_build_object``) and the rows
  leave through ``COPY ... TO STDOUT``, which streams without a cursor's round trips; Python
  only gathers the bytes into large chunks.
- On SQLite the rows come through ``QuerySet.iterator()`` and orjson encodes them.

Both give the contract's shape: fields in a fixed order, UUIDs as strings, dates as
``YYYY-MM-DD`` and times in UTC as ``2024-06-01T10:00:00Z`` (with ``.123456`` when the
microseconds are not zero). Single records use the same code, so a stream line and
``GET /records/id/{rid}`` are the same object by construction; a record just added is
encoded from the values in hand (``render_new``), which the tests hold to the same object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import F, QuerySet

from models_api import json_values

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
_DATETIME_FIELDS = frozenset({"timestamp", "created_at", "updated_at"})
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


def _utc_text(column: str) -> str:
    # Always six fraction digits from to_char, dropped again when they are all zero.
    return (
        f"replace(to_char(q.{column} AT TIME ZONE 'UTC', "
        f"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
    )


def _postgres_select(queryset: QuerySet) -> tuple[str, tuple[Any, ...]]:
    """``SELECT <one JSON text per record> ... ORDER BY timestamp, id`` for ``queryset``.

    ``row_to_json`` writes compact JSON with the columns in order; the times are formatted
    in SQL so that the database does all the work of a line.
    """
    inner, params = record_values(queryset.order_by()).query.sql_with_params()
    columns = ", ".join(
        f"{_utc_text(name)} AS {name}" if name in _DATETIME_FIELDS else f"q.{name}"
        for name in RECORD_FIELDS
    )
    sql = (
        f"SELECT row_to_json(r)::text FROM ("
        f"SELECT {columns} FROM ({inner}) AS q ORDER BY q.timestamp, q.id) AS r"
    )
    return sql, tuple(params)


def _encode(row: dict[str, Any]) -> bytes:
    return json_values.dumps({name: row[name] for name in RECORD_FIELDS}, option=orjson.OPT_UTC_Z)


def _postgres_lines(queryset: QuerySet) -> Iterator[bytes]:
    try:
        sql, params = _postgres_select(queryset)
    except EmptyResultSet:  # a filter that can match nothing (an unknown dataset name)
        return
    # CSV with a quote and a delimiter that JSON text never holds raw (control characters are
    # always escaped in JSON): COPY then passes each line through untouched.
    copy_sql = f"COPY ({sql}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    connection = connections[queryset.db]
    with transaction.atomic(using=queryset.db), connection.cursor() as cursor:
        # Without Memoize (a cache of the few names' lookups) the planner picks a parallel plan
        # whose workers do the joins: 53k -> 66k rows/s at SQL level on 1,000,000 rows. Over
        # HTTP on a 2-core machine the two are even (the workers compete with the app); with
        # parallel query disabled, Memoize off is slower (36k vs 45k rows/s).
        cursor.execute("SET LOCAL enable_memoize = off")
        buffer = bytearray()
        with cursor.cursor.copy(copy_sql, params) as copy:
            for block in copy:
                buffer += block
                if len(buffer) >= CHUNK_BYTES:
                    yield bytes(buffer)
                    buffer.clear()
        if buffer:
            yield bytes(buffer)


def _python_lines(queryset: QuerySet) -> Iterator[bytes]:
    rows = record_values(queryset.in_stream_order()).iterator(chunk_size=ITERATOR_CHUNK_SIZE)
    buffer = bytearray()
    for row in rows:
        buffer += _encode(row)
        buffer += b"\n"
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def render_lines(queryset: QuerySet) -> Iterator[bytes]:
    """NDJSON chunks of every record of ``queryset``, ordered by timestamp then id.

    Lazy: nothing is read until the first chunk is asked for, and memory stays flat however
    many records match.
    """
    if connections[queryset.db].vendor == "postgresql":
        return _postgres_lines(queryset)
    return _python_lines(queryset)


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
    connection = connections[queryset.db]
    if connection.vendor == "postgresql":
        try:
            sql, params = _postgres_select(queryset)
        except EmptyResultSet:
            return None
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} LIMIT 1", params)
            row = cursor.fetchone()
        return row[0].encode() if row else None
    row = record_values(queryset.in_stream_order()).first()
    return _encode(row) if row else None
