"""Appending to a ticket's audit trail, the record every routing guarantee is checked against.

Every ticket change is recorded here, so this is also where PostgreSQL is told about it: ``NOTIFY`` on
``TICKET_CHANNEL`` inside the writing transaction, which PostgreSQL delivers to listeners at commit and drops on
rollback. The web app's listener (``router/web/wakeups.py``) wakes the console streams with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.crm.models import Ticket, TicketEvent, TicketEventKind, User, utcnow
from router.crm.redaction import redact_json

TICKET_CHANNEL = "kefu_tickets"
_ANNOUNCED_IN = "kefu_tickets_announced_in"


def announce_change(session: Session) -> None:
    """Tell PostgreSQL's listeners, once this transaction commits, that tickets changed (no-op on SQLite).

    The payload is empty on purpose: PostgreSQL folds identical notifications of one transaction into one, and the
    streams read what changed from the tables, each through its own visibility rules.
    """
    connection = session.connection()  # begins the transaction if need be; unlike session.execute, never flushes
    if connection.dialect.name != "postgresql":
        return
    # Once per transaction (or savepoint, whose rollback discards its notifications): a sweep that escalates
    # thousands of tickets pays one round trip, not one per event.
    transaction = session.get_nested_transaction() or session.get_transaction()
    if session.info.get(_ANNOUNCED_IN) is not transaction:
        connection.execute(select(func.pg_notify(TICKET_CHANNEL, "")))
        session.info[_ANNOUNCED_IN] = transaction


def record(
    session: Session,
    ticket: Ticket,
    kind: TicketEventKind,
    *,
    actor: User | None = None,
    agent_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> TicketEvent:
    """Append one event to ``ticket``'s trail; the caller's transaction makes it durable with the change.

    Notes, resolve summaries and reasons are free text agents type, often quoting the customer: every string in
    ``data`` is stored redacted.
    """
    event = TicketEvent(
        ticket_id=ticket.id,
        kind=kind,
        actor_user_id=actor.id if actor is not None else None,
        agent_id=agent_id,
        team_id=ticket.team_id,
        data=redact_json(data or {}),
        created_at=utcnow(),
    )
    session.add(event)
    announce_change(session)
    return event
