"""The admin, where curators manage the catalogue: every page renders, search finds, and only
staff get in."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from rest_framework.authtoken.models import Token, TokenProxy

from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site
from tests.factories import (
    DatasetFactory,
    ExperimentFactory,
    MLModelFactory,
    ModelRunFactory,
    SeasonFactory,
    SiteFactory,
)

pytestmark = pytest.mark.django_db

#: Records have their own admin, tested with the records app.
REGISTERED = sorted(
    (model for model in admin.site._registry if model._meta.app_label != "records"),
    key=lambda model: model._meta.label,
)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """admin_user has a password; hashing it the production way is needlessly slow here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def full_object(model_class, admin_user):
    """A row of ``model_class`` with its relations filled, so that every widget has data."""
    if model_class is Experiment:
        experiment = ExperimentFactory(
            experiment_info={"crop": "maize"}, experiment_start_date="2024-01-01"
        )
        SeasonFactory(experiment=experiment)
        return experiment
    if model_class is Season:
        return SeasonFactory(season_info={"k": [1, 2]}, season_start_date="2024-03-01")
    if model_class is Site:
        site = SiteFactory(site_city="Davis", site_country="United States")
        site.experiments.add(ExperimentFactory())
        return site
    if model_class is Dataset:
        dataset = DatasetFactory(collection_date="2024-06-01")
        dataset.experiments.add(ExperimentFactory())
        return dataset
    if model_class is MLModel:
        model = MLModelFactory(model_info={"task": "detect"})
        model.experiments.add(ExperimentFactory())
        model.datasets.add(DatasetFactory())
        ModelRunFactory(model=model, model_run_info={"epochs": 3})
        return model
    if model_class is ModelRun:
        return ModelRunFactory(model_run_info={"epochs": 3})
    if model_class is Group:
        group = Group.objects.create(name="curators")
        group.permissions.add(Permission.objects.get(codename="view_site"))
        return group
    if model_class is get_user_model():
        return admin_user
    if model_class is TokenProxy:
        Token.objects.create(user=admin_user)
        return TokenProxy.objects.get(user=admin_user)
    pytest.fail(f"No test object for {model_class._meta.label}: add one to full_object().")


def admin_url(model_class, view: str, *args) -> str:
    return reverse(
        f"admin:{model_class._meta.app_label}_{model_class._meta.model_name}_{view}", args=args
    )


@pytest.mark.parametrize("model_class", REGISTERED, ids=lambda m: m._meta.label)
def test_changelist_renders_with_a_row(admin_client, admin_user, model_class):
    obj = full_object(model_class, admin_user)
    response = admin_client.get(admin_url(model_class, "changelist"))
    assert response.status_code == 200
    assert obj.pk in [row.pk for row in response.context["cl"].result_list]


