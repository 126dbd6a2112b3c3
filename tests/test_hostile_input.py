"""Hostile input to the record endpoints, written by hand: what a fuzzer rarely builds.

``POST /api/models/id/{id}/records`` (JSON, multipart and NDJSON bodies), the two NDJSON
streams and ``PATCH /api/models/records/id/{rid}`` get NUL characters, huge and deeply nested
bodies, bytes that are not UTF-8, the wrong content types, repeated keys, dates at and beyond
the calendar's ends, odd time zones, hostile file names and broken multipart framing.

Every case: never a 500, a clear 4xx with the contract's body (``{"detail": "..."}``) or a 200
where the input is legitimately fine, and nothing half-written: no record row, dataset or link
that the refused request would have made, and no stored file. (The catalogue endpoints get the
same treatment in ``test_conventions.py``; these do not repeat it.)

Known bugs are kept as tests marked ``xfail(strict=True)`` whose reason starts with ``BUG``.
"""

from __future__ import annotations

import datetime
import json
import re

import pytest
from django.conf import settings as django_settings

from models_api.models import Dataset, MLModel, Site
from records.models import ModelRecord
from tests.conftest import record_body
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

ON_SQLITE = django_settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")
BOUNDARY = "HoStIlE-bOuNdArY"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
NDJSON = "application/x-ndjson"
SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")
STRING_FIELDS = [
    "timestamp",
    "collection_date",
    "experiment_name",
    "season_name",
    "site_name",
    "dataset_name",
]


# --- Helpers ---------------------------------------------------------------------------------


@pytest.fixture
def client(api):
    """The token client with every right; a server error comes back as a response to check."""
    api.raise_request_exception = False
    return api


@pytest.fixture
def records_url(demo) -> str:
    return f"/api/models/id/{demo.id}/records"


def stream_lines(response) -> list[dict]:
    """The lines of a 200 NDJSON stream, read to the end."""
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"] == NDJSON
    content = b"".join(response.streaming_content)
    assert content == b"" or content.endswith(b"\n")
    return [json.loads(line) for line in content.splitlines()]


def stored_files(media_root) -> list[str]:
    if not media_root.exists():
        return []
    return sorted(
        path.relative_to(media_root).as_posix() for path in media_root.rglob("*") if path.is_file()
    )


def snapshot(media_root) -> dict:
    """Everything a record request may write: rows, datasets, links and stored files."""
    return {
        "records": sorted(
            ModelRecord.objects.values_list("id", "model_data", "record_info", "record_file")
        ),
        "datasets": sorted(Dataset.objects.values_list("id", flat=True)),
        "model_datasets": MLModel.datasets.through.objects.count(),
        "model_experiments": MLModel.experiments.through.objects.count(),
        "dataset_experiments": Dataset.experiments.through.objects.count(),
        "site_experiments": Site.experiments.through.objects.count(),
        "files": stored_files(media_root),
    }


@pytest.fixture
def unchanged(demo, media_root):
    """Call it after a refused request: nothing was written since the test began."""
    before = snapshot(media_root)

    def check() -> None:
        assert snapshot(media_root) == before

    return check


