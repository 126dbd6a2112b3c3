"""Record files on local storage and on S3 (moto's server over real HTTP): keys, signed 307
downloads, and the rule that a file and its row live and die together."""

from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from models_api.models import Dataset
from records.models import ModelRecord
from records.storage import safe_file_name
from tests.conftest import record_body, stored_keys, use_s3

pytestmark = pytest.mark.django_db
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


def post_with_file(api, model, name="leaf.png", content=PNG, **overrides):
    fields = record_body(**overrides)
    fields["model_data"] = json.dumps(fields["model_data"])
    fields["record_file"] = SimpleUploadedFile(name, content, content_type="image/png")
    return api.post(f"/api/models/id/{model.id}/records", fields, format="multipart")


def follow(client, response):
    """Follow a 307 like a browser would, with no credentials."""
    assert response.status_code == 307, response.content
    location = response["Location"]
    parts = urlsplit(location)
    if parts.netloc == "testserver":
        return client.get(f"{parts.path}?{parts.query}" if parts.query else parts.path)
    return requests.get(location, timeout=10)


def body_of(response) -> bytes:
    if hasattr(response, "streaming_content"):
        return b"".join(response.streaming_content)
    return response.content


@pytest.mark.parametrize(
    "client_name, safe",
    [
        ("leaf.png", "leaf.png"),
        ("../../etc/passwd", "passwd"),
        ("/etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("a/b/../c.txt", "c.txt"),
        ("evil\x00name\n.png", "evil_name_.png"),
        ("..", "file"),
        ("", "file"),
        ("résumé café.jpg", "resume_cafe.jpg"),
        ("x" * 1000 + ".jpeg", "x" * 115 + ".jpeg"),
    ],
)
def test_client_file_names_never_escape_the_prefix(client_name, safe):
    assert safe_file_name(client_name) == safe


# --- Local storage -----------------------------------------------------------------------


def test_file_is_stored_under_a_collision_free_key(api, demo, media_root):
    body = post_with_file(api, demo, name="../../outside.png").json()
    assert body["record_file"] == f"model_records/{demo.id}/{body['id']}/outside.png"
    assert (media_root / body["record_file"]).read_bytes() == PNG
    assert not (media_root.parent / "outside.png").exists()


def test_local_download_is_a_307_to_a_signed_link_that_needs_no_credentials(api, anonymous, demo):
    record = post_with_file(api, demo).json()
    response = api.get(f"/api/models/records/id/{record['id']}/download")
    downloaded = follow(anonymous, response)
    assert downloaded.status_code == 200
    assert body_of(downloaded) == PNG
    assert 'filename="leaf.png"' in downloaded["Content-Disposition"]
    assert downloaded["Content-Type"] == "image/png"


def test_signed_link_answers_503_when_the_storage_folder_is_broken(
    api, anonymous, demo, media_root
):
    """The folder holding the file turned into something else (a failed mount, a stray
    file): the link answers the contract's 503, not a 500, and works again once repaired."""
    record = post_with_file(api, demo).json()
    link = api.get(f"/api/models/records/id/{record['id']}/download")
    folder = (media_root / record["record_file"]).parent
    saved = folder.with_name("saved")
    folder.rename(saved)
    folder.write_bytes(b"not a folder")
    broken = follow(anonymous, link)
    assert broken.status_code == 503
    assert broken.json() == {"detail": "The file storage is unreachable. Please try again."}
    assert broken["Retry-After"]
    folder.unlink()
    saved.rename(folder)
    assert body_of(follow(anonymous, link)) == PNG


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_signed_link_answers_other_methods_with_a_json_405(api, demo, method):
    from django.test import Client

    record = post_with_file(api, demo).json()
    path = urlsplit(api.get(f"/api/models/records/id/{record['id']}/download")["Location"]).path
    response = getattr(Client(enforce_csrf_checks=True), method)(path)
    assert response.status_code == 405
    assert response.json()["detail"]


def test_download_of_a_file_gone_from_local_storage_is_404(api, demo, media_root):
    record = post_with_file(api, demo).json()
    (media_root / record["record_file"]).unlink()
    response = api.get(f"/api/models/records/id/{record['id']}/download")
    assert response.status_code == 404
    assert response.json() == {"detail": "This record's file is missing from the storage."}


def test_download_while_the_local_storage_is_broken_is_503(api, demo, media_root):
    record = post_with_file(api, demo).json()
    folder = (media_root / record["record_file"]).parent
    saved = folder.with_name("saved")
    folder.rename(saved)
    folder.write_bytes(b"not a folder")
    response = api.get(f"/api/models/records/id/{record['id']}/download")
    assert response.status_code == 503
    assert response.json()["detail"] == "The file storage is unreachable. Please try again."


def test_tampered_local_link_is_403(api, anonymous, demo):
    record = post_with_file(api, demo).json()
    location = api.get(f"/api/models/records/id/{record['id']}/download")["Location"]
    path = urlsplit(location).path
    token = path.rsplit("/", 1)[1]
    payload, _, signature = token.partition(":")
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + ":" + signature
    for bad in (
        path.rsplit("/", 1)[0] + "/" + forged,
        path + "x",
        "/api/models/records/files/garbage",
    ):
        response = anonymous.get(bad)
        assert response.status_code == 403, bad
        assert response.json()["detail"]


def test_expired_local_link_is_403(api, anonymous, demo, settings):
    settings.RECORD_DOWNLOAD_EXPIRY = 1
    record = post_with_file(api, demo).json()
    location = api.get(f"/api/models/records/id/{record['id']}/download")["Location"]
    time.sleep(2.1)
    response = anonymous.get(urlsplit(location).path)
    assert response.status_code == 403
    assert "expired" in response.json()["detail"]


def test_download_without_a_file_is_404(api, demo):
    record = api.post(f"/api/models/id/{demo.id}/records", record_body(), format="json").json()
    response = api.get(f"/api/models/records/id/{record['id']}/download")
    assert response.status_code == 404
    assert api.get(f"/api/models/records/id/{uuid.uuid4()}/download").status_code == 404


def test_deleting_a_record_removes_its_file_after_commit(
    api, demo, media_root, django_capture_on_commit_callbacks
):
    record = post_with_file(api, demo).json()
    path = media_root / record["record_file"]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert api.delete(f"/api/models/records/id/{record['id']}").status_code == 200
    assert path.exists()  # not before the deletion commits
    for callback in callbacks:
        callback()
    assert not path.exists()


def test_deleting_a_model_removes_all_its_files(
    api, demo, media_root, django_capture_on_commit_callbacks
):
    for second in range(3):
        post_with_file(api, demo, timestamp=f"2024-06-01T10:00:0{second}Z")
    assert len(list((media_root / "model_records" / str(demo.id)).rglob("*.png"))) == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert api.delete(f"/api/models/id/{demo.id}").status_code == 200
    assert not (media_root / "model_records" / str(demo.id)).exists()


def test_duplicate_with_a_file_keeps_no_second_file(api, demo, media_root):
    post_with_file(api, demo)
    assert post_with_file(api, demo).status_code == 409
    assert len(list(media_root.rglob("*.png"))) == 1


def test_empty_file_is_400(api, demo):
    response = post_with_file(api, demo, content=b"")
    assert response.status_code == 400
    assert "record_file" in response.json()["errors"]
    assert not ModelRecord.objects.exists()


def test_file_over_the_limit_is_413_and_writes_nothing(api, demo, settings, media_root):
    settings.RECORD_FILE_MAX_SIZE = 1000
    response = post_with_file(api, demo, content=b"x" * 1001)
    assert response.status_code == 413
    assert response.json()["detail"]
    assert not ModelRecord.objects.exists()
    assert not list(media_root.rglob("*.png"))


def test_form_declaring_more_than_the_limit_is_413_before_reading(api, demo, settings):
    settings.RECORD_FILE_MAX_SIZE = 10
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = post_with_file(api, demo, content=b"x" * 5000)
    assert response.status_code == 413


def test_two_files_or_an_unknown_file_field_is_400(api, demo):
    fields = record_body()
    fields["model_data"] = json.dumps(fields["model_data"])
    fields["record_file"] = [SimpleUploadedFile("a.png", b"a"), SimpleUploadedFile("b.png", b"b")]
    response = api.post(f"/api/models/id/{demo.id}/records", fields, format="multipart")
    assert response.status_code == 400
    fields["record_file"] = SimpleUploadedFile("a.png", b"a")
    fields["other_file"] = SimpleUploadedFile("b.png", b"b")
    response = api.post(f"/api/models/id/{demo.id}/records", fields, format="multipart")
    assert response.status_code == 400
    assert "other_file" in response.json()["errors"]
    assert not ModelRecord.objects.exists()


def test_unwritable_local_storage_is_503_with_no_row(api, demo, settings, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the media folder should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": blocked},
        },
    }
    response = post_with_file(api, demo)
    assert response.status_code == 503
    assert response.json()["detail"]
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


