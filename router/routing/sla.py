"""SLA deadlines: when a ticket's first response and resolution are due, and when a breach is near."""

from __future__ import annotations

from datetime import datetime, timedelta

from router.crm.models import Ticket


def due_times(start: datetime, first_response_minutes: int, resolution_minutes: int) -> tuple[datetime, datetime]:
    """First-response and resolution deadlines of a ticket opened at ``start`` (minutes from its priority band)."""
    return start + timedelta(minutes=first_response_minutes), start + timedelta(minutes=resolution_minutes)


def near_breach(start: datetime, due: datetime | None, now: datetime, share_left: float) -> bool:
    """Whether at most ``share_left`` of the window from ``start`` to ``due`` is left (or it passed)."""
    if due is None:
        return False
    return due - now <= (due - start) * share_left


def first_response_at_risk(ticket: Ticket, now: datetime, share_left: float) -> bool:
    """An unanswered ticket whose first-response deadline is near or past."""
    due = ticket.first_response_due_at
    return ticket.first_responded_at is None and near_breach(ticket.created_at, due, now, share_left)


def resolution_at_risk(ticket: Ticket, now: datetime, share_left: float) -> bool:
    """An unresolved ticket whose resolution deadline is near or past."""
    return ticket.resolved_at is None and near_breach(ticket.created_at, ticket.resolution_due_at, now, share_left)


def seconds_left(due: datetime | None, now: datetime) -> float | None:
    """Signed seconds to ``due`` (negative once breached), for the console's countdown."""
    return None if due is None else (due - now).total_seconds()
