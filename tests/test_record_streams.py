"""The record streams: GET /id/{id}/records and GET /id/{id}/records/filter (their NDJSON
default; the other formats are in test_record_formats)."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

from models_api.models import Dataset, Experiment, Season, Site
from records.models import ModelRecord
from records.renderers import NDJSONRenderer, RecordRenderer
from records.representation import RecordBatches
from tests.factories import MLModelFactory, ModelRecordFactory
from tests.helpers import ndjson_lines, peak_memory

pytestmark = pytest.mark.django_db
UTC = datetime.UTC


@pytest.fixture
def grid(demo):
    """Records of Model A over two days, every site and season of both experiments."""
    model = demo
    made = []
    for letter in "AB":
        experiment = Experiment.objects.get(experiment_name=f"Experiment {letter}")
        for number in (1, 2, 3):
            season = Season.objects.get(
                experiment=experiment, season_name=f"Season {number}{letter}"
            )
            site = Site.objects.get(site_name=f"Site {letter}{number}")
            dataset, _ = Dataset.objects.get_or_create(dataset_name=f"Data {letter}")
            for hour in (0, 12, 30):
                timestamp = datetime.datetime(2024, 6, 1, tzinfo=UTC) + datetime.timedelta(
                    hours=hour, minutes=number
                )
                made.append(
                    ModelRecordFactory(
                        model=model, experiment=experiment, season=season, site=site,
                        dataset=dataset, timestamp=timestamp,
                    )
                )
    return model, made


def test_stream_gives_every_record_ordered_by_timestamp_then_id(api, grid):
    model, made = grid
    tie = made[0]
    twin = ModelRecordFactory(
        model=model, experiment=tie.experiment, season=tie.season, site=tie.site,
        dataset=Dataset.objects.create(dataset_name="twin"), timestamp=tie.timestamp,
    )
    got = ndjson_lines(api.get(f"/api/models/id/{model.id}/records"))
    expected = sorted([*made, twin], key=lambda r: (r.timestamp, r.id))
    assert [line["id"] for line in got] == [str(r.id) for r in expected]


def test_each_line_is_the_single_record_object(api, grid):
    model, _ = grid
    for line in ndjson_lines(api.get(f"/api/models/id/{model.id}/records"))[:5]:
        assert api.get(f"/api/models/records/id/{line['id']}").json() == line


def test_other_models_records_are_not_streamed(api, grid):
    model, made = grid
    ModelRecordFactory(model=MLModelFactory())
    assert len(ndjson_lines(api.get(f"/api/models/id/{model.id}/records"))) == len(made)


@pytest.mark.parametrize(
    "params, keep",
    [
        pytest.param(
            {"experiment_name": "Experiment B"},
            lambda r: r.experiment.experiment_name == "Experiment B",
            id="experiment",
        ),
        pytest.param(
            {"season_name": "Season 2A"},
            lambda r: r.season.season_name == "Season 2A",
            id="season",
        ),
        pytest.param({"site_name": "Site B3"}, lambda r: r.site.site_name == "Site B3", id="site"),
        pytest.param(
            {"dataset_name": "Data A"},
            lambda r: r.dataset.dataset_name == "Data A",
            id="dataset",
        ),
        pytest.param(
            {"collection_date": "2024-06-02"},
            lambda r: r.collection_date == datetime.date(2024, 6, 2),
            id="collection-date",
        ),
        pytest.param(
            {
                "experiment_name": "Experiment A",
                "site_name": "Site A2",
                "collection_date": "2024-06-01",
            },
            lambda r: (
                r.site.site_name == "Site A2" and r.collection_date == datetime.date(2024, 6, 1)
            ),
            id="combined",
        ),
        pytest.param(
            {"dataset_name": "No such data"}, lambda r: False, id="unknown-dataset-matches-nothing"
        ),
        pytest.param(
            {"experiment_name": "Experiment A", "site_name": "Site B1"},
            lambda r: False,
            id="no-match-is-empty",
        ),
    ],
)
def test_exact_filters(api, grid, params, keep):
    model, made = grid
    got = ndjson_lines(api.get(f"/api/models/id/{model.id}/records", params))
    assert [line["id"] for line in got] == [
        str(r.id) for r in sorted(made, key=lambda r: (r.timestamp, r.id)) if keep(r)
    ]


def at(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    "query, keep",
    [
        pytest.param(
            "start_timestamp=2024-06-01T12:02:00Z",
            lambda r: r.timestamp >= at("2024-06-01T12:02:00Z"),
            id="start-alone-inclusive",
        ),
        pytest.param(
            "end_timestamp=2024-06-01T12:02:00Z",
            lambda r: r.timestamp <= at("2024-06-01T12:02:00Z"),
            id="end-alone-inclusive",
        ),
        pytest.param(
            "start_timestamp=2024-06-01T12:00:00Z&end_timestamp=2024-06-01T12:02:00Z",
            lambda r: at("2024-06-01T12:00:00Z") <= r.timestamp <= at("2024-06-01T12:02:00Z"),
            id="window",
        ),
        pytest.param(
            "start_timestamp=2024-06-01T14:00:00%2B02:00&end_timestamp=2024-06-01T12:00:59",
            lambda r: at("2024-06-01T12:00:00Z") <= r.timestamp <= at("2024-06-01T12:00:59Z"),
            id="zones-and-naive-utc",
        ),
        pytest.param(
            "site_names=Site A1&site_names=Site B2",
            lambda r: r.site.site_name in {"Site A1", "Site B2"},
            id="repeated-sites",
        ),
        pytest.param(
            "season_names=Season 3B",
            lambda r: r.season.season_name == "Season 3B",
            id="one-season",
        ),
        pytest.param(
            "experiment_names=Experiment A&experiment_names=Experiment B",
            lambda r: True,
            id="both-experiments",
        ),
        pytest.param(
            "dataset_names=Data B&dataset_names=nothing",
            lambda r: r.dataset.dataset_name == "Data B",
            id="datasets",
        ),
        pytest.param(
            "start_timestamp=2024-06-01T12:00:00Z&site_names=Site A3&experiment_names=Experiment A"
            "&season_names=Season 3A&dataset_names=Data A",
            lambda r: r.timestamp >= at("2024-06-01T12:00:00Z") and r.site.site_name == "Site A3",
            id="all-combined",
        ),
        pytest.param("start_timestamp=2030-01-01T00:00:00Z", lambda r: False, id="empty-window"),
    ],
)
def test_window_filters(api, grid, query, keep):
    model, made = grid
    got = ndjson_lines(api.get(f"/api/models/id/{model.id}/records/filter?{query}"))
    assert [line["id"] for line in got] == [
        str(r.id) for r in sorted(made, key=lambda r: (r.timestamp, r.id)) if keep(r)
    ]


@pytest.mark.parametrize(
    "path, query, field",
    [
        pytest.param(
            "records/filter", "start_timestamp=yesterday", "start_timestamp", id="bad-start"
        ),
        pytest.param(
            "records/filter", "end_timestamp=2024-13-01T00:00:00Z", "end_timestamp", id="bad-end"
        ),
        pytest.param(
            "records/filter",
            "start_timestamp=2024-06-02T00:00:00Z&end_timestamp=2024-06-01T00:00:00Z",
            "start_timestamp",
            id="start-after-end",
        ),
        pytest.param(
            "records/filter", "site_name=Site A1", "site_name", id="singular-typo-is-unknown"
        ),
        pytest.param(
            "records/filter",
            "start_timestamp=2024-06-01&start_timestamp=2024-06-02",
            "start_timestamp",
            id="repeated-start",
        ),
        pytest.param("records/filter", "start_timestamp=", "start_timestamp", id="empty-start"),
        pytest.param("records", "collection_date=June", "collection_date", id="bad-date"),
        pytest.param("records", "site_names=Site A1", "site_names", id="plural-on-exact-endpoint"),
        pytest.param(
            "records", "site_name=Site A1&site_name=Site A2", "site_name", id="repeated-single"
        ),
        pytest.param("records", "site_name=Site%00A1", "site_name", id="nul"),
        pytest.param("records", "site_name=" + "x" * 300, "site_name", id="too-long"),
    ],
)
def test_bad_filters_are_400_before_the_stream_starts(api, grid, path, query, field):
    model, _ = grid
    response = api.get(f"/api/models/id/{model.id}/{path}?{query}")
    assert response.status_code == 400
    assert not response.streaming
    assert field in response.json()["errors"]


@pytest.mark.parametrize(
    "path, query",
    [
        pytest.param("records/filter", "site_names=Site Z", id="unknown-site"),
        pytest.param(
            "records/filter", "season_names=Season 9Z&season_names=Season 8Y", id="unknown-seasons"
        ),
        pytest.param("records", "experiment_name=Experiment Z", id="unknown-experiment"),
        pytest.param("records", "season_name=Season 9Z", id="unknown-season"),
        pytest.param("records", "site_name=Site Z", id="unknown-site-exact"),
        pytest.param("records", "dataset_name=Data Z", id="unknown-dataset"),
    ],
)
def test_a_filter_naming_what_does_not_exist_matches_nothing(api, grid, path, query):
    """As the seed's service gave its clients: an empty stream, not an error."""
    model, _ = grid
    assert ndjson_lines(api.get(f"/api/models/id/{model.id}/{path}?{query}")) == []


