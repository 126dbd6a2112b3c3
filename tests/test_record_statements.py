"""The statements every single-record POST runs (``models_api.api.prepared``): PostgreSQL keeps
the three prepared on a direct connection, never behind PgBouncer, and what they write and read is
what the usual cursors would."""

from __future__ import annotations

import pytest
from django.db import connection

from config.database import PREPARE_THRESHOLD
from records.models import ModelRecord
from tests.test_record_ingest import form as record_form

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's"
)

#: A table that each of the three statements reads or writes: the token with its user, the
#: model's name with the names' ids, the record with its links.
STATEMENT_TABLES = ("authtoken_token", "models_api_site", "records_modelrecord")


def form(second: int) -> dict:
    return record_form(
        timestamp=f"2024-06-01T10:00:{second:02d}.250000+02:00",
        model_data={"score": 0.5, "nested": {"list": [1, "two", None]}},
        record_info={"camera": "rgb"},
    )


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def post_forms(api, model, count: int) -> list[dict]:
    bodies = []
    for second in range(count):
        response = api.post(f"/api/models/id/{model.id}/records", form(second), format="multipart")
        assert response.status_code == 200, response.content
        bodies.append(response.json())
    return bodies


@postgresql_only
def test_the_statements_of_a_single_post_are_prepared_directly_and_never_behind_pgbouncer(
    api, demo, test_pgbouncer
):
    # The test runs in one transaction, which PgBouncer keeps on one server connection: the
    # statements psycopg prepared would be listed there.
    post_forms(api, demo, PREPARE_THRESHOLD + 2)
    statements = prepared_statements()
    if test_pgbouncer is not None:
        assert statements == []
        return
    for table in STATEMENT_TABLES:
        assert any(table in statement for statement in statements), (table, statements)
    assert len(statements) == len(STATEMENT_TABLES)


def test_records_written_and_read_by_the_prepared_statements_are_exact(api, demo):
    bodies = post_forms(api, demo, PREPARE_THRESHOLD + 2)
    last = bodies[-1]  # on PostgreSQL, written by the prepared INSERT
    assert last["timestamp"] == f"2024-06-01T08:00:{PREPARE_THRESHOLD + 1:02d}.250000Z"
    assert last["model_data"] == {"score": 0.5, "nested": {"list": [1, "two", None]}}
    assert last["record_info"] == {"camera": "rgb"}
    assert (last["model_name"], last["site_name"]) == ("Model A", "Site A1")
    stored = ModelRecord.objects.get(pk=last["id"])
    assert stored.model_data == last["model_data"] and stored.site.site_name == "Site A1"
    assert api.get(f"/api/models/records/id/{last['id']}").json() == last
    # A repeat still answers 409 with the existing id, through the same statements.
    again = api.post(
        f"/api/models/id/{demo.id}/records", form(PREPARE_THRESHOLD + 1), format="multipart"
    )
    assert again.status_code == 409 and again.json()["id"] == last["id"]
    assert ModelRecord.objects.filter(model=demo).count() == PREPARE_THRESHOLD + 2
