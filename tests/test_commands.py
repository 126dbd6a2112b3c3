"""Management commands: ``load_demo``, ``create_api_user`` and DRF's ``drf_create_token``."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site

pytestmark = pytest.mark.django_db

CATALOGUE = (Experiment, Season, Site, MLModel, ModelRun, Dataset)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def state() -> dict:
    """Every row of the catalogue and every link, with ids and update times."""
    rows = {
        model_class.__name__: sorted(
            (str(row["id"]), repr(sorted(row.items()))) for row in model_class.objects.values()
        )
        for model_class in CATALOGUE
    }
    rows["model links"] = sorted(
        MLModel.experiments.through.objects.values_list("mlmodel_id", "experiment_id")
    )
    rows["site links"] = sorted(
        Site.experiments.through.objects.values_list("site_id", "experiment_id")
    )
    return rows


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


# --- load_demo -------------------------------------------------------------------------------


def test_load_demo_creates_the_demo_catalogue():
    run("load_demo")
    assert list(Experiment.objects.values_list("experiment_name", flat=True)) == [
        "Experiment A",
        "Experiment B",
    ]
    seasons = {
        (season.season_name, season.experiment.experiment_name)
        for season in Season.objects.select_related("experiment")
    }
    assert seasons == {
        (f"Season {n}{letter}", f"Experiment {letter}") for letter in "AB" for n in (1, 2, 3)
    }
    assert sorted(Site.objects.values_list("site_name", flat=True)) == [
        "Site A1",
        "Site A2",
        "Site A3",
        "Site B1",
        "Site B2",
        "Site B3",
    ]
    for letter in "AB":
        model = MLModel.objects.get(model_name=f"Model {letter}")
        assert list(model.experiments.values_list("experiment_name", flat=True)) == [
            f"Experiment {letter}"
        ]


def test_load_demo_data_is_served_by_the_api(api):
    run("load_demo")
    response = api.get("/api/seasons", {"experiment_name": "Experiment B"})
    assert [s["season_name"] for s in response.json()] == ["Season 1B", "Season 2B", "Season 3B"]
    model = api.get("/api/models", {"model_name": "Model A"}).json()[0]
    experiments = api.get(f"/api/models/id/{model['id']}/experiments").json()
    assert [e["experiment_name"] for e in experiments] == ["Experiment A"]


def test_load_demo_twice_changes_nothing():
    run("load_demo")
    first = state()
    output = run("load_demo")
    assert state() == first
    assert "0 objects created" in output


def test_load_demo_completes_a_partial_catalogue_without_touching_it():
    experiment = Experiment.objects.create(
        experiment_name="Experiment A", experiment_info={"mine": 1}
    )
    run("load_demo")
    experiment.refresh_from_db()
    assert experiment.experiment_info == {"mine": 1}
    assert Experiment.objects.count() == 2
    assert experiment.seasons.count() == 3


# --- create_api_user -------------------------------------------------------------------------


def test_create_api_user_prints_a_token_that_reads_and_writes(model):
    key = run("create_api_user", "alice").strip()
    assert re.fullmatch(r"[0-9a-f]{40}", key)
    client = token_client(key)
    assert client.get("/api/models/all").status_code == 200
    assert client.get(f"/api/models/id/{model.id}/runs").status_code == 404  # allowed, empty
    response = client.post("/api/experiments", {"experiment_name": "by alice"}, format="json")
    assert response.status_code == 200
    assert client.delete(f"/api/models/id/{model.id}").status_code == 200


def test_create_api_user_user_has_no_password_and_no_admin_access():
    run("create_api_user", "alice")
    user = get_user_model().objects.get(username="alice")
    assert not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser


def test_create_api_user_is_idempotent():
    first = run("create_api_user", "alice").strip()
    second = run("create_api_user", "alice").strip()
    assert first == second
    assert get_user_model().objects.filter(username="alice").count() == 1
    assert Token.objects.filter(user__username="alice").count() == 1


def test_create_api_user_read_only_reads_but_cannot_write(model):
    key = run("create_api_user", "bob", "--read-only").strip()
    client = token_client(key)
    assert client.get("/api/models/all").status_code == 200
    assert client.get("/api/experiments/all").status_code == 200
    assert (
        client.post("/api/experiments", {"experiment_name": "x"}, format="json").status_code == 403
    )
    assert (
        client.patch(f"/api/models/id/{model.id}", {"model_name": "y"}, format="json").status_code
        == 403
    )
    assert client.delete(f"/api/models/id/{model.id}").status_code == 403
    assert not Experiment.objects.filter(experiment_name="x").exists()


def test_create_api_user_read_only_then_writer_and_back(model):
    key = run("create_api_user", "carol", "--read-only").strip()
    client = token_client(key)
    assert client.post("/api/sites", {"site_name": "s1"}, format="json").status_code == 403
    assert run("create_api_user", "carol").strip() == key
    assert client.post("/api/sites", {"site_name": "s1"}, format="json").status_code == 200
    assert run("create_api_user", "carol", "--read-only").strip() == key
    assert client.post("/api/sites", {"site_name": "s2"}, format="json").status_code == 403
    assert client.get("/api/sites/all").status_code == 200


def test_create_api_user_for_an_existing_user_keeps_its_password():
    user = get_user_model().objects.create_user("dave", password="correct horse battery staple")
    key = run("create_api_user", "dave").strip()
    user.refresh_from_db()
    assert user.check_password("correct horse battery staple")
    assert Token.objects.get(user=user).key == key


def test_create_api_user_needs_a_name():
    with pytest.raises(CommandError):
        run("create_api_user")


# --- drf_create_token ------------------------------------------------------------------------


def test_drf_create_token_works_for_an_existing_user(model):
    run("create_api_user", "erin", "--read-only")
    Token.objects.filter(user__username="erin").delete()
    output = run("drf_create_token", "erin")
    key = Token.objects.get(user__username="erin").key
    assert key in output
    assert token_client(key).get("/api/models/all").status_code == 200


def test_drf_create_token_reset_replaces_the_token(model):
    old = run("create_api_user", "frank").strip()
    output = run("drf_create_token", "--reset", "frank")
    new = Token.objects.get(user__username="frank").key
    assert new != old and new in output
    assert token_client(old).get("/api/models/all").status_code == 401
    assert token_client(new).get("/api/models/all").status_code == 200


def test_drf_create_token_for_an_unknown_user_fails():
    with pytest.raises(CommandError):
        run("drf_create_token", "nobody")


def test_the_migrations_describe_the_models_exactly():
    """No model change is waiting for a migration (makemigrations --check exits non-zero)."""
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())
