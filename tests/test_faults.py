"""Faults of the world around the service, made real: the database and the object store
unreachable or failing half-way, a client that hangs up in the middle of a stream, clients
that ask too often, and credentials that must never reach the logs.

Nothing of the service is mocked. The database is made unreachable by pointing the connection
at a port on which nothing listens (as in ``test_health``) or, on PostgreSQL, by cutting a
TCP proxy that stands between a real WSGI server and the shared server (which itself is never
stopped). S3 is moto's server over HTTP, or a raw socket server that misbehaves on purpose.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import select
import socket
import struct
import threading
import time
import uuid
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from models_api.api.errors import DATABASE_UNAVAILABLE
from models_api.api.log_filters import redact
from models_api.models import Dataset, MLModel
from records.ingest import ingest_records
from records.models import ModelRecord
from records.validation import parse_record
from tests.conftest import record_body, stored_keys, token_client, use_s3
from tests.helpers import assert_error
from tests.test_health import closed_port, database_unreachable

pytestmark = pytest.mark.django_db

ON_POSTGRESQL = connection.vendor == "postgresql"
postgresql_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="needs PostgreSQL")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
NDJSON = "application/x-ndjson"


def post_with_file(client, model, name="leaf.png", content=PNG, **overrides):
    fields = record_body(**overrides)
    fields["model_data"] = json.dumps(fields["model_data"])
    fields["record_file"] = SimpleUploadedFile(name, content, content_type="image/png")
    return client.post(f"/api/models/id/{model.id}/records", fields, format="multipart")


def post_bulk(client, model, *records: dict):
    body = "".join(json.dumps(record) + "\n" for record in records)
    return client.generic("POST", f"/api/models/id/{model.id}/records", body, content_type=NDJSON)


def files_under(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def token_of(username: str) -> str:
    return Token.objects.get(user__username=username).key


# =============================================================================================
# The database unreachable (both databases: the connection points at nothing)
# =============================================================================================


def _requests(model: MLModel) -> dict:
    """Each kind of API request, and the status it answers when the database is there."""
    base = f"/api/models/id/{model.id}"
    return {
        "read": (lambda c: c.get(f"{base}"), 200),
        "read-list": (lambda c: c.get("/api/models/all"), 200),
        "write-json-record": (
            lambda c: c.post(f"{base}/records", record_body(dataset_name="Outage"), format="json"),
            200,
        ),
        "write-record-with-file": (lambda c: post_with_file(c, model, dataset_name="Outage"), 200),
        "write-bulk": (lambda c: post_bulk(c, model, record_body(dataset_name="Outage")), 200),
        "change": (lambda c: c.patch(base, {"model_info": {"outage": True}}, format="json"), 200),
        "stream": (lambda c: c.get(f"{base}/records"), 200),
        "stream-filter": (lambda c: c.get(f"{base}/records/filter?site_names=Site+A1"), 200),
        "record": (lambda c: c.get(f"/api/models/records/id/{uuid.uuid4()}"), 404),
        "delete": (lambda c: c.delete(f"/api/sites/id/{uuid.uuid4()}"), 404),
    }


REQUEST_KINDS = list(_requests(MLModel(id=uuid.uuid4())))


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_api_answers_503_while_the_database_is_unreachable_and_recovers(
    api, demo, tmp_path, media_root, kind
):
    send, healthy_status = _requests(demo)[kind]
    with database_unreachable(tmp_path):
        response = send(api)
        body = assert_error(response, 503)
        assert body == {"detail": DATABASE_UNAVAILABLE}
    # Nothing was half-written: no row, no dataset, no file.
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.filter(dataset_name="Outage").exists()
    assert files_under(media_root) == []
    assert MLModel.objects.get(pk=demo.pk).model_info != {"outage": True}
    # The database is back: the very next request is served.
    response = send(api)
    assert response.status_code == healthy_status, response.content[:300]


# --- A real outage on PostgreSQL: a TCP proxy between a persistent worker and the server ----


class TcpProxy:
    """Forwards a local port to PostgreSQL. ``stop()`` resets every open connection and
    refuses new ones (the server is "down"); ``start()`` listens on the same port again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._running = False

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._running = True
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def _accept(self, listener: socket.socket) -> None:
        try:
            while self._running:
                ready, _, _ = select.select([listener], [], [], 0.05)
                if not ready:
                    continue
                client, _ = listener.accept()
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._sockets.update((client, upstream))
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()
        finally:
            listener.close()  # closed here, once no select() holds it: the port is free

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:  # reset, like a server that went away
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(OSError):
                # shutdown() first: it wakes the pump blocked in recv() on this socket, which
                # would otherwise keep the connection open after close().
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class PersistentWorker:
    """Django served by one thread that keeps its database connection between requests, as a
    production worker does (``CONN_MAX_AGE`` and ``CONN_HEALTH_CHECKS`` from the settings),
    with the connection going through ``database``'s host and port."""

    def __init__(self, database_settings: dict) -> None:
        self.server = make_server(
            "127.0.0.1", 0, WSGIHandler(), server_class=WSGIServer, handler_class=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self._serve, args=(database_settings,), daemon=True)
        self._thread.start()

    def _serve(self, database_settings: dict) -> None:
        wrapper = connections["default"].__class__(database_settings, "default")
        connections["default"] = wrapper  # this thread only
        try:
            self.server.serve_forever(poll_interval=0.05)
        finally:
            wrapper.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@pytest.fixture
