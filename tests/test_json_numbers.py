"""Numbers that JSON cannot carry back out exactly (issue 10, fault 1).

Every JSON input path reads numbers through ``models_api.api.json_values.loads``: catalogue
bodies, record JSON bodies, multipart JSON text fields, NDJSON bulk lines, PATCH bodies and
query parameters holding JSON (``model_info``). A number that would not come back out as it
was sent is a 400 naming the field that holds it (and the line, in a bulk body), and nothing
is written:

- a number with a fraction or an exponent beyond the range of a 64-bit float (``1e400``,
  ``-1e400``; Python would read it as infinity), or so small that it would read as 0
  (``1e-400``);
- an integer of more than ``MAX_INTEGER_DIGITS`` (4,300) digits.

Everything within those bounds comes back exactly as it was sent, through ``GET`` and the
streams, on both databases (the round-trip tests at the end).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from models_api.api.json_values import MAX_INTEGER_DIGITS, check_json_value
from models_api.models import Dataset, MLModel, ModelRun, Site
from records.models import ModelRecord
from tests.conftest import record_body
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

NDJSON = "application/x-ndjson"
BOUNDARY = "nUmBeRs"
#: 4,301 digits: one past the limit (and past Python's own limit on reading integers).
TOO_LONG = "1" * (MAX_INTEGER_DIGITS + 1)
#: The audit's cases: an infinite float beside an integer beyond 64 bits, which sends the text
#: to the parser that keeps every digit.
INFINITE_WITH_BIG = '{"n": 1e400, "m": 11111111111111111111}'
NEGATIVE_INFINITE_WITH_BIG = '{"v": -1e400, "m": 11111111111111111111}'
#: Numbers that cannot be kept, as JSON text, each inside an object under "x".
BAD_NUMBERS = {
    "integer-too-long": f'{{"x": {TOO_LONG}}}',
    "negative-integer-too-long": f'{{"x": -{TOO_LONG}}}',
    "infinite-with-big-integer": INFINITE_WITH_BIG,
    "negative-infinite-with-big-integer": NEGATIVE_INFINITE_WITH_BIG,
    "infinite-alone": '{"x": 1e400}',
    "negative-infinite-alone": '{"x": [1, -1E400]}',
    "infinite-without-exponent": '{"x": ' + "9" * 400 + ".5}",
    "zero-by-underflow": '{"x": 1e-400}',
    "zero-by-underflow-with-big-integer": '{"x": 2.5e-350, "m": 11111111111111111111}',
}
#: What a 400's text must never show: Python's own error, a traceback, a non-finite float.
INTERNALS = (
    "set_int_max_str_digits", "sys.", "Traceback", "Exceeds the limit", "Infinity", " inf", "NaN"
)


@pytest.fixture
def client(api):
    """The writer's client; a server error comes back as a response to check."""
    api.raise_request_exception = False
    return api


@pytest.fixture
def records_url(demo) -> str:
    return f"/api/models/id/{demo.id}/records"


def substitute(body: dict, field: str, json_text: str) -> str:
    """``body`` as JSON text with ``field`` holding ``json_text`` verbatim."""
    return json.dumps({**body, field: "__X__"}).replace('"__X__"', json_text)


def post_text(client, url: str, text: str, content_type: str = "application/json"):
    return client.generic("POST", url, text.encode(), content_type=content_type)


def patch_text(client, url: str, text: str):
    return client.generic("PATCH", url, text.encode(), content_type="application/json")


def multipart(fields: dict[str, str]) -> bytes:
    body = b""
    for name, value in fields.items():
        body += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    return body + f"--{BOUNDARY}--\r\n".encode()


def post_form(client, url: str, fields: dict[str, str]):
    return client.generic(
        "POST", url, multipart(fields), content_type=f"multipart/form-data; boundary={BOUNDARY}"
    )


def form_fields(**overrides) -> dict[str, str]:
    fields = record_body(**overrides)
    for key in ("model_data", "record_info"):
        if key in fields and not isinstance(fields[key], str):
            fields[key] = json.dumps(fields[key])
    return fields


def assert_names(response, field: str) -> dict:
    """A 400 whose ``errors`` names ``field``, with a text that shows no internals."""
    body = assert_error(response, 400)
    assert field in body.get("errors", {}), body
    text = json.dumps(body)
    for internal in INTERNALS:
        assert internal not in text, (internal, body)
    return body


