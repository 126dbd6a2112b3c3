"""``client.records`` against the real service: adding one record (JSON or with a file) and
many (dicts, pandas, Polars, pyarrow), streaming them back, one record's reads, changes,
deletion and download, and the errors of the record endpoints."""

from __future__ import annotations

import datetime
import gc
import io
import json
import tracemalloc
import uuid

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from models_api_client import (
    Conflict,
    IngestResult,
    Invalid,
    NotFound,
    Record,
    TooLarge,
    Unavailable,
)

from tests.client.conftest import record, server_has

UTC = datetime.UTC


def add_one(client, model, **overrides) -> Record:
    body = record(**overrides)
    return client.records.add(model, **body)


# --- add ---------------------------------------------------------------------------------------


def test_add_gives_the_record_as_stored(client, server):
    added = client.records.add(
        server.model,
        timestamp=datetime.datetime(2024, 6, 1, 12, 30, 0, 250_000, tzinfo=UTC),
        model_data={"weeds": 3},
        experiment_name="Experiment A",
        season_name="Season 1A",
        site_name="Site A2",
        record_info={"camera": "nadir"},
    )
    assert isinstance(added, Record)
    assert added.timestamp == datetime.datetime(2024, 6, 1, 12, 30, 0, 250_000, tzinfo=UTC)
    assert added.collection_date == datetime.date(2024, 6, 1)
    assert added.dataset_name == "Model A Dataset 2024-06-01"
    assert added.model_id == server.model and added.model_name == "Model A"
    assert added.record_file is None and added.record_info == {"camera": "nadir"}
    assert client.records.get(added.id) == added
    assert added.to_dict()["timestamp"] == "2024-06-01T12:30:00.250000Z"


def test_add_takes_naive_times_as_utc_and_any_json_value(client, server):
    added = client.records.add(
        server.model,
        timestamp=datetime.datetime(2024, 6, 1, 8, 0),
        model_data=None,
        experiment_name="Experiment A",
        season_name="Season 1A",
        site_name="Site A1",
        collection_date=datetime.date(2024, 5, 31),
        dataset_name="Night flights",
    )
    assert added.timestamp == datetime.datetime(2024, 6, 1, 8, 0, tzinfo=UTC)
    assert added.model_data is None
    assert (added.collection_date, added.dataset_name) == (datetime.date(2024, 5, 31),
                                                           "Night flights")


def test_adding_the_same_record_again_is_a_conflict_naming_it(client, server):
    first = add_one(client, server.model)
    with pytest.raises(Conflict) as raised:
        add_one(client, server.model)
    assert raised.value.existing_id == first.id


def test_add_names_what_is_missing(client, server):
    with pytest.raises(Invalid) as raised:
        add_one(client, server.model, site_name="Nowhere")
    assert "site_name" in raised.value.errors
    with pytest.raises(NotFound):
        add_one(client, uuid.uuid4())


def test_read_only_tokens_may_not_add(reader_client, server):
    from models_api_client import Forbidden

    with pytest.raises(Forbidden):
        add_one(reader_client, server.model)


# --- one record --------------------------------------------------------------------------------


def test_update_and_delete_a_record(client, server):
    added = add_one(client, server.model)
    changed = client.records.update(added.id, model_data=[1, 2], record_info={"checked": True})
    assert (changed.model_data, changed.record_info) == ([1, 2], {"checked": True})
    assert client.records.update(added.id, model_data=None).model_data is None
    with pytest.raises(Invalid):
        client.records.update(added.id)  # names no field
    assert client.records.delete(added.id) is None
    for call in (client.records.get, client.records.delete):
        with pytest.raises(NotFound):
            call(added.id)


# --- files -------------------------------------------------------------------------------------


def test_file_round_trip_to_a_path_a_folder_and_a_file_object(client, server, tmp_path):
    content = bytes(range(256)) * 1000 + b"end"
    source = tmp_path / "leaf photo.png"
    source.write_bytes(content)
    added = add_one(client, server.model, file=source)
    assert added.record_file == f"model_records/{server.model}/{added.id}/leaf_photo.png"

    target = client.records.download(added.id, tmp_path / "copy.png")
    assert target == tmp_path / "copy.png" and target.read_bytes() == content
    folder = tmp_path / "downloads"
    folder.mkdir()
    assert client.records.download(added.id, folder).read_bytes() == content
    assert (folder / "leaf_photo.png").exists()
    buffer = io.BytesIO()
    assert client.records.download(added.id, buffer) is None
    assert buffer.getvalue() == content
    assert not list(tmp_path.glob(".*.part"))


