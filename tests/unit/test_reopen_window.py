"""The reopen window at its edges: the event log's quick check and the reopen itself agree on every side of it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.models import Agent, Ticket
from router.routing.policy import RoutingPolicy
from router.routing.tickets import recently_resolved_customers, reopen_if_recent, resolve
from tests.support.routing import make_agent, make_team, new_ticket

WINDOW = timedelta(days=2)
POLICY = RoutingPolicy(heartbeat_timeout=timedelta(seconds=90), reopen_within=WINDOW, escalate_when_left=0.2)
RESOLVED_AT = datetime(2026, 11, 20, 9, 30, 15, 250_000, tzinfo=timezone.utc)
TICK = timedelta(microseconds=1)
SENDER = "telegram:window"


@pytest.fixture
def resolved_ticket(kefu: Kefu) -> int:
    """A customer's ticket resolved at RESOLVED_AT."""
    with kefu.uow() as uow:
        agent = uow.session.get(Agent, make_agent(uow.session, make_team(uow.session, "logistics")))
        ticket = new_ticket(uow.session, sender=SENDER)
        resolve(uow.session, ticket_id=ticket.id, actor=agent.user)
        uow.session.get(Ticket, ticket.id).resolved_at = RESOLVED_AT
        uow.commit()
        return ticket.id


@pytest.mark.parametrize(
    ("written_at", "reopens"),
    [
        (RESOLVED_AT - TICK, False),  # said before the resolution, logged after it
        (RESOLVED_AT, False),  # at the very instant of the resolution: not after it
        (RESOLVED_AT + TICK, True),
        (RESOLVED_AT + WINDOW, True),  # the window's last instant still counts
        (RESOLVED_AT + WINDOW + TICK, False),
    ],
)
def test_both_checks_agree_at_the_edges_of_the_window(
    kefu: Kefu, resolved_ticket: int, written_at: datetime, reopens: bool
) -> None:
    with kefu.uow() as uow:
        conversation = current_conversation(uow.session, SENDER)
        customer = conversation.customer_id
        returning = recently_resolved_customers(uow.session, {customer}, written_at=written_at, policy=POLICY)
        reopened = reopen_if_recent(uow.session, conversation, written_at=written_at, policy=POLICY)
        assert (returning == {customer}, reopened is not None) == (reopens, reopens)
        assert reopened is None or reopened.id == resolved_ticket


def test_without_a_time_both_count_the_window_back_from_now(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        agent = uow.session.get(Agent, make_agent(uow.session, make_team(uow.session, "logistics")))
        recent, stale = new_ticket(uow.session, sender="web:recent"), new_ticket(uow.session, sender="web:stale")
        for ticket in (recent, stale):
            resolve(uow.session, ticket_id=ticket.id, actor=agent.user)
        uow.session.get(Ticket, stale.id).resolved_at -= WINDOW + timedelta(minutes=1)
        uow.commit()
    with kefu.uow() as uow:
        customers = {recent.customer_id, stale.customer_id}
        assert recently_resolved_customers(uow.session, customers, policy=POLICY) == {recent.customer_id}
        stale_conversation = current_conversation(uow.session, "web:stale")
        assert reopen_if_recent(uow.session, stale_conversation, policy=POLICY) is None
        reopened = reopen_if_recent(uow.session, current_conversation(uow.session, "web:recent"), policy=POLICY)
        assert reopened is not None and reopened.id == recent.id
