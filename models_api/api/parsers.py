"""Request body parsers with the service's limits.

DRF reads JSON bodies straight from the request stream, so Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` never applies to them; the limit is enforced here instead (413),
and bodies are decoded by ``json_values.loads`` (orjson, exact for big integers), which also
refuses invalid UTF-8, NaN, absurd nesting and numbers that cannot be kept (a 400 naming the
field that holds one).
"""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from models_api.api import json_values
from models_api.api.errors import NON_FIELD, InvalidInput, TooLarge


def declared_length(parser_context: dict[str, Any] | None) -> int | None:
    """The body length the request declares (Content-Length), if any."""
    request = (parser_context or {}).get("request")
    declared = request.META.get("CONTENT_LENGTH") if request is not None else None
    if not declared:
        return None
    try:
        return int(declared)
    except ValueError:
        raise ParseError("The Content-Length header is not a number.") from None


def read_limited(
    stream: IO[bytes] | None, parser_context: dict[str, Any] | None, limit: int
) -> bytes:
    """Read the whole body, refusing (413) one larger than ``limit`` bytes before reading it."""
    too_large = f"The request body is larger than the limit of {limit:,} bytes."
    length = declared_length(parser_context)
    if length is not None and length > limit:
        raise TooLarge(too_large)
    if stream is None:
        return b""
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise TooLarge(too_large)
    return body


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        body = read_limited(stream, parser_context, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        try:
            return json_values.loads(body)
        except json_values.JSONNumberError as error:  # a 400 naming the field that holds it
            raise InvalidInput({error.field or NON_FIELD: [error.message()]}) from None
        except json_values.JSONDecodeError as error:
            raise ParseError(f"The body is not valid JSON: {error.msg}.") from None
