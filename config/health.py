"""``GET /healthz``: whether the database and the object store answer (no authentication).

With ``REDIS_URL`` the shared cache is checked too (503 while it is down: the API keeps
answering, with throttles that let requests through). With replicas, each is listed with its
status and lag; a replica that is down is no 503, since the primary answers its reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.core.cache import caches
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from config.error_views import allow_methods
from models_api.api import replicas
from models_api.api.cache import ResilientRedisCache
from records.storage import check_storage

logger = logging.getLogger(__name__)


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _checks() -> list[tuple[str, Callable[[], None]]]:
    """The backing services the API cannot do without, each with its check."""
    checks: list[tuple[str, Callable[[], None]]] = [
        ("database", _check_database),
        ("storage", check_storage),
    ]
    shared = caches["default"]
    if isinstance(shared, ResilientRedisCache):  # the local-memory cache cannot be down
        checks.append(("cache", shared.ping))
    return checks


def _replicas() -> list[dict[str, Any]]:
    try:
        primary = replicas.primary_lsn()
    except Exception:  # the primary's own check reports it
        primary = None
    return [replicas.replica_health(alias, primary).as_json() for alias in replicas.replicas()]


@csrf_exempt  # reads only; other methods get a JSON 405, not a CSRF page
@allow_methods("GET")
def healthz(request: HttpRequest) -> JsonResponse:
    body: dict[str, Any] = {}
    healthy = True
    for name, check in _checks():
        try:
            check()
            body[name] = "ok"
        except Exception as error:  # any failure of a backing service is "unavailable"
            logger.warning("Health check: %s unavailable: %s", name, error)
            body[name] = "unavailable"
            healthy = False
    if replicas.replicas():
        body["replicas"] = _replicas()
    if not healthy:
        body["detail"] = "A backing service is unreachable."
    return JsonResponse(body, status=200 if healthy else 503)
