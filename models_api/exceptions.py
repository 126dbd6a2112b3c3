"""Errors the services raise beyond DRF's own (conflict, too large, unavailable)."""

from __future__ import annotations

import uuid

from rest_framework import exceptions, status

DATABASE_UNAVAILABLE = "The database is unreachable; please try again shortly."


class Conflict(exceptions.APIException):
    """A write would duplicate an existing row; the body names that row's ``id``."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with an existing object."
    default_code = "conflict"

    def __init__(self, detail: str, *, existing_id: uuid.UUID | str | None = None) -> None:
        super().__init__(detail)
        self.existing_id = existing_id


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A backing service is unreachable; please try again shortly."
    default_code = "unavailable"


class InvalidInput(exceptions.APIException):
    """A 400 whose sentence and per-key messages are given as they are (e.g. bulk lines by
    number), rather than derived from serializer errors."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, detail: str, *, errors: dict[str, list[str]]) -> None:
        super().__init__(detail)
        self.errors = errors
