"""Fixtures shared by every test module.

Clients authenticate with real tokens of users whose rights come from Django's model
permissions, exactly as in production; each test gets its own media folder.
"""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import ExperimentFactory, MLModelFactory, SeasonFactory, SiteFactory


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
