"""CRMs made for tests (migrated, demo-seeded, with tickets opened the way the bot opens them) and rows read back."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.conversations import current_conversation
from router.crm.models import Conversation, Interaction, PasswordOrigin, Speaker, Ticket, User
from router.crm.passwords import Passwords
from router.crm.seed import seed_demo
from router.db import build_engine
from router.routing.tickets import open_ticket
from router.settings import Settings
from tests.support.databases import fresh_postgres_database
from tests.support.listening import free_port

# The password the tests' demo users chose themselves at "first login" (test data: the product has no such constant).
DEMO_PASSWORD = "demo-users-own-password"
# The hashing tests/conftest.py gives every kefu of the tests, for the helpers below that write hashes without one.
CHEAP_PASSWORDS = Passwords("cheapest")


def make_kefu(database_url: str, tmp_path: Path, **overrides: object) -> Kefu:
    """A bootstrapped kefu on a migrated database, with its files kept under ``tmp_path``."""
    settings = Settings(database_url=database_url, var_dir=tmp_path / "var", **overrides)
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    return kefu


def cheap_password_hash(password: str) -> str:
    """``password`` hashed with argon2's cheapest parameters, made for tests.

    kefu verifies a password by the parameters stored in its hash, so every test login still goes through the
    product's own verification, in microseconds instead of ~0.2 CPU-seconds and 64 MiB (hundreds of logins a run).
    What kefu stores in production has production strength: tests/integration/test_seed.py checks it.
    """
    return CHEAP_PASSWORDS.hash(password)


def give_chosen_password(session: Session, username: str, password: str) -> None:
    """``username`` as if they had logged in and replaced their given password with ``password`` (cheaply hashed)."""
    session.execute(
        sa.update(User)
        .where(User.username == username)
        .values(password_hash=cheap_password_hash(password), password_origin=PasswordOrigin.chosen)
    )


def seed_demo_with_chosen_passwords(session: Session, data_dir: Path) -> None:
    """The demo organisation, each user as if they had already replaced the seed's password with DEMO_PASSWORD.

    One hash per test run instead of a login and a password change per user per test.
    """
    seed_demo(session, CHEAP_PASSWORDS, data_dir)
    session.execute(
        sa.update(User).values(password_hash=cheap_password_hash(DEMO_PASSWORD), password_origin=PasswordOrigin.chosen)
    )


def seeded_sqlite_kefu(work_dir: Path) -> Kefu:
    """A kefu on a migrated, demo-seeded SQLite CRM in ``work_dir``, for tests that start servers on it."""
    kefu = bootstrap(Settings(database_url=f"sqlite:///{work_dir / 'kefu.db'}", var_dir=work_dir / "var"))
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, kefu.settings.data_dir)
        uow.commit()
    return kefu


@contextmanager
def seeded_kefu(database_url: str, tmp_path: Path, **overrides: object) -> Iterator[Kefu]:
    """A demo-seeded CRM whose Rasa URL points at a closed port: resolving never talks to anyone else's Rasa."""
    overrides.setdefault("rasa_url", f"http://127.0.0.1:{free_port()}")
    kefu = make_kefu(database_url, tmp_path, **overrides)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, kefu.settings.data_dir)
        uow.commit()
    try:
        yield kefu
    finally:
        kefu.dispose()


