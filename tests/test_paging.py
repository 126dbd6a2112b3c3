"""``limit`` and ``offset`` on every list and on both record streams.

A page is the slice ``[offset:offset + limit]`` of the whole list, in the list's own order. A
list page past the end is the contract's 404; a stream page past the end is an empty 200. Any
value that is not a whole number in range is a 400 naming the parameter. On PostgreSQL the
stream's offset is applied by the database: the skipped rows never reach Python.
"""

from __future__ import annotations

import datetime
import uuid

import psycopg
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_api.models import Dataset, Experiment, MLModel, Season, Site
from records import postgres
from records.models import ModelRecord
from records.renderers import NDJSONRenderer
from records.representation import RECORD_FIELDS, TIME_FIELDS, RecordBatches, stream_values
from tests.factories import (
    DatasetFactory,
    ExperimentFactory,
    MLModelFactory,
    ModelRecordFactory,
    ModelRunFactory,
    SeasonFactory,
    SiteFactory,
)
from tests.helpers import LIST_PATHS, assert_error, fill, ndjson_lines, peak_memory
from tests.test_record_streams import bulk_records

pytestmark = pytest.mark.django_db
UTC = datetime.UTC
ON_POSTGRESQL = connection.vendor == "postgresql"

#: (parameter, value) pairs that are not a page: each is a 400 naming the parameter.
BAD_VALUES = [
    pytest.param("limit", "-1", id="limit-negative"),
    pytest.param("limit", "0", id="limit-zero"),
    pytest.param("limit", "x", id="limit-text"),
    pytest.param("limit", "1.5", id="limit-fraction"),
    pytest.param("limit", "1e3", id="limit-exponent"),
    pytest.param("limit", "+5", id="limit-plus-sign"),
    pytest.param("limit", " 5", id="limit-space"),
    pytest.param("limit", "1_000", id="limit-underscore"),
    pytest.param("limit", "\u0663", id="limit-arabic-indic-digit"),
    pytest.param("limit", "", id="limit-empty"),
    pytest.param("offset", "-1", id="offset-negative"),
    pytest.param("offset", "x", id="offset-text"),
    pytest.param("offset", "1.5", id="offset-fraction"),
    pytest.param("offset", "", id="offset-empty"),
    pytest.param("offset", "0x10", id="offset-hex"),
]


def query(param: str, value: str) -> str:
    return f"{param}={value}"


# --- Lists -----------------------------------------------------------------------------------


@pytest.fixture
def shelf(catalogue):
    """The ``catalogue`` with five or more objects in every list, created out of order."""
    model, experiment = catalogue["model"], catalogue["experiment"]
    for n in (4, 2, 5, 3):
        other = ExperimentFactory(experiment_name=f"Experiment {n}")
        model.experiments.add(other)
        SeasonFactory(experiment=experiment, season_name=f"Season {n}")
        SiteFactory(site_name=f"Site {n}").experiments.add(experiment)
        dataset = DatasetFactory(dataset_name=f"Dataset {n}")
        dataset.experiments.add(experiment)
        model.datasets.add(dataset)
        MLModelFactory(model_name=f"Model {n}").experiments.add(experiment)
        ModelRunFactory(model=model)
    # A season of the same name in another experiment: "Season 3" twice in /seasons/all,
    # ordered by id between them.
    elsewhere = ExperimentFactory(experiment_name="Experiment 9")
    SeasonFactory(experiment=elsewhere, season_name="Season 3")
    return catalogue


def whole(api, path: str) -> list[dict]:
    response = api.get(path)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize("template", LIST_PATHS)
def test_every_list_page_is_the_slice_of_the_whole_list(api, shelf, template):
    path = fill(template, shelf)
    full = whole(api, path)
    assert len(full) >= 5, path
    cases = [
        ("limit=1", full[:1]),
        ("limit=2", full[:2]),
        ("offset=1", full[1:]),
        ("offset=3", full[3:]),
        ("offset=0", full),
        ("limit=2&offset=1", full[1:3]),
        ("offset=1&limit=2", full[1:3]),
        (f"limit={len(full)}", full),
        ("limit=10000", full),
        (f"limit=3&offset={len(full) - 1}", full[-1:]),
        ("limit=0001&offset=002", full[2:3]),  # leading zeros are still whole numbers
    ]
    for params, expected in cases:
        response = api.get(f"{path}?{params}")
        assert response.status_code == 200, (params, response.content)
        assert response.json() == expected, params
    pages = []
    for offset in range(0, len(full), 2):
        pages += api.get(path, {"limit": 2, "offset": offset}).json()
    assert pages == full


