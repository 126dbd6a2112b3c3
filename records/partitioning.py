"""The record table as hash partitions on ``model_id`` (PostgreSQL declarative partitioning).

A model's records then live in one partition, whatever their number: a stream, an ingest or
a model's deletion touches one partition's indexes, and the table can grow (or be spread over
nodes, as Citus distributes by the same key) without one index holding every record.

The price: PostgreSQL requires every unique rule of a partitioned table to carry the
partition key, so the primary key becomes ``(id, model_id)``. Django's pk stays ``id`` (ids
are UUIDs, unique by construction), and a lookup by id alone (``/records/id/{rid}``) probes
every partition's key index.

:func:`rebuild` turns the table into N partitions, back into a plain table, or from N
partitions into M, in one transaction: the rows are copied, then every constraint and index
the table had is made again under its own name, so that Django's migrations and the code that
names constraints (``ON CONFLICT ON CONSTRAINT record_unique_key``) find them as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connections, transaction

from records.models import ModelRecord

TABLE = ModelRecord._meta.db_table
PARTITION_KEY = ModelRecord._meta.get_field("model").column
PRIMARY_KEY = ModelRecord._meta.pk.column
#: The order constraints are made again in: keys first, foreign keys (which scan) last.
_CONSTRAINT_ORDER = {"p": 0, "u": 1, "x": 2, "c": 3, "f": 5}


class PartitioningError(Exception):
    """The table cannot be rebuilt as asked (the message says why, for an operator)."""


@dataclass(frozen=True, slots=True)
class Layout:
    """How the record table is stored: ``partitions`` hash partitions, or 0 for a plain table."""

    partitions: int

    def __str__(self) -> str:
        if not self.partitions:
            return "a plain table"
        return f"{self.partitions} hash partitions on {PARTITION_KEY}"


@dataclass(frozen=True, slots=True)
class Constraint:
    name: str
    kind: str  # pg_constraint.contype
    definition: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rebuilt:
    before: Layout
    after: Layout
    rows: int
    constraints: tuple[str, ...]
    indexes: int


def current_layout(using: str = "default") -> Layout:
    with connections[using].cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relkind, (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)
            FROM pg_class c WHERE c.oid = %s::regclass
            """,
            [TABLE],
        )
        kind, partitions = cursor.fetchone()
    return Layout(partitions if kind == "p" else 0)


def inbound_foreign_keys(cursor) -> list[str]:
    """Foreign keys of other tables to the record table: they reference ``id`` alone, which
    a partitioned table cannot keep unique on its own, so a rebuild refuses while any exists."""
    cursor.execute(
        """
        SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint
        WHERE confrelid = %s::regclass AND contype = 'f' AND conrelid <> confrelid
          AND conparentid = 0
        ORDER BY 1
        """,
        [TABLE],
    )
    return [name for (name,) in cursor.fetchall()]


def _constraints(cursor) -> list[Constraint]:
    cursor.execute(
        """
        SELECT c.conname, c.contype, pg_get_constraintdef(c.oid),
               ARRAY(SELECT a.attname FROM unnest(c.conkey) AS k(attnum)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
        FROM pg_constraint c
        WHERE c.conrelid = %s::regclass AND c.conparentid = 0 AND c.contype <> 'n'
        """,
        [TABLE],
    )
    found = [Constraint(name, kind, definition, tuple(columns))
             for name, kind, definition, columns in cursor.fetchall()]
    return sorted(found, key=lambda constraint: (_CONSTRAINT_ORDER.get(constraint.kind, 4),
                                                 constraint.name))


def _plain_indexes(cursor) -> list[str]:
    """The definitions of the indexes that no constraint owns (those come back with it)."""
    cursor.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
        WHERE i.indrelid = %s::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                          WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
        ORDER BY i.indexrelid
        """,
        [TABLE],
    )
    # A partitioned table's own index reads "ON ONLY <table>" (that index alone, without its
    # partitions'); made on the new table it must cover the partitions too.
    return [definition.replace(" ON ONLY ", " ON ", 1) for (definition,) in cursor.fetchall()]


def _definition_for(constraint: Constraint, layout: Layout) -> str:
    """The constraint's definition on the new table: the primary key is ``id`` on a plain
    table and ``(id, model_id)`` on a partitioned one; other unique rules gain the
    partition key when they lack it."""
    if constraint.kind == "p":
        columns = [PRIMARY_KEY, PARTITION_KEY] if layout.partitions else [PRIMARY_KEY]
        return f"PRIMARY KEY ({', '.join(columns)})"
    if constraint.kind == "u" and layout.partitions and PARTITION_KEY not in constraint.columns:
        return re.sub(r"\(([^)]*)\)", rf"(\1, {PARTITION_KEY})", constraint.definition, count=1)
    return constraint.definition


def _partition_name(number: int) -> str:
    return f"{TABLE}_p{number}"


def rebuild(layout: Layout, using: str = "default") -> Rebuilt:
    """Store the record table as ``layout``, keeping every row, constraint and index.

    One transaction: the table is locked against writes and reads for its duration, and any
    error leaves it as it was.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise PartitioningError(
            "Partitioning needs PostgreSQL; the embedded SQLite database has no partitions."
        )
    if layout.partitions < 0:
        raise PartitioningError("The number of partitions cannot be negative.")
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
        # The old table is dropped in this transaction: no deferred foreign key check of a row
        # written earlier in it may still wait on it.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        before = current_layout(using)
        if before == layout:
            raise PartitioningError(f"The record table is {before} already: nothing to do.")
        inbound = inbound_foreign_keys(cursor)
        if inbound:
            raise PartitioningError(
                "Foreign keys of other tables reference the records' id alone, which a "
                f"partitioned table cannot keep unique: {', '.join(inbound)}."
            )
        constraints, indexes = _constraints(cursor), _plain_indexes(cursor)
        old = f"{TABLE}_old"
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
        cursor.execute(  # free the partitions' names for the new ones
            "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            [old],
        )
        for number, (name,) in enumerate(cursor.fetchall()):
            cursor.execute(f"ALTER TABLE {name} RENAME TO {old}_p{number}")
        partitioned = f" PARTITION BY HASH ({PARTITION_KEY})" if layout.partitions else ""
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING STORAGE "
            f"INCLUDING COMMENTS INCLUDING COMPRESSION){partitioned}"
        )
        for number in range(layout.partitions):
            cursor.execute(
                f"CREATE TABLE {_partition_name(number)} PARTITION OF {TABLE} "
                f"FOR VALUES WITH (MODULUS {layout.partitions}, REMAINDER {number})"
            )
        # Rows first, then the indexes: one build per index beats row-by-row upkeep.
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {old}")
        rows = cursor.rowcount
        cursor.execute(f"DROP TABLE {old}")  # its partitions, constraints and indexes with it
        for constraint in constraints:
            cursor.execute(
                f"ALTER TABLE {TABLE} ADD CONSTRAINT {connection.ops.quote_name(constraint.name)} "
                f"{_definition_for(constraint, layout)}"
            )
        for definition in indexes:
            cursor.execute(definition)
        cursor.execute(f"ANALYZE {TABLE}")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as Django declares them
    return Rebuilt(
        before=before,
        after=layout,
        rows=rows,
        constraints=tuple(constraint.name for constraint in constraints),
        indexes=len(indexes),
    )
