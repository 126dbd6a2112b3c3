"""The records app's PostgreSQL fast paths, all of them.

Each has a portable counterpart in plain Django beside its caller, which SQLite (the embedded
default) runs:

- bulk ingest through ``COPY ... FROM STDIN`` (:class:`CopySink`; ``records.ingest`` has the
  SQLite sink);
- streams through ``COPY (SELECT ...) TO STDOUT`` with the JSON built by the database
  (:func:`json_lines`, :func:`one_json`; ``records.representation`` has the iterator);
- a record's INSERT and its links in one statement (:func:`insert_with_links`;
  ``records.services`` runs them one by one elsewhere);
- the admin's estimated row count (:func:`estimated_row_count`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import Model, QuerySet

from records.models import RECORD_COLUMNS, ModelRecord

if TYPE_CHECKING:
    from records.ingest import IngestRow

TABLE = ModelRecord._meta.db_table

# --- Bulk ingest ---------------------------------------------------------------------------

_COPY_NULL = "\\N"


def _copy_escape(json_text: str) -> str:
    # COPY's text format treats backslash as an escape; JSON text holds no raw tab or newline.
    return json_text.replace("\\", "\\\\")


def copy_line(row: IngestRow) -> str:
    """One row in COPY's text format (formatting rows here is several times cheaper than
    psycopg's per-value ``write_row``)."""
    file_text = _COPY_NULL if row.record_file is None else _copy_escape(row.record_file)
    return (
        f"{row.id}\t{row.model_id}\t{row.timestamp.isoformat()}\t"
        f"{row.collection_date.isoformat()}\t{row.dataset_id}\t{row.experiment_id}\t"
        f"{row.season_id}\t{row.site_id}\t{_copy_escape(row.model_data)}\t{file_text}\t"
        f"{_copy_escape(row.record_info)}\t"
        f"{row.created_at.isoformat()}\t{row.updated_at.isoformat()}\n"
    )


class CopySink:
    """Sends rows to the record table through COPY segments (see ``records.ingest``).

    - A segment ends early when a name has to be looked up (no other statement can run while
      a COPY is open), and every ``segment_rows`` rows, which bounds the memory held.
    - When a segment meets an existing record (a unique violation), it is rolled back to its
      savepoint and its rows, and all later ones, go through a scratch table and ``INSERT ...
      ON CONFLICT DO NOTHING`` instead, which skips what exists. Retries of a batch take this
      path.
    - Foreign keys are checked at the end of each segment: Django creates them ``DEFERRABLE
      INITIALLY DEFERRED``, and the sink sets them ``IMMEDIATE`` while it runs. Deferred to
      commit, every row's checks would wait in the server's memory (gigabytes for an import of
      tens of millions of rows in one transaction).
    """

    #: Rows formatted before one write to the COPY stream.
    WRITE_ROWS = 500
    SCRATCH = "records_ingest"

    def __init__(self, connection, *, segment_rows: int) -> None:
        self.connection = connection
        self.segment_rows = segment_rows
        self.cursor = connection.cursor()
        self.created = 0
        self.direct = True  # False once a segment has met an existing record
        self.segment: list[IngestRow] = []
        self._unsent = 0  # rows of the segment not yet written to the COPY stream
        self._copy_context = None
        self._copy = None
        self._savepoint = None
        self._columns = ", ".join(RECORD_COLUMNS)
        self.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    def write(self, row: IngestRow) -> None:
        self.segment.append(row)
        if self.direct:
            self._unsent += 1
            if self._unsent >= self.WRITE_ROWS:
                self._send()
        if len(self.segment) >= self.segment_rows:
            self.pause()

    def _send(self) -> None:
        if self._copy is None:
            self._savepoint = transaction.savepoint()
            self._copy_context = self.cursor.cursor.copy(
                f"COPY {TABLE} ({self._columns}) FROM STDIN"
            )
            self._copy = self._copy_context.__enter__()
        rows = self.segment[len(self.segment) - self._unsent :]
        self._copy.write("".join(map(copy_line, rows)).encode())
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

    def _insert_new(self, rows: list[IngestRow]) -> int:
        cursor = self.cursor
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.SCRATCH} "
            f"(LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cursor.cursor.copy(f"COPY {self.SCRATCH} ({self._columns}) FROM STDIN") as copy:
            copy.write("".join(map(copy_line, rows)).encode())
        cursor.execute(
            f"INSERT INTO {TABLE} ({self._columns}) "
            f"SELECT {self._columns} FROM {self.SCRATCH} "
            "ON CONFLICT ON CONSTRAINT record_unique_key DO NOTHING"
        )
        inserted = cursor.rowcount
        cursor.execute(f"TRUNCATE {self.SCRATCH}")
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
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.SCRATCH}")
        self.cursor.close()
        return self.created


