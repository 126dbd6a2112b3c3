"""Bulk bodies in the streams' other formats: ``POST /api/models/id/{id}/records`` with a CSV,
Arrow IPC stream or Parquet body follows the NDJSON body's rules (one transaction, all or
nothing, repeats skipped and counted, bad rows named by number) and answers the same way."""

from __future__ import annotations

import csv
import io
import json
from random import Random

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from django.core.handlers.wsgi import WSGIRequest
from django.core.management import call_command
from django.test.client import ClientHandler, RequestFactory
from rest_framework.authtoken.models import Token

from models_api.models import Dataset, MLModel, Site
from records.models import ModelRecord
from records.representation import RECORD_FIELDS
from records.services import ReferenceResolver
from records.validation import INPUT_FIELDS
from tests.conftest import record_body, token_client
from tests.helpers import assert_error, peak_memory

pytestmark = pytest.mark.django_db

MEDIA_TYPES = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
#: The formats this module is about (NDJSON has tests/test_bulk_ingest.py).
FORMATS = ["csv", "arrow", "parquet"]
JSON_FIELDS = ("model_data", "record_info")
COLUMNS = ["timestamp", "model_data", "experiment_name", "season_name", "site_name",
           "collection_date", "dataset_name", "record_info"]


def nth(n: int, **overrides) -> dict:
    return record_body(timestamp=f"2024-06-01T10:{n // 60:02d}:{n % 60:02d}Z", **overrides)


def as_text(record: dict, name: str) -> str | None:
    """A field as a CSV cell, an Arrow or a Parquet value holds it: JSON fields as JSON text."""
    if name not in record:
        return None
    value = record[name]
    return json.dumps(value) if name in JSON_FIELDS else value


def table_of(records: list[dict], columns: list[str] | None = None) -> pa.Table:
    columns = columns or [name for name in COLUMNS if any(name in r for r in records)]
    return pa.table(
        {name: pa.array([as_text(r, name) for r in records], pa.string()) for name in columns}
    )


def encode(name: str, records: list[dict] | pa.Table, *, rows_per_batch: int = 7) -> bytes:
    """``records`` as a body of format ``name``, in batches (Arrow) or row groups (Parquet) of
    ``rows_per_batch`` rows."""
    table = records if isinstance(records, pa.Table) else table_of(records)
    sink = io.BytesIO()
    if name == "ndjson":
        for row in table.to_pylist():
            line = {k: json.loads(v) if k in JSON_FIELDS else v
                    for k, v in row.items() if v is not None}
            sink.write(json.dumps(line).encode() + b"\n")
    elif name == "csv":
        text = io.StringIO(newline="")
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(table.schema.names)
        for row in table.to_pylist():
            writer.writerow(["" if value is None else value for value in row.values()])
        sink.write(text.getvalue().encode())
    elif name == "arrow":
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=rows_per_batch)
    else:
        pq.write_table(table, sink, row_group_size=rows_per_batch)
    return sink.getvalue()


def post(client, model, body: bytes, name: str, **extra):
    content_type = extra.pop("content_type", MEDIA_TYPES[name])
    return client.generic(
        "POST", f"/api/models/id/{model.id}/records", body, content_type=content_type, **extra
    )


def stored(api, model) -> list[dict]:
    body = b"".join(api.get(f"/api/models/id/{model.id}/records").streaming_content)
    return [json.loads(line) for line in body.splitlines()]


