"""Records in the admin: the changelist renders with filters and without a full count, the
change form saves through the services, deletions take the files along."""

from __future__ import annotations

import pytest

from records.models import ModelRecord
from tests.factories import ModelRecordFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def records(db):
    return [ModelRecordFactory(record_file=f"model_records/x/{n}/a.png") for n in range(3)]


def test_changelist_renders_with_filters_and_date_hierarchy(admin_client, records):
    response = admin_client.get("/admin/records/modelrecord/")
    assert response.status_code == 200
    content = response.content.decode()
    assert str(records[0].id) in content
    assert "download" in content
    for query in ("?experiment__id__exact=" + str(records[0].experiment_id),
                  "?site__id__exact=" + str(records[1].site_id),
                  "?timestamp__year=2024", "?q=" + str(records[2].id)):
        assert admin_client.get("/admin/records/modelrecord/" + query).status_code == 200


def test_changelist_query_count_does_not_grow_with_rows(
    admin_client, django_assert_max_num_queries
):
    ModelRecordFactory.create_batch(5)
    with django_assert_max_num_queries(40) as small:
        admin_client.get("/admin/records/modelrecord/")
    ModelRecordFactory.create_batch(30)
    with django_assert_max_num_queries(len(small) + 6):  # list filters list the new references
        admin_client.get("/admin/records/modelrecord/")


def test_change_form_saves_json_through_the_service(admin_client, records):
    record = records[0]
    url = f"/admin/records/modelrecord/{record.id}/change/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"model_data": '{"edited": true}', "record_info": "{}"})
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.model_data == {"edited": True}


def test_change_form_keeps_and_sets_json_null_model_data(admin_client, records):
    """``model_data`` may be JSON null: the form shows it as ``null`` and saves it back."""
    record = records[0]
    url = f"/admin/records/modelrecord/{record.id}/change/"
    response = admin_client.post(url, {"model_data": "null", "record_info": "{}"})
    assert response.status_code == 302, response.content[:500]
    record.refresh_from_db()
    assert record.model_data is None
    assert ModelRecord.objects.filter(pk=record.pk, model_data=None).exists()  # JSON null
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"model_data": "null", "record_info": "{}"})
    assert response.status_code == 302  # an unchanged null saves again


def test_records_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get("/admin/records/modelrecord/add/").status_code == 403


def test_deleting_a_model_in_the_admin_counts_its_records(admin_client, records):
    model = records[0].model
    ModelRecordFactory.create_batch(4, model=model)
    response = admin_client.get(f"/admin/models_api/mlmodel/{model.id}/delete/")
    assert response.status_code == 200
    assert "5 records" in response.content.decode()
    response = admin_client.post(f"/admin/models_api/mlmodel/{model.id}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ModelRecord.objects.filter(model=model).exists()


def test_an_experiment_used_by_records_cannot_be_deleted_in_the_admin(admin_client, records):
    experiment = records[0].experiment
    response = admin_client.get(f"/admin/models_api/experiment/{experiment.id}/delete/")
    assert response.status_code == 200
    assert "1 record" in response.content.decode()
    admin_client.post(f"/admin/models_api/experiment/{experiment.id}/delete/", {"post": "yes"})
    assert ModelRecord.objects.filter(experiment=experiment).exists()


def test_bulk_delete_action_removes_rows(admin_client, records, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            "/admin/records/modelrecord/",
            {
                "action": "delete_selected",
                "_selected_action": [str(r.id) for r in records],
                "post": "yes",
            },
        )
    assert response.status_code == 302
    assert not ModelRecord.objects.exists()
    assert len(callbacks) == 1  # the files go in one callback, after the commit
