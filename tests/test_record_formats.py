"""The record streams in every format: NDJSON, CSV, Arrow IPC stream and Parquet.

Each format is asked for by ``Accept`` or ``?format=`` (which wins), read back with the
library an analyst would use (the csv module and pandas, pyarrow, pandas and Polars) and
compared value by value with the NDJSON lines of the same stream.
"""

from __future__ import annotations

import csv
import datetime
import io
import json

import pandas
import polars
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import requests
from django.core.management import call_command

from models_api.models import Dataset, Experiment, Season, Site
from records.models import ModelRecord
from records.renderers import RECORD_RENDERERS
from records.representation import RECORD_FIELDS, RecordBatches
from tests.conftest import record_body
from tests.factories import ModelRecordFactory
from tests.helpers import assert_error, peak_memory

pytestmark = pytest.mark.django_db
UTC = datetime.UTC

MEDIA_TYPES = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
JSON_FIELDS = ("model_data", "record_info")


def contract_time(moment: datetime.datetime) -> str:
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    return f"{text}Z"


def ndjson_records(body: bytes) -> list[dict]:
    assert body == b"" or body.endswith(b"\n")
    return [json.loads(line) for line in body.splitlines()]


def csv_records(body: bytes) -> list[dict]:
    text = body.decode("utf-8")
    assert text.startswith(",".join(RECORD_FIELDS) + "\r\n")
    rows = list(csv.DictReader(io.StringIO(text, newline=""), strict=True))
    records = []
    for row in rows:
        record = {name: (None if value == "" else value) for name, value in row.items()}
        for name in JSON_FIELDS:
            assert record[name] == json.dumps(json.loads(record[name]), separators=(",", ":"),
                                              ensure_ascii=False), "JSON text is not compact"
            record[name] = json.loads(record[name])
        records.append(record)
    return records


def table_records(table: pa.Table) -> list[dict]:
    assert table.schema.names == list(RECORD_FIELDS)
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("collection_date").type == pa.date32()
    for name in JSON_FIELDS:
        assert table.schema.field(name).type == pa.json_()
    records = []
    for row in table.to_pylist():
        for name in ("timestamp", "created_at", "updated_at"):
            row[name] = contract_time(row[name])
        row["collection_date"] = row["collection_date"].isoformat()
        for name in JSON_FIELDS:
            row[name] = json.loads(row[name])
        records.append(row)
    return records


def arrow_records(body: bytes) -> list[dict]:
    reader = ipc.open_stream(body)
    batches = list(reader)
    assert all(batch.num_rows <= 65_536 for batch in batches)
    return table_records(pa.Table.from_batches(batches, schema=reader.schema))


def parquet_records(body: bytes) -> list[dict]:
    return table_records(pq.read_table(io.BytesIO(body)))


DECODE = {
    "ndjson": ndjson_records,
    "csv": csv_records,
    "arrow": arrow_records,
    "parquet": parquet_records,
}


def body_of(response) -> bytes:
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content)


@pytest.fixture
def odd(api, demo):
    """Records whose values try every format: unicode, quotes, commas and line breaks in JSON
    and in names, JSON null, microseconds, a stored file."""
    experiment = Experiment.objects.get(experiment_name="Experiment A")
    site = Site.objects.create(site_name='Site "north", field\nB — ünïcödé')
    site.experiments.add(experiment)
    url = f"/api/models/id/{demo.id}/records"
    bodies = [
        record_body(model_data={"text": 'a "quoted", comma\nnew line\ttab \\ back ☃ 🌱'}),
        {**record_body(timestamp="2024-06-01T10:00:00.000001Z"), "model_data": None},
        record_body(timestamp="2024-06-01T10:00:00.5Z", model_data=[1, 2.5, "x", True, None],
                    site_name=site.site_name, dataset_name="Data, \"quoted\""),
        record_body(timestamp="2024-06-01T11:00:00+02:00", model_data=12345678901234567890123,
                    record_info={"camera": "nir", "nested": {"k": [1, {"z": None}]}}),
        record_body(timestamp="2024-06-02T00:00:00Z", model_data="just text"),
    ]
    for body in bodies:
        assert api.post(url, body, format="json").status_code == 200
    fields = {**record_body(timestamp="2024-06-03T08:00:00Z"), "model_data": '{"leaf": 1}'}
    upload = io.BytesIO(b"\x89PNG fake")
    upload.name = "leaf.png"
    assert api.post(url, {**fields, "record_file": upload}, format="multipart").status_code == 200
    return demo


