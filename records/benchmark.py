"""The figures behind ``manage.py bench``: the record paths against PostgreSQL's own limits.

Each measurement pairs the project's path with the database doing the same work on its own,
in the same run, so that the ratios hold on a busy machine where absolute rates do not:

1. ingest: the bulk endpoint over HTTP vs a raw ``COPY`` of the same rows into a scratch table
   with the same primary key, foreign keys, uniqueness rule and indexes;
2. stream: ``GET /id/{id}/records`` over HTTP in every format (NDJSON, Arrow, CSV, Parquet)
   vs ``COPY (SELECT row_to_json(r) ...) TO STDOUT`` of the same rows, and the server's peak
   memory for N and N/10 records in each format;
3. a selective ``/records/filter`` (one site of ten, one day): time to first byte and total;
4. single-record POSTs (multipart forms, as the seed's clients send them) from 8 concurrent
   clients: rate, latency (p50, p99), and any non-200 answer;
5. partitions: a GET by id, the NDJSON stream and a bulk ingest on the plain table and on 8
   hash partitions of the same rows (``partition_records``), as ratios partitioned/plain.
"""

from __future__ import annotations

import datetime
import functools
import http.client
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from django.conf import settings
from django.db import connection

from models_api.api.ids import new_id_text
from records.models import ModelRecord

UTC = datetime.UTC
START = datetime.datetime(2025, 1, 1, tzinfo=UTC)
SITES = 10
DAYS = 100


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A gunicorn serving the project with the production configuration."""

    workers: int = 2
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        env = {
            **os.environ,
            "PORT": str(self.port),
            "HOST": "127.0.0.1",
            "WEB_CONCURRENCY": str(self.workers),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "GUNICORN_MAX_REQUESTS": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "--config", "config/gunicorn.conf.py",
             "--access-logfile", "/dev/null"],
            cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                http_get(self.port, "/healthz")
                if len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("gunicorn did not start")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def peak_memory_mb(self) -> float:
        """The largest peak resident memory (VmHWM) of the workers since they started."""
        peaks = []
        for pid in self.worker_pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return max(peaks)


def http_get(port: int, path: str, headers: dict | None = None) -> tuple[int, float, float, int]:
    """(status, seconds to first body byte, seconds in all, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    first = response.read(1)
    first_byte = time.perf_counter() - started
    size = len(first)
    while chunk := response.read(1 << 20):
        size += len(chunk)
    total = time.perf_counter() - started
    conn.close()
    return response.status, first_byte, total, size


def record_line(n: int, total: int) -> dict:
    """The n-th record of the data set: spread over DAYS days and SITES sites."""
    step = DAYS * 86_400 / total
    return {
        "timestamp": (START + datetime.timedelta(seconds=n * step)).isoformat(),
        "model_data": {"score": round((n % 1000) / 1000, 3), "label": f"plant {n % 97}",
                       "boxes": [[n % 640, n % 480, 32, 32]]},
        "experiment_name": "Bench experiment",
        "season_name": "Bench season",
        "site_name": f"Bench site {n % SITES}",
        "record_info": {"camera": "rgb"},
    }


def ndjson_bodies(total: int, per_body: int) -> Iterator[bytes]:
    for start in range(0, total, per_body):
        yield b"\n".join(
            orjson.dumps(record_line(n, total))
            for n in range(start, min(total, start + per_body))
        )


CONTENT_TYPES = {
    "ndjson": "application/x-ndjson",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
_EXTENSIONS = {"ndjson": "ndjson", "csv": "csv", "arrow": "arrows", "parquet": "parquet"}


def record_table(start: int, stop: int, total: int) -> pa.Table:
    """Records ``start`` to ``stop`` as a table of the input fields (JSON fields as text)."""
    rows = [record_line(n, total) for n in range(start, stop)]
    return pa.table({
        "timestamp": [row["timestamp"] for row in rows],
        "model_data": [orjson.dumps(row["model_data"]).decode() for row in rows],
        "experiment_name": [row["experiment_name"] for row in rows],
        "season_name": [row["season_name"] for row in rows],
        "site_name": [row["site_name"] for row in rows],
        "record_info": [orjson.dumps(row["record_info"]).decode() for row in rows],
    })


def encoded(table: pa.Table, name: str) -> bytes:
    sink = io.BytesIO()
    if name == "csv":
        pacsv.write_csv(table, sink)
    elif name == "arrow":
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=65_536)
    else:
        pq.write_table(table, sink)
    return sink.getvalue()


def bodies(total: int, per_body: int, name: str) -> list[bytes]:
    """The N records in bodies of ``per_body`` records each, in format ``name``."""
    if name == "ndjson":
        return list(ndjson_bodies(total, per_body))
    return [
        encoded(record_table(start, min(total, start + per_body), total), name)
        for start in range(0, total, per_body)
    ]


def write_file(folder: Path, total: int, name: str) -> Path:
    """The N records in one file of format ``name`` (for import_records), written a part at a
    time, and on disk before the clock starts (its dirty pages would otherwise be written back
    during the import, on the same two cores)."""
    path = folder / f"records.{_EXTENSIONS[name]}"
    step = 100_000
    if name == "ndjson":
        with open(path, "wb") as file:
            for body in ndjson_bodies(total, step):
                file.write(body + b"\n")
    elif name == "csv":
        with open(path, "wb") as file:
            for number, start in enumerate(range(0, total, step)):
                table = record_table(start, min(total, start + step), total)
                sink = io.BytesIO()
                pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=number == 0))
                file.write(sink.getvalue())
    else:
        schema = record_table(0, 1, total).schema
        with (ipc.new_stream(str(path), schema) if name == "arrow"
              else pq.ParquetWriter(str(path), schema)) as writer:
            for start in range(0, total, step):
                writer.write_table(record_table(start, min(total, start + step), total))
    with open(path, "rb") as file:
        os.fsync(file.fileno())
    return path


