"""Agent presence: going online pulls waiting tickets, going offline or silent hands unstarted ones back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from router.crm.models import Agent, AuditEntry, Presence, Ticket, TicketEventKind, TicketStatus, utcnow
from router.errors import InvalidInput, NotFound
from router.routing.assignment import assign_waiting
from router.routing.events import record
from router.routing.policy import RoutingPolicy


def _locked_agent(session: Session, agent_id: int) -> Agent:
    agent = session.get(Agent, agent_id, with_for_update={"key_share": True})
    if agent is None:
        raise NotFound(f"agent {agent_id} does not exist")
    return agent


def _audit_presence(session: Session, agent: Agent, before: Presence, *, reason: str, requeued: int) -> None:
    # Presence decides who gets tickets: supervisors must be able to see when and why it changed.
    session.add(
        AuditEntry(
            actor_user_id=agent.user_id if reason == "agent" else None,
            action="agent.presence",
            target=f"agent:{agent.id}",
            data={"from": before.value, "to": Presence(agent.presence).value, "reason": reason, "requeued": requeued},
        )
    )


def requeue_unstarted(session: Session, agent: Agent, *, reason: str) -> list[Ticket]:
    """Put the agent's assigned-but-unanswered tickets back in their queues (the agent row must be locked)."""
    tickets = list(
        session.execute(
            select(Ticket)
            .where(Ticket.assignee_id == agent.id, Ticket.status == TicketStatus.assigned)
            .order_by(Ticket.id)
            .with_for_update()
        ).scalars()
    )
    for ticket in tickets:
        ticket.status = TicketStatus.queued
        ticket.assignee_id = None
        record(session, ticket, TicketEventKind.requeued, agent_id=agent.id, data={"reason": reason})
    agent.open_tickets = max(0, agent.open_tickets - len(tickets))
    return tickets


def set_presence(session: Session, agent_id: int, presence: Presence | str) -> Agent:
    """Change an agent's presence; online pulls waiting tickets, offline requeues their unstarted ones."""
    try:
        presence = Presence(presence)
    except ValueError as error:
        raise InvalidInput(f"unknown presence {presence!r}; use online, away or offline") from error
    agent = _locked_agent(session, agent_id)
    before, agent.presence = Presence(agent.presence), presence
    team_ids = [team.id for team in agent.teams]
    requeued = []
    if presence is Presence.online:
        agent.last_heartbeat_at = utcnow()
    elif presence is Presence.offline:
        requeued = requeue_unstarted(session, agent, reason="offline")
    if presence is not before:
        _audit_presence(session, agent, before, reason="agent", requeued=len(requeued))
    session.flush()
    if presence is not Presence.away:
        assign_waiting(session, team_ids)
    return agent


def heartbeat(session: Session, agent_id: int) -> Agent:
    """Record that the agent's console is still open, so the worker keeps their tickets with them."""
    agent = _locked_agent(session, agent_id)
    agent.last_heartbeat_at = utcnow()
    return agent


def requeue_stale_agents(session: Session, now: datetime | None = None, *, policy: RoutingPolicy) -> list[Agent]:
    """Mark online agents without a recent heartbeat offline and requeue their unstarted tickets."""
    cutoff = (now or utcnow()) - policy.heartbeat_timeout
    stale = list(
        session.execute(
            select(Agent)
            .where(
                Agent.presence == Presence.online,
                or_(Agent.last_heartbeat_at.is_(None), Agent.last_heartbeat_at < cutoff),
            )
            .order_by(Agent.id)
            .with_for_update(skip_locked=True, key_share=True)
        ).scalars()
    )
    team_ids: set[int] = set()
    for agent in stale:
        agent.presence = Presence.offline
        requeued = requeue_unstarted(session, agent, reason="missed heartbeats")
        _audit_presence(session, agent, Presence.online, reason="missed heartbeats", requeued=len(requeued))
        team_ids.update(team.id for team in agent.teams)
    session.flush()
    if team_ids:
        assign_waiting(session, team_ids)
    return stale