def proxied_worker(transactional_db, settings):
    """(proxy, worker, headers): a worker whose database connection goes through a proxy."""
    call_command("load_demo", stdout=io.StringIO())
    call_command("create_api_user", "worker-client", stdout=io.StringIO())
    headers = {"Authorization": f"Token {token_of('worker-client')}"}
    original = connections["default"].settings_dict
    proxy = TcpProxy(original["HOST"] or "127.0.0.1", int(original["PORT"] or 5432))
    proxy.start()
    database = {**original, "HOST": "127.0.0.1", "PORT": str(proxy.port)}
    database["OPTIONS"] = {**original.get("OPTIONS", {}), "connect_timeout": 2}
    assert database["CONN_MAX_AGE"] > 0 and database["CONN_HEALTH_CHECKS"], (
        "the production settings keep connections (DATABASE_CONN_MAX_AGE) with health checks"
    )
    worker = PersistentWorker(database)
    yield proxy, worker, headers, database
    worker.stop()
    proxy.stop()


def _other_backends() -> int:
    """Backends of the test database other than the test's own (the worker's, here)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND client_addr IS NOT NULL"
        )
        return cursor.fetchone()[0]


@postgresql_only
def test_real_outage_answers_503_everywhere_then_the_worker_recovers_by_itself(proxied_worker):
    proxy, worker, headers, _ = proxied_worker
    model = MLModel.objects.get(model_name="Model A")
    records = f"{worker.url}/api/models/id/{model.id}/records"
    first = requests.get(f"{worker.url}/api/models/all", headers=headers, timeout=10)
    assert first.status_code == 200

    proxy.stop()  # the database goes away: open connections reset, new ones refused
    outage = {
        "read": requests.get(f"{worker.url}/api/models/all", headers=headers, timeout=10),
        "write": requests.post(records, json=record_body(), headers=headers, timeout=10),
        "stream": requests.get(records, headers=headers, timeout=10),
        "bulk": requests.post(
            records,
            data=json.dumps(record_body()) + "\n",
            headers={**headers, "Content-Type": NDJSON},
            timeout=10,
        ),
        "healthz": requests.get(f"{worker.url}/healthz", timeout=10),
    }
    for name, response in outage.items():
        assert response.status_code == 503, (name, response.status_code, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json"), name
        assert response.json()["detail"], name
    assert outage["read"].json() == {"detail": DATABASE_UNAVAILABLE}

    proxy.start()  # back on the same address
    response = requests.post(records, json=record_body(), headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    lines = requests.get(records, headers=headers, timeout=10).text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == [response.json()["id"]]
    assert requests.get(f"{worker.url}/healthz", timeout=10).status_code == 200


@postgresql_only
def test_database_restart_between_requests_is_invisible_to_the_next_request(proxied_worker):
    """The worker's kept connection dies while it is idle (a server restart, a failover);
    ``CONN_HEALTH_CHECKS`` makes the next request notice and reconnect instead of failing."""
    proxy, worker, headers, _ = proxied_worker
    url = f"{worker.url}/api/models/all"
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    assert _other_backends() >= 1  # the worker keeps its connection
    proxy.stop()
    proxy.start()
    for _ in range(3):
        response = requests.get(url, headers=headers, timeout=10)
        assert response.status_code == 200, response.text


@postgresql_only
def test_without_health_checks_a_restart_costs_one_503_never_a_500(proxied_worker, settings):
    """The control for the test above: the same fault, health checks off. The first request
    fails cleanly (503) and the connection is dropped, so the one after is served."""
    proxy, worker, headers, database = proxied_worker
    worker.stop()
    worker = PersistentWorker({**database, "CONN_HEALTH_CHECKS": False})
    try:
        url = f"{worker.url}/api/models/all"
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
        proxy.stop()
        proxy.start()
        first = requests.get(url, headers=headers, timeout=10)
        assert first.status_code == 503, first.text
        assert first.json() == {"detail": DATABASE_UNAVAILABLE}
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
    finally:
        worker.stop()


def _next_request_checks_the_kept_connection() -> None:
    """What Django does when a request starts on a kept connection (the test client leaves
    it out): the connection's health check is due again."""
    connection.close_if_unusable_or_obsolete()
    assert connection.health_check_enabled and not connection.health_check_done


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_token_lookup_is_the_health_check_of_a_kept_connection(demo, monkeypatch):
    """No SELECT 1 of its own before a token-authenticated request: the token lookup checks
    the kept connection. When that connection died while idle, the lookup reconnects and
    the request is served as if nothing had happened."""
    client = token_client("kept-connection")
    assert client.get("/api/models/all").status_code == 200
    checks = []
    wrapper = type(connections["default"])
    original = wrapper.is_usable
    monkeypatch.setattr(
        wrapper, "is_usable", lambda self: checks.append(self.alias) or original(self)
    )

    _next_request_checks_the_kept_connection()
    assert client.get("/api/models/all").status_code == 200
    assert checks == []  # the lookup was the check: no round trip of its own
    backend = connection.connection.info.backend_pid

    _next_request_checks_the_kept_connection()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as monitor:
        monitor.execute("SELECT pg_terminate_backend(%s)", [backend])
    response = client.get("/api/models/all")
    assert response.status_code == 200, response.content
    assert connection.connection.info.backend_pid != backend
    assert checks == []