def assert_bulk_line_named(response, line: int, field: str) -> None:
    body = assert_error(response, 400)
    messages = body["errors"][str(line)]
    assert any(message.startswith(f"{field}: ") for message in messages), messages
    text = json.dumps(body)
    for internal in INTERNALS:
        assert internal not in text, (internal, body)


def catalogue_rows() -> dict:
    return {
        "models": sorted(MLModel.objects.values_list("id", "model_info")),
        "runs": sorted(ModelRun.objects.values_list("id", "model_run_info")),
        "datasets": sorted(Dataset.objects.values_list("id", "dataset_info")),
        "sites": sorted(Site.objects.values_list("id", "site_info")),
        "records": sorted(ModelRecord.objects.values_list("id", "model_data", "record_info")),
    }


@pytest.fixture
def unchanged(demo):
    before = catalogue_rows()

    def check() -> None:
        assert catalogue_rows() == before

    return check


# --- Every JSON input path answers 400 naming the field --------------------------------------


@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_catalogue_body_names_the_field(client, unchanged, text):
    response = post_text(client, "/api/sites", substitute({"site_name": "S"}, "site_info", text))
    assert_names(response, "site_info")
    response = post_text(
        client, "/api/models", substitute({"model_name": "M"}, "model_info", text)
    )
    assert_names(response, "model_info")
    unchanged()


@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_catalogue_patch_names_the_field(client, demo, unchanged, text):
    response = patch_text(client, f"/api/models/id/{demo.id}", substitute({}, "model_info", text))
    assert_names(response, "model_info")
    unchanged()


@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_run_and_dataset_bodies_name_the_field(client, demo, unchanged, text):
    base = f"/api/models/id/{demo.id}"
    assert_names(
        post_text(client, f"{base}/runs", substitute({}, "model_run_info", text)), "model_run_info"
    )
    assert_names(
        post_text(
            client, f"{base}/datasets", substitute({"dataset_name": "D"}, "dataset_info", text)
        ),
        "dataset_info",
    )
    unchanged()


@pytest.mark.parametrize("field", ["model_data", "record_info"])
@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_record_json_body_names_the_field(client, records_url, unchanged, text, field):
    response = post_text(client, records_url, substitute(record_body(), field, text))
    assert_names(response, field)
    unchanged()


@pytest.mark.parametrize("field", ["model_data", "record_info"])
@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_record_form_json_text_names_the_field(client, records_url, unchanged, text, field):
    response = post_form(client, records_url, form_fields(**{field: text}))
    assert_names(response, field)
    unchanged()


@pytest.mark.parametrize("field", ["model_data", "record_info"])
@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_bulk_line_names_the_line_and_the_field(client, records_url, unchanged, text, field):
    good = json.dumps(record_body(timestamp="2024-06-01T09:00:00Z"))
    bad = substitute(record_body(timestamp="2024-06-01T09:30:00Z"), field, text)
    response = post_text(client, records_url, f"{good}\n{good}\n{bad}\n", NDJSON)
    assert_bulk_line_named(response, 3, field)
    assert list(response.json()["errors"]) == ["3"]
    unchanged()


def test_bulk_negative_infinity_beside_a_big_integer_is_never_stored_as_null(
    client, records_url, unchanged
):
    """The audit's case: stored as ``null`` with a 200 before."""
    line = substitute(record_body(), "model_data", NEGATIVE_INFINITE_WITH_BIG)
    response = post_text(client, records_url, line + "\n", NDJSON)
    assert_bulk_line_named(response, 1, "model_data")
    assert response.json()["errors"]["1"][0].startswith("model_data: The number at v is too large")
    unchanged()


@pytest.mark.parametrize("field", ["model_data", "record_info"])
@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_record_patch_names_the_field(client, records_url, text, field):
    created = post_text(client, records_url, json.dumps(record_body()))
    assert created.status_code == 200, created.content
    url = f"/api/models/records/id/{created.json()['id']}"
    before = client.get(url).json()
    assert_names(patch_text(client, url, substitute({}, field, text)), field)
    assert client.get(url).json() == before


@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_query_parameter_holding_json_names_it(client, demo, text):
    response = client.get("/api/models", {"model_info": text})
    assert_names(response, "model_info")


