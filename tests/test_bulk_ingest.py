"""Bulk ingest: POST /api/models/id/{id}/records with an NDJSON body."""

from __future__ import annotations

import gc
import io
import json
import math
import sys
import uuid

import pytest
from django.db import connection, transaction

from models_api.api.errors import TooLarge
from models_api.models import Dataset
from records.ingest import ingest_records, parse_ndjson
from records.models import ModelRecord
from records.parsers import NDJSONLines
from tests.conftest import record_body

pytestmark = pytest.mark.django_db


def ndjson(*records: dict) -> str:
    return "\n".join(json.dumps(record) for record in records) + "\n"


def post_bulk(api, model, body: str | bytes):
    return api.generic(
        "POST", f"/api/models/id/{model.id}/records", body, content_type="application/x-ndjson"
    )


def nth(n: int, **overrides) -> dict:
    return record_body(timestamp=f"2024-06-01T10:{n // 60:02d}:{n % 60:02d}Z", **overrides)


def test_bulk_creates_every_line(api, demo):
    response = post_bulk(api, demo, ndjson(*(nth(n) for n in range(25))))
    assert response.status_code == 200, response.content
    assert response.json() == {"created": 25, "skipped_existing": 0}
    assert ModelRecord.objects.filter(model=demo).count() == 25
    streamed = b"".join(api.get(f"/api/models/id/{demo.id}/records").streaming_content).splitlines()
    assert len(streamed) == 25


def test_bulk_is_idempotent_and_skips_repeats_within_the_body(api, demo):
    assert post_bulk(api, demo, ndjson(nth(0), nth(1))).json() == {
        "created": 2,
        "skipped_existing": 0,
    }
    response = post_bulk(api, demo, ndjson(nth(0), nth(1), nth(2), nth(2)))
    assert response.json() == {"created": 1, "skipped_existing": 3}
    assert ModelRecord.objects.count() == 3


def test_bulk_applies_defaults_creates_datasets_and_links(api, demo):
    body = ndjson(
        nth(0, site_name="Site B2"),
        nth(1, dataset_name="Bulk data", collection_date="2024-05-01", record_info={"x": 1}),
    )
    assert post_bulk(api, demo, body).json()["created"] == 2
    default = Dataset.objects.get(dataset_name="Model A Dataset 2024-06-01")
    named = Dataset.objects.get(dataset_name="Bulk data")
    assert named.collection_date.isoformat() == "2024-05-01"
    assert set(demo.datasets.all()) == {default, named}
    assert default.experiments.filter(experiment_name="Experiment A").exists()
    record = ModelRecord.objects.get(dataset=named)
    assert record.record_info == {"x": 1}
    assert record.site.experiments.filter(experiment_name="Experiment A").exists()


def test_one_bad_line_rejects_the_whole_body_naming_lines_from_one(api, demo):
    lines = [json.dumps(nth(n)) for n in range(8)]
    lines[2] = "{not json"
    lines[5] = json.dumps(nth(5, site_name="Site Z"))
    lines[7] = json.dumps({"timestamp": "2024-06-01T10:00:00Z"})
    response = post_bulk(api, demo, "\n".join(lines))
    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "3 lines are invalid; nothing was written."
    assert set(body["errors"]) == {"3", "6", "8"}
    assert any("Site Z" in message for message in body["errors"]["6"])
    assert any("model_data" in message for message in body["errors"]["8"])
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


def test_errors_list_at_most_a_hundred_lines(api, demo):
    response = post_bulk(api, demo, "{}\n" * 150)
    assert response.status_code == 400
    assert len(response.json()["errors"]) == 100
    assert "150 lines are invalid" in response.json()["detail"]