# =============================================================================================
# S3 unreachable or failing in the middle of an upload
# =============================================================================================


class FaultyEndpoint:
    """An HTTP endpoint that misbehaves in one way, to stand in for S3.

    - ``close-at-once``: accepts the connection and closes it before reading anything;
    - ``reset-mid-body``: reads the headers and part of the body, then resets (RST);
    - ``garbage``: answers something that is not HTTP;
    - ``http-500``: answers S3's ``InternalError`` (500) to every request;
    - ``silent``: reads and never answers (the client's read timeout fires).
    """

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.connections = 0
        self.body_bytes_read = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._open: list[socket.socket] = []
        self._stop = threading.Event()

    def __enter__(self) -> str:
        threading.Thread(target=self._serve, daemon=True).start()
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for sock in [*self._open, self._listener]:
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.05)
                if ready:
                    client, _ = self._listener.accept()
                else:
                    continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    @staticmethod
    def _read_headers(client: socket.socket) -> bytes:
        client.settimeout(2)
        data = b""
        with contextlib.suppress(OSError):
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data

    def _handle(self, client: socket.socket) -> None:
        behaviour = self.behaviour
        if behaviour == "close-at-once":
            client.close()
            return
        data = self._read_headers(client)
        if behaviour == "reset-mid-body":
            with contextlib.suppress(OSError):
                if b"expect: 100-continue" in data.lower():
                    client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")  # go on, send the body
                client.settimeout(2)
                body = data.partition(b"\r\n\r\n")[2]
                while len(body) < 16 * 1024:  # part of the body, then cut
                    chunk = client.recv(16 * 1024)
                    if not chunk:
                        break
                    body += chunk
                self.body_bytes_read = max(self.body_bytes_read, len(body))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        elif behaviour == "garbage":
            with contextlib.suppress(OSError):
                client.sendall(b"this is not HTTP at all\r\n\r\n\x00\xff")
            client.close()
        elif behaviour == "http-500":
            body = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
                b"<Message>We encountered an internal error.</Message></Error>"
            )
            with contextlib.suppress(OSError):
                client.sendall(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                    + body
                )
            client.close()
        elif behaviour == "silent":
            self._open.append(client)  # held open, never answered


def use_failing_s3(settings, endpoint: str, bucket: str = "records") -> None:
    use_s3(settings, endpoint=endpoint, bucket=bucket)
    import botocore.config

    options = settings.STORAGES["default"]["OPTIONS"]
    options["client_config"] = botocore.config.Config(
        signature_version="s3v4", connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}
    )
    settings.STORAGES = {**settings.STORAGES}  # tell Django the storage changed


