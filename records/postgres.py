"""The records app's PostgreSQL fast paths, all of them.

Each has a portable counterpart in plain Django beside its caller, which SQLite (the embedded
default) runs:

- bulk ingest through ``COPY ... FROM STDIN`` (:class:`CopySink`; ``records.ingest`` has the
  SQLite sink);
- the streams' rows read by pyarrow from ``COPY (SELECT ...) TO STDOUT`` (:class:`TextBatches`;
  ``records.representation`` has the ORM's iterator);
- a record's INSERT and its links in one statement (:func:`insert_with_links`;
  ``records.services`` runs them one by one elsewhere);
- the admin's estimated row count (:func:`estimated_row_count`).
"""

from __future__ import annotations

import datetime
import struct
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import Model, QuerySet

from models_api.api.ids import new_id_bytes
from models_api.api.prepared import prepared_cursor
from records.models import RECORD_COLUMNS, ModelRecord
from records.segments import SegmentSize

if TYPE_CHECKING:
    from records.validation import RecordInput

TABLE = ModelRecord._meta.db_table

# --- Bulk ingest ---------------------------------------------------------------------------

#: The start of a COPY in binary format: the signature, no flags, no header extension.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: ... and its end.
_BINARY_TRAILER = struct.pack(">h", -1)
#: A row's fields up to its references: the field count, then each field's length and value
#: (id, model, timestamp in microseconds and collection date in days, both from 2000-01-01).
_ROW_HEAD = struct.Struct(">hi16si16siqii")
#: The length of a jsonb field and the version of jsonb's binary format (its text follows).
_JSONB_HEAD = struct.Struct(">ib")
#: ``record_file`` (always NULL), then the head of ``record_info``.
_NULL_THEN_JSONB_HEAD = struct.Struct(">iib")
_UUID_FIELD = struct.Struct(">i16s")
_TIMESTAMP_FIELD = struct.Struct(">iq")
_PG_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
_PG_EPOCH_DAY = datetime.date(2000, 1, 1).toordinal()
_MICROSECOND = datetime.timedelta(microseconds=1)


def _binary_timestamp(value: datetime.datetime) -> int:
    """An aware datetime as COPY's binary ``timestamptz``: microseconds from 2000-01-01 UTC."""
    return (value - _PG_EPOCH) // _MICROSECOND


