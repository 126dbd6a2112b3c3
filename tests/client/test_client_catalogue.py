"""The client's catalogue resources against the real service: every method, typed objects,
empty lists as ``[]``, and each error class from a real answer."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import httpx
import pytest
from models_api_client import (
    APIError,
    Client,
    Conflict,
    Dataset,
    Experiment,
    Forbidden,
    Invalid,
    Model,
    NotFound,
    Run,
    Season,
    Site,
    Unauthorized,
)

from tests.client.conftest import FAST_RETRIES


def test_client_reads_its_defaults_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("MODELS_API_URL", f"{server.url}/api/")
    monkeypatch.setenv("MODELS_API_TOKEN", server.token)
    with Client() as client:
        assert client.base_url == server.url  # a trailing /api is the same service
        assert {model.model_name for model in client.models.all()} == {"Model A", "Model B"}
    monkeypatch.delenv("MODELS_API_URL")
    with pytest.raises(ValueError, match="MODELS_API_URL"):
        Client()


def test_models_all_search_get_create_update_delete(client):
    created = client.models.create(
        model_name="Weed detector",
        model_url="s3://models/weeds.pt",
        model_info={"task": "detection", "classes": 3},
        experiment_name="Experiment A",
    )
    assert isinstance(created, Model)
    assert isinstance(created.id, uuid.UUID)
    assert created.model_info == {"task": "detection", "classes": 3}
    assert created.created_at.tzinfo is not None and created.created_at.utcoffset() == (
        datetime.timedelta(0)
    )

    assert [m.model_name for m in client.models.all()] == ["Model A", "Model B", "Weed detector"]
    assert client.models.get(created.id) == created
    assert client.models.get(str(created.id)) == created
    assert client.models.search(model_name="Weed detector") == [created]
    assert client.models.search(model_info={"task": "detection"}) == [created]
    assert created in client.models.search(experiment_name="Experiment A")

    updated = client.models.update(created.id, model_url=None, model_info={"task": "seg"})
    assert updated.model_url is None and updated.model_info == {"task": "seg"}
    assert updated.updated_at >= created.updated_at
    assert client.models.delete(created.id) is None
    with pytest.raises(NotFound):
        client.models.get(created.id)


def test_objects_are_read_only_typed_and_give_back_their_json(client, server):
    model = client.models.get(server.model)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.model_name = "other"  # type: ignore[misc]
    assert not hasattr(model, "__dict__")  # slots
    raw = httpx.get(
        f"{server.url}/api/models/id/{server.model}",
        headers={"Authorization": f"Token {server.token}"},
    ).json()
    assert model.to_dict() == raw
    assert list(model.to_dict()) == [f.name for f in dataclasses.fields(Model)]
    assert hash(model) == hash(client.models.get(server.model))


def test_runs_and_datasets_of_a_model(client, server):
    assert client.models.runs(server.model) == []  # the contract's 404 for an empty list
    first = client.models.create_run(server.model, model_run_info={"epochs": 40})
    second = client.models.create_run(server.model)
    assert isinstance(first, Run) and first.model_id == server.model
    assert second.model_run_info == {}
    assert client.models.runs(server.model) == [first, second]  # oldest first

    assert client.models.datasets(server.model) == []
    dataset = client.models.create_dataset(
        server.model,
        dataset_name="Drone flights June",
        collection_date=datetime.date(2026, 6, 1),
        dataset_info={"drone": "M3"},
        experiment_name="Experiment B",
    )
    assert isinstance(dataset, Dataset)
    assert dataset.collection_date == datetime.date(2026, 6, 1)
    assert client.models.datasets(server.model) == [dataset]
    names = {e.experiment_name for e in client.models.experiments(server.model)}
    assert names == {"Experiment A", "Experiment B"}  # the dataset's experiment is linked


def test_a_model_without_experiments_gives_an_empty_list(client):
    lonely = client.models.create(model_name="Lonely")
    assert client.models.experiments(lonely.id) == []


@pytest.mark.parametrize("sub_list", ["runs", "datasets", "experiments"])
def test_sub_lists_of_an_unknown_model_are_not_found_not_empty(client, sub_list):
    unknown = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        getattr(client.models, sub_list)(unknown)
    assert str(unknown) in raised.value.detail


def test_top_level_lists_are_empty_lists(client):
    assert client.models.search(model_name="No such model") == []
    assert client.sites.search(site_name="No such site") == []
    for site in client.sites.all():
        client.sites.delete(site.id)
    assert client.sites.all() == []


def test_a_wrong_base_url_is_not_an_empty_list(server):
    with Client(f"{server.url}/nothing-here", server.token, **FAST_RETRIES) as client:
        with pytest.raises(NotFound, match="Nothing is at"):
            client.models.all()


def test_experiments_seasons_sites(client):
    experiment = client.experiments.create(
        experiment_name="Trial 2026",
        experiment_start_date=datetime.date(2026, 3, 1),
        experiment_info={"plots": 12},
    )
    assert isinstance(experiment, Experiment)
    assert experiment.experiment_start_date == datetime.date(2026, 3, 1)
    assert experiment.experiment_end_date is None
    assert client.experiments.get(experiment.id) == experiment
    assert client.experiments.search(experiment_name="Trial 2026") == [experiment]
    assert experiment in client.experiments.all()
    changed = client.experiments.update(experiment.id, experiment_end_date="2026-09-30")
    assert changed.experiment_end_date == datetime.date(2026, 9, 30)

    season = client.seasons.create(season_name="Spring", experiment_name="Trial 2026")
    assert isinstance(season, Season)
    assert season.experiment_id == experiment.id and season.experiment_name == "Trial 2026"
    assert client.seasons.search(season_name="Spring", experiment_name="Trial 2026") == [season]
    assert client.seasons.get(season.id) == season
    assert season in client.seasons.all()
    assert client.seasons.update(season.id, season_info={"wet": True}).season_info == {"wet": True}

    site = client.sites.create(site_name="North field", site_city="Ames", site_country="US")
    assert isinstance(site, Site)
    assert (site.site_city, site.site_state, site.site_country) == ("Ames", None, "US")
    assert client.sites.search(site_name="North field") == [site]
    assert client.sites.get(site.id) == site
    assert site in client.sites.all()
    assert client.sites.update(site.id, site_state="IA").site_state == "IA"

    client.seasons.delete(season.id)
    client.sites.delete(site.id)
    client.experiments.delete(experiment.id)
    for resource, object_id in [
        (client.seasons, season.id), (client.sites, site.id), (client.experiments, experiment.id)
    ]:
        with pytest.raises(NotFound):
            resource.get(object_id)


# --- Errors, each from a real answer ------------------------------------------------------------


def test_invalid_names_the_fields(client):
    with pytest.raises(Invalid) as raised:
        client.models.create(model_name="")
    error = raised.value
    assert error.status_code == 400
    assert set(error.errors) == {"model_name"}
    assert error.detail and isinstance(error, APIError)
    with pytest.raises(Invalid) as raised:
        client.models.create(model_name="Fine", colour="blue")
    assert set(raised.value.errors) == {"colour"}
    with pytest.raises(Invalid, match="names no field"):
        client.models.update(client.models.all()[0].id)
    with pytest.raises(Invalid) as raised:
        client.models.search(model_nmae="Model A")  # a typo never widens a search
    assert "model_nmae" in raised.value.errors


def test_unauthorized_without_or_with_a_wrong_token(server):
    for token in (None, "not-a-token"):
        with Client(server.url, token or "", **FAST_RETRIES) as client:
            with pytest.raises(Unauthorized) as raised:
                client.models.all()
            assert raised.value.status_code == 401


def test_forbidden_for_a_read_only_token(reader_client, server):
    assert reader_client.models.get(server.model).model_name == "Model A"
    with pytest.raises(Forbidden) as raised:
        reader_client.models.create(model_name="Not allowed")
    assert raised.value.status_code == 403
    with pytest.raises(Forbidden):
        reader_client.models.delete(server.model)


def test_not_found_for_an_unknown_or_malformed_id(client):
    for bad in (uuid.uuid4(), "not-a-uuid"):
        with pytest.raises(NotFound) as raised:
            client.sites.get(bad)
        assert raised.value.status_code == 404
        with pytest.raises(NotFound):
            client.sites.update(bad, site_city="X")
        with pytest.raises(NotFound):
            client.sites.delete(bad)


def test_conflict_names_the_existing_object(client, server):
    with pytest.raises(Conflict) as raised:
        client.models.create(model_name="Model A")
    assert raised.value.status_code == 409
    assert raised.value.existing_id == server.model


def test_deleting_a_site_that_records_use_is_a_conflict(client, server):
    client.records.add(
        server.model, timestamp="2024-06-01T10:00:00Z", model_data=1,
        experiment_name="Experiment A", season_name="Season 1A", site_name="Site A1",
    )
    site = client.sites.search(site_name="Site A1")[0]
    with pytest.raises(Conflict):
        client.sites.delete(site.id)


@pytest.mark.needs_server_formats("paging")
def test_lists_take_limit_and_offset(client):
    names = [model.model_name for model in client.models.all()]
    assert [m.model_name for m in client.models.all(limit=1)] == names[:1]
    assert [m.model_name for m in client.models.all(limit=1, offset=1)] == names[1:2]
    assert client.models.all(offset=len(names)) == []  # a page past the end is the 404
    assert [m.model_name for m in client.models.search(limit=1, model_name="Model B")] == [
        "Model B"
    ]


@pytest.mark.needs_server_formats("experiment_lists")
def test_objects_linked_to_an_experiment(client, server):
    seasons = client.experiments.seasons(server.experiment)
    assert seasons and all(isinstance(s, Season) for s in seasons)
    assert {s.experiment_id for s in seasons} == {server.experiment}
    assert server.model in {m.id for m in client.experiments.models(server.experiment)}
    assert isinstance(client.experiments.sites(server.experiment), list)
    lonely = client.experiments.create(experiment_name="Nothing linked")
    assert client.experiments.datasets(lonely.id) == []
    with pytest.raises(NotFound):
        client.experiments.seasons(uuid.uuid4())