@pytest.mark.parametrize("template", LIST_PATHS)
def test_a_list_page_past_the_end_is_404(api, shelf, template):
    path = fill(template, shelf)
    count = len(whole(api, path))
    beyond_sql = str(2**63 - 1)  # what a SQL OFFSET holds; any larger offset means the same
    for offset, shown in [
        (str(count), str(count)),
        (str(count + 1), str(count + 1)),
        ("1000000", "1000000"),
        (str(10**30), beyond_sql),
        ("9" * 5000, beyond_sql),
    ]:
        body = assert_error(api.get(path, {"offset": offset, "limit": 5}), 404)
        assert body["detail"].endswith(f"found at offset {shown}."), body
        assert_error(api.get(path, {"offset": offset}), 404)


@pytest.mark.parametrize("param, value", BAD_VALUES)
def test_a_bad_paging_value_is_400_naming_the_parameter_on_every_list(
    api, catalogue, param, value
):
    for template in LIST_PATHS:
        path = fill(template, catalogue)
        body = assert_error(api.get(f"{path}?{query(param, value)}"), 400)
        assert list(body["errors"]) == [param], (path, body)
        assert param in body["detail"]


@pytest.mark.parametrize("param", ["limit", "offset"])
def test_a_repeated_paging_parameter_is_400_even_with_the_same_value(api, catalogue, param):
    for template in LIST_PATHS:
        path = fill(template, catalogue)
        body = assert_error(api.get(f"{path}?{param}=1&{param}=1"), 400)
        assert body["errors"] == {param: ["Give this query parameter once."]}, path


def test_a_limit_over_the_maximum_is_400_and_the_maximum_itself_is_accepted(api, catalogue):
    for template in LIST_PATHS:
        path = fill(template, catalogue)
        assert api.get(path, {"limit": 10_000}).status_code == 200, path
        for too_many in ("10001", str(10**30), "9" * 5000):
            body = assert_error(api.get(path, {"limit": too_many}), 400)
            assert body["errors"] == {"limit": ["Give a whole number, 1 to 10000."]}, path


def test_the_maximum_limit_is_the_api_max_limit_setting(api, shelf, settings):
    settings.API_MAX_LIMIT = 3
    assert len(api.get("/api/experiments/all", {"limit": 3}).json()) == 3
    body = assert_error(api.get("/api/experiments/all", {"limit": 4}), 400)
    assert body["errors"] == {"limit": ["Give a whole number, 1 to 3."]}
    # Without a limit the list is still whole: the maximum bounds what may be asked for.
    assert len(api.get("/api/experiments/all").json()) == 6


def test_both_bad_parameters_are_named_together(api, catalogue):
    body = assert_error(api.get("/api/models/all?limit=0&offset=-1"), 400)
    assert set(body["errors"]) == {"limit", "offset"}
    assert body["detail"] == "Invalid input in limit, offset."


def test_paging_and_unknown_parameters_together_name_the_unknown_one(api, catalogue):
    body = assert_error(api.get("/api/models/all?limit=1&colour=red"), 400)
    assert body["errors"] == {"colour": ["Unknown query parameter."]}


def test_paging_applies_after_the_search_filters(api, shelf):
    experiment = shelf["experiment"]
    found = whole(api, f"/api/models?experiment_name={experiment.experiment_name}")
    assert [m["model_name"] for m in found] == [f"Model {n}" for n in (2, 3, 4, 5)] + ["Model A"]
    page = api.get(
        "/api/models", {"experiment_name": experiment.experiment_name, "limit": 2, "offset": 1}
    )
    assert page.json() == found[1:3]
    seasons = whole(api, "/api/seasons?season_name=Season 3")
    assert len(seasons) == 2 and seasons[0]["id"] < seasons[1]["id"]
    assert api.get("/api/seasons?season_name=Season 3&offset=1").json() == seasons[1:]
    assert_error(api.get("/api/seasons?season_name=Season 3&offset=2"), 404)


def test_a_bad_page_is_400_before_an_unknown_id_is_looked_up(api, db):
    body = assert_error(api.get(f"/api/models/id/{uuid.uuid4()}/runs?limit=0"), 400)
    assert "limit" in body["errors"]
    assert_error(api.get(f"/api/models/id/{uuid.uuid4()}/runs?limit=1"), 404)


@pytest.mark.parametrize(
    "method, template",
    [
        ("get", "/api/models/id/{model}"),
        ("get", "/api/experiments/id/{experiment}"),
        ("post", "/api/models"),
        ("post", "/api/models/id/{model}/runs"),
        ("post", "/api/models/id/{model}/datasets"),
        ("patch", "/api/sites/id/{site}"),
        ("delete", "/api/seasons/id/{season}"),
        ("post", "/api/models/id/{model}/records"),
    ],
)
@pytest.mark.parametrize("param", ["limit", "offset"])
def test_paging_parameters_are_unknown_where_no_list_is_answered(
    api, catalogue, method, template, param
):
    before = {m.__name__: m.objects.count() for m in (MLModel, Dataset, Season, Site)}
    response = getattr(api, method)(f"{fill(template, catalogue)}?{param}=1", {}, format="json")
    body = assert_error(response, 400)
    assert body["errors"] == {param: ["Unknown query parameter."]}
    assert {m.__name__: m.objects.count() for m in (MLModel, Dataset, Season, Site)} == before


