"""/api/experiments, /api/seasons, /api/sites: the catalogue that records are tied to."""

from __future__ import annotations

import uuid

import pytest
from django.utils.dateparse import parse_datetime

from models_api.models import Dataset, Experiment, MLModel, Season, Site
from tests.conftest import record_body
from tests.factories import (
    DatasetFactory,
    ExperimentFactory,
    MLModelFactory,
    SeasonFactory,
    SiteFactory,
)
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


# --- GET /all --------------------------------------------------------------------------------


def test_all_experiments_ordered_by_name(api):
    for name in ["Experiment B", "Experiment C", "Experiment A"]:
        ExperimentFactory(experiment_name=name)
    response = api.get("/api/experiments/all")
    assert response.status_code == 200
    names = [e["experiment_name"] for e in response.json()]
    assert names == ["Experiment A", "Experiment B", "Experiment C"]


def test_all_seasons_ordered_by_name_across_experiments(api, experiment):
    other = ExperimentFactory(experiment_name="Experiment B")
    SeasonFactory(experiment=other, season_name="Season 2")
    SeasonFactory(experiment=experiment, season_name="Season 3")
    SeasonFactory(experiment=experiment, season_name="Season 1")
    response = api.get("/api/seasons/all")
    assert response.status_code == 200
    assert [s["season_name"] for s in response.json()] == ["Season 1", "Season 2", "Season 3"]


def test_all_sites_ordered_by_name(api):
    for name in ["Site B1", "Site A2", "Site A1"]:
        SiteFactory(site_name=name)
    response = api.get("/api/sites/all")
    assert response.status_code == 200
    assert [s["site_name"] for s in response.json()] == ["Site A1", "Site A2", "Site B1"]


@pytest.mark.parametrize(
    "path, plural",
    [
        pytest.param("/api/experiments/all", "experiments", id="experiments"),
        pytest.param("/api/seasons/all", "seasons", id="seasons"),
        pytest.param("/api/sites/all", "sites", id="sites"),
    ],
)
def test_all_when_empty_is_404(api, path, plural):
    body = assert_error(api.get(path), 404)
    assert plural in body["detail"]


# --- The objects -----------------------------------------------------------------------------