# --- the same rules as NDJSON ----------------------------------------------------------------


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_creates_its_rows_and_a_retry_creates_nothing(api, demo, name):
    records = [nth(n) for n in range(20)] + [nth(3)]  # a repeat within the body
    records[5] = nth(5, dataset_name="Named", collection_date="2024-05-01",
                     record_info={"camera": "rgb"}, site_name="Site B2")
    records[6] = nth(6, model_data={"quote": 'say "hi"', "lines": "a\nb,c", "n": [1.5, None]})
    records[7] = {**nth(7), "model_data": None}  # JSON null, as JSON text
    body = encode(name, records)
    response = post(api, demo, body, name)
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 20, "skipped_existing": 1}
    again = post(api, demo, body, name)
    assert again.json() == {"created": 0, "skipped_existing": 21}
    lines = stored(api, demo)
    assert len(lines) == 20
    by_time = {line["timestamp"]: line for line in lines}
    named = by_time[records[5]["timestamp"]]
    assert (named["dataset_name"], named["collection_date"], named["record_info"],
            named["site_name"]) == ("Named", "2024-05-01", {"camera": "rgb"}, "Site B2")
    assert by_time[records[6]["timestamp"]]["model_data"] == records[6]["model_data"]
    assert by_time[records[7]["timestamp"]]["model_data"] is None
    assert by_time[records[0]["timestamp"]]["dataset_name"] == "Model A Dataset 2024-06-01"
    assert Dataset.objects.get(dataset_name="Named").experiments.filter(
        experiment_name="Experiment A").exists()


@pytest.mark.parametrize("name", FORMATS)
def test_a_bad_row_anywhere_writes_nothing_and_rows_are_numbered_from_one(
    api, demo, monkeypatch, name
):
    """Segments of five rows: the good rows before the bad ones were already sent to the
    database when the first bad row is met; nothing of them stays."""
    monkeypatch.setattr("records.ingest.SEGMENT_ROWS", 5)
    records = [nth(n) for n in range(30)]
    records[2] = nth(2, site_name="Site Z")
    records[16] = {**nth(16), "timestamp": "yesterday"}
    records[29] = nth(29, dataset_name="Never made", record_info=[1])
    response = post(api, demo, encode(name, records), name)
    body = assert_error(response, 400)
    assert body["detail"] == "3 rows are invalid; nothing was written."
    assert set(body["errors"]) == {"3", "17", "30"}
    assert any("Site Z" in message for message in body["errors"]["3"])
    assert any(message.startswith("timestamp:") for message in body["errors"]["17"])
    assert any(message.startswith("record_info:") for message in body["errors"]["30"])
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("name", FORMATS)
@pytest.mark.parametrize(
    "column, complaint",
    [
        pytest.param("colour", "Unknown column.", id="unknown"),
        pytest.param("id", "the server assigns this field", id="assigned-by-the-server"),
        pytest.param("model_name", "the server assigns this field", id="model-name"),
    ],
)
def test_a_column_that_is_no_input_field_is_400_naming_it(api, demo, name, column, complaint):
    table = table_of([nth(0), nth(1)]).append_column(column, pa.array(["x", "y"]))
    body = assert_error(post(api, demo, encode(name, table), name), 400)
    assert list(body["errors"]) == [column]
    assert complaint in body["errors"][column][0]
    assert column in body["detail"]
    assert not ModelRecord.objects.exists()


@pytest.mark.parametrize("name", FORMATS)
def test_a_missing_required_column_is_400_naming_it(api, demo, name):
    table = table_of([nth(0)]).drop_columns(["site_name"])
    body = assert_error(post(api, demo, encode(name, table), name), 400)
    assert body["errors"] == {"site_name": ["This column is required."]}


@pytest.mark.parametrize("name", FORMATS)
def test_a_null_record_file_column_is_accepted_as_in_ndjson(api, demo, name):
    """An NDJSON line may say ``"record_file": null``; a column of nulls says the same. A file
    key, though, would be a record loaded without its file."""
    table = table_of([nth(0), nth(1)]).append_column("record_file", pa.array([None, None],
                                                                             pa.string()))
    assert post(api, demo, encode(name, table), name).json()["created"] == 2
    table = table_of([nth(2)]).append_column("record_file", pa.array(["model_records/x.png"]))
    body = assert_error(post(api, demo, encode(name, table), name), 400)
    assert list(body["errors"]) == ["1"]


