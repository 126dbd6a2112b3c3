"""Signed download links never reach the logs whole (issue 10, fault 4).

On local storage ``GET /records/id/{rid}/download`` answers 307 to
``/api/models/records/files/<token>``, whose token is the link's only credential (and spells
the storage key in readable base64). Its path segment is redacted wherever the service logs:
Django's handlers (``django.request`` warnings for a 403 or 404 on such a link, runserver's
request log), and gunicorn's access log, which gunicorn formats itself
(``config.gunicorn_logging``).
"""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile

from models_api.api.log_filters import RedactCredentials, redact
from records import storage
from tests.conftest import record_body
from tests.test_production_settings import (
    HTTPS,
    GunicornServer,
    environment,
    manage,
    production,
)

pytestmark = pytest.mark.django_db

FILES = "/api/models/records/files/"


def token_of(url: str) -> str:
    assert FILES in url, url
    return url.split(FILES, 1)[1]


@pytest.fixture
def download_link(api, demo):
    """A record with a file, and the signed link its download answers with."""
    fields = record_body()
    fields["model_data"] = json.dumps(fields["model_data"])
    fields["record_file"] = SimpleUploadedFile("leaf.png", b"leaf")
    created = api.post(f"/api/models/id/{demo.id}/records", fields, format="multipart")
    assert created.status_code == 200, created.content
    response = api.get(f"/api/models/records/id/{created.json()['id']}/download")
    assert response.status_code == 307
    return created.json(), response["Location"]


def test_redact_hides_the_token_of_a_download_link():
    token = storage.download_url("model_records/a/b/leaf.png", build_absolute_uri=str)
    token = token_of(token)
    for text in (
        f"Forbidden: {FILES}{token}",
        f'"GET {FILES}{token} HTTP/1.1" 403 52',
        f"https://models.example.org{FILES}{token}?x=1",
        f"Location: '{FILES}{token}'",
    ):
        redacted = redact(text)
        assert token not in redacted, text
        assert f"{FILES}[redacted]" in redacted
    assert redact("/api/models/records/id/123/download") == "/api/models/records/id/123/download"


def test_django_request_warnings_on_a_download_link_do_not_show_its_token(
    client, download_link, console_log, media_root
):
    record, link = download_link
    token = token_of(link)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"{FILES}{tampered}").status_code == 403
    (media_root / record["record_file"]).unlink()
    assert client.get(f"{FILES}{token}").status_code == 404  # the file is gone
    output = console_log.getvalue()
    assert f"Forbidden: {FILES}[redacted]" in output
    assert f"Not Found: {FILES}[redacted]" in output
    assert token not in output and tampered not in output
    assert token.split(":")[0] not in output  # not even the readable part, the storage key


def test_every_configured_log_handler_redacts():
    """Django's defaults give the "django" logger (with DEBUG) and runserver's request log
    handlers of their own; the settings replace them, so no handler prints unfiltered."""
    names = [
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.split(".")[0] in {"django", "models_api", "records", "config"}
    ]
    assert "django.server" in names and "django.request" in names
    for logger in [logging.getLogger(), *(logging.getLogger(name) for name in names)]:
        for handler in getattr(logger, "handlers", []):
            if type(handler).__module__.startswith("_pytest"):
                continue  # pytest's own capture
            assert any(isinstance(f, RedactCredentials) for f in handler.filters), (
                logger.name,
                handler,
            )


def test_runserver_request_log_does_not_show_the_token():
    handler = logging.getLogger("django.server").handlers[0]
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        logging.getLogger("django.server").info(
            '"%s" %s %s', f"GET {FILES}secret-token:abc HTTP/1.1", "200", "4"
        )
    finally:
        handler.setStream(previous)
    assert "secret-token" not in buffer.getvalue()
    assert f"{FILES}[redacted]" in buffer.getvalue()


# --- gunicorn's access log ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def gunicorn_with_a_record(tmp_path_factory):
    """``make serve``'s gunicorn (production settings, SQLite of its own), a token, and the
    signed link of a record's file."""
    var_dir = tmp_path_factory.mktemp("redaction")
    env = environment(var_dir, **production())
    for args in (("migrate", "--noinput"), ("load_demo",)):
        result = manage(env, *args)
        assert result.returncode == 0, result.stderr
    created = manage(env, "create_api_user", "operator")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    server = GunicornServer(env, var_dir / "gunicorn.log", workers=1, threads=2)
    try:
        headers = {**HTTPS, "Authorization": f"Token {token}"}
        models = requests.get(f"{server.url}/api/models/all", headers=headers, timeout=30)
        model_id = next(m["id"] for m in models.json() if m["model_name"] == "Model A")
        fields = record_body()
        fields["model_data"] = json.dumps(fields["model_data"])
        response = requests.post(
            f"{server.url}/api/models/id/{model_id}/records",
            data=fields,
            files={"record_file": ("leaf.png", b"leaf")},
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        download = requests.get(
            f"{server.url}/api/models/records/id/{response.json()['id']}/download",
            headers=headers,
            allow_redirects=False,
            timeout=30,
        )
        assert download.status_code == 307, download.text
        yield server, download.headers["Location"]
    finally:
        server.stop()


def test_gunicorn_access_log_shows_a_download_path_without_its_token(gunicorn_with_a_record):
    server, link = gunicorn_with_a_record
    token = token_of(link)
    path = f"{FILES}{token}"
    fetched = requests.get(f"{server.url}{path}", headers=HTTPS, timeout=30)
    assert fetched.status_code == 200 and fetched.content == b"leaf"
    tampered = requests.get(f"{server.url}{path}x", headers=HTTPS, timeout=30)
    assert tampered.status_code == 403
    time.sleep(0.5)  # let the access log lines land
    output = server.output()
    access_lines = [line for line in output.splitlines() if f'"GET {FILES}' in line]
    assert len(access_lines) == 2, output[-3000:]
    assert all(f'"GET {FILES}[redacted] HTTP/1.1"' in line for line in access_lines)
    assert f"Forbidden: {FILES}[redacted]" in output  # Django's warning, through the filter
    assert token not in output and token.split(":")[0] not in output