class CopySink:
    """Sends rows to the record table through COPY segments (see ``records.ingest``).

    - Rows go in COPY's binary format: PostgreSQL reads ids, times and dates from it without
      parsing their text, which is a good part of a plain COPY's work per row (``jsonb`` is
      sent as its text either way).
    - :meth:`prepare` runs in the ingest's reading thread: it makes each row's bytes but for
      its references, so that the writing thread, which alone talks to the database, only
      joins the two parts and writes (formatting rows here is several times cheaper than
      psycopg's per-value ``write_row``).
    - A segment ends early when a name has to be looked up (no other statement can run while
      a COPY is open), and when it is full (``SegmentSize``), which bounds the memory held.
    - When a segment meets an existing record (a unique violation), it is rolled back to its
      savepoint and its rows, and all later ones, go through a scratch table and ``INSERT ...
      ON CONFLICT DO NOTHING`` instead, which skips what exists. Retries of a batch take this
      path.
    - Foreign keys are checked at the end of each segment: Django creates them ``DEFERRABLE
      INITIALLY DEFERRED``, and the sink sets them ``IMMEDIATE`` while it runs. Deferred to
      commit, every row's checks would wait in the server's memory (gigabytes for an import of
      tens of millions of rows in one transaction).
    """

    #: Rows joined into one write to the COPY stream.
    WRITE_ROWS = 500
    SCRATCH = "records_ingest"

    def __init__(
        self, connection, *, model_id: str, now: datetime.datetime,
        segment_rows: int, segment_bytes: int,
    ) -> None:
        self.connection = connection
        self.size = SegmentSize(segment_rows, segment_bytes)
        self.cursor = connection.cursor()
        self.created = 0
        self.direct = True  # False once a segment has met an existing record
        self.segment: list[bytes] = []  # the segment's rows, kept for a fallback
        self._unsent = 0  # rows of the segment not yet written to the COPY stream
        self._copy_context = None
        self._copy = None
        self._savepoint = None
        self._columns = ", ".join(RECORD_COLUMNS)
        self._model_id = uuid.UUID(model_id).bytes
        now_field = _TIMESTAMP_FIELD.pack(8, _binary_timestamp(now))
        self._times = now_field + now_field  # created_at, updated_at
        self.cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")

    def prepare(
        self, record: RecordInput, model_data: bytes, record_info: bytes
    ) -> tuple[bytes, bytes]:
        """A row's bytes before and after its references (thread-safe: it reads only what the
        sink was made with). The JSON is copied into them, not kept: orjson's bytes hold
        several times their length until freed."""
        return (
            _ROW_HEAD.pack(
                len(RECORD_COLUMNS), 16, new_id_bytes(), 16, self._model_id,
                8, _binary_timestamp(record.timestamp),
                4, record.collection_date.toordinal() - _PG_EPOCH_DAY,
            ),
            _JSONB_HEAD.pack(len(model_data) + 1, 1) + model_data
            + _NULL_THEN_JSONB_HEAD.pack(-1, len(record_info) + 1, 1) + record_info
            + self._times,
        )

    @staticmethod
    def references(ids: tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]) -> bytes:
        """The references' fields (dataset, experiment, season, site)."""
        return b"".join(_UUID_FIELD.pack(16, value.bytes) for value in ids)

    def write(self, prepared: tuple[bytes, bytes], references: bytes) -> None:
        line = prepared[0] + references + prepared[1]
        self.segment.append(line)
        if self.direct:
            self._unsent += 1
            if self._unsent >= self.WRITE_ROWS:
                self._send()
        if self.size.full(len(line)):
            self.pause()

    def _send(self) -> None:
        if self._copy is None:
            self._savepoint = transaction.savepoint()
            self._copy_context = self.cursor.cursor.copy(
                f"COPY {TABLE} ({self._columns}) FROM STDIN (FORMAT binary)"
            )
            self._copy = self._copy_context.__enter__()
            self._copy.write(_BINARY_HEADER)
        self._copy.write(b"".join(self.segment[len(self.segment) - self._unsent :]))
        self._unsent = 0

    def pause(self) -> None:
        """End the current segment, so that the connection is free for other statements."""
        self.size.reset()
        if self.direct and self._unsent:
            self._send()
        if self._copy is not None:
            copy, copy_context = self._copy, self._copy_context
            self._copy = self._copy_context = None
            try:
                copy.write(_BINARY_TRAILER)
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

    def _insert_new(self, rows: list[bytes]) -> int:
        cursor = self.cursor
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.SCRATCH} "
            f"(LIKE {TABLE} INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cursor.cursor.copy(
            f"COPY {self.SCRATCH} ({self._columns}) FROM STDIN (FORMAT binary)"
        ) as copy:
            copy.write(b"".join([_BINARY_HEADER, *rows, _BINARY_TRAILER]))
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
        self.size.reset()
        self._unsent = 0

    def finish(self) -> int:
        self.pause()
        self.cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as Django declares them
        self.cursor.execute(f"DROP TABLE IF EXISTS {self.SCRATCH}")
        self.cursor.close()
        return self.created


# --- Streams -----------------------------------------------------------------------------

#: Bytes of COPY's CSV parsed into one batch (a few thousand records).
COPY_BLOCK_BYTES = 2 * 1024 * 1024


def _utc_text(column: pa.Array) -> pa.Array:
    """PostgreSQL's text of a ``timestamptz`` in UTC (``2024-06-01 10:00:00.5+00``) in the
    contract's form (``2024-06-01T10:00:00.500000Z``), for a whole column at once (the text
    is ASCII: the byte-wise kernels are the cheap ones)."""
    text = pc.utf8_slice_codeunits(column, 0, -3)  # the "+00" of the UTC session
    text = pc.if_else(pc.greater(pc.binary_length(text), 19), pc.ascii_rpad(text, 26, "0"), text)
    text = pc.binary_replace_slice(text, 10, 11, "T")
    return pc.binary_join_element_wise(text, "Z", "")


