"""The admin site: Django's, whose login refuses an address that failed too often.

Each wrong password counts one failure against the client's address
(``models_api.api.auth_failures``, through ``user_login_failed``). While the address is over
``API_AUTH_FAILURE_THROTTLE_RATE`` the login form refuses before the password is checked,
even the right one, and the page answers 429 with ``Retry-After``.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from models_api.api import auth_failures


class LoginForm(AdminAuthenticationForm):
    locked_for: int | None = None

    def clean(self):
        self.locked_for = auth_failures.locked_for(self.request)
        if self.locked_for is not None:
            raise ValidationError(
                auth_failures.refusal_sentence(self.locked_for, what="failed logins"),
                code="throttled",
            )
        return super().clean()


class AdminSite(admin.AdminSite):
    login_form = LoginForm

    def login(self, request, extra_context=None):
        response = super().login(request, extra_context)
        form = (getattr(response, "context_data", None) or {}).get("form")
        seconds = getattr(form, "locked_for", None)
        if seconds is not None:
            response.status_code = 429
            response["Retry-After"] = str(seconds)
        return response
