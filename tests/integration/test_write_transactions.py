"""Transaction discipline over real HTTP on a real SQLite CRM: pages that only read never take the write lock, and
no write transaction waits on the network (a model promotion commits, then asks Rasa to reload)."""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from router.analytics.demo_data import generate_history
from router.bootstrap import Kefu
from router.crm.models import AuditEntry, ModelStatus, Ticket
from router.db import READ_ONLY
from router.errors import Conflict
from router.training import registry
from router.web.app import create_app
from tests.support.crm import DEMO_PASSWORD, seeded_sqlite_kefu
from tests.support.listening import free_port
from tests.support.models import register_version, stand_in_text

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# Far above a write's own work on this CRM, far below the stand-in Rasa's reload time.
WRITE_TRANSACTION_BOUND_S = 0.5
SLOW_RELOAD_S = 1.5


@dataclass
class WriteTransactions:
    """How long each transaction that could write (not begun read-only) stayed open, begin to commit/rollback."""

    durations_s: list[float] = field(default_factory=list)
    open_now: int = 0


@contextmanager
def recording_write_transactions(kefu: Kefu) -> Iterator[WriteTransactions]:
    """Measure every writing transaction on ``kefu``'s engine while the block runs (on SQLite: the write lock)."""
    seen = WriteTransactions()

    def began(connection) -> None:
        if not connection.get_execution_options().get(READ_ONLY, False):
            connection.info["kefu_write_began"] = time.monotonic()
            seen.open_now += 1

    def ended(connection) -> None:
        started = connection.info.pop("kefu_write_began", None)
        if started is not None:
            seen.durations_s.append(time.monotonic() - started)
            seen.open_now -= 1

    listeners = (("begin", began), ("commit", ended), ("rollback", ended))
    for name, listener in listeners:
        event.listen(kefu.engine, name, listener)
    try:
        yield seen
    finally:
        for name, listener in listeners:
            event.remove(kefu.engine, name, listener)


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[Kefu]:
    kefu = seeded_sqlite_kefu(tmp_path)
    kefu.settings.models_dir = tmp_path / "models"
    with kefu.uow() as uow:
        generate_history(uow.session, kefu.passwords, kefu.settings.data_dir, customers=20, days=30, seed=3)
        uow.commit()
    yield kefu
    kefu.dispose()


def _login(kefu: Kefu, username: str) -> tuple[TestClient, str]:
    client = TestClient(create_app(kefu))
    login_token = CSRF_FIELD.search(client.get("/login").text).group(1)
    response = client.post(
        "/login",
        data={"username": username, "password": DEMO_PASSWORD, "csrf_token": login_token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client, CSRF_FIELD.search(client.get("/console").text).group(1)


def _read_only_pages(kefu: Kefu) -> list[str]:
    with kefu.reader() as reader:
        ticket_id = reader.session.scalars(select(Ticket.id).order_by(Ticket.id)).first()
    return [
        "/console",
        "/console?tab=team",
        f"/console/tickets/{ticket_id}",
        "/api/tickets",
        f"/api/tickets/{ticket_id}",
        f"/api/tickets/{ticket_id}/similar",
        "/api/agents",
        "/supervisor",
        "/analytics/kpis?days=30",
        "/analytics/kpis.csv?days=30",
        "/analytics/topics.png?days=30",
        "/admin/inbox",
        "/admin/models",
        "/admin/users",
    ]


def test_pages_that_only_read_open_no_write_transaction(crm: Kefu) -> None:
    admin, _ = _login(crm, "admin")
    pages = _read_only_pages(crm)
    with recording_write_transactions(crm) as writes:
        for page in pages:
            response = admin.get(page)
            assert response.status_code == 200, (page, response.text[:300])
    assert writes.durations_s == [], "a page that only reads took the write lock"


def test_a_held_write_lock_does_not_hold_up_the_analytics_page(crm: Kefu) -> None:
    supervisor, _ = _login(crm, "supervisor")
    with crm.engine.connect() as writer:
        writer.exec_driver_sql("UPDATE agents SET capacity = capacity")  # BEGIN IMMEDIATE: the write lock is ours
        started = time.monotonic()
        response = supervisor.get("/analytics/kpis?days=30")
        waited = time.monotonic() - started
        writer.rollback()
    assert response.status_code == 200
    # Behind the lock a writer would wait out SQLite's 30 s busy timeout.
    assert waited < 10, f"the page waited {waited:.1f} s for the write lock"


class _Rasa:
    """Rasa's ``PUT /model`` as seen by a promotion: a slow reload that succeeds, or a refusal."""

    def __init__(self, status: int, delay_s: float) -> None:
        answer = status

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(delay_s)
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_rasa() -> Iterator[_Rasa]:
    rasa = _Rasa(204, SLOW_RELOAD_S)
    yield rasa
    rasa.close()


@pytest.fixture
def refusing_rasa() -> Iterator[_Rasa]:
    rasa = _Rasa(400, 0)
    yield rasa
    rasa.close()


def test_promotion_commits_before_the_slow_rasa_reload(crm: Kefu, slow_rasa: _Rasa) -> None:
    crm.settings.rasa_url = slow_rasa.url
    register_version(crm, "v1")
    admin, token = _login(crm, "admin")
    with recording_write_transactions(crm) as writes:
        started = time.monotonic()
        response = admin.post("/admin/models/v1/promote", data={"csrf_token": token}, follow_redirects=False)
        took = time.monotonic() - started
    assert response.status_code == 303 and "reloaded" in response.headers["location"]
    assert took >= SLOW_RELOAD_S, "the stand-in Rasa was not asked to reload"
    assert writes.durations_s and max(writes.durations_s) < WRITE_TRANSACTION_BOUND_S, writes.durations_s
    with crm.reader() as reader:
        assert registry.active_model(reader.session, registry.NLU).version == "v1"
        audit = reader.session.scalars(select(AuditEntry).where(AuditEntry.action == "model.promote")).one()
        assert audit.data == {"version": "v1", "rasa_reloaded": True}


def test_a_model_rasa_refuses_leaves_the_previous_one_active(crm: Kefu, refusing_rasa: _Rasa) -> None:
    models_dir = crm.settings.models_dir
    register_version(crm, "v1")
    register_version(crm, "v2")
    registry.promote(crm.uow, "v1", models_dir, f"http://127.0.0.1:{free_port()}", None)
    with pytest.raises(Conflict, match="Rasa refused the model"):
        registry.promote(crm.uow, "v2", models_dir, refusing_rasa.url, None)
    with crm.reader() as reader:
        statuses = {(row.version, row.kind): row.status for row in registry.list_versions(reader.session)}
        audited = reader.session.scalars(select(AuditEntry.target).where(AuditEntry.action == "model.promote")).all()
    assert statuses == {
        ("v1", registry.NLU): ModelStatus.active,
        ("v1", registry.TRIAGE): ModelStatus.active,
        ("v2", registry.NLU): ModelStatus.candidate,
        ("v2", registry.TRIAGE): ModelStatus.candidate,
    }
    assert audited == ["v1"], "a refused promotion is not recorded as done"
    assert stand_in_text(registry.active_link(models_dir, registry.NLU)) == "rasa model v1"
