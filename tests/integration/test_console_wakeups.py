"""Live console updates across web app replicas on PostgreSQL: LISTEN/NOTIFY wakes every replica's streams.

Two real uvicorn processes share one CRM. The streams' safety poll is set far longer than any deadline here, so an
update can only arrive in time if a notification delivered it: these tests fail if the wake-ups break.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from select import select as wait_readable

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from router.bootstrap import Kefu
from router.crm.models import Agent, Presence, Ticket, TicketEventKind, User, utcnow
from router.db import build_engine
from router.routing.events import TICKET_CHANNEL, record
from tests.support.cli import run_kefu
from tests.support.crm import DEMO_PASSWORD, open_demo_ticket, seeded_kefu
from tests.support.databases import fresh_postgres_database
from tests.support.web import form_login, running_web_app

pytestmark = [pytest.mark.postgres, pytest.mark.cluster]

SAFETY_POLL_S = 300
# "Well before the safety poll": a notification (or the catch-up poll after a reconnect) delivers within seconds.
ARRIVAL_S = 5.0


@dataclass
class Replicas:
    kefu: Kefu
    web_a: str
    web_b: str
    database: str


def _as_application(url: str, name: str) -> str:
    """``url`` for a process that shows as ``name`` in pg_stat_activity, so a test can find its connections."""
    return make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def replicas(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    work_dir = tmp_path_factory.mktemp("replicas")
    with fresh_postgres_database(postgres_server) as url, seeded_kefu(url, work_dir) as kefu:
        env = {"KEFU_CONSOLE_SAFETY_POLL_S": str(SAFETY_POLL_S)}
        with (
            running_web_app(
                kefu.settings,
                work_dir / "web-a.log",
                extra_env={**env, "KEFU_DATABASE_URL": _as_application(url, "web-a")},
            ) as web_a,
            running_web_app(
                kefu.settings,
                work_dir / "web-b.log",
                extra_env={**env, "KEFU_DATABASE_URL": _as_application(url, "web-b")},
            ) as web_b,
        ):
            yield Replicas(kefu, web_a, web_b, make_url(url).database)


@dataclass
class Stream:
    """An agent's ``/console/stream`` read in a thread: the ticket events in the order they arrived."""

    base_url: str
    username: str
    events: list[dict] = field(default_factory=list)
    first_poll_done: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            assert form_login(client, self.username, DEMO_PASSWORD).status_code in (200, 303)
            with (
                suppress(httpx.RemoteProtocolError),  # the web app stopped at the end of the module
                client.stream("GET", "/console/stream", timeout=httpx.Timeout(30, read=60)) as response,
            ):
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        self.events.append(json.loads(line[6:]))
                    elif line.startswith("id: "):  # the cursor every poll ends with
                        self.first_poll_done.set()

    def arrival(self, matches: Callable[[dict], bool], within_s: float) -> None:
        """Wait for a ticket event that ``matches``; fail if none arrives within ``within_s`` from now."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if any(matches(ticket) for ticket in self.events):
                return
            time.sleep(0.05)
        pytest.fail(f"no matching ticket event within {within_s} s; got {self.events}")


def _open_stream(base_url: str, username: str) -> Stream:
    stream = Stream(base_url, username)
    threading.Thread(target=stream.read, daemon=True).start()
    assert stream.first_poll_done.wait(30), "the stream never polled"
    return stream


@pytest.fixture
def lina_on_b(replicas: Replicas) -> Stream:
    return _open_stream(replicas.web_b, "lina")  # logistics + after_sales


def _set_presence_without_routing(kefu: Kefu, username: str, presence: Presence) -> None:
    with kefu.uow() as uow:
        agent_id = uow.session.scalar(select(Agent.id).join(User).where(User.username == username))
        uow.session.execute(
            update(Agent).where(Agent.id == agent_id).values(presence=presence, last_heartbeat_at=utcnow())
        )
        uow.commit()


def _ticket(ticket_id: int, status: str) -> Callable[[dict], bool]:
    return lambda ticket: ticket["id"] == ticket_id and ticket["status"] == status


def test_changes_by_another_process_and_by_the_worker_reach_a_stream_on_the_other_replica(
    replicas: Replicas, lina_on_b: Stream
) -> None:
    ticket_id = open_demo_ticket(replicas.kefu, "web:wake-worker", "快递三天没动了")  # this test process is a writer
    lina_on_b.arrival(_ticket(ticket_id, "queued"), ARRIVAL_S)

    _set_presence_without_routing(replicas.kefu, "lina", Presence.online)
    try:
        worker = run_kefu("worker", "--once", env={"KEFU_DATABASE_URL": replicas.kefu.settings.database_url})
        assert worker.returncode == 0, worker.stderr
        lina_on_b.arrival(_ticket(ticket_id, "assigned"), ARRIVAL_S)
    finally:
        _set_presence_without_routing(replicas.kefu, "lina", Presence.offline)


def test_a_change_made_through_one_replica_reaches_the_streams_on_every_replica(
    replicas: Replicas, lina_on_b: Stream
) -> None:
    alice_on_a = _open_stream(replicas.web_a, "alice")  # logistics + service
    ticket_id = open_demo_ticket(replicas.kefu, "web:wake-web-a", "包裹破损了")
    for stream in (lina_on_b, alice_on_a):
        stream.arrival(_ticket(ticket_id, "queued"), ARRIVAL_S)
    with httpx.Client(base_url=replicas.web_a, timeout=30) as supervisor:
        token = supervisor.post("/api/tokens", json={"username": "supervisor", "password": DEMO_PASSWORD})
        supervisor.headers["Authorization"] = f"Bearer {token.json()['token']}"
        resolved = supervisor.post(f"/api/tickets/{ticket_id}/resolve", json={"summary": "refunded"})
    assert resolved.status_code == 200, resolved.text
    for stream in (lina_on_b, alice_on_a):
        stream.arrival(_ticket(ticket_id, "resolved"), ARRIVAL_S)


def _connections(admin_url: str, database: str, application: str, *, listening: bool) -> set[int]:
    """Backend pids of ``application``'s connections to ``database`` (only its listener, if ``listening``)."""
    engine = build_engine(admin_url)
    try:
        with engine.connect() as connection:
            return set(
                connection.exec_driver_sql(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %(database)s AND application_name = %(app)s"
                    " AND (NOT %(listening)s OR query = %(listen)s)",
                    {
                        "database": database,
                        "app": application,
                        "listening": listening,
                        "listen": f"LISTEN {TICKET_CHANNEL}",
                    },
                ).scalars()
            )
    finally:
        engine.dispose()


