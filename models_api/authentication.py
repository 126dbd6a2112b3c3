"""Token authentication that reads the token and its user in one plain query.

DRF's TokenAuthentication queries whatever follows ``Token``; a key holding a NUL character
then fails inside PostgreSQL with a 500. Keys are 40 hexadecimal characters, so anything else
is an invalid token (401) without a query. Every API request authenticates, so the lookup is a
raw query: composing the same join with the ORM costs more CPU than most endpoints' own work.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

_KEY = re.compile(r"[0-9a-f]{40}")


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str):
        if not _KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        user_model = get_user_model()
        users = user_model.objects.raw(
            f"SELECT u.* FROM {user_model._meta.db_table} u "
            f"JOIN {Token._meta.db_table} t ON t.user_id = u.{user_model._meta.pk.column} "
            "WHERE t.key = %s",
            [key],
        )
        user = next(iter(users), None)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, Token(key=key, user=user)