@pytest.mark.parametrize("model_class", REGISTERED, ids=lambda m: m._meta.label)
def test_add_form_renders(admin_client, model_class):
    response = admin_client.get(admin_url(model_class, "add"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {}


@pytest.mark.parametrize("model_class", REGISTERED, ids=lambda m: m._meta.label)
def test_change_form_renders(admin_client, admin_user, model_class):
    obj = full_object(model_class, admin_user)
    response = admin_client.get(admin_url(model_class, "change", obj.pk))
    assert response.status_code == 200
    assert response.context["original"].pk == obj.pk


@pytest.mark.parametrize(
    "model_class",
    [m for m in REGISTERED if m._meta.app_label == "models_api"],
    ids=lambda m: m._meta.label,
)
def test_delete_confirmation_renders(admin_client, admin_user, model_class):
    obj = full_object(model_class, admin_user)
    response = admin_client.get(admin_url(model_class, "delete", obj.pk))
    assert response.status_code == 200


def test_admin_index_lists_the_catalogue(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    listed = {
        model["object_name"] for app in response.context["app_list"] for model in app["models"]
    }
    assert {"Experiment", "Season", "Site", "Dataset", "MLModel", "ModelRun"} <= listed


# --- Search ----------------------------------------------------------------------------------


def search(admin_client, model_class, term: str) -> set:
    response = admin_client.get(admin_url(model_class, "changelist"), {"q": term})
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_search_experiments_by_name(admin_client):
    wanted = ExperimentFactory(experiment_name="Maize trial")
    ExperimentFactory(experiment_name="Wheat trial")
    assert search(admin_client, Experiment, "maize") == {wanted.pk}


def test_search_seasons_by_name_or_experiment(admin_client):
    maize = ExperimentFactory(experiment_name="Maize trial")
    spring = SeasonFactory(experiment=maize, season_name="Spring")
    autumn = SeasonFactory(
        experiment=ExperimentFactory(experiment_name="Wheat"), season_name="Autumn"
    )
    assert search(admin_client, Season, "spring") == {spring.pk}
    assert search(admin_client, Season, "wheat") == {autumn.pk}


def test_search_sites_by_name_city_state_or_country(admin_client):
    davis = SiteFactory(site_name="Plot 1", site_city="Davis", site_state="CA", site_country="USA")
    ames = SiteFactory(site_name="Plot 2", site_city="Ames", site_state="IA", site_country="USA")
    assert search(admin_client, Site, "plot 1") == {davis.pk}
    assert search(admin_client, Site, "ames") == {ames.pk}
    assert search(admin_client, Site, "CA") == {davis.pk}
    assert search(admin_client, Site, "usa") == {davis.pk, ames.pk}


def test_search_datasets_by_name(admin_client):
    wanted = DatasetFactory(dataset_name="Drone June")
    DatasetFactory(dataset_name="Tractor July")
    assert search(admin_client, Dataset, "drone") == {wanted.pk}


def test_search_models_by_name_or_url(admin_client):
    yolo = MLModelFactory(model_name="Yolo", model_url="s3://models/yolo.pt")
    unet = MLModelFactory(model_name="Unet", model_url="hf://org/segmenter")
    assert search(admin_client, MLModel, "yolo") == {yolo.pk}
    assert search(admin_client, MLModel, "segmenter") == {unet.pk}


def test_search_runs_by_model_name(admin_client):
    run = ModelRunFactory(model=MLModelFactory(model_name="Yolo"))
    ModelRunFactory(model=MLModelFactory(model_name="Unet"))
    assert search(admin_client, ModelRun, "yolo") == {run.pk}


def test_search_with_no_match_renders_an_empty_list(admin_client):
    ExperimentFactory(experiment_name="Maize trial")
    assert search(admin_client, Experiment, "nothing like this") == set()


def test_changelist_filters_render(admin_client):
    experiment = ExperimentFactory()
    season = SeasonFactory(experiment=experiment)
    SeasonFactory()
    response = admin_client.get(
        admin_url(Season, "changelist"), {"experiment__id__exact": experiment.pk}
    )
    assert response.status_code == 200
    assert [row.pk for row in response.context["cl"].result_list] == [season.pk]


def test_season_experiment_autocomplete(admin_client):
    ExperimentFactory(experiment_name="Maize trial")
    ExperimentFactory(experiment_name="Wheat trial")
    response = admin_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "models_api",
            "model_name": "season",
            "field_name": "experiment",
            "term": "mai",
        },
    )
    assert response.status_code == 200
    assert [item["text"] for item in response.json()["results"]] == ["Maize trial"]


@pytest.mark.parametrize(
    "path, params",
    [
        pytest.param("/admin/models_api/experiment/", {"q": "a\x00"}, id="search"),
        pytest.param("/admin/auth/user/", {"q": "\x00"}, id="user-search"),
    ],
)
def test_nul_character_in_an_admin_search_is_not_a_server_error(admin_client, path, params):
    admin_client.raise_request_exception = False
    ExperimentFactory(experiment_name="Maize trial")
    assert admin_client.get(path, params).status_code == 400  # refused before any view


@pytest.mark.parametrize(
    "path, params",
    [
        pytest.param("/admin/models_api/site/", {"site_country": "a\x00"}, id="list-filter"),
        pytest.param(
            "/admin/autocomplete/",
            {
                "app_label": "models_api",
                "model_name": "season",
                "field_name": "experiment",
                "term": "a\x00",
            },
            id="autocomplete",
        ),
    ],
)
def test_nul_character_in_an_admin_query_is_not_a_server_error(admin_client, path, params):
    admin_client.raise_request_exception = False
    SiteFactory(site_country="USA")
    ExperimentFactory(experiment_name="Maize trial")
    assert admin_client.get(path, params).status_code == 400  # refused before any view


# --- Editing ---------------------------------------------------------------------------------


def test_change_form_shows_json_indented(admin_client):
    experiment = ExperimentFactory(experiment_info={"crop": "maize"})
    response = admin_client.get(admin_url(Experiment, "change", experiment.pk))
    assert "{\n  &quot;crop&quot;: &quot;maize&quot;\n}" in response.content.decode()


def test_add_experiment_through_the_admin(admin_client):
    response = admin_client.post(
        admin_url(Experiment, "add"),
        {
            "experiment_name": "Curated",
            "experiment_info": '{"crop": "maize"}',
            "experiment_start_date": "2024-01-01",
            "experiment_end_date": "",
            "seasons-TOTAL_FORMS": "0",
            "seasons-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    experiment = Experiment.objects.get(experiment_name="Curated")
    assert experiment.experiment_info == {"crop": "maize"}


def test_invalid_json_in_the_admin_is_a_form_error(admin_client):
    response = admin_client.post(
        admin_url(Experiment, "add"),
        {
            "experiment_name": "Curated",
            "experiment_info": "{not json",
            "seasons-TOTAL_FORMS": "0",
            "seasons-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "experiment_info" in response.context["adminform"].form.errors
    assert not Experiment.objects.exists()


# --- Who gets in -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/admin/", "/admin/models_api/experiment/", "/admin/models_api/mlmodel/add/"]
)
def test_non_staff_user_is_redirected_to_the_login_page(client, path):
    user = get_user_model().objects.create_user("visitor")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="models_api"))
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert f"next={path}" in response["Location"]


def test_anonymous_visitor_is_redirected_to_the_login_page(client):
    response = client.get("/admin/models_api/site/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_login_page_renders(client):
    assert client.get("/admin/login/").status_code == 200


def test_staff_user_sees_only_what_their_permissions_allow(client):
    user = get_user_model().objects.create_user("clerk", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_site"))
    client.force_login(user)
    assert client.get("/admin/models_api/site/").status_code == 200
    assert client.get("/admin/models_api/experiment/").status_code == 403
    assert client.get("/admin/models_api/site/add/").status_code == 403
