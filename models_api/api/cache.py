"""Django's Redis cache, which an unreachable Redis turns into a cache that holds nothing.

What the service keeps in the cache (throttle counts, failed-authentication counts, the
replicas' read-your-writes positions and outage marks) is worth less than the request that
reads it: when Redis does not answer, every read is a miss and every write is dropped, so the
throttles let requests through (they fail open) and reads go to the primary, instead of each
request answering 500. The outage is logged once when it begins and once when it ends; for a
short while after a failure no call is tried at all, so that a Redis that times out does not
add its timeout to every request. ``GET /healthz`` asks :meth:`ResilientRedisCache.ping`,
which does raise, and answers 503 while Redis is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError, OutOfMemoryError, ReadOnlyError, TimeoutError

logger = logging.getLogger(__name__)

#: What an unreachable, overloaded or failing-over Redis raises: a full one refuses writes
#: (OutOfMemoryError), a replica mid-failover too (ReadOnlyError). A wrong command is a bug,
#: and still raises.
OUTAGE = (ConnectionError, TimeoutError, OutOfMemoryError, ReadOnlyError)

T = TypeVar("T")


class _Outage:
    """Whether a Redis is down, for every thread of the process (Django makes a cache object
    per thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.paused_until = 0.0


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


def _outage_of(server: str) -> _Outage:
    with _outages_lock:
        return _outages.setdefault(server, _Outage())


class ResilientRedisCache(RedisCache):
    #: Seconds after a failure during which calls are not tried.
    PAUSE_AFTER_FAILURE = 1.0

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._outage = _outage_of(server)

    @property
    def unavailable(self) -> bool:
        """Whether the last call found Redis down (what was read may then be a false miss)."""
        return self._outage.down

    def ping(self) -> None:
        """Raise when Redis does not answer (the health check; never paused)."""
        self._cache.get_client(write=True).ping()

    def _call(self, fallback: T, method: Callable[..., T], *args: Any) -> T:
        outage = self._outage
        if outage.down and time.monotonic() < outage.paused_until:
            return fallback
        try:
            result = method(*args)
        except OUTAGE as error:
            self._failed(error)
            return fallback
        if outage.down:
            self._recovered()
        return result

    def _failed(self, error: Exception) -> None:
        outage = self._outage
        with outage.lock:
            outage.paused_until = time.monotonic() + self.PAUSE_AFTER_FAILURE
            if not outage.down:
                outage.down = True
                logger.warning(
                    "Cache unavailable: %s; until it answers, throttles let requests through "
                    "and replica reads go to the primary.",
                    error,
                )

    def _recovered(self) -> None:
        outage = self._outage
        with outage.lock:
            if outage.down:
                outage.down = False
                logger.warning("Cache available again.")

    # Every method of the cache API that talks to Redis, with what a miss gives.

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        return self._call(False, super().add, key, value, timeout, version)

    def get(self, key, default=None, version=None) -> Any:
        return self._call(default, super().get, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> None:
        self._call(None, super().set, key, value, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        return self._call(False, super().touch, key, timeout, version)

    def delete(self, key, version=None) -> bool:
        return self._call(False, super().delete, key, version)

    def get_many(self, keys, version=None) -> dict[str, Any]:
        return self._call({}, super().get_many, keys, version)

    def has_key(self, key, version=None) -> bool:
        return self._call(False, super().has_key, key, version)

    def incr(self, key, delta=1, version=None) -> int:
        missing = object()
        result = self._call(missing, super().incr, key, delta, version)
        if result is missing:
            raise ValueError(f"Key '{key}' not found.")  # what a miss raises
        return result  # type: ignore[return-value]

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None) -> list[str]:
        return self._call(list(data), super().set_many, data, timeout, version)

    def delete_many(self, keys, version=None) -> None:
        self._call(None, super().delete_many, keys, version)

    def clear(self) -> None:
        self._call(None, super().clear)
