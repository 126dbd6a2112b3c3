"""The errors the client raises.

Every error of the service is an :class:`APIError` carrying the contract's error body
(``detail``, and ``errors`` for invalid input); its subclass says which status it was. A
failure to reach the service at all (refused connection, reset, timeout, a response cut
short) is a :class:`TransportError`, also an :class:`APIError` (with ``status_code`` None),
so that ``except APIError`` catches everything the client raises about the service. No
httpx exception escapes the client: the original one is the ``__cause__``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

__all__ = [
    "APIError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "TooLarge",
    "TransportError",
    "Unauthorized",
    "Unavailable",
]


class APIError(Exception):
    """An error answer of the service (or, as :class:`TransportError`, no answer at all).

    ``status_code``: the HTTP status (None for a transport error); ``detail``: the one human
    sentence of the error body; ``errors``: field (or bulk row number) -> messages, for
    invalid input (empty otherwise); ``body``: the whole error body as parsed JSON (None when
    the answer was not JSON).
    """

    status_code: int | None = None

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        errors: Mapping[str, list[str]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(detail)
        if status_code is not None:
            self.status_code = status_code
        self.detail = detail
        self.errors: dict[str, list[str]] = dict(errors or {})
        self.body = body

    def __str__(self) -> str:
        prefix = f"{self.status_code}: " if self.status_code is not None else ""
        return f"{prefix}{self.detail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r}, status_code={self.status_code!r})"


class Invalid(APIError):
    """400: bad input. ``errors`` names each bad field (or bulk row, counted from 1)."""

    status_code = 400


class Unauthorized(APIError):
    """401: no credentials, or a token the service does not know."""

    status_code = 401


class Forbidden(APIError):
    """403: authenticated, but without the permission the operation needs."""

    status_code = 403


class NotFound(APIError):
    """404: an unknown id (or a path the service does not have)."""

    status_code = 404


class Conflict(APIError):
    """409: the write clashes with an existing object, whose id is ``existing_id``."""

    status_code = 409

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        errors: Mapping[str, list[str]] | None = None,
        body: Any = None,
        existing_id: uuid.UUID | None = None,
    ) -> None:
        super().__init__(detail, status_code=status_code, errors=errors, body=body)
        self.existing_id = existing_id


class TooLarge(APIError):
    """413: the body (a record's file, a form, a bulk body) is above the service's limit."""

    status_code = 413


class Unavailable(APIError):
    """503: the database or the file storage is unreachable. Idempotent calls are retried
    first (honouring ``Retry-After``); this is raised once the retries are spent.
    ``retry_after``: the seconds the service last asked to wait, if it said."""

    status_code = 503

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        errors: Mapping[str, list[str]] | None = None,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, status_code=status_code, errors=errors, body=body)
        self.retry_after = retry_after


class TransportError(APIError):
    """The service could not be reached, or the connection failed before a whole answer
    came (refused, reset, timed out, cut short), after the retries the call allows."""

    status_code = None


_BY_STATUS: dict[int, type[APIError]] = {
    400: Invalid,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    503: Unavailable,
}


def error_class(status_code: int) -> type[APIError]:
    """The error class of an answer's status (:class:`APIError` for any other status)."""
    return _BY_STATUS.get(status_code, APIError)