def multipart(fields, files=(), *, boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body, built byte by byte so that anything can be put in it.

    ``fields``: (name, value) pairs; ``files``: (name, file name, content) triples. Names,
    values and file names may be ``bytes`` (sent as they are) or ``str`` (sent as UTF-8).
    """

    def raw(value) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode()

    body = b""
    for name, value in fields:
        body += (
            b"--" + raw(boundary) + b"\r\n"
            b'Content-Disposition: form-data; name="'
            + raw(name)
            + b'"\r\n\r\n'
            + raw(value)
            + b"\r\n"
        )
    for name, file_name, content in files:
        body += (
            b"--" + raw(boundary) + b"\r\n"
            b'Content-Disposition: form-data; name="'
            + raw(name)
            + b'"; filename="'
            + raw(file_name)
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
            + raw(content)
            + b"\r\n"
        )
    return body + b"--" + raw(boundary) + b"--\r\n"


def form(**overrides) -> list[tuple[str, str]]:
    """The demo record as form fields (JSON values as JSON text); ``None`` leaves one out."""
    fields = record_body(**overrides)
    for key in ("model_data", "record_info"):
        if key in fields and not isinstance(fields[key], str):
            fields[key] = json.dumps(fields[key])
    return list(fields.items())


def replace_field(fields, name: str, value) -> list:
    return [(key, text) for key, text in fields if key != name] + [(name, value)]


def post_json(client, url: str, body) -> object:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", url, data, content_type="application/json")


def post_form(
    client, url: str, fields, files=(), *, content_type: str = MULTIPART, boundary: str = BOUNDARY
):
    return client.generic(
        "POST", url, multipart(fields, files, boundary=boundary), content_type=content_type
    )


def post_bulk(client, url: str, body) -> object:
    data = body if isinstance(body, bytes) else body.encode()
    return client.generic("POST", url, data, content_type=NDJSON)


def line(**overrides) -> str:
    return json.dumps(record_body(**overrides))


def nested(levels: int, leaf: str = "1") -> str:
    """JSON text of ``levels`` nested arrays."""
    return "[" * levels + leaf + "]" * levels


@pytest.fixture
def record(client, records_url, demo) -> dict:
    response = post_json(client, records_url, record_body(record_info={"k": 1}))
    assert response.status_code == 200, response.content
    return response.json()


# --- NUL characters --------------------------------------------------------------------------

NUL_VALUES = {
    "timestamp": "2024-06-01T10:00:00\x00Z",
    "collection_date": "2024-06-01\x00",
    "experiment_name": "Experiment A\x00",
    "season_name": "Season\x001A",
    "site_name": "\x00Site A1",
    "dataset_name": "Flight\x00 7",
}
NUL_JSON = {
    "model_data-value": ("model_data", ["ok", {"deep": "a\x00b"}]),
    "model_data-key": ("model_data", {"k\x00": 1}),
    "model_data-string": ("model_data", "\x00"),
    "record_info-value": ("record_info", {"camera": "rgb\x00"}),
    "record_info-key": ("record_info", {"\x00": "x"}),
}


def nul_field_params():
    for field in STRING_FIELDS:
        yield pytest.param(field, id=field)


@pytest.mark.parametrize("field", nul_field_params())
def test_nul_in_a_json_record_field_is_400(client, records_url, unchanged, field):
    response = post_json(client, records_url, record_body(**{field: NUL_VALUES[field]}))
    assert field in assert_error(response, 400)["errors"]
    unchanged()


@pytest.mark.parametrize("field", nul_field_params())
def test_nul_in_a_form_field_is_400(client, records_url, unchanged, field):
    response = post_form(
        client, records_url, form(**{field: NUL_VALUES[field]}), [("record_file", "a.png", b"png")]
    )
    assert field in assert_error(response, 400)["errors"]
    unchanged()


@pytest.mark.parametrize("field", nul_field_params())
def test_nul_in_a_bulk_line_field_is_400_naming_the_line(client, records_url, unchanged, field):
    body = line(timestamp="2024-06-01T09:00:00Z") + "\n" + line(**{field: NUL_VALUES[field]}) + "\n"
    body_json = assert_error(post_bulk(client, records_url, body), 400)
    assert list(body_json["errors"]) == ["2"]
    assert any(message.startswith(field) for message in body_json["errors"]["2"])
    unchanged()


@pytest.mark.parametrize("field, value", NUL_JSON.values(), ids=NUL_JSON.keys())
def test_nul_in_json_values_is_400_in_every_body(client, records_url, unchanged, field, value):
    response = post_json(client, records_url, record_body(**{field: value}))
    assert field in assert_error(response, 400)["errors"]
    response = post_form(
        client, records_url, form(**{field: value}), [("record_file", "a.png", b"png")]
    )
    assert field in assert_error(response, 400)["errors"]
    body_json = assert_error(post_bulk(client, records_url, line(**{field: value})), 400)
    assert any(message.startswith(field) for message in body_json["errors"]["1"])
    unchanged()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a": "x\x00y"}', id="raw-nul-in-a-string"),
        pytest.param('{"a": 1}\x00', id="raw-nul-after-the-value"),
        pytest.param('{"a": "\\u0000"}', id="escaped-nul"),
    ],
)
def test_nul_in_form_json_text_is_400(client, records_url, unchanged, text):
    response = post_form(client, records_url, form(model_data=text))
    assert "model_data" in assert_error(response, 400)["errors"]
    unchanged()


def test_nul_in_a_form_field_name_is_400(client, records_url, unchanged):
    response = post_form(
        client, records_url, form() + [("colour\x00", "red")], [("record_file", "a.png", b"png")]
    )
    assert_error(response, 400)
    unchanged()


def test_raw_nul_byte_in_a_bulk_line_is_400(client, records_url, unchanged):
    body = line().encode().replace(b'"weed"', b'"we\x00ed"') + b"\n"
    assert list(assert_error(post_bulk(client, records_url, body), 400)["errors"]) == ["1"]
    unchanged()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"model_data": {"k": "\x00"}}, id="model_data-value"),
        pytest.param({"model_data": {"\x00": 1}}, id="model_data-key"),
        pytest.param({"record_info": {"k": ["\x00"]}}, id="record_info-value"),
        pytest.param({"record_info": {"k\x00": 1}}, id="record_info-key"),
        pytest.param({"model_data": 1, "x\x00": 1}, id="unknown-field-with-nul"),
    ],
)
def test_nul_in_a_patch_is_400_and_changes_nothing(client, record, body):
    url = f"/api/models/records/id/{record['id']}"
    response = client.generic("PATCH", url, json.dumps(body), content_type="application/json")
    assert_error(response, 400)
    assert client.get(url).json() == record


@pytest.mark.parametrize(
    "path, query, parameter",
    [
        pytest.param(
            "records", "experiment_name=Experiment%20A%00", "experiment_name", id="experiment_name"
        ),
        pytest.param("records", "season_name=%00", "season_name", id="season_name"),
        pytest.param("records", "dataset_name=Flight%007", "dataset_name", id="dataset_name"),
        pytest.param(
            "records", "collection_date=2024-06-01%00", "collection_date", id="collection_date"
        ),
        pytest.param(
            "records/filter",
            "start_timestamp=2024-06-01T00:00:00%00Z",
            "start_timestamp",
            id="start_timestamp",
        ),
        pytest.param("records/filter", "end_timestamp=%00", "end_timestamp", id="end_timestamp"),
        pytest.param(
            "records/filter",
            "experiment_names=Experiment%20A%00",
            "experiment_names",
            id="experiment_names",
        ),
        pytest.param(
            "records/filter",
            "season_names=Season%201A&season_names=%00",
            "season_names",
            id="season_names-second",
        ),
        pytest.param("records/filter", "site_names=Site%00A1", "site_names", id="site_names"),
        pytest.param("records/filter", "dataset_names=%00", "dataset_names", id="dataset_names"),
        pytest.param("records/filter", "site%00names=Site%20A1", "site\x00names", id="in-the-name"),
    ],
)
def test_nul_in_a_stream_query_parameter_is_400_before_streaming(
    client, demo, path, query, parameter
):
    response = client.get(f"/api/models/id/{demo.id}/{path}?{query}")
    assert parameter in assert_error(response, 400)["errors"]


@pytest.mark.parametrize(
    "template, patch_status",
    [
        # PATCH is not a method of the record lists (405), whatever the id; it is of a record.
        ("/api/models/id/%00/records", 405),
        ("/api/models/id/%00/records/filter", 405),
        ("/api/models/records/id/%00", 404),
        ("/api/models/records/id/%00/download", 405),
        ("/api/models/records/id/{rid}%00", 404),
    ],
)
def test_nul_in_a_record_path_id_is_404(client, record, template, patch_status):
    assert_error(client.get(template.format(rid=record["id"])), 404)
    assert_error(
        client.generic(
            "PATCH",
            template.format(rid=record["id"]),
            b'{"model_data": 1}',
            content_type="application/json",
        ),
        patch_status,
    )


# --- Size ------------------------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def test_ten_megabyte_json_record_is_413(client, records_url, unchanged):
    response = post_json(client, records_url, record_body(model_data={"pad": "p" * TEN_MB}))
    assert_error(response, 413)
    unchanged()


def test_ten_megabyte_patch_is_413_and_changes_nothing(client, record):
    url = f"/api/models/records/id/{record['id']}"
    body = json.dumps({"model_data": {"pad": "p" * TEN_MB}})
    assert_error(client.generic("PATCH", url, body, content_type="application/json"), 413)
    assert client.get(url).json() == record


def test_ten_megabyte_form_field_is_413_and_stores_no_file(client, records_url, unchanged):
    fields = form(record_info={"pad": "p" * TEN_MB})
    response = post_form(client, records_url, fields, [("record_file", "a.png", b"png")])
    assert_error(response, 413)
    unchanged()


def test_ten_megabyte_bulk_line_is_within_the_bulk_limit(client, records_url, demo):
    """The bulk limit is 64 MB: one 10 MB record in an NDJSON body is legitimately fine."""
    response = post_bulk(client, records_url, line(model_data={"pad": "p" * TEN_MB}) + "\n")
    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"created": 1, "skipped_existing": 0}
    assert len(ModelRecord.objects.get().model_data["pad"]) == TEN_MB


# --- Deep nesting ----------------------------------------------------------------------------

DEEP = 10_000


@pytest.mark.parametrize("field", ["model_data", "record_info"])
def test_json_nested_ten_thousand_levels_is_400(client, records_url, unchanged, field):
    value = nested(DEEP) if field == "model_data" else '{"k": ' + nested(DEEP) + "}"
    body = json.dumps(record_body(**{field: "__X__"})).replace('"__X__"', value)
    assert_error(post_json(client, records_url, body.encode()), 400)
    unchanged()


@pytest.mark.parametrize("field", ["model_data", "record_info"])
def test_form_json_text_nested_ten_thousand_levels_is_400(client, records_url, unchanged, field):
    value = nested(DEEP) if field == "model_data" else '{"k": ' + nested(DEEP) + "}"
    response = post_form(
        client, records_url, form(**{field: value}), [("record_file", "a.png", b"png")]
    )
    assert field in assert_error(response, 400)["errors"]
    unchanged()


@pytest.mark.parametrize("field", ["model_data", "record_info"])
def test_bulk_line_nested_ten_thousand_levels_is_400_naming_it(
    client, records_url, unchanged, field
):
    value = nested(DEEP) if field == "model_data" else '{"k": ' + nested(DEEP) + "}"
    deep_line = line(**{field: "__X__"}).replace('"__X__"', value)
    body = "\n".join(
        [line(timestamp="2024-06-01T09:00:00Z"), deep_line, line(timestamp="2024-06-01T11:00:00Z")]
    )
    assert list(assert_error(post_bulk(client, records_url, body), 400)["errors"]) == ["2"]
    unchanged()


def test_deep_nesting_with_a_long_number_is_400(client, records_url, unchanged):
    """A number of 19+ digits sends the text to the standard library's parser (exact big
    integers), which has its own recursion limit: still a 400."""
    value = nested(DEEP, leaf="12345678901234567890123")
    body = json.dumps(record_body(model_data="__X__")).replace('"__X__"', value)
    assert_error(post_json(client, records_url, body.encode()), 400)
    assert_error(post_bulk(client, records_url, body), 400)
    assert (
        "model_data"
        in assert_error(post_form(client, records_url, form(model_data=value)), 400)["errors"]
    )
    unchanged()


@pytest.mark.parametrize("field", ["model_data", "record_info"])
def test_patch_nested_ten_thousand_levels_is_400(client, record, field):
    url = f"/api/models/records/id/{record['id']}"
    value = nested(DEEP) if field == "model_data" else '{"k": ' + nested(DEEP) + "}"
    assert_error(
        client.generic("PATCH", url, f'{{"{field}": {value}}}', content_type="application/json"),
        400,
    )
    assert client.get(url).json() == record


# --- Bytes that are not UTF-8 ----------------------------------------------------------------

LATIN_1_RECORD = json.dumps(record_body(dataset_name="Café"), ensure_ascii=False).encode("latin-1")


def test_json_record_that_is_not_utf_8_is_400(client, records_url, unchanged):
    assert_error(post_json(client, records_url, LATIN_1_RECORD), 400)
    assert_error(post_json(client, records_url, json.dumps(record_body()).encode("utf-16")), 400)
    unchanged()


def test_patch_that_is_not_utf_8_is_400(client, record):
    url = f"/api/models/records/id/{record['id']}"
    body = '{"model_data": "Café"}'.encode("latin-1")
    assert_error(client.generic("PATCH", url, body, content_type="application/json"), 400)
    assert client.get(url).json() == record


def test_bulk_line_that_is_not_utf_8_is_400_naming_it(client, records_url, unchanged):
    body = line(timestamp="2024-06-01T09:00:00Z").encode() + b"\n" + LATIN_1_RECORD + b"\n"
    assert list(assert_error(post_bulk(client, records_url, body), 400)["errors"]) == ["2"]
    unchanged()


def test_form_field_name_that_is_not_utf_8_is_refused(client, records_url, unchanged):
    response = post_form(client, records_url, form() + [(b"colour\xff", "red")])
    assert_error(response, 400)
    unchanged()


@pytest.mark.parametrize(
    "field, value",
    [
        pytest.param("model_data", b'{"label": "caf\xe9"}', id="model_data"),
        pytest.param("record_info", b'{"camera": "\xff"}', id="record_info"),
        pytest.param("dataset_name", b"Caf\xe9", id="dataset_name"),
    ],
)
def test_form_field_value_that_is_not_utf_8_is_400(client, records_url, unchanged, field, value):
    assert_error(post_form(client, records_url, replace_field(form(), field, value)), 400)
    unchanged()


def test_form_declaring_its_charset_is_read_in_it(client, records_url):
    """A form that names its charset (latin-1) is legitimately fine and read in it."""
    fields = replace_field(form(), "dataset_name", b"Caf\xe9")
    response = post_form(
        client,
        records_url,
        fields,
        content_type=f"multipart/form-data; charset=latin-1; boundary={BOUNDARY}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["dataset_name"] == "Café"


@pytest.mark.parametrize(
    "fields, files",
    [
        pytest.param(
            form(), [("record_file", b"caf\xe9.png", b"png bytes")], id="latin-1-file-name"
        ),
        pytest.param(form() + [(b"record_info\xff", '{"k": 1}')], [], id="latin-1-field-name"),
    ],
)
def test_form_part_with_headers_that_are_not_utf_8_is_never_dropped(
    client, records_url, media_root, fields, files
):
    response = post_form(client, records_url, fields, files)
    if response.status_code == 200:
        body = response.json()
        if files:
            assert body["record_file"] is not None, "the record was written without its file"
            assert stored_files(media_root) == [body["record_file"]]
        else:
            assert body["record_info"] == {"k": 1}, "the record was written without record_info"
    else:
        assert_error(response, 400)
        assert not ModelRecord.objects.exists() and not stored_files(media_root)


SURROGATE_DATA = '{"n": 12345678901234567890123, "s": "\\ud800"}'


def test_lone_surrogate_with_a_long_number_in_a_json_record_is_400(client, records_url, unchanged):
    """A lone surrogate is not valid Unicode: the body is refused as JSON, as orjson refuses
    it when no long number sends the text to the standard library's parser."""
    body = json.dumps(record_body(model_data="__X__")).replace('"__X__"', SURROGATE_DATA)
    assert "surrogate" in assert_error(post_json(client, records_url, body.encode()), 400)["detail"]
    unchanged()