def test_csv_rows_count_from_one_after_the_header_and_blank_lines_keep_their_numbers(api, demo):
    header = ",".join(COLUMNS[:5])
    good = [f'{nth(n)["timestamp"]},"{{""n"": {n}}}",Experiment A,Season 1A,Site A1'
            for n in range(4)]
    text = "\r\n".join([header, good[0], "", good[1], "2024-06-01T11:00:00Z,1,x", good[2]])
    body = assert_error(post(api, demo, text.encode(), "csv"), 400)
    assert body["errors"] == {"4": ["The row has 3 cells; the header names 5 columns."]}
    fixed = "\ufeff" + "\r\n".join([header, good[0], "", good[1], good[2], good[3]]) + "\r\n"
    response = post(api, demo, fixed.encode(), "csv", content_type="text/csv; charset=utf-8")
    assert response.json() == {"created": 4, "skipped_existing": 0}


def test_a_csv_body_in_another_charset_is_400(api, demo):
    body = encode("csv", [nth(0)])
    response = post(api, demo, body, "csv", content_type="text/csv; charset=latin-1")
    assert "UTF-8" in assert_error(response, 400)["detail"]
    assert not ModelRecord.objects.exists()


# --- bodies that are not what they claim ----------------------------------------------------


def _arrow_without_its_end() -> bytes:
    body = encode("arrow", [nth(n) for n in range(21)])
    assert body.endswith(b"\xff\xff\xff\xff\x00\x00\x00\x00")
    return body[:-8]  # cut exactly between two batches


def _cut(name: str, fraction: float) -> bytes:
    body = encode(name, [nth(n) for n in range(40)])
    return body[: int(len(body) * fraction)]


@pytest.mark.parametrize(
    "sent_as, body",
    [
        pytest.param("csv", lambda: encode("arrow", [nth(0)]), id="arrow-sent-as-csv"),
        pytest.param("csv", lambda: encode("parquet", [nth(0)]), id="parquet-sent-as-csv"),
        pytest.param("arrow", lambda: encode("parquet", [nth(0)]), id="parquet-sent-as-arrow"),
        pytest.param("arrow", lambda: encode("csv", [nth(0)]), id="csv-sent-as-arrow"),
        pytest.param("arrow", lambda: encode("ndjson", [nth(0)]), id="ndjson-sent-as-arrow"),
        pytest.param("parquet", lambda: encode("arrow", [nth(0)]), id="arrow-sent-as-parquet"),
        pytest.param("parquet", lambda: encode("csv", [nth(0)]), id="csv-sent-as-parquet"),
        pytest.param("arrow", lambda: _cut("arrow", 0.6), id="arrow-cut-in-a-batch"),
        pytest.param("arrow", _arrow_without_its_end, id="arrow-cut-between-batches"),
        pytest.param("arrow", lambda: encode("arrow", [nth(0)]) + b"more", id="arrow-trailing"),
        pytest.param("parquet", lambda: _cut("parquet", 0.5), id="parquet-cut-in-half"),
        pytest.param("parquet", lambda: _cut("parquet", 0.999), id="parquet-footer-cut"),
        pytest.param("csv", lambda: _cut("csv", 0.5) + b'"{', id="csv-cut-in-a-quoted-cell"),
        pytest.param("csv", lambda: b"timestamp,model_data\r\n\xff\xfe", id="csv-not-utf8"),
        pytest.param("csv", lambda: b'"timestamp,model_data\r\n', id="csv-header-unclosed"),
    ],
)
def test_a_body_that_is_not_its_format_is_400_and_writes_nothing(api, demo, sent_as, body):
    response = post(api, demo, body(), sent_as)
    assert_error(response, 400)
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("name", FORMATS)
def test_bodies_without_records_are_400(api, demo, name):
    assert assert_error(post(api, demo, b"", name), 400)["detail"] == "The body holds no records."
    empty = encode(name, table_of([nth(0)]).slice(0, 0))
    assert assert_error(post(api, demo, empty, name), 400)["detail"] == (
        "The body holds no records."
    )


