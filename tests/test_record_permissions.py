"""What the record permissions reach beyond records: decided and pinned here (issue 10, "Decide
and document"; docs/API.md, "Authentication").

- ``add_modelrecord`` alone adds records, and with them what the contract makes part of adding
  one: the record's dataset when it does not exist yet (a record may create its dataset), and
  the links between the model, the dataset, the site and the experiment. Creating a dataset
  any other way (``POST /id/{id}/datasets``) still needs ``add_dataset``.
- ``view_modelrecord`` alone reads records, and a record names (and gives the ids of) the
  model, dataset, experiment, season and site it points at: those names are part of the
  record. Nothing else of those rows (their ``*_info``, dates, places) is shown without their
  own ``view`` permission.
"""

from __future__ import annotations

import json

import pytest

from models_api.models import Dataset, Experiment, MLModel
from tests.conftest import record_body
from tests.helpers import assert_error
from tests.test_auth import client_for, make_user

pytestmark = pytest.mark.django_db

NDJSON = "application/x-ndjson"
CATALOGUE_FIELDS = {"model_info", "dataset_info", "experiment_info", "season_info", "site_info"}


@pytest.fixture
def recorder(db):
    """A pipeline's user: it may add records, nothing else."""
    return client_for(make_user("pipeline", "records.add_modelrecord"))


def test_add_modelrecord_alone_creates_the_records_dataset(recorder, demo):
    response = recorder.post(
        f"/api/models/id/{demo.id}/records",
        record_body(dataset_name="Flight 7"),
        format="json",
    )
    assert response.status_code == 200, response.content
    dataset = Dataset.objects.get(dataset_name="Flight 7")
    assert response.json()["dataset_id"] == str(dataset.id)
    assert demo.datasets.filter(pk=dataset.pk).exists()
    assert dataset.experiments.filter(experiment_name="Experiment A").exists()


def test_add_modelrecord_alone_creates_datasets_in_bulk_and_by_default_name(recorder, demo):
    lines = [
        json.dumps(record_body(timestamp="2024-06-02T10:00:00Z", dataset_name="Flight 8")),
        json.dumps(record_body(timestamp="2024-06-03T10:00:00Z")),  # the default name
    ]
    response = recorder.generic(
        "POST", f"/api/models/id/{demo.id}/records", "\n".join(lines), content_type=NDJSON
    )
    assert response.json() == {"created": 2, "skipped_existing": 0}
    assert Dataset.objects.filter(
        dataset_name__in=["Flight 8", "Model A Dataset 2024-06-03"]
    ).count() == 2


def test_add_modelrecord_does_not_create_datasets_any_other_way(recorder, demo):
    response = recorder.post(
        f"/api/models/id/{demo.id}/datasets", {"dataset_name": "Direct"}, format="json"
    )
    assert_error(response, 403)
    assert not Dataset.objects.filter(dataset_name="Direct").exists()


def test_add_modelrecord_does_not_create_experiments_seasons_or_sites(recorder, demo):
    response = recorder.post(
        f"/api/models/id/{demo.id}/records",
        record_body(experiment_name="Experiment Z"),
        format="json",
    )
    assert "experiment_name" in assert_error(response, 400)["errors"]
    assert not Experiment.objects.filter(experiment_name="Experiment Z").exists()


@pytest.fixture
def record(api, demo) -> dict:
    response = api.post(f"/api/models/id/{demo.id}/records", record_body(), format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def record_reader(db):
    return client_for(make_user("analyst", "records.view_modelrecord"))


def test_view_modelrecord_alone_sees_the_names_a_record_points_at(record_reader, record, demo):
    one = record_reader.get(f"/api/models/records/id/{record['id']}")
    assert one.status_code == 200
    body = one.json()
    assert (body["model_name"], body["experiment_name"], body["season_name"]) == (
        "Model A",
        "Experiment A",
        "Season 1A",
    )
    assert body["site_name"] == "Site A1" and body["dataset_name"]
    assert not CATALOGUE_FIELDS & set(body)  # names and ids only, nothing else of those rows
    streamed = record_reader.get(f"/api/models/id/{demo.id}/records")
    lines = [json.loads(line) for line in b"".join(streamed.streaming_content).splitlines()]
    assert [line["experiment_name"] for line in lines] == ["Experiment A"]


def test_view_modelrecord_alone_reads_none_of_the_rows_themselves(record_reader, record):
    experiment = Experiment.objects.get(experiment_name="Experiment A")
    model = MLModel.objects.get(model_name="Model A")
    for path in (
        f"/api/experiments/id/{experiment.id}",
        "/api/experiments/all",
        f"/api/models/id/{model.id}",
        f"/api/models/id/{model.id}/datasets",
        "/api/seasons/all",
        "/api/sites/all",
    ):
        assert_error(record_reader.get(path), 403)
