"""JSON containment (``field__contains={...}``) on SQLite as well as PostgreSQL.

PostgreSQL answers ``@>`` natively. SQLite has no containment operator, so the embedded default
registers a deterministic SQL function that applies PostgreSQL's ``jsonb @>`` rules in Python;
the same query then gives the same rows on both databases.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.backends.signals import connection_created
from django.db.models import JSONField
from django.db.models.fields.json import DataContains

SQLITE_FUNCTION = "models_api_json_contains"


def json_contains(container: Any, contained: Any, *, top_level: bool = True) -> bool:
    """PostgreSQL's ``container @> contained`` for decoded JSON values."""
    if isinstance(contained, dict):
        return isinstance(container, dict) and all(
            key in container and json_contains(container[key], value, top_level=False)
            for key, value in contained.items()
        )
    if isinstance(contained, list):
        return isinstance(container, list) and all(
            any(json_contains(candidate, item, top_level=False) for candidate in container)
            for item in contained
        )
    if isinstance(container, list) and top_level:
        # jsonb: a top-level array contains a primitive that is one of its elements.
        return any(_same_scalar(candidate, contained) for candidate in container)
    return _same_scalar(container, contained)


def _same_scalar(a: Any, b: Any) -> bool:
    # JSON true is not the number 1, although Python says True == 1.
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return not isinstance(a, dict | list) and a == b


def _sqlite_json_contains(container_text: str | None, contained_text: str | None) -> bool | None:
    if container_text is None or contained_text is None:
        return None
    return json_contains(json.loads(container_text), json.loads(contained_text))


class JSONContains(DataContains):
    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{SQLITE_FUNCTION}({lhs}, {rhs})", (*lhs_params, *rhs_params)


def _register_sqlite_function(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            SQLITE_FUNCTION, 2, _sqlite_json_contains, deterministic=True
        )


def install() -> None:
    JSONField.register_lookup(JSONContains)
    connection_created.connect(_register_sqlite_function, dispatch_uid=SQLITE_FUNCTION)
