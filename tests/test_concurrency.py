"""Concurrent clients against the production server: the same records posted by several
clients at once are stored exactly once, and concurrent PATCHes change only what they send.

The server is gunicorn with several worker processes (``config/gunicorn.conf.py``, as ``make
serve`` runs it) on the test database, rather than pytest-django's ``live_server``, which
serves every request in the test's own process.

Whether two posts of one record really overlap depends on the machine: on a busy one the
requests get staggered and every loser meets the winner's committed row in the pre-check
(PostgreSQL counted no rolled-back insert in 4,000 posts on a loaded 2-CPU box, with
``live_server`` and with gunicorn alike). So the path where two inserts do collide is also
forced deterministically: the test holds the conflicting row in an open transaction, the
server's insert waits on it (seen in ``pg_stat_activity``), and the test then commits or
rolls back.

PostgreSQL only: SQLite serialises every writer, so races cannot happen there.
"""

from __future__ import annotations

import datetime
import io
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import quote

import pytest
import requests
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from models_api.models import Dataset, MLModel
from records.models import ModelRecord
from tests.conftest import record_body
from tests.pgbouncer import pooler_of
from tests.test_production_settings import GunicornServer, environment

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
]

CLIENTS = 8
START = datetime.datetime(2024, 6, 1, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory):
    """gunicorn, 4 worker processes of 2 threads, on the test database; yields (server,
    media folder)."""
    database = connections["default"].settings_dict  # the test database by now
    credentials = quote(database["USER"] or "")
    if database["PASSWORD"]:
        credentials += ":" + quote(database["PASSWORD"])
    url = (
        f"postgres://{credentials}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}"
        f"/{database['NAME']}"
    )
    var_dir = tmp_path_factory.mktemp("concurrency")
    env = environment(
        var_dir,
        DATABASE_URL=url,
        DATABASE_POOLER=pooler_of(database),
        DJANGO_MEDIA_ROOT=str(var_dir / "media"),
    )
    server = GunicornServer(env, var_dir / "gunicorn.log", workers=4, threads=2)
    yield server, var_dir / "media"
    server.stop()


@pytest.fixture
def server(gunicorn, transactional_db):
    """(base URL, headers): the demo catalogue and a writer's token, committed."""
    call_command("load_demo", stdout=io.StringIO())
    call_command("create_api_user", "racer", stdout=io.StringIO())
    token = Token.objects.get(user__username="racer").key
    return gunicorn[0].url, {"Authorization": f"Token {token}"}


@pytest.fixture
def server_media(gunicorn):
    return gunicorn[1]


@pytest.fixture
def model(server) -> MLModel:
    return MLModel.objects.get(model_name="Model A")


def nth(n: int, **overrides) -> dict:
    """The n-th record: one second apart, all on one day (so one default dataset)."""
    return record_body(timestamp=(START + datetime.timedelta(seconds=n)).isoformat(), **overrides)


