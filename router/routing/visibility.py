"""Who may see which tickets: agents their own teams' tickets, supervisors and admins every ticket."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import Role, Ticket, TicketStatus, User
from router.errors import Forbidden
from router.routing.queue import QUEUE_ORDER


def team_scope(user: User) -> set[int] | None:
    """Team ids the user may see, or None for every team (supervisors and admins)."""
    if user.role in (Role.supervisor, Role.admin):
        return None
    return {team.id for team in user.agent.teams} if user.agent is not None else set()


def ensure_can_see(user: User, ticket: Ticket) -> None:
    """Refuse (Forbidden) a user reaching a ticket outside their teams, e.g. by editing a URL."""
    if not user.active:
        raise Forbidden(f"user {user.username} is deactivated")
    scope = team_scope(user)
    if scope is not None and ticket.team_id not in scope:
        raise Forbidden(f"ticket {ticket.number} belongs to another team")


def visible_tickets(
    session: Session,
    user: User,
    *,
    statuses: Iterable[TicketStatus] | None = None,
    team_id: int | None = None,
    assignee_id: int | None = None,
    limit: int = 200,
) -> list[Ticket]:
    """The tickets a console list shows this user, in queue order, filtered as asked."""
    statement = select(Ticket).order_by(*QUEUE_ORDER).limit(limit)
    scope = team_scope(user)
    if scope is not None:
        statement = statement.where(Ticket.team_id.in_(scope))
    if statuses is not None:
        statement = statement.where(Ticket.status.in_(list(statuses)))
    if team_id is not None:
        statement = statement.where(Ticket.team_id == team_id)
    if assignee_id is not None:
        statement = statement.where(Ticket.assignee_id == assignee_id)
    return list(session.execute(statement).scalars())
