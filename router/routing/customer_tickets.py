"""The ticket use cases a customer drives through the bot: file a complaint, hand off to a human, ask a status, rate
the help they got.

Each takes a unit of work (``kefu.uow()``, or ``kefu.reader()`` for the status question), runs in it, and returns
plain answers the bot's actions put into words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation, customer_id_of
from router.crm.csat import MAX_COMMENT_CHARS, record_csat
from router.crm.models import OPEN_STATUSES, Conversation, CsatRating, Customer, Ticket, TicketStatus, utcnow
from router.crm.redaction import redact
from router.crm.unit_of_work import UnitOfWork
from router.errors import KefuError
from router.routing.tickets import find_ticket, latest_ticket_for_customer, open_ticket, queue_position
from router.triage import Triage

MAX_DESCRIPTION_CHARS = 4000


def load_triage(kefu: Kefu) -> Triage:
    """The registry's active triage model, reloaded when an admin promotes another; KefuError before any exists."""
    triage = kefu.triage_model.get()
    if triage is None:
        raise KefuError("no triage model is trained yet: run `kefu train`")
    return triage


@dataclass(frozen=True)
class FiledComplaint:
    """The ticket a complaint became, with the response time its priority promises."""

    number: str
    priority: int
    first_response_minutes: float


@dataclass(frozen=True)
class Handoff:
    """The ticket a customer waits on for a human, and their place in its queue (0: an agent already has it)."""

    number: str
    position: int
    joined_existing: bool

    @property
    def with_agent(self) -> bool:
        """Whether an agent already holds the ticket, so the customer is not waiting in a queue at all."""
        return self.position == 0


@dataclass(frozen=True)
class TicketState:
    """What a status question is answered with."""

    number: str
    status: TicketStatus


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
    uow: UnitOfWork, triage: Triage, *, sender_id: str, language: str, text: str, order_number: str | None
) -> FiledComplaint:
    """Triage the complaint and open its ticket on the customer's current conversation."""
    with uow:
        ticket = _open(uow.session, triage, current_conversation(uow.session, sender_id, language), text, order_number)
        uow.commit()
        due_in = (ticket.first_response_due_at or utcnow()) - ticket.created_at
        return FiledComplaint(ticket.number, ticket.priority, due_in.total_seconds() / 60)


def hand_off(
    uow: UnitOfWork,
    triage: Triage,
    *,
    sender_id: str,
    language: str,
    text: str,
    order_number: str | None = None,
    note: str = "",
) -> Handoff:
    """Join the conversation's open ticket or open one, and pause the bot until an agent resolves it.

    ``note`` is added to a new ticket's description after triage, so its words never sway the ticket's category.
    """
    with uow:
        session = uow.session
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
            if note:
                ticket.description += "\n" + note
        conversation.bot_paused = True
        session.flush()
        handoff = Handoff(ticket.number, queue_position(session, ticket), joined_existing)
        uow.commit()
        return handoff


def own_ticket(session: Session, customer_id: int, ticket_number: str | None) -> Ticket | None:
    """The ticket the customer quotes, only if it is theirs: another customer's ticket is as unknown as a typo."""
    ticket = find_ticket(session, ticket_number) if ticket_number else None
    return ticket if ticket is not None and ticket.customer_id == customer_id else None


def ticket_status(
    reader: UnitOfWork, *, sender_id: str, ticket_number: str | None, order_number: str | None
) -> TicketState | None:
    """The customer's own ticket a status question is about: by ticket number, by order number, else their latest."""
    with reader:
        session = reader.session
        customer_id = customer_id_of(session, sender_id)
        if customer_id is None:
            return None  # a sender the CRM has never seen has no tickets
        if ticket_number:
            ticket = own_ticket(session, customer_id, ticket_number)
        elif order_number:
            ticket = session.execute(
                select(Ticket)
                .where(Ticket.customer_id == customer_id, Ticket.order_number == order_number)
                .order_by(Ticket.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        else:
            ticket = latest_ticket_for_customer(session, customer_id)
        return TicketState(ticket.number, ticket.status) if ticket is not None else None


def rate(uow: UnitOfWork, *, sender_id: str, score: object, comment: str, ticket_number: str | None) -> int:
    """Store the customer's 1–5 rating (InvalidInput if there is none in ``score``) and return the score.

    It rates the resolved ticket the bot asked about if that is the customer's own, else their latest.
    """
    with uow:
        session = uow.session
        ticket = own_ticket(session, current_conversation(session, sender_id).customer_id, ticket_number)
        rating = record_csat(
            session, sender_id=sender_id, score=score, comment=comment, ticket_id=ticket.id if ticket else None
        )
        uow.commit()
        return rating.score


def comment_on_latest_rating(uow: UnitOfWork, *, sender_id: str, comment: str) -> None:
    """Add what the customer said after a low score to the rating they just gave (redacted like every comment)."""
    with uow:
        conversation = current_conversation(uow.session, sender_id)
        rating = uow.session.execute(
            select(CsatRating)
            .where(CsatRating.customer_id == conversation.customer_id)
            .order_by(CsatRating.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if rating is not None:
            rating.comment = redact(comment.strip())[:MAX_COMMENT_CHARS]
            uow.commit()
