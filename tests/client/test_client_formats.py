"""The client on a server with the record formats: Arrow streams read batch by batch, Arrow
bulk bodies, CSV and Parquet exports passed through. Each test names the server features it
needs and is skipped until the live server has them (see the conftest); the client itself
works with a server without them (the other tests), falling back to NDJSON."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from models_api_client import IngestResult, Invalid
from models_api_client._arrow import RECORD_FIELDS
from models_api_client.cli import export

from tests.client.conftest import record


@pytest.fixture
def stored(client, server):
    rows = [record(n * 60, site_name=("Site A1", "Site A2")[n % 2],
                   record_info={"n": n}) for n in range(40)]
    rows[3]["model_data"] = None
    rows[4]["model_data"] = "just text"
    client.records.add_many(server.model, rows, format="ndjson")
    return list(client.records.iter(server.model))


@pytest.mark.needs_server_formats("arrow")
def test_to_arrow_reads_the_servers_arrow_stream(client, server, stored):
    table = client.records.to_arrow(server.model)
    assert client.records._arrow_streams is True  # the server's stream, not the fallback
    assert table.schema.names == list(RECORD_FIELDS)
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("collection_date").type == pa.date32()
    assert table.schema.field("model_id").type == pa.string()
    assert table.column("id").to_pylist() == [str(r.id) for r in stored]
    assert [json.loads(v) for v in table.column("model_data").to_pylist()] == [
        r.model_data for r in stored
    ]
    assert table.column("timestamp").to_pylist() == [r.timestamp for r in stored]
    assert table.column("record_file").to_pylist() == [None] * len(stored)


@pytest.mark.needs_server_formats("arrow")
def test_the_arrow_stream_and_the_ndjson_fallback_give_equal_tables(client, server, stored):
    served = client.records.to_arrow(server.model, site_names=["Site A2"])
    client.records._arrow_streams = False  # as against a server without the formats
    built = client.records.to_arrow(server.model, site_names=["Site A2"])
    assert [f.type for f in served.schema] == [f.type for f in built.schema]
    for name in RECORD_FIELDS:
        got, want = served.column(name).to_pylist(), built.column(name).to_pylist()
        if name in {"model_data", "record_info"}:  # JSON text may differ in spacing
            got, want = [json.loads(v) for v in got], [json.loads(v) for v in want]
        assert got == want, name


@pytest.mark.needs_server_formats("arrow")
def test_dataframes_from_the_arrow_stream(client, server, stored):
    frame = client.records.to_pandas(server.model)
    assert list(frame["model_data"]) == [r.model_data for r in stored]
    assert list(frame["record_info"]) == [r.record_info for r in stored]
    polars_frame = client.records.to_polars(server.model, start_timestamp=stored[10].timestamp)
    assert polars_frame["id"].to_list() == [str(r.id) for r in stored[10:]]


@pytest.mark.needs_server_formats("arrow")
def test_arrow_batches_arrive_one_at_a_time(client, server):
    client.records.add_many(server.model, [record(n) for n in range(5_000)], format="ndjson")
    batches = client.records.iter_batches(server.model)
    first = next(batches)
    assert 0 < first.num_rows <= 5_000
    assert first.num_rows + sum(b.num_rows for b in batches) == 5_000


@pytest.mark.needs_server_formats("arrow_bodies")
def test_add_many_sends_arrow_bodies(client, server):
    rows = [record(n, record_info={"n": n}) for n in range(300)]
    table = pa.Table.from_pylist([
        {**r, "model_data": json.dumps(r["model_data"]),
         "record_info": json.dumps(r["record_info"])}
        for r in rows
    ])
    result = client.records.add_many(server.model, table, batch_size=128)
    assert result == IngestResult(created=300, skipped_existing=0)
    assert client.records._arrow_bodies is True
    assert client.records.add_many(server.model, rows, format="arrow") == IngestResult(
        created=0, skipped_existing=300
    )
    stored = list(client.records.iter(server.model))
    assert [(r.model_data, r.record_info) for r in stored] == [
        (r["model_data"], r["record_info"]) for r in rows
    ]


@pytest.mark.needs_server_formats("arrow_bodies")
def test_a_bad_row_in_an_arrow_body_is_named_by_its_number(client, server):
    rows = [record(n) for n in range(10)]
    rows[8]["site_name"] = "Nowhere"
    with pytest.raises(Invalid) as raised:
        client.records.add_many(server.model, rows, batch_size=5, format="arrow")
    assert list(raised.value.errors) == ["9"]


@pytest.mark.needs_server_formats("arrow", "arrow_bodies")
def test_an_exported_table_adds_back_to_another_model(client, server, stored):
    table = client.records.to_arrow(server.model)
    assert client.records.add_many(server.other_model, table).created == len(stored)
    copied = client.records.to_pandas(server.other_model)
    assert list(copied["model_data"]) == [r.model_data for r in stored]


@pytest.mark.needs_server_formats("parquet")
def test_a_parquet_export_is_the_servers_file(client, server, stored):
    buffer = io.BytesIO()
    export(client, str(server.model), "parquet", buffer, {}, progress=False)
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert table.column("id").to_pylist() == [str(r.id) for r in stored]


@pytest.mark.needs_server_formats("csv")
def test_a_csv_export_is_the_servers_file(client, server, stored):
    buffer = io.BytesIO()
    export(client, str(server.model), "csv", buffer, {"site_names": ["Site A1"]},
           progress=False)
    lines = buffer.getvalue().decode().splitlines()
    assert lines[0].split(",") == list(RECORD_FIELDS)
    assert len(lines) == 1 + sum(r.site_name == "Site A1" for r in stored)


@pytest.mark.needs_server_formats("paging")
def test_streams_take_limit_and_offset(client, server, stored):
    page = list(client.records.iter(server.model, limit=10, offset=5))
    assert page == stored[5:15]
    assert list(client.records.iter(server.model, offset=len(stored))) == []
    window = client.records.to_arrow(server.model, site_names=["Site A1"], limit=3)
    assert window.column("id").to_pylist() == [
        str(r.id) for r in stored if r.site_name == "Site A1"
    ][:3]


@pytest.mark.needs_server_formats("csv_bodies", "parquet_bodies", "arrow_bodies")
@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow", "ndjson"])
def test_add_many_sends_bodies_in_each_format(client, server, fmt):
    rows = [record(n, record_info={"n": n}) for n in range(30)]
    rows[4]["model_data"] = 'text with "quotes",\na comma and a newline'
    rows[5]["model_data"] = None
    rows[6]["dataset_name"] = "Flight 6"
    result = client.records.add_many(server.model, rows, batch_size=8, format=fmt)
    assert result == IngestResult(created=30, skipped_existing=0)
    stored = list(client.records.iter(server.model))
    assert [(r.model_data, r.record_info) for r in stored] == [
        (r["model_data"], r["record_info"]) for r in rows
    ]
    assert stored[6].dataset_name == "Flight 6"
    assert stored[7].dataset_name == f"Model A Dataset {stored[7].collection_date}"
    table = client.records.to_arrow(server.model)
    assert client.records.add_many(server.model, table, format=fmt) == IngestResult(
        created=0, skipped_existing=30
    )


@pytest.mark.needs_server_formats("csv_bodies", "parquet_bodies")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_bad_row_is_named_by_its_number_in_the_records_given(client, server, fmt):
    rows = [record(n) for n in range(10)]
    rows[8]["site_name"] = "Nowhere"
    with pytest.raises(Invalid) as raised:
        client.records.add_many(server.model, rows, batch_size=5, format=fmt)
    assert list(raised.value.errors) == ["9"]
