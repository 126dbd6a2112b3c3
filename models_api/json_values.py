"""Checks on JSON values that the database or the encoder would otherwise reject with a 500.

PostgreSQL's ``jsonb`` refuses the NUL character (``\\u0000``) anywhere in a string or key, and
very deep nesting exhausts Python's recursion in encoders. Both are refused up front with a
sentence the client can act on.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError


def check_json_value(value: Any, *, max_depth: int | None = None) -> None:
    """Raise ``ValidationError`` if ``value`` holds a NUL character or nests too deeply.

    Walks the value iteratively, so that hostile nesting cannot overflow the stack here either.
    """
    limit = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValidationError("JSON strings may not contain the NUL character (\\u0000).")
        elif isinstance(item, dict | list):
            if depth >= limit:
                raise ValidationError(f"JSON may nest at most {limit} levels deep.")
            if isinstance(item, dict):
                for key, child in item.items():
                    if "\x00" in key:
                        raise ValidationError(
                            "JSON keys may not contain the NUL character (\\u0000)."
                        )
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_json_text(text: str | bytes) -> Any:
    """Parse JSON text (a multipart field, a query parameter) or raise ``ValidationError``."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ValidationError(f"Invalid JSON: {error.msg}.") from None
    check_json_value(value)
    return value