@pytest.mark.parametrize(
    "behaviour", ["close-at-once", "reset-mid-body", "garbage", "http-500", "silent"]
)
def test_s3_failing_during_the_upload_is_503_with_no_row_and_no_dataset(
    api, demo, settings, behaviour
):
    big = os.urandom(512 * 1024)  # larger than one read of the endpoint: cut mid-body
    faulty = FaultyEndpoint(behaviour)
    with faulty as endpoint:
        use_failing_s3(settings, endpoint)
        started = time.monotonic()
        response = post_with_file(api, demo, content=big, dataset_name="Only with its record")
        elapsed = time.monotonic() - started
    assert faulty.connections >= 1
    if behaviour == "reset-mid-body":
        assert 0 < faulty.body_bytes_read < len(big)  # cut in the middle of the upload
    body = assert_error(response, 503)
    assert "storage" in body["detail"].lower()
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.filter(dataset_name="Only with its record").exists()
    assert elapsed < 15, "a failing store must not hang the request"


def test_s3_bucket_deleted_between_requests_is_503_with_no_row_and_no_dataset(api, demo, s3):
    first = post_with_file(api, demo)
    assert first.status_code == 200, first.content
    for key in stored_keys(s3):
        s3.client.delete_object(Bucket=s3.bucket, Key=key)
    s3.client.delete_bucket(Bucket=s3.bucket)
    response = post_with_file(
        api, demo, timestamp="2024-06-01T11:00:00Z", dataset_name="Only with its record"
    )
    assert_error(response, 503)
    assert list(ModelRecord.objects.values_list("id", flat=True)) == [
        uuid.UUID(first.json()["id"])
    ]
    assert not Dataset.objects.filter(dataset_name="Only with its record").exists()
    s3.client.create_bucket(Bucket=s3.bucket)  # and back: the next upload is served
    again = post_with_file(api, demo, timestamp="2024-06-01T11:00:00Z")
    assert again.status_code == 200, again.content
    assert stored_keys(s3) == [again.json()["record_file"]]


def test_records_without_files_are_still_served_while_s3_is_down(api, demo, settings):
    """Only requests that touch a file need the store."""
    use_failing_s3(settings, f"http://127.0.0.1:{closed_port()}")
    response = api.post(f"/api/models/id/{demo.id}/records", record_body(), format="json")
    assert response.status_code == 200, response.content
    assert api.get(f"/api/models/id/{demo.id}/records").status_code == 200


# =============================================================================================
# S3 failing on delete: the row goes, the orphan is logged, purge_orphan_files cleans up
# =============================================================================================


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_orphan_files", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_record_deleted_while_s3_fails_leaves_a_logged_orphan_that_purge_removes(
    api, demo, s3, s3_endpoint, settings, caplog, django_capture_on_commit_callbacks
):
    kept = post_with_file(api, demo, name="kept.png").json()
    record = post_with_file(api, demo, timestamp="2024-06-01T11:00:00Z").json()
    key = record["record_file"]

    use_failing_s3(settings, f"http://127.0.0.1:{closed_port()}", bucket=s3.bucket)
    with caplog.at_level(logging.ERROR, logger="records.storage"):
        with django_capture_on_commit_callbacks(execute=True):
            response = api.delete(f"/api/models/records/id/{record['id']}")
    assert response.status_code == 200, response.content
    assert response.json() == {"id": record["id"], "deleted": True}
    assert not ModelRecord.objects.filter(pk=record["id"]).exists()
    logged = [r for r in caplog.records if r.name == "records.storage" and key in r.getMessage()]
    assert logged and logged[0].levelno == logging.ERROR
    assert "orphan" in logged[0].getMessage().lower()

    use_s3(settings, endpoint=s3_endpoint, bucket=s3.bucket)  # the store is back
    assert sorted(stored_keys(s3)) == sorted([kept["record_file"], key])
    # Just stored: the default grace period keeps it.
    assert key not in purge()
    dry = purge("--older-than", "0")
    assert dry.splitlines()[0] == key
    assert "1 orphaned file" in dry
    assert sorted(stored_keys(s3)) == sorted([kept["record_file"], key])  # a dry run
    deleted = purge("--older-than", "0", "--delete")
    assert key in deleted and "Deleted 1" in deleted
    assert stored_keys(s3) == [kept["record_file"]]
    # The surviving record's file still downloads.
    location = api.get(f"/api/models/records/id/{kept['id']}/download")["Location"]
    assert requests.get(location, timeout=10).content == PNG
    assert "0 orphaned files" in purge("--older-than", "0")