@pytest.mark.parametrize(
    "template, queries",
    [
        # the token (with its user's permissions), then the list itself
        ("/api/models/all", 2),
        ("/api/models", 2),
        ("/api/sites/all", 2),
        # the token, the object in the path, the list
        ("/api/models/id/{model}/runs", 3),
        ("/api/models/id/{model}/experiments", 3),
        ("/api/experiments/id/{experiment}/seasons", 3),
        ("/api/experiments/id/{experiment}/sites", 3),
        ("/api/experiments/id/{experiment}/datasets", 3),
        ("/api/experiments/id/{experiment}/models", 3),
    ],
)
def test_a_page_costs_the_queries_of_the_whole_list_and_no_count(
    api, shelf, django_assert_num_queries, template, queries
):
    path = fill(template, shelf)
    for params in ({}, {"limit": 2, "offset": 1}):
        with django_assert_num_queries(queries) as captured:
            assert api.get(path, params).status_code == 200
        assert not any("COUNT(" in q["sql"].upper() for q in captured.captured_queries)
    sql = captured.captured_queries[-1]["sql"]
    assert "LIMIT 2" in sql and "OFFSET 1" in sql, sql


# --- Streams ---------------------------------------------------------------------------------

STREAMS = ["records", "records/filter"]


@pytest.fixture
def stream(demo):
    """Model A with 30 records (every fifth shares its timestamp with the one before, so that
    the id decides their order), and a record of Model B that no stream of A shows."""
    experiment = Experiment.objects.get(experiment_name="Experiment A")
    seasons = list(Season.objects.filter(experiment=experiment))
    sites = list(Site.objects.filter(site_name__startswith="Site A"))
    start = datetime.datetime(2024, 6, 1, tzinfo=UTC)
    for n in range(30):
        minute = n - 1 if n % 5 == 4 else n
        ModelRecordFactory(
            model=demo,
            experiment=experiment,
            season=seasons[n % 3],
            site=sites[n % 3],
            dataset=Dataset.objects.get_or_create(dataset_name=f"Data {n % 2}")[0],
            timestamp=start + datetime.timedelta(minutes=minute),
        )
    ModelRecordFactory(
        model=MLModel.objects.get(model_name="Model B"),
        experiment=experiment,
        season=seasons[0],
        site=sites[0],
        timestamp=start,
    )
    return demo


@pytest.mark.parametrize("path", STREAMS)
def test_every_stream_page_is_the_slice_of_the_whole_stream(api, stream, path):
    url = f"/api/models/id/{stream.id}/{path}"
    full = ndjson_lines(api.get(url))
    assert len(full) == 30
    timestamps = [line["timestamp"] for line in full]
    assert len(set(timestamps)) < 30  # ties, ordered by id
    assert [(line["timestamp"], line["id"]) for line in full] == sorted(
        (line["timestamp"], line["id"]) for line in full
    )
    for params, expected in [
        ("limit=1", full[:1]),
        ("limit=7", full[:7]),
        ("offset=4", full[4:]),
        ("offset=5&limit=5", full[5:10]),
        ("limit=3&offset=3", full[3:6]),
        ("offset=29", full[29:]),
        ("offset=25&limit=100", full[25:]),
        ("limit=30", full),
        ("offset=0", full),
    ]:
        assert ndjson_lines(api.get(f"{url}?{params}")) == expected, params
    pages = []
    for offset in range(0, 30, 4):
        pages += ndjson_lines(api.get(url, {"offset": offset, "limit": 4}))
    assert pages == full


@pytest.mark.parametrize(
    "path, filters",
    [
        ("records", "site_name=Site A2"),
        ("records", "experiment_name=Experiment A&dataset_name=Data 1"),
        ("records/filter", "site_names=Site A1&site_names=Site A3"),
        ("records/filter", "start_timestamp=2024-06-01T00:10:00Z&dataset_names=Data 0"),
    ],
)
def test_a_stream_page_applies_after_the_filters(api, stream, path, filters):
    url = f"/api/models/id/{stream.id}/{path}?{filters}"
    full = ndjson_lines(api.get(url))
    assert 4 <= len(full) < 30
    assert ndjson_lines(api.get(f"{url}&offset=1&limit=2")) == full[1:3]
    assert ndjson_lines(api.get(f"{url}&offset=2")) == full[2:]


