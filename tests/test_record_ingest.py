"""POST /api/models/id/{id}/records: one record as JSON or a multipart form, and its rules."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection

from models_api.models import Dataset, MLModel, Site
from records.models import ModelRecord
from records.services import ReferenceResolver
from tests.conftest import record_body, token_client

pytestmark = pytest.mark.django_db

RECORD_KEYS = {
    "id", "timestamp", "collection_date", "model_id", "model_name", "model_data",
    "dataset_id", "dataset_name", "experiment_id", "experiment_name", "season_id",
    "season_name", "site_id", "site_name", "record_file", "record_info", "created_at",
    "updated_at",
}


def post_json(api, model, **overrides):
    return api.post(f"/api/models/id/{model.id}/records", record_body(**overrides), format="json")


def form(**overrides) -> dict:
    """The record as multipart form fields (JSON values as JSON text)."""
    fields = record_body(**overrides)
    for key in ("model_data", "record_info"):
        if key in fields and not isinstance(fields[key], str | SimpleUploadedFile):
            fields[key] = json.dumps(fields[key])
    return fields


def test_json_record_is_created_with_the_contract_fields(api, demo):
    response = post_json(api, demo, record_info={"camera": "rgb"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == RECORD_KEYS
    assert body["timestamp"] == "2024-06-01T10:00:00Z"
    assert body["collection_date"] == "2024-06-01"
    assert body["model_id"] == str(demo.id) and body["model_name"] == "Model A"
    assert body["model_data"] == {"boxes": [[1, 2, 3, 4]], "label": "weed"}
    assert body["experiment_name"] == "Experiment A"
    assert body["season_name"] == "Season 1A"
    assert body["site_name"] == "Site A1"
    assert body["dataset_name"] == "Model A Dataset 2024-06-01"
    assert body["record_file"] is None
    assert body["record_info"] == {"camera": "rgb"}
    assert ModelRecord.objects.filter(pk=body["id"]).exists()


def test_multipart_record_as_in_the_seed(api, demo):
    response = api.post(
        f"/api/models/id/{demo.id}/records",
        form(collection_date="2024-05-31", dataset_name="Flight 7", record_info={"k": 1}),
        format="multipart",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["collection_date"] == "2024-05-31"
    assert body["dataset_name"] == "Flight 7"
    assert body["model_data"] == {"boxes": [[1, 2, 3, 4]], "label": "weed"}
    assert body["record_info"] == {"k": 1}


@pytest.mark.parametrize(
    "sent, stored",
    [
        pytest.param("2024-06-01T10:00:00", "2024-06-01T10:00:00Z", id="no-zone-is-utc"),
        pytest.param("2024-06-01T12:30:00+02:30", "2024-06-01T10:00:00Z", id="offset"),
        pytest.param("2024-06-01T10:00:00.123456Z", "2024-06-01T10:00:00.123456Z", id="micro"),
        pytest.param("2024-06-01T10:00:00.5Z", "2024-06-01T10:00:00.500000Z", id="fraction"),
        pytest.param("2024-06-01T23:30:00-05:00", "2024-06-02T04:30:00Z", id="crosses-midnight"),
        pytest.param("2024-06-01T10:00:00+14:00", "2024-05-31T20:00:00Z", id="far-east-zone"),
    ],
)
def test_timestamps_are_read_as_iso_8601_and_given_in_utc(api, demo, sent, stored):
    body = post_json(api, demo, timestamp=sent).json()
    assert body["timestamp"] == stored
    # the default collection date is the timestamp's UTC date
    assert body["collection_date"] == stored[:10]


def test_model_data_may_be_any_json_value(api, demo):
    for n, value in enumerate([[1, 2], "text", 3.5, True, {"nested": {"a": [None]}}]):
        response = post_json(api, demo, timestamp=f"2024-06-01T10:00:0{n}Z", model_data=value)
        assert response.status_code == 200
        assert response.json()["model_data"] == value


def test_adding_a_record_links_model_dataset_and_site_to_the_experiment(api, demo):
    site_b = Site.objects.get(site_name="Site B1")  # linked to Experiment B only
    response = post_json(api, demo, site_name="Site B1", dataset_name="New data")
    assert response.status_code == 200
    dataset = Dataset.objects.get(dataset_name="New data")
    experiment_a = demo.experiments.get(experiment_name="Experiment A")
    assert site_b.experiments.filter(pk=experiment_a.pk).exists()
    assert dataset.experiments.filter(pk=experiment_a.pk).exists()
    assert demo.datasets.filter(pk=dataset.pk).exists()
    assert dataset.collection_date.isoformat() == "2024-06-01"
    # a second record changes no link and creates no dataset
    post_json(
        api, demo, site_name="Site B1", dataset_name="New data", timestamp="2024-06-02T00:00:00Z"
    )
    assert Dataset.objects.filter(dataset_name="New data").count() == 1
    assert demo.datasets.count() == 1


def test_duplicate_record_returns_409_with_the_existing_id(api, demo):
    first = post_json(api, demo).json()
    again = post_json(api, demo)
    assert again.status_code == 409
    assert again.json()["id"] == first["id"]
    assert ModelRecord.objects.count() == 1


def test_same_timestamp_at_another_site_is_a_new_record(api, demo):
    assert post_json(api, demo).status_code == 200
    assert post_json(api, demo, site_name="Site A2").status_code == 200


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        pytest.param(
            {"experiment_name": "Experiment Z"},
            "experiment_name",
            "Experiment Z",
            id="unknown-experiment",
        ),
        pytest.param({"season_name": "Season 9A"}, "season_name", "Season 9A", id="unknown-season"),
        pytest.param(
            {"season_name": "Season 1B"},
            "season_name",
            "Season 1B",
            id="season-of-other-experiment",
        ),
        pytest.param({"site_name": "Site Z9"}, "site_name", "Site Z9", id="unknown-site"),
    ],
)
def test_missing_references_are_400_naming_them(api, demo, overrides, field, words):
    response = post_json(api, demo, **overrides)
    assert response.status_code == 400
    assert words in response.json()["errors"][field][0]
    assert words in response.json()["detail"]
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        pytest.param({"timestamp": None}, "timestamp", id="no-timestamp"),
        pytest.param({"model_data": None}, "model_data", id="no-model-data"),
        pytest.param({"site_name": None}, "site_name", id="no-site"),
        pytest.param({"timestamp": "yesterday"}, "timestamp", id="bad-timestamp"),
        pytest.param({"timestamp": 1717236000}, "timestamp", id="epoch-number"),
        pytest.param({"timestamp": "2024-02-30T10:00:00Z"}, "timestamp", id="impossible-date"),
        pytest.param({"timestamp": "2024-06-01T10:00:00+25:00"}, "timestamp", id="bad-zone"),
        pytest.param({"timestamp": "10000-01-01T00:00:00Z"}, "timestamp", id="year-10000"),
        pytest.param(
            {"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", id="before-year-1-in-utc"
        ),
        pytest.param({"collection_date": "01/06/2024"}, "collection_date", id="bad-date"),
        pytest.param(
            {"collection_date": "2024-06-01T00:00:00"}, "collection_date", id="datetime-as-date"
        ),
        pytest.param({"record_info": [1]}, "record_info", id="info-not-object"),
        pytest.param({"site_name": "x" * 256}, "site_name", id="long-name"),
        pytest.param({"site_name": ""}, "site_name", id="empty-name"),
        pytest.param({"site_name": 7}, "site_name", id="name-not-text"),
        pytest.param({"dataset_name": "a\x00b"}, "dataset_name", id="nul-in-name"),
        pytest.param({"model_data": {"k": "a\x00b"}}, "model_data", id="nul-in-json"),
        pytest.param({"model_data": {"a\x00": 1}}, "model_data", id="nul-in-json-key"),
        pytest.param({"colour": "red"}, "colour", id="unknown-field"),
        pytest.param({"record_file": "a.png"}, "record_file", id="file-in-json"),
        pytest.param({"model_id": str(uuid.uuid4())}, "model_id", id="read-only-field"),
    ],
)
def test_bad_json_record_is_400_and_writes_nothing(api, demo, overrides, field):
    response = post_json(api, demo, **overrides)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


def test_deeply_nested_model_data_is_400(api, demo, settings):
    value = current = {}
    for _ in range(settings.JSON_MAX_DEPTH + 1):
        current["a"] = {}
        current = current["a"]
    response = post_json(api, demo, model_data=value)
    assert response.status_code == 400
    assert "model_data" in response.json()["errors"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        pytest.param({"model_data": "{not json"}, "model_data", id="model-data-not-json"),
        pytest.param({"record_info": "[1]"}, "record_info", id="info-not-object"),
        pytest.param({"record_info": "nope"}, "record_info", id="info-not-json"),
        pytest.param({"timestamp": "soon"}, "timestamp", id="bad-timestamp"),
        pytest.param({"collection_date": ""}, "collection_date", id="empty-date"),
        pytest.param({"site_name": "Site Z9"}, "site_name", id="unknown-site"),
    ],
)
def test_bad_multipart_fields_are_validated_like_json(api, demo, overrides, field):
    response = api.post(f"/api/models/id/{demo.id}/records", form(**overrides), format="multipart")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not ModelRecord.objects.exists()


def test_repeated_multipart_field_is_400(api, demo):
    fields = form()
    fields["site_name"] = ["Site A1", "Site A2"]
    response = api.post(f"/api/models/id/{demo.id}/records", fields, format="multipart")
    assert response.status_code == 400
    assert "site_name" in response.json()["errors"]


def test_unknown_model_is_404(api, demo):
    response = api.post(f"/api/models/id/{uuid.uuid4()}/records", record_body(), format="json")
    assert response.status_code == 404
    assert api.post("/api/models/id/nope/records", record_body(), format="json").status_code == 404


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b'{"timestamp": "2024-06-01T10:00:00Z"}'),  # fields missing
        ("application/json", b'{"timestamp": '),  # not JSON
        ("application/json", b""),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="x"'),
        ("multipart/form-data", b"no boundary"),
        ("application/x-ndjson", b"{}\n"),
        ("application/vnd.apache.parquet", b"PAR1 but not a Parquet file"),
        ("text/csv", b"timestamp\n2024-06-01"),
        ("text/plain", b"what"),
    ],
    ids=["invalid", "malformed", "empty", "cut-form", "no-boundary", "ndjson", "parquet", "csv",
         "unsupported"],
)
@pytest.mark.parametrize("model_path", ["unknown", "not-a-uuid"])
def test_an_unknown_model_is_404_whatever_is_wrong_with_the_body(
    api, demo, content_type, body, model_path
):
    """The model is read with the record's names, after the body: an unknown one still
    answers 404 first, and nothing is written."""
    model_id = uuid.uuid4() if model_path == "unknown" else "nope"
    response = api.generic(
        "POST", f"/api/models/id/{model_id}/records", body, content_type=content_type
    )
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": f"No model has the id '{model_id}'."}
    assert not ModelRecord.objects.exists()


def test_the_default_dataset_is_found_again_whatever_the_model_is_named(api):
    """The default dataset name is made in SQL with the model looked up: a name with quotes,
    a percent sign and accents finds the dataset its first record made."""
    call_command("load_demo", stdout=io.StringIO())
    model = MLModel.objects.create(model_name="Modèle 'A' 100% \"fine\"")
    for hour in (10, 11):
        response = api.post(
            f"/api/models/id/{model.id}/records",
            record_body(timestamp=f"2024-06-01T{hour}:00:00Z"),
            format="json",
        )
        assert response.status_code == 200, response.content
        assert response.json()["dataset_name"] == f"{model.model_name} Dataset 2024-06-01"
    assert Dataset.objects.filter(dataset_name__startswith="Modèle").count() == 1
    assert ModelRecord.objects.filter(model=model).values("dataset").distinct().count() == 1


def test_trailing_slash_creates_too(api, demo):
    response = api.post(f"/api/models/id/{demo.id}/records/", record_body(), format="json")
    assert response.status_code == 200


def test_deleting_a_model_deletes_its_records_but_not_the_catalogue(api, demo):
    post_json(api, demo)
    assert api.delete(f"/api/models/id/{demo.id}").status_code == 200
    assert not ModelRecord.objects.exists()
    assert not MLModel.objects.filter(pk=demo.pk).exists()
    assert Dataset.objects.count() == 1


@pytest.mark.parametrize("kind", ["experiments", "seasons", "sites"])
def test_deleting_a_reference_that_records_use_is_409(api, demo, kind):
    record = post_json(api, demo).json()
    ref_id = record[
        {"experiments": "experiment_id", "seasons": "season_id", "sites": "site_id"}[kind]
    ]
    response = api.delete(f"/api/{kind}/id/{ref_id}")
    assert response.status_code == 409
    assert response.json()["detail"]
    assert ModelRecord.objects.filter(pk=record["id"]).exists()


def test_post_record_query_count_does_not_grow_with_the_catalogue(
    api, demo, django_assert_num_queries
):
    post_json(api, demo)  # creates the dataset and links
    # The token with its user's permissions, the model's name with the four names' ids in one
    # query, then the row with its links: on PostgreSQL one statement (no transaction), on
    # SQLite the four links and the row in a transaction (a savepoint and its release inside
    # the test's own).
    expected = 3 if connection.vendor == "postgresql" else 9
    with django_assert_num_queries(expected) as queries:
        assert post_json(api, demo, timestamp="2024-06-01T11:00:00Z").status_code == 200
    assert not [q["sql"] for q in queries.captured_queries if "auth_permission" in q["sql"]
                and "authtoken_token" not in q["sql"]], "permissions come with the token"


def _link_rows() -> int:
    return sum(
        through.objects.count()
        for through in (MLModel.experiments.through, MLModel.datasets.through,
                        Dataset.experiments.through, Site.experiments.through)
    )


@pytest.mark.parametrize("dataset_exists", [True, False], ids=["known-dataset", "new-dataset"])
@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_reference_deleted_between_lookup_and_write_is_409_and_nothing_is_written(
    transactional_db, monkeypatch, dataset_exists, bulk
):
    """A curator deletes a site in the moment between the names' lookup and the write: the
    foreign key fails as the row is written (at commit: the keys are deferred). The answer is
    409, and neither the row, nor its links, nor a dataset made for it remains."""
    call_command("load_demo", stdout=io.StringIO())
    model = MLModel.objects.get(model_name="Model A")
    client = token_client("racer")
    if dataset_exists:
        Dataset.objects.create(dataset_name="Race dataset")
    resolve = ReferenceResolver.resolve

    def resolve_then_lose_the_site(self, record, **options):
        refs = resolve(self, record, **options)
        Site.objects.filter(site_name="Site A3").delete()  # the curator, meanwhile
        return refs

    monkeypatch.setattr(ReferenceResolver, "resolve", resolve_then_lose_the_site)
    links, datasets = _link_rows(), Dataset.objects.count()
    body = record_body(site_name="Site A3", dataset_name="Race dataset")
    path = f"/api/models/id/{model.id}/records"
    if bulk:
        response = client.generic(
            "POST", path, json.dumps(body) + "\n", content_type="application/x-ndjson"
        )
    else:
        response = client.post(path, body, format="json")
    assert response.status_code == 409, response.content
    assert "was deleted" in response.json()["detail"]
    assert not ModelRecord.objects.exists()
    assert Dataset.objects.count() == datasets
    assert _link_rows() <= links  # the site's own links went with it


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_a_default_dataset_name_over_255_characters_is_400_naming_dataset_name(api, demo, bulk):
    """The default is "<model_name> Dataset <date>": with a 250-character model name it would
    pass the limit every name keeps (and PostgreSQL's column would refuse it with a 500)."""
    model = MLModel.objects.create(model_name="M" * 250)
    path = f"/api/models/id/{model.id}/records"
    if bulk:
        response = api.generic("POST", path, json.dumps(record_body()) + "\n",
                               content_type="application/x-ndjson")
        messages = response.json()["errors"]["1"]
        assert any("dataset_name" in message for message in messages), messages
    else:
        response = api.post(path, record_body(), format="json")
        assert "dataset_name" in response.json()["errors"]
    assert response.status_code == 400
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.filter(dataset_name__startswith="M" * 250).exists()
    named = api.post(path, record_body(dataset_name="Short name"), format="json")
    assert named.status_code == 200, named.content


def test_model_data_may_be_json_null_in_every_way_a_record_is_written(api, demo):
    """The contract: ``model_data`` is any JSON value (required, but null is a value). Django
    saves None as SQL NULL, which the column refuses; every path writes JSON null."""
    path = f"/api/models/id/{demo.id}/records"
    as_json = api.post(path, {**record_body(), "model_data": None}, format="json")
    assert as_json.status_code == 200, as_json.content
    assert as_json.json()["model_data"] is None
    as_form = api.post(path, form(timestamp="2024-06-01T11:00:00Z", model_data="null"),
                       format="multipart")
    assert as_form.status_code == 200, as_form.content
    bulk = api.generic(
        "POST", path, json.dumps({**record_body(timestamp="2024-06-01T12:00:00Z"),
                                  "model_data": None}) + "\n",
        content_type="application/x-ndjson",
    )
    assert bulk.json() == {"created": 1, "skipped_existing": 0}
    patched = api.post(path, record_body(timestamp="2024-06-01T13:00:00Z"), format="json").json()
    response = api.patch(f"/api/models/records/id/{patched['id']}", {"model_data": None},
                         format="json")
    assert response.status_code == 200, response.content
    assert response.json()["model_data"] is None
    lines = [json.loads(line) for line in b"".join(api.get(path).streaming_content).splitlines()]
    assert [line["model_data"] for line in lines] == [None, None, None, None]
    one = api.get(f"/api/models/records/id/{as_json.json()['id']}").json()
    assert one == as_json.json()
    assert ModelRecord.objects.filter(model_data=None).count() == 4  # Django's JSON-null lookup
