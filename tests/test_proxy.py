"""The production layout: nginx (``config/nginx.conf``) in front of the production server
(gunicorn with ``config/gunicorn.conf.py``, as ``make serve`` runs it).

Each nginx here is the real template rendered into a folder of its own (pid, logs, temporary
files, a self-signed certificate) on free ports, started with ``-p FOLDER -c FILE -g 'daemon
off;'``: the machine's /etc/nginx and its service are never used. The service runs on a
SQLite database of its own (as in ``test_production_settings``), on either suite run.

- Request lines: gunicorn allows 8,190 bytes (a long ``site_names`` list), nginx the same, and
  nginx answers a longer one itself, as JSON.
- Slow clients: without nginx, clients sending bodies slowly hold every gunicorn thread and
  ``/healthz`` goes unanswered; with nginx in front it answers at once with 128 of them, and
  gunicorn holds none.
- nginx's own errors (400, 413, 414, 431, gunicorn unreachable...) are the API's JSON.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pwd
import re
import runpy
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from django.conf import settings

from config.render_nginx import DEFAULTS, render
from tests.test_production_settings import (
    BASE_DIR,
    GunicornServer,
    call,
    environment,
    free_port,
    manage,
    production,
    record,
)

NGINX = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/sbin")
NO_NGINX = "nginx is not installed (apt-get install nginx; .ci/run does)"

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
            # Closed after the answer, so that no idle connection of the test's own stays
            # open to gunicorn (the slow-client tests count those).
            headers = {"Connection": "close"}
            response = call(server, "POST", path, backend.token, json=body, headers=headers)
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
    """Send ``data`` on a new connection and read the answer (to its Content-Length, else
    until the server closes)."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as plain:
        sock = tls.wrap_socket(plain, server_hostname="127.0.0.1") if tls else plain
        sock.sendall(data)
        length = None
        while length is None or len(received) < length:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:  # nginx resets a connection it refused a body on
                chunk = b""
            if not chunk:
                break
            received += chunk
            head, separator, _ = received.partition(b"\r\n\r\n")
            if separator and length is None:
                found = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                length = len(head) + 4 + int(found.group(1)) if found else float("inf")
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - started)


