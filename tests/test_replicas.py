"""Several servers sharing a PostgreSQL primary, its streaming replica and Redis (issue 15).

The router and the cache first, in this process (on either suite database: on SQLite there
are no replicas and every read goes to the primary). Then the deployment itself: two gunicorn
servers (``make serve``'s, one worker each) on a primary and a replica started by
``tests.servers``, sharing the machine's Redis. The replica applies each commit late
(``recovery_min_apply_delay``), so that a read which went to it right after a write would miss
the write: read-your-writes is what keeps those reads whole.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.utils import OperationalError
from rest_framework.authtoken.models import Token

from models_api.api import replicas
from models_api.api.cache import ResilientRedisCache
from models_api.models import MLModel
from records.models import ModelRecord
from tests.servers import Cluster, RedisServer, flush_shared_redis, free_port
from tests.test_production_settings import GunicornServer, environment, manage, record

# --- The router, in this process ------------------------------------------------------------


def test_an_lsn_is_read_as_a_number_that_orders_like_the_wal():
    assert replicas.parse_lsn("0/0") == 0
    assert replicas.parse_lsn("16/B374D848") == 0x16_B374D848
    assert replicas.parse_lsn("1/0") > replicas.parse_lsn("0/FFFFFFFF")


def test_without_replicas_every_read_goes_to_the_primary(db):
    assert replicas.replicas() == []
    with replicas.replica_reads(min_lsn=None) as alias:
        assert alias is None
        assert MLModel.objects.all().db == DEFAULT_DB_ALIAS
        assert replicas.ReplicaRouter().db_for_read(MLModel) is None


@pytest.fixture
def two_replicas(settings, monkeypatch):
    """Two replica aliases whose replayed positions the test sets (no server behind them)."""
    settings.DATABASE_REPLICAS = ["replica_1", "replica_2"]
    replayed: dict[str, int | Exception] = {"replica_1": 100, "replica_2": 100}

    def replayed_lsn(alias: str) -> int:
        value = replayed[alias]
        if isinstance(value, Exception):
            raise value
        return value

    monkeypatch.setattr(replicas, "replayed_lsn", replayed_lsn)
    monkeypatch.setattr(replicas, "discard_connection", lambda alias: None)
    return replayed


def test_reads_inside_replica_reads_go_to_the_replica_and_writes_to_the_primary(two_replicas):
    router = replicas.ReplicaRouter()
    with replicas.replica_reads(min_lsn=None) as alias:
        assert alias in {"replica_1", "replica_2"}
        assert ModelRecord.objects.all().db == alias
        assert router.db_for_write(ModelRecord) == DEFAULT_DB_ALIAS
    assert ModelRecord.objects.all().db == DEFAULT_DB_ALIAS  # outside: the primary again
    assert router.allow_migrate("replica_1", "records") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "records") is None


def test_a_replica_behind_the_users_write_is_passed_over(two_replicas):
    two_replicas["replica_1"] = 90
    for _ in range(10):
        assert replicas.choose_replica(min_lsn=95) == "replica_2"
    two_replicas["replica_2"] = 90
    assert replicas.choose_replica(min_lsn=95) is None  # the primary
    assert replicas.choose_replica(min_lsn=None) in {"replica_1", "replica_2"}


def test_a_replica_that_does_not_answer_is_skipped_for_a_while(two_replicas, caplog):
    two_replicas["replica_1"] = OperationalError("connection refused")
    for _ in range(10):
        assert replicas.choose_replica(min_lsn=None) == "replica_2"
    assert replicas.is_marked_down("replica_1")
    assert caplog.text.count("Replica replica_1 unavailable") == 1  # then skipped, not tried
    two_replicas["replica_2"] = OperationalError("connection refused")
    assert replicas.choose_replica(min_lsn=None) is None


def test_a_write_keeps_the_primarys_position_for_the_users_next_reads(api, settings):
    settings.DATABASE_REPLICAS = ["replica_1"]  # the middleware reads only the primary
    assert api.post("/api/sites", {"site_name": "Site Z"}, format="json").status_code == 200
    user_pk = Token.objects.get(user__username="writer").user_id
    kept = replicas.written_lsn(user_pk)
    if connection.vendor == "postgresql":
        assert isinstance(kept, int) and kept > 0
        assert api.post("/api/sites", {}, format="json").status_code == 400
        assert replicas.written_lsn(user_pk) == kept  # a refused write moves nothing
    else:
        assert kept is None  # SQLite: no WAL position, no replicas


# --- The cache, when Redis is gone ------------------------------------------------------------


def dead_redis_cache() -> ResilientRedisCache:
    return ResilientRedisCache(
        f"redis://127.0.0.1:{free_port()}/0",
        {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}},
    )


def test_an_unreachable_redis_is_a_cache_that_holds_nothing_and_says_so_once(caplog):
    cache = dead_redis_cache()
    with caplog.at_level(logging.WARNING, logger="models_api.api.cache"):
        cache.set("a", 1)
        assert cache.get("a", "missing") == "missing"
        assert cache.add("a", 1) is False
        assert cache.get_many(["a"]) == {}
        assert cache.set_many({"a": 1}) == ["a"]
        cache.delete("a")
        with pytest.raises(ValueError):
            cache.incr("a")
    assert caplog.text.count("Cache unavailable") == 1
    with pytest.raises(Exception):  # noqa: B017 (the health check's call raises)
        cache.ping()


def test_a_full_redis_is_a_cache_that_refuses_writes_without_raising(tmp_path, caplog):
    """A Redis out of memory (or read-only, mid-failover) refuses writes with a command
    error: that is an outage too, never a 500 on every throttled request."""
    server = RedisServer(tmp_path)
    try:
        admin = redis.Redis(port=server.port)
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        cache = ResilientRedisCache(server.url, {"OPTIONS": {"socket_timeout": 1}})
        with caplog.at_level(logging.WARNING, logger="models_api.api.cache"):
            cache.set("a", 1)  # refused: OOM command not allowed
        assert cache.unavailable
        assert "Cache unavailable" in caplog.text
        admin.close()
    finally:
        server.stop()


def test_while_the_cache_is_down_no_replica_is_tried(two_replicas, settings):
    """No replica's outage can be read or kept then: a dead one would cost its connect
    timeout on every request, so the primary answers every read, anonymous ones included."""
    use_cache(settings, f"redis://127.0.0.1:{free_port()}/0")
    two_replicas["replica_1"] = two_replicas["replica_2"] = AssertionError("not to be tried")
    assert replicas.choose_replica(min_lsn=None) is None


def test_redis_cache_round_trip_on_the_machines_redis(shared_redis):
    cache = ResilientRedisCache(shared_redis, {"OPTIONS": {"socket_connect_timeout": 1}})
    cache.set("key", [1.5, 2.5], 30)
    assert cache.get("key") == [1.5, 2.5]
    cache.ping()


def use_cache(settings, url: str) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "models_api.api.cache.ResilientRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }


def test_health_reports_the_shared_cache_and_503_while_it_is_down(client, db, settings):
    assert "cache" not in client.get("/healthz").json()  # the local-memory cache: nothing to say
    use_cache(settings, f"redis://127.0.0.1:{free_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["cache"] == "unavailable" and response.json()["database"] == "ok"


def test_health_reports_a_shared_cache_that_answers(client, db, settings, shared_redis):
    use_cache(settings, shared_redis)
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["cache"] == "ok"


# --- Settings --------------------------------------------------------------------------------


_PRINT_DATABASES = """
import json
from django.conf import settings
print(json.dumps({
    "replicas": settings.DATABASE_REPLICAS,
    "replica_2": {key: settings.DATABASES["replica_2"][key] for key in ("HOST", "PORT", "NAME")},
    "options": settings.DATABASES["replica_2"]["OPTIONS"],
    "test": settings.DATABASES["replica_2"]["TEST"],
    "routers": settings.DATABASE_ROUTERS,
    "cache": settings.CACHES["default"],
}))
"""


def test_replica_urls_and_redis_url_become_database_aliases_and_the_cache(tmp_path):
    env = environment(
        tmp_path,
        DATABASE_URL="postgres://app@primary:5432/models",
        DATABASE_REPLICA_URLS="postgres://app@replica1/models, postgres://app@replica2:6432/models",
        DATABASE_REPLICA_CONNECT_TIMEOUT="3",
        REDIS_URL="redis://cache:6379/2",
        REDIS_TIMEOUT="0.25",
    )
    result = manage(env, "shell", "-c", _PRINT_DATABASES)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed["replicas"] == ["replica_1", "replica_2"]
    assert printed["replica_2"] == {"HOST": "replica2", "PORT": 6432, "NAME": "models"}
    assert printed["options"] == {
        "connect_timeout": 3, "options": "-c jit=off", "prepare_threshold": 5
    }
    assert printed["test"]["MIRROR"] == "default"  # a test run has one database
    assert printed["routers"] == ["models_api.api.replicas.ReplicaRouter"]
    assert printed["cache"]["BACKEND"] == "models_api.api.cache.ResilientRedisCache"
    assert printed["cache"]["LOCATION"] == "redis://cache:6379/2"
    assert printed["cache"]["OPTIONS"] == {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}


@pytest.mark.parametrize(
    "variables, named",
    [
        pytest.param({"DATABASE_REPLICA_URLS": "postgres://h/db"}, "DATABASE_REPLICA_URLS",
                     id="replicas-without-postgres-primary"),
        pytest.param({"DATABASE_URL": "postgres://h/db", "DATABASE_REPLICA_URLS": "mysql://h/db"},
                     "DATABASE_REPLICA_URLS", id="replica-not-postgres"),
        pytest.param({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL", id="not-redis"),
        pytest.param({"REDIS_URL": "redis://h", "REDIS_TIMEOUT": "soon"}, "REDIS_TIMEOUT",
                     id="timeout-not-a-number"),
    ],
)
def test_a_bad_replica_or_redis_setting_stops_start_up_naming_it(tmp_path, variables, named):
    result = manage(environment(tmp_path, **variables), "check")
    assert result.returncode != 0
    assert named in result.stderr and "ImproperlyConfigured" in result.stderr


# --- Two servers, a primary, a replica, Redis -------------------------------------------------

#: One process: migrate, the demo catalogue, a writer and a reader (who never writes).
_PREPARE = """
import io, json
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from models_api.models import MLModel
call_command("migrate", "--noinput", verbosity=0)
call_command("load_demo", stdout=io.StringIO())
call_command("create_api_user", "writer", stdout=io.StringIO())
call_command("create_api_user", "reader", "--read-only", stdout=io.StringIO())
print(json.dumps({
    "model_id": str(MLModel.objects.get(model_name="Model A").id),
    "writer": Token.objects.get(user__username="writer").key,
    "reader": Token.objects.get(user__username="reader").key,
}))
"""

ANON_RATE = 6
#: How late the replica applies each commit (longer than a test's read after its write).
APPLY_DELAY = "2s"
#: Records loaded before the servers start (the replica's statistics count their reads).
LOADED = 200


@dataclass
class Stack:
    cluster: Cluster
    servers: tuple[GunicornServer, GunicornServer]
    env: dict[str, str]
    var_dir: Path
    model_id: str
    writer: str
    reader: str

    @property
    def records_path(self) -> str:
        return f"/api/models/id/{self.model_id}/records"


def get(server: GunicornServer, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Token {token}"
    return requests.get(f"{server.url}{path}", headers=headers, timeout=30, **kwargs)


def post(server: GunicornServer, path: str, token: str, **kwargs) -> requests.Response:
    headers = {**kwargs.pop("headers", {}), "Authorization": f"Token {token}"}
    return requests.post(f"{server.url}{path}", headers=headers, timeout=30, **kwargs)


def stream_ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text[:300]
    return [json.loads(line)["id"] for line in response.text.splitlines()]


@pytest.fixture(scope="module")
def stack(postgres_cluster, tmp_path_factory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("replicas")
    env = environment(
        var_dir,
        DJANGO_SECRET_KEY="one-key-for-every-server-" + "x" * 40,
        DATABASE_URL=postgres_cluster.primary.url(),
        DATABASE_REPLICA_URLS=postgres_cluster.replica.url(),
        DATABASE_REPLICA_RETRY_SECONDS="1",
        REDIS_URL=flush_shared_redis(),
        API_ANON_THROTTLE_RATE=f"{ANON_RATE}/minute",
    )
    prepared = manage(env, "shell", "-c", _PREPARE)
    assert prepared.returncode == 0, prepared.stderr
    ids = json.loads(prepared.stdout.strip().splitlines()[-1])
    postgres_cluster.replica.reconfigure(recovery_min_apply_delay="0")
    servers: list[GunicornServer] = []
    try:
        for name in ("a", "b"):
            servers.append(GunicornServer(env, var_dir / f"gunicorn-{name}.log", workers=1))
        stack = Stack(postgres_cluster, (servers[0], servers[1]), env, var_dir,
                      ids["model_id"], ids["writer"], ids["reader"])
        lines = "".join(
            json.dumps(record(timestamp=f"2024-05-01T00:{n // 60:02d}:{n % 60:02d}Z")) + "\n"
            for n in range(LOADED)
        )
        loaded = post(servers[0], stack.records_path, stack.writer, data=lines,
                      headers={"Content-Type": "application/x-ndjson"})
        assert loaded.status_code == 200, loaded.text
        postgres_cluster.wait_for_replay()
        # From now on the replica applies each commit late.
        postgres_cluster.replica.reconfigure(recovery_min_apply_delay=APPLY_DELAY)
        yield stack
    finally:
        postgres_cluster.replica.reconfigure(recovery_min_apply_delay="0")
        for server in servers:
            server.stop()


def test_requests_alternating_between_servers_see_every_write_at_once(stack):
    a, b = stack.servers
    for n in range(4):
        writing, reading = (a, b) if n % 2 == 0 else (b, a)
        created = post(writing, stack.records_path, stack.writer,
                       json=record(timestamp=f"2024-07-01T10:00:{n:02d}Z", site_name="Site A2"))
        assert created.status_code == 200, created.text
        streamed = get(reading, f"{stack.records_path}?site_name=Site A2", stack.writer)
        assert created.json()["id"] in stream_ids(streamed)
        site = post(writing, "/api/sites", stack.writer, json={"site_name": f"Field {n}"})
        assert site.status_code == 200, site.text
        sites = get(reading, "/api/sites/all", stack.writer)
        assert f"Field {n}" in [row["site_name"] for row in sites.json()]
    # The replica really was behind when those reads were answered.
    created = post(a, stack.records_path, stack.writer,
                   json=record(timestamp="2024-07-01T11:00:00Z", site_name="Site A2"))
    assert created.json()["id"] in stream_ids(
        get(b, f"{stack.records_path}?site_name=Site A2", stack.writer)
    )
    on_replica = f"SELECT count(*) FROM records_modelrecord WHERE id = '{created.json()['id']}'"
    assert stack.cluster.replica.query(on_replica) == [(0,)]
    (lag,) = get(a, "/healthz").json()["replicas"]
    assert lag["status"] == "ok" and lag["lag_bytes"] > 0 and lag["lag_seconds"] > 0


def replica_reads(cluster: Cluster) -> int:
    """Rows the replica's own backends have read from the service's database."""
    ((returned, fetched),) = cluster.replica.query(
        "SELECT tup_returned, tup_fetched FROM pg_stat_database WHERE datname = current_database()"
    )
    return returned + fetched


def test_the_replica_serves_the_streams_and_lists(stack):
    before = replica_reads(stack.cluster)
    formats = ["application/x-ndjson", "text/csv", "application/vnd.apache.arrow.stream",
               "application/vnd.apache.parquet"]
    for server in stack.servers:
        for media_type in formats:
            response = get(server, stack.records_path, stack.reader,
                           headers={"Accept": media_type})
            assert response.status_code == 200, response.text[:300]
            assert response.headers["Content-Type"].startswith(media_type)
        window = get(server, f"{stack.records_path}/filter?start_timestamp=2024-05-01T00:00:00Z"
                             "&end_timestamp=2024-05-01T01:00:00Z", stack.reader)
        assert len(stream_ids(window)) == LOADED
        assert get(server, "/api/models/all", stack.reader).status_code == 200
    streamed = LOADED * (len(formats) + 1) * len(stack.servers)
    deadline = time.monotonic() + 5  # the replica's statistics are flushed within a second
    while replica_reads(stack.cluster) - before < streamed and time.monotonic() < deadline:
        time.sleep(0.2)
    assert replica_reads(stack.cluster) - before >= streamed
    health = get(stack.servers[0], "/healthz").json()
    assert health["cache"] == "ok"
    assert [(r["name"], r["status"]) for r in health["replicas"]] == [("replica_1", "ok")]
    assert health["replicas"][0]["lag_bytes"] >= 0


def test_an_export_reads_from_the_replica_once_it_has_every_committed_write(stack):
    stack.cluster.wait_for_replay()
    before = replica_reads(stack.cluster)
    exported = manage(stack.env, "export_records", "Model A", "--site-name", "Site A1")
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == LOADED
    deadline = time.monotonic() + 5
    while replica_reads(stack.cluster) - before < LOADED and time.monotonic() < deadline:
        time.sleep(0.2)
    assert replica_reads(stack.cluster) - before >= LOADED


def answers(stack: Stack) -> list[tuple[int, bytes]]:
    """What both servers answer to the heavy reads, for the writer and for the reader."""
    paths = [
        stack.records_path,
        f"{stack.records_path}?format=csv",
        f"{stack.records_path}/filter?start_timestamp=2024-05-01T00:00:00Z"
        "&end_timestamp=2024-05-01T00:00:30Z",
        "/api/models/all",
        "/api/sites/all",
    ]
    return [
        (response.status_code, response.content)
        for server in stack.servers
        for token in (stack.writer, stack.reader)
        for path in paths
        for response in [get(server, path, token)]
    ]


def test_a_stopped_replica_changes_no_answer(stack):
    stack.cluster.wait_for_replay()  # the reader's answers are the primary's
    served = answers(stack)
    assert {status for status, _ in served} == {200}
    stack.cluster.replica.stop()
    try:
        assert answers(stack) == served
        health = get(stack.servers[1], "/healthz")
        assert health.status_code == 200  # the primary answers the replica's reads
        assert health.json()["replicas"][0]["status"] == "unavailable"
        time.sleep(1.1)  # past DATABASE_REPLICA_RETRY_SECONDS: tried again, refused again
        assert answers(stack) == served
    finally:
        stack.cluster.replica.start()
    assert "Replica replica_1 unavailable" in stack.servers[0].output()


def test_the_anonymous_throttle_counts_across_both_servers(stack):
    flush_shared_redis()
    statuses = [get(stack.servers[n % 2], "/api/docs/").status_code for n in range(ANON_RATE + 2)]
    assert statuses == [200] * ANON_RATE + [429, 429]


@pytest.fixture
def own_redis_server(stack, tmp_path) -> Iterator[tuple[RedisServer, GunicornServer]]:
    """A third server, whose Redis is one of the test's own (which it stops)."""
    redis_server = RedisServer(tmp_path)
    server = None
    try:
        env = {**stack.env, "REDIS_URL": redis_server.url}
        server = GunicornServer(env, tmp_path / "gunicorn.log", workers=1)
        yield redis_server, server
    finally:
        if server is not None:
            server.stop()
        redis_server.stop()


def test_a_stopped_redis_costs_no_write(stack, own_redis_server):
    redis_server, server = own_redis_server
    assert get(server, "/healthz").json()["cache"] == "ok"
    redis_server.stop()
    created = []
    for n in range(3):
        started = time.monotonic()
        response = post(server, stack.records_path, stack.writer,
                        json=record(timestamp=f"2024-08-01T10:00:{n:02d}Z", site_name="Site A3"))
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 2
        created.append(response.json()["id"])
    # Without the cache there is no read-your-writes position: the reads go to the primary.
    streamed = stream_ids(get(server, f"{stack.records_path}?site_name=Site A3", stack.writer))
    assert set(created) <= set(streamed)
    health = get(server, "/healthz")
    assert health.status_code == 503
    assert (health.json()["cache"], health.json()["database"]) == ("unavailable", "ok")
    assert get(server, "/api/models/all", stack.reader).status_code == 200
    assert server.output().count("Cache unavailable") == 1
