"""Token authentication that looks only well-formed keys up.

DRF's TokenAuthentication queries whatever follows ``Token``; a key holding a NUL character
then fails inside PostgreSQL with a 500. Keys are 40 hexadecimal characters, so anything else
is an invalid token (401) without a query.
"""

from __future__ import annotations

import re

from rest_framework import authentication, exceptions

_KEY = re.compile(r"[0-9a-f]{40}")


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate_credentials(self, key: str):
        if not _KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
