"""The plain-form reader of single-record POSTs (``records.parsers.plain_form_fields``): a form
it reads gives exactly what Django's parser gives, and any form it is not sure of is left to
Django's parser."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http.multipartparser import MultiPartParser

from records import benchmark
from records.parsers import plain_form_fields

BOUNDARY = "form-boundary-1f"


def field(name: str | bytes, value: str | bytes, *, header: bytes | None = None) -> bytes:
    name = name if isinstance(name, bytes) else name.encode()
    value = value if isinstance(value, bytes) else value.encode()
    header = header or b'Content-Disposition: form-data; name="' + name + b'"'
    return b"--" + BOUNDARY.encode() + b"\r\n" + header + b"\r\n\r\n" + value + b"\r\n"


def close(tail: bytes = b"\r\n") -> bytes:
    return b"--" + BOUNDARY.encode() + b"--" + tail


def django_fields(body: bytes, boundary: str = BOUNDARY) -> list:
    meta = {
        "CONTENT_TYPE": f"multipart/form-data; boundary={boundary}",
        "CONTENT_LENGTH": str(len(body)),
    }
    handlers = [MemoryFileUploadHandler()]
    data, files = MultiPartParser(meta, io.BytesIO(body), handlers, "utf-8").parse()
    assert not files
    return list(data.lists())


READ = {
    "the bench's record": benchmark.multipart_form(benchmark.record_line(0, 1)).replace(
        b"bench-boundary-7d1f", BOUNDARY.encode()
    ),
    "values with line breaks and dashes": field("model_data", '{"a": "x\r\n--y"}')
    + field("record_info", "a-" + BOUNDARY + "--")
    + close(),
    "empty and repeated fields": field("site_name", "") + field("site_name", "B") + close(),
    "accents and emoji": field("experiment_name", "Essai é 🌱") + close(),
    "no line break after the closing delimiter": field("a", "1") + close(b""),
}

LEFT_TO_DJANGO = {
    "a preamble": b"preamble\r\n" + field("a", "1") + close(),
    "an epilogue": field("a", "1") + close(b"\r\nepilogue"),
    "a file": field("f", "x", header=b'Content-Disposition: form-data; name="f"; filename="a"')
    + close(),
    "a part's content type": field(
        "a", "1", header=b'Content-Disposition: form-data; name="a"\r\nContent-Type: text/plain'
    )
    + close(),
    "another spelling of the header": field(
        "a", "1", header=b'content-disposition: form-data; name="a"'
    )
    + close(),
    "a quoted name": field("a", "1", header=b'Content-Disposition: form-data; name="a\\"b"')
    + close(),
    "a name that is not ASCII": field("é", "1") + close(),
    "a value that is not UTF-8": field("a", b"\xff\xfe") + close(),
    "transport padding": field("a", "1").replace(
        BOUNDARY.encode() + b"\r\n", BOUNDARY.encode() + b"  \r\n", 1
    )
    + close(),
    "a delimiter followed by other text": field("a", "1\r\n--" + BOUNDARY + "x") + close(),
    "a delimiter inside a value": field("a", "a--" + BOUNDARY + "--") + close(),
    "no closing delimiter": field("a", "1"),
    "no part": close(),
    "an empty body": b"",
}


@pytest.mark.parametrize("body", READ.values(), ids=READ.keys())
def test_a_plain_form_reads_as_django_reads_it(body):
    fields = plain_form_fields(body, BOUNDARY.encode())
    assert fields is not None
    assert list(fields.lists()) == django_fields(body)


@pytest.mark.parametrize("body", LEFT_TO_DJANGO.values(), ids=LEFT_TO_DJANGO.keys())
def test_any_other_form_is_left_to_djangos_parser(body):
    assert plain_form_fields(body, BOUNDARY.encode()) is None


def test_more_fields_than_django_allows_are_left_to_django(settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 2
    body = field("a", "1") + field("b", "2") + field("c", "3") + close()
    assert plain_form_fields(body, BOUNDARY.encode()) is None
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    assert list(plain_form_fields(body, BOUNDARY.encode()).lists()) == django_fields(body)