def test_a_file_object_is_sent_under_the_name_given(client, server):
    added = add_one(client, server.model, file=io.BytesIO(b"bytes"), file_name="a.bin")
    assert added.record_file.endswith("/a.bin")
    buffer = io.BytesIO()
    client.records.download(added.id, buffer)
    assert buffer.getvalue() == b"bytes"


def test_download_of_a_record_without_a_file_is_not_found(client, server, tmp_path):
    added = add_one(client, server.model)
    with pytest.raises(NotFound, match="no file"):
        client.records.download(added.id, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()


def test_too_large_when_the_file_passes_the_limit(client, server, settings, tmp_path):
    settings.RECORD_FILE_MAX_SIZE = 2_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    with pytest.raises(TooLarge) as raised:
        add_one(client, server.model, file=io.BytesIO(b"x" * 10_000), file_name="big.bin")
    assert raised.value.status_code == 413
    assert list(client.records.iter(server.model)) == []


def test_unavailable_when_the_storage_is_down_after_the_retries(client, server, settings,
                                                                tmp_path):
    added = add_one(client, server.model, file=io.BytesIO(b"data"), file_name="f.txt")
    broken = tmp_path / "not-a-folder"
    broken.write_text("the storage folder is a file now")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": broken, "base_url": "/media/"},
        },
    }
    with pytest.raises(Unavailable) as raised:
        client.records.download(added.id, io.BytesIO())
    assert raised.value.status_code == 503
    assert raised.value.retry_after == 5  # what the service asked (the test client caps it)
    with pytest.raises(Unavailable):  # a write: nothing is kept (the contract's rule)
        add_one(client, server.model, n=1, file=io.BytesIO(b"data"), file_name="g.txt")
    assert [r.id for r in client.records.iter(server.model)] == [added.id]


# --- add_many ----------------------------------------------------------------------------------


def test_add_many_from_dicts_in_batches(client, server):
    records = [record(n) for n in range(250)]
    result = client.records.add_many(server.model, records, batch_size=100)
    assert result == IngestResult(created=250, skipped_existing=0)
    again = client.records.add_many(server.model, iter(records[:120]), batch_size=50)
    assert again == IngestResult(created=0, skipped_existing=120)
    assert again.to_dict() == {"created": 0, "skipped_existing": 120}
    stored = list(client.records.iter(server.model))
    assert [r.model_data for r in stored] == [r["model_data"] for r in records]


def test_add_many_from_pandas_polars_and_arrow(client, server):
    rows = [record(n, site_name="Site A2", record_info={"k": n}) for n in range(30)]
    frame = pd.DataFrame(rows[:10])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])  # datetime64[ns, UTC]
    assert client.records.add_many(server.model, frame).created == 10
    as_text = [  # JSON fields as JSON text, as exports give them
        {**r, "model_data": json.dumps(r["model_data"]),
         "record_info": json.dumps(r["record_info"])}
        for r in rows
    ]
    polars_frame = pl.DataFrame(as_text[10:20])
    assert client.records.add_many(server.model, polars_frame).created == 10
    table = pa.Table.from_pylist(as_text[20:])
    assert client.records.add_many(server.model, table, batch_size=4).created == 10
    stored = list(client.records.iter(server.model))
    assert [(r.model_data, r.record_info, r.site_name) for r in stored] == [
        (r["model_data"], r["record_info"], "Site A2") for r in rows
    ]


def test_add_many_takes_back_what_the_streams_give(client, server):
    client.records.add_many(server.model, [record(n) for n in range(20)])
    exported = [r.to_dict() for r in client.records.iter(server.model)]
    assert client.records.add_many(server.other_model, exported).created == 20
    assert client.records.add_many(server.other_model, client.records.to_pandas(server.model)) == (
        IngestResult(created=0, skipped_existing=20)
    )
    copied = list(client.records.iter(server.other_model))
    assert [r.model_data for r in copied] == [e["model_data"] for e in exported]
    assert {r.model_name for r in copied} == {"Model B"}


def test_add_many_refuses_unknown_fields_before_any_request(client, server):
    with pytest.raises(ValueError, match="colour"):
        client.records.add_many(server.model, [record(0), record(1, colour="red")])
    with pytest.raises(ValueError, match="site_name"):
        client.records.add_many(server.model, pd.DataFrame([record(0)]).drop(columns="site_name"))
    assert list(client.records.iter(server.model)) == []


