"""Fixtures of the client's tests: the real service (pytest-django's ``live_server`` on the
test database), clients with real tokens, a TCP proxy that fails chosen requests, and the
skip of tests that wait for server features (``needs_server_formats``).

A test marked ``@pytest.mark.needs_server_formats("arrow", ...)`` names the server features
it needs; each is asked of the live server once per test process (a real request that a
server without the feature refuses in a known way), so that the test starts running by
itself as soon as the server has the feature.
"""

from __future__ import annotations

import collections
import contextlib
import io
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import httpx
import pytest
from django.core.management import call_command
from django.test.testcases import QuietWSGIRequestHandler
from models_api_client import Client
from rest_framework.authtoken.models import Token

from models_api.models import Experiment, MLModel

#: Settings of the test clients: quick retries, so that a test of retries takes no time.
FAST_RETRIES = {"retries": 3, "backoff": 0.01, "max_retry_wait": 0.05}


def token_for(username: str, *, read_only: bool = False) -> str:
    options = ["--read-only"] if read_only else []
    call_command("create_api_user", username, *options, stdout=io.StringIO())
    return Token.objects.get(user__username=username).key


@pytest.fixture
def server(live_server, transactional_db, monkeypatch):
    """The live service with the demo catalogue; ``url``, ``token`` (may read and write),
    ``model`` (Model A's id), ``other_model`` (B's), ``experiment`` (Experiment A's).

    The live server's handler writes an answer's head and body in separate sends; with
    Nagle's algorithm on, each answer then waits for the client's delayed ACK (some 40 ms).
    Production servers (gunicorn) set TCP_NODELAY; so does the live server here."""
    monkeypatch.setattr(QuietWSGIRequestHandler, "disable_nagle_algorithm", True)
    call_command("load_demo", stdout=io.StringIO())
    return SimpleNamespace(
        url=live_server.url,
        token=token_for("client-writer"),
        model=MLModel.objects.get(model_name="Model A").id,
        other_model=MLModel.objects.get(model_name="Model B").id,
        experiment=Experiment.objects.get(experiment_name="Experiment A").id,
    )


@pytest.fixture
def client(server) -> Iterator[Client]:
    with Client(server.url, server.token, **FAST_RETRIES) as api:
        yield api


@pytest.fixture
def reader_token(server) -> str:
    """The token of a user who may only read."""
    return token_for("client-reader", read_only=True)


@pytest.fixture
def reader_client(server, reader_token) -> Iterator[Client]:
    with Client(server.url, reader_token, **FAST_RETRIES) as api:
        yield api


def record(n: int = 0, **overrides) -> dict:
    """A valid record for the demo catalogue (``n`` gives each its own timestamp)."""
    seconds = n % 86_400
    body = {
        "timestamp": f"2024-06-{1 + n // 86_400:02d}T{seconds // 3600:02d}:"
        f"{seconds % 3600 // 60:02d}:{seconds % 60:02d}Z",
        "model_data": {"n": n, "boxes": [[1, 2, 3, 4]], "label": "weed"},
        "experiment_name": "Experiment A",
        "season_name": "Season 1A",
        "site_name": "Site A1",
    }
    body.update(overrides)
    return body


# --- A TCP proxy that fails chosen requests ----------------------------------------------------


