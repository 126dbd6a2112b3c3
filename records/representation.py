"""The one representation of a record, in every format, for ``GET /records/id/{rid}``, the two
streams and ``export_records``.

One row source per database gives the records of a queryset, in stream order (timestamp, then
id), as Arrow record batches in one *text form*: the 18 fields of ``RECORD_FIELDS`` in order,
each a string column (or null), already as the contract writes them:

- ids as UUID text, dates as ``YYYY-MM-DD``, times in UTC as ``2024-06-01T10:00:00Z`` (with
  ``.123456`` when the microseconds are not zero), names as they are stored;
- ``model_data`` and ``record_info`` as JSON text; ``record_file`` a storage key or null.

On PostgreSQL the batches are read by pyarrow straight from ``COPY ... TO STDOUT`` of the
record's columns and names (``records.postgres``); on SQLite from the ORM's iterator. The
encoders of ``records.renderers`` turn those batches into NDJSON, CSV, Arrow or Parquet, so
every format holds the same records with the same values, and a stream line and
``GET /records/id/{rid}`` are the same object by construction. A record just added is encoded
from the values in hand (``render_new``), which the tests hold to the same object.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
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
TIME_FIELDS = frozenset({"timestamp", "created_at", "updated_at"})
JSON_FIELDS = frozenset({"model_data", "record_info"})
_NAMES = {
    "model_name": F("model__model_name"),
    "dataset_name": F("dataset__dataset_name"),
    "experiment_name": F("experiment__experiment_name"),
    "season_name": F("season__season_name"),
    "site_name": F("site__site_name"),
}
#: The text form every row source gives and every encoder reads.
TEXT_SCHEMA = pa.schema([(name, pa.string()) for name in RECORD_FIELDS])
#: Rows per batch at most (Arrow streams carry batches of at most 65,536 rows).
BATCH_ROWS = 16_384
#: Rows fetched per round trip on SQLite.
ITERATOR_CHUNK_SIZE = 2000


def stream_values(queryset: QuerySet, *, offset: int = 0, limit: int | None = None) -> QuerySet:
    """``queryset``'s records as ``values_list`` rows of the 18 fields, in stream order, with
    the names read through joins, and paged by ``offset`` and ``limit``."""
    columns = [_NAMES.get(name, F(name)) for name in RECORD_FIELDS]
    values = queryset.order_by("timestamp", "id").values_list(*columns)
    if offset or limit is not None:
        values = values[offset : None if limit is None else offset + limit]
    return values


def utc_text(moment: datetime.datetime) -> str:
    """The contract's form of a time: UTC, ``Z``, six fraction digits only when not zero."""
    text = moment.astimezone(datetime.UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


def _text(name: str, value: Any) -> str | None:
    if name in JSON_FIELDS:  # JSON null is "null", never a missing value
        return json_values.dumps(value).decode()
    if value is None:
        return None
    if name in TIME_FIELDS:
        return utc_text(value)
    if isinstance(value, uuid.UUID | datetime.date):
        return str(value)
    return value


def _python_batches(values: QuerySet) -> Iterator[pa.RecordBatch]:
    """The text form from the ORM's rows (SQLite)."""
    columns: list[list[Any]] = [[] for _ in RECORD_FIELDS]
    for row in values.iterator(chunk_size=ITERATOR_CHUNK_SIZE):
        for name, column, value in zip(RECORD_FIELDS, columns, row, strict=True):
            column.append(_text(name, value))
        if len(columns[0]) >= BATCH_ROWS:
            yield pa.record_batch(columns, schema=TEXT_SCHEMA)
            columns = [[] for _ in RECORD_FIELDS]
    if columns[0]:
        yield pa.record_batch(columns, schema=TEXT_SCHEMA)


class RecordBatches:
    """The records of a queryset as text-form batches, in stream order.

    Made eagerly (the query is built, so that whatever is wrong with it raises before a
    stream's first byte), read lazily: nothing is fetched until the batches are iterated, and
    memory stays flat however many records match.
    """

    def __init__(self, queryset: QuerySet, *, offset: int = 0, limit: int | None = None):
        # The database the router picks now (a replica, for a stream): the batches are read
        # after the view has returned, outside the routing of its request.
        queryset = queryset.using(queryset.db)
        self.values = stream_values(queryset, offset=offset, limit=limit)
        if connections[queryset.db].vendor == "postgresql":
            self.source = postgres.TextBatches(self.values, RECORD_FIELDS, TIME_FIELDS)
        else:
            self.source = None

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self.source is not None:
            return iter(self.source)
        return _python_batches(self.values)


def _json(row: dict[str, Any]) -> bytes:
    return json_values.dumps({name: row[name] for name in RECORD_FIELDS}, option=orjson.OPT_UTC_Z)


def render_new(record, *, model_name: str, dataset_name: str, experiment_name: str,
               season_name: str, site_name: str) -> bytes:
    """The JSON of a record just written, from the values in hand (no query).

    Gives the same object as ``GET /records/id/{rid}`` reads back: the same fields, formats
    and values.
    """
    row = {name: getattr(record, name) for name in RECORD_FIELDS if name not in _NAMES}
    row.update(
        model_name=model_name,
        dataset_name=dataset_name,
        experiment_name=experiment_name,
        season_name=season_name,
        site_name=site_name,
    )
    return _json(row)
