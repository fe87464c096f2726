"""SLA escalation: a ticket about to breach gets a higher priority, a supervisor alert and another agent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from router.crm.models import OPEN_STATUSES, Agent, Ticket, TicketEventKind, TicketStatus, utcnow
from router.routing.assignment import assign_in_team, lock_candidates
from router.routing.events import record
from router.routing.policy import RoutingPolicy
from router.routing.queue import QueuedTicket
from router.routing.sla import first_response_at_risk, resolution_at_risk

# Level 1: first response about to be late. Level 2: resolution about to be late. Each fires once per ticket.
FIRST_RESPONSE_LEVEL = 1
RESOLUTION_LEVEL = 2


def _stage(ticket: Ticket | Row, now: datetime, share_left: float) -> tuple[int, str] | None:
    if ticket.escalation_level < FIRST_RESPONSE_LEVEL and first_response_at_risk(ticket, now, share_left):
        return FIRST_RESPONSE_LEVEL, "first_response"
    if ticket.escalation_level < RESOLUTION_LEVEL and resolution_at_risk(ticket, now, share_left):
        return RESOLUTION_LEVEL, "resolution"
    return None


def _lock_assignee_if_free(session: Session, ticket: Ticket) -> Agent | None:
    # The sweep already holds the ticket; waiting for its agent while a presence change holds the agent and waits
    # for the agent's tickets would deadlock. So the agent is taken only if free, or the ticket waits a sweep.
    return session.execute(
        select(Agent)
        .where(Agent.id == ticket.assignee_id)
        .with_for_update(skip_locked=True, key_share=True)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _hand_to_someone_else(session: Session, ticket: Ticket, previous: Agent) -> None:
    # An agent who has not answered in time gives the ticket back for someone else to take. If no one else could,
    # it stays put: bouncing it through the queue back to the same agent would only add noise to the trail.
    others = lock_candidates(session, ticket.team_id, exclude_agent_id=previous.id)
    wanted = QueuedTicket(ticket.id, ticket.language, ticket.category, ticket.priority, ticket.first_response_due_at)
    if not any(candidate.fits(wanted) for candidate in others):
        return
    ticket.status = TicketStatus.queued
    ticket.assignee_id = None
    previous.open_tickets = max(0, previous.open_tickets - 1)
    record(session, ticket, TicketEventKind.requeued, agent_id=previous.id, data={"reason": "escalation"})
    session.flush()
    assign_in_team(session, ticket.team_id, exclude_agent_id=previous.id)
    session.refresh(ticket)


def escalate(session: Session, ticket: Ticket, level: int, deadline: str) -> bool:
    """Raise the priority, alert the supervisors (an ``escalated`` event the console shows) and reassign.

    Returns False, changing nothing, when another transaction holds the assigned agent: the next sweep retries.
    """
    previous = None
    if ticket.status is TicketStatus.assigned and ticket.assignee_id is not None:
        previous = _lock_assignee_if_free(session, ticket)
        if previous is None:
            return False
    ticket.escalation_level = level
    due = ticket.first_response_due_at if deadline == "first_response" else ticket.resolution_due_at
    record(
        session,
        ticket,
        TicketEventKind.escalated,
        agent_id=ticket.assignee_id,
        data={"level": level, "deadline": deadline, "due_at": due.isoformat(), "notify": "supervisor"},
    )
    if ticket.priority > 1:
        record(
            session,
            ticket,
            TicketEventKind.priority_changed,
            data={"from": ticket.priority, "to": ticket.priority - 1, "reason": "escalation"},
        )
        ticket.priority -= 1
    if previous is not None:
        _hand_to_someone_else(session, ticket, previous)
    return True


def escalate_due(session: Session, now: datetime | None = None, *, policy: RoutingPolicy) -> list[Ticket]:
    """Escalate every open ticket whose SLA is about to be breached; returns the tickets escalated."""
    now = now or utcnow()
    share_left = policy.escalate_when_left
    # The "near" test depends on each ticket's own window, which SQL cannot compare portably: screen the few
    # columns in Python, then lock only the tickets at risk (skipping any another worker is escalating).
    screened = session.execute(
        select(
            Ticket.id,
            Ticket.created_at,
            Ticket.first_response_due_at,
            Ticket.resolution_due_at,
            Ticket.first_responded_at,
            Ticket.resolved_at,
            Ticket.escalation_level,
        ).where(Ticket.status.in_(OPEN_STATUSES), Ticket.escalation_level < RESOLUTION_LEVEL)
    )
    at_risk = [row.id for row in screened if _stage(row, now, share_left) is not None]
    if not at_risk:
        return []
    tickets = session.execute(
        select(Ticket).where(Ticket.id.in_(at_risk)).order_by(Ticket.id).with_for_update(skip_locked=True)
    ).scalars()
    escalated = []
    for ticket in tickets:
        stage = _stage(ticket, now, share_left)
        if stage is not None and ticket.status in OPEN_STATUSES and escalate(session, ticket, *stage):
            escalated.append(ticket)
    return escalated