def test_model_deleted_while_s3_fails_logs_its_prefix_and_purge_removes_its_files(
    api, demo, s3, s3_endpoint, settings, caplog, django_capture_on_commit_callbacks
):
    keys = sorted(
        post_with_file(api, demo, timestamp=f"2024-06-01T1{n}:00:00Z").json()["record_file"]
        for n in range(3)
    )
    use_failing_s3(settings, f"http://127.0.0.1:{closed_port()}", bucket=s3.bucket)
    with caplog.at_level(logging.ERROR, logger="records.storage"):
        with django_capture_on_commit_callbacks(execute=True):
            assert api.delete(f"/api/models/id/{demo.id}").status_code == 200
    assert any(f"model_records/{demo.id}/" in r.getMessage() for r in caplog.records)
    use_s3(settings, endpoint=s3_endpoint, bucket=s3.bucket)
    assert stored_keys(s3) == keys
    assert purge("--older-than", "0").splitlines()[:3] == keys
    purge("--older-than", "0", "--delete")
    assert stored_keys(s3) == []


# --- purge_orphan_files on local storage ------------------------------------------------------


def _age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def local_files(api, demo, media_root):
    """Two records with files, and orphans beside them: old, young, and of another shape."""
    records = [
        post_with_file(api, demo, name=f"r{n}.png", timestamp=f"2024-06-01T1{n}:00:00Z").json()
        for n in range(2)
    ]
    orphan_dir = media_root / "model_records" / str(demo.id) / str(uuid.uuid4())
    orphan_dir.mkdir(parents=True)
    old = orphan_dir / "old.png"
    old.write_bytes(b"old")
    young = media_root / "model_records" / str(demo.id) / str(uuid.uuid4()) / "young.png"
    young.parent.mkdir(parents=True)
    young.write_bytes(b"young")
    stray = media_root / "model_records" / "stray.txt"
    stray.write_bytes(b"stray")
    outside = media_root / "elsewhere" / "not-ours.txt"
    outside.parent.mkdir(parents=True)
    outside.write_bytes(b"not under the record prefix")
    for path in media_root.rglob("*"):
        if path.is_file() and path != young:
            _age(path, 2 * 3600)
    _age(young, 60)
    return {
        "records": records,
        "old": old.relative_to(media_root).as_posix(),
        "young": young.relative_to(media_root).as_posix(),
        "stray": stray.relative_to(media_root).as_posix(),
        "outside": outside.relative_to(media_root).as_posix(),
    }


def test_purge_dry_run_lists_old_orphans_only(local_files, media_root):
    before = files_under(media_root)
    out = purge()
    listed = out.splitlines()[:-1]
    assert sorted(listed) == sorted([local_files["old"], local_files["stray"]])
    assert "2 orphaned files (dry run" in out
    assert "Kept 1 younger than 3600 seconds" in out
    assert "Checked 5 stored files" in out  # two records' files and three orphans
    assert files_under(media_root) == before


def test_purge_delete_removes_old_orphans_and_keeps_everything_else(local_files, media_root, api):
    out = purge("--delete")
    assert "Deleted 2 orphaned files of 2" in out
    remaining = files_under(media_root)
    assert local_files["old"] not in remaining and local_files["stray"] not in remaining
    assert local_files["young"] in remaining and local_files["outside"] in remaining
    for record in local_files["records"]:
        assert record["record_file"] in remaining
        assert api.get(f"/api/models/records/id/{record['id']}/download").status_code == 307
    # The orphan's own (record id) folder goes with it; the model's folder stays.
    assert not (media_root / local_files["old"]).parent.exists()
    assert (media_root / local_files["old"]).parent.parent.is_dir()


def test_purge_older_than_sets_the_grace_period(local_files):
    assert local_files["young"] in purge("--older-than", "30")
    assert local_files["young"] not in purge("--older-than", "120")


def test_purge_keeps_a_file_that_another_record_points_to(local_files, media_root):
    """The fast check is by record id (in the key); a key that another record names is still
    found through record_file itself."""
    first = local_files["records"][0]
    ModelRecord.objects.filter(pk=first["id"]).update(record_file=local_files["old"])
    out = purge()
    assert local_files["old"] not in out
    assert first["record_file"] in out  # now nothing points at it


def test_purge_checks_keys_in_batches_not_one_query_per_key(
    api, demo, media_root, django_assert_num_queries
):
    for n in range(5):
        post_with_file(api, demo, name=f"r{n}.png", timestamp=f"2024-06-01T1{n}:00:00Z")
    with django_assert_num_queries(3):  # ceil(5 / 2) batches, one query each
        out = purge("--batch-size", "2", "--older-than", "0")
    assert "0 orphaned files" in out and "Checked 5 stored files" in out
    with django_assert_num_queries(1):
        purge("--older-than", "0")  # the default batch (1,000) holds all five


