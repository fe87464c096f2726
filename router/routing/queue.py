"""A team's queue: waiting tickets ordered by priority, then first-response deadline, then age (id)."""

from __future__ import annotations

import operator
from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from router.crm.models import Ticket, TicketStatus

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


def _beyond(key: tuple[int, datetime, int], *, earlier: bool) -> ColumnElement:
    # Keyset comparison spelled out, since row-value comparison is not portable across our databases.
    priority, due, ticket_id = key
    compare = operator.lt if earlier else operator.gt
    return or_(
        compare(Ticket.priority, priority),
        and_(Ticket.priority == priority, compare(Ticket.first_response_due_at, due)),
        and_(Ticket.priority == priority, Ticket.first_response_due_at == due, compare(Ticket.id, ticket_id)),
    )


def claim_queued(
    session: Session,
    team_id: int,
    *,
    limit: int,
    after: tuple[int, datetime, int] | None = None,
    languages: Collection[str] | None = None,
    categories: Collection[str] | None = None,
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
        statement = statement.where(_beyond(after, earlier=False))
    # Only tickets someone available could take (None = no restriction), so misfits cannot fill every batch.
    if languages is not None:
        statement = statement.where(Ticket.language.in_(sorted(languages)))
    if categories is not None:
        statement = statement.where(Ticket.category.in_(sorted(categories)))
    return [QueuedTicket(*row) for row in session.execute(statement)]


def teams_with_waiting_tickets(session: Session) -> list[int]:
    """Ids of teams whose queue is not empty, for the worker's sweep."""
    statement = select(Ticket.team_id).where(Ticket.status == TicketStatus.queued, Ticket.team_id.is_not(None))
    return list(session.execute(statement.distinct()).scalars())


def queue_position(session: Session, ticket: Ticket) -> int:
    """Place of a waiting ticket in its team's queue (1 = next); 0 once it is no longer waiting."""
    if ticket.status is not TicketStatus.queued:
        return 0
    key = (ticket.priority, ticket.first_response_due_at, ticket.id)
    ahead = session.execute(
        select(func.count(Ticket.id)).where(
            Ticket.team_id == ticket.team_id, Ticket.status == TicketStatus.queued, _beyond(key, earlier=True)
        )
    ).scalar_one()
    return ahead + 1