def test_add_many_names_bad_records_by_their_number_in_the_input(client, server):
    records = [record(n) for n in range(10)]
    records[7]["season_name"] = "No such season"
    with pytest.raises(Invalid) as raised:
        client.records.add_many(server.model, records, batch_size=5)
    assert list(raised.value.errors) == ["8"]  # the 3rd line of the second batch
    assert len(list(client.records.iter(server.model))) == 5  # the first batch stays


def test_add_many_splits_batches_the_service_finds_too_large(client, server, settings):
    settings.RECORDS_BULK_MAX_BODY_SIZE = 4_000
    result = client.records.add_many(server.model, [record(n) for n in range(60)])
    assert result.created == 60
    huge = record(100, model_data={"blob": "x" * 5_000})
    with pytest.raises(TooLarge):
        client.records.add_many(server.model, [huge])


def test_add_many_keeps_bodies_under_the_clients_own_limit(client, server, monkeypatch):
    monkeypatch.setattr(client.records, "max_body_bytes", 3_000)
    assert client.records.add_many(server.model, [record(n) for n in range(40)]).created == 40
    assert client.records.add_many(
        server.model, pa.Table.from_pylist(
            [{**record(n), "model_data": json.dumps(record(n)["model_data"])}
             for n in range(40, 80)]
        ), format="ndjson",
    ).created == 40


def test_add_many_shows_progress(client, server, capsys):
    client.records.add_many(server.model, [record(n) for n in range(30)], batch_size=10,
                            progress=True)
    assert "30/30" in capsys.readouterr().err


# --- streams -----------------------------------------------------------------------------------