def test_the_message_says_where_the_number_is(client, unchanged):
    text = '{"a": [1, {"b": 1e400}], "c": 11111111111111111111}'
    body = assert_names(
        post_text(client, "/api/sites", substitute({"site_name": "S"}, "site_info", text)),
        "site_info",
    )
    assert list(body["errors"]) == ["site_info"]
    assert body["errors"]["site_info"][0].startswith("The number at a[1].b is too large")
    assert body["detail"].startswith("site_info: The number at a[1].b")
    unchanged()


def test_an_integer_too_long_says_the_limit(client, records_url, unchanged):
    response = post_text(client, records_url, substitute(record_body(), "model_data", TOO_LONG))
    message = assert_names(response, "model_data")["errors"]["model_data"][0]
    assert f"{MAX_INTEGER_DIGITS + 1:,} digits" in message
    assert f"{MAX_INTEGER_DIGITS:,}" in message
    unchanged()


def test_a_whole_body_that_is_a_bad_number_is_a_400(client, unchanged):
    for text in ("1e400", TOO_LONG):
        body = assert_error(post_text(client, "/api/sites", text), 400)
        for internal in INTERNALS:
            assert internal not in json.dumps(body)
    unchanged()


def test_repeated_key_keeps_the_last_value_even_when_an_earlier_one_is_refused(client):
    """JSON's last-key-wins: the refused number is not what would be stored."""
    text = '{"site_name": "Twice", "site_info": {"n": 1e400, "n": 1, "m": 11111111111111111111}}'
    response = post_text(client, "/api/sites", text)
    assert response.status_code == 200, response.content
    assert response.json()["site_info"] == {"n": 1, "m": 11111111111111111111}


# --- What is accepted comes back exactly as it was sent --------------------------------------

#: JSON numbers at and within the limits, as text: integers of every size up to the limit
#: (positive and negative), and floats that are their own shortest text.
EXACT_NUMBERS = (
    "{"
    f'"longest": {"9" * MAX_INTEGER_DIGITS}, '
    f'"longest_negative": -{"7" * MAX_INTEGER_DIGITS}, '
    '"beyond_64_bits": 11111111111111111111, '
    '"u64_max": 18446744073709551615, '
    '"i64_min": -9223372036854775808, '
    '"small": [0, -1, 42], '
    '"floats": [1.5, -0.25, 0.1, 3.141592653589793, 1e-05, 2.5e-300, 1e+300, '
    "1.7976931348623157e+308, 5e-324]"
    "}"
)


def exact(text: str | bytes):
    """JSON text read without any loss: floats as Decimal, integers as int."""
    return json.loads(text, parse_float=Decimal)


def stream(client, url: str) -> list:
    response = client.get(url)
    assert response.status_code == 200
    content = b"".join(response.streaming_content)
    return [exact(line) for line in content.splitlines()]


def test_numbers_within_the_limits_round_trip_through_a_catalogue_body(client):
    created = post_text(
        client, "/api/sites", substitute({"site_name": "Exact"}, "site_info", EXACT_NUMBERS)
    )
    assert created.status_code == 200, created.content[:300]
    assert exact(created.content)["site_info"] == exact(EXACT_NUMBERS)
    read = client.get(f"/api/sites/id/{created.json()['id']}")
    assert exact(read.content)["site_info"] == exact(EXACT_NUMBERS)
    listed = client.get("/api/sites", {"site_name": "Exact"})
    assert exact(listed.content)[0]["site_info"] == exact(EXACT_NUMBERS)


def test_numbers_within_the_limits_round_trip_through_a_query_parameter(client, demo):
    created = post_text(
        client, "/api/models", substitute({"model_name": "Exact"}, "model_info", EXACT_NUMBERS)
    )
    assert created.status_code == 200, created.content[:300]
    found = client.get("/api/models", {"model_info": '{"beyond_64_bits": 11111111111111111111}'})
    assert [model["model_name"] for model in found.json()] == ["Exact"]
    assert exact(found.content)[0]["model_info"] == exact(EXACT_NUMBERS)


