"""/api/models: the seed's endpoints for models, their experiments, runs and datasets."""

from __future__ import annotations

import uuid

import pytest

from models_api.models import Dataset, MLModel, ModelRun
from tests.factories import DatasetFactory, ExperimentFactory, MLModelFactory, ModelRunFactory

pytestmark = pytest.mark.django_db


def test_all_models_ordered_by_name(api):
    MLModelFactory(model_name="b")
    MLModelFactory(model_name="a")
    response = api.get("/api/models/all")
    assert response.status_code == 200
    assert [m["model_name"] for m in response.json()] == ["a", "b"]


def test_all_models_empty_is_404(api):
    response = api.get("/api/models/all")
    assert response.status_code == 404
    assert response.json() == {"detail": "No models found."}


def test_model_object_has_the_contract_fields(api, model):
    body = api.get(f"/api/models/id/{model.id}").json()
    assert set(body) == {
        "id", "model_name", "model_url", "model_info", "created_at", "updated_at",
    }
    assert body["id"] == str(model.id)
    assert body["created_at"].endswith("Z")


def test_create_model_links_the_experiment(api, experiment):
    response = api.post(
        "/api/models",
        {"model_name": "Yolo", "model_url": "s3://bucket/yolo.pt", "model_info": {"k": [1, 2]},
         "experiment_name": "Experiment A"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model_name"] == "Yolo"
    assert body["model_url"] == "s3://bucket/yolo.pt"
    assert body["model_info"] == {"k": [1, 2]}
    assert "experiment_name" not in body
    assert list(MLModel.objects.get(pk=body["id"]).experiments.all()) == [experiment]


def test_create_model_defaults(api):
    body = api.post("/api/models", {"model_name": "Plain"}, format="json").json()
    assert body["model_url"] is None
    assert body["model_info"] == {}


def test_duplicate_model_name_returns_409_with_existing_id(api, model):
    response = api.post("/api/models", {"model_name": "Model A"}, format="json")
    assert response.status_code == 409
    assert response.json()["id"] == str(model.id)
    assert MLModel.objects.count() == 1


def test_create_model_with_unknown_experiment_is_400_naming_it(api):
    response = api.post(
        "/api/models", {"model_name": "X", "experiment_name": "Nope"}, format="json"
    )
    assert response.status_code == 400
    assert "Nope" in response.json()["detail"]
    assert not MLModel.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({}, "model_name", id="missing-name"),
        pytest.param({"model_name": ""}, "model_name", id="empty-name"),
        pytest.param({"model_name": "x" * 256}, "model_name", id="name-too-long"),
        pytest.param({"model_name": 5}, "model_name", id="name-a-number"),
        pytest.param({"model_name": ["a"]}, "model_name", id="name-a-list"),
        pytest.param({"model_name": "a", "model_url": "not a url"}, "model_url", id="bad-url"),
        pytest.param(
            {"model_name": "a", "model_url": "https://x.org/" + "a" * 2040},
            "model_url",
            id="url-too-long",
        ),
        pytest.param({"model_name": "a", "model_info": [1]}, "model_info", id="info-not-object"),
        pytest.param({"model_name": "a", "model_info": "{}"}, "model_info", id="info-string"),
        pytest.param({"model_name": "a", "colour": "red"}, "colour", id="unknown-field"),
        pytest.param({"model_name": "a", "id": str(uuid.uuid4())}, "id", id="read-only-field"),
        pytest.param({"model_name": "a\x00b"}, "model_name", id="nul-in-name"),
        pytest.param(
            {"model_name": "a", "model_info": {"k": "a\x00"}}, "model_info", id="nul-in-json"
        ),
    ],
)
def test_create_model_bad_input_is_400(api, body, field):
    response = api.post("/api/models", body, format="json")
    assert response.status_code == 400, response.content
    payload = response.json()
    assert isinstance(payload["detail"], str) and payload["detail"]
    assert field in payload["errors"]


def test_name_at_the_limit_is_accepted(api):
    response = api.post("/api/models", {"model_name": "x" * 255}, format="json")
    assert response.status_code == 200