def test_lone_surrogate_with_a_long_number_in_a_bulk_line_is_400(client, records_url, unchanged):
    body = line(model_data="__X__").replace('"__X__"', SURROGATE_DATA)
    assert list(assert_error(post_bulk(client, records_url, body), 400)["errors"]) == ["1"]
    unchanged()


def test_lone_surrogate_with_a_long_number_in_form_json_text_is_400(client, records_url, unchanged):
    response = post_form(
        client, records_url, form(record_info=SURROGATE_DATA), [("record_file", "a.png", b"png")]
    )
    assert "record_info" in assert_error(response, 400)["errors"]
    unchanged()


def test_lone_surrogate_with_a_long_number_in_a_patch_is_400(client, record):
    url = f"/api/models/records/id/{record['id']}"
    response = client.generic(
        "PATCH", url, f'{{"model_data": {SURROGATE_DATA}}}', content_type="application/json"
    )
    assert_error(response, 400)
    assert client.get(url).json() == record


def test_lone_surrogate_with_a_long_number_in_catalogue_info_is_400(client):
    body = f'{{"site_name": "Surrogate", "site_info": {SURROGATE_DATA}}}'
    assert "surrogate" in assert_error(
        client.generic("POST", "/api/sites", body, content_type="application/json"), 400
    )["detail"]
    assert not Site.objects.filter(site_name="Surrogate").exists()


