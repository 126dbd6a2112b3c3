"""Retries, proven on real sockets: a proxy in front of the live server drops connections,
loses answers after the service has acted, or answers 503, for the requests a test chooses
(``FlakyProxy`` in the conftest). No httpx internals are mocked."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
from models_api_client import Client, IngestResult, TransportError, Unavailable

from models_api.models import ModelRun
from records.models import ModelRecord
from tests.client.conftest import FAST_RETRIES, record


def test_a_read_is_retried_after_a_dropped_connection(proxied, proxy, server):
    proxy.fail_next("drop", "drop")
    assert {m.model_name for m in proxied.models.all()} == {"Model A", "Model B"}
    assert proxy.actions == ["drop", "drop", "pass"]


def test_a_503_is_retried_after_the_wait_it_asks_for(server, proxy):
    proxy.retry_after = "1"
    proxy.fail_next("503")
    with Client(proxy.url, server.token, retries=2, backoff=0.01, max_retry_wait=5) as client:
        started = time.monotonic()
        assert client.models.get(server.model).model_name == "Model A"
        assert time.monotonic() - started >= 1.0  # Retry-After: 1, not the 0.01 s backoff
    assert proxy.actions == ["503", "pass"]


def test_unavailable_once_the_retries_are_spent(proxied, proxy, server):
    proxy.fail_next("503", "503", "503", "503")
    with pytest.raises(Unavailable) as raised:
        proxied.models.get(server.model)
    assert raised.value.status_code == 503 and raised.value.retry_after == 0
    assert "try again" in raised.value.detail
    assert proxy.actions == ["503"] * 4  # the first try and FAST_RETRIES' three retries


def test_a_transport_error_once_the_retries_are_spent(proxied, proxy):
    proxy.fail_next(*["drop"] * 4)
    with pytest.raises(TransportError) as raised:
        proxied.models.all()
    assert raised.value.status_code is None
    assert isinstance(raised.value.__cause__, httpx.TransportError)
    assert len(proxy.actions) == 4


def test_connection_refused_is_the_clients_own_error():
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", "token", retries=1, backoff=0.01) as client:
        with pytest.raises(TransportError, match="ConnectError"):
            client.sites.all()


def test_a_base_url_without_a_scheme_fails_at_once_as_the_clients_own_error(monkeypatch):
    """No retry can mend a wrong URL: it is not retried, and names the request."""
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    with Client("localhost:8000", "token", retries=3) as client:
        with pytest.raises(TransportError, match="UnsupportedProtocol") as raised:
            client.sites.all()
    assert "api/sites/all" in str(raised.value)
    assert slept == []


def test_a_malformed_base_url_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match=r"The base URL 'http://\[::1' is not valid"):
        Client("http://[::1", "token")


def test_an_add_whose_answer_was_lost_gives_the_record_it_wrote(proxied, proxy, server):
    proxy.fail_next("lose")
    added = proxied.records.add(server.model, **record(1))
    # Written by the first try; the retry got 409 naming it, then read it.
    assert proxy.actions == ["lose", "pass", "pass"]
    (stored,) = ModelRecord.objects.all()
    assert added.id == stored.id and added.model_data == record(1)["model_data"]


def test_an_add_with_a_file_is_retried_with_the_whole_file(proxied, proxy, server, tmp_path):
    source = tmp_path / "leaf.bin"
    source.write_bytes(b"0123456789" * 5_000)
    proxy.fail_next("drop", "503")
    added = proxied.records.add(server.model, **record(2), file=source)
    assert proxy.actions == ["drop", "503", "pass"]
    target = proxied.records.download(added.id, tmp_path / "back.bin")
    assert target.read_bytes() == source.read_bytes()


def test_a_bulk_batch_whose_answer_was_lost_is_sent_again_and_skipped(proxied, proxy, server):
    proxy.fail_next("pass", "lose")
    result = proxied.records.add_many(server.model, [record(n) for n in range(30)],
                                      batch_size=10)
    # The second batch was written by its lost try; its retry skipped all ten.
    assert result == IngestResult(created=20, skipped_existing=10)
    assert ModelRecord.objects.count() == 30
    assert proxy.actions == ["pass", "lose", "pass", "pass"]


def test_updates_and_deletes_are_retried(proxied, proxy, server):
    added = proxied.records.add(server.model, **record(3))
    proxy.fail_next("lose")
    assert proxied.records.update(added.id, model_data={"checked": True}).model_data == {
        "checked": True
    }
    proxy.fail_next("lose")
    proxied.records.delete(added.id)  # the lost try deleted it; the retry's 404 is success
    assert not ModelRecord.objects.exists()
    site = proxied.sites.create(site_name="Temporary")
    proxy.fail_next("lose")
    proxied.sites.delete(site.id)
    assert not proxied.sites.search(site_name="Temporary")


def test_a_create_is_not_repeated_once_it_may_have_reached_the_service(proxied, proxy, server):
    proxy.fail_next("lose")
    with pytest.raises(TransportError):
        proxied.models.create_run(server.model, model_run_info={"epochs": 1})
    assert ModelRun.objects.count() == 1  # one run, not two
    assert proxy.actions == ["lose"]


def test_a_create_is_retried_when_it_never_left(server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Connections to a closed port fail before anything is sent: always safe to retry.
    with Client(f"http://127.0.0.1:{port}", server.token, **FAST_RETRIES) as client:
        with pytest.raises(TransportError):
            client.models.create_run(server.model)
    assert ModelRun.objects.count() == 0


def test_a_create_answered_503_is_not_retried(proxied, proxy, server):
    proxy.fail_next("503")
    with pytest.raises(Unavailable):
        proxied.models.create(model_name="Weed detector")
    assert proxy.actions == ["503"]


def test_a_stream_is_retried_until_it_starts(proxied, proxy, server):
    proxied.records.add_many(server.model, [record(n) for n in range(5)])
    proxy.fail_next("drop", "503")
    assert len(list(proxied.records.iter(server.model))) == 5
    proxy.fail_next("503")
    assert proxied.records.to_arrow(server.model).num_rows == 5


def test_a_download_is_retried(proxied, proxy, server, tmp_path):
    import io

    added = proxied.records.add(server.model, **record(4), file=io.BytesIO(b"abc"),
                                file_name="a.txt")
    proxy.fail_next("drop", "pass", "503")  # the 307, then the signed link
    buffer = io.BytesIO()
    proxied.records.download(added.id, buffer)
    assert buffer.getvalue() == b"abc"
    assert proxy.actions[-4:] == ["drop", "pass", "503", "pass"]
