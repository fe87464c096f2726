"""Appending to a ticket's audit trail, the record every routing guarantee is checked against."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from router.crm.models import Ticket, TicketEvent, TicketEventKind, User, utcnow
from router.crm.redaction import redact_json


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
    return event
