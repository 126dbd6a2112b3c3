"""Deletes that would take other rows along need their permissions too (issue 10, fault 2).

Deleting a model deletes its runs, its records and their files; deleting an experiment deletes
its seasons. As on the admin's delete page (``perms_needed``), the API asks for the ``delete``
permission of every type of row the deletion would take with it, but only of the types that
have rows: otherwise 403 naming what is missing, and nothing is deleted. The admin and the API
share one implementation (``models_api.api.deletion``), which counts and never loads.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from models_api.api.deletion import related_rows
from models_api.models import Experiment, MLModel, ModelRun, Season
from records.models import ModelRecord
from tests.conftest import record_body
from tests.factories import ExperimentFactory, MLModelFactory, ModelRunFactory, SeasonFactory
from tests.helpers import assert_error
from tests.test_auth import client_for, make_user

pytestmark = pytest.mark.django_db

VIEW_AND_DELETE_MODEL = ("models_api.view_mlmodel", "models_api.delete_mlmodel")


def stored_files(media_root) -> list[str]:
    if not media_root.exists():
        return []
    return sorted(str(path) for path in media_root.rglob("*") if path.is_file())


def add_record(api, model, second: int, *, with_file: bool = True) -> dict:
    fields = record_body(timestamp=f"2024-06-01T10:00:{second:02d}Z")
    fields["model_data"] = json.dumps(fields["model_data"])
    if with_file:
        fields["record_file"] = SimpleUploadedFile("leaf.png", b"png" * 10)
    response = api.post(f"/api/models/id/{model.id}/records", fields, format="multipart")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def busy_model(api, demo, media_root):
    """The demo's Model A with two runs and three records, each with a file."""
    ModelRunFactory(model=demo)
    ModelRunFactory(model=demo)
    for second in range(3):
        add_record(api, demo, second)
    assert len(stored_files(media_root)) == 3
    return demo


def model_state(model, media_root) -> tuple:
    return (
        MLModel.objects.filter(pk=model.pk).exists(),
        ModelRun.objects.filter(model=model).count(),
        ModelRecord.objects.filter(model=model).count(),
        stored_files(media_root),
    )


# --- Models: runs and records ----------------------------------------------------------------


def test_delete_mlmodel_alone_cannot_delete_a_model_with_runs_and_records(
    busy_model, media_root
):
    before = model_state(busy_model, media_root)
    client = client_for(make_user("deleter", *VIEW_AND_DELETE_MODEL))
    body = assert_error(client.delete(f"/api/models/id/{busy_model.id}"), 403)
    assert body["detail"] == (
        "You need the permission to delete records and runs to delete this model."
    )
    assert model_state(busy_model, media_root) == before
    assert before[0] and before[1] == 2 and before[2] == 3 and len(before[3]) == 3


def test_with_one_of_the_two_permissions_the_other_is_named(busy_model, media_root):
    before = model_state(busy_model, media_root)
    runs_only = client_for(make_user("u1", *VIEW_AND_DELETE_MODEL, "models_api.delete_modelrun"))
    body = assert_error(runs_only.delete(f"/api/models/id/{busy_model.id}"), 403)
    assert body["detail"] == "You need the permission to delete records to delete this model."
    records_only = client_for(
        make_user("u2", *VIEW_AND_DELETE_MODEL, "records.delete_modelrecord")
    )
    body = assert_error(records_only.delete(f"/api/models/id/{busy_model.id}"), 403)
    assert body["detail"] == "You need the permission to delete runs to delete this model."
    assert model_state(busy_model, media_root) == before


