"""The ticket lifecycle and its races on both databases (SQLite's single writer, PostgreSQL's row locks)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.models import Agent, Role, Ticket, TicketEventKind, TicketStatus, User
from router.errors import Conflict
from router.routing.presence import set_presence
from router.routing.queue import queue_position
from router.routing.tickets import find_ticket, reopen_if_recent, reply, resolve
from tests.support.routing import events_of, make_agent, make_team, make_user, new_ticket, shipped_policy


def test_lifecycle_queue_assign_reply_resolve_reopen(kefu_any_db: Kefu) -> None:
    kefu = kefu_any_db
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        agent_id = make_agent(uow.session, team, capacity=1, presence="offline")
        first = new_ticket(uow.session, priority=3, sender="web:a").id
        urgent = new_ticket(uow.session, priority=1, sender="web:b").id
        uow.commit()
    with kefu.uow() as uow:
        assert [queue_position(uow.session, uow.session.get(Ticket, t)) for t in (urgent, first)] == [1, 2]
        set_presence(uow.session, agent_id, "online")
        uow.commit()
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, urgent).assignee_id == agent_id
        actor = uow.session.get(Agent, agent_id).user
        reply(uow.session, ticket_id=urgent, actor=actor, text="We are on it / 马上处理")
        resolve(uow.session, ticket_id=urgent, actor=actor)
        uow.commit()
    with kefu.uow() as uow:
        # The freed slot went to the next ticket in the queue at once.
        assert uow.session.get(Ticket, first).assignee_id == agent_id
        reopened = reopen_if_recent(uow.session, current_conversation(uow.session, "web:b"), policy=shipped_policy())
        uow.commit()
    with kefu.uow() as uow:
        ticket = find_ticket(uow.session, f"T{reopened.id:06d}")
        assert (ticket.id, ticket.status, ticket.reopen_count) == (urgent, TicketStatus.queued, 1)
        kinds = [event.kind for event in events_of(uow.session, ticket)]
        assert kinds == [
            TicketEventKind.created,
            TicketEventKind.assigned,
            TicketEventKind.replied,
            TicketEventKind.resolved,
            TicketEventKind.reopened,
        ]


def test_two_people_resolving_at_once_one_wins_the_other_gets_a_conflict(kefu_any_db: Kefu) -> None:
    kefu = kefu_any_db
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        agent_id = make_agent(uow.session, team)
        supervisor_id = make_user(uow.session, Role.supervisor).id
        ticket = new_ticket(uow.session)
        ticket_id, version = ticket.id, ticket.version
        uow.commit()
    start = threading.Barrier(2)

    def resolve_as(user_id: int) -> str:
        # Meet before the first query: on SQLite that query takes the write lock, the other waits behind it.
        start.wait(timeout=30)
        with kefu.uow() as uow:
            actor = uow.session.get(User, user_id)
            try:
                resolve(uow.session, ticket_id=ticket_id, actor=actor, expected_version=version)
                uow.commit()
                return "resolved"
            except Conflict:
                return "conflict"

    agent_user_id = _user_of_agent(kefu, agent_id)
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(resolve_as, (agent_user_id, supervisor_id)))
    assert outcomes == ["conflict", "resolved"]
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, ticket_id)
        assert ticket.status is TicketStatus.resolved
        assert len(events_of(uow.session, ticket, TicketEventKind.resolved)) == 1
        assert uow.session.get(Agent, agent_id).open_tickets == 0


def _user_of_agent(kefu: Kefu, agent_id: int) -> int:
    with kefu.uow() as uow:
        return uow.session.execute(select(Agent.user_id).where(Agent.id == agent_id)).scalar_one()


@pytest.mark.parametrize("presence", ["offline", "away"])
def test_absent_agents_get_no_new_tickets(kefu_any_db: Kefu, presence: str) -> None:
    with kefu_any_db.uow() as uow:
        team = make_team(uow.session, "logistics")
        make_agent(uow.session, team, presence=presence)
        ticket = new_ticket(uow.session)
        uow.commit()
        assert (ticket.status, ticket.assignee_id) == (TicketStatus.queued, None)
