"""One PostgreSQL ``LISTEN`` per web app process that wakes its open console streams when a ticket change commits.

Writers ``NOTIFY`` inside the writing transaction (``router/routing/events.py``), so a wake-up means "committed", and
a rolled-back change never sends one. The streams still poll now and then (``console_safety_poll_s``): a notification
sent while this connection was down, or a listener that cannot reconnect, costs latency, never an update. A server
that vanished without closing the connection (a partition) is found by the engine's TCP keepalives (``router/db.py``)
within a minute: the socket then turns readable with an error and the listener reconnects. On SQLite there is nothing
to listen to and the streams simply poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

import psycopg2
from psycopg2.extensions import connection as PgConnection
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from router.db import DatabaseError
from router.routing.events import TICKET_CHANNEL

log = logging.getLogger(__name__)

RECONNECT_FIRST_S = 0.5
RECONNECT_MAX_S = 30.0


class TicketWakeups:
    """The process's open streams, each an :class:`asyncio.Event` that a committed ticket change sets."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._streams: set[asyncio.Event] = set()

    @property
    def listens(self) -> bool:
        """Whether the database wakes the streams (PostgreSQL) or they only have their polls (SQLite)."""
        return self._engine.dialect.name == "postgresql"

    @contextmanager
    def subscription(self) -> Iterator[asyncio.Event]:
        """An event set whenever tickets may have changed, for as long as the block lasts."""
        woken = asyncio.Event()
        self._streams.add(woken)
        try:
            yield woken
        finally:
            self._streams.discard(woken)

    def wake_all(self) -> None:
        """Wake every open stream of this process to read what changed."""
        for woken in self._streams:
            woken.set()

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Listen in the background while the block lasts (the web app's lifespan); on SQLite, do nothing."""
        if not self.listens:
            yield
            return
        task = asyncio.create_task(self._listen_forever(), name="ticket-wakeups")
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _listen_forever(self) -> None:
        failures = 0
        while True:
            try:
                connection = await run_in_threadpool(self._connect)
                failures = 0
                # A change committed while nobody listened sent its notification to no one: one poll finds it.
                self.wake_all()
                await self._relay(connection)
            except (DatabaseError, psycopg2.Error) as error:
                delay = min(RECONNECT_FIRST_S * 2**failures, RECONNECT_MAX_S)
                failures += 1
                log.warning("ticket change listener disconnected, reconnecting in %.1f s: %s", delay, error)
                await asyncio.sleep(delay)

    def _connect(self) -> PgConnection:
        pooled = self._engine.raw_connection()
        # Held for the process's lifetime, so taken out of the pool; autocommit, since LISTEN takes effect at commit.
        pooled.detach()
        connection: PgConnection = pooled.dbapi_connection
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {TICKET_CHANNEL}")
        except psycopg2.Error:
            connection.close()
            raise
        return connection

    async def _relay(self, connection: PgConnection) -> None:
        """Wake the streams at each notification until the connection fails (then raise)."""
        loop, readable, socket = asyncio.get_running_loop(), asyncio.Event(), connection.fileno()
        loop.add_reader(socket, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                connection.poll()  # raises once the server has closed the connection
                if connection.notifies:
                    connection.notifies.clear()
                    self.wake_all()
        finally:
            loop.remove_reader(socket)
            connection.close()