def test_lone_surrogate_alone_is_400(client, records_url, unchanged):
    """Without a long number orjson reads the text, and refuses the lone surrogate."""
    body = json.dumps(record_body(model_data="__X__")).replace('"__X__"', '{"s": "\\ud800"}')
    assert_error(post_json(client, records_url, body.encode()), 400)
    unchanged()


# --- Content types ---------------------------------------------------------------------------

WRONG_TYPES = [
    "text/plain",
    "application/xml",
    "text/xml",
    "application/x-www-form-urlencoded",
    "application/json-patch+json",
    "application/octet-stream",
    "",
]


@pytest.mark.parametrize("content_type", WRONG_TYPES)
def test_record_post_of_another_content_type_is_415(client, records_url, unchanged, content_type):
    body = json.dumps(record_body()).encode()
    body_json = assert_error(
        client.generic("POST", records_url, body, content_type=content_type), 415
    )
    assert "media type" in body_json["detail"]
    unchanged()


@pytest.mark.parametrize("content_type", [*WRONG_TYPES, NDJSON, MULTIPART])
def test_record_patch_of_another_content_type_is_415(client, record, content_type):
    url = f"/api/models/records/id/{record['id']}"
    body_json = assert_error(
        client.generic("PATCH", url, b'{"model_data": 2}', content_type=content_type), 415
    )
    assert "media type" in body_json["detail"]
    assert client.get(url).json() == record


