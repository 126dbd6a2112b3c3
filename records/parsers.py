"""Bodies of ``POST /api/models/id/{id}/records``: a multipart form with a file, or an NDJSON
bulk body, each under its own size limit (413 above it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from rest_framework import parsers

from models_api.exceptions import PayloadTooLarge
from models_api.parsers import declared_length


class LimitedMultiPartParser(parsers.MultiPartParser):
    """A record's form: refused (413) before reading when it declares more than a record file
    and its fields may take."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        limit = settings.RECORD_FILE_MAX_SIZE + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = declared_length(parser_context)
        if length is not None and length > limit:
            raise PayloadTooLarge(
                f"The form is larger than the limit of {settings.RECORD_FILE_MAX_SIZE:,} bytes "
                "for a record file."
            )
        return super().parse(stream, media_type, parser_context)


class NDJSONLines:
    """The lines of an NDJSON body, read from the stream one at a time as ``(number, bytes)``.

    Reading stops with 413 as soon as the body passes the bulk limit, whatever length it
    declared.
    """

    def __init__(self, stream, limit: int) -> None:
        self.stream, self.limit = stream, limit

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        if self.stream is None:
            return
        read = 0
        number = 0
        while True:
            line = self.stream.readline(self.limit - read + 1)
            if not line:
                return
            read += len(line)
            if read > self.limit:
                raise _too_large(self.limit)
            number += 1
            yield number, line


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The bulk body is larger than the limit of {limit:,} bytes.")


class NDJSONParser(parsers.BaseParser):
    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None) -> NDJSONLines:
        limit = settings.RECORDS_BULK_MAX_BODY_SIZE
        length = declared_length(parser_context)
        if length is not None and length > limit:
            raise _too_large(limit)
        return NDJSONLines(stream, limit)