def test_purge_refuses_bad_options(db):
    with pytest.raises(CommandError):
        purge("--older-than", "-1")
    with pytest.raises(CommandError):
        purge("--batch-size", "0")


def test_purge_with_nothing_stored_finds_nothing(db, media_root):
    assert "0 orphaned files" in purge("--older-than", "0")


def test_purge_fails_cleanly_when_s3_is_unreachable(db, settings):
    use_failing_s3(settings, f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(CommandError, match="unreachable"):
        purge()


# =============================================================================================
# A client that hangs up in the middle of a large NDJSON stream (PostgreSQL COPY)
# =============================================================================================


def _copy_backends(monitor: psycopg.Connection, database: str) -> list[tuple]:
    return monitor.execute(
        "SELECT pid, state, left(query, 60) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() AND query LIKE 'COPY (%%' "
        "AND state <> 'idle'",
        [database],
    ).fetchall()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_client_disconnecting_mid_stream_ends_the_copy_on_the_server(live_server, api, demo):
    def lines():
        start = datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC)
        for n in range(50_000):
            stamp = (start + datetime.timedelta(seconds=n)).isoformat()
            yield n + 1, parse_record(record_body(timestamp=stamp, dataset_name="Big"))

    result = ingest_records(model=demo, records=lines())
    assert result.created == 50_000
    settings_dict = connections["default"].settings_dict
    database = settings_dict["NAME"]
    monitor = psycopg.connect(
        host=settings_dict["HOST"] or "127.0.0.1",
        port=settings_dict["PORT"] or 5432,
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"] or None,
        dbname=database,
        autocommit=True,
    )
    host, port = live_server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(
            f"GET /api/models/id/{demo.id}/records HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Token {token_of('writer')}\r\nConnection: close\r\n\r\n".encode()
        )
        received = b""
        while len(received) < 300_000:
            chunk = sock.recv(65536)
            assert chunk, "the stream ended early"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200") or received.startswith(b"HTTP/1.0 200")
        assert _copy_backends(monitor, database), "the COPY should be running mid-stream"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # hang up (reset) without reading the rest

        deadline = time.monotonic() + 5
        busy = _copy_backends(monitor, database)
        while busy and time.monotonic() < deadline:
            time.sleep(0.1)
            busy = _copy_backends(monitor, database)
        leftover = monitor.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = %s "
            "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'",
            [database],
        ).fetchall()
        for pid, *_ in busy:  # never leave a running COPY behind for the teardown to wait on
            monitor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert not busy, f"the COPY kept running after the client left: {busy}"
        assert not [row for row in leftover if row[0] != connection.connection.info.backend_pid]
        # The server goes on serving.
        response = requests.get(
            f"{live_server.url}/api/models/id/{demo.id}/records/filter"
            "?start_timestamp=2024-06-01T00:00:00Z&end_timestamp=2024-06-01T00:00:09Z",
            headers={"Authorization": f"Token {token_of('writer')}"},
            timeout=10,
        )
        assert response.status_code == 200 and len(response.text.splitlines()) == 10
    finally:
        with contextlib.suppress(OSError):
            sock.close()
        monitor.close()


# =============================================================================================
# Throttling
# =============================================================================================


@pytest.fixture
def throttle_rates(monkeypatch):
    """Set DRF's throttle rates for one test.

    ``SimpleRateThrottle.THROTTLE_RATES`` is bound to ``api_settings.DEFAULT_THROTTLE_RATES``
    when DRF is imported; overriding ``settings.REST_FRAMEWORK`` reloads ``api_settings`` but
    not that class attribute, so the attribute itself is patched (and restored).
    """

    def set_rates(anon: str | None = None, user: str | None = None) -> None:
        monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"anon": anon, "user": user})

    return set_rates


def test_anonymous_requests_are_throttled_with_429_and_a_detail(anonymous, throttle_rates):
    throttle_rates(anon="3/minute")
    for _ in range(3):
        assert anonymous.get("/api/schema/", HTTP_ACCEPT="application/json").status_code == 200
    response = anonymous.get("/api/schema/", HTTP_ACCEPT="application/json")
    body = assert_error(response, 429)
    assert "throttled" in body["detail"]
    assert 0 < int(response["Retry-After"]) <= 60


