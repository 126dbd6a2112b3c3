"""The one rule for names (``*_name`` fields and filters) and URLs, whatever checks them:
serializers, record validation, query filters."""

from __future__ import annotations

from typing import Any

NAME_MAX_LENGTH = 255
URL_MAX_LENGTH = 2048
#: How a name appears in the OpenAPI schema.
NAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": NAME_MAX_LENGTH}


def check_name(name: str) -> None:
    """Raise ``ValueError`` unless ``name`` is at most 255 characters without a NUL character
    (which PostgreSQL cannot store or compare)."""
    if len(name) > NAME_MAX_LENGTH:
        raise ValueError(f"Names are at most {NAME_MAX_LENGTH} characters.")
    if "\x00" in name:
        raise ValueError("Null characters are not allowed.")


def clean_name(value: Any) -> str:
    """``value`` as a name to write: text, surrounding white space removed, not blank, and
    passing :func:`check_name`; ``ValueError`` says why not."""
    if not isinstance(value, str):
        raise ValueError("Give the name as text.")
    name = value.strip()
    if not name:
        raise ValueError("This field may not be blank.")
    check_name(name)
    return name


def with_article(noun: str) -> str:
    """``noun`` with its indefinite article: "a model", "an experiment"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