def test_blank_lines_are_ignored_but_counted(api, demo):
    body = json.dumps(nth(0)) + "\n\n" + "{bad\n"
    response = post_bulk(api, demo, body)
    assert set(response.json()["errors"]) == {"3"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("", id="empty"),
        pytest.param("\n\n", id="blank-lines"),
        pytest.param("[1, 2]\n", id="array-line"),
        pytest.param(b"\xff\xfe\n", id="not-utf8"),
        pytest.param('"text"\n', id="string-line"),
    ],
)
def test_bodies_without_records_are_400(api, demo, body):
    response = post_bulk(api, demo, body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not ModelRecord.objects.exists()


def test_an_empty_body_is_a_bulk_body_without_records(api, demo):
    """With no body at all DRF runs no parser: the answer is still the bulk one, not the
    single record's list of missing fields."""
    response = post_bulk(api, demo, "")
    assert response.status_code == 400
    assert response.json()["detail"] == "The body holds no records."
    assert "timestamp" not in response.json().get("errors", {})


def test_body_over_the_limit_is_413_and_writes_nothing(api, demo, settings):
    body = ndjson(*(nth(n) for n in range(50)))
    settings.RECORDS_BULK_MAX_BODY_SIZE = len(body) - 1
    response = post_bulk(api, demo, body)
    assert response.status_code == 413
    assert response.json()["detail"]
    assert not ModelRecord.objects.exists()
    settings.RECORDS_BULK_MAX_BODY_SIZE = len(body)
    assert post_bulk(api, demo, body).status_code == 200


def test_the_limit_holds_even_when_the_declared_length_lies(demo, api, settings):
    """A body longer than its Content-Length is cut at the declared length, never read on."""
    body = ndjson(*(nth(n) for n in range(10)))
    settings.RECORDS_BULK_MAX_BODY_SIZE = 100
    response = api.generic(
        "POST", f"/api/models/id/{demo.id}/records", body,
        content_type="application/x-ndjson", CONTENT_LENGTH="50",
    )
    assert response.status_code == 400  # a cut line is invalid JSON; nothing written
    assert not ModelRecord.objects.exists()


def test_bulk_needs_the_add_record_permission(reader, demo):
    response = post_bulk(reader, demo, ndjson(nth(0)))
    assert response.status_code == 403


def test_names_are_resolved_once_per_request_not_per_line(api, demo, django_assert_max_num_queries):
    post_bulk(api, demo, ndjson(nth(0)))  # dataset created
    lines = 1999
    # PostgreSQL: one COPY whatever the count;
    # SQLite: one INSERT per 76 rows (its 999-parameter limit)
    inserts = 1 if connection.vendor == "postgresql" else math.ceil(lines / (999 // 13))
    with django_assert_max_num_queries(20 + inserts):
        response = post_bulk(api, demo, ndjson(*(nth(n) for n in range(1, lines + 1))))
    assert response.json()["created"] == lines


def test_awkward_json_survives_the_bulk_path_exactly(api, demo):
    """Backslashes, quotes, control characters and non-ASCII text in JSON values round-trip
    (the PostgreSQL path formats COPY text itself)."""
    awkward = {
        "path": "C:\\data\\new\\table.csv",
        "quote": 'say "hi"',
        "controls": "tab\there\nnewline\rreturn\u0001",
        "unicode": "épi de maïs ✓ 🌽",
        "escaped_unicode_text": "\\u0041 is not A",
        "numbers": [0, -1, 1.5, 1e-7, 12345678901234, 123456789012345678901234567890],
        "nested": {"empty": {}, "list": [], "null": None, "bool": False},
    }
    body = ndjson(nth(0, model_data=awkward, record_info={"note": "back\\slash"}))
    assert post_bulk(api, demo, body).json()["created"] == 1
    [line] = b"".join(api.get(f"/api/models/id/{demo.id}/records").streaming_content).splitlines()
    record = json.loads(line)
    assert record["model_data"] == awkward
    assert record["record_info"] == {"note": "back\\slash"}


@pytest.mark.parametrize(
    "timestamp, collection_date, shown",
    [
        pytest.param("0001-01-01T00:00:00Z", None, "0001-01-01T00:00:00Z", id="first-instant"),
        pytest.param(
            "9999-12-31T23:59:59.999999Z", None, "9999-12-31T23:59:59.999999Z",
            id="last-instant",
        ),
        pytest.param(
            "1999-12-31T23:59:59.999999-00:30", "1970-01-01", "2000-01-01T00:29:59.999999Z",
            id="around-postgresqls-epoch",
        ),
        pytest.param(
            "1969-07-20T20:17:40.5+05:45", "1899-12-31", "1969-07-20T14:32:40.500000Z",
            id="before-1970-with-a-fraction",
        ),
        pytest.param("2024-06-01T10:00:00", "9999-12-31", "2024-06-01T10:00:00Z", id="no-zone"),
    ],
)
def test_times_and_dates_survive_the_bulk_path_exactly(
    api, demo, timestamp, collection_date, shown
):
    """The PostgreSQL path writes times and dates in COPY's binary form (microseconds and days
    from 2000-01-01): each comes back as a single POST gives it, first write and retry alike."""
    fields = {"collection_date": collection_date} if collection_date else {}
    body = ndjson(record_body(timestamp=timestamp, **fields))
    assert post_bulk(api, demo, body).json() == {"created": 1, "skipped_existing": 0}
    assert post_bulk(api, demo, body).json() == {"created": 0, "skipped_existing": 1}
    [line] = b"".join(api.get(f"/api/models/id/{demo.id}/records").streaming_content).splitlines()
    record = json.loads(line)
    assert record["timestamp"] == shown
    assert record["collection_date"] == (collection_date or shown[:10])
    ModelRecord.objects.all().delete()
    single = api.post(
        f"/api/models/id/{demo.id}/records", record_body(timestamp=timestamp, **fields),
        format="json",
    ).json()
    assert {key: single[key] for key in ("timestamp", "collection_date")} == {
        key: record[key] for key in ("timestamp", "collection_date")
    }


def test_a_retry_after_new_lines_writes_only_the_new_ones_exactly(api, demo):
    """A body that repeats earlier records takes the scratch-table path for its segment; the
    rows it does write there are as exact as a first write's."""
    awkward = {"text": "back\\slash \"quoted\" ✓", "n": 123456789012345678901234567890}
    assert post_bulk(api, demo, ndjson(nth(0), nth(1))).json()["created"] == 2
    body = ndjson(nth(0), nth(1), nth(2, model_data=awkward, collection_date="2001-02-03"))
    assert post_bulk(api, demo, body).json() == {"created": 1, "skipped_existing": 2}
    record = ModelRecord.objects.get(timestamp="2024-06-01T10:00:02Z")
    assert record.model_data == awkward
    assert str(record.collection_date) == "2001-02-03"
    assert not record.record_file


# --- reading the body in blocks ------------------------------------------------------------


def _lines_of(body: bytes) -> list[tuple[int, bytes]]:
    """What the bulk body's lines are: numbered from one, ends of line (LF or CRLF) aside."""
    return [(n, line.rstrip(b"\r")) for n, line in enumerate(body.split(b"\n"), 1)
            if not (line == b"" and n == body.count(b"\n") + 1)]


@pytest.mark.parametrize("block", [1, 2, 3, 7, 64, NDJSONLines.BLOCK_BYTES])
@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n",
        b'{"a": 1}',
        b'{"a": 1}\n',
        b'{"a": 1}\n\n{"b": 2}\r\n  \n{"c": "\xc3\xa9\\n"}',
        b"x" * 1000 + b"\n" + b"y" * 5 + b"\n\n",
        b"\n" * 20,
    ],
    ids=["empty", "one-newline", "no-final-newline", "final-newline", "mixed", "long-line",
         "only-newlines"],
)
def test_body_lines_are_the_same_whatever_the_block_size(monkeypatch, block, body):
    monkeypatch.setattr(NDJSONLines, "BLOCK_BYTES", block)
    lines = [(n, line.rstrip(b"\r")) for n, line in NDJSONLines(io.BytesIO(body), limit=10_000)]
    assert lines == _lines_of(body)


@pytest.mark.parametrize("block", [1, 5, 64])
def test_body_reading_stops_with_413_as_soon_as_it_passes_the_limit(monkeypatch, block):
    monkeypatch.setattr(NDJSONLines, "BLOCK_BYTES", block)
    stream = io.BytesIO(b'{"a": 1}\n' * 100)
    lines = NDJSONLines(stream, limit=95)
    with pytest.raises(TooLarge):
        list(lines)
    assert stream.tell() <= 96  # at most one byte past the limit was read
    assert list(NDJSONLines(io.BytesIO(b'{"a": 1}\n' * 10), limit=90))[-1] == (10, b'{"a": 1}')


# --- foreign keys checked as the rows arrive (PostgreSQL) ---------------------------------


def _pending_trigger_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts "
            "WHERE name = 'AfterTriggerEvents'"
        )
        return int(cursor.fetchone()[0])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_a_large_import_holds_no_queue_of_foreign_key_checks_until_commit(demo):
    """Django's foreign keys are deferred: checked at commit, each row of an import would
    queue its checks in the server's memory (measured: 12.6 MB per 200,000 rows, so gigabytes
    for an import of tens of millions in one transaction). The ingest checks them as each
    segment arrives, and leaves the transaction's constraints as Django declares them."""
    lines = [
        (n, json.dumps(record_body(timestamp=f"2024-06-01T10:00:{n % 60:02d}.{n:06d}Z")).encode())
        for n in range(1, 40_001)
    ]
    with transaction.atomic():  # like import_records: the caller's transaction is still open
        result = ingest_records(model=demo, records=parse_ndjson(lines))
        assert result.created == 40_000
        assert _pending_trigger_bytes() < 512 * 1024  # 2.5 MB when deferred to commit
        with connection.cursor() as cursor:  # deferred again: checked at commit, not now
            cursor.execute(
                "INSERT INTO models_api_mlmodel_datasets (mlmodel_id, dataset_id) VALUES (%s, %s)",
                [demo.id, uuid.uuid4()],
            )
        transaction.set_rollback(True)


