"""Bodies of ``POST /api/models/id/{id}/records``: a multipart form with a file, or an NDJSON
bulk body, each under its own size limit (413 above it)."""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from models_api.api.errors import TooLarge
from models_api.api.parsers import declared_length


class _FormWatcher:
    """Wraps a multipart body's stream to count its parts as they are read.

    Django's parser silently skips a part whose headers are not UTF-8 or name nothing, and
    stops without complaint when the body is cut short: either way a record would be written
    without a field or file the client sent. Counting the delimiters in the raw bytes lets the
    parser compare what arrived with what was read.
    """

    def __init__(self, stream, boundary: bytes) -> None:
        self.stream = stream
        self.delimiter = b"--" + boundary
        self.closing = self.delimiter + b"--"
        self.delimiters = 0
        self.closings = 0
        self._tail = b""

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        window = self._tail + data
        # Occurrences inside the kept tail were counted with the previous read.
        self.delimiters += window.count(self.delimiter) - self._tail.count(self.delimiter)
        self.closings += window.count(self.closing) - self._tail.count(self.closing)
        self._tail = window[-(len(self.closing) - 1) :]
        return data

    @property
    def parts(self) -> int:
        """The parts before the closing delimiter (None if the body never closed)."""
        return self.delimiters - 1 if self.closings else -1


class _RecordFormParser(DjangoMultiPartParser):
    def sanitize_file_name(self, file_name: str) -> str | None:
        # Django drops a file whose name sanitises to nothing ("..", "/", "uploads/"); keep it:
        # records.storage gives every file a safe name of its own anyway.
        return super().sanitize_file_name(file_name) or "file"


class LimitedMultiPartParser(parsers.MultiPartParser):
    """A record's form: refused (413) before reading when it declares more than a record file
    and its fields may take, and refused (400) when any part of it could not be read whole,
    rather than writing a record without what the client sent."""

    def parse(self, stream, media_type=None, parser_context=None) -> parsers.DataAndFiles:
        limit = settings.RECORD_FILE_MAX_SIZE + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = declared_length(parser_context)
        if length is not None and length > limit:
            raise TooLarge(
                f"The form is larger than the limit of {settings.RECORD_FILE_MAX_SIZE:,} bytes "
                "for a record file."
            )
        request = parser_context["request"]
        encoding = parsers.get_encoding(parser_context)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        boundary = parse_header_parameters(media_type or "")[1].get("boundary", "")
        watcher = _FormWatcher(stream, boundary.encode("ascii", "replace"))
        try:
            data, files = _RecordFormParser(
                meta, watcher, request.upload_handlers, encoding
            ).parse()
        except MultiPartParserError as error:
            # Django's messages name its internals ("Invalid boundary in multipart: None").
            if "boundary" in str(error).lower():
                raise ParseError(
                    "The form could not be read: its boundary is missing or invalid."
                ) from None
            raise ParseError("The form could not be read as multipart/form-data.") from None
        read = sum(len(values) for _, values in data.lists())
        read += sum(len(values) for _, values in files.lists())
        if watcher.parts < 0:
            raise ParseError("The form ends before its closing boundary; nothing was written.")
        if watcher.parts != read:
            raise ParseError(
                "A part of the form could not be read (its headers are not UTF-8, or it names "
                "no field); nothing was written."
            )
        if encoding.lower().replace("_", "-") in {"utf-8", "utf8"}:
            for name, values in data.lists():
                if "\ufffd" in name or any("\ufffd" in value for value in values):
                    raise ParseError(
                        f"The form field {name!r} is not valid UTF-8 (or declare the form's "
                        "charset); nothing was written."
                    )
        return parsers.DataAndFiles(data, files)


class NDJSONLines:
    """The lines of an NDJSON body as ``(number, bytes)``, read from the stream in blocks.

    Reading stops with 413 as soon as the body passes the bulk limit, whatever length it
    declared. Blocks, not ``readline()``: each readline passes through Django's and the
    server's stream wrappers, which cost a fifth of a bulk request's time at 100,000 lines.
    """

    #: Bytes asked of the stream at a time.
    BLOCK_BYTES = 256 * 1024

    def __init__(self, stream, limit: int) -> None:
        self.stream, self.limit = stream, limit

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        if self.stream is None:
            return
        read = 0
        number = 0
        partial = bytearray()  # a line begun in an earlier block
        while block := self.stream.read(min(self.BLOCK_BYTES, self.limit - read + 1)):
            read += len(block)
            if read > self.limit:
                raise _too_large(self.limit)
            if b"\n" not in block:  # a long line: look at each byte once
                partial += block
                continue
            *lines, rest = block.split(b"\n")
            if partial:
                lines[0] = bytes(partial) + lines[0]
                partial = bytearray()
            partial += rest
            for line in lines:
                number += 1
                yield number, line
        if partial:
            yield number + 1, bytes(partial)


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"The bulk body is larger than the limit of {limit:,} bytes.")


class NDJSONParser(parsers.BaseParser):
    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None) -> NDJSONLines:
        limit = settings.RECORDS_BULK_MAX_BODY_SIZE
        length = declared_length(parser_context)
        if length is not None and length > limit:
            raise _too_large(limit)
        return NDJSONLines(stream, limit)
