"""Fair assignment: each waiting ticket goes to the least-loaded fitting agent online, ties to the longest idle.

Concurrency is the database's. A routing transaction first locks the team's available agents
(``FOR NO KEY UPDATE SKIP LOCKED``: another router holding them moves on to another team instead of waiting), then
claims waiting tickets in queue order (``FOR UPDATE SKIP LOCKED``), and writes assignments, loads and ``assigned``
events before committing. Loads are only changed under those row locks, so capacity cannot be exceeded and no ticket
is taken twice. Agent rows are locked ``FOR NO KEY UPDATE`` here and wherever presence or load changes: as strong as
an update that keeps the key needs, and no stronger, so writing an event or ticket that refers to the agent (its
foreign-key check takes ``KEY SHARE``) never waits for a router or a presence change holding that agent. On SQLite
the same code runs under the single write lock ``BEGIN IMMEDIATE`` takes (router/db.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import case, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from router.crm.models import Agent, Presence, Ticket, TicketEvent, TicketEventKind, TicketStatus, agent_teams, utcnow
from router.routing.events import announce_change
from router.routing.policy import ASSIGN_BATCH, ASSIGN_SCAN_LIMIT
from router.routing.queue import QueuedTicket, claim_queued, teams_with_waiting_tickets

_NEVER = datetime.min.replace(tzinfo=timezone.utc)
_tickets = Ticket.__table__
_agents = Agent.__table__


@dataclass
class Candidate:
    """An online agent with room, as the router sees them during one transaction."""

    id: int
    capacity: int
    load: int
    languages: list[str]
    skills: list[str]
    last_assigned_at: datetime | None

    def fits(self, ticket: QueuedTicket) -> bool:
        """Has room, speaks the ticket's language and handles its category (no skills listed = every category)."""
        speaks = not self.languages or ticket.language in self.languages
        handles = not self.skills or ticket.category in self.skills
        return self.load < self.capacity and speaks and handles

    @property
    def rank(self) -> tuple[int, datetime, int]:
        """Least loaded first; among equals whoever was last given a ticket longest ago."""
        return self.load, self.last_assigned_at or _NEVER, self.id


def lock_candidates(session: Session, team_id: int, *, exclude_agent_id: int | None = None) -> list[Candidate]:
    """Lock the team's online agents below capacity; rows another router holds are skipped, not waited for."""
    statement = (
        select(Agent.id, Agent.capacity, Agent.open_tickets, Agent.languages, Agent.skills, Agent.last_assigned_at)
        .join(agent_teams, agent_teams.c.agent_id == Agent.id)
        .where(agent_teams.c.team_id == team_id, Agent.presence == Presence.online, Agent.open_tickets < Agent.capacity)
        .order_by(Agent.id)
        .with_for_update(of=Agent, skip_locked=True, key_share=True)
    )
    if exclude_agent_id is not None:
        statement = statement.where(Agent.id != exclude_agent_id)
    return [Candidate(*row) for row in session.execute(statement)]


def servable(candidates: list[Candidate]) -> dict[str, set[str] | None]:
    """Languages and categories at least one candidate handles (None: someone handles all)."""
    languages = None if any(not c.languages for c in candidates) else {lang for c in candidates for lang in c.languages}
    categories = None if any(not c.skills for c in candidates) else {skill for c in candidates for skill in c.skills}
    return {"languages": languages, "categories": categories}


def choose(tickets: Iterable[QueuedTicket], candidates: list[Candidate], now: datetime) -> list[tuple[int, int]]:
    """Pair tickets (in queue order) with agents; a ticket nobody fits is left waiting. Updates the candidates."""
    pairs = []
    for ticket in tickets:
        fitting = [candidate for candidate in candidates if candidate.fits(ticket)]
        if not fitting:
            continue
        best = min(fitting, key=lambda candidate: candidate.rank)
        best.load += 1
        best.last_assigned_at = now
        pairs.append((ticket.id, best.id))
    return pairs


def _write(
    session: Session, team_id: int, pairs: list[tuple[int, int]], candidates: list[Candidate], now: datetime
) -> None:
    # One statement per table however big the batch (CASE maps each row to its value): round trips dominate here.
    agent_of_ticket = dict(pairs)
    session.execute(
        update(_tickets)
        .where(_tickets.c.id.in_(list(agent_of_ticket)))
        .values(
            status=TicketStatus.assigned,
            assignee_id=case(agent_of_ticket, value=_tickets.c.id),
            version=_tickets.c.version + 1,
            updated_at=now,
        )
    )
    chosen = set(agent_of_ticket.values())
    load_of_agent = {candidate.id: candidate.load for candidate in candidates if candidate.id in chosen}
    session.execute(
        update(_agents)
        .where(_agents.c.id.in_(list(load_of_agent)))
        .values(open_tickets=case(load_of_agent, value=_agents.c.id), last_assigned_at=now)
    )
    session.execute(
        insert(TicketEvent.__table__),
        [
            {"ticket_id": t, "kind": TicketEventKind.assigned, "agent_id": a, "team_id": team_id, "created_at": now}
            for t, a in pairs
        ],
    )
    announce_change(session)
    # The rows changed behind the ORM's back: make loaded copies reload instead of writing stale versions.
    for model, ids in ((Ticket, [t for t, _ in pairs]), (Agent, chosen)):
        for row_id in ids:
            loaded = session.identity_map.get(identity_key(model, row_id))
            if loaded is not None:
                session.expire(loaded)


def assign_in_team(
    session: Session,
    team_id: int,
    *,
    max_tickets: int | None = None,
    batch_size: int = ASSIGN_BATCH,
    exclude_agent_id: int | None = None,
) -> list[tuple[int, int]]:
    """Assign as many of the team's waiting tickets as agents can take; returns (ticket id, agent id) pairs."""
    session.flush()
    candidates = lock_candidates(session, team_id, exclude_agent_id=exclude_agent_id)
    now = utcnow()
    assigned: list[tuple[int, int]] = []
    cursor, scanned = None, 0
    while candidates and scanned < ASSIGN_SCAN_LIMIT and (max_tickets is None or len(assigned) < max_tickets):
        limit = batch_size if max_tickets is None else min(batch_size, max_tickets - len(assigned))
        claimed = claim_queued(session, team_id, limit=limit, after=cursor, **servable(candidates))
        if not claimed:
            break
        scanned += len(claimed)
        pairs = choose(claimed, candidates, now)
        if pairs:
            _write(session, team_id, pairs, candidates, now)
            assigned.extend(pairs)
        candidates = [candidate for candidate in candidates if candidate.load < candidate.capacity]
        if len(claimed) < limit:
            break
        cursor = claimed[-1].queue_key
    return assigned


def assign_next(session: Session, team_id: int) -> Ticket | None:
    """Assign the first waiting ticket of the team that some available agent fits, if any."""
    pairs = assign_in_team(session, team_id, max_tickets=1)
    return session.get(Ticket, pairs[0][0]) if pairs else None


def assign_waiting(session: Session, team_ids: Iterable[int] | None = None, *, batch_size: int = ASSIGN_BATCH) -> int:
    """The sweep: assign every waiting ticket an agent can take, in the given teams or all; returns how many."""
    teams = teams_with_waiting_tickets(session) if team_ids is None else sorted(set(team_ids))
    return sum(len(assign_in_team(session, team_id, batch_size=batch_size)) for team_id in teams)
