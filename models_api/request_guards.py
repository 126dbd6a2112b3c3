"""Refuses NUL characters in query parameters, for every view.

PostgreSQL cannot store or compare text holding NUL: a query parameter with one would make
any view that filters on it (the admin's list filters and autocomplete too) fail with a 500.
The API's own fields refuse NUL with a field error; this catches what no form sees. (Tokens
and session cookies are checked by ``models_api.authentication`` and ``models_api.sessions``.)
"""

from __future__ import annotations

from collections.abc import Callable

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
