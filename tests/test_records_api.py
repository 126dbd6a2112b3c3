"""GET/PATCH/DELETE /api/models/records/id/{rid}."""

from __future__ import annotations

import pytest

from records.models import ModelRecord
from tests.conftest import record_body

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(api, demo) -> dict:
    response = api.post(
        f"/api/models/id/{demo.id}/records", record_body(record_info={"a": 1}), format="json"
    )
    assert response.status_code == 200
    return response.json()


def test_get_record(api, record):
    response = api.get(f"/api/models/records/id/{record['id']}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == record
    assert api.get(f"/api/models/records/id/{record['id']}/").json() == record


@pytest.mark.parametrize("rid", ["0b8f2a1e-5c3d-4e6f-9a7b-1c2d3e4f5a6b", "nope", "1"])
def test_unknown_or_malformed_record_is_404(api, rid):
    for method in ("get", "patch", "delete"):
        response = getattr(api, method)(
            f"/api/models/records/id/{rid}", {"record_info": {}}, format="json"
        )
        assert response.status_code == 404, method
        assert response.json()["detail"]


def test_patch_replaces_model_data_and_record_info(api, record):
    response = api.patch(
        f"/api/models/records/id/{record['id']}", {"model_data": [1, 2]}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["model_data"] == [1, 2]
    assert body["record_info"] == {"a": 1}
    assert body["updated_at"] >= record["updated_at"]
    assert body["timestamp"] == record["timestamp"]
    response = api.patch(
        f"/api/models/records/id/{record['id']}", {"record_info": {"b": 2}}, format="json"
    )
    assert response.json()["record_info"] == {"b": 2}  # replaced, not merged


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"record_info": [1]}, id="info-not-object"),
        pytest.param({"timestamp": "2024-01-01T00:00:00Z"}, id="not-patchable"),
        pytest.param({"site_name": "Site A2"}, id="reference-not-patchable"),
        pytest.param({"model_data": {"k": "\x00"}}, id="nul"),
    ],
)
def test_bad_patch_is_400_and_changes_nothing(api, record, body):
    response = api.patch(f"/api/models/records/id/{record['id']}", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["detail"]
    assert api.get(f"/api/models/records/id/{record['id']}").json() == record


def test_delete_record(api, record):
    response = api.delete(f"/api/models/records/id/{record['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": record["id"], "deleted": True}
    assert not ModelRecord.objects.exists()
    assert api.get(f"/api/models/records/id/{record['id']}").status_code == 404


def test_record_permissions(reader, anonymous, record):
    path = f"/api/models/records/id/{record['id']}"
    assert anonymous.get(path).status_code == 401
    assert reader.get(path).status_code == 200
    assert reader.patch(path, {"record_info": {}}, format="json").status_code == 403
    assert reader.delete(path).status_code == 403


def test_names_are_read_from_the_referenced_rows(api, record):
    """Renaming a site renames it on every record: names are never copied."""
    api.patch(f"/api/sites/id/{record['site_id']}", {"site_name": "Renamed"}, format="json")
    assert api.get(f"/api/models/records/id/{record['id']}").json()["site_name"] == "Renamed"
