"""The ticket use cases the bot drives (file a complaint, hand off, look a ticket up) over router services."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation, customer_id_of
from router.crm.models import Conversation, CsatRating, Customer, Ticket, TicketStatus, utcnow
from router.crm.redaction import redact
from router.errors import KefuError
from router.routing.tickets import find_ticket, latest_ticket_for_customer, open_ticket, queue_position
from router.training.hot_model import HotModel
from router.triage import Triage

OPEN_STATUSES = (TicketStatus.queued, TicketStatus.assigned, TicketStatus.in_progress)
MAX_DESCRIPTION_CHARS = 4000
MAX_COMMENT_CHARS = 2000

# One hot-reloading triage model per kefu (the action server has one; tests make several).
_triage_models: dict[int, HotModel[Triage]] = {}
_triage_lock = threading.Lock()


def load_triage(kefu: Kefu) -> Triage:
    """The registry's active triage model, reloaded when an admin promotes another; KefuError before any exists."""
    with _triage_lock:
        if id(kefu) not in _triage_models:
            config_dir = kefu.settings.data_dir / "triage"
            _triage_models[id(kefu)] = HotModel(kefu, "triage", lambda path: Triage.load(path, config_dir))
        hot_model = _triage_models[id(kefu)]
    triage = hot_model.get()
    if triage is None:
        raise KefuError("no triage model is trained yet: run `kefu train`")
    return triage


@dataclass(frozen=True)
class Handoff:
    """The ticket a customer waits on for a human, and their place in its queue (0: an agent already has it)."""

    ticket: Ticket
    position: int
    joined_existing: bool

    @property
    def with_agent(self) -> bool:
        """Whether an agent already holds the ticket, so the customer is not waiting in a queue at all."""
        return self.position == 0


def _repeat_contacts_7d(session: Session, customer_id: int) -> int:
    since = utcnow() - timedelta(days=7)
    return session.execute(
        select(func.count(Ticket.id)).where(Ticket.customer_id == customer_id, Ticket.created_at >= since)
    ).scalar_one()


def _open(session: Session, triage: Triage, conversation: Conversation, text: str, order_number: str | None) -> Ticket:
    customer = session.get(Customer, conversation.customer_id)
    # Cut after redacting: a phone number cut in half would no longer be recognised as one.
    description = redact(text.strip())[:MAX_DESCRIPTION_CHARS]
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
    session: Session, triage: Triage, *, sender_id: str, language: str, text: str, order_number: str | None
) -> Ticket:
    """Triage the complaint and open its ticket on the customer's current conversation."""
    conversation = current_conversation(session, sender_id, language)
    return _open(session, triage, conversation, text, order_number)


def hand_off(
    session: Session, triage: Triage, *, sender_id: str, language: str, text: str, order_number: str | None = None
) -> Handoff:
    """Join the conversation's open ticket or open one, and pause the bot until an agent resolves it."""
    conversation = current_conversation(session, sender_id, language)
    ticket = session.execute(
        select(Ticket)
        .where(Ticket.customer_id == conversation.customer_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    joined_existing = ticket is not None
    if ticket is None:
        ticket = _open(session, triage, conversation, text, order_number=order_number)
    conversation.bot_paused = True
    session.flush()
    return Handoff(ticket=ticket, position=queue_position(session, ticket), joined_existing=joined_existing)


def own_ticket(session: Session, customer_id: int, ticket_number: str | None) -> Ticket | None:
    """The ticket the customer quotes, only if it is theirs: another customer's ticket is as unknown as a typo."""
    ticket = find_ticket(session, ticket_number) if ticket_number else None
    return ticket if ticket is not None and ticket.customer_id == customer_id else None


def ticket_for_status(
    session: Session, *, sender_id: str, ticket_number: str | None, order_number: str | None
) -> Ticket | None:
    """The customer's own ticket a status question is about: by ticket number, by order number, else their latest."""
    customer_id = customer_id_of(session, sender_id)
    if customer_id is None:
        return None  # a sender the CRM has never seen has no tickets
    if ticket_number:
        return own_ticket(session, customer_id, ticket_number)
    if order_number:
        return session.execute(
            select(Ticket)
            .where(Ticket.customer_id == customer_id, Ticket.order_number == order_number)
            .order_by(Ticket.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    return latest_ticket_for_customer(session, customer_id)


def rated_ticket_id(session: Session, *, sender_id: str, ticket_number: str | None) -> int | None:
    """The ticket a rating is for: the resolved one the bot asked about, if it is the customer's; else None (latest)."""
    ticket = own_ticket(session, current_conversation(session, sender_id).customer_id, ticket_number)
    return ticket.id if ticket is not None else None


def comment_on_latest_rating(session: Session, *, sender_id: str, comment: str) -> CsatRating | None:
    """Add what the customer said after a low score to the rating they just gave (redacted like every comment)."""
    conversation = current_conversation(session, sender_id)
    rating = session.execute(
        select(CsatRating)
        .where(CsatRating.customer_id == conversation.customer_id)
        .order_by(CsatRating.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if rating is not None:
        rating.comment = redact(comment.strip())[:MAX_COMMENT_CHARS]
        session.flush()
    return rating