def test_ndjson_body_sent_as_json_is_400(client, records_url, unchanged):
    body = line(timestamp="2024-06-01T09:00:00Z") + "\n" + line(timestamp="2024-06-01T10:00:00Z")
    assert_error(client.generic("POST", records_url, body, content_type="application/json"), 400)
    unchanged()


def test_json_body_sent_as_multipart_is_400(client, records_url, unchanged):
    response = client.generic(
        "POST", records_url, json.dumps(record_body()), content_type=MULTIPART
    )
    assert_error(response, 400)
    unchanged()


# --- Repeated keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, parameter",
    [
        pytest.param(
            "experiment_name=Experiment%20A&experiment_name=Experiment%20B",
            "experiment_name",
            id="experiment_name",
        ),
        pytest.param(
            "season_name=Season%201A&season_name=Season%201A",
            "season_name",
            id="season_name-same-value",
        ),
        pytest.param("dataset_name=a&dataset_name=b", "dataset_name", id="dataset_name"),
        pytest.param(
            "collection_date=2024-06-01&collection_date=2024-06-02",
            "collection_date",
            id="collection_date",
        ),
    ],
)
def test_repeated_single_valued_stream_filter_is_400(client, demo, query, parameter):
    response = client.get(f"/api/models/id/{demo.id}/records?{query}")
    assert parameter in assert_error(response, 400)["errors"]


def test_repeated_window_bound_is_400(client, demo):
    query = "end_timestamp=2024-06-01T00:00:00Z&end_timestamp=2024-06-02T00:00:00Z"
    response = client.get(f"/api/models/id/{demo.id}/records/filter?{query}")
    assert "end_timestamp" in assert_error(response, 400)["errors"]


def test_repeated_list_filters_are_fine(client, demo, record):
    query = (
        "site_names=Site%20A1&site_names=Site%20A1&site_names=Site%20B1"
        "&experiment_names=Experiment%20A"
    )
    assert [
        line["id"]
        for line in stream_lines(client.get(f"/api/models/id/{demo.id}/records/filter?{query}"))
    ] == [record["id"]]


def test_hundreds_of_repeated_list_values_are_fine_and_thousands_are_400(client, demo):
    url = f"/api/models/id/{demo.id}/records/filter"
    many = "&".join(f"dataset_names=Nothing%20{n}" for n in range(900))
    assert stream_lines(client.get(f"{url}?{many}")) == []
    too_many = "&".join(f"dataset_names=Nothing%20{n}" for n in range(5000))
    assert_error(client.get(f"{url}?{too_many}"), 400)


@pytest.mark.parametrize(
    "field, second",
    [
        pytest.param("timestamp", "2024-06-01T11:00:00Z", id="timestamp"),
        pytest.param("model_data", "[]", id="model_data"),
        pytest.param("experiment_name", "Experiment A", id="experiment_name-same-value"),
        pytest.param("season_name", "Season 2A", id="season_name"),
        pytest.param("dataset_name", "Other", id="dataset_name"),
        pytest.param("collection_date", "2024-06-02", id="collection_date"),
        pytest.param("record_info", "{}", id="record_info"),
    ],
)
def test_repeated_form_field_is_400_and_stores_no_file(
    client, records_url, unchanged, field, second
):
    fields = form(dataset_name="Flight 7", collection_date="2024-06-01", record_info={"k": 1})
    response = post_form(
        client, records_url, [*fields, (field, second)], [("record_file", "a.png", b"png")]
    )
    assert field in assert_error(response, 400)["errors"]
    unchanged()


def test_repeated_keys_in_a_json_record_never_give_a_500(client, records_url):
    """JSON leaves repeated names undefined; the service keeps the last, and says what it kept."""
    body = (
        b'{"timestamp": "2024-06-01T10:00:00Z", "model_data": 1, "experiment_name": "Experiment A",'
        b' "season_name": "Season 1A", "site_name": "Site Z9", "site_name": "Site A1"}'
    )
    response = post_json(client, records_url, body)
    if response.status_code == 200:
        assert response.json()["site_name"] == "Site A1"
        assert ModelRecord.objects.get().site.site_name == "Site A1"
    else:
        assert_error(response, 400)
        assert not ModelRecord.objects.exists()


# --- Dates at and beyond the calendar's ends -------------------------------------------------

OUT_OF_RANGE = [
    pytest.param("0000-01-01T00:00:00Z", id="year-0"),
    pytest.param("10000-01-01T00:00:00Z", id="year-10000"),
    pytest.param("0001-01-01T00:00:00+01:00", id="before-year-1-in-utc"),
    pytest.param("9999-12-31T23:59:59-01:00", id="after-year-9999-in-utc"),
    pytest.param("2024-00-01T00:00:00Z", id="month-0"),
    pytest.param("2023-02-29T00:00:00Z", id="not-a-leap-year"),
    pytest.param("2024-06-01T24:00:01Z", id="hour-24"),
    pytest.param("2024-06-01T10:00:00+24:00", id="zone-24h"),
]


@pytest.mark.parametrize("timestamp", OUT_OF_RANGE)
def test_timestamp_out_of_range_is_400_in_forms_and_bulk_lines(
    client, records_url, unchanged, timestamp
):
    response = post_form(
        client, records_url, form(timestamp=timestamp), [("record_file", "a.png", b"png")]
    )
    assert "timestamp" in assert_error(response, 400)["errors"]
    body_json = assert_error(post_bulk(client, records_url, line(timestamp=timestamp)), 400)
    assert any(message.startswith("timestamp") for message in body_json["errors"]["1"])
    unchanged()


