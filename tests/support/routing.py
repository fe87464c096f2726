"""Teams, users, agents and tickets made through the routing service, the way the seed and the bot make them."""

from __future__ import annotations

from itertools import count
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.conversations import current_conversation
from router.crm.models import Agent, Presence, Role, Team, Ticket, TicketEvent, TicketEventKind, User, utcnow
from router.routing.policy import RoutingPolicy, routing_policy
from router.routing.tickets import open_ticket
from router.triage.triage import Assessment

# Priority bands as data/triage/urgency.yml has them: (first response, resolution) minutes.
SLA_MINUTES = {1: (15, 240), 2: (60, 480), 3: (240, 1440), 4: (480, 4320)}
TEAM_OF = {"delivery": "logistics", "refund_return": "after_sales", "payment_billing": "billing", "other": "service"}
_usernames = count(1)
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def shipped_policy() -> RoutingPolicy:
    """The routing policy data/triage/routing.yml ships: what a kefu on the project's data folder routes by."""
    return routing_policy(DATA_DIR)


def assessment(category: str = "delivery", priority: int = 3) -> Assessment:
    """What triage would say about a complaint of ``category`` at ``priority``."""
    first_response, resolution = SLA_MINUTES[priority]
    return Assessment(
        category=category,
        confidence=0.9,
        needs_review=False,
        terms=["快递", "delivery"],
        team=TEAM_OF[category],
        negativity=0.5,
        cues=[],
        urgency_score=50.0,
        urgency_factors={"severity": 20.0},
        priority=priority,
        first_response_minutes=first_response,
        resolution_minutes=resolution,
    )


def make_team(session: Session, name: str) -> Team:
    """A team as the seed data would create it."""
    team = Team(name=name, display_name=name)
    session.add(team)
    session.flush()
    return team


def make_user(session: Session, role: Role, teams: list[Team] = (), **agent_fields: object) -> User:
    """A user (with an Agent row when ``role`` is agent or ``teams`` are given)."""
    name = f"user{next(_usernames)}"
    user = User(username=name, display_name=name, password_hash="unused", role=role)
    session.add(user)
    if role is Role.agent or teams:
        agent_fields.setdefault("presence", Presence.online)
        agent_fields.setdefault("last_heartbeat_at", utcnow())
        session.add(Agent(user=user, teams=list(teams), **agent_fields))
    session.flush()
    return user


def make_agent(session: Session, *teams: Team, **fields: object) -> int:
    """Id of a new online agent of ``teams`` (an id: routing updates agent rows behind the ORM's back)."""
    return make_user(session, Role.agent, list(teams), **fields).agent.id


def new_ticket(session: Session, category: str = "delivery", priority: int = 3, *, sender: str = "", lang: str = "zh"):
    """A ticket opened through the service, as the complaint action opens it."""
    conversation = current_conversation(session, sender or f"web:{next(_usernames)}", lang)
    return open_ticket(
        session,
        conversation=conversation,
        text="快递三天没到 parcel late",
        order_number=None,
        assessment=assessment(category, priority),
    )


def events_of(session: Session, ticket: Ticket, kind: TicketEventKind | None = None) -> list[TicketEvent]:
    """The ticket's trail (optionally of one kind), oldest first."""
    statement = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    if kind is not None:
        statement = statement.where(TicketEvent.kind == kind)
    return list(session.execute(statement).scalars())