def test_anonymous_requests_to_protected_endpoints_stay_401(anonymous, throttle_rates):
    """DRF checks permissions before throttles: without credentials the answer is 401 however
    often it is asked (and the anonymous budget is not spent on it)."""
    throttle_rates(anon="3/minute")
    for _ in range(6):
        assert_error(anonymous.get("/api/models/all"), 401)
    assert anonymous.get("/api/schema/").status_code == 200


def test_health_checks_are_never_throttled_even_at_a_tiny_rate(anonymous, throttle_rates):
    throttle_rates(anon="1/minute")
    for _ in range(5):
        assert anonymous.get("/healthz").status_code == 200


def test_authenticated_users_are_not_throttled_by_default(api, model, throttle_rates):
    throttle_rates(anon="3/minute", user=None)  # the default: API_USER_THROTTLE_RATE unset
    for _ in range(20):
        assert api.get("/api/models/all").status_code == 200


def test_a_user_rate_throttles_each_user_separately(api, reader, model, throttle_rates):
    throttle_rates(anon="100/minute", user="3/minute")  # API_USER_THROTTLE_RATE=3/minute
    for _ in range(3):
        assert api.get("/api/models/all").status_code == 200
    body = assert_error(api.get("/api/models/all"), 429)
    assert "throttled" in body["detail"]
    assert_error(api.post("/api/sites", {"site_name": "x"}, format="json"), 429)
    assert reader.get("/api/models/all").status_code == 200  # another user's own budget


def test_a_forged_x_forwarded_for_does_not_escape_the_anonymous_throttle(
    anonymous, throttle_rates
):
    throttle_rates(anon="3/minute")
    statuses = [
        anonymous.get(
            "/api/schema/", HTTP_ACCEPT="application/json", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}"
        ).status_code
        for n in range(6)
    ]
    assert 429 in statuses, statuses


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_a_throttled_public_page_answers_the_json_error_body(anonymous, throttle_rates, path):
    throttle_rates(anon="1/minute")
    anonymous.get(path)
    assert_error(anonymous.get(path), 429)


# =============================================================================================
# Credentials never reach the logs
# =============================================================================================


@pytest.fixture
def all_logs(caplog, console_log):
    """Every record at DEBUG and up (root, django.request, django.server, the apps) and the
    console output, as one text."""
    caplog.set_level(logging.DEBUG)
    for name in ("django.request", "django.server", "django.security", "models_api", "records"):
        caplog.set_level(logging.DEBUG, logger=name)

    def text() -> str:
        parts = [console_log.getvalue()]
        for record in caplog.records:
            parts.append(record.getMessage())
            if record.exc_info:
                parts.append(logging.Formatter().formatException(record.exc_info))
            if record.stack_info:
                parts.append(record.stack_info)
        return "\n".join(parts)

    return text


def test_tokens_never_appear_in_the_logs(api, reader, demo, settings, tmp_path, all_logs):
    valid = [token_of("writer"), token_of("reader")]
    unknown = uuid.uuid4().hex + "0123abcd"  # well-formed, no such token
    malformed = "zz-" + uuid.uuid4().hex
    model_path = f"/api/models/id/{demo.id}"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000

    created = api.post(f"{model_path}/records", record_body(), format="json")
    responses = [
        created,
        api.get("/api/models/all"),
        api.get(f"{model_path}/records"),
        api.get(f"/api/models/id/{uuid.uuid4()}"),  # 404
        api.get("/api/models?colour=red"),  # 400
        api.post(f"{model_path}/records", record_body(), format="json"),  # 409
        api.post(f"{model_path}/records", {"timestamp": "soon"}, format="json"),  # 400
        post_bulk(api, demo, {"timestamp": "never"}),  # 400
        api.post("/api/sites", {"site_name": "x" * 3000}, format="json"),  # 413
        reader.post("/api/sites", {"site_name": "x"}, format="json"),  # 403
        reader.get(f"{model_path}/records"),
        api.patch(f"/api/models/records/id/{created.json()['id']}", {}, format="json"),  # 400
    ]
    headers = (f"Token {unknown}", f"Token {malformed}", f"token {unknown}", f"Bearer {valid[0]}")
    for header in headers:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        responses.append(client.get("/api/models/all"))  # 401
        responses.append(client.post("/api/sites", {"site_name": "x"}, format="json"))
    with database_unreachable(tmp_path):
        responses.append(api.get("/api/models/all"))  # 503, logged as a warning
    statuses = sorted({r.status_code for r in responses})
    assert statuses == [200, 400, 401, 403, 404, 409, 413, 503], statuses
    assert all(r.status_code < 500 or r.status_code == 503 for r in responses)

    logged = all_logs()
    assert "Unauthorized" in logged and "Forbidden" in logged  # the logs did record them
    for secret in (*valid, unknown, malformed):
        assert secret not in logged


