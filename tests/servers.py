"""Real servers for the tests, started by the tests in temporary folders of their own.

- :class:`PostgresServer`: a PostgreSQL primary (``initdb``, ``wal_level=replica``) or a
  streaming replica of one (``pg_basebackup -R``), on a free port of 127.0.0.1, run as the
  ``postgres`` OS user (PostgreSQL refuses to run as root). The machine's own PostgreSQL (its
  configuration, its port 5432) is never touched.
- :class:`RedisServer`: a ``redis-server`` of a test's own, which it may stop.
- :func:`shared_redis_url`: the machine's Redis on 127.0.0.1:6379, a database number of the
  test run's own, flushed.

Fixtures: ``postgres_cluster`` (session-scoped: a primary and its replica, shared by every
test that uses them) and ``shared_redis``. They skip, saying why, only when the binaries or
the machine's Redis are missing; CI has them all.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
PG_BIN = next((d for d in PG_BIN_DIRS if (d / "initdb").exists()), None)
PG_USER = "postgres"
REDIS_SERVER = shutil.which("redis-server")

#: What the primary needs to feed a replica, and what makes a test server cheap.
_PRIMARY_CONF = """
listen_addresses = '127.0.0.1'
wal_level = replica
max_wal_senders = 4
wal_keep_size = '64MB'
hot_standby = on
hot_standby_feedback = on
max_connections = 40
shared_buffers = '16MB'
fsync = off
full_page_writes = off
log_min_messages = warning
"""

#: The database the services under test use on the cluster.
DATABASE = "models_api"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_postgres(*command: str | Path) -> list[str]:
    """``command`` run as the postgres OS user (when we are root: PostgreSQL refuses root)."""
    args = [str(part) for part in command]
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *args]
    return args


def _run(*command: str | Path, timeout: float = 60) -> None:
    result = subprocess.run(
        _as_postgres(*command), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{result.stderr[-3000:]}")


def _owned_folder(prefix: str) -> Path:
    """A fresh folder under /tmp that the postgres user owns (pytest's own temporary folders
    are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        entry = pwd.getpwnam(PG_USER)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    return folder


class PostgresServer:
    """One PostgreSQL server in ``folder``/data on its own port; :meth:`stop` and
    :meth:`start` as often as a test likes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()

    @classmethod
    def primary(cls, folder: Path) -> PostgresServer:
        server = cls(folder)
        _run(
            PG_BIN / "initdb", "-D", server.data, "-U", PG_USER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )
        server._configure(_PRIMARY_CONF)
        server.start()
        return server

    @classmethod
    def replica_of(cls, primary: PostgresServer, folder: Path) -> PostgresServer:
        """A streaming replica (``-R`` writes ``standby.signal`` and the primary's address)."""
        server = cls(folder)
        _run(
            PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", PG_USER,
            "-D", server.data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync",
        )
        server._configure("")
        server.start()
        return server

    def _configure(self, settings: str) -> None:
        """Settings of this server: later lines win, so the copied primary's port is replaced."""
        text = f"{settings}\nport = {self.port}\nunix_socket_directories = '{self.folder}'\n"
        with open(self.data / "postgresql.conf", "a") as conf:  # stays the postgres user's
            conf.write(text)

    def start(self) -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-l", self.folder / "log", "-w", "start")

    def stop(self) -> None:
        _run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def reconfigure(self, **settings: str) -> None:
        """Change settings that a reload applies (``recovery_min_apply_delay="1s"``)."""
        self._configure("".join(f"{name} = '{value}'\n" for name, value in settings.items()))
        _run(PG_BIN / "pg_ctl", "-D", self.data, "reload")

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=5)

    def query(self, sql: str, database: str = DATABASE) -> list[tuple]:
        """The rows of ``sql`` (none for a statement that returns none)."""
        with self.connect(database) as connection:
            cursor = connection.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def destroy(self) -> None:
        subprocess.run(
            _as_postgres(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "stop"),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Cluster:
    primary: PostgresServer
    replica: PostgresServer

    def wait_for_replay(self, timeout: float = 10) -> None:
        """Until the replica has replayed everything the primary has written so far."""
        (target,) = self.primary.query("SELECT pg_current_wal_lsn()::text")[0]
        deadline = time.monotonic() + timeout
        while True:
            (caught_up,) = self.replica.query(
                f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
            )[0]
            if caught_up:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("The replica did not catch up.")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A primary with the database ``models_api`` (empty) and a streaming replica of it."""
    if PG_BIN is None or not (PG_BIN / "pg_basebackup").exists():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are missing")
    if os.geteuid() == 0 and not shutil.which("runuser"):
        pytest.skip("runuser is missing (needed to run PostgreSQL as the postgres user)")
    primary = PostgresServer.primary(_owned_folder("models-api-primary-"))
    replica = None
    try:
        primary.query(f"CREATE DATABASE {DATABASE}", database="postgres")
        replica = PostgresServer.replica_of(primary, _owned_folder("models-api-replica-"))
        cluster = Cluster(primary, replica)
        cluster.wait_for_replay()
        yield cluster
    finally:
        if replica is not None:
            replica.destroy()
        primary.destroy()


# --- Redis ---------------------------------------------------------------------------------

SHARED_REDIS = ("127.0.0.1", 6379)
#: The first of the machine's Redis database numbers the tests use (one per xdist worker).
SHARED_REDIS_DB = 7


def shared_redis_url() -> str:
    """The machine's Redis, on a database of this test process's own (xdist workers each
    take the next number)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    number = SHARED_REDIS_DB + (int(worker) if worker.isdigit() else 0) % 8
    return f"redis://{SHARED_REDIS[0]}:{SHARED_REDIS[1]}/{number}"


def flush_shared_redis() -> str:
    """Empty this test process's database of the machine's Redis (skip the test when no Redis
    answers there) and give its URL."""
    url = shared_redis_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("No Redis answers on 127.0.0.1:6379")
    finally:
        client.close()
    return url


@pytest.fixture
def shared_redis() -> str:
    """The URL of the machine's Redis database for this test, flushed."""
    return flush_shared_redis()


class RedisServer:
    """``redis-server`` of a test's own, in a temporary folder, without persistence."""

    def __init__(self, folder: Path) -> None:
        if REDIS_SERVER is None:
            pytest.skip("redis-server is missing")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = folder
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
