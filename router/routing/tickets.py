"""Opening and finding tickets, and bringing resolved ones back when the customer writes again."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import and_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from router.crm.models import (
    Conversation,
    Customer,
    Team,
    Ticket,
    TicketEventKind,
    TicketStatus,
    User,
    utcnow,
)
from router.crm.redaction import known_pii, redact
from router.errors import Conflict, InvalidInput, NotFound
from router.routing.agent_actions import add_note, lock_conversations, merge, reply, resolve, transfer
from router.routing.assignment import assign_in_team
from router.routing.events import record
from router.routing.policy import RoutingPolicy
from router.routing.queue import queue_position
from router.routing.sla import due_times

# The workflow's whole surface in one import for the actions and the web layer.
__all__ = [
    "add_note",
    "find_ticket",
    "latest_ticket_for_customer",
    "merge",
    "open_ticket",
    "queue_position",
    "recently_resolved_customers",
    "reopen",
    "reopen_if_recent",
    "reply",
    "resolve",
    "transfer",
]

_TICKET_NUMBER = re.compile(r"^\s*[Tt]?0*(\d{1,12})\s*$")
SUBJECT_CHARS = 80


class Assessment(Protocol):
    """What triage tells the router about a complaint (``router.triage.triage.Assessment`` or any look-alike).

    Read-only properties, so a frozen dataclass satisfies it: the router never changes an assessment.
    """

    @property
    def category(self) -> str: ...
    @property
    def confidence(self) -> float: ...
    @property
    def terms(self) -> list[str]: ...
    @property
    def needs_review(self) -> bool: ...
    @property
    def team(self) -> str: ...
    @property
    def urgency_score(self) -> float: ...
    @property
    def urgency_factors(self) -> dict[str, float]: ...
    @property
    def priority(self) -> int: ...
    @property
    def first_response_minutes(self) -> int: ...
    @property
    def resolution_minutes(self) -> int: ...
    @property
    def floors(self) -> list[dict[str, Any]]: ...  # the dangers that set a floor under the priority, and why


def _team(session: Session, name: str) -> Team:
    team = session.execute(select(Team).where(Team.name == name)).scalar_one_or_none()
    if team is None:
        # A category mapped to a team nobody created yet: keep the ticket in a queue rather than lose it.
        team = Team(name=name, display_name=name)
        session.add(team)
        session.flush()
    return team


def _subject(text: str) -> str:
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return first_line if len(first_line) <= SUBJECT_CHARS else first_line[: SUBJECT_CHARS - 1] + "…"


def open_ticket(
    session: Session, *, conversation: Conversation, text: str, order_number: str | None, assessment: Assessment
) -> Ticket:
    """Create the ticket triage describes, put it in its team's queue and assign it at once if someone fits.

    The customer's text is stored redacted, and so is the order number: a real one has no shape of personal data
    and is kept as given, a phone or card number given as one, or digits the text shows to be a passport's, are not.
    """
    if not text or not text.strip():
        raise InvalidInput("a ticket needs the customer's description")
    if not 1 <= int(assessment.priority) <= 4:
        raise InvalidInput(f"priority must be 1..4, not {assessment.priority!r}")
    customer = session.get(Customer, conversation.customer_id)
    now = utcnow()
    first_response_due, resolution_due = due_times(
        now, int(assessment.first_response_minutes), int(assessment.resolution_minutes)
    )
    description = redact(text)
    ticket = Ticket(
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        channel=conversation.channel,
        language=conversation.language or customer.language,
        subject=_subject(description),
        description=description,
        order_number=redact(order_number, known_pii(text)) if order_number else order_number,
        category=assessment.category,
        category_confidence=assessment.confidence,
        classifier_terms=list(assessment.terms),
        needs_review=bool(assessment.needs_review),
        urgency_score=float(assessment.urgency_score),
        urgency_factors=dict(assessment.urgency_factors),
        urgency_floors=list(assessment.floors),
        priority=int(assessment.priority),
        status=TicketStatus.queued,
        team_id=_team(session, assessment.team).id,
        first_response_due_at=first_response_due,
        resolution_due_at=resolution_due,
        created_at=now,
    )
    session.add(ticket)
    session.flush()
    created = {"category": ticket.category, "priority": ticket.priority}
    if ticket.urgency_floors:
        created["floor"] = ticket.urgency_floors[0]["name"]
    record(session, ticket, TicketEventKind.created, data=created)
    assign_in_team(session, ticket.team_id)
    session.refresh(ticket)
    return ticket


def find_ticket(session: Session, number_or_id: str | int) -> Ticket | None:
    """The ticket a customer or agent quotes ("T000123", "t123", "123"), or None for anything else."""
    match = _TICKET_NUMBER.match(str(number_or_id))
    return session.get(Ticket, int(match.group(1))) if match else None


def latest_ticket_for_customer(session: Session, customer_id: int) -> Ticket | None:
    """The customer's most recent ticket, what "where is my complaint?" is about."""
    return session.execute(
        select(Ticket).where(Ticket.customer_id == customer_id).order_by(Ticket.id.desc()).limit(1)
    ).scalar_one_or_none()