@pytest.mark.parametrize("path", STREAMS)
def test_a_stream_page_past_the_end_is_an_empty_200(api, stream, path):
    url = f"/api/models/id/{stream.id}/{path}"
    for offset in ("30", "31", "1000000", str(10**30), "9" * 5000):
        assert ndjson_lines(api.get(url, {"offset": offset})) == []
        assert ndjson_lines(api.get(url, {"offset": offset, "limit": 10})) == []


@pytest.mark.parametrize("path", STREAMS)
def test_a_stream_limit_has_no_upper_bound(api, stream, path, settings):
    settings.API_MAX_LIMIT = 2
    url = f"/api/models/id/{stream.id}/{path}"
    full = ndjson_lines(api.get(url))
    for limit in ("31", "10001", str(2**63 - 1), str(2**63), str(10**30), "9" * 5000):
        assert ndjson_lines(api.get(url, {"limit": limit})) == full, limit
        assert ndjson_lines(api.get(url, {"limit": limit, "offset": 28})) == full[28:], limit


@pytest.mark.parametrize("path", STREAMS)
@pytest.mark.parametrize("param, value", BAD_VALUES)
def test_a_bad_stream_page_is_400_before_the_stream_starts(api, stream, path, param, value):
    response = api.get(f"/api/models/id/{stream.id}/{path}?{query(param, value)}")
    body = assert_error(response, 400)
    assert list(body["errors"]) == [param], body


@pytest.mark.parametrize("path", STREAMS)
def test_a_repeated_stream_paging_parameter_is_400(api, stream, path):
    for param in ("limit", "offset"):
        body = assert_error(api.get(f"/api/models/id/{stream.id}/{path}?{param}=1&{param}=2"), 400)
        assert body["errors"] == {param: ["Give this query parameter once."]}


@pytest.mark.parametrize("path", STREAMS)
def test_a_stream_of_an_unknown_model_is_404_with_any_page(api, demo, path):
    assert_error(api.get(f"/api/models/id/{uuid.uuid4()}/{path}?limit=1&offset=1"), 404)


def test_the_stream_offset_and_limit_are_in_the_sql(api, stream, monkeypatch):
    """The database skips the rows: the statement carries LIMIT and OFFSET (COPY on
    PostgreSQL, which Django's query log does not see; a plain SELECT on SQLite)."""
    sent: list[str] = []
    original = psycopg.Cursor.copy

    def spy(self, statement, params=None, **kwargs):
        sent.append(self.mogrify(statement, params))  # Django's cursors bind client-side
        return original(self, statement, params, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", spy)
    with CaptureQueriesContext(connection) as captured:
        got = ndjson_lines(
            api.get(f"/api/models/id/{stream.id}/records", {"offset": 20, "limit": 5})
        )
    assert len(got) == 5
    statements = sent if ON_POSTGRESQL else [q["sql"] for q in captured.captured_queries]
    (stream_sql,) = [sql for sql in statements if "model_data" in sql]
    assert "LIMIT 5" in stream_sql and "OFFSET 20" in stream_sql, stream_sql


def peak_memory_of_streaming(queryset, **page) -> tuple[int, int]:
    """(records, peak bytes allocated by Python and Arrow) while encoding the page of the
    stream."""
    records = 0
    with peak_memory() as peak:
        for chunk in NDJSONRenderer().encode(RecordBatches(queryset, **page)):
            records += chunk.count(b"\n")
    return records, peak.bytes


@pytest.mark.slow
@pytest.mark.skipif(not ON_POSTGRESQL, reason="the offset is the database's work on PostgreSQL")
def test_a_stream_offset_over_a_hundred_thousand_records_reads_no_skipped_row(
    api, demo, small_batches
):
    bulk_records(demo, 100_000)
    records = ModelRecord.objects.for_model(demo)

    # What the database sends is the page alone: COPY's rows, counted as they arrive.
    received = postgres.TextBatches(
        stream_values(records, offset=99_990), RECORD_FIELDS, TIME_FIELDS
    )
    assert sum(batch.num_rows for batch in received) == 10

    # Memory: a page far down the stream costs what the first page costs, and the second
    # half of the stream no more than a small page (nothing grows with the rows skipped).
    first, peak_first = peak_memory_of_streaming(records, offset=0, limit=1_000)
    last, peak_last = peak_memory_of_streaming(records, offset=99_000, limit=1_000)
    half, peak_half = peak_memory_of_streaming(records, offset=50_000)
    assert (first, last, half) == (1_000, 1_000, 50_000)
    assert peak_last < peak_first * 1.5 + 512 * 1024, (peak_first, peak_last)
    assert peak_half < peak_first * 1.5 + 512 * 1024, (peak_first, peak_half)

    # And over HTTP: the last two records, in order.
    tail = ndjson_lines(api.get(f"/api/models/id/{demo.id}/records/filter", {"offset": 99_998}))
    assert [line["timestamp"] for line in tail] == ["2024-01-02T03:46:38Z", "2024-01-02T03:46:39Z"]
