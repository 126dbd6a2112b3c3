"""DATABASE_POOLER: the settings a PostgreSQL behind PgBouncer (transaction pooling) needs.

The record tests themselves run through a real PgBouncer with TEST_PGBOUNCER=1 (``make
test-layouts``); these pin the settings and check that such a run really goes through it.
"""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from config.database import pooler_name, postgres_options, use_pooler
from tests.test_production_settings import environment, manage

PRINT_DATABASE = (
    "from django.conf import settings; import json; "
    "print(json.dumps(settings.DATABASES['default'], default=str))"
)


@pytest.mark.parametrize("value", [None, "", "none", "None"])
def test_no_pooler_by_default(value):
    assert pooler_name(value) == "none"


def test_pgbouncer_is_named_case_insensitively():
    assert pooler_name(" PgBouncer ") == "pgbouncer"


@pytest.mark.parametrize("value", ["pgbouncr", "pgpool", "yes"])
def test_an_unknown_pooler_stops_start_up_naming_the_variable(value):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_POOLER"):
        pooler_name(value)


def test_directly_the_session_turns_jit_off_and_statements_may_be_prepared():
    assert postgres_options(connect_timeout=5, pooler="none") == {
        "connect_timeout": 5,
        "options": "-c jit=off",
    }


def test_behind_pgbouncer_no_startup_options_are_sent_and_nothing_is_prepared():
    options = postgres_options(connect_timeout=5, pooler="pgbouncer")
    assert options == {"connect_timeout": 5}
    assert use_pooler({"OPTIONS": options}, "pgbouncer")["OPTIONS"] == {
        "connect_timeout": 5,
        "prepare_threshold": None,
    }


def test_use_pooler_turns_server_side_cursors_off():
    database = use_pooler({"OPTIONS": {"options": "-c jit=off"}}, "pgbouncer")
    assert database == {
        "OPTIONS": {"prepare_threshold": None},
        "DISABLE_SERVER_SIDE_CURSORS": True,
    }
    assert use_pooler({"OPTIONS": {}}, "none") == {"OPTIONS": {"prepare_threshold": 5}}


def database_settings(tmp_path, **variables: str) -> dict:
    env = environment(tmp_path, **variables)
    result = manage(env, "shell", "--no-imports", "-c", PRINT_DATABASE)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_settings_behind_pgbouncer(tmp_path):
    database = database_settings(
        tmp_path,
        DATABASE_URL="postgres://models@127.0.0.1:6432/models",
        DATABASE_POOLER="pgbouncer",
    )
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert database["OPTIONS"] == {"connect_timeout": 5, "prepare_threshold": None}


def test_the_replicas_follow_the_pooler(tmp_path):
    result = manage(
        environment(
            tmp_path,
            DATABASE_URL="postgres://models@127.0.0.1:6432/models",
            DATABASE_REPLICA_URLS="postgres://models@127.0.0.1:6433/models",
            DATABASE_POOLER="pgbouncer",
        ),
        "shell", "--no-imports", "-c",
        "from django.conf import settings; import json; "
        "print(json.dumps(settings.DATABASES['replica_1'], default=str))",
    )
    assert result.returncode == 0, result.stderr
    replica = json.loads(result.stdout.strip().splitlines()[-1])
    assert replica["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert replica["OPTIONS"] == {"connect_timeout": 2, "prepare_threshold": None}


def test_the_settings_without_a_pooler(tmp_path):
    database = database_settings(tmp_path, DATABASE_URL="postgres://models@127.0.0.1/models")
    assert "DISABLE_SERVER_SIDE_CURSORS" not in database or not database[
        "DISABLE_SERVER_SIDE_CURSORS"
    ]
    assert database["OPTIONS"] == {
        "connect_timeout": 5,
        "options": "-c jit=off",
        "prepare_threshold": 5,
    }


def test_a_pooler_typo_stops_start_up(tmp_path):
    env = environment(
        tmp_path, DATABASE_URL="postgres://models@127.0.0.1/models", DATABASE_POOLER="pgbounce"
    )
    result = manage(env, "check")
    assert result.returncode != 0
    assert "DATABASE_POOLER" in result.stderr


@pytest.mark.django_db
def test_with_test_pgbouncer_the_suite_goes_through_pgbouncer(test_pgbouncer):
    if test_pgbouncer is None:
        pytest.skip("TEST_PGBOUNCER is not set (or not on PostgreSQL)")
    assert int(connection.settings_dict["PORT"]) == test_pgbouncer.port
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        [(name,)] = cursor.fetchall()
    pools = test_pgbouncer.admin("SHOW POOLS")
    assert any(line.split("|")[:2] == [name, "postgres"] for line in pools.splitlines())
    assert "transaction" in pools