def test_sql_of_a_token_lookup_stays_out_of_the_logs_even_with_debug(
    api, model, settings, all_logs
):
    """With DEBUG on, Django logs every SQL statement with its parameters (the token key)
    at DEBUG on django.db.backends; the logging setup keeps that logger at INFO."""
    settings.DEBUG = True
    assert api.get("/api/models/all").status_code == 200
    assert token_of("writer") not in all_logs()


def test_redaction_filter_hides_credentials_in_any_message():
    key = uuid.uuid4().hex + "feedbeef"
    for message in (
        f"Authorization: Token {key}",
        f"authorization: token {key}",
        f"header was 'Bearer {key}'",
        f"GET /api/models/all?token={key}&x=1 HTTP/1.1",
        f"password={key}",
        f"https://bucket.s3.amazonaws.com/k?X-Amz-Signature={key}",
        f"X-API-Key: {key}",
        f"headers {{'X-Api-Key': '{key}'}}",
    ):
        assert key not in redact(message), message
        assert "[redacted]" in redact(message)
    assert redact("nothing secret here") == "nothing secret here"


def test_console_log_redacts_a_token_passed_as_an_argument(console_log):
    key = uuid.uuid4().hex + "feedbeef"
    logger = logging.getLogger("records.some_module")
    logger.warning("The client sent %s", f"Token {key}")
    logger.warning("A URL: %s", f"/x?token={key}")
    logger.warning("As text: Authorization: Token %s", key)
    output = console_log.getvalue()
    assert key not in output
    assert output.count("[redacted]") == 3


def test_s3_session_token_stays_out_of_a_debug_log(api, demo, s3, settings, caplog, console_log):
    """DJANGO_LOG_LEVEL=DEBUG (README) sets the root logger to DEBUG; the console is the log."""
    caplog.set_level(logging.DEBUG)
    session_token = "FQoGZXIvYXdzE" + uuid.uuid4().hex
    storage = settings.STORAGES["default"]
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {**storage, "OPTIONS": {**storage["OPTIONS"], "security_token": session_token}},
    }
    assert post_with_file(api, demo).status_code == 200  # moto accepts any session token
    assert session_token not in console_log.getvalue()


# =============================================================================================
# Permissions per verb on the record endpoints (what tests/test_auth.py does not cover)
# =============================================================================================


@pytest.fixture
def stored_record(api, demo):
    response = post_with_file(api, demo)
    assert response.status_code == 200, response.content
    return response.json()


def test_reader_can_get_every_record_endpoint(reader, demo, stored_record):
    base = f"/api/models/id/{demo.id}/records"
    record_path = f"/api/models/records/id/{stored_record['id']}"
    for path in (base, f"{base}/", f"{base}/filter", f"{base}/filter?site_names=Site+A1"):
        response = reader.get(path)
        assert response.status_code == 200, (path, response.status_code)
        assert b"".join(response.streaming_content).count(b"\n") == 1
    assert reader.get(record_path).json() == stored_record
    assert reader.get(f"{record_path}/download").status_code == 307


@pytest.mark.parametrize("how", ["json", "multipart", "ndjson"])
def test_reader_cannot_add_records_in_any_form(reader, demo, media_root, how):
    path = f"/api/models/id/{demo.id}/records"
    body = record_body(dataset_name="Refused")
    if how == "json":
        response = reader.post(path, body, format="json")
    elif how == "multipart":
        response = post_with_file(reader, demo, dataset_name="Refused")
    else:
        response = post_bulk(reader, demo, body)
    assert_error(response, 403)
    assert not ModelRecord.objects.exists()
    assert not Dataset.objects.filter(dataset_name="Refused").exists()
    assert files_under(media_root) == []


def test_reader_cannot_change_or_delete_a_record_or_its_file(reader, media_root, stored_record):
    path = f"/api/models/records/id/{stored_record['id']}"
    assert_error(reader.patch(path, {"model_data": {"changed": True}}, format="json"), 403)
    assert_error(reader.delete(path), 403)
    assert_error(reader.delete(f"{path}/"), 403)
    assert ModelRecord.objects.get(pk=stored_record["id"]).model_data == stored_record["model_data"]
    assert files_under(media_root) == [stored_record["record_file"]]
