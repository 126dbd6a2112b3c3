"""``GET /healthz``: 200 when the database and the file storage answer, 503 otherwise.

The failures are real: the storage points at a place that cannot be written, the database
connection at a server (or file) that is not there. Nothing of the service is mocked.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import uuid
from pathlib import Path

import boto3
import botocore.config
import pytest
from django.db import connections
from moto.server import ThreadedMotoServer

from models_api.api.errors import DATABASE_UNAVAILABLE

pytestmark = pytest.mark.django_db


def use_storage_location(settings, location) -> None:
    settings.MEDIA_ROOT = location
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": location, "base_url": "/media/"},
        },
    }


def assert_unavailable(response, **expected) -> dict:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"].endswith(".")
    for key, value in expected.items():
        assert body[key] == value
    return body


# --- Healthy ---------------------------------------------------------------------------------


def test_healthz_is_200_when_everything_answers(anonymous):
    response = anonymous.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.json() == {"database": "ok", "storage": "ok"}


def test_healthz_creates_a_missing_storage_folder(anonymous, settings, tmp_path):
    location = tmp_path / "not" / "yet" / "there"
    use_storage_location(settings, location)
    assert anonymous.get("/healthz").json() == {"database": "ok", "storage": "ok"}
    assert location.is_dir()


def test_healthz_is_never_throttled(anonymous):
    # Load balancers probe often; the anonymous API rate (60/minute) must not apply.
    for _ in range(70):
        assert anonymous.get("/healthz").status_code == 200


# --- Storage unavailable ---------------------------------------------------------------------


def test_healthz_is_503_when_the_storage_folder_cannot_exist(anonymous, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    use_storage_location(settings, blocker / "media")
    assert_unavailable(anonymous.get("/healthz"), database="ok", storage="unavailable")


def test_healthz_is_503_when_the_storage_location_is_a_file(anonymous, settings, tmp_path):
    location = tmp_path / "media"
    location.write_text("a file where the folder should be")
    use_storage_location(settings, location)
    assert_unavailable(anonymous.get("/healthz"), database="ok", storage="unavailable")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root may write into a read-only folder, so the folder cannot be made unwritable",
)
def test_healthz_is_503_when_the_storage_folder_is_read_only(anonymous, settings, tmp_path):
    location = tmp_path / "media"
    location.mkdir()
    location.chmod(0o500)
    try:
        use_storage_location(settings, location)
        assert_unavailable(anonymous.get("/healthz"), database="ok", storage="unavailable")
    finally:
        location.chmod(0o700)


def test_healthz_recovers_when_the_storage_comes_back(anonymous, settings, tmp_path):
    location = tmp_path / "media"
    location.write_text("in the way")
    use_storage_location(settings, location)
    assert anonymous.get("/healthz").status_code == 503
    location.unlink()
    assert anonymous.get("/healthz").status_code == 200


# --- S3 (a real S3 protocol server, moto, over HTTP) -----------------------------------------


@pytest.fixture(scope="module")
def s3_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def use_s3(settings, endpoint: str, bucket: str) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "client_config": botocore.config.Config(
                    connect_timeout=1, read_timeout=2, retries={"max_attempts": 1}
                ),
            },
        },
    }


def test_healthz_is_200_with_an_s3_bucket(anonymous, settings, s3_server):
    bucket = f"health-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=bucket)
    use_s3(settings, s3_server, bucket)
    assert anonymous.get("/healthz").json() == {"database": "ok", "storage": "ok"}


def test_healthz_is_503_when_the_s3_bucket_does_not_exist(anonymous, settings, s3_server):
    use_s3(settings, s3_server, f"missing-{uuid.uuid4().hex[:12]}")
    assert_unavailable(anonymous.get("/healthz"), database="ok", storage="unavailable")


def closed_port() -> int:
    """A local port on which nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_is_503_when_s3_does_not_answer(anonymous, settings):
    use_s3(settings, f"http://127.0.0.1:{closed_port()}", "records")
    assert_unavailable(anonymous.get("/healthz"), database="ok", storage="unavailable")