def run_clients(count: int, work: Callable[[int, requests.Session], list]) -> list:
    """Run ``work(client_number, session)`` in ``count`` threads that start together; the
    results of all of them, and any exception a thread raised."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list[BaseException] = []

    def main(number: int) -> None:
        with requests.Session() as session:
            barrier.wait()
            try:
                results[number] = work(number, session)
            except BaseException as error:  # surfaced in the test's own thread
                errors.append(error)

    threads = [threading.Thread(target=main, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not errors, errors
    return results


def shuffled(items: list, seed: int) -> list:
    """The clients post in one of two orders: four clients in step race on the very same
    record (insert against insert), the others meet it early or late (the pre-check)."""
    items = list(items)
    random.Random(seed % 2).shuffle(items)
    return items


def assert_each_record_created_once(answers: list[tuple[int, dict]], model: MLModel, count: int):
    statuses = Counter(status for status, _ in answers)
    assert set(statuses) <= {200, 409}, statuses  # never a 500 (or anything else)
    assert statuses[200] == count, statuses  # each record was created by exactly one client
    assert ModelRecord.objects.filter(model=model).count() == count
    ids = set(ModelRecord.objects.values_list("id", flat=True))
    created = {body["id"] for status, body in answers if status == 200}
    assert {str(i) for i in ids} == created
    for status, body in answers:
        if status == 409:
            assert body["id"] in created and body["detail"]
    # Every record's dataset was created once, and linked once.
    assert Dataset.objects.filter(dataset_name__startswith="Model A Dataset").count() == 1
    assert model.datasets.count() == 1


def test_same_500_json_records_posted_by_8_clients_are_stored_once(server, model):
    base, headers = server
    url = f"{base}/api/models/id/{model.id}/records"
    records = [nth(n) for n in range(500)]

    def work(number: int, session: requests.Session) -> list:
        answers = []
        for record in shuffled(records, seed=number):
            response = session.post(url, json=record, headers=headers, timeout=60)
            answers.append((response.status_code, response.json()))
        return answers

    answers = [answer for client in run_clients(CLIENTS, work) for answer in client]
    assert len(answers) == CLIENTS * 500
    assert_each_record_created_once(answers, model, 500)


def test_same_500_records_with_files_posted_by_8_clients_store_one_file_each(
    server, model, server_media
):
    base, headers = server
    url = f"{base}/api/models/id/{model.id}/records"

    def work(number: int, session: requests.Session) -> list:
        answers = []
        for n in shuffled(range(500), seed=number):
            fields = nth(n)
            fields["model_data"] = json.dumps(fields["model_data"])
            files = {"record_file": (f"leaf-{n}.txt", f"file {n} from client {number}".encode())}
            response = session.post(url, data=fields, files=files, headers=headers, timeout=60)
            answers.append((response.status_code, response.json()))
        return answers

    answers = [answer for client in run_clients(CLIENTS, work) for answer in client]
    assert_each_record_created_once(answers, model, 500)
    folder = server_media / "model_records" / str(model.id)
    stored = sorted(
        p.relative_to(server_media).as_posix() for p in folder.rglob("*") if p.is_file()
    )
    keys = sorted(ModelRecord.objects.values_list("record_file", flat=True))
    assert stored == keys  # one file per record: no loser's file left behind, none missing
    for record in ModelRecord.objects.all():
        name = record.record_file.rsplit("/", 1)[-1]
        n = int(name.removeprefix("leaf-").removesuffix(".txt"))
        assert (server_media / record.record_file).read_text().startswith(f"file {n} from client ")
        assert record.timestamp == START + datetime.timedelta(seconds=n)


def test_same_2000_line_bulk_body_posted_by_8_clients_is_stored_once(server, model):
    base, headers = server
    url = f"{base}/api/models/id/{model.id}/records"
    body = "".join(json.dumps(nth(n)) + "\n" for n in range(2000))
    ndjson = {**headers, "Content-Type": "application/x-ndjson"}

    def work(number: int, session: requests.Session) -> list:
        response = session.post(url, data=body, headers=ndjson, timeout=300)
        return [(response.status_code, response.json())]

    answers = [answer for client in run_clients(CLIENTS, work) for answer in client]
    assert [status for status, _ in answers] == [200] * CLIENTS, answers
    assert sum(body["created"] for _, body in answers) == 2000
    for _, answer in answers:
        assert answer["created"] + answer["skipped_existing"] == 2000
    assert ModelRecord.objects.filter(model=model).count() == 2000
    assert Dataset.objects.filter(dataset_name__startswith="Model A Dataset").count() == 1


def test_bulk_and_single_posts_of_the_same_records_race_cleanly(server, model):
    """Half the clients post the records one by one, half as one bulk body."""
    base, headers = server
    url = f"{base}/api/models/id/{model.id}/records"
    records = [nth(n) for n in range(300)]
    body = "".join(json.dumps(record) + "\n" for record in records)

    def work(number: int, session: requests.Session) -> list:
        if number % 2:
            response = session.post(
                url, data=body, headers={**headers, "Content-Type": "application/x-ndjson"},
                timeout=300,
            )
            return [("bulk", response.status_code, response.json())]
        return [
            ("one", response.status_code, response.json())
            for response in (
                session.post(url, json=record, headers=headers, timeout=60)
                for record in shuffled(records, seed=number)
            )
        ]

    answers = [answer for client in run_clients(CLIENTS, work) for answer in client]
    assert {status for _, status, _ in answers} <= {200, 409}
    created = sum(body["created"] for kind, status, body in answers if kind == "bulk")
    created += sum(1 for kind, status, _ in answers if kind == "one" and status == 200)
    assert created == 300
    assert ModelRecord.objects.filter(model=model).count() == 300


# --- Concurrent PATCHes: each changes only the fields it sends --------------------------------


def test_concurrent_patches_of_different_fields_never_revert_each_other(server, model):
    base, headers = server
    url = f"{base}/api/models/id/{model.id}"
    rounds = 60
    fields = {
        0: lambda i: {"model_url": f"https://example.org/a/{i}"},
        1: lambda i: {"model_info": {"client": "b", "round": i}},
        2: lambda i: {"model_name": f"Model A (rev {i})"},
    }

    def work(number: int, session: requests.Session) -> list:
        sent = []
        for i in range(rounds):
            body = fields[number](i)
            response = session.patch(url, json=body, headers=headers, timeout=60)
            assert response.status_code == 200, response.text
            for name, value in body.items():  # its own field is what it sent
                assert response.json()[name] == value
            sent.append(body)
        return sent

    run_clients(len(fields), work)
    final = requests.get(url, headers=headers, timeout=10).json()
    assert final["model_url"] == f"https://example.org/a/{rounds - 1}"
    assert final["model_info"] == {"client": "b", "round": rounds - 1}
    assert final["model_name"] == f"Model A (rev {rounds - 1})"


def test_concurrent_patches_of_a_record_change_only_what_they_send(server, model):
    base, headers = server
    created = requests.post(
        f"{base}/api/models/id/{model.id}/records", json=nth(0), headers=headers, timeout=10
    ).json()
    url = f"{base}/api/models/records/id/{created['id']}"
    rounds = 60

    def work(number: int, session: requests.Session) -> list:
        field = ("model_data", "record_info")[number]
        for i in range(rounds):
            response = session.patch(url, json={field: {"round": i}}, headers=headers, timeout=60)
            assert response.status_code == 200, response.text
        return []

    run_clients(2, work)
    final = requests.get(url, headers=headers, timeout=10).json()
    assert final["model_data"] == {"round": rounds - 1}
    assert final["record_info"] == {"round": rounds - 1}


@pytest.mark.parametrize(
    "body, columns",
    [
        pytest.param({"model_url": "https://example.org/m"}, {"model_url"}, id="url"),
        pytest.param({"model_info": {"k": 1}}, {"model_info"}, id="info"),
        pytest.param({"model_name": "Renamed"}, {"model_name"}, id="name"),
    ],
)
def test_a_patch_writes_only_the_columns_it_sends(server, model, body, columns):
    """The rule behind the test above, checked on the SQL itself (no timing involved)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=server[1]["Authorization"])
    with CaptureQueriesContext(connection) as queries:
        assert client.patch(f"/api/models/id/{model.id}", body, format="json").status_code == 200
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "models_api_mlmodel"')]
    assert len(updates) == 1, updates
    set_clause = updates[0].split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    written = set(re.findall(r'"(\w+)" = ', set_clause))
    assert written == columns | {"updated_at"}