# --- nginx in front ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class NginxServer:
    """``config/nginx.conf`` rendered into ``folder`` (pid, logs, temporary files), listening on
    free ports of 127.0.0.1, in front of ``upstream``; ``replace`` changes the rendered text
    (each old text must be there), e.g. a shorter timeout."""

    def __init__(
        self,
        folder: Path,
        upstream: str,
        certificate: tuple[Path, Path],
        replace: dict[str, str] | None = None,
    ):
        (folder / "temp").mkdir(parents=True, exist_ok=True)  # nginx makes only its subfolders
        self.folder = folder
        self.http_port, self.https_port = free_port(), free_port()
        self.http_url = f"http://127.0.0.1:{self.http_port}"
        self.https_url = f"https://127.0.0.1:{self.https_port}"
        self.certificate = str(certificate[0])
        text = render(
            # Workers run as the user running the tests (when root, nginx would otherwise
            # switch them to www-data, who cannot enter pytest's folders).
            USER=pwd.getpwuid(os.geteuid()).pw_name,
            PID=str(folder / "nginx.pid"),
            ERROR_LOG=str(folder / "error.log"),
            ACCESS_LOG=str(folder / "access.log"),
            TEMP_DIR=str(folder / "temp"),
            UPSTREAM=upstream,
            HTTP_LISTEN=f"127.0.0.1:{self.http_port}",
            HTTPS_LISTEN=f"127.0.0.1:{self.https_port}",
            SERVER_NAME="127.0.0.1",
            SSL_CERTIFICATE=str(certificate[0]),
            SSL_CERTIFICATE_KEY=str(certificate[1]),
        )
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        self.conf = folder / "nginx.conf"
        self.conf.write_text(text)
        self._output = open(folder / "nginx.out", "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [
                NGINX,
                "-p",
                f"{folder}/",
                "-e",
                str(folder / "error.log"),
                "-c",
                str(self.conf),
                "-g",
                "daemon off;",
            ],
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 20
        for port in (self.http_port, self.https_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"nginx did not start:\n{self.log()}") from None
                    time.sleep(0.05)

    def log(self) -> str:
        parts = [self.folder / "nginx.out", self.folder / "error.log"]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())[-3000:]

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.certificate)

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return requests.get(f"{self.https_url}{path}", verify=self.certificate, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._output.close()


@pytest.fixture(scope="module")
def nginx(gunicorn, certificate, tmp_path_factory) -> Iterator[NginxServer]:
    if NGINX is None:
        pytest.skip(NO_NGINX)
    server = NginxServer(
        tmp_path_factory.mktemp("nginx"), f"127.0.0.1:{gunicorn.port}", certificate
    )
    yield server
    server.stop()


@pytest.fixture
def start_nginx(certificate, tmp_path) -> Iterator[Callable[..., NginxServer]]:
    """Starts an nginx of the test's own (a dead upstream, a shorter timeout...)."""
    if NGINX is None:
        pytest.skip(NO_NGINX)
    started: list[NginxServer] = []

    def start(upstream: str, **replace: str) -> NginxServer:
        server = NginxServer(tmp_path / f"nginx-{len(started)}", upstream, certificate, replace)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def test_the_filter_query_of_8000_bytes_passes_through_nginx(nginx, backend):
    path = f"/api/models/id/{backend.model_id}/records/filter?{long_filter_query()}"
    response = nginx.get(path, headers={"Authorization": f"Token {backend.token}"})
    assert_only_site_a1_records(response)


def test_nginx_passes_a_request_line_of_8190_bytes_and_answers_a_longer_one_as_json(nginx):
    longest = exchange(nginx.http_port, request_line(8190) + b"\r\n" + _HEADERS)
    assert longest.status == 200, longest  # gunicorn's answer: nginx passed it on
    assert longest.json() == {"database": "ok", "storage": "ok"}
    assert_json_error(exchange(nginx.http_port, request_line(8191) + b"\r\n" + _HEADERS), 414)


@pytest.mark.parametrize("colon", [b": ", b":"], ids=["space", "no-space"])
def test_nginx_passes_a_header_of_8190_bytes_and_answers_a_longer_one_as_json(nginx, colon):
    def header(length: int) -> bytes:
        line = b"X-Padding" + colon
        return line + b"y" * (length - len(line)) + b"\r\n"

    request = b"GET /healthz HTTP/1.1\r\n"
    longest = exchange(nginx.http_port, request + header(8190) + _HEADERS)
    assert longest.status == 200, longest  # gunicorn (limit_request_field_size) accepted it
    assert_json_error(exchange(nginx.http_port, request + header(8191) + _HEADERS), 431)


def test_nginx_forwards_the_host_the_scheme_and_nothing_a_client_claims(nginx, backend):
    token = {"Authorization": f"Token {backend.token}"}
    over_tls = nginx.get("/api/models/all", headers=token)
    assert over_tls.status_code == 200, over_tls.text  # X-Forwarded-Proto: https
    assert over_tls.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    claims = {
        "X-Forwarded-Proto": "https",  # overwritten with the real scheme: http
        "X-Forwarded-Host": "evil.example.org",  # overwritten with the Host
        "X-Forwarded-Ssl": "on",  # removed: gunicorn would refuse the contradiction (HTML 400)
        "X-Forwarded-Protocol": "ssl",
    }
    plain = requests.get(
        f"{nginx.http_url}/api/models/all",
        headers={**token, **claims},
        allow_redirects=False,
        timeout=10,
    )
    assert plain.status_code == 301  # the service saw plain HTTP
    assert plain.headers["Location"] == "https://127.0.0.1/api/models/all"
    probe = requests.get(f"{nginx.http_url}/healthz", headers=claims, timeout=10)
    assert probe.status_code == 200, probe.text  # load-balancer probes over plain HTTP


def test_a_chunked_bulk_body_reaches_gunicorn_with_its_length(nginx, gunicorn, backend):
    """nginx reads a chunked body whole and passes it on with a Content-Length, so the
    service checks it against its limit rather than refusing it with 411."""
    lines = [
        json.dumps(record(timestamp=f"2024-06-03T10:00:0{n}Z", site_name="Site A2")) + "\n"
        for n in range(5)
    ]
    path = f"/api/models/id/{backend.model_id}/records"
    headers = {"Authorization": f"Token {backend.token}", "Content-Type": "application/x-ndjson"}
    chunked = (line.encode() for line in lines)  # no length: sent chunked
    direct = call(gunicorn, "POST", path, headers={**headers, "Connection": "close"}, data=chunked)
    assert direct.status_code == 411, direct.text  # straight to gunicorn
    response = requests.post(
        f"{nginx.https_url}{path}",
        data=(line.encode() for line in lines),
        headers=headers,
        verify=nginx.certificate,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"created": 5, "skipped_existing": 0}


# --- 2. Slow clients ----------------------------------------------------------------------------

#: Slow clients arrive in waves of this many (half dribbling a body, half stopped in it).
WAVE = 16
#: At most this many waves. gunicorn's two workers share connections unevenly (one may take
#: all 16 of a wave while the other keeps its 4 threads free), so the control adds waves until
#: /healthz goes unanswered: in practice after one to three.
WAVES = 8
#: "Promptly": /healthz must answer within this behind nginx, and does not without it.
PROMPTLY = 3.0


def slow_request(token: str) -> tuple[bytes, bytes]:
    """(head, body) of an authenticated ``POST /api/sites`` with a 200-byte body: gunicorn
    gives it a thread that waits for the whole body."""
    body = json.dumps({"site_name": "Slow client", "site_info": {"pad": ""}})
    body = body.replace('""', '"' + "x" * (200 - len(body)) + '"').encode()
    head = (
        "POST /api/sites HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head, body


class SlowClients:
    """Connections sending :func:`slow_request` slowly: half send its head and 10 bytes of
    body then one more byte every second, half send the same then nothing."""

    def __init__(self, connect: Callable[[], socket.socket], token: str):
        self.connect = connect
        self.head, self.body = slow_request(token)
        self.dribbling: list[list] = []  # [socket, bytes of body sent]
        self.stopped: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._dribble, daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self.dribbling) + len(self.stopped)

    def add(self, count: int) -> None:
        for n in range(count):
            sock = self.connect()
            sock.sendall(self.head + self.body[:10])
            with self._lock:
                if n % 2:
                    self.stopped.append(sock)
                else:
                    self.dribbling.append([sock, 10])

    def _dribble(self) -> None:
        while not self._done.wait(1.0):
            with self._lock:
                for client in self.dribbling:
                    sock, sent = client
                    if sent < len(self.body) - 1:  # never the last byte
                        try:
                            sock.sendall(self.body[sent : sent + 1])
                            client[1] += 1
                        except OSError:
                            pass

    def least_sent(self) -> int:
        """The fewest bytes of body any dribbling client has sent so far."""
        with self._lock:
            return min(sent for _, sent in self.dribbling)

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        for sock in [sock for sock, _ in self.dribbling] + self.stopped:
            sock.close()


def probe(url: str, verify: str | bool = True) -> float:
    """Seconds ``GET /healthz`` took to answer 200; raises requests.Timeout past PROMPTLY."""
    started = time.monotonic()
    response = requests.get(f"{url}/healthz", timeout=PROMPTLY, verify=verify)
    assert response.status_code == 200, response.text
    return time.monotonic() - started


def connections_to(port: int) -> int:
    """Established TCP connections that 127.0.0.1:``port`` has accepted (``/proc/net/tcp``)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "01" and local == f"0100007F:{port:04X}":
            count += 1
    return count


def no_connections_to(port: int) -> bool:
    """Whether ``port`` holds no connection (after a probe, gunicorn may take a moment to
    close its end)."""
    deadline = time.monotonic() + 2
    while connections_to(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return connections_to(port) == 0


def test_behind_nginx_healthz_answers_promptly_while_slow_clients_hold_connections(
    nginx, gunicorn, backend
):
    def connect() -> socket.socket:
        plain = socket.create_connection(("127.0.0.1", nginx.https_port), timeout=10)
        return nginx.tls().wrap_socket(plain, server_hostname="127.0.0.1")

    clients = SlowClients(connect, backend.token)
    try:
        seconds = []
        for _ in range(WAVES):  # as many as the control ever opens
            clients.add(WAVE)
            seconds.append(probe(nginx.https_url, nginx.certificate))
        deadline = time.monotonic() + 20
        while clients.least_sent() < 12:  # every body still arriving, byte by byte
            assert time.monotonic() < deadline, "the clients stopped dribbling"
            seconds.append(probe(nginx.https_url, nginx.certificate))
            time.sleep(0.5)
        assert max(seconds) < PROMPTLY, seconds
        assert no_connections_to(gunicorn.port)  # nginx holds them all; gunicorn none
    finally:
        clients.close()
    assert len(clients) == WAVE * WAVES


def test_without_nginx_slow_clients_hold_every_gunicorn_thread(gunicorn, backend):
    """The control: the same clients straight to gunicorn (2 workers of 4 threads) leave
    /healthz unanswered, until they go."""
    clients = SlowClients(
        lambda: socket.create_connection(("127.0.0.1", gunicorn.port), timeout=10),
        backend.token,
    )
    try:
        stalled = False
        for _ in range(WAVES):
            clients.add(WAVE)
            try:
                probe(gunicorn.url)
            except requests.Timeout:
                stalled = True
                break
        assert stalled, f"/healthz still answered with {len(clients)} slow clients"
        assert connections_to(gunicorn.port) >= len(clients)
    finally:
        clients.close()
    assert requests.get(f"{gunicorn.url}/healthz", timeout=15).status_code == 200  # free again


def test_nginx_drops_a_stalled_request_without_passing_it_on(start_nginx, gunicorn, backend):
    """A body (or a header) that stops arriving is dropped after client_body_timeout
    (client_header_timeout), shortened to 1 s here, without an answer and without gunicorn
    ever seeing it."""
    nginx = start_nginx(
        f"127.0.0.1:{gunicorn.port}",
        **{
            "client_body_timeout 30s;": "client_body_timeout 1s;",
            "client_header_timeout 10s;": "client_header_timeout 1s;",
        },
    )
    head, body = slow_request(backend.token)
    for partial in (head + body[:10], head[:40]):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", nginx.http_port), timeout=10) as sock:
            sock.sendall(partial)
            time.sleep(0.5)
            assert no_connections_to(gunicorn.port)
            try:
                received = sock.recv(65536)
            except ConnectionResetError:  # reset_timedout_connection
                received = b""
        assert received == b""  # closed, no answer
        assert 0.9 < time.monotonic() - started < 5
    time.sleep(0.2)  # the access log line
    assert '"POST /api/sites HTTP/1.1" 408 0' in (nginx.folder / "access.log").read_text()


# --- 3. nginx's own errors, as the API's JSON ----------------------------------------------------


def assert_json_error(answer: Answer, status: int) -> dict:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json", answer.headers
    body = answer.json()
    assert list(body) == ["detail"] and body["detail"].endswith("."), body
    return body


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="garbage-request-line"),
        pytest.param(b"\x16\x03\x01\x00\xa5\x01\x00\x00\r\n\r\n", 400, id="binary"),
        pytest.param(request_line(9 * 1024) + b"\r\n" + _HEADERS, 414, id="9KB-request-line"),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nX-Padding: " + b"y" * 20_000 + b"\r\n" + _HEADERS,
            431,
            id="20KB-header",
        ),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\n"
            + b"".join(b"X-Padding-%d: %s\r\n" % (n, b"y" * 7000) for n in range(6))
            + _HEADERS,
            431,
            id="42KB-of-headers",
        ),
        pytest.param(
            b"POST /api/sites HTTP/1.1\r\nContent-Length: 200000000\r\n" + _HEADERS,
            413,
            id="body-over-client_max_body_size",
        ),
        pytest.param(
            b"POST /api/sites HTTP/1.1\r\nTransfer-Encoding: gzip\r\n" + _HEADERS,
            501,
            id="unknown-transfer-coding",
        ),
        pytest.param(b"GET /healthz HTTP/2.0\r\n" + _HEADERS, 505, id="http-2.0-request-line"),
        pytest.param(b"TRACE /healthz HTTP/1.1\r\n" + _HEADERS, 405, id="trace"),
        pytest.param(b"GET /.nginx/400 HTTP/1.1\r\n" + _HEADERS, 404, id="error-page-path"),
    ],
)
def test_nginx_answers_its_own_errors_as_json(nginx, gunicorn, request_bytes, status):
    answer = exchange(nginx.http_port, request_bytes)
    assert_json_error(answer, status)
    assert answer.seconds < 2  # e.g. the 413 on the declared length, without reading a body


def test_plain_http_to_the_https_port_is_a_json_400(nginx):
    assert_json_error(exchange(nginx.https_port, b"GET /healthz HTTP/1.1\r\n" + _HEADERS), 400)


def test_nginx_answers_503_with_retry_after_when_gunicorn_is_stopped(
    backend, start_nginx, tmp_path
):
    server = GunicornServer(backend.env, tmp_path / "gunicorn.log")
    upstream = f"127.0.0.1:{server.port}"
    server.stop()
    nginx = start_nginx(upstream)
    for request in (
        b"GET /healthz HTTP/1.1\r\n" + _HEADERS,
        b"POST /api/sites HTTP/1.1\r\nContent-Length: 2\r\n" + _HEADERS[:-2] + b"\r\n{}",
    ):
        answer = exchange(nginx.http_port, request)
        body = assert_json_error(answer, 503)
        assert answer.headers["retry-after"] == "5"
        assert body == {"detail": "The service is unreachable; please try again shortly."}


def test_nginx_answers_503_with_retry_after_when_gunicorn_does_not_answer(start_nginx):
    """A gunicorn that accepts connections and never answers: proxy_read_timeout (shortened to
    1 s here) gives nginx's 504, answered as the same 503."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the connections; nobody reads them
        nginx = start_nginx(
            f"127.0.0.1:{silent.getsockname()[1]}",
            **{"proxy_read_timeout 300s;": "proxy_read_timeout 1s;"},
        )
        answer = exchange(nginx.http_port, b"GET /healthz HTTP/1.1\r\n" + _HEADERS)
    assert_json_error(answer, 503)
    assert answer.headers["retry-after"] == "5"
    assert 0.9 < answer.seconds < 5


# --- The template and the limits it must agree with ---------------------------------------------


def test_the_nginx_limits_agree_with_gunicorn_and_the_service():
    text = (BASE_DIR / "config" / "nginx.conf").read_text()
    gunicorn_conf = runpy.run_path(str(BASE_DIR / "config" / "gunicorn.conf.py"))
    count, size = re.search(r"large_client_header_buffers (\d+) (\d+)k;", text).groups()
    longest_line = int(size) * 1024 - len("\r\n")  # a line must fit in one buffer
    assert longest_line == gunicorn_conf["limit_request_line"] == 8190
    assert gunicorn_conf["limit_request_field_size"] >= longest_line + len(" \r\n")
    body_limit = int(re.search(r"client_max_body_size (\d+)m;", text).group(1)) * 1024**2
    largest_form = settings.RECORD_FILE_MAX_SIZE + settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert body_limit > largest_form and body_limit > settings.RECORDS_BULK_MAX_BODY_SIZE
    for directive in ("proxy_request_buffering on;", "proxy_buffering on;"):
        assert directive in text


def test_render_fills_every_placeholder_and_refuses_unknown_ones():
    text = render()
    assert not re.search(r"@[A-Z_]+@", text)
    assert f"server {DEFAULTS['UPSTREAM']} " in text and "user www-data;" in text
    assert "server 10.0.0.5:8000 " in render(UPSTREAM="10.0.0.5:8000")
    with pytest.raises(ValueError, match="COLOUR"):
        render(COLOUR="red")