def _admin(admin_url: str, statement: str) -> None:
    engine = build_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_a_killed_listener_reconnects_and_a_change_made_meanwhile_still_arrives(
    replicas: Replicas, lina_on_b: Stream, postgres_server: str
) -> None:
    database = replicas.database
    listener_before = _connections(postgres_server, database, "web-b", listening=True)
    assert len(listener_before) == 1, "a web app holds one listening connection"
    with replicas.kefu.uow() as uow:  # this process's connection, opened while connections are allowed
        uow.session.execute(select(1))
    # Web app B loses every connection (its listener among them) and cannot reconnect while the change is made, so
    # the change's notification certainly reaches no listener of B: only B's catch-up poll can deliver it.
    _admin(postgres_server, f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        for pid in _connections(postgres_server, database, "web-b", listening=False):
            _admin(postgres_server, f"SELECT pg_terminate_backend({pid})")
        ticket_id = open_demo_ticket(replicas.kefu, "web:wake-reconnect", "订单一直显示未发货")
        time.sleep(2)  # B's reconnects fail and back off meanwhile
        assert _connections(postgres_server, database, "web-b", listening=False) == set()
        assert [ticket for ticket in lina_on_b.events if ticket["id"] == ticket_id] == []
    finally:
        _admin(postgres_server, f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    # B's backoff is at 2 s by now: its next attempt connects, LISTENs and wakes the streams to catch up.
    lina_on_b.arrival(_ticket(ticket_id, "queued"), ARRIVAL_S)
    listener_after = _connections(postgres_server, database, "web-b", listening=True)
    assert len(listener_after) == 1 and listener_after != listener_before


def test_a_notification_is_sent_at_commit_and_never_for_a_rolled_back_change(replicas: Replicas) -> None:
    listener = replicas.kefu.engine.raw_connection()
    try:
        listener.dbapi_connection.autocommit = True
        listener.cursor().execute(f"LISTEN {TICKET_CHANNEL}")
        ticket_id = open_demo_ticket(replicas.kefu, "web:wake-rollback", "发票开错了")
        _notified(listener.dbapi_connection)
        for commit in (False, True):
            with replicas.kefu.uow() as uow:
                ticket = uow.session.get(Ticket, ticket_id)
                ticket.subject = "changed"
                record(uow.session, ticket, TicketEventKind.note, data={"text": "checked"})
                uow.session.flush()
                assert _notified(listener.dbapi_connection, wait_s=0.5) == [], "delivered before commit"
                if commit:
                    uow.commit()
            assert _notified(listener.dbapi_connection) == ([TICKET_CHANNEL] if commit else [])
    finally:
        listener.dbapi_connection.autocommit = False
        listener.close()


def _notified(connection, wait_s: float = 1.0) -> list[str]:
    """The channels notified on the psycopg2 ``connection``, waiting up to ``wait_s`` for the first to arrive."""
    if wait_readable([connection], [], [], wait_s)[0]:
        connection.poll()
    channels = [notify.channel for notify in connection.notifies]
    connection.notifies.clear()
    return channels


def _keepalive_of(dbapi_connection) -> tuple[bool, int, int, int]:
    """The TCP keepalive the kernel applies to a libpq connection's socket: on, idle s, interval s, probes."""
    with socket.fromfd(dbapi_connection.fileno(), socket.AF_INET, socket.SOCK_STREAM) as sock:
        return (
            bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        )


def test_the_listeners_connection_notices_a_silently_dead_peer_within_a_minute(postgres_server: str) -> None:
    """A partition sends no FIN: only TCP keepalive probes tell the waiting LISTEN connection that its server is
    gone, and the kernel's default waits two hours before the first. The listener takes its connection from the
    engine (``TicketWakeups._connect``); read what its socket really got, and that a URL's own setting wins."""
    for url, idle in ((postgres_server, None), (f"{postgres_server}?keepalives_idle=5", 5)):
        engine = build_engine(url)
        try:
            pooled = engine.raw_connection()
            on, idle_s, interval_s, probes = _keepalive_of(pooled.dbapi_connection)
            pooled.close()
        finally:
            engine.dispose()
        assert on
        assert idle_s + interval_s * probes <= 60
        if idle is not None:
            assert idle_s == idle
