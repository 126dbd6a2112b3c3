"""Django's database sessions, ignoring cookies that cannot be session keys.

Session keys are letters and digits; a cookie holding anything else (a NUL character would
make PostgreSQL fail the lookup with a 500) is treated as no session at all.
"""

from django.contrib.sessions.backends import db


class SessionStore(db.SessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(super()._validate_session_key(key)) and key.isalnum()
