"""Turns an unreachable database into the contract's 503 outside DRF views too (the admin,
sessions, health), instead of Django's HTML 500 page."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from models_api.api.errors import DATABASE_UNAVAILABLE
from models_api.api.exception_handler import unavailable_response

logger = logging.getLogger(__name__)


class ServiceUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            return self.get_response(request)
        except (OperationalError, InterfaceError) as error:
            # Raised by middleware that runs after this one (sessions, auth) before any view.
            return self._unavailable(error)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            return self._unavailable(exception)
        return None

    @staticmethod
    def _unavailable(error: Exception) -> HttpResponse:
        logger.warning("Database unreachable: %s", error)
        return unavailable_response(DATABASE_UNAVAILABLE)
