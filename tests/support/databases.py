"""Databases the tests create on the servers and drop again."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from router.db import build_engine
from tests.support.listening import free_port

# The shared servers tests make their own databases on (never stopped: see :class:`PrivatePostgres`).
POSTGRES_SERVER_URL = os.environ.get("KEFU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER_URL = os.environ.get("KEFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@contextmanager
def fresh_postgres_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """The URL of a new database on the PostgreSQL server, empty or a copy of ``template``, dropped on leaving."""
    name = f"kefu_test_{uuid.uuid4().hex[:12]}"
    admin = build_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def _as_postgres(command: list[str]) -> list[str]:
    # initdb and the server refuse to run as root; as root, run them as the postgres account.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb + pg_ctl in a temporary directory) that it may stop and start:
    the machine's server is shared and never stopped."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        """The maintenance database, as the superuser (trust, loopback only)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *arguments: str) -> None:
        command = [str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-w", "-t", "60", *arguments]
        subprocess.run(_as_postgres(command), check=True, capture_output=True, timeout=90)

    def start(self) -> None:
        """Start the server and return once it accepts connections."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=300"
        self._pg_ctl("-l", str(self.directory / "server.log"), "-o", options, "start")

    def stop(self) -> None:
        """Stop the server as an administrator would (``fast``: open sessions are ended), waiting until it is down."""
        self._pg_ctl("-m", "fast", "stop")


def private_postgres_missing() -> str | None:
    """Why no private PostgreSQL server can be started here, or None."""
    if not (POSTGRES_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {POSTGRES_BIN} (apt-get install postgresql-15)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as the postgres account"
    return None


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL server on a free port, removed with its files on leaving."""
    directory = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    server = PrivatePostgres(directory, free_port())
    initdb = [str(POSTGRES_BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres", "--auth=trust"]
    subprocess.run(_as_postgres([*initdb, "--no-sync"]), check=True, capture_output=True, timeout=120)
    server.start()
    try:
        yield server
    finally:
        try:
            if (directory / "data" / "postmaster.pid").exists():  # a test may leave it stopped
                server.stop()
        finally:
            shutil.rmtree(directory, ignore_errors=True)