def test_an_unknown_name_beside_a_known_one_keeps_the_known_ones(api, grid):
    model, made = grid
    got = ndjson_lines(
        api.get(f"/api/models/id/{model.id}/records/filter?site_names=Site A1&site_names=Site Z")
    )
    assert {line["site_name"] for line in got} == {"Site A1"}
    assert len(got) == sum(r.site.site_name == "Site A1" for r in made)


@pytest.mark.parametrize("path", ["records", "records/filter"])
def test_unknown_model_is_404_and_no_records_is_an_empty_200(api, demo, path):
    assert api.get(f"/api/models/id/{uuid.uuid4()}/{path}").status_code == 404
    assert api.get(f"/api/models/id/not-a-uuid/{path}").status_code == 404
    assert ndjson_lines(api.get(f"/api/models/id/{demo.id}/{path}")) == []


def test_streams_need_the_view_record_permission(reader, anonymous, grid):
    model, _ = grid
    assert anonymous.get(f"/api/models/id/{model.id}/records").status_code == 401
    assert len(ndjson_lines(reader.get(f"/api/models/id/{model.id}/records/filter"))) == 18


def bulk_records(model, count: int) -> None:
    """``count`` records of ``model`` inserted through the bulk path."""
    from records.ingest import ingest_records, parse_ndjson

    lines_ = (
        (n + 1, json.dumps({
            "timestamp": (
                datetime.datetime(2024, 1, 1, tzinfo=UTC) + datetime.timedelta(seconds=n)
            ).isoformat(),
            "model_data": {"score": n / 7, "label": f"plant {n}"},
            "experiment_name": "Experiment A", "season_name": "Season 1A", "site_name": "Site A1",
        }).encode())
        for n in range(count)
    )
    ingest_records(model=model, records=parse_ndjson(lines_))