# --- Streams -------------------------------------------------------------------------------


def _utc_text(column: str) -> str:
    # Always six fraction digits from to_char, dropped again when they are all zero.
    return (
        f"replace(to_char(q.{column} AT TIME ZONE 'UTC', "
        f"'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"
    )


def record_sql(
    values: QuerySet,
    fields: Sequence[str],
    datetime_fields: frozenset[str],
    *,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[str, tuple[Any, ...]]:
    """``SELECT <one JSON text per record> ... ORDER BY timestamp, id`` for the ``values()``
    query ``values``, with ``fields`` in order and ``datetime_fields`` in the contract's UTC
    form; ``offset`` rows skipped and at most ``limit`` (``None``: all) kept, in that order.

    ``row_to_json`` writes compact JSON with the columns in order; the times are formatted
    in SQL so that the database does all the work of a line. LIMIT and OFFSET sit beside the
    ORDER BY, so the database skips the rows itself and sends only those it keeps.
    ``EmptyResultSet`` when the filters can match nothing.
    """
    inner, params = values.order_by().query.sql_with_params()
    params = list(params)
    columns = ", ".join(
        f"{_utc_text(name)} AS {name}" if name in datetime_fields else f"q.{name}"
        for name in fields
    )
    page = ""
    if limit is not None:
        page += " LIMIT %s"
        params.append(limit)
    if offset:
        page += " OFFSET %s"
        params.append(offset)
    sql = (
        f"SELECT row_to_json(r)::text FROM ("
        f"SELECT {columns} FROM ({inner}) AS q ORDER BY q.timestamp, q.id{page}) AS r"
    )
    return sql, tuple(params)


def json_lines(
    values: QuerySet,
    fields: Sequence[str],
    datetime_fields: frozenset[str],
    *,
    offset: int = 0,
    limit: int | None = None,
) -> Iterator[bytes]:
    """Blocks of NDJSON lines of the records of ``values`` (as in :func:`record_sql`), written
    by the database and carried by ``COPY ... TO STDOUT``."""
    try:
        sql, params = record_sql(values, fields, datetime_fields, offset=offset, limit=limit)
    except EmptyResultSet:  # a filter that can match nothing (an unknown dataset name)
        return
    # CSV with a quote and a delimiter that JSON text never holds raw (control characters are
    # always escaped in JSON): COPY then passes each line through untouched.
    copy_sql = f"COPY ({sql}) TO STDOUT (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
    with transaction.atomic(using=values.db), connections[values.db].cursor() as cursor:
        # Without Memoize (a cache of the few names' lookups) the planner picks a parallel
        # plan whose workers do the joins; with parallel query disabled, Memoize off is slower.
        cursor.execute("SET LOCAL enable_memoize = off")
        with cursor.cursor.copy(copy_sql, params) as copy:
            yield from copy


def one_json(
    values: QuerySet, fields: Sequence[str], datetime_fields: frozenset[str]
) -> bytes | None:
    """The JSON of the first record of ``values`` (in stream order), or None."""
    try:
        sql, params = record_sql(values, fields, datetime_fields)
    except EmptyResultSet:
        return None
    with connections[values.db].cursor() as cursor:
        cursor.execute(f"{sql} LIMIT 1", params)
        row = cursor.fetchone()
    return row[0].encode() if row else None


# --- One record and its links --------------------------------------------------------------


def insert_with_links(
    connection, links: Sequence[tuple[str, list[Any]]], insert: tuple[str, list[Any]]
) -> list[tuple]:
    """Run the link statements and the record's INSERT as one statement (data-modifying CTEs)
    and return the INSERT's rows: one round trip, which commits or fails as a whole, so it
    needs no transaction of its own."""
    ctes = ", ".join(f"link_{n} AS ({sql})" for n, (sql, _) in enumerate(links))
    sql = f"WITH {ctes} {insert[0]}" if ctes else insert[0]
    params = [value for _, values in links for value in values] + list(insert[1])
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- Admin ---------------------------------------------------------------------------------


def estimated_row_count(model: type[Model], using: str) -> int:
    """The planner's estimate of the table's rows (``pg_class.reltuples``), read without a
    scan."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        return cursor.fetchone()[0]
