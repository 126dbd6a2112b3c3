"""Heavy reads from PostgreSQL streaming replicas, with read-your-writes across servers.

``DATABASE_REPLICA_URLS`` adds one database alias per replica (``settings.DATABASE_REPLICAS``).
Nothing reads from them unless it asks: the record streams, the list endpoints and
``export_records`` run inside :func:`replica_reads` (views through :func:`replica_eligible`),
and :class:`ReplicaRouter` sends the reads made there to the replica chosen when it began.
Everything else, every write and every read of a request that did not ask, stays on the
primary (``default``).

Read-your-writes, as GitLab's database load balancer does it: after a user's successful write,
:class:`ReadYourWritesMiddleware` keeps the primary's WAL position (``pg_current_wal_lsn()``)
for that user in the shared cache. A later read of that user takes a replica only if it has
replayed that far (``pg_last_wal_replay_lsn()``), so whichever server answers, the user sees
what they wrote; other users may see the replica's lag. A replica that does not answer is
marked down in the cache for ``DATABASE_REPLICA_RETRY_SECONDS`` and its reads go to the
primary; the check is made before a stream's first byte, so an outage never costs a 5xx or a
short stream (a replica that dies in the middle of one breaks that stream, as the primary
would). While the cache is down no position can be read, and every read goes to the primary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import random
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

_read_alias: ContextVar[str | None] = ContextVar("replica_read_alias", default=None)

F = TypeVar("F", bound=Callable[..., Any])

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def replicas() -> list[str]:
    """The replicas' database aliases (none on SQLite or without DATABASE_REPLICA_URLS)."""
    return list(getattr(settings, "DATABASE_REPLICAS", []))


# --- WAL positions ---------------------------------------------------------------------------


def parse_lsn(text: str) -> int:
    """An LSN as PostgreSQL writes it (``16/B374D848``: two hexadecimal halves) as a number,
    so that positions compare and subtract in Python and keep in the cache as plain ints."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def primary_lsn() -> int | None:
    """The primary's current WAL position, or None on SQLite (which has no replicas)."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        return parse_lsn(cursor.fetchone()[0])


#: How far a server has replayed the WAL; one that is not in recovery (a promoted replica, a
#: test mirror) has every write.
_REPLAYED = (
    "(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_lsn() END)::text"
)
_REPLAYED_SQL = f"SELECT {_REPLAYED}"


def replayed_lsn(alias: str) -> int:
    """How far the replica has replayed the primary's WAL; raises DatabaseError when it does
    not answer."""
    with connections[alias].cursor() as cursor:
        cursor.execute(_REPLAYED_SQL)
        text = cursor.fetchone()[0]
    return parse_lsn(text) if text else 0


def _lsn_key(user_pk: object) -> str:
    return f"replicas:written-lsn:{user_pk}"


def remember_write(user_pk: object) -> None:
    """Keep the primary's position after a write of the user, for the user's next reads.

    The larger of the kept and the new position wins, so that of two writes answered in
    either order the later one counts (two writes of one user racing on two servers may still
    keep the earlier: the window is a cache round trip).
    """
    lsn = primary_lsn()
    if lsn is None:
        return
    key = _lsn_key(user_pk)
    kept = cache.get(key)
    if isinstance(kept, int) and kept > lsn:
        return
    cache.set(key, lsn, settings.DATABASE_REPLICA_READ_YOUR_WRITES_SECONDS)


#: What :func:`written_lsn` gives when it cannot know: no replica can be trusted then.
UNKNOWN = -1


def written_lsn(user_pk: object) -> int | None:
    """The position the user's reads must see, None when they wrote nothing lately, or
    :data:`UNKNOWN` while the cache is down (a write of theirs may have gone unrecorded)."""
    kept = cache.get(_lsn_key(user_pk))
    if getattr(cache, "unavailable", False):
        return UNKNOWN
    return kept if isinstance(kept, int) else None


# --- Choosing a replica ----------------------------------------------------------------------


def _down_key(alias: str) -> str:
    return f"replicas:down:{alias}"


def mark_down(alias: str, error: Exception) -> None:
    """Skip the replica on every server for a while; its reads go to the primary."""
    logger.warning("Replica %s unavailable, reading from the primary: %s", alias, error)
    cache.set(_down_key(alias), True, settings.DATABASE_REPLICA_RETRY_SECONDS)
    discard_connection(alias)


