"""The one place that builds the CRM database engine and its sessions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import cast

from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.future import create_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql.expression import Insert

# Execution option that marks a connection as only reading: on SQLite it begins without the write lock.
READ_ONLY = "kefu_read_only"
# What an unreachable or failing database raises, for adapters that answer politely instead (actions/ has no SQL).
DatabaseError = SQLAlchemyError
# A peer gone without a FIN (a partition, a host that died) otherwise looks connected for hours: the console's LISTEN
# connection would wait on it forever. libpq probes a connection idle for 30 s every 10 s and drops it after 3
# unanswered probes, so a dead peer is noticed within a minute. Parameters given in the database URL take precedence.
TCP_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def build_engine(database_url: str, **engine_options: object) -> Engine:
    """A 2.0-style engine for ``database_url``, with SQLite made safe for several processes."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            # SQLAlchemy 1.4 opens a new SQLite file connection (and reruns the PRAGMAs) per checkout; the action
            # server and the event broker check out one per turn, so keep a few connections open instead.
            engine_options.setdefault("poolclass", QueuePool)
        engine_options.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **engine_options)
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_immediate)
        return engine
    engine_options.setdefault("pool_pre_ping", True)
    if url.get_backend_name() == "postgresql":
        keepalives = {name: value for name, value in TCP_KEEPALIVES.items() if name not in url.query}
        given = cast("dict[str, object]", engine_options.get("connect_args", {}))
        engine_options["connect_args"] = {**keepalives, **given}
    return create_engine(url, **engine_options)


def _configure_sqlite_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # SQLite's single-writer path: take the write lock at BEGIN so two routers never interleave a
    # read-then-write (the role SELECT ... FOR UPDATE SKIP LOCKED plays on PostgreSQL). A reader only needs
    # WAL's snapshot, so it begins deferred and never queues behind (or blocks) the writer.
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def build_session_factory(engine: Engine) -> sessionmaker:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(bind=engine, class_=Session, future=True, expire_on_commit=False)


def build_read_only_session_factory(engine: Engine) -> sessionmaker:
    """Sessions for pages and polls that only read, so they never wait for SQLite's write lock."""
    return build_session_factory(engine.execution_options(**{READ_ONLY: True}))


def insert_on_conflict(session: Session) -> Callable[..., Insert]:
    """``insert`` of the session's database, the one with ``on_conflict_do_nothing/update`` (PostgreSQL, SQLite)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