def reopen(session: Session, *, ticket_id: int, actor: User | None = None, reason: str = "") -> Ticket:
    """Send a resolved ticket back to its team's queue (an agent's decision or the customer writing again)."""
    lock_conversations(session, [session.scalar(select(Ticket.conversation_id).where(Ticket.id == ticket_id))])
    ticket = session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    if ticket.status is not TicketStatus.resolved:
        raise Conflict(f"ticket {ticket.number} is {ticket.status.value}; only resolved tickets reopen")
    ticket.status = TicketStatus.queued
    ticket.assignee_id = None
    ticket.resolved_at = None
    ticket.reopen_count += 1
    record(session, ticket, TicketEventKind.reopened, actor=actor, data={"reason": reason or "reopened"})
    if ticket.conversation_id is not None:
        # The customer is talking to a person again: the bot stays quiet until the ticket is resolved anew.
        session.get(Conversation, ticket.conversation_id).bot_paused = True
    session.flush()
    assign_in_team(session, ticket.team_id)
    session.refresh(ticket)
    return ticket


def _resolved_within_reopen_window(written_at: datetime, policy: RoutingPolicy) -> ColumnElement:
    """The one statement of the reopen window: resolved in the ``reopen_within`` before the customer wrote."""
    since = written_at - policy.reopen_within
    return and_(
        Ticket.status == TicketStatus.resolved,
        Ticket.resolved_at >= since,
        # The log is written after the reply: a turn said before the resolution is not the customer coming back.
        Ticket.resolved_at < written_at,
    )


def recently_resolved_customers(
    session: Session, customer_ids: set[int], written_at: datetime | None = None, *, policy: RoutingPolicy
) -> set[int]:
    """Which customers had a ticket resolved within the window before ``written_at`` (now): spares the rest a check."""
    if not customer_ids:
        return set()
    in_window = _resolved_within_reopen_window(written_at or utcnow(), policy)
    return set(
        session.execute(
            select(Ticket.customer_id).where(Ticket.customer_id.in_(customer_ids), in_window).distinct()
        ).scalars()
    )


def reopen_if_recent(
    session: Session,
    conversation: Conversation,
    written_at: datetime | None = None,
    *,
    policy: RoutingPolicy,
) -> Ticket | None:
    """Reopen the customer's ticket resolved within ``reopen_within`` before they wrote (default: now) again."""
    in_window = _resolved_within_reopen_window(written_at or utcnow(), policy)
    ticket = session.execute(
        select(Ticket)
        .where(Ticket.customer_id == conversation.customer_id, in_window)
        .order_by(Ticket.resolved_at.desc(), Ticket.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if ticket is None:
        return None
    return reopen(session, ticket_id=ticket.id, reason="customer wrote again")
