"""Failed authentication, throttled per client address: API tokens and the admin's login.

Every failure counts one against the client's address (DRF's ``get_ident``: the peer's
address, or the one ``NUM_PROXIES`` trusted proxies put in ``X-Forwarded-For``): a wrong,
malformed or revoked token, a token of an inactive user, a wrong admin password. An address
with ``AUTH_FAILURE_THROTTLE_RATE`` failures (``API_AUTH_FAILURE_THROTTLE_RATE``, default
20 a minute) within the period is refused with 429 and ``Retry-After`` until the oldest of
them leaves the period, even with the right credentials, which are then not looked up at
all. Successes count nothing. Another address is not affected.

The counts live in Django's cache (as DRF's throttles do), so that several processes and
servers share them once a shared cache is configured; with the default local-memory cache
each process counts on its own.

- API tokens: ``models_api.api.authentication`` wraps its authentication in
  :func:`guarded`;
- the admin: ``config.admin_site`` refuses a login while the address is over the rate, and
  :func:`count_failed_login` (connected to ``user_login_failed``) counts the failures.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle


class AuthFailureThrottle(SimpleRateThrottle):
    """A sliding window of failure times per address, in the cache."""

    scope = "auth_failure"

    def get_rate(self) -> str | None:
        return settings.AUTH_FAILURE_THROTTLE_RATE  # read per request: None turns it off

    def get_cache_key(self, request, view=None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _recent(self, request) -> list[float]:
        """The failure times of the address within the period, newest first."""
        self.key = self.get_cache_key(request)
        self.now = self.timer()
        since = self.now - self.duration
        return [moment for moment in self.cache.get(self.key, []) if moment > since]

    def locked_for(self, request) -> int | None:
        """Seconds until the address may try again, or None when it may now."""
        if self.rate is None:
            return None
        recent = self._recent(request)
        if len(recent) < self.num_requests:
            return None
        # Free once fewer than num_requests failures remain: when this one leaves the period.
        freeing = recent[self.num_requests - 1]
        return max(1, math.ceil(self.duration - (self.now - freeing)))

    def count_failure(self, request) -> None:
        if self.rate is None:
            return
        recent = self._recent(request)
        recent.insert(0, self.now)
        self.cache.set(self.key, recent[: self.num_requests * 2], self.duration)


def refusal_sentence(seconds: int, *, what: str = "failed authentication attempts") -> str:
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many {what} from this address; try again in {seconds} {unit}."


class TooManyFailures(exceptions.Throttled):
    """429 with ``Retry-After`` and a one-sentence ``detail``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(detail=refusal_sentence(seconds))
        self.wait = seconds


def presents_credentials(request) -> bool:
    """Whether the request carries credentials that would be looked up (``Authorization``,
    ``X-API-Key``): only such requests are refused while the address is over the rate. An
    empty ``X-API-Key`` is a key that fails (401) and so counts; an empty ``Authorization`` is
    no credentials, as DRF reads it."""
    meta = request.META
    return bool(meta.get("HTTP_AUTHORIZATION")) or "HTTP_X_API_KEY" in meta


@contextmanager
def guarded(request) -> Iterator[None]:
    """Around an API authentication: refuse (429) before anything is looked up when the
    address is over the rate; count one failure for each ``AuthenticationFailed``."""
    if not presents_credentials(request):
        yield
        return
    throttle = AuthFailureThrottle()
    seconds = throttle.locked_for(request)
    if seconds is not None:
        raise TooManyFailures(seconds)
    try:
        yield
    except exceptions.AuthenticationFailed:
        throttle.count_failure(request)
        raise


def locked_for(request: HttpRequest) -> int | None:
    """Seconds until the address may try to log in again, or None when it may now."""
    return AuthFailureThrottle().locked_for(request)


def count_failed_login(sender, credentials=None, request: HttpRequest | None = None, **kwargs):
    """``user_login_failed`` receiver: a failed login (the admin's) counts one failure."""
    if request is not None:
        AuthFailureThrottle().count_failure(request)
