"""Read-side view models: what the console, supervisor page and API show, built from CRM rows (no decisions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql import Select

from router.crm.models import (
    OPEN_STATUSES,
    Agent,
    CannedResponse,
    Customer,
    Interaction,
    Team,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    User,
    utcnow,
)
from router.crm.seed import load_categories
from router.errors import NotFound
from router.routing.sla import sla_clock
from router.routing.visibility import ensure_can_see
from router.web.security import CurrentUser

TRANSCRIPT_LIMIT = 500
HISTORY_LIMIT = 20


def ticket_summary(ticket: Ticket, now: datetime | None = None) -> dict[str, Any]:
    """One queue row as plain JSON-ready data (the SSE stream, the API list and the console table share it)."""
    sla = sla_clock(ticket, now or utcnow())
    return {
        "id": ticket.id,
        "number": ticket.number,
        "subject": ticket.subject,
        "status": TicketStatus(ticket.status).value,
        "priority": ticket.priority,
        "category": ticket.category,
        "language": ticket.language,
        "channel": ticket.channel.value if hasattr(ticket.channel, "value") else str(ticket.channel),
        "team_id": ticket.team_id,
        "team": ticket.team.display_name if ticket.team else None,
        "assignee_id": ticket.assignee_id,
        "assignee": ticket.assignee.user.display_name if ticket.assignee else None,
        "customer": ticket.customer.display_name if ticket.customer else "",
        "sla_due_at": sla.due_at.isoformat() if sla.due_at else None,
        "sla_deadline": sla.deadline,
        "sla_seconds_left": sla.seconds_left,
        "urgency_score": round(ticket.urgency_score or 0.0, 3),
        "urgency_factors": ticket.urgency_factors or {},
        "urgency_floors": list(ticket.urgency_floors or []),
        "classifier_terms": list(ticket.classifier_terms or []),
        "escalation_level": ticket.escalation_level,
        "version": ticket.version,
        "updated_at": ticket.updated_at.isoformat() if ticket.updated_at else None,
        "created_at": ticket.created_at.isoformat() if ticket.created_at else None,
    }


def summaries(session: Session, tickets: list[Ticket]) -> list[dict[str, Any]]:
    """``ticket_summary`` for a list, with teams, customers and assignees loaded in one batch, not a query per row."""
    if tickets:
        session.scalars(with_display_relations(select(Ticket).where(Ticket.id.in_([t.id for t in tickets])))).all()
    now = utcnow()
    return [ticket_summary(ticket, now) for ticket in tickets]


def with_display_relations(statement: Select) -> Select:
    """Eager-load what ``ticket_summary`` reads, so a queue page is a handful of queries, not one per row."""
    return statement.options(
        selectinload(Ticket.team),
        selectinload(Ticket.customer),
        selectinload(Ticket.assignee).selectinload(Agent.user),
    )


def acting_user(session: Session, user: CurrentUser) -> User:
    """The ORM user behind the request, in this unit of work (the routing services take one)."""
    row = session.get(User, user.id)
    if row is None:
        raise NotFound("your account no longer exists")
    return row


def visible_ticket(session: Session, user: User, ticket_id: int) -> Ticket:
    """Ticket ``ticket_id`` if it exists and the user may see it: 404 or 403 otherwise."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    ensure_can_see(user, ticket)
    return ticket


@dataclass
class TicketPage:
    """Everything the ticket page shows besides the ticket itself."""

    transcript: list[Interaction]
    notes: list[TicketEvent]
    events: list[TicketEvent]
    history: list[Ticket]
    canned: list[CannedResponse]
    teams: list[Team]
    agents: list[Agent]
    actors: dict[int, str]


def transcript(session: Session, ticket: Ticket) -> list[Interaction]:
    """Every turn of the ticket's conversation (customer, bot, agent, system) plus turns tagged with the ticket."""
    condition = Interaction.ticket_id == ticket.id
    if ticket.conversation_id is not None:
        condition = or_(condition, Interaction.conversation_id == ticket.conversation_id)
    rows = session.scalars(
        select(Interaction).where(condition).order_by(Interaction.created_at.desc(), Interaction.id.desc())
    ).all()
    return list(reversed(rows[:TRANSCRIPT_LIMIT]))


def ticket_page(session: Session, ticket: Ticket) -> TicketPage:
    """Load the transcript, notes, audit trail, the customer's other tickets and the transfer/canned choices."""
    events = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    ).all()
    history = session.scalars(
        select(Ticket)
        .where(Ticket.customer_id == ticket.customer_id, Ticket.id != ticket.id)
        .order_by(Ticket.created_at.desc())
        .limit(HISTORY_LIMIT)
    ).all()
    canned = session.scalars(
        select(CannedResponse)
        .where(or_(CannedResponse.team_id.is_(None), CannedResponse.team_id == ticket.team_id))
        .order_by((CannedResponse.language != ticket.language), CannedResponse.title)
    ).all()
    actor_ids = {event.actor_user_id for event in events if event.actor_user_id}
    actors = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(actor_ids))).all())
    return TicketPage(
        transcript=transcript(session, ticket),
        notes=[event for event in events if event.kind == TicketEventKind.note],
        events=list(events),
        history=list(history),
        canned=list(canned),
        teams=list(session.scalars(select(Team).order_by(Team.name)).all()),
        agents=list(
            session.scalars(
                select(Agent)
                .join(User)
                .where(User.active.is_(True))
                .options(selectinload(Agent.user))
                .order_by(User.username)
            ).all()
        ),
        actors=actors,
    )


@dataclass(frozen=True)
class CategoryChoice:
    """One complaint category an agent may correct a ticket to: its config name and bilingual label."""

    name: str
    label: str


@lru_cache(maxsize=4)
def category_choices(data_dir: Path) -> tuple[CategoryChoice, ...]:
    """The ticket page's category options, from the config the correction is checked against (read once, like
    the rest of ``data/triage/``)."""
    categories = load_categories(data_dir)["categories"]
    return tuple(
        CategoryChoice(name, " ".join(part for part in (spec.get("zh"), spec.get("en")) if part) or name)
        for name, spec in categories.items()
    )


def customer_profile(session: Session, customer_id: int) -> dict[str, Any]:
    """The customer card: name, language, tier, channels and ticket counts."""
    customer = session.get(Customer, customer_id, options=[selectinload(Customer.identities)])
    if customer is None:
        return {}
    counts = dict(
        session.execute(
            select(Ticket.status, func.count(Ticket.id))
            .where(Ticket.customer_id == customer_id)
            .group_by(Ticket.status)
        ).all()
    )
    return {
        "id": customer.id,
        "display_name": customer.display_name,
        "language": customer.language,
        "tier": customer.tier,
        "channels": sorted({identity.channel.value for identity in customer.identities}),
        "since": customer.created_at,
        "tickets_total": sum(counts.values()),
        "tickets_open": sum(count for status, count in counts.items() if status in OPEN_STATUSES),
    }
