"""SQL functions that SQLite (the embedded default) lacks and the shared SQL uses, registered on
every SQLite connection so that the same statements run on both databases:

- ``models_api_json_contains``: PostgreSQL's ``jsonb @>`` (``models_api.api.json_lookups``);
- ``string_agg(value, separator)``: built into PostgreSQL, and into SQLite only from 3.44
  (``models_api.api.auth_backends`` reads a user's permissions with it).
"""

from __future__ import annotations

import json

from django.db.backends.signals import connection_created

from models_api.api.json_lookups import SQLITE_FUNCTION, json_contains


def _json_contains(container_text: str | None, contained_text: str | None) -> bool | None:
    if container_text is None or contained_text is None:
        return None
    return json_contains(json.loads(container_text), json.loads(contained_text))


class _StringAgg:
    def __init__(self) -> None:
        self.values: list[str] = []
        self.separator = ","

    def step(self, value: str | None, separator: str) -> None:
        if value is not None:
            self.values.append(value)
            self.separator = separator

    def finalize(self) -> str | None:
        return self.separator.join(self.values) if self.values else None


def _register(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            SQLITE_FUNCTION, 2, _json_contains, deterministic=True
        )
        connection.connection.create_aggregate("string_agg", 2, _StringAgg)


def install() -> None:
    connection_created.connect(_register, dispatch_uid="models_api.api.sqlite")