def test_the_ingest_row_is_the_record_table_in_column_order():
    from records.ingest import IngestRow
    from records.models import RECORD_COLUMNS

    assert IngestRow._fields == RECORD_COLUMNS


def _over_days(days: int, per_day: int = 3, **overrides) -> list[dict]:
    return [
        record_body(
            timestamp=f"2024-06-{day + 1:02d}T10:00:{n:02d}Z", **overrides
        )
        for day in range(days)
        for n in range(per_day)
    ]


def test_a_body_over_many_days_creates_each_default_dataset_once(api, demo):
    response = post_bulk(api, demo, ndjson(*_over_days(30)))
    assert response.json() == {"created": 90, "skipped_existing": 0}
    datasets = Dataset.objects.filter(dataset_name__startswith="Model A Dataset 2024-06-")
    assert datasets.count() == 30
    for dataset in datasets:
        records = ModelRecord.objects.filter(dataset=dataset)
        assert records.count() == 3
        assert {record.collection_date for record in records} == {dataset.collection_date}
    assert set(demo.datasets.all()) == set(datasets)


def test_datasets_looked_up_ahead_go_when_a_later_line_is_bad(api, demo):
    """The ingest looks up (and creates) the datasets of the lines it has read ahead; a bad
    line after them still means nothing is written, and is named by its own number."""
    lines = _over_days(20)
    lines.append(record_body(timestamp="2024-07-01T10:00:00Z", site_name="Site Z"))
    response = post_bulk(api, demo, ndjson(*lines))
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"61"}
    assert "Site Z" in response.json()["errors"]["61"][0]
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_names_read_ahead_are_looked_up_together_not_a_segment_each(demo, monkeypatch):
    """A COPY segment has to end for a name to be looked up: the names of every line read
    ahead are looked up at once, so 30 new default datasets end a few segments, not 30."""
    from records import postgres

    ended = []
    pause = postgres.CopySink.pause

    def counting_pause(sink):
        if sink._copy is not None:
            ended.append(len(sink.segment))
        pause(sink)

    monkeypatch.setattr(postgres.CopySink, "pause", counting_pause)
    monkeypatch.setattr(postgres.CopySink, "WRITE_ROWS", 1)  # each row is sent at once
    lines = [(n, json.dumps(line).encode()) for n, line in enumerate(_over_days(30), 1)]
    with transaction.atomic():
        result = ingest_records(model=demo, records=parse_ndjson(lines))
        transaction.set_rollback(True)
    assert result.created == 90
    assert len(ended) < 5, ended