def test_search_without_parameters_returns_everything(api, model):
    response = api.get("/api/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()] == [str(model.id)]


def test_search_by_exact_name_and_url(api):
    MLModelFactory(model_name="alpha", model_url="https://x.org/a")
    MLModelFactory(model_name="alphabet", model_url="https://x.org/b")
    assert [m["model_name"] for m in api.get("/api/models?model_name=alpha").json()] == ["alpha"]
    found = api.get("/api/models", {"model_url": "https://x.org/b"}).json()
    assert [m["model_name"] for m in found] == ["alphabet"]


def test_search_no_match_is_404(api, model):
    assert api.get("/api/models?model_name=missing").status_code == 404


def test_search_by_model_info_containment(api):
    MLModelFactory(
        model_name="a", model_info={"task": "detect", "classes": ["weed", "crop"], "n": 1}
    )
    MLModelFactory(model_name="b", model_info={"task": "segment"})
    found = api.get("/api/models", {"model_info": '{"task": "detect"}'}).json()
    assert [m["model_name"] for m in found] == ["a"]
    found = api.get("/api/models", {"model_info": '{"classes": ["crop"]}'}).json()
    assert [m["model_name"] for m in found] == ["a"]
    assert api.get("/api/models", {"model_info": '{"n": true}'}).status_code == 404
    assert len(api.get("/api/models", {"model_info": "{}"}).json()) == 2


@pytest.mark.parametrize("value", ["{not json", "[1, 2]", '"text"', "1"])
def test_search_by_invalid_model_info_is_400(api, model, value):
    response = api.get("/api/models", {"model_info": value})
    assert response.status_code == 400
    assert "model_info" in response.json()["errors"]


def test_search_by_experiment(api, model):
    other = MLModelFactory(model_name="other")
    other.experiments.add(ExperimentFactory(experiment_name="Experiment B"))
    found = api.get("/api/models", {"experiment_name": "Experiment A"}).json()
    assert [m["model_name"] for m in found] == ["Model A"]


def test_search_by_unknown_experiment_matches_nothing(api, model):
    """A name in a query's filters that exists nowhere is not an error: it matches nothing."""
    response = api.get("/api/models", {"experiment_name": "Experiment Z"})
    assert response.status_code == 404
    assert response.json() == {"detail": "No models found."}


def test_get_unknown_model_is_404(api):
    assert api.get(f"/api/models/id/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "%00", "a.b", "x" * 300])
def test_malformed_id_is_404(api, bad_id):
    response = api.get(f"/api/models/id/{bad_id}")
    assert response.status_code == 404
    assert "detail" in response.json()


def test_patch_replaces_only_the_fields_sent(api, model):
    response = api.patch(
        f"/api/models/id/{model.id}", {"model_info": {"v": 2}}, format="json"
    )
    assert response.status_code == 200
    model.refresh_from_db()
    assert model.model_info == {"v": 2}
    assert model.model_name == "Model A"
    assert model.model_url is not None


def test_patch_experiment_name_adds_a_link(api, model):
    ExperimentFactory(experiment_name="Experiment B")
    response = api.patch(
        f"/api/models/id/{model.id}", {"experiment_name": "Experiment B"}, format="json"
    )
    assert response.status_code == 200
    names = sorted(model.experiments.values_list("experiment_name", flat=True))
    assert names == ["Experiment A", "Experiment B"]


def test_patch_empty_body_is_400(api, model):
    response = api.patch(f"/api/models/id/{model.id}", {}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_patch_to_an_existing_name_is_409(api, model):
    other = MLModelFactory(model_name="other")
    response = api.patch(f"/api/models/id/{other.id}", {"model_name": "Model A"}, format="json")
    assert response.status_code == 409
    assert response.json()["id"] == str(model.id)


def test_patch_unknown_model_is_404(api):
    response = api.patch(f"/api/models/id/{uuid.uuid4()}", {"model_name": "x"}, format="json")
    assert response.status_code == 404


def test_delete_model_deletes_runs_but_keeps_datasets_and_experiments(api, model, experiment):
    ModelRunFactory(model=model)
    dataset = DatasetFactory()
    model.datasets.add(dataset)
    response = api.delete(f"/api/models/id/{model.id}")
    assert response.status_code == 200
    assert response.json() == {"id": str(model.id), "deleted": True}
    assert not MLModel.objects.exists()
    assert not ModelRun.objects.exists()
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    experiment.refresh_from_db()
    assert api.delete(f"/api/models/id/{model.id}").status_code == 404


def test_model_experiments(api, model):
    response = api.get(f"/api/models/id/{model.id}/experiments")
    assert response.status_code == 200
    assert [e["experiment_name"] for e in response.json()] == ["Experiment A"]
    assert set(response.json()[0]) >= {"id", "experiment_info", "experiment_start_date"}


def test_model_experiments_empty_is_404(api):
    model = MLModelFactory()
    assert api.get(f"/api/models/id/{model.id}/experiments").status_code == 404
    assert api.get(f"/api/models/id/{uuid.uuid4()}/experiments").status_code == 404


def test_runs_created_and_listed_oldest_first(api, model):
    first = api.post(f"/api/models/id/{model.id}/runs", {"model_run_info": {"n": 1}}, format="json")
    second = api.post(
        f"/api/models/id/{model.id}/runs", {"model_run_info": {"n": 1}}, format="json"
    )
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] != second.json()["id"]
    assert first.json()["model_id"] == str(model.id)
    runs = api.get(f"/api/models/id/{model.id}/runs").json()
    assert [r["id"] for r in runs] == [first.json()["id"], second.json()["id"]]


def test_run_without_info_gets_an_empty_object(api, model):
    response = api.post(f"/api/models/id/{model.id}/runs", {}, format="json")
    assert response.status_code == 200
    assert response.json()["model_run_info"] == {}


def test_runs_empty_is_404_and_bad_info_is_400(api, model):
    assert api.get(f"/api/models/id/{model.id}/runs").status_code == 404
    response = api.post(f"/api/models/id/{model.id}/runs", {"model_run_info": 3}, format="json")
    assert response.status_code == 400
    assert api.post(f"/api/models/id/{uuid.uuid4()}/runs", {}, format="json").status_code == 404


def test_create_dataset_links_model_and_experiment(api, model):
    experiment_b = ExperimentFactory(experiment_name="Experiment B")
    response = api.post(
        f"/api/models/id/{model.id}/datasets",
        {"dataset_name": "Drone 2024", "dataset_info": {"camera": "rgb"},
         "collection_date": "2024-06-01", "experiment_name": "Experiment B"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {
        "id",
        "dataset_name",
        "dataset_info",
        "collection_date",
        "created_at",
        "updated_at",
    }
    assert body["collection_date"] == "2024-06-01"
    dataset = Dataset.objects.get(pk=body["id"])
    assert list(dataset.models.all()) == [model]
    assert list(dataset.experiments.all()) == [experiment_b]
    assert model.experiments.filter(pk=experiment_b.pk).exists()
    listed = api.get(f"/api/models/id/{model.id}/datasets").json()
    assert [d["dataset_name"] for d in listed] == ["Drone 2024"]


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({}, "dataset_name", id="missing-name"),
        pytest.param(
            {"dataset_name": "d", "collection_date": "2024-13-01"},
            "collection_date",
            id="bad-date",
        ),
        pytest.param(
            {"dataset_name": "d", "collection_date": "2024-06-01T10:00:00Z"},
            "collection_date",
            id="datetime-not-date",
        ),
        pytest.param(
            {"dataset_name": "d", "experiment_name": "Nope"},
            "experiment_name",
            id="unknown-experiment",
        ),
        pytest.param(
            {"dataset_name": "d", "dataset_info": []}, "dataset_info", id="info-not-object"
        ),
    ],
)
def test_create_dataset_bad_input_is_400(api, model, body, field):
    response = api.post(f"/api/models/id/{model.id}/datasets", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not Dataset.objects.exists()


def test_duplicate_dataset_is_409(api, model):
    dataset = DatasetFactory(dataset_name="D")
    response = api.post(f"/api/models/id/{model.id}/datasets", {"dataset_name": "D"}, format="json")
    assert response.status_code == 409
    assert response.json()["id"] == str(dataset.id)


def test_datasets_empty_is_404(api, model):
    assert api.get(f"/api/models/id/{model.id}/datasets").status_code == 404


def test_list_endpoints_query_counts_are_fixed(api, django_assert_max_num_queries):
    for _n in range(20):
        model = MLModelFactory()
        ModelRunFactory(model=model)
    # token lookup + permissions + the list itself: the count does not grow with the rows
    with django_assert_max_num_queries(4):
        assert len(api.get("/api/models/all").json()) == 20
    with django_assert_max_num_queries(5):
        assert api.get(f"/api/models/id/{model.id}/runs").status_code == 200