class FlakyProxy:
    """A real socket server in front of the live server, one request per connection (it asks
    the upstream to close after each answer, so that every request of the client comes on a
    connection of its own). Each request takes the next planned action, or ``pass``:

    - ``pass``: forwarded, and the answer passed back as it comes (streams too);
    - ``drop``: the request is read, then the connection closed without forwarding it;
    - ``lose``: forwarded and answered by the service, but the answer is thrown away and the
      connection closed (the write happened; the client never hears of it);
    - ``503``: answered 503 with ``Retry-After`` (``retry_after``) and the contract's error
      body, without forwarding.

    ``log`` lists (action, request line) in order.
    """

    def __init__(self, upstream: str) -> None:
        address = httpx.URL(upstream)
        self.upstream = (address.host, address.port or 80)
        self.plan: collections.deque[str] = collections.deque()
        self.log: list[tuple[str, str]] = []
        self.retry_after = "0"
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._open: set[socket.socket] = set()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def fail_next(self, *actions: str) -> None:
        with self._lock:
            self.plan.extend(actions)

    @property
    def actions(self) -> list[str]:
        return [action for action, _ in self.log]

    def close(self) -> None:
        self._closing = True
        self._thread.join(5)
        self._listener.close()
        for sock in list(self._open):
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._closing:
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        self._open.add(conn)
        upstream = None
        try:
            conn.settimeout(30)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = 0
            kept = [lines[0]]
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                assert name.strip().lower() != b"transfer-encoding", "chunked request body"
                if name.strip().lower() not in {b"connection", b"keep-alive"}:
                    kept.append(line)
            kept.append(b"Connection: close")
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                body += chunk
            with self._lock:
                action = self.plan.popleft() if self.plan else "pass"
                self.log.append((action, lines[0].decode("latin-1")))
            if action == "drop":
                return
            if action == "503":
                payload = b'{"detail": "The proxy says: try again shortly."}'
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    + f"Retry-After: {self.retry_after}\r\n".encode()
                    + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                    + payload
                )
                return
            upstream = socket.create_connection(self.upstream, timeout=60)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            upstream.sendall(b"\r\n".join(kept) + b"\r\n\r\n" + body)
            answer = b""
            while b"\r\n\r\n" not in answer and (chunk := upstream.recv(65536)):
                answer += chunk
            if action == "pass":
                # The answer says it closes the connection, so the client opens a new one for
                # its next request (and no request ever meets a connection closing under it).
                head, _, rest = answer.partition(b"\r\n\r\n")
                fields = [
                    line for line in head.split(b"\r\n")
                    if line.partition(b":")[0].strip().lower() not in {b"connection", b"keep-alive"}
                ]
                conn.sendall(b"\r\n".join([*fields, b"Connection: close"]) + b"\r\n\r\n" + rest)
            while chunk := upstream.recv(65536):
                if action == "pass":
                    conn.sendall(chunk)
        except OSError:
            pass
        finally:
            if upstream is not None:
                upstream.close()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            self._open.discard(conn)


@pytest.fixture
def proxy(server) -> Iterator[FlakyProxy]:
    flaky = FlakyProxy(server.url)
    yield flaky
    flaky.close()


@pytest.fixture
def proxied(server, proxy) -> Iterator[Client]:
    """A client that reaches the service through ``proxy``."""
    with Client(proxy.url, server.token, **FAST_RETRIES) as api:
        yield api


# --- Tests that wait for server features -------------------------------------------------------

NDJSON = "application/x-ndjson"


def _stream_format(name: str) -> Callable[[httpx.Client, SimpleNamespace], bool]:
    def probe(http: httpx.Client, server: SimpleNamespace) -> bool:
        response = http.get(f"/api/models/id/{server.model}/records", params={"format": name})
        return response.status_code == 200
    return probe


def _body_format(content_type: str) -> Callable[[httpx.Client, SimpleNamespace], bool]:
    def probe(http: httpx.Client, server: SimpleNamespace) -> bool:
        # Not a valid body of that format: a server that reads the format answers 400 and
        # writes nothing; one that does not answers 415.
        response = http.post(
            f"/api/models/id/{server.model}/records",
            content=b"not a body of this format",
            headers={"Content-Type": content_type},
        )
        return response.status_code != 415
    return probe


def _paging(http: httpx.Client, server: SimpleNamespace) -> bool:
    response = http.get("/api/models/all", params={"limit": "1"})
    return not (response.status_code == 400 and "limit" in response.json().get("errors", {}))


def _experiment_lists(http: httpx.Client, server: SimpleNamespace) -> bool:
    return http.get(f"/api/experiments/id/{server.experiment}/seasons").status_code == 200


FEATURES: dict[str, Callable[[httpx.Client, SimpleNamespace], bool]] = {
    "arrow": _stream_format("arrow"),
    "csv": _stream_format("csv"),
    "parquet": _stream_format("parquet"),
    "arrow_bodies": _body_format("application/vnd.apache.arrow.stream"),
    "csv_bodies": _body_format("text/csv"),
    "parquet_bodies": _body_format("application/vnd.apache.parquet"),
    "paging": _paging,
    "experiment_lists": _experiment_lists,
}
_known: dict[str, bool] = {}


def server_has(server: SimpleNamespace, *features: str) -> bool:
    """Whether the live server has these features (each asked once per test process)."""
    unknown = set(features) - set(FEATURES)
    assert not unknown, f"unknown server features {unknown}; known: {sorted(FEATURES)}"
    missing = [name for name in features if name not in _known]
    if missing:
        headers = {"Authorization": f"Token {server.token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            for name in missing:
                _known[name] = FEATURES[name](http, server)
    return all(_known[name] for name in features)


@pytest.fixture(autouse=True)
def _wait_for_server_features(request):
    marker = request.node.get_closest_marker("needs_server_formats")
    if marker is None:
        return
    features = marker.args or ("arrow",)
    server = request.getfixturevalue("server")
    server_has(server, *features)
    lacking = [name for name in features if not _known[name]]
    if lacking:
        pytest.skip(f"the server does not have {', '.join(lacking)} yet")


def new_id() -> uuid.UUID:
    return uuid.uuid4()