def test_names_ahead_are_taken_once_and_bounded(monkeypatch):
    from records import ingest

    monkeypatch.setattr(ingest, "_NAMES_AHEAD", 3)
    ahead = ingest._NamesAhead()
    for n in (1, 2, 1, 3, 4):
        ahead.meet(("experiment", "season", f"site {n}", None), n)
    assert [record for _, record in ahead.take()] == [1, 2, 3]
    ahead.meet(("experiment", "season", "site 1", None), 1)  # met before: not again
    assert ahead.take() == []


# --- the interpreter while an ingest runs ------------------------------------------------------


def _interpreter() -> tuple[float, tuple[int, ...]]:
    return sys.getswitchinterval(), gc.get_threshold()


@pytest.mark.parametrize("bad", [False, True], ids=["good-body", "bad-body"])
def test_the_interpreter_is_tuned_while_an_ingest_reads_and_restored_after(demo, bad):
    from models_api.api.errors import InvalidInput
    from records.ingest import threads_tuned

    before = _interpreter()
    during = []

    def lines():
        for n in range(1, 4):
            during.append(_interpreter())
            site = "Site Z" if bad and n == 3 else "Site A1"
            yield n, json.dumps(nth(n, site_name=site)).encode()

    try:
        with transaction.atomic():
            ingest_records(model=demo, records=parse_ndjson(lines()))
            transaction.set_rollback(True)
    except InvalidInput:
        assert bad
    assert during == [(threads_tuned.SWITCH_INTERVAL, (50_000, *before[1][1:]))] * 3
    assert _interpreter() == before


def test_concurrent_ingests_share_the_tuning_and_the_last_one_out_restores():
    from records.ingest import threads_tuned

    before = _interpreter()
    with threads_tuned:
        with threads_tuned:
            assert sys.getswitchinterval() == threads_tuned.SWITCH_INTERVAL
        assert sys.getswitchinterval() == threads_tuned.SWITCH_INTERVAL  # one still runs
        assert gc.get_threshold()[0] == threads_tuned.YOUNG_GENERATION_THRESHOLD
    assert _interpreter() == before
