"""Token authentication that reads the token, its user and the user's permissions in one
plain query.

DRF's TokenAuthentication queries whatever follows ``Token``; a key holding a NUL character
then fails inside PostgreSQL with a 500. Keys are 40 hexadecimal characters, so anything else
is an invalid token (401) without a query. Every API request authenticates and then checks a
permission, so the lookup is a raw query that brings the permissions along (where Django's
ModelBackend caches them): composing the same joins with the ORM, or asking for the
permissions in a second round trip, costs more than most endpoints' own work. Being the
first statement of every API request, it is also the health check of a kept connection
(``models_api.api.prepared``), which would otherwise cost a round trip of its own.

:class:`APIKeyAuthentication` (the one configured) reads the same tokens from ``X-API-Key``
as well.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db import connections, router
from rest_framework import HTTP_HEADER_ENCODING, authentication, exceptions
from rest_framework.authtoken.models import Token

from models_api.api.auth_backends import cache_permissions, granted_permissions_sql
from models_api.api.auth_failures import guarded
from models_api.api.prepared import first_row_checking_health

_KEY = re.compile(r"[0-9a-f]{40}")


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str):
        if not _KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        user_model = get_user_model()
        fields = user_model._meta.concrete_fields
        columns = ", ".join(f"u.{field.column}" for field in fields)
        connection = connections[router.db_for_read(user_model)]
        row = first_row_checking_health(
            connection,
            f"SELECT {columns}, {granted_permissions_sql(f'u.{user_model._meta.pk.column}')} "
            f"FROM {user_model._meta.db_table} u "
            f"JOIN {Token._meta.db_table} t ON t.user_id = u.{user_model._meta.pk.column} "
            "WHERE t.key = %s",
            [key],
        )
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        # The database adapters give these columns their Python types (SQLite's through the
        # converters Django registers), so the row becomes a user as the ORM would make it.
        user = user_model.from_db(connection.alias, [field.attname for field in fields], row[:-1])
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        cache_permissions(user, row[-1])
        return user, Token(key=key, user=user)


class CredentialsDisagree(exceptions.APIException):
    status_code = 400
    default_detail = (
        "The X-API-Key header and the Authorization header name different tokens; send one."
    )
    default_code = "credentials_disagree"


class APIKeyAuthentication(TokenAuthentication):
    """The same tokens, also read from ``X-API-Key: <key>`` (the header GEMINIbase's clients
    send), with the same one-query lookup and the same 401 for a wrong one.

    Both headers may be sent when they name the same token; two different tokens are a 400
    rather than a guess at which one was meant (checked before any query).
    """

    header = "X-API-Key"

    def authenticate(self, request):
        with guarded(request):  # 429 while the address has failed too often; failures count
            api_key = request.headers.get(self.header)
            if api_key is None:
                return super().authenticate(request)
            api_key = api_key.strip()
            parts = authentication.get_authorization_header(request).split()
            if parts and parts[0].lower() == self.keyword.lower().encode():
                if [part.decode(HTTP_HEADER_ENCODING) for part in parts[1:]] != [api_key]:
                    raise CredentialsDisagree()
                return super().authenticate(request)
            return self.authenticate_credentials(api_key)
