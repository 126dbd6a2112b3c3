"""The contract's error bodies: ``{"detail": "<one sentence>"}``, plus ``errors`` for invalid
input and ``id`` for conflicts, whatever raised the error (DRF, Django or the database).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from models_api.exceptions import (
    DATABASE_UNAVAILABLE,
    Conflict,
    InvalidInput,
    PayloadTooLarge,
    ServiceUnavailable,
)

logger = logging.getLogger(__name__)


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
            flat.setdefault(path or "non_field_errors", []).append(str(node))

    walk(detail, "")
    return flat


def summarise(errors: Mapping[str, Sequence[str]]) -> str:
    """One human sentence for a set of field errors."""
    fields = [field for field in errors if field != "non_field_errors"]
    if not fields:
        return next(iter(errors.get("non_field_errors", ["Invalid input."])))
    if len(errors) == 1:
        return f"{fields[0]}: {errors[fields[0]][0]}"
    return f"Invalid input in {', '.join(sorted(errors))}."


def _as_api_exception(exc: Exception) -> Exception:
    if isinstance(exc, Http404):
        return exceptions.NotFound(str(exc) or None)
    if isinstance(exc, PermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        return exceptions.ValidationError(detail)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, SuspiciousOperation):  # too many fields or files in a form, and the like
        return exceptions.ParseError(f"The request was refused: {exc}")
    if isinstance(exc, OperationalError | InterfaceError):
        logger.warning("Database unreachable: %s", exc)
        return ServiceUnavailable(DATABASE_UNAVAILABLE)
    return exc


def error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        errors = error_messages(exc.detail)
        body: dict[str, Any] = {"detail": summarise(errors)}
        if set(errors) != {"non_field_errors"}:
            body["errors"] = errors
        return body
    detail = exc.detail
    if not isinstance(detail, str):
        detail = summarise(error_messages(detail))
    body = {"detail": str(detail)}
    if isinstance(exc, InvalidInput):
        body["errors"] = exc.errors
    if isinstance(exc, Conflict) and exc.existing_id is not None:
        body["id"] = str(exc.existing_id)
    return body


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = _as_api_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = error_body(exc)
    if isinstance(exc, ServiceUnavailable):
        response["Retry-After"] = "5"
    return response
