"""Guards that answer before any view: NUL characters in query parameters, chunked bodies
without a length, and writes over plain HTTP when HTTPS is required.

About NUL characters: PostgreSQL cannot store or compare text holding NUL: a query parameter
with one would make any view that filters on it (the admin's list filters and autocomplete too)
fail with a 500.
The API's own fields refuse NUL with a field error; this catches what no form sees. (Tokens
and session cookies are checked by ``models_api.api.authentication`` and
``models_api.api.sessions``.)
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


def _nul_params(request: HttpRequest) -> list[str]:
    """The query parameters whose name or value holds a NUL character."""
    return [
        name
        for name, values in request.GET.lists()
        if "\x00" in name or any("\x00" in value for value in values)
    ]


class RejectNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        names = _nul_params(request)
        if names:
            shown = ", ".join(name.replace("\x00", "") for name in names)
            return JsonResponse(
                {
                    "detail": f"Null characters are not allowed in the query parameter {shown}.",
                    "errors": {name: ["Null characters are not allowed."] for name in names},
                },
                status=400,
            )
        return self.get_response(request)


class HttpsWritesMiddleware:
    """With the HTTPS redirect on, refuse writes over plain HTTP instead of redirecting them.

    Django's SecurityMiddleware answers every plain-HTTP request with a 301 to https; clients
    follow a 301 with a GET, so a POST would silently become a read and its write be lost.
    Reads are still redirected; writes get a JSON 403 that says what to do.
    """

    SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.exempt = [re.compile(pattern) for pattern in settings.SECURE_REDIRECT_EXEMPT]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.SECURE_SSL_REDIRECT
            and request.method not in self.SAFE_METHODS
            and not request.is_secure()
            and not any(pattern.search(request.path.lstrip("/")) for pattern in self.exempt)
        ):
            return JsonResponse(
                {"detail": "Use HTTPS: this service does not accept writes over plain HTTP."},
                status=403,
            )
        return self.get_response(request)


class LengthRequiredMiddleware:
    """A body sent in chunks without a Content-Length reaches Django empty (WSGI cannot pass
    it on), which would read as a request missing every field: say so instead (411)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            return JsonResponse(
                {
                    "detail": (
                        "Send the body with a Content-Length header "
                        "(chunked bodies are not read)."
                    )
                },
                status=411,
            )
        return self.get_response(request)