class CrmTemplates:
    """Migrated (and demo-seeded) CRMs made once, copied for each test that wants a fresh one.

    A copy is the very database ``make_kefu`` (and ``seed_demo_with_chosen_passwords``) would leave, made in
    milliseconds instead of a migration run and an argon2 hash per test: SQLite through its backup API, PostgreSQL
    as ``CREATE DATABASE ... TEMPLATE``. The templates live in ``work_dir`` and on ``postgres_server``; ``drop``
    removes the PostgreSQL ones.
    """

    def __init__(self, work_dir: Path, postgres_server: str | None) -> None:
        self.work_dir = work_dir
        self.postgres_server = postgres_server
        self._made: dict[tuple[str, bool], str] = {}

    def _template(self, kind: str, seeded: bool) -> str:
        """The template's SQLite path or PostgreSQL database name, made on first use."""
        if (kind, seeded) not in self._made:
            name = f"kefu_template_{'seeded' if seeded else 'migrated'}_{uuid.uuid4().hex[:8]}"
            if kind == "sqlite":
                url, made = f"sqlite:///{self.work_dir / f'{name}.db'}", str(self.work_dir / f"{name}.db")
            else:
                self._admin_sql(f'CREATE DATABASE "{name}"')
                url, made = self._postgres_url(name), name
            kefu = make_kefu(url, self.work_dir / name)
            if seeded:
                with kefu.uow() as uow:
                    seed_demo_with_chosen_passwords(uow.session, kefu.settings.data_dir)
                    uow.commit()
            kefu.dispose()
            self._made[(kind, seeded)] = made
        return self._made[(kind, seeded)]

    @contextmanager
    def copy(self, kind: str, seeded: bool, work_dir: Path) -> Iterator[str]:
        """The URL of a fresh copy of the migrated (or seeded) template of ``kind`` ("sqlite" or "postgresql"): a
        file in ``work_dir``, or a database created as the template's copy and dropped on leaving."""
        template = self._template(kind, seeded)
        if kind == "sqlite":
            copy = work_dir / "kefu.db"
            with sqlite3.connect(template) as source, sqlite3.connect(copy) as target:
                source.backup(target)
            source.close()
            target.close()
            yield f"sqlite:///{copy}"
            return
        with fresh_postgres_database(self.postgres_server, template=template) as url:
            yield url

    def drop(self) -> None:
        """Drop the PostgreSQL templates (the SQLite ones go with ``work_dir``)."""
        for (kind, _), made in self._made.items():
            if kind == "postgresql":
                self._admin_sql(f'DROP DATABASE IF EXISTS "{made}" WITH (FORCE)')

    def _postgres_url(self, name: str) -> str:
        return make_url(self.postgres_server).set(database=name).render_as_string(hide_password=False)

    def _admin_sql(self, statement: str) -> None:
        admin = build_engine(self.postgres_server, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.exec_driver_sql(statement)
        finally:
            admin.dispose()


@dataclass(frozen=True)
class DemoAssessment:
    """A triage result for tests: the routing service takes any object with these fields."""

    category: str = "delivery"
    team: str = "logistics"
    confidence: float = 0.9
    terms: tuple[str, ...] = ("快递", "delayed")
    needs_review: bool = False
    urgency_score: float = 0.7
    urgency_factors: dict = field(default_factory=lambda: {"severity": 0.45, "negativity": 0.8})
    priority: int = 2
    first_response_minutes: int = 30
    resolution_minutes: int = 480
    floors: list = field(default_factory=list)


def open_demo_ticket(kefu: Kefu, sender_id: str, text: str, **assessment: object) -> int:
    """Open a ticket the way the bot does (customer turn logged, routing service called); returns its id."""
    with kefu.uow() as uow:
        conversation = current_conversation(uow.session, sender_id, language="zh")
        uow.session.add(
            Interaction(
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
                speaker=Speaker.customer,
                channel=conversation.channel,
                text=text,
                language="zh",
            )
        )
        ticket = open_ticket(
            uow.session,
            conversation=conversation,
            text=text,
            order_number=None,
            assessment=DemoAssessment(**assessment),
        )
        uow.commit()
        return ticket.id


def one(kefu: Kefu, statement: Any) -> Any:
    """The single row ``statement`` selects, detached so its attributes stay readable."""
    with kefu.uow() as uow:
        row = uow.session.execute(statement).scalar_one()
        uow.session.expunge_all()
        return row


def customer_tickets(kefu: Kefu, sender_id: str) -> list[Ticket]:
    """The tickets of the customer chatting as ``sender_id``, oldest first, detached."""
    with kefu.uow() as uow:
        rows = list(
            uow.session.execute(
                sa.select(Ticket)
                .join(Conversation, Conversation.id == Ticket.conversation_id)
                .where(Conversation.sender_id == sender_id)
                .order_by(Ticket.id)
            ).scalars()
        )
        uow.session.expunge_all()
        return rows