@pytest.mark.parametrize("name", ["csv", "arrow", "parquet", "ndjson"])
@pytest.mark.parametrize("path", ["records", "records/filter"])
def test_every_format_holds_the_ndjson_records_value_for_value(api, odd, name, path):
    url = f"/api/models/id/{odd.id}/{path}"
    expected = ndjson_records(body_of(api.get(url)))
    assert len(expected) == 6
    assert any(record["record_file"] for record in expected)
    assert any(record["model_data"] is None for record in expected)
    response = api.get(url, HTTP_ACCEPT=MEDIA_TYPES[name])
    assert response["Content-Type"].split(";")[0] == MEDIA_TYPES[name]
    assert DECODE[name](body_of(response)) == expected


@pytest.mark.parametrize("name", ["csv", "arrow", "parquet", "ndjson"])
def test_format_query_parameter_wins_over_accept(api, odd, name):
    url = f"/api/models/id/{odd.id}/records/filter?format={name}&site_names=Site A1"
    response = api.get(url, HTTP_ACCEPT="text/csv" if name != "csv" else "application/x-ndjson")
    assert response["Content-Type"].split(";")[0] == MEDIA_TYPES[name]
    records = DECODE[name](body_of(response))
    assert records and {record["site_name"] for record in records} == {"Site A1"}


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/x-ndjson",
        "application/*",
        "text/html, */*;q=0.1",
        "application/json; charset=utf-8",
    ],
)
def test_ndjson_is_the_default(api, odd, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    response = api.get(f"/api/models/id/{odd.id}/records", **headers)
    assert response["Content-Type"] == "application/x-ndjson"
    assert len(ndjson_records(body_of(response))) == 6


@pytest.mark.parametrize(
    "accept, name",
    [
        ("application/x-ndjson;q=0.5, application/vnd.apache.arrow.stream", "arrow"),
        ("text/csv;q=0.9, application/vnd.apache.parquet;q=0.95", "parquet"),
        ("*/*;q=0.1, text/csv", "csv"),
        ("application/vnd.apache.arrow.stream;q=0, */*", "ndjson"),
        ("application/x-ndjson;q=0, application/json;q=0, */*", "csv"),
        ("text/*, text/csv;q=0", None),  # CSV is refused, and nothing else is text/*
    ],
)
def test_accept_quality_values_pick_the_preferred_format(api, odd, accept, name):
    response = api.get(f"/api/models/id/{odd.id}/records", HTTP_ACCEPT=accept)
    if name is None:
        assert_error(response, 406)
    else:
        assert response["Content-Type"].split(";")[0] == MEDIA_TYPES[name]


def test_csv_is_rfc_4180_utf_8(api, odd):
    response = api.get(f"/api/models/id/{odd.id}/records?format=csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = body_of(response)
    lines = body.split(b"\r\n")
    assert lines[0] == ",".join(RECORD_FIELDS).encode()
    assert b'Site ""north"", field\nB' in body  # quotes doubled, the line break kept in quotes
    frame = pandas.read_csv(io.BytesIO(body), keep_default_na=False)
    assert list(frame.columns) == list(RECORD_FIELDS)
    assert len(frame) == 6
    # A null is an empty field; a file key is the key.
    assert sorted(frame["record_file"].tolist())[0] == ""
    assert any(key.endswith("/leaf.png") for key in frame["record_file"])


def test_parquet_is_an_attachment_named_after_the_model(api, odd):
    response = api.get(f"/api/models/id/{odd.id}/records?format=parquet")
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert response["Content-Disposition"] == 'attachment; filename="Model A records.parquet"'
    frame = polars.read_parquet(io.BytesIO(body_of(response)))
    assert frame.columns == list(RECORD_FIELDS)
    assert frame["timestamp"].dtype == polars.Datetime("us", "UTC")
    assert frame["collection_date"].dtype == polars.Date


def test_arrow_stream_reads_in_pandas_and_polars_with_typed_columns(api, odd):
    body = body_of(api.get(f"/api/models/id/{odd.id}/records?format=arrow"))
    frame = ipc.open_stream(body).read_pandas()
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].iloc[2] == pandas.Timestamp("2024-06-01T10:00:00.000001Z")
    polars_frame = polars.read_ipc_stream(io.BytesIO(body))
    assert polars_frame.height == 6
    assert polars_frame["timestamp"].dtype == polars.Datetime("us", "UTC")


@pytest.mark.parametrize("name", ["ndjson", "csv", "arrow", "parquet"])
def test_no_match_is_a_valid_empty_file(api, odd, name):
    response = api.get(f"/api/models/id/{odd.id}/records?site_name=Nowhere&format={name}")
    body = body_of(response)
    if name == "ndjson":
        assert body == b""
    elif name == "csv":
        assert body == (",".join(RECORD_FIELDS) + "\r\n").encode()
    elif name == "arrow":
        reader = ipc.open_stream(body)
        assert reader.schema.names == list(RECORD_FIELDS) and list(reader) == []
    else:
        table = pq.read_table(io.BytesIO(body))
        assert table.num_rows == 0 and table.schema.names == list(RECORD_FIELDS)


@pytest.mark.parametrize(
    "headers, query",
    [
        pytest.param({"HTTP_ACCEPT": "application/xml"}, "", id="accept-nothing-offered"),
        pytest.param({"HTTP_ACCEPT": "image/png, text/html"}, "", id="accept-two-unoffered"),
        pytest.param({}, "format=xml", id="unknown-format"),
        pytest.param({}, "format=json", id="json-is-not-a-record-format"),
        pytest.param({"HTTP_ACCEPT": "text/csv"}, "format=xlsx", id="unknown-format-wins"),
    ],
)
@pytest.mark.parametrize("path", ["records", "records/filter"])
def test_nothing_offered_is_406_naming_the_formats(api, odd, headers, query, path):
    response = api.get(f"/api/models/id/{odd.id}/{path}?{query}", **headers)
    detail = assert_error(response, 406)["detail"]
    for name, media_type in MEDIA_TYPES.items():
        assert f"{media_type} (format={name})" in detail


@pytest.mark.parametrize("name", ["arrow", "parquet", "csv"])
def test_errors_stay_json_whatever_was_asked_for(api, odd, name):
    accept = {"HTTP_ACCEPT": MEDIA_TYPES[name]}
    bad_filter = api.get(f"/api/models/id/{odd.id}/records/filter?start_timestamp=soon", **accept)
    assert "start_timestamp" in assert_error(bad_filter, 400)["errors"]
    unknown = "00000000-0000-0000-0000-000000000000"
    assert_error(api.get(f"/api/models/id/{unknown}/records?format={name}"), 404)
    assert_error(api.get(f"/api/models/id/{odd.id}/records?format={name}&site=x"), 400)


def test_format_given_twice_is_400(api, odd):
    response = api.get(f"/api/models/id/{odd.id}/records?format=csv&format=arrow")
    assert "format" in assert_error(response, 400)["errors"]


def test_anonymous_asking_for_arrow_gets_a_json_401(anonymous, odd):
    response = anonymous.get(f"/api/models/id/{odd.id}/records?format=arrow")
    assert_error(response, 401)


def test_a_single_record_and_each_line_are_the_same_object(api, odd):
    for line in ndjson_records(body_of(api.get(f"/api/models/id/{odd.id}/records"))):
        assert api.get(f"/api/models/records/id/{line['id']}").json() == line


def test_times_have_six_fraction_digits_only_when_not_zero(api, odd):
    stamps = [
        line["timestamp"]
        for line in ndjson_records(body_of(api.get(f"/api/models/id/{odd.id}/records")))
    ]
    assert stamps[:4] == [
        "2024-06-01T09:00:00Z",
        "2024-06-01T10:00:00Z",
        "2024-06-01T10:00:00.000001Z",
        "2024-06-01T10:00:00.500000Z",
    ]


@pytest.mark.parametrize("name", ["ndjson", "csv", "arrow", "parquet"])
def test_every_format_over_a_live_server(live_server, transactional_db, name):
    """Through a real HTTP connection, read by the analyst's own line of code."""
    call_command("load_demo", stdout=io.StringIO())
    call_command("create_api_user", "analyst", stdout=io.StringIO())
    from rest_framework.authtoken.models import Token

    from models_api.models import MLModel

    model = MLModel.objects.get(model_name="Model A")
    ModelRecordFactory.create_batch(
        30, model=model, season=Season.objects.get(season_name="Season 1A"),
        site=Site.objects.get(site_name="Site A1"),
        dataset=Dataset.objects.create(dataset_name="Live"),
    )
    headers = {"Authorization": f"Token {Token.objects.get(user__username='analyst').key}"}
    url = f"{live_server.url}/api/models/id/{model.id}/records"
    expected = ndjson_records(requests.get(url, headers=headers, timeout=30).content)
    response = requests.get(url, headers={**headers, "Accept": MEDIA_TYPES[name]}, timeout=30)
    assert response.status_code == 200
    if name == "csv":
        frame = pandas.read_csv(io.BytesIO(response.content))
        assert frame["id"].tolist() == [record["id"] for record in expected]
    if name == "arrow":
        table = ipc.open_stream(response.content).read_all()
        assert table.column("id").to_pylist() == [record["id"] for record in expected]
    if name == "parquet":
        frame = polars.read_parquet(io.BytesIO(response.content))
        assert frame["id"].to_list() == [record["id"] for record in expected]
    assert DECODE[name](response.content) == expected


def test_the_schema_lists_each_streams_formats(api):
    schema = api.get("/api/schema/?format=json").json()
    for path in ("/api/models/id/{model_pk}/records/", "/api/models/id/{model_pk}/records/filter/"):
        content = schema["paths"][path]["get"]["responses"]["200"]["content"]
        assert set(MEDIA_TYPES.values()) <= set(content)


def test_the_schema_answers_json_when_asked(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    assert response.json()["openapi"].startswith("3.")


@pytest.mark.slow
@pytest.mark.parametrize("renderer", RECORD_RENDERERS[::-1], ids=lambda r: r.__name__)
def test_fifty_thousand_records_in_every_format_with_flat_memory(demo, small_batches, renderer):
    from tests.test_record_streams import bulk_records

    bulk_records(demo, 50_000)
    everything = ModelRecord.objects.for_model(demo)
    tenth = everything.filter(
        timestamp__lt=datetime.datetime(2024, 1, 1, tzinfo=UTC) + datetime.timedelta(seconds=5_000)
    )
    sizes, peaks = [], []
    for queryset in (tenth, everything):
        with peak_memory() as peak:
            sizes.append(sum(len(chunk) for chunk in renderer().encode(RecordBatches(queryset))))
        peaks.append(peak.bytes)
    assert sizes[1] > 5 * sizes[0]
    assert peaks[1] < peaks[0] * 1.5 + 1024 * 1024, peaks


COMPARED = ("timestamp", "collection_date", "model_data", "dataset_name", "experiment_name",
            "season_name", "site_name", "record_info")


@pytest.mark.parametrize("name", ["ndjson", "csv", "arrow", "parquet"])
def test_an_export_in_each_format_imports_back_unchanged(api, odd, tmp_path, name):
    ModelRecord.objects.exclude(record_file=None).delete()  # files are not imported
    path = tmp_path / f"export.{name}"
    call_command("export_records", "Model A", "-o", str(path), stderr=io.StringIO())
    output = io.StringIO()
    call_command("import_records", "Model B", str(path), stdout=output, stderr=io.StringIO())
    assert output.getvalue().startswith("created 5, skipped_existing 0")

    def records_of(model_name: str) -> list[dict]:
        from models_api.models import MLModel

        model = MLModel.objects.get(model_name=model_name)
        body = body_of(api.get(f"/api/models/id/{model.id}/records"))
        return [{field: line[field] for field in COMPARED} for line in ndjson_records(body)]

    assert records_of("Model B") == records_of("Model A")
    # Again: everything exists now, and is skipped.
    output = io.StringIO()
    call_command("import_records", "Model B", str(path), stdout=output, stderr=io.StringIO())
    assert output.getvalue().startswith("created 0, skipped_existing 5")


@pytest.mark.parametrize(
    "name, content, complaint",
    [
        pytest.param("arrow", b"not arrow at all", "not an Arrow IPC stream", id="arrow-garbage"),
        pytest.param("parquet", b"PAR1 not really", "not a Parquet file", id="parquet-garbage"),
    ],
)
def test_importing_a_file_that_is_not_its_format_is_an_error(demo, tmp_path, name, content,
                                                              complaint):
    from django.core.management import CommandError

    path = tmp_path / f"records.{name}"
    path.write_bytes(content)
    with pytest.raises(CommandError) as raised:
        call_command("import_records", "Model A", str(path), stderr=io.StringIO())
    assert complaint in str(raised.value)
    assert not ModelRecord.objects.exists()


def test_importing_a_parquet_file_cut_in_half_writes_nothing(api, odd, tmp_path):
    from django.core.management import CommandError

    ModelRecord.objects.exclude(record_file=None).delete()
    path = tmp_path / "export.parquet"
    call_command("export_records", "Model A", "-o", str(path), stderr=io.StringIO())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CommandError):
        call_command("import_records", "Model B", str(path), stderr=io.StringIO())
    assert not ModelRecord.objects.filter(model__model_name="Model B").exists()


def test_importing_an_arrow_stream_with_an_unknown_column_names_it(demo, tmp_path):
    from django.core.management import CommandError

    table = pa.table({"timestamp": ["2024-06-01T10:00:00Z"], "model_data": ["1"],
                      "experiment_name": ["Experiment A"], "season_name": ["Season 1A"],
                      "site_name": ["Site A1"], "colour": ["red"]})
    path = tmp_path / "records.arrow"
    with ipc.new_stream(str(path), table.schema) as writer:
        writer.write_table(table)
    with pytest.raises(CommandError) as raised:
        call_command("import_records", "Model A", str(path), stderr=io.StringIO())
    assert "colour: Unknown column." in str(raised.value)