def test_with_the_permissions_of_what_it_takes_along_the_model_is_deleted(
    busy_model, media_root, django_capture_on_commit_callbacks
):
    client = client_for(
        make_user(
            "curator",
            *VIEW_AND_DELETE_MODEL,
            "models_api.delete_modelrun",
            "records.delete_modelrecord",
        )
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete(f"/api/models/id/{busy_model.id}")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": str(busy_model.id), "deleted": True}
    assert model_state(busy_model, media_root) == (False, 0, 0, [])


def test_only_the_types_that_have_rows_need_their_permission(api, demo):
    client = client_for(make_user("deleter", *VIEW_AND_DELETE_MODEL))
    empty = MLModelFactory(model_name="Empty")
    assert client.delete(f"/api/models/id/{empty.id}").status_code == 200
    with_runs = MLModelFactory(model_name="With runs")
    ModelRunFactory(model=with_runs)
    body = assert_error(client.delete(f"/api/models/id/{with_runs.id}"), 403)
    assert body["detail"] == "You need the permission to delete runs to delete this model."
    add_record(api, demo, 0, with_file=False)
    body = assert_error(client.delete(f"/api/models/id/{demo.id}"), 403)
    assert body["detail"] == "You need the permission to delete records to delete this model."
    assert MLModel.objects.filter(pk__in=[with_runs.pk, demo.pk]).count() == 2


def test_a_superuser_deletes_whatever_it_takes_along(busy_model, media_root):
    root = get_user_model().objects.create_superuser("root", password=None)
    assert client_for(root).delete(f"/api/models/id/{busy_model.id}").status_code == 200
    assert not MLModel.objects.filter(pk=busy_model.pk).exists()


def test_the_check_counts_nothing_and_loads_no_record(
    api, demo, busy_model, django_assert_max_num_queries
):
    """Whatever the number of records, the check is a fixed handful of EXISTS queries."""
    client = client_for(make_user("deleter", *VIEW_AND_DELETE_MODEL))
    with django_assert_max_num_queries(8) as few:
        assert_error(client.delete(f"/api/models/id/{busy_model.id}"), 403)
    queries = [query["sql"].upper() for query in few.captured_queries]
    assert not any("COUNT(" in sql for sql in queries)
    for second in range(3, 23):
        add_record(api, demo, second, with_file=False)
    with django_assert_max_num_queries(len(queries)):
        assert_error(client.delete(f"/api/models/id/{busy_model.id}"), 403)


# --- Experiments: seasons ----------------------------------------------------------------------


VIEW_AND_DELETE_EXPERIMENT = ("models_api.view_experiment", "models_api.delete_experiment")


def test_delete_experiment_alone_cannot_delete_an_experiment_with_seasons(db):
    experiment = ExperimentFactory(experiment_name="Seasoned")
    SeasonFactory(experiment=experiment, season_name="S1")
    SeasonFactory(experiment=experiment, season_name="S2")
    client = client_for(make_user("deleter", *VIEW_AND_DELETE_EXPERIMENT))
    body = assert_error(client.delete(f"/api/experiments/id/{experiment.id}"), 403)
    assert body["detail"] == (
        "You need the permission to delete seasons to delete this experiment."
    )
    assert Experiment.objects.filter(pk=experiment.pk).exists()
    assert Season.objects.filter(experiment=experiment).count() == 2


def test_with_delete_season_the_experiment_and_its_seasons_are_deleted(db):
    experiment = ExperimentFactory(experiment_name="Seasoned")
    SeasonFactory(experiment=experiment, season_name="S1")
    client = client_for(
        make_user("curator", *VIEW_AND_DELETE_EXPERIMENT, "models_api.delete_season")
    )
    assert client.delete(f"/api/experiments/id/{experiment.id}").status_code == 200
    assert not Experiment.objects.exists() and not Season.objects.exists()


def test_an_experiment_without_seasons_needs_only_delete_experiment(db):
    experiment = ExperimentFactory(experiment_name="Bare")
    experiment.models.add(MLModelFactory())  # links are not rows with permissions of their own
    client = client_for(make_user("deleter", *VIEW_AND_DELETE_EXPERIMENT))
    assert client.delete(f"/api/experiments/id/{experiment.id}").status_code == 200
    assert not Experiment.objects.exists() and MLModel.objects.count() == 1


def test_an_experiment_that_records_use_stays_409_for_a_user_with_every_permission(api, demo):
    add_record(api, demo, 0, with_file=False)
    experiment = Experiment.objects.get(experiment_name="Experiment A")
    body = assert_error(api.delete(f"/api/experiments/id/{experiment.id}"), 409)
    assert body["id"] == str(experiment.id)
    assert Experiment.objects.filter(pk=experiment.pk).exists()


# --- The shared implementation, as the admin uses it -------------------------------------------


def test_related_rows_counts_each_kind_once(api, demo):
    """Records point at an experiment and at its seasons: counted once, not twice."""
    for second in range(3):
        add_record(api, demo, second, with_file=False)
    experiment = Experiment.objects.get(experiment_name="Experiment A")
    related = related_rows(Experiment, Experiment.objects.filter(pk=experiment.pk))
    by_kind = {(item.model, item.protected): item.count for item in related}
    assert by_kind[(ModelRecord, True)] == 3
    assert by_kind[(Season, False)] == Season.objects.filter(experiment=experiment).count()


@pytest.fixture
def staff_deleter(client, busy_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = make_user("clerk", *VIEW_AND_DELETE_MODEL, is_staff=True)
    client.force_login(user)
    return client


def test_the_admin_delete_page_still_names_the_missing_permissions(
    staff_deleter, busy_model, media_root
):
    before = model_state(busy_model, media_root)
    url = reverse("admin:models_api_mlmodel_delete", args=[busy_model.pk])
    page = staff_deleter.get(url)
    assert page.status_code == 200
    assert sorted(page.context["perms_lacking"]) == ["record", "run"]
    assert "2 runs" in page.context["deleted_objects"]
    assert "3 records" in page.context["deleted_objects"]
    assert staff_deleter.post(url, {"post": "yes"}).status_code == 403
    assert model_state(busy_model, media_root) == before