@pytest.mark.parametrize("name", FORMATS)
def test_a_body_over_the_limit_is_413_and_writes_nothing(api, demo, settings, name):
    body = encode(name, [nth(n) for n in range(50)])
    settings.RECORDS_BULK_MAX_BODY_SIZE = len(body) - 1
    assert_error(post(api, demo, body, name), 413)
    # A body longer than its declared length is cut there, never read on: a body cut short.
    assert_error(post(api, demo, body, name, CONTENT_LENGTH=str(len(body) - 10)), 400)
    assert not ModelRecord.objects.exists()
    settings.RECORDS_BULK_MAX_BODY_SIZE = len(body)
    assert post(api, demo, body, name).status_code == 200


@pytest.mark.parametrize("name", FORMATS)
def test_bulk_bodies_need_the_add_record_permission(reader, demo, name):
    assert_error(post(reader, demo, encode(name, [nth(0)]), name), 403)


@pytest.mark.parametrize("name", FORMATS)
def test_a_reference_deleted_during_the_ingest_is_409_and_nothing_is_written(
    transactional_db, monkeypatch, name
):
    """A curator deletes a site between the names' lookup and the rows' write (as for NDJSON
    in test_record_ingest): the foreign key fails as the rows are written."""
    call_command("load_demo", stdout=io.StringIO())
    model = MLModel.objects.get(model_name="Model A")
    client = token_client("racer")
    resolve = ReferenceResolver.resolve

    def resolve_then_lose_the_site(self, record, **options):
        refs = resolve(self, record, **options)
        Site.objects.filter(site_name="Site A3").delete()
        return refs

    monkeypatch.setattr(ReferenceResolver, "resolve", resolve_then_lose_the_site)
    records = [nth(n, site_name="Site A3", dataset_name="Race dataset") for n in range(12)]
    body = assert_error(post(client, model, encode(name, records), name), 409)
    assert "was deleted" in body["detail"]
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.filter(dataset_name="Race dataset").exists()


# --- exports post back ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ndjson", *FORMATS])
def test_an_export_posts_back_once_the_columns_the_server_assigns_are_dropped(api, demo, name):
    """The endpoint refuses an export's ids, names and times as it refuses any unknown field
    (in NDJSON too); the client drops them (``records import``). The rest of an exported
    file, in its own types (times, dates, JSON), posts back unchanged."""
    records = [nth(n, record_info={"n": n}, model_data=[n, "é\n\"", None]) for n in range(9)]
    records[4] = nth(4, dataset_name="Flight 4", collection_date="2024-05-30")
    assert post(api, demo, encode("ndjson", records), "ndjson").json()["created"] == 9
    other = MLModel.objects.get(model_name="Model B")
    exported = b"".join(
        api.get(f"/api/models/id/{demo.id}/records", {"format": name}).streaming_content
    )
    refused = assert_error(post(api, other, exported, name), 400)
    # NDJSON names the fields in each line's messages; the others name the columns at once.
    named = {message.split(":")[0] for message in refused["errors"]["1"]} if name == "ndjson" \
        else set(refused["errors"])
    assert {"id", "model_id", "model_name", "created_at"} <= named
    kept = sorted(INPUT_FIELDS | {"record_file"}, key=RECORD_FIELDS.index)
    if name == "ndjson":
        body = b"".join(
            json.dumps({k: v for k, v in json.loads(line).items() if k in kept}).encode() + b"\n"
            for line in exported.splitlines()
        )
    elif name == "csv":
        rows = list(csv.DictReader(io.StringIO(exported.decode(), newline="")))
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, kept, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        body = text.getvalue().encode()
    else:
        table = (ipc.open_stream(exported).read_all() if name == "arrow"
                 else pq.read_table(io.BytesIO(exported)))
        body = encode(name, table.select(kept))
    assert post(api, other, body, name).json() == {"created": 9, "skipped_existing": 0}
    assert post(api, other, body, name).json() == {"created": 0, "skipped_existing": 9}
    compared = [name for name in kept if name != "record_file"]
    assert [{k: line[k] for k in compared} for line in stored(api, other)] == [
        {k: line[k] for k in compared} for line in stored(api, demo)
    ]


