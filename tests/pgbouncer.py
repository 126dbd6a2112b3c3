"""PgBouncer in transaction pooling mode, started by the tests in a folder of their own.

It listens on a free port of 127.0.0.1 and passes every database name on to the PostgreSQL
the tests use (``DATABASE_URL``'s host and port), with trust authentication: the machine's
server is not reconfigured. Each transaction may then run on a different server connection,
which is what the service must survive behind a pooler.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port

#: Where Debian's ``pgbouncer`` package puts the binary.
BINARY_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def binary() -> str | None:
    """The pgbouncer binary, or None when it is not installed."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in BINARY_PATHS if os.access(path, os.X_OK)), None)


def pooler_of(database: dict) -> str:
    """The ``DATABASE_POOLER`` a server started by a test needs to reach ``database`` (a
    connection's settings) the way the suite does."""
    return "pgbouncer" if database.get("DISABLE_SERVER_SIDE_CURSORS") else "none"


@dataclass
class PgBouncer:
    """A pgbouncer process in front of ``server_host:server_port``; use it as a context
    manager (``with PgBouncer(...) as bouncer: bouncer.port``)."""

    server_host: str = "127.0.0.1"
    server_port: int = 5432
    user: str = "postgres"
    pool_size: int = 10
    port: int = field(default_factory=free_port)
    folder: Path | None = None
    process: subprocess.Popen | None = None

    def config(self) -> str:
        assert self.folder is not None
        # PgBouncer refuses to run as root: it drops to the postgres user, given "user".
        run_as = f"user = {self.user}\n" if os.geteuid() == 0 else ""
        return (
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "pool_mode = transaction\n"
            "auth_type = trust\n"
            f"auth_file = {self.folder / 'userlist.txt'}\n"
            f"admin_users = {self.user}\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 500\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\n"
            f"pidfile = {self.folder / 'pgbouncer.pid'}\n"
            f"{run_as}"
        )

    def __enter__(self) -> PgBouncer:
        path = binary()
        if path is None:
            raise RuntimeError("pgbouncer is not installed (Debian: apt-get install pgbouncer).")
        self.folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        (self.folder / "userlist.txt").write_text(f'"{self.user}" ""\n')
        (self.folder / "pgbouncer.ini").write_text(self.config())
        if os.geteuid() == 0:
            account = pwd.getpwnam(self.user)
            for item in (self.folder, *self.folder.iterdir()):
                os.chown(item, account.pw_uid, account.pw_gid)
        self.process = subprocess.Popen(
            [path, str(self.folder / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        log = self.log()
        self.__exit__()
        raise RuntimeError(f"pgbouncer did not start: {log[-2000:]}")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "pgbouncer.log" if self.folder else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def admin(self, command: str) -> str:
        """A command of PgBouncer's admin console (``SHOW POOLS``, ``KILL db``), whose simple
        query protocol psql speaks."""
        return subprocess.run(
            ["psql", "-X", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-c", command, "pgbouncer"],
            check=True, capture_output=True, text=True, timeout=30,
        ).stdout

    def close_server_connections(self, database: str) -> None:
        """Close PgBouncer's pooled connections to ``database`` (which PostgreSQL refuses to
        drop while any is open)."""
        try:
            self.admin(f"KILL {database}")
        except subprocess.CalledProcessError as error:
            if "no such database" not in (error.stderr or ""):
                raise