@pytest.mark.slow
def test_a_stream_of_fifty_thousand_records(api, demo):
    bulk_records(demo, 50_000)
    response = api.get(f"/api/models/id/{demo.id}/records/filter?site_names=Site A1")
    count, previous = 0, ""
    for chunk in response.streaming_content:
        for line in chunk.splitlines():
            stamp = json.loads(line)["timestamp"]
            assert stamp >= previous
            previous = stamp
            count += 1
    assert count == 50_000


def peak_memory_of_streaming(
    queryset, renderer: RecordRenderer | None = None
) -> tuple[int, int]:
    """(bytes encoded, peak bytes allocated by Python and by Arrow) while encoding the whole
    stream of ``queryset`` (NDJSON unless ``renderer`` says otherwise)."""
    with peak_memory() as peak:
        size = sum(
            len(chunk) for chunk in (renderer or NDJSONRenderer()).encode(RecordBatches(queryset))
        )
    return size, peak.bytes


@pytest.mark.slow
def test_stream_memory_stays_flat_however_many_records_match(demo, small_batches):
    bulk_records(demo, 40_000)
    small = ModelRecord.objects.for_model(demo).filter(
        timestamp__lte=datetime.datetime(2024, 1, 1, 1, 6, 39, tzinfo=UTC)
    )
    size_small, peak_small = peak_memory_of_streaming(small)
    size_large, peak_large = peak_memory_of_streaming(ModelRecord.objects.for_model(demo))
    assert size_large > 9 * size_small
    # Ten times the records, about the same peak: nothing grows with the number of rows.
    assert peak_large < peak_small * 1.5 + 512 * 1024, (peak_small, peak_large)