def discard_connection(alias: str) -> None:
    """Close this thread's connection to the replica: a broken one is never reused."""
    with contextlib.suppress(DatabaseError):
        connections[alias].close()


def marked_down(aliases: list[str]) -> set[str]:
    """Those of ``aliases`` marked down (one cache round trip)."""
    down = cache.get_many([_down_key(alias) for alias in aliases])
    return {alias for alias in aliases if down.get(_down_key(alias))}


def is_marked_down(alias: str) -> bool:
    return alias in marked_down([alias])


def choose_replica(min_lsn: int | None) -> str | None:
    """A replica that answers and has replayed ``min_lsn``, or None (read from the primary).

    Replicas are tried in random order, so that the reads spread over them. While the cache
    is down no replica's outage can be read or kept, so a dead replica would cost its connect
    timeout on every request: the primary answers then.
    """
    down = marked_down(replicas())
    if getattr(cache, "unavailable", False):
        return None
    candidates = [alias for alias in replicas() if alias not in down]
    random.shuffle(candidates)
    for alias in candidates:
        try:
            replayed = replayed_lsn(alias)
        except DatabaseError as error:
            mark_down(alias, error)
            continue
        if min_lsn is None or replayed >= min_lsn:
            return alias
    return None


@contextlib.contextmanager
def replica_reads(*, min_lsn: int | None) -> Iterator[str | None]:
    """Route the reads made inside to a replica that has ``min_lsn`` (if any answers); yields
    its alias, or None when they go to the primary."""
    alias = choose_replica(min_lsn) if replicas() and min_lsn != UNKNOWN else None
    token = _read_alias.set(alias)
    try:
        yield alias
    finally:
        _read_alias.reset(token)


def replica_eligible(view_method: F) -> F:
    """Mark a view's method as a heavy read that a replica may answer for the request's user.

    Meant for what a handler calls (never for ``initial``), so that DRF's authentication,
    permissions and throttles have run on the primary and the user whose writes must be seen
    is known.
    """

    @functools.wraps(view_method)
    def wrapper(self, *args, **kwargs):
        if not replicas():
            return view_method(self, *args, **kwargs)
        user = getattr(self.request, "user", None)
        min_lsn = written_lsn(user.pk) if user is not None and user.is_authenticated else None
        with replica_reads(min_lsn=min_lsn):
            return view_method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class ReplicaRouter:
    """``DATABASE_ROUTERS``: reads inside :func:`replica_reads` go to its replica; all else to
    the primary. Replicas are copies of the primary: nothing is migrated on them."""

    def db_for_read(self, model, **hints) -> str | None:
        return _read_alias.get()

    def db_for_write(self, model, **hints) -> str | None:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # every alias holds the same rows

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool | None:
        return False if db in replicas() else None


class ReadYourWritesMiddleware:
    """After a successful write of an authenticated user, keep the primary's WAL position for
    that user (see :func:`remember_write`). Does nothing without replicas."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method in SAFE_METHODS or response.status_code >= 400 or not replicas():
            return response
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            try:
                remember_write(user.pk)
            except DatabaseError as error:  # the write is done: answer it whatever happens
                logger.warning("Could not read the primary's WAL position: %s", error)
        return response


# --- Health ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaHealth:
    name: str
    status: str
    lag_bytes: int | None = None
    lag_seconds: float | None = None

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_LAG_SQL = (
    f"SELECT {_REPLAYED}, "
    "COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float8"
)


def replica_health(alias: str, primary: int | None) -> ReplicaHealth:
    """How far behind the primary (``primary``: its WAL position) the replica is: in bytes of
    WAL, and in seconds since it replayed its last transaction (zero when it has replayed
    everything: an idle primary sends nothing to replay)."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute(_LAG_SQL)
            text, since_replay = cursor.fetchone()
    except DatabaseError as error:
        logger.warning("Health check: replica %s unavailable: %s", alias, error)
        discard_connection(alias)
        return ReplicaHealth(alias, "unavailable")
    lag_bytes = max(0, primary - parse_lsn(text)) if primary is not None and text else None
    lag_seconds = 0.0 if lag_bytes == 0 else round(float(since_replay), 3)
    return ReplicaHealth(alias, "ok", lag_bytes, lag_seconds)
