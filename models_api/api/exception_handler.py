"""The contract's error bodies: ``{"detail": "<one sentence>"}``, plus ``errors`` for invalid
input and ``id`` for conflicts, whatever raised the error (a service's domain error, DRF,
Django or the database).

This is the one place where errors become HTTP: services raise the plain exceptions of
:mod:`models_api.api.errors`, mapped here to their status codes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from models_api.api.errors import (
    DATABASE_UNAVAILABLE,
    NON_FIELD,
    Conflict,
    DomainError,
    InvalidInput,
    TooLarge,
    Unavailable,
    summarise,
)

logger = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying after a 503.
RETRY_AFTER_SECONDS = 5

_STATUS = {
    InvalidInput: status.HTTP_400_BAD_REQUEST,
    Conflict: status.HTTP_409_CONFLICT,
    TooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    Unavailable: status.HTTP_503_SERVICE_UNAVAILABLE,
}


def error_messages(detail: Any) -> dict[str, list[str]]:
    """Flatten DRF's error detail (nested dicts and lists) to ``{"field": ["message", ...]}``.

    Nested fields are joined with dots (``model_info.key``); errors that belong to no field are
    kept under ``non_field_errors``.
    """
    flat: dict[str, list[str]] = {}

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(node, Sequence) and not isinstance(node, str):
            for child in node:
                walk(child, path)
        else:
            flat.setdefault(path or NON_FIELD, []).append(str(node))

    walk(detail, "")
    return flat


def invalid_body(detail: str, errors: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """A 400's body: ``errors`` only when some message belongs to a field (or a line)."""
    body: dict[str, Any] = {"detail": detail}
    if set(errors) != {NON_FIELD}:
        body["errors"] = {key: list(messages) for key, messages in errors.items()}
    return body


def domain_error_body(exc: DomainError) -> dict[str, Any]:
    if isinstance(exc, InvalidInput):
        return invalid_body(exc.detail, exc.errors)
    body: dict[str, Any] = {"detail": exc.detail}
    if isinstance(exc, Conflict) and exc.existing_id is not None:
        body["id"] = str(exc.existing_id)
    return body


def domain_status(exc: DomainError) -> int:
    for kind, code in _STATUS.items():
        if isinstance(exc, kind):
            return code
    return status.HTTP_400_BAD_REQUEST


def unavailable_response(detail: str) -> JsonResponse:
    """The 503 answer outside DRF views (middleware, plain views): JSON with Retry-After."""
    response = JsonResponse({"detail": detail}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _as_known_error(exc: Exception) -> Exception:
    """Django's and the database's exceptions as a DRF or domain error."""
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return exceptions.ValidationError(detail)
    if isinstance(exc, RequestDataTooBig):
        return TooLarge()
    if isinstance(exc, SuspiciousOperation):  # too many fields or files in a form, and the like
        return exceptions.ParseError(f"The request was refused: {exc}")
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unreachable: %s", exc)
        return Unavailable(DATABASE_UNAVAILABLE)
    return exc


def api_error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        errors = error_messages(exc.detail)
        return invalid_body(summarise(errors), errors)
    detail = exc.detail
    if not isinstance(detail, str):
        detail = summarise(error_messages(detail))
    return {"detail": str(detail)}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _as_known_error(exc)
    if isinstance(exc, DomainError):
        set_rollback()
        response = Response(domain_error_body(exc), status=domain_status(exc))
    else:
        response = drf_exception_handler(exc, context)
        if response is None:
            return None
        response.data = api_error_body(exc)
    if response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
