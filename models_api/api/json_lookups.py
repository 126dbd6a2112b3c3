"""JSON containment (``field__contains={...}``) on SQLite as well as PostgreSQL.

PostgreSQL answers ``@>`` natively. SQLite has no containment operator, so the embedded default
calls a deterministic SQL function (registered by ``models_api.api.sqlite``) that applies
PostgreSQL's ``jsonb @>`` rules in Python; the same query then gives the same rows on both
databases.
"""

from __future__ import annotations

from typing import Any

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


class JSONContains(DataContains):
    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{SQLITE_FUNCTION}({lhs}, {rhs})", (*lhs_params, *rhs_params)


def install() -> None:
    JSONField.register_lookup(JSONContains)
