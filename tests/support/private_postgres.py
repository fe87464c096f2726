"""A PostgreSQL cluster of one test's own, which it may stop and start: the machine's server is never touched.

``initdb`` refuses to run as root, so as root the cluster belongs to the ``postgres`` system user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.listening import free_port

POSTGRES_BIN = Path(os.environ.get("KEFU_TEST_POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))


@dataclass(frozen=True)
class PrivatePostgres:
    """A running cluster on a free loopback port; ``url`` is its ``postgres`` database, trusted, no password."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the cluster's ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.directory / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``fast``: open connections are cut) and wait until it is down."""
        self._pg_ctl("-m", mode, "-w", "stop")

    def _pg_ctl(self, *args: str) -> None:
        _as_postgres(str(POSTGRES_BIN / "pg_ctl"), "-D", str(self.directory / "data"), *args)


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A new cluster, started; stopped and removed on leaving. Skips where the PostgreSQL binaries are absent."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.skip(f"no PostgreSQL binaries in {POSTGRES_BIN} to start a private cluster with")
    directory = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    cluster = PrivatePostgres(directory, free_port())
    try:
        _as_postgres(str(POSTGRES_BIN / "initdb"), "-D", str(directory / "data"), "-U", "postgres", "-A", "trust")
        cluster.start()
        yield cluster
    finally:
        if (directory / "data" / "postmaster.pid").exists():
            cluster.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