def test_experiment_object_has_the_contract_fields(api):
    experiment = ExperimentFactory(
        experiment_name="Trial",
        experiment_info={"crop": "maize"},
        experiment_start_date="2024-03-01",
        experiment_end_date="2024-09-30",
    )
    body = api.get(f"/api/experiments/id/{experiment.id}").json()
    assert body == {
        "id": str(experiment.id),
        "experiment_name": "Trial",
        "experiment_info": {"crop": "maize"},
        "experiment_start_date": "2024-03-01",
        "experiment_end_date": "2024-09-30",
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")


def test_season_object_names_its_experiment(api, season, experiment):
    body = api.get(f"/api/seasons/id/{season.id}").json()
    assert set(body) == {
        "id",
        "season_name",
        "season_info",
        "season_start_date",
        "season_end_date",
        "experiment_id",
        "experiment_name",
        "created_at",
        "updated_at",
    }
    assert body["experiment_id"] == str(experiment.id)
    assert body["experiment_name"] == "Experiment A"
    assert body["season_name"] == "Season 1A"


def test_site_object_has_the_contract_fields(api):
    site = SiteFactory(
        site_name="Site A1",
        site_city="Davis",
        site_state="CA",
        site_country="United States",
        site_info={"plots": 12},
    )
    body = api.get(f"/api/sites/id/{site.id}").json()
    assert body == {
        "id": str(site.id),
        "site_name": "Site A1",
        "site_city": "Davis",
        "site_state": "CA",
        "site_country": "United States",
        "site_info": {"plots": 12},
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
    }


@pytest.mark.parametrize("kind", ["experiments", "seasons", "sites"])
def test_get_unknown_id_is_404(api, kind):
    missing = uuid.uuid4()
    body = assert_error(api.get(f"/api/{kind}/id/{missing}"), 404)
    assert str(missing) in body["detail"]


@pytest.mark.parametrize("kind", ["experiments", "seasons", "sites"])
@pytest.mark.parametrize("bad_id", ["123", "not-a-uuid", "a.b"])
def test_get_malformed_id_is_404(api, kind, bad_id):
    assert_error(api.get(f"/api/{kind}/id/{bad_id}"), 404)


# --- Search ----------------------------------------------------------------------------------


def test_search_experiments_by_exact_name(api):
    ExperimentFactory(experiment_name="Trial")
    ExperimentFactory(experiment_name="Trial 2")
    ExperimentFactory(experiment_name="trial")
    response = api.get("/api/experiments", {"experiment_name": "Trial"})
    assert response.status_code == 200
    assert [e["experiment_name"] for e in response.json()] == ["Trial"]


def test_search_experiments_without_parameters_returns_everything(api):
    ExperimentFactory(experiment_name="b")
    ExperimentFactory(experiment_name="a")
    response = api.get("/api/experiments")
    assert [e["experiment_name"] for e in response.json()] == ["a", "b"]


def test_search_experiments_no_match_is_404(api, experiment):
    assert_error(api.get("/api/experiments", {"experiment_name": "Experiment"}), 404)


def test_search_seasons_by_name_finds_it_in_every_experiment(api, experiment):
    other = ExperimentFactory(experiment_name="Experiment B")
    in_a = SeasonFactory(experiment=experiment, season_name="Spring")
    in_b = SeasonFactory(experiment=other, season_name="Spring")
    SeasonFactory(experiment=experiment, season_name="Summer")
    response = api.get("/api/seasons", {"season_name": "Spring"})
    assert response.status_code == 200
    assert sorted(s["id"] for s in response.json()) == sorted([str(in_a.id), str(in_b.id)])


def test_search_seasons_by_experiment(api, experiment):
    other = ExperimentFactory(experiment_name="Experiment B")
    SeasonFactory(experiment=experiment, season_name="Spring")
    SeasonFactory(experiment=experiment, season_name="Summer")
    SeasonFactory(experiment=other, season_name="Spring")
    response = api.get("/api/seasons", {"experiment_name": "Experiment A"})
    assert response.status_code == 200
    found = [(s["season_name"], s["experiment_name"]) for s in response.json()]
    assert found == [("Spring", "Experiment A"), ("Summer", "Experiment A")]


def test_search_seasons_by_name_and_experiment(api, experiment):
    other = ExperimentFactory(experiment_name="Experiment B")
    SeasonFactory(experiment=experiment, season_name="Spring")
    wanted = SeasonFactory(experiment=other, season_name="Spring")
    SeasonFactory(experiment=other, season_name="Summer")
    response = api.get("/api/seasons", {"season_name": "Spring", "experiment_name": "Experiment B"})
    assert response.status_code == 200
    assert [s["id"] for s in response.json()] == [str(wanted.id)]


def test_search_seasons_of_an_experiment_without_that_season_is_404(api, season):
    ExperimentFactory(experiment_name="Experiment B")
    response = api.get(
        "/api/seasons", {"season_name": "Season 1A", "experiment_name": "Experiment B"}
    )
    assert_error(response, 404)


def test_search_seasons_by_unknown_experiment_matches_nothing(api, season):
    """A name in a query's filters that exists nowhere is not an error: it matches nothing
    (the list's 404 for an empty result)."""
    assert_error(api.get("/api/seasons", {"experiment_name": "Experiment Z"}), 404)


def test_search_sites_by_exact_name(api):
    SiteFactory(site_name="Site A1")
    SiteFactory(site_name="Site A10")
    response = api.get("/api/sites", {"site_name": "Site A1"})
    assert response.status_code == 200
    assert [s["site_name"] for s in response.json()] == ["Site A1"]


def test_search_sites_no_match_is_404(api, site):
    assert_error(api.get("/api/sites", {"site_name": "Site Z9"}), 404)


@pytest.mark.parametrize(
    "path, params",
    [
        pytest.param("/api/experiments", {"site_name": "x"}, id="experiments-by-site"),
        pytest.param("/api/seasons", {"site_name": "x"}, id="seasons-by-site"),
        pytest.param("/api/sites", {"experiment_name": "Experiment A"}, id="sites-by-experiment"),
        pytest.param("/api/experiments", {"experiment_info": "{}"}, id="experiments-by-info"),
    ],
)
def test_search_by_a_parameter_the_endpoint_does_not_take_is_400_naming_it(
    api, experiment, season, site, path, params
):
    body = assert_error(api.get(path, params), 400)
    assert set(params) <= set(body["errors"])


# --- POST / ----------------------------------------------------------------------------------


def test_create_experiment(api):
    response = api.post(
        "/api/experiments",
        {
            "experiment_name": "Trial 2026",
            "experiment_info": {"crop": "wheat"},
            "experiment_start_date": "2026-03-01",
            "experiment_end_date": "2026-10-31",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    experiment = Experiment.objects.get(pk=body["id"])
    assert experiment.experiment_name == "Trial 2026"
    assert experiment.experiment_info == {"crop": "wheat"}
    assert str(experiment.experiment_start_date) == "2026-03-01"
    assert body["experiment_end_date"] == "2026-10-31"
    assert body["created_at"].endswith("Z")


def test_create_experiment_defaults(api):
    body = api.post("/api/experiments", {"experiment_name": "Bare"}, format="json").json()
    assert body["experiment_info"] == {}
    assert body["experiment_start_date"] is None
    assert body["experiment_end_date"] is None


def test_create_experiment_then_find_it(api):
    created = api.post("/api/experiments", {"experiment_name": "Findable"}, format="json").json()
    assert api.get(f"/api/experiments/id/{created['id']}").json() == created
    assert api.get("/api/experiments", {"experiment_name": "Findable"}).json() == [created]


def test_duplicate_experiment_is_409_with_the_existing_id(api, experiment):
    response = api.post("/api/experiments", {"experiment_name": "Experiment A"}, format="json")
    body = assert_error(response, 409)
    assert body["id"] == str(experiment.id)
    assert Experiment.objects.count() == 1


def test_create_season_in_an_experiment(api, experiment):
    response = api.post(
        "/api/seasons",
        {
            "season_name": "Season 1A",
            "experiment_name": "Experiment A",
            "season_info": {"planting": "early"},
            "season_start_date": "2024-04-01",
            "season_end_date": "2024-04-30",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["experiment_id"] == str(experiment.id)
    assert body["experiment_name"] == "Experiment A"
    assert body["season_info"] == {"planting": "early"}
    season = Season.objects.get(pk=body["id"])
    assert season.experiment == experiment
    assert str(season.season_end_date) == "2024-04-30"


def test_create_season_defaults(api, experiment):
    body = api.post(
        "/api/seasons", {"season_name": "S", "experiment_name": "Experiment A"}, format="json"
    ).json()
    assert body["season_info"] == {}
    assert body["season_start_date"] is None and body["season_end_date"] is None


def test_create_season_without_experiment_is_400(api, experiment):
    body = assert_error(api.post("/api/seasons", {"season_name": "S"}, format="json"), 400)
    assert "experiment_name" in body["errors"]
    assert not Season.objects.exists()


def test_create_season_in_unknown_experiment_is_400_naming_it(api, experiment):
    response = api.post(
        "/api/seasons", {"season_name": "S", "experiment_name": "Experiment Z"}, format="json"
    )
    body = assert_error(response, 400)
    assert "Experiment Z" in body["detail"]
    assert "experiment_name" in body["errors"]
    assert not Season.objects.exists()


def test_same_season_name_is_allowed_in_two_experiments(api, season):
    other = ExperimentFactory(experiment_name="Experiment B")
    response = api.post(
        "/api/seasons",
        {"season_name": "Season 1A", "experiment_name": "Experiment B"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["experiment_id"] == str(other.id)
    assert Season.objects.filter(season_name="Season 1A").count() == 2


def test_duplicate_season_in_the_same_experiment_is_409_with_the_existing_id(api, season):
    response = api.post(
        "/api/seasons",
        {"season_name": "Season 1A", "experiment_name": "Experiment A"},
        format="json",
    )
    body = assert_error(response, 409)
    assert body["id"] == str(season.id)
    assert Season.objects.count() == 1


def test_create_site(api):
    response = api.post(
        "/api/sites",
        {
            "site_name": "Site B2",
            "site_city": "Ames",
            "site_state": "IA",
            "site_country": "United States",
            "site_info": {"soil": "loam"},
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    site = Site.objects.get(pk=response.json()["id"])
    assert (site.site_name, site.site_city, site.site_state, site.site_country) == (
        "Site B2",
        "Ames",
        "IA",
        "United States",
    )
    assert site.site_info == {"soil": "loam"}


def test_create_site_defaults(api):
    body = api.post("/api/sites", {"site_name": "Bare"}, format="json").json()
    assert body["site_city"] is None
    assert body["site_state"] is None
    assert body["site_country"] is None
    assert body["site_info"] == {}


def test_duplicate_site_is_409_with_the_existing_id(api, site):
    body = assert_error(api.post("/api/sites", {"site_name": "Site A1"}, format="json"), 409)
    assert body["id"] == str(site.id)
    assert Site.objects.count() == 1


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({}, "experiment_name", id="missing-name"),
        pytest.param({"experiment_name": ""}, "experiment_name", id="empty-name"),
        pytest.param({"experiment_name": "x" * 256}, "experiment_name", id="name-too-long"),
        pytest.param({"experiment_name": 7}, "experiment_name", id="name-a-number"),
        pytest.param({"experiment_name": None}, "experiment_name", id="name-null"),
        pytest.param({"experiment_name": "a\x00b"}, "experiment_name", id="nul-in-name"),
        pytest.param(
            {"experiment_name": "e", "experiment_info": [1]}, "experiment_info", id="info-a-list"
        ),
        pytest.param(
            {"experiment_name": "e", "experiment_info": "{}"}, "experiment_info", id="info-a-string"
        ),
        pytest.param(
            {"experiment_name": "e", "experiment_info": {"k": "\x00"}},
            "experiment_info",
            id="nul-in-info",
        ),
        pytest.param(
            {"experiment_name": "e", "experiment_start_date": "2024-02-30"},
            "experiment_start_date",
            id="impossible-date",
        ),
        pytest.param(
            {"experiment_name": "e", "experiment_start_date": "01/03/2024"},
            "experiment_start_date",
            id="not-iso-date",
        ),
        pytest.param(
            {"experiment_name": "e", "experiment_start_date": "2024-03-01T00:00:00Z"},
            "experiment_start_date",
            id="datetime-not-date",
        ),
        pytest.param(
            {"experiment_name": "e", "experiment_start_date": 20240301},
            "experiment_start_date",
            id="date-a-number",
        ),
        pytest.param(
            {
                "experiment_name": "e",
                "experiment_start_date": "2024-05-01",
                "experiment_end_date": "2024-04-30",
            },
            "experiment_end_date",
            id="end-before-start",
        ),
        pytest.param({"experiment_name": "e", "colour": "red"}, "colour", id="unknown-field"),
        pytest.param({"experiment_name": "e", "id": str(uuid.uuid4())}, "id", id="read-only-id"),
        pytest.param(
            {"experiment_name": "e", "created_at": "2024-01-01T00:00:00Z"},
            "created_at",
            id="read-only-created-at",
        ),
    ],
)
def test_create_experiment_bad_input_is_400(api, body, field):
    response = api.post("/api/experiments", body, format="json")
    payload = assert_error(response, 400)
    assert field in payload["errors"]
    assert not Experiment.objects.exists()


def test_experiment_starting_and_ending_the_same_day_is_accepted(api):
    response = api.post(
        "/api/experiments",
        {
            "experiment_name": "One day",
            "experiment_start_date": "2024-05-01",
            "experiment_end_date": "2024-05-01",
        },
        format="json",
    )
    assert response.status_code == 200, response.content


def test_surrounding_white_space_is_removed_from_names(api, experiment):
    response = api.post("/api/sites", {"site_name": "  Site Z1 "}, format="json")
    assert response.status_code == 200
    assert response.json()["site_name"] == "Site Z1"
    response = api.post("/api/experiments", {"experiment_name": " Experiment A "}, format="json")
    assert assert_error(response, 409)["id"] == str(experiment.id)


@pytest.mark.parametrize(
    "kind, field",
    [
        pytest.param("experiments", "experiment_name", id="experiment"),
        pytest.param("sites", "site_name", id="site"),
    ],
)
def test_blank_name_is_400(api, kind, field):
    response = api.post(f"/api/{kind}", {field: "   "}, format="json")
    assert field in assert_error(response, 400)["errors"]


def test_names_differing_only_in_case_are_different_objects(api, experiment):
    response = api.post("/api/experiments", {"experiment_name": "experiment a"}, format="json")
    assert response.status_code == 200
    assert Experiment.objects.count() == 2


def test_experiment_name_of_255_characters_is_accepted(api):
    response = api.post("/api/experiments", {"experiment_name": "e" * 255}, format="json")
    assert response.status_code == 200
    assert response.json()["experiment_name"] == "e" * 255


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"experiment_name": "Experiment A"}, "season_name", id="missing-name"),
        pytest.param(
            {"season_name": "", "experiment_name": "Experiment A"}, "season_name", id="empty-name"
        ),
        pytest.param(
            {"season_name": "s" * 256, "experiment_name": "Experiment A"},
            "season_name",
            id="name-too-long",
        ),
        pytest.param(
            {"season_name": "a\x00", "experiment_name": "Experiment A"},
            "season_name",
            id="nul-in-name",
        ),
        pytest.param(
            {"season_name": "S", "experiment_name": 5}, "experiment_name", id="experiment-a-number"
        ),
        pytest.param(
            {"season_name": "S", "experiment_name": "Exp\x00"},
            "experiment_name",
            id="nul-in-experiment",
        ),
        pytest.param(
            {"season_name": "S", "experiment_name": "Experiment A", "season_info": []},
            "season_info",
            id="info-a-list",
        ),
        pytest.param(
            {
                "season_name": "S",
                "experiment_name": "Experiment A",
                "season_start_date": "2024-13-01",
            },
            "season_start_date",
            id="impossible-date",
        ),
        pytest.param(
            {
                "season_name": "S",
                "experiment_name": "Experiment A",
                "season_start_date": "2024-06-02",
                "season_end_date": "2024-06-01",
            },
            "season_end_date",
            id="end-before-start",
        ),
        pytest.param(
            {
                "season_name": "S",
                "experiment_name": "Experiment A",
                "experiment_id": str(uuid.uuid4()),
            },
            "experiment_id",
            id="read-only-experiment-id",
        ),
        pytest.param(
            {"season_name": "S", "experiment_name": "Experiment A", "site_name": "x"},
            "site_name",
            id="unknown-field",
        ),
    ],
)
def test_create_season_bad_input_is_400(api, experiment, body, field):
    payload = assert_error(api.post("/api/seasons", body, format="json"), 400)
    assert field in payload["errors"]
    assert not Season.objects.exists()


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({}, "site_name", id="missing-name"),
        pytest.param({"site_name": ""}, "site_name", id="empty-name"),
        pytest.param({"site_name": "s" * 256}, "site_name", id="name-too-long"),
        pytest.param({"site_name": "x\x00"}, "site_name", id="nul-in-name"),
        pytest.param({"site_name": "s", "site_city": "c" * 256}, "site_city", id="city-too-long"),
        pytest.param({"site_name": "s", "site_city": 12}, "site_city", id="city-a-number"),
        pytest.param({"site_name": "s", "site_state": "\x00"}, "site_state", id="nul-in-state"),
        pytest.param({"site_name": "s", "site_info": "x"}, "site_info", id="info-a-string"),
        pytest.param(
            {"site_name": "s", "experiment_name": "Experiment A"},
            "experiment_name",
            id="unknown-field",
        ),
    ],
)
def test_create_site_bad_input_is_400(api, body, field):
    payload = assert_error(api.post("/api/sites", body, format="json"), 400)
    assert field in payload["errors"]
    assert not Site.objects.exists()


# --- PATCH /id/{id} --------------------------------------------------------------------------


def test_patch_experiment_replaces_only_the_fields_sent(api):
    experiment = ExperimentFactory(
        experiment_name="Trial", experiment_info={"v": 1}, experiment_start_date="2024-01-01"
    )
    response = api.patch(
        f"/api/experiments/id/{experiment.id}", {"experiment_info": {"v": 2}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["experiment_info"] == {"v": 2}
    experiment.refresh_from_db()
    assert experiment.experiment_info == {"v": 2}
    assert experiment.experiment_name == "Trial"
    assert str(experiment.experiment_start_date) == "2024-01-01"


def test_patch_experiment_rename(api, experiment):
    response = api.patch(
        f"/api/experiments/id/{experiment.id}", {"experiment_name": "Renamed"}, format="json"
    )
    assert response.status_code == 200
    experiment.refresh_from_db()
    assert experiment.experiment_name == "Renamed"


def test_patch_experiment_moves_updated_at(api, experiment):
    before = api.get(f"/api/experiments/id/{experiment.id}").json()
    after = api.patch(
        f"/api/experiments/id/{experiment.id}", {"experiment_info": {"x": 1}}, format="json"
    ).json()
    assert after["created_at"] == before["created_at"]
    assert parse_datetime(after["updated_at"]) > parse_datetime(before["updated_at"])


def test_patch_experiment_can_clear_a_date(api):
    experiment = ExperimentFactory(experiment_start_date="2024-01-01")
    response = api.patch(
        f"/api/experiments/id/{experiment.id}", {"experiment_start_date": None}, format="json"
    )
    assert response.status_code == 200
    experiment.refresh_from_db()
    assert experiment.experiment_start_date is None


def test_patch_experiment_end_before_the_stored_start_is_400(api):
    experiment = ExperimentFactory(experiment_start_date="2024-05-01")
    response = api.patch(
        f"/api/experiments/id/{experiment.id}",
        {"experiment_end_date": "2024-04-01"},
        format="json",
    )
    assert "experiment_end_date" in assert_error(response, 400)["errors"]
    experiment.refresh_from_db()
    assert experiment.experiment_end_date is None


def test_patch_experiment_onto_an_existing_name_is_409(api, experiment):
    other = ExperimentFactory(experiment_name="Experiment B")
    response = api.patch(
        f"/api/experiments/id/{other.id}", {"experiment_name": "Experiment A"}, format="json"
    )
    assert assert_error(response, 409)["id"] == str(experiment.id)
    other.refresh_from_db()
    assert other.experiment_name == "Experiment B"


def test_patch_experiment_to_its_own_name_is_accepted(api, experiment):
    response = api.patch(
        f"/api/experiments/id/{experiment.id}", {"experiment_name": "Experiment A"}, format="json"
    )
    assert response.status_code == 200


@pytest.mark.parametrize("kind", ["experiments", "seasons", "sites"])
def test_patch_with_an_empty_body_is_400(api, season, site, kind):
    obj = {"experiments": season.experiment, "seasons": season, "sites": site}[kind]
    assert_error(api.patch(f"/api/{kind}/id/{obj.id}", {}, format="json"), 400)


@pytest.mark.parametrize(
    "kind, body",
    [
        pytest.param("experiments", {"experiment_name": "x"}, id="experiments"),
        pytest.param("seasons", {"season_name": "x"}, id="seasons"),
        pytest.param("sites", {"site_name": "x"}, id="sites"),
    ],
)
def test_patch_unknown_id_is_404(api, kind, body):
    assert_error(api.patch(f"/api/{kind}/id/{uuid.uuid4()}", body, format="json"), 404)


@pytest.mark.parametrize(
    "body, field",
    [
        pytest.param({"experiment_name": ""}, "experiment_name", id="empty-name"),
        pytest.param({"experiment_name": None}, "experiment_name", id="null-name"),
        pytest.param({"experiment_info": None}, "experiment_info", id="null-info"),
        pytest.param({"experiment_info": [1]}, "experiment_info", id="info-a-list"),
        pytest.param({"experiment_start_date": "tomorrow"}, "experiment_start_date", id="bad-date"),
        pytest.param({"id": str(uuid.uuid4())}, "id", id="read-only-id"),
        pytest.param({"colour": "red"}, "colour", id="unknown-field"),
    ],
)
def test_patch_experiment_bad_input_is_400_and_changes_nothing(api, experiment, body, field):
    before = Experiment.objects.values().get(pk=experiment.pk)
    response = api.patch(f"/api/experiments/id/{experiment.id}", body, format="json")
    assert field in assert_error(response, 400)["errors"]
    assert Experiment.objects.values().get(pk=experiment.pk) == before


def test_patch_season_replaces_only_the_fields_sent(api, season):
    response = api.patch(
        f"/api/seasons/id/{season.id}",
        {"season_info": {"rain": "heavy"}, "season_start_date": "2024-04-01"},
        format="json",
    )
    assert response.status_code == 200, response.content
    season.refresh_from_db()
    assert season.season_info == {"rain": "heavy"}
    assert str(season.season_start_date) == "2024-04-01"
    assert season.season_name == "Season 1A"
    assert response.json()["experiment_name"] == "Experiment A"


def test_patch_season_cannot_move_it_to_another_experiment(api, season, experiment):
    ExperimentFactory(experiment_name="Experiment B")
    response = api.patch(
        f"/api/seasons/id/{season.id}", {"experiment_name": "Experiment B"}, format="json"
    )
    assert "experiment_name" in assert_error(response, 400)["errors"]
    season.refresh_from_db()
    assert season.experiment == experiment


def test_patch_season_naming_its_own_experiment_is_accepted(api, season):
    response = api.patch(
        f"/api/seasons/id/{season.id}",
        {"experiment_name": "Experiment A", "season_name": "Season 1A bis"},
        format="json",
    )
    assert response.status_code == 200, response.content
    season.refresh_from_db()
    assert season.season_name == "Season 1A bis"


def test_patch_season_in_unknown_experiment_is_400_naming_it(api, season):
    response = api.patch(
        f"/api/seasons/id/{season.id}", {"experiment_name": "Experiment Z"}, format="json"
    )
    assert "Experiment Z" in assert_error(response, 400)["detail"]


def test_patch_season_onto_a_name_used_in_its_experiment_is_409(api, season, experiment):
    other = SeasonFactory(experiment=experiment, season_name="Season 2A")
    response = api.patch(f"/api/seasons/id/{other.id}", {"season_name": "Season 1A"}, format="json")
    assert assert_error(response, 409)["id"] == str(season.id)
    other.refresh_from_db()
    assert other.season_name == "Season 2A"


def test_patch_season_onto_a_name_used_in_another_experiment_is_accepted(api, season):
    other = SeasonFactory(
        experiment=ExperimentFactory(experiment_name="Experiment B"), season_name="Season 1B"
    )
    response = api.patch(f"/api/seasons/id/{other.id}", {"season_name": "Season 1A"}, format="json")
    assert response.status_code == 200, response.content


def test_patch_season_end_before_the_stored_start_is_400(api, experiment):
    season = SeasonFactory(experiment=experiment, season_start_date="2024-06-01")
    response = api.patch(
        f"/api/seasons/id/{season.id}", {"season_end_date": "2024-05-31"}, format="json"
    )
    assert "season_end_date" in assert_error(response, 400)["errors"]


def test_patch_site_replaces_only_the_fields_sent(api):
    site = SiteFactory(site_name="Site A1", site_city="Davis", site_country="United States")
    response = api.patch(
        f"/api/sites/id/{site.id}", {"site_city": None, "site_state": "CA"}, format="json"
    )
    assert response.status_code == 200, response.content
    site.refresh_from_db()
    assert site.site_city is None
    assert site.site_state == "CA"
    assert site.site_country == "United States"
    assert site.site_name == "Site A1"


def test_patch_site_onto_an_existing_name_is_409(api, site):
    other = SiteFactory(site_name="Site A2")
    response = api.patch(f"/api/sites/id/{other.id}", {"site_name": "Site A1"}, format="json")
    assert assert_error(response, 409)["id"] == str(site.id)


# --- DELETE /id/{id} -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["experiments", "seasons", "sites"])
def test_delete_answers_the_id_and_deleted(api, season, site, kind):
    obj = {"experiments": season.experiment, "seasons": season, "sites": site}[kind]
    response = api.delete(f"/api/{kind}/id/{obj.id}")
    assert response.status_code == 200
    assert response.json() == {"id": str(obj.id), "deleted": True}
    assert not type(obj).objects.filter(pk=obj.pk).exists()
    assert_error(api.get(f"/api/{kind}/id/{obj.id}"), 404)
    assert_error(api.delete(f"/api/{kind}/id/{obj.id}"), 404)


def test_delete_experiment_deletes_its_seasons_and_links_but_not_the_linked_objects(
    api, experiment, season, model
):
    kept = ExperimentFactory(experiment_name="Experiment B")
    kept_season = SeasonFactory(experiment=kept, season_name="Season 1B")
    site = SiteFactory(site_name="Site A1")
    site.experiments.add(experiment, kept)
    dataset = DatasetFactory(dataset_name="Drone June")
    dataset.experiments.add(experiment)
    model.datasets.add(dataset)

    response = api.delete(f"/api/experiments/id/{experiment.id}")
    assert response.status_code == 200, response.content

    assert not Season.objects.filter(pk=season.pk).exists()
    assert Season.objects.filter(pk=kept_season.pk).exists()
    assert MLModel.objects.filter(pk=model.pk).exists()
    assert Site.objects.filter(pk=site.pk).exists()
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    assert list(model.experiments.all()) == []
    assert list(site.experiments.all()) == [kept]
    assert list(dataset.experiments.all()) == []
    assert list(model.datasets.all()) == [dataset]
    assert_error(api.get(f"/api/models/id/{model.id}/experiments"), 404)


def test_delete_season_keeps_its_experiment(api, season, experiment):
    assert api.delete(f"/api/seasons/id/{season.id}").status_code == 200
    assert Experiment.objects.filter(pk=experiment.pk).exists()


def test_delete_site_keeps_its_experiments(api, site, experiment):
    site.experiments.add(experiment)
    assert api.delete(f"/api/sites/id/{site.id}").status_code == 200
    assert Experiment.objects.filter(pk=experiment.pk).exists()


def test_deleted_name_can_be_used_again(api, experiment):
    api.delete(f"/api/experiments/id/{experiment.id}")
    response = api.post("/api/experiments", {"experiment_name": "Experiment A"}, format="json")
    assert response.status_code == 200
    assert response.json()["id"] != str(experiment.id)


@pytest.mark.parametrize("kind", ["experiments", "seasons", "sites"])
def test_delete_unknown_or_malformed_id_is_404(api, kind):
    assert_error(api.delete(f"/api/{kind}/id/not-a-uuid"), 404)
    assert_error(api.delete(f"/api/{kind}/id/{uuid.uuid4()}"), 404)


# --- GET /api/experiments/id/{id}/seasons, /sites, /datasets, /models --------------------------

EXPERIMENT_LISTS = ["seasons", "sites", "datasets", "models"]


@pytest.fixture
def linked(experiment):
    """Experiment A with three of each linked object (created out of name order), and
    Experiment B with objects of its own that no list of A shows."""
    other = ExperimentFactory(experiment_name="Experiment B")
    for name in ("C", "A", "B"):
        SeasonFactory(experiment=experiment, season_name=f"Season {name}")
        SiteFactory(site_name=f"Site {name}").experiments.add(experiment)
        DatasetFactory(dataset_name=f"Dataset {name}").experiments.add(experiment)
        MLModelFactory(model_name=f"Model {name}").experiments.add(experiment)
    SeasonFactory(experiment=other, season_name="Season A")  # same name, other experiment
    SeasonFactory(experiment=other, season_name="Season 0")
    SiteFactory(site_name="Site 0").experiments.add(other)
    DatasetFactory(dataset_name="Dataset 0").experiments.add(other)
    MLModelFactory(model_name="Model 0").experiments.add(other)
    SiteFactory(site_name="Site AB").experiments.add(experiment, other)  # linked to both
    SiteFactory(site_name="Site none")  # linked to neither
    return experiment


def test_experiment_seasons_are_its_own_in_the_order_of_seasons_all(api, linked):
    seasons = api.get(f"/api/experiments/id/{linked.id}/seasons").json()
    assert [s["season_name"] for s in seasons] == ["Season A", "Season B", "Season C"]
    assert {s["experiment_id"] for s in seasons} == {str(linked.id)}
    assert {s["experiment_name"] for s in seasons} == {"Experiment A"}
    everything = api.get("/api/seasons/all").json()
    assert seasons == [s for s in everything if s["experiment_id"] == str(linked.id)]


@pytest.mark.parametrize("kind", ["sites", "datasets", "models"])
def test_experiment_links_are_listed_in_the_order_of_their_all(api, linked, kind):
    name_field = {"sites": "site_name", "datasets": "dataset_name", "models": "model_name"}[kind]
    got = api.get(f"/api/experiments/id/{linked.id}/{kind}").json()
    singular = kind.removesuffix("s").capitalize()
    expected = [f"{singular} A", f"{singular} B", f"{singular} C"]
    if kind == "sites":
        expected.insert(1, "Site AB")
    assert [obj[name_field] for obj in got] == expected
    if kind != "datasets":  # datasets have no /all; their order is by name, as the model's
        everything = api.get(f"/api/{kind}/all").json()
        assert got == [obj for obj in everything if obj[name_field] in expected]


@pytest.mark.parametrize("kind", ["seasons", "sites", "models"])
def test_experiment_lists_hold_the_same_objects_as_their_own_endpoints(api, linked, kind):
    for obj in api.get(f"/api/experiments/id/{linked.id}/{kind}").json():
        assert api.get(f"/api/{kind}/id/{obj['id']}").json() == obj


@pytest.mark.parametrize("kind", EXPERIMENT_LISTS)
def test_experiment_list_of_an_experiment_with_none_is_404(api, linked, kind):
    bare = ExperimentFactory(experiment_name="Experiment without links")
    body = assert_error(api.get(f"/api/experiments/id/{bare.id}/{kind}"), 404)
    assert body["detail"] == f"No {kind} found."


@pytest.mark.parametrize("kind", EXPERIMENT_LISTS)
def test_experiment_list_of_an_unknown_experiment_is_404_naming_it(api, linked, kind):
    missing = str(uuid.uuid4())
    body = assert_error(api.get(f"/api/experiments/id/{missing}/{kind}"), 404)
    assert body["detail"] == f"No experiment has the id '{missing}'."
    assert_error(api.get(f"/api/experiments/id/not-a-uuid/{kind}"), 404)


@pytest.mark.parametrize("kind", EXPERIMENT_LISTS)
def test_experiment_lists_take_only_limit_and_offset(api, linked, kind):
    path = f"/api/experiments/id/{linked.id}/{kind}"
    full = api.get(path).json()
    assert api.get(path, {"limit": 1, "offset": 1}).json() == full[1:2]
    assert "season_name" in assert_error(api.get(path, {"season_name": "Season A"}), 400)["errors"]


@pytest.mark.parametrize("kind", EXPERIMENT_LISTS)
def test_experiment_lists_answer_only_get(api, linked, kind):
    path = f"/api/experiments/id/{linked.id}/{kind}"
    for method in ("post", "patch", "delete"):
        assert_error(getattr(api, method)(path, {}, format="json"), 405)


def test_deleting_an_experiment_empties_what_its_lists_showed(api, linked):
    assert api.delete(f"/api/experiments/id/{linked.id}").status_code == 200
    for kind in EXPERIMENT_LISTS:
        assert_error(api.get(f"/api/experiments/id/{linked.id}/{kind}"), 404)


def test_a_record_links_its_model_dataset_and_site_to_the_experiment_lists(api, demo):
    experiment = Experiment.objects.get(experiment_name="Experiment B")
    assert_error(api.get(f"/api/experiments/id/{experiment.id}/datasets"), 404)
    body = record_body(
        experiment_name="Experiment B", season_name="Season 2B", site_name="Site A3",
        dataset_name="Flight 9",
    )
    assert api.post(f"/api/models/id/{demo.id}/records", body, format="json").status_code == 200
    datasets = api.get(f"/api/experiments/id/{experiment.id}/datasets").json()
    assert [d["dataset_name"] for d in datasets] == ["Flight 9"]
    sites = api.get(f"/api/experiments/id/{experiment.id}/sites").json()
    assert "Site A3" in [s["site_name"] for s in sites]
    models = api.get(f"/api/experiments/id/{experiment.id}/models").json()
    assert [m["model_name"] for m in models] == ["Model A", "Model B"]
