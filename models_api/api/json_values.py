"""Checks on JSON values that the database or the encoder would otherwise reject with a 500.

PostgreSQL's ``jsonb`` refuses the NUL character (``\\u0000``) anywhere in a string or key, and
very deep nesting exhausts Python's recursion in encoders. Both are refused up front with a
sentence the client can act on.
"""

from __future__ import annotations

import json
import re
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


def text_is_safe(text: bytes) -> bool:
    """Whether JSON text surely holds no NUL character and no nesting past the limit.

    A cheap scan of the text (in C) that spares the walk of ``check_json_value`` for almost
    every bulk line: a NUL can only come from a ``\\u0000`` escape, and a value cannot nest
    deeper than the text has brackets. Either sign sends the value to the full check.
    """
    return (
        b"\\u0000" not in text
        and text.count(b"{") + text.count(b"[") < settings.JSON_MAX_DEPTH
    )


def parse_json_text(text: str | bytes) -> Any:
    """Parse JSON text (a multipart field, a query parameter) or raise ``ValidationError``."""
    try:
        value = loads(text)
    except JSONDecodeError as error:
        raise ValidationError(f"Invalid JSON: {error.msg}.") from None
    check_json_value(value)
    return value


class JSONDecodeError(ValueError):
    """Text that is not JSON; ``msg`` says why."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


# orjson reads integers beyond 64 bits as floats, silently losing digits; text with a run of
# 19 or more digits is read by the standard library instead, which keeps every digit.
_LONG_NUMBER = re.compile(rb"\d{19,}")


def _reject_constant(name: str) -> None:
    raise JSONDecodeError(f"{name} is not valid JSON")


def loads(text: bytes | str) -> Any:
    """Parse JSON text, exactly (big integers keep every digit), refusing NaN and Infinity."""
    raw = text.encode() if isinstance(text, str) else text
    if not _LONG_NUMBER.search(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as error:
            raise JSONDecodeError(error.msg) from None
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
        # orjson refuses "\\ud800" and other lone surrogates; the standard library does not.
        json.dumps(value, ensure_ascii=False).encode()
        return value
    except UnicodeEncodeError:
        raise JSONDecodeError(
            "a string holds a lone surrogate, which is not valid Unicode"
        ) from None
    except UnicodeDecodeError:
        raise JSONDecodeError("str is not valid UTF-8") from None
    except json.JSONDecodeError as error:
        raise JSONDecodeError(error.msg) from None
    except RecursionError:
        raise JSONDecodeError("depth limit exceeded") from None


def dumps(value: Any, *, option: int = 0) -> bytes:
    """Compact JSON; integers beyond 64 bits (which orjson cannot write) keep every digit."""
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, default=_default
        ).encode()


def _default(value: Any) -> Any:
    """What orjson writes natively and the standard library does not (the slow path only)."""
    import datetime
    import uuid

    if isinstance(value, datetime.datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, datetime.date | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
