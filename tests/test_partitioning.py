"""``manage.py partition_records``: the record table as hash partitions on model_id.

Each test runs in the test's transaction, so the rebuilt table is rolled back with it (DDL
is transactional on PostgreSQL). The suite may itself run on a partitioned table
(TEST_RECORD_PARTITIONS): the tests go from whatever layout they find to another one.
"""

from __future__ import annotations

import datetime
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from records import postgres
from records.models import ModelRecord
from records.partitioning import TABLE, Layout, current_layout
from tests.conftest import record_body

pytestmark = pytest.mark.django_db

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")


def partition(*args: str) -> str:
    output = io.StringIO()
    call_command("partition_records", *args, stdout=output)
    return output.getvalue()


def other_than_current(partitions: int) -> str:
    """``partitions``, or one more when the table has that many already."""
    current = current_layout().partitions
    return str(partitions + 1 if current == partitions else partitions)


def schema() -> dict:
    """The table's constraints and indexes by name, with their definitions."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype <> 'n'",
            [TABLE],
        )
        constraints = {name: (kind, definition) for name, kind, definition in cursor.fetchall()}
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass",
            [TABLE],
        )
        indexes = {name: definition.replace(" ON ONLY ", " ON ")
                   for name, definition in cursor.fetchall()}
    return {"constraints": constraints, "indexes": indexes}


def rows() -> list[tuple]:
    return list(ModelRecord.objects.order_by("id").values_list())


def add_records(api, model, count: int) -> list[str]:
    for number in range(count):
        moment = datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC) + datetime.timedelta(
            minutes=number
        )
        response = api.post(
            f"/api/models/id/{model.id}/records",
            record_body(timestamp=moment.isoformat()),
            format="json",
        )
        assert response.status_code == 200, response.content
    return [str(pk) for pk in ModelRecord.objects.values_list("id", flat=True)]


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the SQLite refusal")
def test_partition_records_refuses_on_sqlite_saying_why():
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        partition("--partitions", "8")


@pytest.mark.parametrize("value", ["1", "0", "-3"])
def test_partition_records_needs_at_least_two_partitions(value):
    with pytest.raises(CommandError, match="at least 2"):
        partition("--partitions", value)


@postgresql_only
def test_partition_records_keeps_every_row_constraint_and_index(api, demo):
    add_records(api, demo, 5)
    before_rows, before = rows(), schema()
    target = other_than_current(8)
    output = partition("--partitions", target)
    assert current_layout() == Layout(int(target))
    assert f"{len(before_rows)} rows" in output
    assert rows() == before_rows
    after = schema()
    assert after["constraints"].keys() == before["constraints"].keys()
    assert after["indexes"].keys() == before["indexes"].keys()
    pk = f"{TABLE}_pkey"
    assert after["constraints"][pk] == ("p", "PRIMARY KEY (id, model_id)")
    assert after["constraints"]["record_unique_key"][1].startswith("UNIQUE (model_id,")
    foreign = {name: value for name, value in before["constraints"].items() if value[0] == "f"}
    assert len(foreign) == 5
    assert all(after["constraints"][name] == value for name, value in foreign.items())
    same_indexes = {name for name in before["indexes"] if name != pk}
    assert all(after["indexes"][name] == before["indexes"][name] for name in same_indexes)


@postgresql_only
def test_partition_records_twice_with_the_same_count_refuses(db):
    target = other_than_current(8)
    partition("--partitions", target)
    with pytest.raises(CommandError, match=f"{target} hash partitions on model_id already"):
        partition("--partitions", target)


@postgresql_only
def test_partition_records_repartitions_and_goes_back_to_a_plain_table(api, demo):
    add_records(api, demo, 3)
    before_rows = rows()
    partition("--partitions", other_than_current(4))
    partition("--partitions", other_than_current(6))
    partition("--plain")
    assert current_layout() == Layout(0)
    assert rows() == before_rows
    assert schema()["constraints"][f"{TABLE}_pkey"] == ("p", "PRIMARY KEY (id)")


@postgresql_only
def test_partition_records_refuses_while_another_table_references_records(db):
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE record_notes (record_id uuid REFERENCES {TABLE} (id))"
            if current_layout().partitions == 0
            else f"CREATE TABLE record_notes (record_id uuid, model_id uuid, "
            f"FOREIGN KEY (record_id, model_id) REFERENCES {TABLE} (id, model_id))"
        )
    with pytest.raises(CommandError, match="record_notes"):
        partition("--partitions", other_than_current(8))


@postgresql_only
def test_records_work_on_the_partitioned_table(api, demo):
    """Writing one, reading it by id, changing, deleting it, a model's deletion and the
    bulk COPY path, on a freshly partitioned table."""
    partition("--partitions", other_than_current(8))
    [rid] = add_records(api, demo, 1)
    path = f"/api/models/records/id/{rid}"
    assert api.get(path).json()["id"] == rid
    assert api.patch(path, {"record_info": {"checked": True}}, format="json").status_code == 200
    assert api.get(path).json()["record_info"] == {"checked": True}
    lines = "\n".join(
        json.dumps(record_body(timestamp=f"2024-07-01T10:00:{n:02}Z"))
        for n in range(20)
    )
    answer = api.post(f"/api/models/id/{demo.id}/records", lines,
                      content_type="application/x-ndjson")
    assert answer.json() == {"created": 20, "skipped_existing": 0}
    again = api.post(f"/api/models/id/{demo.id}/records", lines,
                     content_type="application/x-ndjson")
    assert again.json() == {"created": 0, "skipped_existing": 20}
    stream = api.get(f"/api/models/id/{demo.id}/records")
    assert len(b"".join(stream.streaming_content).splitlines()) == 21
    assert api.delete(path).json() == {"id": rid, "deleted": True}
    assert api.get(path).status_code == 404
    demo.delete()
    assert ModelRecord.objects.count() == 0


@postgresql_only
def test_the_admins_estimate_counts_the_partitions(api, demo):
    add_records(api, demo, 4)
    partition("--partitions", other_than_current(8))  # ends with ANALYZE
    assert postgres.estimated_row_count(ModelRecord, "default") == 4