@pytest.fixture
def stored(client, server):
    """Twelve records across sites, seasons, datasets and hours, as the service gives them."""
    rows = []
    for n in range(12):
        rows.append(record(
            n * 3600,
            site_name=("Site A1", "Site A2", "Site A3")[n % 3],
            season_name=("Season 1A", "Season 2A")[n % 2],
            dataset_name=("D1", "D2")[n // 6],
        ))
    client.records.add_many(server.model, rows)
    return list(client.records.iter(server.model))


def test_iter_gives_every_record_in_order(stored, server, client):
    assert len(stored) == 12 and all(isinstance(r, Record) for r in stored)
    assert [r.timestamp for r in stored] == sorted(r.timestamp for r in stored)
    assert stored[0] == client.records.get(stored[0].id)


def test_iter_with_exact_filters(client, server, stored):
    got = list(client.records.iter(server.model, site_name="Site A2", season_name="Season 2A"))
    assert got == [r for r in stored if (r.site_name, r.season_name) == ("Site A2", "Season 2A")]
    assert list(client.records.iter(server.model, dataset_name="D2")) == stored[6:]
    assert list(client.records.iter(server.model, dataset_name="No such dataset")) == []
    assert list(client.records.iter(
        server.model, collection_date=datetime.date(2024, 6, 1)
    )) == stored


def test_iter_with_window_and_list_filters(client, server, stored):
    start = datetime.datetime(2024, 6, 1, 2, tzinfo=UTC)
    got = list(client.records.iter(
        server.model, start_timestamp=start, end_timestamp="2024-06-01T08:00:00Z",
        site_names=["Site A1", "Site A3"],
    ))
    assert got == [r for r in stored
                   if 2 <= r.timestamp.hour <= 8 and r.site_name in {"Site A1", "Site A3"}]
    assert list(client.records.iter(server.model, site_names="Site A2")) == [
        r for r in stored if r.site_name == "Site A2"
    ]
    assert list(client.records.iter(server.model, end_timestamp="2024-06-01T00:00:00Z")) == [
        stored[0]
    ]


def test_mixing_filter_kinds_or_unknown_filters_is_a_value_error_before_any_request(client):
    unknown_model = uuid.uuid4()  # any request would be a NotFound
    with pytest.raises(ValueError, match="cannot be mixed"):
        client.records.iter(unknown_model, site_name="Site A1", site_names=["Site A2"])
    with pytest.raises(ValueError, match="Unknown record filter"):
        client.records.iter(unknown_model, site="Site A1")
    with pytest.raises(ValueError):
        client.records.to_pandas(unknown_model, site_name="A", start_timestamp="2024-01-01")


def test_stream_errors(client, server):
    with pytest.raises(NotFound):
        list(client.records.iter(uuid.uuid4()))
    with pytest.raises(Invalid) as raised:
        list(client.records.iter(server.model, start_timestamp="2024-06-02",
                                 end_timestamp="2024-06-01"))
    assert "start_timestamp" in raised.value.errors
    with pytest.raises(Invalid):
        list(client.records.iter(server.model, start_timestamp="yesterday"))


def test_an_empty_stream_is_empty(client, server):
    assert list(client.records.iter(server.model)) == []
    table = client.records.to_arrow(server.model)
    assert table.num_rows == 0 and table.schema.names[0] == "id"
    assert len(client.records.to_pandas(server.model)) == 0
    assert client.records.to_polars(server.model).height == 0


def test_tables_hold_the_stream_typed(client, server, stored):
    table = client.records.to_arrow(server.model, site_names=["Site A1"])
    wanted = [r for r in stored if r.site_name == "Site A1"]
    assert table.num_rows == len(wanted)
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("collection_date").type == pa.date32()
    assert table.schema.field("id").type == pa.string()
    assert table.column("id").to_pylist() == [str(r.id) for r in wanted]
    assert [json.loads(v) for v in table.column("model_data").to_pylist()] == [
        r.model_data for r in wanted
    ]
    batches = list(client.records.iter_batches(server.model, site_names=["Site A1"]))
    assert pa.Table.from_batches(batches).equals(table)

    frame = client.records.to_pandas(server.model, dataset_name="D1")
    assert list(frame.columns)[:3] == ["id", "timestamp", "collection_date"]
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert list(frame["model_data"]) == [r.model_data for r in stored[:6]]
    assert list(frame["timestamp"]) == [pd.Timestamp(r.timestamp) for r in stored[:6]]
    text = client.records.to_pandas(server.model, dataset_name="D1", parse_json=False)
    assert [json.loads(v) for v in text["model_data"]] == [r.model_data for r in stored[:6]]

    polars_frame = client.records.to_polars(server.model)
    assert polars_frame.height == 12
    assert polars_frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert polars_frame["id"].to_list() == [str(r.id) for r in stored]


def _peak_while_iterating(client, model) -> tuple[int, int]:
    gc.collect()
    tracemalloc.start()
    try:
        count = 0
        for _ in client.records.iter(model):
            count += 1
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_iter_runs_in_constant_memory(client, server, small_batches):
    # The live server runs in this process, so its buffers count in the peak too: it holds a
    # batch of records at a time, made small here (``small_batches``) so that both runs span
    # many of them.
    client.records.add_many(server.model, (record(n) for n in range(1_500)))
    small_count, small_peak = _peak_while_iterating(client, server.model)
    client.records.add_many(server.model, (record(n) for n in range(1_500, 6_000)))
    large_count, large_peak = _peak_while_iterating(client, server.model)
    assert (small_count, large_count) == (1_500, 6_000)
    # Four times the records: were they kept, the peak would grow by some 10 MB.
    print(f"\npeaks: {small_peak:,} B for {small_count:,}, {large_peak:,} B for {large_count:,}")
    assert large_peak < small_peak * 1.25 + 512 * 1024, (small_peak, large_peak)


@pytest.mark.slow
def test_a_hundred_thousand_records_come_back_as_they_were_sent(client, server):
    """Read back from the Arrow stream with to_pandas once the server has it; until then
    from the NDJSON stream with iter (to_pandas would convert that same stream)."""
    sent = [
        record(n, model_data={"n": n, "score": n / 7, "tags": ["a", str(n % 5)]},
               site_name=("Site A1", "Site A2")[n % 2])
        for n in range(100_000)
    ]
    result = client.records.add_many(server.model, sent)
    # A batch retried after its answer was late counts as skipped what its first try wrote.
    assert result.created + result.skipped_existing == 100_000
    expected = [(r["timestamp"], r["site_name"], r["model_data"]) for r in sent]  # in order

    if server_has(server, "arrow"):
        frame = client.records.to_pandas(server.model)
        assert client.records._arrow_streams is True
        got = [
            (stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), site, data)
            for stamp, site, data in zip(
                frame["timestamp"], frame["site_name"], frame["model_data"], strict=True
            )
        ]
        assert set(frame["season_name"]) == {"Season 1A"}
    else:
        got = [
            (r.to_dict()["timestamp"], r.site_name, r.model_data)
            for r in client.records.iter(server.model)
        ]
    assert got == expected
