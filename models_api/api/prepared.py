"""The few statements every request runs: PostgreSQL may keep them prepared, and the first of
them doubles as the connection's health check.

Django's PostgreSQL cursors bind values on the client: each statement goes out as text with
its values quoted in, so the server parses and plans it afresh every time. The statements
that every single-record POST runs (the token's user, the model's name, the ids of the
names, the INSERT) are the same text on every request. On a server-binding cursor psycopg
sends the values apart from the text and, once a statement has run ``prepare_threshold``
times on a connection, prepares it and sends only its values from then on.
``config.database.use_pooler`` sets the threshold: never behind PgBouncer in transaction
pooling mode, where the next execution may reach a server connection that has not seen it.

Only these statements use it. Server-side binding types some SQL differently (a bare ``%s``
in a select list is text, ``SET x = %s`` is refused), and the rest of the code, the ORM's
included, is written for Django's default.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first statement of a request
on a connection kept from an earlier one, and reconnects when it fails: a round trip of its
own on every request. The token lookup, the first statement of every API request, is that
check instead (:func:`first_row_checking_health`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import InterfaceError, OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper


@contextlib.contextmanager
def prepared_cursor(connection: BaseDatabaseWrapper) -> Iterator[CursorWrapper]:
    """A cursor on ``connection`` whose statements PostgreSQL may keep prepared; the usual
    cursor on any other database.

    It is Django's own wrapper (errors become ``django.db`` errors, queries are logged and
    counted as any other) around a server-binding psycopg cursor, made the way
    ``connection.cursor()`` makes its own: health check, connection, thread check.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        cursor = connection._prepare_cursor(ServerBindingCursor(connection.connection))
    with cursor:
        yield cursor


def _first_row(connection: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> tuple | None:
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def first_row_checking_health(
    connection: BaseDatabaseWrapper, sql: str, params: Sequence[Any]
) -> tuple | None:
    """The first row of the read-only statement ``sql``, which is also the health check of a
    kept connection when the request has not checked it yet.

    If it fails there because the connection is unusable (the server restarted, a failover,
    a proxy dropped it while idle), the connection is closed and the statement runs once
    more on a new one: what Django's check would have done, without its round trip when the
    connection is fine. Read-only statements only: a write that failed may have been done.
    """
    check_due = (
        connection.connection is not None
        and connection.health_check_enabled
        and not connection.health_check_done
        and not connection.in_atomic_block
    )
    if not check_due:
        return _first_row(connection, sql, params)
    connection.health_check_done = True
    try:
        return _first_row(connection, sql, params)
    except (OperationalError, InterfaceError):
        connection.close()
    return _first_row(connection, sql, params)