@pytest.mark.parametrize(
    "date", ["0000-01-01", "10000-01-01", "2024-02-30", "2023-02-29", "+2024-06-01", "-0001-01-01"]
)
def test_collection_date_out_of_range_is_400_everywhere(client, records_url, demo, unchanged, date):
    assert (
        "collection_date"
        in assert_error(post_json(client, records_url, record_body(collection_date=date)), 400)[
            "errors"
        ]
    )
    assert (
        "collection_date"
        in assert_error(post_form(client, records_url, form(collection_date=date)), 400)["errors"]
    )
    assert_error(post_bulk(client, records_url, line(collection_date=date)), 400)
    response = client.get(
        f"/api/models/id/{demo.id}/records?collection_date={date.replace('+', '%2B')}"
    )
    assert "collection_date" in assert_error(response, 400)["errors"]
    unchanged()




@pytest.mark.parametrize(
    "query, parameter",
    [
        pytest.param("start_timestamp=0000-01-01T00:00:00Z", "start_timestamp", id="year-0"),
        pytest.param("end_timestamp=10000-01-01T00:00:00Z", "end_timestamp", id="year-10000"),
        pytest.param(
            "start_timestamp=0001-01-01T00:00:00%2B01:00",
            "start_timestamp",
            id="before-year-1-in-utc",
        ),
        pytest.param(
            "end_timestamp=9999-12-31T23:59:59-01:00",
            "end_timestamp",
            id="after-year-9999-in-utc",
        ),
    ],
)
def test_window_bound_beyond_the_calendar_is_400_or_a_whole_stream(
    client, demo, record, query, parameter
):
    """Refused like the same text in a record (400), or read as the instant it names: either
    way decided before the first byte, never a broken stream."""
    response = client.get(f"/api/models/id/{demo.id}/records/filter?{query}")
    if response.status_code == 400:
        assert parameter in assert_error(response, 400)["errors"]
        return
    try:
        got = stream_lines(response)
    except Exception as error:  # the stream broke after its 200
        pytest.fail(f"The stream broke after its first byte: {error!r}")
    assert [line["id"] for line in got] == [record["id"]]


@pytest.mark.parametrize(
    "timestamp, shown",
    [
        pytest.param("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", id="first-instant"),
        pytest.param(
            "0001-01-01T01:00:00+01:00", "0001-01-01T00:00:00Z", id="first-instant-in-another-zone"
        ),
        pytest.param(
            "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z", id="last-instant"
        ),
        pytest.param(
            "9999-12-31T22:59:59-01:00", "9999-12-31T23:59:59Z", id="last-hour-in-another-zone"
        ),
    ],
)
def test_the_calendars_ends_are_legitimately_fine_and_stream_back(
    client, records_url, timestamp, shown
):
    created = post_json(client, records_url, record_body(timestamp=timestamp))
    assert created.status_code == 200, created.content
    assert created.json()["timestamp"] == shown
    assert created.json()["collection_date"] == shown[:10]
    assert client.get(f"/api/models/records/id/{created.json()['id']}").json() == created.json()
    assert stream_lines(client.get(records_url)) == [created.json()]
    window = f"start_timestamp={shown}&end_timestamp={shown}"
    assert stream_lines(client.get(f"{records_url}/filter?{window}")) == [created.json()]


# --- Odd time zones --------------------------------------------------------------------------

ZONES = [
    pytest.param("2024-06-01T10:00:00+14:00", id="plus-14"),
    pytest.param("2024-06-01T10:00:00-12:00", id="minus-12"),
    pytest.param("2024-06-01T10:00:00+05:45", id="plus-05-45"),
    pytest.param("2024-06-01T10:00:00Z", id="upper-z"),
    pytest.param("2024-06-01T10:00:00z", id="lower-z"),
    pytest.param("2024-06-01T10:00:00", id="no-zone"),
    pytest.param("2024-06-01T10:00:00.5+05:45", id="fraction-and-zone"),
    pytest.param("2024-06-01T10:00:00-00:00", id="minus-zero"),
]


def _expected_utc(text: str) -> str | None:
    """The instant in the contract's form, or None for text that is not ISO 8601."""
    if text.endswith("z"):
        return None  # ISO 8601 writes the UTC designator in capitals; refusing it is consistent
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    utc = parsed.astimezone(datetime.UTC)
    return (
        utc.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{utc.microsecond:06d}" if utc.microsecond else "")
        + "Z"
    )


@pytest.mark.parametrize("timestamp", ZONES)
def test_a_zone_is_read_the_same_way_in_every_body_and_in_the_window(
    client, records_url, timestamp
):
    """JSON, form, bulk line and window bound agree: the same UTC instant, or all a 400."""
    expected = _expected_utc(timestamp)
    as_json = post_json(client, records_url, record_body(timestamp=timestamp))
    as_form = post_form(client, records_url, form(timestamp=timestamp, site_name="Site A2"))
    as_line = post_bulk(client, records_url, line(timestamp=timestamp, site_name="Site A3"))
    bound = timestamp.replace("+", "%2B")
    window = client.get(f"{records_url}/filter?start_timestamp={bound}&end_timestamp={bound}")
    if expected is None:
        for response in (as_json, as_form):
            assert "timestamp" in assert_error(response, 400)["errors"]
        assert_error(as_line, 400)
        assert "start_timestamp" in assert_error(window, 400)["errors"]
        assert not ModelRecord.objects.exists()
        return
    assert as_json.status_code == as_form.status_code == as_line.status_code == 200, (
        as_json.content,
        as_form.content,
        as_line.content,
    )
    assert as_json.json()["timestamp"] == as_form.json()["timestamp"] == expected
    assert as_json.json()["collection_date"] == expected[:10]
    assert [line["timestamp"] for line in stream_lines(window)] == [expected] * 3


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("2024-06-01T10:00:00xZ", id="letter-before-z"),
        pytest.param("2024-06-01T10:00:00 +05:00", id="space-before-offset"),
        pytest.param("2024-06-01T10:00:00\tZ", id="tab-before-z"),
    ],
)
def test_junk_between_time_and_zone_is_400_everywhere(client, records_url, unchanged, timestamp):
    refused = [
        post_json(client, records_url, record_body(timestamp=timestamp)),
        post_form(client, records_url, form(timestamp=timestamp)),
        post_bulk(client, records_url, line(timestamp=timestamp)),
        client.get(f"{records_url}/filter", {"start_timestamp": timestamp}),
    ]
    assert [response.status_code for response in refused] == [400] * 4
    for response in refused:
        assert_error(response, 400)
    unchanged()