# --- Database unavailable --------------------------------------------------------------------


@contextlib.contextmanager
def database_unreachable(folder: Path):
    """The default connection points at a database that is not there, inside the block.

    PostgreSQL: a port on which nothing listens. SQLite: a file in a folder that does not
    exist. The test's own connection (and its transaction) is put back afterwards.
    """
    original = connections["default"]
    broken_settings = copy.deepcopy(original.settings_dict)
    if original.vendor == "postgresql":
        broken_settings.update(HOST="127.0.0.1", PORT=str(closed_port()))
        broken_settings.setdefault("OPTIONS", {})["connect_timeout"] = 2
    elif original.vendor == "sqlite":
        broken_settings["NAME"] = str(folder / "no-such-folder" / "db.sqlite3")
    else:
        pytest.skip(f"No way to make a {original.vendor} database unreachable here.")
    broken = original.__class__(broken_settings, "default")
    connections["default"] = broken
    try:
        yield
    finally:
        broken.close()
        connections["default"] = original


@pytest.fixture
def unreachable_database(tmp_path):
    with database_unreachable(tmp_path):
        yield


def test_healthz_is_503_when_the_database_is_unreachable(anonymous, unreachable_database):
    assert_unavailable(anonymous.get("/healthz"), database="unavailable", storage="ok")


def test_healthz_reports_both_when_both_are_down(
    anonymous, settings, tmp_path, unreachable_database
):
    location = tmp_path / "media"
    location.write_text("in the way")
    use_storage_location(settings, location)
    assert_unavailable(anonymous.get("/healthz"), database="unavailable", storage="unavailable")


@pytest.fixture
def token_then_unreachable_database(api, unreachable_database):
    """A client with a valid token, whose request then finds the database gone."""
    return api


@pytest.mark.parametrize(
    "method, path",
    [
        pytest.param("get", "/api/models/all", id="read"),
        pytest.param("post", "/api/experiments", id="write"),
        pytest.param("get", "/api/sites/id/01a226be-71d4-74bb-bc88-b7f02fb2c41e", id="detail"),
    ],
)
def test_api_answers_503_with_a_detail_when_the_database_is_unreachable(
    token_then_unreachable_database, method, path
):
    client = token_then_unreachable_database
    if method == "post":
        response = client.post(path, {"experiment_name": "x"}, format="json")
    else:
        response = client.get(path)
    assert_unavailable(response, detail=DATABASE_UNAVAILABLE)


def test_admin_answers_503_with_a_detail_when_the_database_is_unreachable(
    client, admin_user, request
):
    client.force_login(admin_user)
    request.getfixturevalue("unreachable_database")
    assert_unavailable(client.get("/admin/models_api/experiment/"), detail=DATABASE_UNAVAILABLE)


def test_healthz_recovers_when_the_database_comes_back(anonymous, tmp_path):
    with database_unreachable(tmp_path):
        assert anonymous.get("/healthz").status_code == 503
    assert anonymous.get("/healthz").json() == {"database": "ok", "storage": "ok"}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_healthz_answers_other_methods_with_a_json_405_even_with_csrf_checks(db, method):
    from django.test import Client

    response = getattr(Client(enforce_csrf_checks=True), method)("/healthz")
    assert response.status_code == 405
    assert response.json()["detail"]
    assert "GET" in response["Allow"]


def test_a_failed_csrf_check_is_json_outside_the_admin_and_a_page_inside(rf):
    from config.error_views import csrf_failure

    api = csrf_failure(rf.post("/api/models"), reason="CSRF cookie not set.")
    assert api.status_code == 403
    assert json.loads(api.content) == {"detail": "CSRF verification failed: CSRF cookie not set."}
    admin = csrf_failure(rf.post("/admin/login/"), reason="CSRF cookie not set.")
    assert admin.status_code == 403
    assert admin["Content-Type"].startswith("text/html")


def test_the_admin_login_without_a_csrf_token_gets_djangos_page(db):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