# --- The collision itself, forced: the test holds the same record in an open transaction ----


def wait_for_lock_waiters(deadline_seconds: float = 20) -> int:
    """Backends of the test database waiting on a lock (the server's insert, blocked on the
    test's uncommitted row)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            waiting = cursor.fetchone()[0]
        if waiting or time.monotonic() > deadline:
            return waiting
        time.sleep(0.05)


def hold_record(model: MLModel, n: int) -> ModelRecord:
    """Insert (uncommitted, inside the caller's transaction) the record ``nth(n)`` would be."""
    from models_api.models import Experiment, Season, Site

    body = nth(n)
    timestamp = datetime.datetime.fromisoformat(body["timestamp"])
    experiment = Experiment.objects.get(experiment_name=body["experiment_name"])
    return ModelRecord.objects.create(
        model=model,
        timestamp=timestamp,
        collection_date=timestamp.date(),
        dataset=Dataset.objects.get(dataset_name=f"Model A Dataset {timestamp.date()}"),
        experiment=experiment,
        season=Season.objects.get(experiment=experiment, season_name=body["season_name"]),
        site=Site.objects.get(site_name=body["site_name"]),
        model_data={"held": "by the test"},
    )


def in_background(call: Callable[[], requests.Response]) -> Callable[[], requests.Response]:
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("response", call()))
    thread.start()

    def join() -> requests.Response:
        thread.join(60)
        return result["response"]

    return join


def post_form(base: str, headers: dict, model: MLModel, n: int) -> requests.Response:
    fields = nth(n)
    fields["model_data"] = json.dumps(fields["model_data"])
    files = {"record_file": ("leaf.txt", b"the server's copy")}
    return requests.post(
        f"{base}/api/models/id/{model.id}/records", data=fields, files=files, headers=headers,
        timeout=60,
    )


@pytest.fixture
def dataset(server, model) -> Dataset:
    return Dataset.objects.create(
        dataset_name=f"Model A Dataset {START.date()}", collection_date=START.date()
    )