def post(port: int, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


# --- raw PostgreSQL baselines ------------------------------------------------------------

SCRATCH = "bench_scratch_records"


def create_scratch_table() -> None:
    """An empty copy of the record table with the same key, constraints and indexes."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        cursor.execute(f"CREATE TABLE {SCRATCH} (LIKE records_modelrecord INCLUDING ALL)")
        cursor.execute(
            """
            SELECT pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'records_modelrecord'::regclass AND contype = 'f'
            """
        )
        for (definition,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE {SCRATCH} ADD {definition}")


@functools.cache
def may_checkpoint() -> bool:
    """Whether the bench's database user may run ``CHECKPOINT``: a superuser, or a member of
    ``pg_checkpoint`` (PostgreSQL 15 on). A managed database's user often is neither."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper OR CASE WHEN to_regrole('pg_checkpoint') IS NULL THEN false "
            "ELSE pg_has_role(current_user, 'pg_checkpoint', 'MEMBER') END "
            "FROM pg_roles WHERE rolname = current_user"
        )
        return bool(cursor.fetchone()[0])


def settle(*, compact: bool = False) -> None:
    """Start a timed load from the state every other starts from: the rows an earlier step
    deleted vacuumed away, and a checkpoint taken (where the user may, ``may_checkpoint``).
    Otherwise autovacuum cleans up a deleted model's million rows during the next load, on
    the same two cores, and a checkpoint falls in whichever load happens to fill the WAL.

    ``compact`` rewrites the record table and its indexes (``VACUUM FULL``), as new as the raw
    COPY's scratch table: a plain VACUUM leaves the indexes the size the deleted rows made
    them. It copies every live row, which takes a while for a table of millions."""
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (FULL, ANALYZE) records_modelrecord"
            if compact
            else "VACUUM ANALYZE records_modelrecord"
        )
        if may_checkpoint():
            cursor.execute("CHECKPOINT")


def drop_scratch_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")


def _copied_out(query: str, params: tuple) -> bytes:
    """What ``COPY (query) TO STDOUT`` gives, in COPY text format, as one bytes object."""
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({query}) TO STDOUT", params) as copy:
            for block in copy:
                buffer.write(block)
    return buffer.getvalue()


def rows_as_copy_text(model_id) -> bytes:
    """The model's record rows in COPY text format (the raw load's input, read beforehand)."""
    return _copied_out("SELECT * FROM records_modelrecord WHERE model_id = %s", (model_id,))


def rows_as_another_models(model_id, other_id) -> tuple[bytes, list[str]]:
    """The model's record rows in COPY text format as ``other_id``'s, each with a new id
    (time-ordered, as the ingest's), and their columns: what a raw COPY into the record table
    itself loads beside the model's own rows."""
    columns = [field.column for field in ModelRecord._meta.concrete_fields]
    if columns[0] != "id":
        raise RuntimeError("The record table's first concrete field is expected to be its id.")
    selected = ", ".join("%s::uuid" if name == "model_id" else name for name in columns)
    text = _copied_out(
        f"SELECT {selected} FROM records_modelrecord WHERE model_id = %s", (other_id, model_id)
    )
    id_length = len(new_id_text())
    return b"".join(
        new_id_text().encode() + line[id_length:] for line in text.splitlines(keepends=True)
    ), columns


