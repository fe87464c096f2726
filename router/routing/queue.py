"""A team's queue: waiting tickets ordered by priority, then first-response deadline, then age (id)."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from router.crm.models import Ticket, TicketStatus

OPEN_STATUSES = (TicketStatus.queued, TicketStatus.assigned, TicketStatus.in_progress)
QUEUE_ORDER = (Ticket.priority, Ticket.first_response_due_at, Ticket.id)


class QueuedTicket(NamedTuple):
    """What assignment needs of a waiting ticket, read without loading the whole row."""

    id: int
    language: str
    category: str
    priority: int
    first_response_due_at: datetime

    @property
    def queue_key(self) -> tuple[int, datetime, int]:
        """The ticket's place in the queue order, used as a keyset cursor."""
        return self.priority, self.first_response_due_at, self.id


def _after(key: tuple[int, datetime, int]):
    # Keyset "comes after" spelled out, since row-value comparison is not portable across our databases.
    priority, due, ticket_id = key
    return or_(
        Ticket.priority > priority,
        and_(Ticket.priority == priority, Ticket.first_response_due_at > due),
        and_(Ticket.priority == priority, Ticket.first_response_due_at == due, Ticket.id > ticket_id),
    )


def claim_queued(
    session: Session, team_id: int, *, limit: int, after: tuple[int, datetime, int] | None = None
) -> list[QueuedTicket]:
    """Lock up to ``limit`` of the team's waiting tickets in queue order, skipping rows other routers hold.

    PostgreSQL: ``FOR UPDATE SKIP LOCKED`` lets concurrent routers take disjoint tickets. SQLite ignores the clause;
    there every transaction already holds the database's single write lock from ``BEGIN IMMEDIATE`` (router/db.py).
    """
    statement = (
        select(Ticket.id, Ticket.language, Ticket.category, Ticket.priority, Ticket.first_response_due_at)
        .where(Ticket.team_id == team_id, Ticket.status == TicketStatus.queued)
        .order_by(*QUEUE_ORDER)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if after is not None:
        statement = statement.where(_after(after))
    return [QueuedTicket(*row) for row in session.execute(statement)]


def teams_with_waiting_tickets(session: Session) -> list[int]:
    """Ids of teams whose queue is not empty, for the worker's sweep."""
    statement = select(Ticket.team_id).where(Ticket.status == TicketStatus.queued, Ticket.team_id.is_not(None))
    return list(session.execute(statement.distinct()).scalars())


def queue_position(session: Session, ticket: Ticket) -> int:
    """Place of a waiting ticket in its team's queue (1 = next); 0 once it is no longer waiting."""
    if ticket.status is not TicketStatus.queued:
        return 0
    ahead = session.execute(
        select(func.count(Ticket.id)).where(
            Ticket.team_id == ticket.team_id,
            Ticket.status == TicketStatus.queued,
            or_(
                Ticket.priority < ticket.priority,
                and_(Ticket.priority == ticket.priority, Ticket.first_response_due_at < ticket.first_response_due_at),
                and_(
                    Ticket.priority == ticket.priority,
                    Ticket.first_response_due_at == ticket.first_response_due_at,
                    Ticket.id < ticket.id,
                ),
            ),
        )
    ).scalar_one()
    return ahead + 1
