"""``GET /healthz``: whether the database and the object store answer (no authentication)."""

from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from config.error_views import allow_methods
from records.storage import check_storage

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@csrf_exempt  # reads only; other methods get a JSON 405, not a CSRF page
@allow_methods("GET")
def healthz(request: HttpRequest) -> JsonResponse:
    body: dict[str, str] = {}
    healthy = True
    for name, check in (("database", _check_database), ("storage", check_storage)):
        try:
            check()
            body[name] = "ok"
        except Exception as error:  # any failure of a backing service is "unavailable"
            logger.warning("Health check: %s unavailable: %s", name, error)
            body[name] = "unavailable"
            healthy = False
    if not healthy:
        body["detail"] = "A backing service is unreachable."
    return JsonResponse(body, status=200 if healthy else 503)