def _distinct_utc_text(column: pa.Array) -> pa.Array:
    """:func:`_utc_text` of each distinct value once (a batch's creation and update times are
    mostly the same few, as bulk loads write them)."""
    encoded = pc.dictionary_encode(column)
    if len(encoded.dictionary) * 4 > len(column):
        return _utc_text(column)
    return pc.take(_utc_text(encoded.dictionary), encoded.indices)


class TextBatches:
    """The rows of a ``values_list`` query (its fields named by ``fields``) as Arrow batches of
    text, read by pyarrow from ``COPY (<the query>) TO STDOUT (FORMAT csv)``; the columns of
    ``time_fields`` in the contract's form.

    The database only reads the rows in index order and joins the few names (Memoize keeps
    those lookups cheap); every other step of a record's representation is done by Arrow on
    whole columns, while the database goes on sending the next rows.
    """

    def __init__(self, values: QuerySet, fields: Sequence[str], time_fields: frozenset[str]):
        self.db = values.db
        self.fields = list(fields)
        self.time_fields = [name for name in fields if name in time_fields]
        try:
            self.sql, self.params = values.query.sql_with_params()
        except EmptyResultSet:  # a filter that can match nothing (a name no row has)
            self.sql = None
        self.convert_options = pacsv.ConvertOptions(
            column_types={name: pa.string() for name in self.fields},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # COPY writes NULL unquoted, '' quoted
            null_values=[""],
        )

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self.sql is None:
            return
        copy_sql = f"COPY ({self.sql}) TO STDOUT (FORMAT csv)"
        with transaction.atomic(using=self.db), connections[self.db].cursor() as cursor:
            # Transaction settings only (SET LOCAL), so that a pooler's shared server
            # connection keeps none of them: UTC text, and no JIT compile before the first row.
            cursor.execute(
                "SELECT set_config('TimeZone', 'UTC', true), set_config('jit', 'off', true)"
            )
            with cursor.cursor.copy(copy_sql, self.params) as copy:
                # libpq hands COPY's output over a row at a time: gathered into blocks that end
                # where rows end, each parsed by pyarrow at once (and nothing read ahead).
                rows, size = [], 0
                for row in copy:
                    rows.append(row)
                    size += len(row)
                    if size >= COPY_BLOCK_BYTES:
                        yield self._batch(b"".join(rows))
                        rows, size = [], 0
                if rows:
                    yield self._batch(b"".join(rows))

    def _batch(self, csv_rows: bytes) -> pa.RecordBatch:
        try:
            table = self._parse(csv_rows, newlines_in_values=False)
        except pa.ArrowInvalid:
            # A name holding a line break (COPY quotes it) splits its row in two, neither with
            # the row's number of columns: parse the block again, reading quoted line breaks.
            table = self._parse(csv_rows, newlines_in_values=True)
        return self._in_contract_form(table.combine_chunks().to_batches()[0])

    def _parse(self, csv_rows: bytes, *, newlines_in_values: bool) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(csv_rows),
            read_options=pacsv.ReadOptions(
                column_names=self.fields, block_size=len(csv_rows) + 1, use_threads=False
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=newlines_in_values),
            convert_options=self.convert_options,
        )

    def _in_contract_form(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for name in self.time_fields:
            index = batch.schema.get_field_index(name)
            batch = batch.set_column(index, name, _distinct_utc_text(batch.column(index)))
        return batch


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
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- Admin ---------------------------------------------------------------------------------


def estimated_row_count(model: type[Model], using: str) -> int:
    """The planner's estimate of the table's rows (``pg_class.reltuples``), read without a
    scan; for a partitioned table the sum of its partitions' (the parent holds no rows)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT COALESCE(sum(GREATEST(reltuples, 0)) FILTER (WHERE relkind <> 'p'), -1)::bigint
            FROM pg_class
            WHERE oid = %s::regclass
               OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass)
            """,
            [model._meta.db_table, model._meta.db_table],
        )
        return cursor.fetchone()[0]