def test_when_the_row_fails_the_stored_file_is_removed(api, demo, media_root):
    """A record that races a duplicate past the pre-check: the insert fails, the file goes."""
    first = post_with_file(api, demo).json()
    ModelRecord.objects.filter(pk=first["id"]).update(record_file=None)
    from records import services

    original = services._existing_record_id
    calls = {"n": 0}

    def miss_once(*args, **kwargs):  # the pre-check misses the row, as under a race
        calls["n"] += 1
        return None if calls["n"] == 1 else original(*args, **kwargs)

    services._existing_record_id = miss_once
    try:
        response = post_with_file(api, demo, name="second.png")
    finally:
        services._existing_record_id = original
    assert response.status_code == 409
    assert response.json()["id"] == first["id"]
    assert not list(media_root.rglob("second.png"))


# --- S3 ------------------------------------------------------------------------------------


def test_s3_upload_presigned_307_and_exact_bytes(api, demo, s3):
    record = post_with_file(api, demo).json()
    assert stored_keys(s3) == [record["record_file"]]
    response = api.get(f"/api/models/records/id/{record['id']}/download")
    assert response.status_code == 307
    location = response["Location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=3600" in location
    downloaded = requests.get(location, timeout=10)  # no credentials but the signature
    assert downloaded.status_code == 200
    assert downloaded.content == PNG
    assert 'filename="leaf.png"' in downloaded.headers["Content-Disposition"]


def test_s3_download_of_an_object_gone_from_the_bucket_is_404(api, demo, s3):
    record = post_with_file(api, demo).json()
    s3.client.delete_object(Bucket=s3.bucket, Key=record["record_file"])
    response = api.get(f"/api/models/records/id/{record['id']}/download")
    assert response.status_code == 404
    assert response.json() == {"detail": "This record's file is missing from the storage."}


def test_s3_download_while_s3_is_unreachable_is_503(api, demo, s3, settings):
    record = post_with_file(api, demo).json()
    with socket_on_a_closed_port() as endpoint:
        use_s3(settings, endpoint=endpoint, bucket=s3.bucket)
        response = api.get(f"/api/models/records/id/{record['id']}/download")
    assert response.status_code == 503
    assert response.json()["detail"]


def test_s3_link_expiry_follows_the_setting(api, demo, s3, settings):
    settings.RECORD_DOWNLOAD_EXPIRY = 120
    record = post_with_file(api, demo).json()
    location = api.get(f"/api/models/records/id/{record['id']}/download")["Location"]
    assert "X-Amz-Expires=120" in location


def test_s3_delete_record_and_model_remove_objects(
    api, demo, s3, django_capture_on_commit_callbacks
):
    first = post_with_file(api, demo).json()
    post_with_file(api, demo, timestamp="2024-06-01T11:00:00Z")
    assert len(stored_keys(s3)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        api.delete(f"/api/models/records/id/{first['id']}")
    assert len(stored_keys(s3)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        api.delete(f"/api/models/id/{demo.id}")
    assert stored_keys(s3) == []


def test_s3_unreachable_is_503_and_no_row_is_written(api, demo, settings):
    with socket_on_a_closed_port() as endpoint:
        use_s3(settings, endpoint=endpoint, bucket="nowhere")
        response = post_with_file(api, demo)
    assert response.status_code == 503
    assert response.json()["detail"]
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.exists()


def test_s3_missing_bucket_is_503_and_no_row(api, demo, settings, s3_endpoint):
    use_s3(settings, endpoint=s3_endpoint, bucket=f"missing-{uuid.uuid4().hex[:8]}")
    response = post_with_file(api, demo)
    assert response.status_code == 503
    assert not ModelRecord.objects.exists()


def test_s3_storage_answers_in_health(anonymous, s3):
    assert anonymous.get("/healthz").json() == {"database": "ok", "storage": "ok"}


class socket_on_a_closed_port:
    """An http endpoint on which nothing listens (the port is bound, then released)."""

    def __enter__(self) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc) -> None:
        return None


def test_default_storage_is_reset_between_tests():
    assert default_storage.__class__.__name__ == "FileSystemStorage"
