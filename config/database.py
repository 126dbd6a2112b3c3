"""PostgreSQL connection settings for what stands between the service and the database.

Behind PgBouncer in transaction pooling mode, each transaction may run on a different server
connection, so the service must keep no state in a session: nothing prepared, no server-side
cursor (a named cursor lives across the transactions of a session), no startup ``options``
(PgBouncer refuses the parameter). The record paths already keep their state inside one
transaction (``SET LOCAL``, ``COPY``, ``SET CONSTRAINTS``, ``ON COMMIT DROP`` scratch tables).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: Executions on one connection after which psycopg prepares a statement (its own default;
#: Django turns preparing off unless ``OPTIONS`` asks for it).
PREPARE_THRESHOLD = 5

#: The values ``DATABASE_POOLER`` takes.
POOLERS = ("none", "pgbouncer")


def pooler_name(value: str | None) -> str:
    """``DATABASE_POOLER`` checked: a typo must not silently run without the pooler's rules."""
    name = (value or "none").strip().lower()
    if name not in POOLERS:
        raise ImproperlyConfigured(
            f"DATABASE_POOLER must be one of {', '.join(POOLERS)}; got {value!r}."
        )
    return name


def postgres_options(*, connect_timeout: int, pooler: str) -> dict[str, Any]:
    """The ``OPTIONS`` a PostgreSQL connection starts with; :func:`use_pooler` then applies a
    pooler's rules.

    Directly: no JIT for the whole session (its compile time lands on the first byte of
    every large stream). Behind PgBouncer the session is not ours, and PgBouncer refuses
    startup ``options``: the streams turn JIT off with ``SET LOCAL`` instead.
    """
    options: dict[str, Any] = {"connect_timeout": connect_timeout}
    if pooler != "pgbouncer":
        options["options"] = "-c jit=off"
    return options


def use_pooler(database: dict[str, Any], pooler: str) -> dict[str, Any]:
    """``database`` (a ``DATABASES`` entry for PostgreSQL) set for ``pooler``, in place.

    Directly, psycopg prepares a statement of ``models_api.api.prepared``'s cursors once it
    has run :data:`PREPARE_THRESHOLD` times on a connection. Behind PgBouncer psycopg must
    never prepare a statement (the next execution may reach a server connection that has not
    seen it), no startup ``options`` may be sent, and Django's ``QuerySet.iterator()`` must
    not ``DECLARE`` a cursor ``WITH HOLD``.
    """
    options = database.setdefault("OPTIONS", {})
    if pooler == "pgbouncer":
        options.pop("options", None)
        options["prepare_threshold"] = None
        database["DISABLE_SERVER_SIDE_CURSORS"] = True
    else:
        options["prepare_threshold"] = PREPARE_THRESHOLD
    return database
