"""``manage.py bench`` end to end, small: it must keep running on a fresh clone.

The figures themselves are not asserted (this machine is shared and noisy; speed is read from
the benchmark's own output, not from tests): the run must finish, write every figure to
``var/bench/``, see no failed request, and leave no scratch table or bench rows behind.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from django.db import connection

from tests.test_production_settings import environment, manage

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the benchmark measures PostgreSQL"
)


@pytest.fixture
def bench_database_url():
    """A database of the bench's own, as ``make bench`` uses (created and migrated by it)."""
    settings = connection.settings_dict
    name = f"models_api_bench_test_{uuid.uuid4().hex[:8]}"
    credentials = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
    url = f"postgres://{credentials}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}"
    yield f"{url}/{name}"
    with psycopg.connect(f"{url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated(tmp_path, database_url: str) -> dict[str, str]:
    """The environment of ``manage.py`` on ``database_url``, its database created and migrated."""
    env = environment(tmp_path, DATABASE_URL=database_url)
    for step in (("create_database",), ("migrate", "--noinput", "--verbosity", "0")):
        result = manage(env, *step)
        assert result.returncode == 0, result.stderr
    return env


def run_bench(tmp_path, env: dict[str, str], *args: str) -> tuple[dict, str]:
    """Run ``manage.py bench`` with ``args``: the figures it wrote, and its log."""
    result = manage(env, "bench", *args, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    [written] = (tmp_path / "bench").glob("bench-*.json")
    return json.loads(written.read_text()), result.stderr


def test_bench_runs_end_to_end_and_writes_every_figure(tmp_path, bench_database_url):
    env = migrated(tmp_path, bench_database_url)
    figures, _ = run_bench(
        tmp_path, env, "--records", "2000", "--body-lines", "500", "--seconds", "1",
        "--filter-runs", "2",
    )
    assert figures["records"] == 2000
    assert figures["checkpoints_before_loads"] is True
    assert figures["ingest"]["app_records_per_second"] > 0
    assert figures["ingest"]["raw_copy_records_per_second"] > 0
    assert len(figures["ingest"]["raw_copy_loads_records_per_second"]) == 2
    populated = figures["ingest"]["populated"]
    assert populated["rows_already_in_table"] == 2000
    assert populated["raw_copy_records_per_second"] > 0 and populated["ratio"] > 0
    for way in ("endpoint", "command"):
        for name in ("ndjson", "arrow", "csv", "parquet"):
            assert figures["ingest"][way][name]["ratio"] > 0, (way, name)
    for name in ("ndjson", "arrow", "csv", "parquet"):
        assert figures["stream"][name]["records_per_second"] > 0
        assert figures["stream"][name]["ratio"] > 0
        assert set(figures["stream"][name]["peak_server_memory_mb"]) == {"n", "n_over_10"}
    assert figures["selective_filter"]["runs"] == 2
    assert figures["single_posts"]["requests"] > 0
    assert figures["single_posts"]["latency_ms_p99"] >= figures["single_posts"]["latency_ms_p50"]
    assert figures["single_posts"]["non_200"] == 0
    assert set(figures["verdict"]) == {
        "stream_ratio", "arrow_at_least_ndjson", "stream_memory", "ingest_ratio",
        "filter_first_byte", "single_posts",
    }
    partitions = figures["partitions"]
    assert partitions["partitions"] == 8
    assert partitions["plain"]["tables_visited_by_id"] == 1
    assert partitions["partitioned"]["tables_visited_by_id"] == 8
    assert set(partitions["ratio"]) == {
        "get_by_id_ms", "lookup_by_id_ms", "stream_records_per_second",
        "ingest_records_per_second",
    }
    with psycopg.connect(bench_database_url) as db:
        assert db.execute("SELECT count(*) FROM records_modelrecord").fetchone() == (0,)
        kind = db.execute("SELECT relkind FROM pg_class WHERE relname = 'records_modelrecord'")
        assert kind.fetchone() == ("r",)  # plain again
        scratch = db.execute("SELECT to_regclass('bench_scratch_records')").fetchone()
        assert scratch == (None,)


def test_bench_runs_only_the_sections_asked_for(tmp_path, bench_database_url):
    env = migrated(tmp_path, bench_database_url)
    figures, _ = run_bench(
        tmp_path, env, "--records", "1000", "--body-lines", "500", "--seconds", "1",
        "--sections", "posts",
    )
    assert "ingest" not in figures and "stream" not in figures and "partitions" not in figures
    assert figures["single_posts"]["requests"] > 0
    assert set(figures["verdict"]) == {"single_posts"}
    with psycopg.connect(bench_database_url) as db:
        assert db.execute("SELECT count(*) FROM records_modelrecord").fetchone() == (0,)


def test_bench_names_an_unknown_section(tmp_path, bench_database_url):
    env = migrated(tmp_path, bench_database_url)
    result = manage(env, "bench", "--records", "100", "--sections", "ingest,speed")
    assert result.returncode != 0
    assert "Unknown bench section(s): speed" in result.stderr


def test_bench_runs_for_a_user_that_may_not_checkpoint(tmp_path, bench_database_url):
    """A managed database's user is rarely a superuser or in ``pg_checkpoint``: the loads then
    start vacuumed but not checkpointed, and the figures say so."""
    base, _, name = bench_database_url.rpartition("/")
    role = f"bench_plain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
        admin.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    try:
        netloc = base.split("://", 1)[1].rpartition("@")[2]
        env = environment(tmp_path, DATABASE_URL=f"postgres://{role}@{netloc}/{name}")
        assert manage(env, "migrate", "--noinput", "--verbosity", "0").returncode == 0
        figures, log = run_bench(
            tmp_path, env, "--records", "500", "--body-lines", "250", "--sections", "ingest"
        )
        assert "may not run CHECKPOINT" in log
        assert figures["checkpoints_before_loads"] is False
        assert figures["ingest"]["endpoint"]["parquet"]["ratio"] > 0
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')
