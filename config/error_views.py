"""JSON bodies for errors Django answers itself (an unknown URL, an uncaught error)."""

from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": f"Nothing is at {request.path}."}, status=404)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "The request could not be understood."}, status=400)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "You do not have permission to do this."}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A refused CSRF check: JSON for API clients, Django's page for the admin's browsers."""
    if request.path.startswith("/admin"):
        return csrf.csrf_failure(request, reason)
    return JsonResponse(
        {"detail": f"CSRF verification failed: {reason.rstrip('.')}."}, status=403
    )


def server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "The server failed to answer; the error is logged."}, status=500)


def allow_methods(*methods: str):
    """Answer other methods with a JSON 405 (Django's own 405 has an empty HTML body)."""
    allowed = {method.upper() for method in methods} | {"HEAD", "OPTIONS"}

    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if request.method not in allowed:
                response = JsonResponse(
                    {"detail": f'Method "{request.method}" not allowed.'}, status=405
                )
                response["Allow"] = ", ".join(sorted(allowed))
                return response
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