@pytest.mark.parametrize("how", ["json", "form", "bulk", "patch"])
def test_numbers_within_the_limits_round_trip_through_records(client, demo, records_url, how):
    timestamp = "2024-07-01T10:00:00Z"
    if how == "json":
        response = post_text(
            client, records_url, substitute(record_body(timestamp=timestamp), "model_data",
                                            EXACT_NUMBERS)
        )
    elif how == "form":
        response = post_form(
            client, records_url, form_fields(timestamp=timestamp, model_data=EXACT_NUMBERS)
        )
    elif how == "bulk":
        line = substitute(record_body(timestamp=timestamp), "model_data", EXACT_NUMBERS)
        response = post_text(client, records_url, line + "\n", NDJSON)
        assert response.json() == {"created": 1, "skipped_existing": 0}
    else:
        response = post_text(client, records_url, json.dumps(record_body(timestamp=timestamp)))
        assert response.status_code == 200
        url = f"/api/models/records/id/{response.json()['id']}"
        response = patch_text(client, url, substitute({}, "model_data", EXACT_NUMBERS))
    assert response.status_code == 200, response.content[:300]
    if how != "bulk":
        assert exact(response.content)["model_data"] == exact(EXACT_NUMBERS)
    record_id = ModelRecord.objects.get().id
    one = client.get(f"/api/models/records/id/{record_id}")
    assert exact(one.content)["model_data"] == exact(EXACT_NUMBERS)
    for url in (records_url, f"{records_url}/filter"):
        lines = stream(client, url)
        assert [line["model_data"] for line in lines] == [exact(EXACT_NUMBERS)]


# --- The admin's JSON fields follow the same rules -------------------------------------------


@pytest.mark.parametrize("text", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_admin_json_field_refuses_a_number_that_cannot_be_kept(admin_client, text):
    response = admin_client.post(
        reverse("admin:models_api_site_add"),
        {"site_name": "Curated", "site_info": text},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "site_info" in errors, errors
    assert not Site.objects.filter(site_name="Curated").exists()


def test_admin_json_field_keeps_every_digit(admin_client):
    response = admin_client.post(
        reverse("admin:models_api_site_add"),
        {"site_name": "Curated", "site_info": EXACT_NUMBERS},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    stored = Site.objects.get(site_name="Curated").site_info
    assert stored["longest"] == int("9" * MAX_INTEGER_DIGITS)
    assert stored["beyond_64_bits"] == 11111111111111111111


# --- Values built in Python (a service called directly) are checked the same way --------------


@pytest.mark.parametrize(
    "value, where",
    [
        pytest.param({"a": [1, float("inf")]}, "at a[1] is too large", id="infinity"),
        pytest.param({"a": -float("inf")}, "at a is too large", id="negative-infinity"),
        pytest.param({"a": float("nan")}, "at a is NaN", id="nan"),
        pytest.param({"b": 10**MAX_INTEGER_DIGITS}, "at b has more than 4,300 digits", id="big"),
    ],
)
def test_check_json_value_refuses_numbers_that_cannot_be_kept(value, where):
    with pytest.raises(ValidationError) as raised:
        check_json_value(value)
    assert where in raised.value.messages[0]


def test_check_json_value_accepts_numbers_within_the_limits():
    check_json_value({"ok": [1.5, True, None, 10**MAX_INTEGER_DIGITS - 1, -(10**4299), 5e-324]})


@pytest.mark.parametrize(
    "text",
    [
        b'{"a": 1234567890123456789}',  # 19 digits
        b'{"a": 123456789012345678}',  # 18: orjson reads it exactly
        b'{"a": 1e400}', b'{"a": 1E-400}', b'{"a": 2e+308}', b'{"a": 1e99}',
        b'{"a": -0.5e-12}', b'{"a": "1e400 in a string"}', b'[1, 2e0123]',
        b'{"a": 12345678901234567890.5}', b'{"a": 0.0000000000000000001}', b'{}',
    ],
)
def test_the_text_scan_finds_the_numbers_the_pattern_finds(text):
    """The bulk path's one ``bytes.translate`` scan decides which text the standard library
    reads (exactly) instead of orjson: the same texts as the pattern it replaced."""
    import re

    from models_api.api.json_values import _exact_parse_needed, _shapes

    pattern = re.compile(rb"\d{19,}|\d[eE][-+]?\d{3,}")
    assert _exact_parse_needed(_shapes(text)) is bool(pattern.search(text))


@pytest.mark.parametrize(
    "text, safe",
    [
        (b'{"a": [1, 2]}', True),
        (b'{"a": "\\u0000"}', False),  # a NUL: the full check
        (b'[' * 64 + b']' * 64, False),  # as deep as the limit
        (b'[' * 63 + b']' * 63, True),
    ],
)
def test_loads_checked_says_when_the_value_needs_its_full_check(text, safe):
    from models_api.api.json_values import loads_checked

    assert loads_checked(text, max_depth=64)[1] is safe
