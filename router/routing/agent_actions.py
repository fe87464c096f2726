"""What agents do to a ticket: reply, transfer, resolve, note, merge; each checked, versioned and audited.

Lock order: the agents an action changes (in id order), the ticket's conversation, then the ticket. A presence
change and the worker's stale-agent sweep hold an agent while they lock its unstarted tickets, and the turn writer
holds a conversation while it reopens its ticket; an action holding the ticket while it waited for either would
close a cycle that PostgreSQL breaks by aborting one side. The assignee is read before the ticket is locked, so an
action re-checks it under the lock and refuses if the ticket changed hands meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from router.crm.models import (
    Agent,
    Conversation,
    Interaction,
    Role,
    Speaker,
    Team,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    User,
    agent_teams,
    utcnow,
)
from router.crm.redaction import redact
from router.errors import Conflict, InvalidInput, NotFound
from router.routing.assignment import assign_in_team
from router.routing.events import record
from router.routing.policy import MAX_NOTE_CHARS, MAX_REPLY_CHARS
from router.routing.visibility import ensure_can_see

_FINISHED = (TicketStatus.closed, TicketStatus.merged)
_HOLDING_CAPACITY = (TicketStatus.assigned, TicketStatus.in_progress)


def _checked_text(text: str, limit: int, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"the {what} is empty")
    if len(text) > limit:
        raise InvalidInput(f"the {what} has {len(text)} characters; the limit is {limit}")
    return text.strip()


def _ticket_for(session: Session, ticket_id: int, actor: User, expected_version: int | None = None) -> Ticket:
    ticket = session.get(Ticket, ticket_id, with_for_update=True, populate_existing=True)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    ensure_can_see(actor, ticket)
    if expected_version is not None and ticket.version != expected_version:
        raise Conflict(f"ticket {ticket.number} changed since you opened it (version {ticket.version}); reload it")
    return ticket


def _lock_agents(session: Session, agent_ids: Iterable[int | None]) -> dict[int, Agent]:
    """Lock agent rows ``FOR NO KEY UPDATE`` in id order (two actions locking the same two agents never cross)."""
    ids = sorted({agent_id for agent_id in agent_ids if agent_id is not None})
    if not ids:
        return {}
    agents = session.execute(
        select(Agent)
        .where(Agent.id.in_(ids))
        .order_by(Agent.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).scalars()
    return {agent.id: agent for agent in agents}


def lock_conversations(session: Session, conversation_ids: Iterable[int | None]) -> None:
    """Lock conversations ``FOR NO KEY UPDATE`` in id order, before their tickets: the turn writer updates a
    conversation and then reopens its ticket, so whoever holds a ticket must not wait for its conversation."""
    ids = sorted({conversation_id for conversation_id in conversation_ids if conversation_id is not None})
    if ids:
        session.execute(
            select(Conversation.id)
            .where(Conversation.id.in_(ids))
            .order_by(Conversation.id)
            .with_for_update(key_share=True)
        ).all()


def _lock_in_order(
    session: Session,
    ticket_ids: Sequence[int],
    actor: User,
    expected_version: int | None = None,
    *,
    agents: Iterable[int | None] = (),
    assignees: bool = True,
) -> tuple[list[Ticket], dict[int, Agent]]:
    """Lock ``agents`` (and the tickets' assignees), then the tickets' conversations, then the tickets in id order.

    An assignee locked this way was read before its ticket was locked: the ticket is refused if it changed hands.
    """
    rows = session.execute(select(Ticket.assignee_id, Ticket.conversation_id).where(Ticket.id.in_(ticket_ids))).all()
    held = _lock_agents(session, [*agents, *(row.assignee_id for row in rows if assignees)])
    lock_conversations(session, [row.conversation_id for row in rows])
    tickets = {ticket_id: _ticket_for(session, ticket_id, actor, expected_version) for ticket_id in sorted(ticket_ids)}
    for ticket in tickets.values():
        if assignees and ticket.assignee_id not in (None, *held) and ticket.status in _HOLDING_CAPACITY:
            raise Conflict(f"ticket {ticket.number} changed hands while you acted on it; reload it")
    return [tickets[ticket_id] for ticket_id in ticket_ids], held


def _save(session: Session, ticket: Ticket) -> None:
    # version_id_col: a concurrent writer bumped the version between our read and write.
    try:
        session.flush()
    except StaleDataError as error:
        raise Conflict(f"ticket {ticket.number} was changed by someone else; reload it") from error


def _release(ticket: Ticket, agents: dict[int, Agent]) -> int | None:
    """Free the assignee's slot (their row among the locked ``agents``) if the ticket held one; the agent freed."""
    if ticket.assignee_id is None or ticket.status not in _HOLDING_CAPACITY:
        return None
    agent = agents[ticket.assignee_id]
    agent.open_tickets = max(0, agent.open_tickets - 1)
    return agent.id


def _refill(session: Session, agent_id: int | None) -> None:
    # A freed slot is filled from the agent's teams' queues at once, not at the next worker sweep.
    if agent_id is None:
        return
    team_ids = session.execute(select(agent_teams.c.team_id).where(agent_teams.c.agent_id == agent_id)).scalars()
    for team_id in sorted(team_ids):
        assign_in_team(session, team_id)


def reply(
    session: Session, *, ticket_id: int, actor: User, text: str, expected_version: int | None = None
) -> Interaction:
    """Record an agent's answer to the customer (the web layer delivers it); starts the ticket if unanswered."""
    body = _checked_text(text, MAX_REPLY_CHARS, "reply")
    # Of the agents, only the replier's row changes (when the reply takes a waiting ticket).
    replier = actor.agent.id if actor.agent is not None else None
    [ticket], held = _lock_in_order(session, [ticket_id], actor, expected_version, agents=[replier], assignees=False)
    agent = held[replier] if replier is not None else None
    if ticket.status in _FINISHED:
        raise Conflict(f"ticket {ticket.number} is {ticket.status.value}; it takes no replies")
    if ticket.conversation_id is None:
        raise Conflict(f"ticket {ticket.number} has no conversation to reply in")
    now = utcnow()
    if ticket.status is TicketStatus.queued and agent is not None:
        # Answering a waiting ticket takes it: the customer now has a person.
        ticket.assignee_id = agent.id
        agent.open_tickets += 1
        agent.last_assigned_at = now
        record(session, ticket, TicketEventKind.assigned, actor=actor, agent_id=agent.id, data={"by": "reply"})
    if ticket.assignee_id is not None and ticket.status in (TicketStatus.queued, TicketStatus.assigned):
        ticket.status = TicketStatus.in_progress
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
    interaction = Interaction(
        conversation_id=ticket.conversation_id,
        customer_id=ticket.customer_id,
        ticket_id=ticket.id,
        agent_id=agent.id if agent is not None else None,
        speaker=Speaker.agent,
        channel=ticket.channel,
        text=redact(body),
        language=ticket.language,
        delivery="pending",
        created_at=now,
    )
    session.add(interaction)
    session.get(Conversation, ticket.conversation_id).last_activity_at = now
    _save(session, ticket)
    first_response_s = (ticket.first_responded_at - ticket.created_at).total_seconds()
    record(
        session,
        ticket,
        TicketEventKind.replied,
        actor=actor,
        agent_id=interaction.agent_id,
        data={"interaction_id": interaction.id, "first_response_s": first_response_s},
    )
    return interaction


def resolve(
    session: Session, *, ticket_id: int, actor: User, expected_version: int | None = None, summary: str = ""
) -> Ticket:
    """Close the case for now: frees the agent's slot and lets the bot talk to the customer again (CSAT next)."""
    [ticket], agents = _lock_in_order(session, [ticket_id], actor, expected_version)
    if ticket.status not in (TicketStatus.queued, *_HOLDING_CAPACITY):
        raise Conflict(f"ticket {ticket.number} is already {ticket.status.value}")
    freed = _release(ticket, agents)
    ticket.status = TicketStatus.resolved
    ticket.resolved_at = utcnow()
    if ticket.conversation_id is not None:
        session.get(Conversation, ticket.conversation_id).bot_paused = False
    _save(session, ticket)
    record(
        session, ticket, TicketEventKind.resolved, actor=actor, agent_id=ticket.assignee_id, data={"summary": summary}
    )
    _refill(session, freed)
    return ticket


def _target_agent(agents: dict[int, Agent], agent_id: int, team_id: int, actor: User) -> Agent:
    agent = agents.get(agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} does not exist")
    if team_id not in {team.id for team in agent.teams}:
        raise InvalidInput(f"agent {agent_id} is not in the ticket's team")
    if agent.open_tickets >= agent.capacity and actor.role is Role.agent:
        raise Conflict(f"agent {agent_id} is at capacity ({agent.capacity}); ask a supervisor")
    return agent


def transfer(
    session: Session,
    *,
    ticket_id: int,
    actor: User,
    to_team: int | None = None,
    to_agent: int | None = None,
    expected_version: int | None = None,
) -> Ticket:
    """Move a ticket to another team's queue and/or straight to an agent (who must be in that team)."""
    if to_team is None and to_agent is None:
        raise InvalidInput("transfer to a team, an agent, or both")
    [ticket], agents = _lock_in_order(session, [ticket_id], actor, expected_version, agents=[to_agent])
    if ticket.status not in (TicketStatus.queued, *_HOLDING_CAPACITY):
        raise Conflict(f"ticket {ticket.number} is {ticket.status.value}; only open tickets transfer")
    team_id = ticket.team_id if to_team is None else to_team
    if session.get(Team, team_id) is None:
        raise NotFound(f"team {team_id} does not exist")
    agent = _target_agent(agents, to_agent, team_id, actor) if to_agent is not None else None
    data = {"from_team": ticket.team_id, "to_team": team_id, "from_agent": ticket.assignee_id, "to_agent": to_agent}
    freed = _release(ticket, agents)
    ticket.team_id = team_id
    ticket.transfer_count += 1
    if agent is None:
        ticket.status, ticket.assignee_id = TicketStatus.queued, None
    else:
        started = ticket.first_responded_at is not None
        ticket.status = TicketStatus.in_progress if started else TicketStatus.assigned
        ticket.assignee_id = agent.id
        agent.open_tickets += 1
        agent.last_assigned_at = utcnow()
    _save(session, ticket)
    record(session, ticket, TicketEventKind.transferred, actor=actor, agent_id=to_agent, data=data)
    if agent is not None:
        record(session, ticket, TicketEventKind.assigned, actor=actor, agent_id=agent.id, data={"by": "transfer"})
    else:
        assign_in_team(session, team_id)
    _refill(session, freed)
    session.refresh(ticket)
    return ticket


def add_note(session: Session, *, ticket_id: int, actor: User, text: str) -> TicketEvent:
    """An internal note for colleagues; never shown to the customer."""
    body = _checked_text(text, MAX_NOTE_CHARS, "note")
    ticket = _ticket_for(session, ticket_id, actor)
    event = record(session, ticket, TicketEventKind.note, actor=actor, data={"text": body})
    session.flush()
    return event


def merge(session: Session, *, source_ticket_id: int, target_ticket_id: int, actor: User) -> Ticket:
    """Fold a duplicate ticket of the same customer into another; its transcript moves, its slot is freed."""
    if source_ticket_id == target_ticket_id:
        raise InvalidInput("a ticket cannot be merged into itself")
    (source, target), agents = _lock_in_order(session, [source_ticket_id, target_ticket_id], actor)
    if source.customer_id != target.customer_id:
        raise InvalidInput("only tickets of the same customer can be merged")
    for ticket in (source, target):
        if ticket.status in _FINISHED:
            raise Conflict(f"ticket {ticket.number} is {ticket.status.value}")
    freed = _release(source, agents)
    source.status = TicketStatus.merged
    source.merged_into_id = target.id
    if source.priority < target.priority:
        # The duplicate was more urgent: the case keeps its urgency, and the trail says why the priority moved.
        change = {"from": target.priority, "to": source.priority, "reason": "merge"}
        record(session, target, TicketEventKind.priority_changed, actor=actor, data=change)
        target.priority = source.priority
    session.execute(
        update(Interaction).where(Interaction.ticket_id == source.id).values(ticket_id=target.id),
        execution_options={"synchronize_session": False},
    )
    _save(session, source)
    record(session, source, TicketEventKind.merged, actor=actor, data={"into": target.id})
    record(session, target, TicketEventKind.merged, actor=actor, data={"from": source.id})
    _refill(session, freed)
    return target