def test_insert_that_collides_with_a_concurrent_commit_is_409_and_leaves_no_file(
    server, model, dataset, server_media
):
    base, headers = server
    with transaction.atomic():
        held = hold_record(model, 7)
        response = in_background(lambda: post_form(base, headers, model, 7))
        assert wait_for_lock_waiters() >= 1, "the server's insert should wait on the held row"
    response = response()  # the held row committed: the server's insert failed
    assert response.status_code == 409, response.text
    assert response.json()["id"] == str(held.id)
    assert list(ModelRecord.objects.values_list("id", flat=True)) == [held.id]
    folder = server_media / "model_records" / str(model.id)
    assert not [p for p in folder.rglob("*") if p.is_file()]  # its file was removed


def test_insert_that_waited_on_a_concurrent_rollback_is_stored(
    server, model, dataset, server_media
):
    base, headers = server
    with transaction.atomic():
        hold_record(model, 8)
        response = in_background(lambda: post_form(base, headers, model, 8))
        assert wait_for_lock_waiters() >= 1
        transaction.set_rollback(True)
    response = response()
    assert response.status_code == 200, response.text
    record = ModelRecord.objects.get()
    assert str(record.id) == response.json()["id"]
    assert (server_media / record.record_file).read_bytes() == b"the server's copy"


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_bulk_that_collides_with_a_concurrent_insert_skips_or_creates_it(
    server, model, dataset, outcome
):
    base, headers = server
    body = "".join(json.dumps(nth(n)) + "\n" for n in range(100))
    with transaction.atomic():
        hold_record(model, 50)
        response = in_background(
            lambda: requests.post(
                f"{base}/api/models/id/{model.id}/records",
                data=body,
                headers={**headers, "Content-Type": "application/x-ndjson"},
                timeout=60,
            )
        )
        assert wait_for_lock_waiters() >= 1
        if outcome == "rollback":
            transaction.set_rollback(True)
    response = response()
    assert response.status_code == 200, response.text
    expected = {"created": 99, "skipped_existing": 1} if outcome == "commit" else {
        "created": 100, "skipped_existing": 0
    }
    assert response.json() == expected
    assert ModelRecord.objects.count() == 100


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_record_whose_new_dataset_is_being_created_concurrently_uses_the_one_that_wins(
    server, model, outcome
):
    base, headers = server
    name = f"Model A Dataset {START.date()}"
    with transaction.atomic():
        held = Dataset.objects.create(dataset_name=name, collection_date=START.date())
        response = in_background(
            lambda: requests.post(
                f"{base}/api/models/id/{model.id}/records", json=nth(3), headers=headers,
                timeout=60,
            )
        )
        assert wait_for_lock_waiters() >= 1, "the server's dataset insert should wait"
        if outcome == "rollback":
            transaction.set_rollback(True)
    response = response()
    assert response.status_code == 200, response.text
    dataset = Dataset.objects.get(dataset_name=name)  # exactly one
    assert response.json()["dataset_id"] == str(dataset.id)
    assert (dataset.id == held.id) == (outcome == "commit")


@pytest.mark.parametrize("kind", ["model", "record"])
def test_patch_that_waits_on_a_concurrent_change_of_another_field_keeps_that_change(
    server, model, kind
):
    """The other client's change is committed while this PATCH is already past its read:
    with the columns it did not send left alone, nothing is reverted."""
    base, headers = server
    if kind == "model":
        url, sent, other = (
            f"{base}/api/models/id/{model.id}", {"model_url": "https://example.org/new"},
            {"model_info": {"by": "the other client"}},
        )
        rows = MLModel.objects.filter(pk=model.pk)
    else:
        created = requests.post(
            f"{base}/api/models/id/{model.id}/records", json=nth(0), headers=headers, timeout=10
        ).json()
        url, sent, other = (
            f"{base}/api/models/records/id/{created['id']}", {"model_data": {"new": True}},
            {"record_info": {"by": "the other client"}},
        )
        rows = ModelRecord.objects.filter(pk=created["id"])
    with transaction.atomic():
        rows.update(**other)  # the row stays locked until the block ends
        response = in_background(
            lambda: requests.patch(url, json=sent, headers=headers, timeout=60)
        )
        assert wait_for_lock_waiters() >= 1, "the PATCH's UPDATE should wait on the row"
    response = response()
    assert response.status_code == 200, response.text
    final = rows.values(*sent, *other).get()
    assert final == {**sent, **other}