def raw_copy_in(text: bytes, *, table: str = SCRATCH, columns: list[str] | None = None) -> float:
    """Seconds to COPY ``text`` into ``table`` (the scratch table unless told), committed
    (foreign keys checked)."""
    into = f"{table} ({', '.join(columns)})" if columns else table
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        with cursor.cursor.copy(f"COPY {into} FROM STDIN") as copy:
            view = memoryview(text)
            for offset in range(0, len(view), 1 << 20):
                copy.write(view[offset : offset + (1 << 20)])
        cursor.execute("COMMIT")
    return time.perf_counter() - started


def raw_copy_out(model_id, *, expected: int) -> float:
    """Seconds to stream the model's rows as JSON with COPY ... TO STDOUT (the limit the
    streams are measured against: the database writing each row as JSON, in stream order)."""
    started = time.perf_counter()
    records = 0
    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY (SELECT row_to_json(r) FROM (SELECT * FROM records_modelrecord "
            "WHERE model_id = %s ORDER BY timestamp, id) r) TO STDOUT",
            (model_id,),
        ) as copy:
            for _ in copy:
                records += 1
    if records != expected:
        raise RuntimeError(f"The raw COPY gave {records} records of {expected}.")
    return time.perf_counter() - started


# --- concurrent single posts ---------------------------------------------------------------


_BOUNDARY = "bench-boundary-7d1f"


def multipart_form(fields: dict) -> bytes:
    """A record as the seed's clients post it: a multipart form, JSON values as JSON text."""
    parts = [
        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        f"{value if isinstance(value, str) else orjson.dumps(value).decode()}\r\n"
        for name, value in fields.items()
    ]
    return ("".join(parts) + f"--{_BOUNDARY}--\r\n").encode()


def concurrent_posts(port: int, path: str, headers: dict, clients: int, seconds: float) -> dict:
    """``clients`` threads posting single records as multipart forms for ``seconds``."""
    headers = {**headers, "Content-Type": f"multipart/form-data; boundary={_BOUNDARY}"}
    latencies: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(number: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        sequence = 0
        mine, bad = [], {}
        while time.perf_counter() < stop_at:
            body = record_line(0, 1)
            body["timestamp"] = (
                START + datetime.timedelta(days=400, seconds=number * 10_000_000 + sequence)
            ).isoformat()
            sequence += 1
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=multipart_form(body), headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                status = type(error).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - started)
            if status != 200:
                bad[str(status)] = bad.get(str(status), 0) + 1
        with lock:
            latencies.extend(mine)
            for status, count in bad.items():
                failures[status] = failures.get(status, 0) + count

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "records_per_second": round(len(latencies) / elapsed, 1),
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 1),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "non_200": sum(failures.values()),
        "non_200_by_status": failures,
    }


def query_string(**params) -> str:
    return "?" + urlencode(params, doseq=True)


def to_json(figures: dict) -> str:
    return json.dumps(figures, indent=2, sort_keys=False)


# --- partitions: the plain table against hash partitions on model_id ----------------------


def sample_record_ids(model_id, count: int) -> list[str]:
    """``count`` of the model's record ids, spread over the whole table (the lookups by id)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM records_modelrecord WHERE model_id = %s ORDER BY md5(id::text) "
            "LIMIT %s",
            (model_id, count),
        )
        return [str(record_id) for (record_id,) in cursor.fetchall()]


def get_by_id_ms(port: int, ids: list[str], headers: dict) -> float:
    """Median milliseconds of ``GET /records/id/{rid}`` over ``ids``, on one kept-alive
    connection (the lookup, not the connection set-up, is what partitioning changes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for record_id in ids:
        started = time.perf_counter()
        conn.request("GET", f"/api/models/records/id/{record_id}", headers=headers)
        response = conn.getresponse()
        response.read()
        times.append(time.perf_counter() - started)
        if response.status != 200:
            conn.close()
            raise RuntimeError(f"GET of record {record_id} answered {response.status}.")
    conn.close()
    return statistics.median(times) * 1000


def lookup_by_id_ms(ids: list[str]) -> float:
    """Median milliseconds of the database's own lookup of a record row by id alone (planning
    and execution, one round trip), the part of a GET that partitioning changes."""
    times = []
    with connection.cursor() as cursor:
        for record_id in ids * 2:  # the first pass warms the caches
            started = time.perf_counter()
            cursor.execute("SELECT * FROM records_modelrecord WHERE id = %s", (record_id,))
            if cursor.fetchone() is None:
                raise RuntimeError(f"No record {record_id}.")
            times.append(time.perf_counter() - started)
    return statistics.median(times[len(ids):]) * 1000


def tables_visited_by_id(record_id: str) -> int:
    """The tables PostgreSQL plans to read for a lookup by id alone: one per partition, since
    the id does not say which holds the record."""
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (FORMAT JSON) SELECT 1 FROM records_modelrecord WHERE id = %s", (record_id,)
        )
        plan = json.dumps(cursor.fetchone()[0])
    return plan.count('"Relation Name"')