def test_an_unencoded_plus_in_a_window_bound_is_400(client, demo):
    """``+`` in a query string is a space: the bound is not a timestamp any more."""
    response = client.get(
        f"/api/models/id/{demo.id}/records/filter?start_timestamp=2024-06-01T10:00:00+02:00"
    )
    assert "start_timestamp" in assert_error(response, 400)["errors"]


# --- Hostile file names ----------------------------------------------------------------------

FILE_NAMES = [
    pytest.param(b"../../etc/passwd", id="parent-dirs"),
    pytest.param(b"/etc/passwd", id="absolute"),
    pytest.param(b"..\\..\\windows\\system.ini", id="backslashes"),
    pytest.param(b"/", id="just-a-slash"),
    pytest.param(b"\\", id="just-a-backslash"),
    pytest.param(b"..", id="dot-dot"),
    pytest.param(b".", id="dot"),
    pytest.param(b"uploads/", id="a-directory"),
    pytest.param(b"....//....//x", id="dots-and-slashes"),
    pytest.param(b"a\x01b\x08c\x1b[31md\x7f.png", id="control-characters"),
    pytest.param(b"a\x00b.png", id="nul"),
    pytest.param(b"a\tb\x0bc\x0c.png", id="whitespace-controls"),
    pytest.param("\u202egnp.exe".encode(), id="right-to-left-override"),
    pytest.param("résumé café.jpg".encode(), id="non-ascii"),
    pytest.param("扫描.tiff".encode(), id="no-ascii-at-all"),
    pytest.param(b"x" * 850 + b".png", id="850-bytes"),
    pytest.param(b"leaf." + b"e" * 300, id="long-extension"),
    pytest.param(b"CON", id="windows-device"),
    pytest.param(b" .png", id="space-dot"),
    pytest.param(b"%2e%2e%2fetc%2fpasswd", id="percent-encoded"),
]


@pytest.mark.parametrize("file_name", FILE_NAMES)
def test_hostile_file_name_is_stored_under_a_safe_key(
    client, records_url, demo, media_root, file_name
):
    content = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    response = post_form(client, records_url, form(), [("record_file", file_name, content)])
    assert response.status_code == 200, response.content
    body = response.json()
    prefix = f"model_records/{demo.id}/{body['id']}/"
    key = body["record_file"]
    assert key.startswith(prefix), key
    assert SAFE_NAME.fullmatch(key[len(prefix) :]), key
    assert ".." not in key.split("/")
    assert stored_files(media_root) == [key]
    assert (media_root / key).read_bytes() == content
    assert client.get(f"/api/models/records/id/{body['id']}").json()["record_file"] == key


def test_thousand_byte_file_name_is_refused_or_stored_safely(client, records_url, demo, media_root):
    """Django refuses part headers over 1,024 bytes (400); a server that takes them must still
    cut the name to a safe one."""
    response = post_form(
        client, records_url, form(), [("record_file", b"x" * 1000 + b".png", b"png")]
    )
    if response.status_code == 200:
        key = response.json()["record_file"]
        assert SAFE_NAME.fullmatch(key.rsplit("/", 1)[-1]), key
        assert stored_files(media_root) == [key]
    else:
        assert_error(response, 400)
        assert not ModelRecord.objects.exists() and not stored_files(media_root)


def test_file_name_that_injects_a_parameter_is_refused(client, records_url, unchanged):
    response = post_form(
        client, records_url, form(), [("record_file", b'a.png"; name="other', b"png")]
    )
    assert_error(response, 400)
    unchanged()


def test_empty_file_part_with_an_empty_name_is_no_file(client, records_url, media_root):
    """What a browser sends for a file input left empty: a record without a file."""
    response = post_form(client, records_url, form(), [("record_file", b"", b"")])
    assert response.status_code == 200, response.content
    assert response.json()["record_file"] is None
    assert not stored_files(media_root)


def test_file_content_with_an_empty_name_is_400(client, records_url, unchanged):
    """Django reads a part with filename="" as a text field, so its bytes cannot be kept as
    they were sent: the client is told to name the file instead."""
    response = post_form(client, records_url, form(), [("record_file", b"", b"png bytes")])
    body = assert_error(response, 400)
    assert "record_file" in body["errors"]
    unchanged()


def test_empty_file_is_400_and_writes_nothing(client, records_url, unchanged):
    response = post_form(
        client, records_url, form(dataset_name="New data"), [("record_file", "empty.png", b"")]
    )
    assert "record_file" in assert_error(response, 400)["errors"]
    unchanged()


def test_file_over_the_configured_limit_is_413_and_writes_nothing(
    client, records_url, unchanged, settings, media_root
):
    settings.RECORD_FILE_MAX_SIZE = 64
    # The file comes first, so that every byte of it has been received when the limit is met.
    body = multipart([], [("record_file", "big.png", b"x" * 65)])[: -len(f"--{BOUNDARY}--\r\n")]
    body += multipart(form(dataset_name="New data"))
    response = client.generic("POST", records_url, body, content_type=MULTIPART)
    assert_error(response, 413)
    unchanged()
    # exactly at the limit is fine
    response = post_form(client, records_url, form(), [("record_file", "ok.png", b"x" * 64)])
    assert response.status_code == 200, response.content
    assert stored_files(media_root) == [response.json()["record_file"]]


