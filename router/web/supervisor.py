"""The supervisor view: each team's queue, every agent's load and presence, SLA breaches and escalations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from starlette.responses import Response

from router.crm.models import (
    OPEN_STATUSES,
    Agent,
    Team,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    User,
    utcnow,
)
from router.crm.unit_of_work import ReadOnlyUnitOfWork
from router.routing.sla import current_due
from router.web.security import CurrentUser, get_reader, require_role
from router.web.templating import render
from router.web.views import ticket_summary, with_display_relations

router = APIRouter(include_in_schema=False)

RECENT_ESCALATIONS = 30
BREACH_LIST_LIMIT = 100


def team_queues(session: Session) -> list[dict[str, Any]]:
    """Per team: tickets waiting, assigned, in progress, and the oldest waiting ticket's age."""
    counts = session.execute(
        select(Ticket.team_id, Ticket.status, func.count(Ticket.id), func.min(Ticket.created_at))
        .where(Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.team_id, Ticket.status)
    ).all()
    now = utcnow()
    by_team: dict[int | None, dict[str, Any]] = {}
    for team_id, status, count, oldest in counts:
        row = by_team.setdefault(team_id, {"queued": 0, "assigned": 0, "in_progress": 0, "oldest_wait_min": None})
        row[TicketStatus(status).value] = count
        if TicketStatus(status) is TicketStatus.queued and oldest is not None:
            row["oldest_wait_min"] = round((now - oldest).total_seconds() / 60)
    return [
        {"team": team, **by_team.get(team.id, {"queued": 0, "assigned": 0, "in_progress": 0, "oldest_wait_min": None})}
        for team in session.scalars(select(Team).order_by(Team.name))
    ]


def agent_loads(session: Session) -> list[Agent]:
    """Every active agent with presence, open tickets and capacity."""
    return list(
        session.scalars(
            select(Agent)
            .join(User)
            .where(User.active.is_(True))
            .options(selectinload(Agent.user), selectinload(Agent.teams))
            .order_by(User.username)
        )
    )


def sla_breaches(session: Session) -> list[dict[str, Any]]:
    """Open tickets whose current SLA deadline has passed, most overdue first."""
    now = utcnow()
    candidates = session.scalars(
        with_display_relations(
            select(Ticket)
            .where(
                Ticket.status.in_(OPEN_STATUSES),
                ((Ticket.first_responded_at.is_(None)) & (Ticket.first_response_due_at < now))
                | (Ticket.resolution_due_at < now),
            )
            .order_by(Ticket.first_response_due_at)
            .limit(BREACH_LIST_LIMIT)
        )
    ).all()
    breached = [ticket for ticket in candidates if (due := current_due(ticket)) is not None and due < now]
    return [ticket_summary(ticket, now) for ticket in breached]


def recent_escalations(session: Session) -> list[tuple[TicketEvent, Ticket]]:
    """The latest escalation events, newest first."""
    return list(
        session.execute(
            select(TicketEvent, Ticket)
            .join(Ticket, Ticket.id == TicketEvent.ticket_id)
            .where(TicketEvent.kind == TicketEventKind.escalated)
            .order_by(TicketEvent.id.desc())
            .limit(RECENT_ESCALATIONS)
        ).all()
    )


@router.get("/supervisor")
def supervisor_view(
    request: Request,
    _user: CurrentUser = Depends(require_role("supervisor", "admin")),
    reader: ReadOnlyUnitOfWork = Depends(get_reader),
) -> Response:
    """The supervisor's overview page."""
    return render(
        request,
        "supervisor.html",
        {
            "teams": team_queues(reader.session),
            "agents": agent_loads(reader.session),
            "breaches": sla_breaches(reader.session),
            "escalations": recent_escalations(reader.session),
        },
    )
