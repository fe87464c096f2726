"""The ticket use cases the bot drives — file a complaint, hand off to a human, look a ticket up — over router services.

The routing and triage packages land separately from the actions, and the action server must start (and answer FAQ,
CSAT and fallback) without them, so they are imported where they are used.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.models import Conversation, Customer, Ticket, TicketStatus, utcnow

OPEN_STATUSES = (TicketStatus.queued, TicketStatus.assigned, TicketStatus.in_progress)
MAX_DESCRIPTION_CHARS = 4000

_triage_by_directory: dict[str, Any] = {}
_triage_lock = threading.Lock()


def load_triage(kefu: Kefu) -> Any:
    """The triage models of this process, loaded once (they take seconds to load, milliseconds to use)."""
    from router.triage import Triage

    model_dir = kefu.settings.models_dir / "triage"
    with _triage_lock:
        if str(model_dir) not in _triage_by_directory:
            _triage_by_directory[str(model_dir)] = Triage.load(model_dir, kefu.settings.data_dir / "triage")
        return _triage_by_directory[str(model_dir)]


@dataclass(frozen=True)
class Handoff:
    """The ticket a customer waits on for a human, and their place in its queue."""

    ticket: Ticket
    position: int
    joined_existing: bool


def _repeat_contacts_7d(session: Session, customer_id: int) -> int:
    since = utcnow() - timedelta(days=7)
    return session.execute(
        select(func.count(Ticket.id)).where(Ticket.customer_id == customer_id, Ticket.created_at >= since)
    ).scalar_one()


def _open(session: Session, triage: Any, conversation: Conversation, text: str, order_number: str | None) -> Ticket:
    from router.routing.tickets import open_ticket

    customer = session.get(Customer, conversation.customer_id)
    description = text.strip()[:MAX_DESCRIPTION_CHARS]
    assessment = triage.assess(
        description,
        language=conversation.language or customer.language,
        customer_tier=customer.tier,
        repeat_contacts_7d=_repeat_contacts_7d(session, customer.id),
        waited_minutes=0,
    )
    return open_ticket(
        session, conversation=conversation, text=description, order_number=order_number, assessment=assessment
    )


def file_complaint(
    session: Session, triage: Any, *, sender_id: str, language: str, text: str, order_number: str | None
) -> Ticket:
    """Triage the complaint and open its ticket on the customer's current conversation."""
    conversation = current_conversation(session, sender_id, language)
    return _open(session, triage, conversation, text, order_number)


def hand_off(session: Session, triage: Any, *, sender_id: str, language: str, text: str) -> Handoff:
    """Join the conversation's open ticket or open one, and pause the bot until an agent resolves it."""
    from router.routing.tickets import queue_position

    conversation = current_conversation(session, sender_id, language)
    ticket = session.execute(
        select(Ticket)
        .where(Ticket.customer_id == conversation.customer_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    joined_existing = ticket is not None
    if ticket is None:
        ticket = _open(session, triage, conversation, text, order_number=None)
    conversation.bot_paused = True
    session.flush()
    return Handoff(ticket=ticket, position=queue_position(session, ticket), joined_existing=joined_existing)


def ticket_for_status(
    session: Session, *, sender_id: str, ticket_number: str | None, order_number: str | None
) -> Ticket | None:
    """The ticket a status question is about: by ticket number, by order number, else the customer's latest."""
    from router.routing.tickets import find_ticket, latest_ticket_for_customer

    if ticket_number:
        return find_ticket(session, ticket_number)
    conversation = current_conversation(session, sender_id)
    if order_number:
        return session.execute(
            select(Ticket)
            .where(Ticket.customer_id == conversation.customer_id, Ticket.order_number == order_number)
            .order_by(Ticket.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    return latest_ticket_for_customer(session, conversation.customer_id)
