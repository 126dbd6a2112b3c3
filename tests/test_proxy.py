"""The production layout: nginx (``config/nginx.conf``) in front of the production server
(gunicorn with ``config/gunicorn.conf.py``, as ``make serve`` runs it).

Each nginx here is the real template rendered into a folder of its own (pid, logs, temporary
files, a self-signed certificate) on free ports, started with ``-p FOLDER -c FILE -g 'daemon
off;'``: the machine's /etc/nginx and its service are never used. The service runs on a
SQLite database of its own (as in ``test_production_settings``), on either suite run.

- Request lines: gunicorn allows 8,190 bytes (a long ``site_names`` list), nginx the same, and
  nginx answers a longer one itself, as JSON.
- Slow clients: without nginx, clients sending bodies slowly hold every gunicorn thread and
  ``/healthz`` goes unanswered; with nginx in front it answers at once, however many there are.
- nginx's own errors (400, 413, 414, 431, gunicorn unreachable...) are the API's JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from tests.test_production_settings import (
    GunicornServer,
    call,
    environment,
    manage,
    production,
    record,
)

NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)"
)

#: Sites created for the long query: about 300 names make a query of about 8,000 bytes.
FIELD_SITES = 320

#: One process (each ``manage.py`` start costs seconds): migrate, the demo catalogue, the field
#: sites and an API user; prints the model's id and the user's token.
_PREPARE = f"""
import io, json
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from models_api.models import Experiment, MLModel, Site
call_command("migrate", "--noinput", verbosity=0)
call_command("load_demo", stdout=io.StringIO())
experiment = Experiment.objects.get(experiment_name="Experiment A")
for n in range({FIELD_SITES}):
    site, _ = Site.objects.get_or_create(site_name=f"Field site {{n:03d}}")
    site.experiments.add(experiment)
call_command("create_api_user", "operator", stdout=io.StringIO())
print(json.dumps({{
    "model_id": str(MLModel.objects.get(model_name="Model A").id),
    "token": Token.objects.get(user__username="operator").key,
}}))
"""


@dataclass
class Backend:
    env: dict[str, str]
    var_dir: Path
    model_id: str
    token: str


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> Backend:
    """The production environment on a SQLite database of its own, with the demo catalogue,
    the field sites and an API user."""
    var_dir = tmp_path_factory.mktemp("proxy")
    env = environment(var_dir, **production())
    result = manage(env, "shell", "-c", _PREPARE)
    assert result.returncode == 0, result.stderr
    prepared = json.loads(result.stdout.strip().splitlines()[-1])
    return Backend(env, var_dir, prepared["model_id"], prepared["token"])


@pytest.fixture(scope="module")
def gunicorn(backend) -> Iterator[GunicornServer]:
    """``make serve``'s gunicorn (2 workers of 4 threads), with two records of Model A."""
    server = GunicornServer(backend.env, backend.var_dir / "gunicorn.log")
    try:
        for second, site in ((1, "Site A1"), (2, "Site A2")):
            body = record(timestamp=f"2024-06-01T10:00:0{second}Z", site_name=site)
            path = f"/api/models/id/{backend.model_id}/records"
            response = call(server, "POST", path, backend.token, json=body)
            assert response.status_code == 200, response.text
        yield server
    finally:
        server.stop()


# --- 1. The request line: 8,190 bytes -------------------------------------------------------


def long_filter_query(size: int = 8000) -> str:
    """``site_names=...`` repeated (Site A1, then field sites) up to about ``size`` bytes."""
    names = ["Site A1"] + [f"Field site {n:03d}" for n in range(FIELD_SITES)]
    query = ""
    for count in range(1, len(names) + 1):
        longer = urlencode([("site_names", name) for name in names[:count]])
        if len(longer) > size:
            break
        query = longer
    assert size - 50 < len(query) <= size, len(query)
    return query


def assert_only_site_a1_records(response: requests.Response) -> None:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["timestamp"] for line in lines] == ["2024-06-01T10:00:01Z"]  # not Site A2's


def test_gunicorn_answers_a_filter_query_of_8000_bytes(gunicorn, backend):
    query = long_filter_query()
    path = f"/api/models/id/{backend.model_id}/records/filter?{query}"
    assert len(f"GET {path} HTTP/1.1") > 4094  # gunicorn's default limit: a 414 before
    assert_only_site_a1_records(call(gunicorn, "GET", path, backend.token))


def request_line(length: int) -> bytes:
    """A ``GET /healthz?...`` request line of exactly ``length`` bytes (without CRLF)."""
    head, tail = b"GET /healthz?pad=", b" HTTP/1.1"
    line = head + b"x" * (length - len(head) - len(tail)) + tail
    assert len(line) == length
    return line


def test_gunicorn_allows_a_request_line_of_8190_bytes_and_refuses_a_longer_one(gunicorn):
    longest = exchange(gunicorn.port, request_line(8190) + b"\r\n" + _HEADERS)
    assert longest.status == 200, longest
    too_long = exchange(gunicorn.port, request_line(8191) + b"\r\n" + _HEADERS)
    assert too_long.status == 414  # gunicorn's own page (HTML): nginx answers it in production


# --- Raw HTTP exchanges ------------------------------------------------------------------------

_HEADERS = b"Host: 127.0.0.1\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)


def exchange(
    port: int, data: bytes, *, timeout: float = 10, tls: ssl.SSLContext | None = None
) -> Answer:
    """Send ``data`` on a new connection and read the answer until the server closes."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as plain:
        sock = tls.wrap_socket(plain, server_hostname="127.0.0.1") if tls else plain
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - started)
