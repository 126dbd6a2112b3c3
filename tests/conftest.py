"""Fixtures shared by every test module.

Clients authenticate with real tokens of users whose rights come from Django's model
permissions, exactly as in production; each test gets its own media folder.
"""

from __future__ import annotations

import io
import logging
import os
import uuid
from types import SimpleNamespace

import boto3
import botocore.config
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import connections
from moto.server import ThreadedMotoServer
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.database import use_pooler
from models_api.api.log_filters import RedactCredentials
from models_api.models import MLModel
from tests.factories import (
    DatasetFactory,
    ExperimentFactory,
    MLModelFactory,
    ModelRunFactory,
    SeasonFactory,
    SiteFactory,
)
from tests.pgbouncer import PgBouncer
from tests.servers import postgres_cluster, shared_redis  # noqa: F401 (fixtures for all)

# --- The test database: through PgBouncer, on a partitioned record table ------------------
#
# TEST_PGBOUNCER=1 puts a PgBouncer of the tests' own (transaction pooling) between the suite
# and PostgreSQL, with the settings DATABASE_POOLER=pgbouncer gives; Django creates the test
# database through it. TEST_RECORD_PARTITIONS=N runs ``partition_records --partitions N``
# after the migrations. Both exist so that the record test modules can run on those layouts
# (a CI job of its own).


def _postgres() -> bool:
    return django_settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


@pytest.fixture(scope="session")
def test_pgbouncer():
    """The suite's PgBouncer when TEST_PGBOUNCER is set (on PostgreSQL), else None."""
    if os.environ.get("TEST_PGBOUNCER", "") in {"", "0"} or not _postgres():
        yield None
        return
    database = django_settings.DATABASES["default"]
    with PgBouncer(
        server_host=database.get("HOST") or "127.0.0.1",
        server_port=int(database.get("PORT") or 5432),
        user=database.get("USER") or "postgres",
    ) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings, test_pgbouncer):
    if test_pgbouncer is None:
        return
    database = django_settings.DATABASES["default"]
    database.update(HOST="127.0.0.1", PORT=test_pgbouncer.port)
    use_pooler(database, "pgbouncer")
    connection = connections["default"]
    connection.close()
    if connection.settings_dict is not database:
        connection.settings_dict.update(database)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, test_pgbouncer):
    partitions = int(os.environ.get("TEST_RECORD_PARTITIONS") or 0)
    if partitions and _postgres():
        with django_db_blocker.unblock():
            call_command("partition_records", "--partitions", str(partitions), stdout=io.StringIO())
    yield
    if test_pgbouncer is not None:  # PostgreSQL drops the test database only once unused
        with django_db_blocker.unblock():
            connections.close_all()
        test_pgbouncer.close_server_connections(connections["default"].settings_dict["NAME"])


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes files to a folder of its own."""
    location = tmp_path / "media"
    settings.MEDIA_ROOT = location
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": location, "base_url": "/media/"},
        },
    }
    return location


@pytest.fixture(autouse=True)
def fresh_throttles():
    """Throttle counters live in the cache; no test inherits another's."""
    cache.clear()
    yield
    cache.clear()


def token_client(username: str, *, read_only: bool = False) -> APIClient:
    options = ["--read-only"] if read_only else []
    call_command("create_api_user", username, *options, stdout=io.StringIO())
    client = APIClient()
    token = Token.objects.get(user__username=username)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def api(db) -> APIClient:
    """A client whose user may read and write every object type."""
    return token_client("writer")


@pytest.fixture
def reader(db) -> APIClient:
    """A client whose user may only read."""
    return token_client("reader", read_only=True)


@pytest.fixture
def anonymous(db) -> APIClient:
    return APIClient()


@pytest.fixture
def experiment(db):
    return ExperimentFactory(experiment_name="Experiment A")


@pytest.fixture
def season(experiment):
    return SeasonFactory(experiment=experiment, season_name="Season 1A")


@pytest.fixture
def site(db):
    return SiteFactory(site_name="Site A1")


@pytest.fixture
def model(experiment):
    model = MLModelFactory(model_name="Model A")
    model.experiments.add(experiment)
    return model


@pytest.fixture
def catalogue(model, season, site):
    """One of everything, with each list endpoint non-empty."""
    ModelRunFactory(model=model)
    dataset = DatasetFactory(dataset_name="Dataset A")
    model.datasets.add(dataset)
    dataset.experiments.add(season.experiment)
    site.experiments.add(season.experiment)
    return {
        "model": model,
        "experiment": season.experiment,
        "season": season,
        "site": site,
        "dataset": dataset,
    }


# --- Records -----------------------------------------------------------------------------


@pytest.fixture
def demo(db):
    """The demo catalogue (Experiments A and B, Seasons 1A..3B, Sites A1..B3, Models A, B)."""
    call_command("load_demo", stdout=io.StringIO())
    return MLModel.objects.get(model_name="Model A")


@pytest.fixture
def small_batches(monkeypatch):
    """Batches of a few hundred records, so that a test's few thousand span many of them."""
    monkeypatch.setattr("records.representation.BATCH_ROWS", 500)
    monkeypatch.setattr("records.representation.ITERATOR_CHUNK_SIZE", 200)  # SQLite's fetches
    monkeypatch.setattr("records.postgres.COPY_BLOCK_BYTES", 256 * 1024)


def record_body(**overrides) -> dict:
    """A valid record for the demo catalogue, as a JSON body."""
    body = {
        "timestamp": "2024-06-01T10:00:00Z",
        "model_data": {"boxes": [[1, 2, 3, 4]], "label": "weed"},
        "experiment_name": "Experiment A",
        "season_name": "Season 1A",
        "site_name": "Site A1",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


# --- S3: a real S3 protocol server (moto) over HTTP, a bucket per test -------------------

S3_CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="session")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def use_s3(settings, *, endpoint: str, bucket: str) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **S3_CREDENTIALS,
                "bucket_name": bucket,
                "endpoint_url": endpoint,
                "signature_version": "s3v4",
                "querystring_auth": True,
                "querystring_expire": settings.RECORD_DOWNLOAD_EXPIRY,
                "file_overwrite": True,
                "default_acl": None,
                # Fail fast when the endpoint is down, instead of retrying for seconds.
                "client_config": botocore.config.Config(
                    signature_version="s3v4",
                    connect_timeout=1,
                    read_timeout=5,
                    retries={"max_attempts": 1},
                ),
            },
        },
    }


@pytest.fixture
def s3(settings, s3_endpoint):
    """Record files go to a fresh bucket on the moto server; yields (client, bucket)."""
    bucket = f"records-{uuid.uuid4().hex[:16]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    use_s3(settings, endpoint=s3_endpoint, bucket=bucket)
    return SimpleNamespace(client=client, bucket=bucket)


def stored_keys(s3) -> list[str]:
    listing = s3.client.list_objects_v2(Bucket=s3.bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture
def console_log():
    """What the configured console handler (with its redaction filter) writes."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactCredentials) for f in h.filters)
    )
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)
