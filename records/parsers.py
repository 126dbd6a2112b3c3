"""Bodies of ``POST /api/models/id/{id}/records``: a multipart form with a file, or a bulk body
in any of the streams' formats (NDJSON, CSV, Arrow IPC stream, Parquet), each under its own
size limit (413 above it).

A bulk body's parser reads nothing but what it must: it hands the view a :class:`BulkBody`,
whose records are read and checked from the request stream as the ingest consumes them (in
its reader thread), so that memory holds a block, a CSV row or an Arrow batch at a time, never
the body. Parquet is the exception the format forces: its footer, at the end, says where the
rows are, so the body is first copied to a temporary file and its row groups then read one
by one.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from django.conf import settings
from django.http import QueryDict
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
from django.utils.datastructures import MultiValueDict
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.request import Request

from models_api.api.errors import NON_FIELD, InvalidInput, TooLarge
from models_api.api.parsers import declared_length
from records.ingest import ParsedLine, parse_ndjson
from records.readers import arrow_records, csv_records, parquet_records


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


#: A part of a form as the seed's clients (requests, httpx, curl, browsers) send a plain field.
_PLAIN_FIELD = re.compile(
    rb'\r\nContent-Disposition: form-data; name="([A-Za-z0-9_]+)"\r\n\r\n(.*)', re.DOTALL
)


def plain_form_fields(body: bytes, boundary: bytes) -> QueryDict | None:
    """The fields of a form made only of plain fields, exactly as Django's parser reads them;
    None for any other form, which Django's parser then reads.

    A form of a record's fields and no file is what a single-record POST sends, and Django's
    parser, which streams parts, parses every part's headers with the ``email`` package:
    most of such a request's parsing time. Plain means: nothing before the first delimiter
    or after the closing one, each part a single ``Content-Disposition: form-data;
    name="..."`` header (an ASCII name, no file name) and a UTF-8 value without the
    delimiter in it.
    """
    chunks = (b"\r\n" + body).split(b"\r\n--" + boundary)
    if len(chunks) < 3 or chunks[0] or chunks[-1] not in (b"--", b"--\r\n"):
        return None
    if body.count(b"--" + boundary) != len(chunks) - 1:
        return None  # Django takes "--boundary" for a delimiter wherever it is
    most = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    if most is not None and len(chunks) - 2 > most:
        return None
    fields = QueryDict(mutable=True)
    for chunk in chunks[1:-1]:
        part = _PLAIN_FIELD.fullmatch(chunk)
        if part is None:
            return None
        try:
            fields.appendlist(part[1].decode("ascii"), part[2].decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return fields


class LimitedMultiPartParser(parsers.MultiPartParser):
    """A record's form: refused (413) before reading when it declares more than a record file
    and its fields may take, and refused (400) when any part of it could not be read whole,
    rather than writing a record without what the client sent.

    A small form of plain fields is read by :func:`plain_form_fields`, any other by Django's
    parser."""

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
        boundary = parse_header_parameters(media_type or "")[1].get("boundary", "")
        utf8 = encoding.lower().replace("_", "-") in {"utf-8", "utf8"}
        small = length is not None and 0 < length <= (settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)
        if utf8 and small and _RecordFormParser.boundary_re.fullmatch(boundary):
            body = stream.read(length)
            fields = plain_form_fields(body, boundary.encode("ascii", "replace"))
            if fields is not None:
                return parsers.DataAndFiles(_utf8_checked(fields), MultiValueDict())
            stream = io.BytesIO(body)
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
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
        return parsers.DataAndFiles(_utf8_checked(data) if utf8 else data, files)


def _utf8_checked(data: QueryDict) -> QueryDict:
    """``data``, unless a field holds U+FFFD, which Django's parser puts for bytes that are not
    UTF-8 (a value of a form sent in another charset without saying so)."""
    for name, values in data.lists():
        if "\ufffd" in name or any("\ufffd" in value for value in values):
            raise ParseError(
                f"The form field {name!r} is not valid UTF-8 (or declare the form's "
                "charset); nothing was written."
            )
    return data


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


class BulkBody:
    """A bulk body as its parser leaves it: :meth:`records` reads and checks it, numbered as
    its refusals name them (``unit``: NDJSON lines, other formats' rows); :meth:`close` lets
    go of what it holds (a Parquet body's temporary file)."""

    def __init__(
        self,
        read: Callable[[], Iterator[ParsedLine]],
        *,
        unit: str = "row",
        spool: IO[bytes] | None = None,
    ) -> None:
        self._read, self.unit, self._spool = read, unit, spool

    def records(self) -> Iterator[ParsedLine]:
        return self._read()

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


class _BodyStream(io.RawIOBase):
    """The request body as a binary file (what pyarrow and the csv module read), refused
    with 413 as soon as it passes the bulk limit, whatever length it declared, and with 400
    when it ends before the length it declared (the client's connection was lost)."""

    def __init__(self, stream: Any, limit: int, declared: int | None) -> None:
        super().__init__()
        self.stream, self.limit, self.declared = stream, limit, declared
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.limit - self.received + 1)
        data = self.stream.read(want) if self.stream is not None and want > 0 else b""
        self.received += len(data)
        if self.received > self.limit:
            raise _too_large(self.limit)
        if not data and self.declared is not None and self.received < self.declared:
            raise InvalidInput({NON_FIELD: [
                "The body ends before the length it declared; nothing was written."
            ]})
        view[: len(data)] = data
        return len(data)


class BulkBodyParser(parsers.BaseParser):
    """A bulk body of one format, refused (413) before reading when it declares more than the
    bulk limit."""

    #: What the numbers of the body's records count.
    unit = "row"

    def parse(self, stream, media_type=None, parser_context=None) -> BulkBody:
        limit = settings.RECORDS_BULK_MAX_BODY_SIZE
        length = declared_length(parser_context)
        if length is not None and length > limit:
            raise _too_large(limit)
        return self.body(_BodyStream(stream, limit, length), media_type)

    def body(self, stream: _BodyStream, media_type: str | None) -> BulkBody:
        raise NotImplementedError


class NDJSONParser(BulkBodyParser):
    """One record per line, in the JSON form (see :class:`NDJSONLines`)."""

    media_type = "application/x-ndjson"
    unit = "line"

    def body(self, stream: _BodyStream, media_type: str | None) -> BulkBody:
        # The raw stream: NDJSONLines reads blocks and checks the limit itself.
        lines = NDJSONLines(stream.stream, stream.limit)
        return BulkBody(lambda: parse_ndjson(lines), unit=self.unit)


class CSVParser(BulkBodyParser):
    """RFC 4180 text in UTF-8, a header row of input field names (see
    :func:`records.readers.csv_records`), read a row at a time."""

    media_type = "text/csv"

    def body(self, stream: _BodyStream, media_type: str | None) -> BulkBody:
        charset = parse_header_parameters(media_type or "")[1].get("charset", "utf-8")
        if charset.lower().replace("_", "-") not in {"utf-8", "utf8", "us-ascii", "ascii"}:
            raise ParseError(
                f"A CSV body is read as UTF-8, not {charset[:40]}; send it as UTF-8."
            )
        buffered = io.BufferedReader(stream, buffer_size=NDJSONLines.BLOCK_BYTES)
        return BulkBody(lambda: csv_records(buffered))


class ArrowStreamParser(BulkBodyParser):
    """The Arrow IPC stream format, read batch by batch from the request stream."""

    media_type = "application/vnd.apache.arrow.stream"

    def body(self, stream: _BodyStream, media_type: str | None) -> BulkBody:
        return BulkBody(lambda: arrow_records(stream))


class ParquetParser(BulkBodyParser):
    """A Parquet file, copied to a temporary file (its footer comes last) and read a row group
    at a time."""

    media_type = "application/vnd.apache.parquet"

    def body(self, stream: _BodyStream, media_type: str | None) -> BulkBody:
        spool = tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR)
        try:
            shutil.copyfileobj(stream, spool, NDJSONLines.BLOCK_BYTES)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return BulkBody(lambda: parquet_records(spool), spool=spool)


BULK_PARSERS = (NDJSONParser, CSVParser, ArrowStreamParser, ParquetParser)


def bulk_body(request: Request) -> BulkBody | None:
    """The request's bulk body, if it is one; an empty body of a bulk media type (which DRF
    never hands to a parser) as a body without records."""
    if isinstance(request.data, BulkBody):
        return request.data
    media_type = parse_header_parameters(request.content_type or "")[0].lower()
    for parser in BULK_PARSERS:
        if media_type == parser.media_type:
            return BulkBody(lambda: iter(()), unit=parser.unit)
    return None
