"""SLA deadlines: when a ticket's first response and resolution are due, when a breach is near, and which deadline
the console counts down to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from router.crm.models import OPEN_STATUSES, Ticket

FIRST_RESPONSE = "first_response"
RESOLUTION = "resolution"


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


def current_deadline(ticket: Ticket) -> str | None:
    """The deadline that matters now: FIRST_RESPONSE until answered, then RESOLUTION; None once resolved."""
    if ticket.status not in OPEN_STATUSES:
        return None
    return FIRST_RESPONSE if ticket.first_responded_at is None else RESOLUTION


def current_due(ticket: Ticket) -> datetime | None:
    """When ``current_deadline`` falls due (None once resolved)."""
    deadline = current_deadline(ticket)
    if deadline is None:
        return None
    return ticket.first_response_due_at if deadline == FIRST_RESPONSE else ticket.resolution_due_at


@dataclass(frozen=True)
class SlaClock:
    """What a ticket's SLA countdown shows: which deadline, when, and the signed seconds left."""

    deadline: str | None
    due_at: datetime | None
    seconds_left: float | None


def sla_clock(ticket: Ticket, now: datetime) -> SlaClock:
    """The countdown the console, the supervisor page and the API show for ``ticket`` at ``now``."""
    due = current_due(ticket)
    return SlaClock(current_deadline(ticket), due, seconds_left(due, now))