# --- Multipart framing -----------------------------------------------------------------------


def test_multipart_without_a_boundary_is_400(client, records_url, unchanged):
    response = post_form(
        client,
        records_url,
        form(),
        [("record_file", "a.png", b"png")],
        content_type="multipart/form-data",
    )
    detail = assert_error(response, 400)["detail"]
    assert "boundary" in detail and "None" not in detail, detail  # no parser internals
    unchanged()


@pytest.mark.parametrize(
    "content_type, status",
    [
        pytest.param("multipart/form-data; boundary=", 400, id="empty-boundary"),
        pytest.param("multipart/form-data; boundary=other", 400, id="another-boundary"),
        pytest.param(
            'multipart/form-data; boundary="unterminated', 400, id="unterminated-quote"
        ),
        # Longer than any media type DRF's negotiation reads: not a form it can parse.
        pytest.param(
            "multipart/form-data; boundary=" + "b" * 5000, 415, id="five-thousand-byte-boundary"
        ),
        pytest.param("multipart/mixed; boundary=" + BOUNDARY, 415, id="multipart-mixed"),
    ],
)
def test_multipart_with_a_bad_boundary_is_refused(
    client, records_url, unchanged, content_type, status
):
    response = post_form(
        client, records_url, form(), [("record_file", "a.png", b"png")], content_type=content_type
    )
    assert_error(response, status)
    unchanged()




@pytest.mark.parametrize(
    "file_first, cut",
    [
        pytest.param(False, 1, id="closing-boundary"),
        pytest.param(False, 30, id="inside-the-file"),
        pytest.param(False, 200, id="inside-the-file-part-headers"),
        pytest.param(True, 30, id="inside-the-last-field-after-the-file"),
    ],
)
def test_truncated_multipart_writes_nothing_it_did_not_receive(
    client, records_url, media_root, file_first, cut
):
    file_part = multipart([], [("record_file", "a.png", b"f" * 150)])
    fields = multipart(form())
    closing = f"--{BOUNDARY}--\r\n".encode()
    body = (
        (file_part[: -len(closing)] + fields)
        if file_first
        else (fields[: -len(closing)] + file_part)
    )
    response = client.generic("POST", records_url, body[:-cut], content_type=MULTIPART)
    if response.status_code == 200:  # every part arrived whole
        key = response.json()["record_file"]
        assert key is not None, "the record was written without the file that was sent"
        assert (media_root / key).read_bytes() == b"f" * 150
        assert stored_files(media_root) == [key]
    else:
        assert_error(response, 400)
        assert not ModelRecord.objects.exists() and not stored_files(media_root)


def test_thousands_of_form_fields_are_400(client, records_url, unchanged):
    fields = form() + [(f"field{n}", "x") for n in range(5000)]
    assert_error(post_form(client, records_url, fields, [("record_file", "a.png", b"png")]), 400)
    unchanged()


def test_hundreds_of_files_are_400_and_leave_no_file(client, records_url, unchanged):
    files = [("record_file", f"{n}.png", b"png") for n in range(300)]
    assert_error(post_form(client, records_url, form(), files), 400)
    unchanged()


def test_hundreds_of_unknown_form_fields_are_400_naming_them(client, records_url, unchanged):
    fields = form() + [(f"field{n}", "x") for n in range(500)]
    body = assert_error(post_form(client, records_url, fields), 400)
    assert len(body["errors"]) == 500
    unchanged()


def test_form_with_only_a_file_is_400_and_stores_nothing(client, records_url, unchanged):
    body = assert_error(post_form(client, records_url, [], [("record_file", "a.png", b"png")]), 400)
    assert {"timestamp", "model_data", "site_name"} <= set(body["errors"])
    unchanged()


# --- Query parameters and methods on the record endpoints --------------------------------------


@pytest.mark.parametrize("kind", ["json", "form", "bulk"])
def test_unknown_query_parameter_on_a_record_post_writes_nothing(
    client, records_url, unchanged, kind
):
    url = f"{records_url}?dry_run=1&dry_run=2"
    if kind == "json":
        response = post_json(client, url, record_body())
    elif kind == "form":
        response = post_form(client, url, form(), [("record_file", "a.png", b"png")])
    else:
        response = post_bulk(client, url, line())
    assert "dry_run" in assert_error(response, 400)["errors"]
    unchanged()


def test_unknown_query_parameter_on_patch_and_delete_changes_nothing(client, record):
    url = f"/api/models/records/id/{record['id']}"
    response = client.generic(
        "PATCH", f"{url}?force=1", b'{"model_data": 2}', content_type="application/json"
    )
    assert "force" in assert_error(response, 400)["errors"]
    assert "force" in assert_error(client.delete(f"{url}?force=1"), 400)["errors"]
    assert client.get(url).json() == record


@pytest.mark.parametrize(
    "method, template",
    [
        ("put", "/api/models/id/{model}/records?site_name=Site%20A1"),
        ("delete", "/api/models/id/{model}/records/filter?site_names=Site%20A1"),
        ("put", "/api/sites?site_name=Site%20A1"),
        ("post", "/api/models/records/id/{record}?x=1"),
    ],
)
def test_undeclared_method_with_query_parameters_is_405(client, demo, record, method, template):
    """The method is checked before the query (it used to be a 400 'Unknown query parameter'
    naming parameters the GET accepts)."""
    path = template.format(model=demo.id, record=record["id"])
    body = assert_error(getattr(client, method)(path, {}, format="json"), 405)
    assert method.upper() in body["detail"]
