"""The SLA countdown a ticket shows: first response until answered, then resolution, nothing once resolved."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from router.crm.models import Ticket, TicketStatus
from router.routing.sla import FIRST_RESPONSE, RESOLUTION, SlaClock, sla_clock

OPENED = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


def _ticket(status: TicketStatus, answered: bool) -> Ticket:
    return Ticket(
        status=status,
        created_at=OPENED,
        first_response_due_at=OPENED + timedelta(minutes=30),
        resolution_due_at=OPENED + timedelta(hours=8),
        first_responded_at=OPENED + timedelta(minutes=10) if answered else None,
    )


def test_an_unanswered_ticket_counts_down_to_its_first_response() -> None:
    clock = sla_clock(_ticket(TicketStatus.queued, answered=False), OPENED + timedelta(minutes=40))
    assert clock == SlaClock(FIRST_RESPONSE, OPENED + timedelta(minutes=30), -600.0)


def test_an_answered_ticket_counts_down_to_its_resolution() -> None:
    clock = sla_clock(_ticket(TicketStatus.in_progress, answered=True), OPENED + timedelta(hours=1))
    assert clock == SlaClock(RESOLUTION, OPENED + timedelta(hours=8), 7 * 3600.0)


def test_a_resolved_or_merged_ticket_has_no_countdown() -> None:
    for status in (TicketStatus.resolved, TicketStatus.closed, TicketStatus.merged):
        assert sla_clock(_ticket(status, answered=False), OPENED) == SlaClock(None, None, None)