# --- memory ----------------------------------------------------------------------------------

#: A 64 MB body of records of about 30 KB each: few records, so that the test is quick, but
#: the body's bytes are what a server holding it whole would show. The ingest's own bounds
#: (segments and read-ahead in rows and in bytes) apply, as in production.
BODY_BYTES = 64 * 1024 * 1024
RECORD_BYTES = 30_000


def big_body(name: str) -> tuple[bytes, int]:
    count = BODY_BYTES // RECORD_BYTES
    random = Random(13)
    table = pa.table({
        "timestamp": [f"2024-06-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
                      for n in range(count)],
        # Text no compression shrinks, so that the Parquet body is 64 MB too.
        "model_data": [f'{{"n": {n}, "blob": "{random.randbytes(RECORD_BYTES // 2).hex()}"}}'
                       for n in range(count)],
        "experiment_name": ["Experiment A"] * count,
        "season_name": ["Season 1A"] * count,
        "site_name": ["Site A1"] * count,
    })
    return encode(name, table, rows_per_batch=50), count


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ndjson", *FORMATS])
def test_a_64_mb_body_is_ingested_in_bounded_memory(demo, settings, name):
    """The server's peak (Python's and Arrow's allocations) stays a small part of the body:
    it is read a block, a row or a batch at a time (Parquet from a temporary file)."""
    body, count = big_body(name)
    assert len(body) > 60 * 1024 * 1024
    settings.RECORDS_BULK_MAX_BODY_SIZE = len(body)
    token_client("memory-writer")
    token = Token.objects.get(user__username="memory-writer").key
    request = RequestFactory().generic(
        "POST", f"/api/models/id/{demo.id}/records", body, content_type=MEDIA_TYPES[name],
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    del body
    environ = request.environ  # the body is in its input already: not counted below
    assert isinstance(request, WSGIRequest)
    with peak_memory() as peak:
        response = ClientHandler()(environ)
    assert response.status_code == 200, response.content[:500]
    assert json.loads(response.content) == {"created": count, "skipped_existing": 0}
    assert peak.bytes < 24 * 1024 * 1024, peak.bytes


# --- the schema ------------------------------------------------------------------------------


def test_the_schema_lists_every_bulk_body_format(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/models/id/{model_pk}/records/"]["post"]
    assert set(MEDIA_TYPES.values()) <= set(operation["requestBody"]["content"])
    assert "skipped" in operation["description"]


def _csv_rows_then(fault: bytes, rows: int = 300) -> bytes:
    """A CSV body of good rows (past the first block the text is decoded in), then ``fault``
    as row ``rows + 1``."""
    header = ",".join(COLUMNS[:5])
    good = [f'{nth(n)["timestamp"]},"{{""n"": {n}}}",Experiment A,Season 1A,Site A1'
            for n in range(rows)]
    return ("\r\n".join([header, *good]) + "\r\n").encode() + fault + b"\r\n"


@pytest.mark.parametrize(
    "fault, message",
    [
        pytest.param(b'2024-06-02T10:00:00Z,"{}"x,E,S,X', "The row is not valid CSV", id="csv"),
        pytest.param(b"2024-06-02T10:00:00Z,\xff,E,S,X",
                     "The body is not valid UTF-8 from this row on.", id="utf-8"),
    ],
)
def test_a_csv_body_broken_after_its_first_rows_is_400_naming_where(api, demo, fault, message):
    body = assert_error(post(api, demo, _csv_rows_then(fault), "csv"), 400)
    ((number, messages),) = body["errors"].items()
    assert messages[0].startswith(message)
    # The UTF-8 fault is found when its block is decoded: at that row or a few before it.
    assert int(number) == 301 if "CSV" in message else 1 < int(number) <= 301
    assert not ModelRecord.objects.exists()
