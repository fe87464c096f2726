"""Concurrent routers on a real database: no ticket assigned twice, none lost, no agent over capacity.

Everything is checked from the ticket events (the audit trail), independently of the routers' own bookkeeping.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from benchmarks.routing import seed_backlog
from router.crm.models import Agent, Presence, Ticket, TicketEvent, TicketEventKind, TicketStatus
from router.routing.assignment import assign_waiting
from router.routing.presence import set_presence
from router.worker import run_worker
from tests.support.crm import make_kefu


def _route_until_nothing_moves(kefu, start: threading.Barrier) -> int:
    """One router thread: whole-queue sweeps, each its own transaction, until two sweeps assign nothing."""
    start.wait()
    assigned, idle_sweeps = 0, 0
    while idle_sweeps < 2:
        with kefu.uow() as uow:
            moved = assign_waiting(uow.session, batch_size=50)
            uow.commit()
        assigned += moved
        idle_sweeps = 0 if moved else idle_sweeps + 1
    return assigned


def _assert_routing_guarantees(kefu, expected_assigned: int) -> None:
    with kefu.uow() as uow:
        events = uow.session.execute(
            select(TicketEvent.ticket_id, TicketEvent.agent_id).where(TicketEvent.kind == TicketEventKind.assigned)
        ).all()
        tickets = uow.session.execute(select(Ticket.id, Ticket.status, Ticket.assignee_id)).all()
        agents = uow.session.execute(select(Agent.id, Agent.capacity, Agent.open_tickets)).all()
    assignments_per_ticket = Counter(ticket_id for ticket_id, _ in events)
    assert [t for t, n in assignments_per_ticket.items() if n > 1] == [], "a ticket was assigned twice"
    assignee_by_event = dict(events)
    for ticket_id, status, assignee_id in tickets:
        if status is TicketStatus.assigned:
            assert assignee_by_event.get(ticket_id) == assignee_id, f"ticket {ticket_id} assigned without a trail"
        else:
            assert status is TicketStatus.queued and ticket_id not in assignee_by_event, f"ticket {ticket_id} lost"
    load_by_events = Counter(agent_id for _, agent_id in events)
    for agent_id, capacity, open_tickets in agents:
        assert load_by_events[agent_id] <= capacity, f"agent {agent_id} over capacity"
        assert load_by_events[agent_id] == open_tickets, f"agent {agent_id}'s load drifted from the events"
    assert len(events) == expected_assigned


@pytest.mark.postgres
def test_eight_routers_route_ten_thousand_tickets_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    kefu = make_kefu(postgres_url, tmp_path)
    try:
        # Room for 7,500 of 10,000 tickets: capacity runs out mid-race, where over-assignment would show.
        seed_backlog(kefu.engine, tickets=10_000, agents=50, capacity=150)
        with kefu.uow() as uow:
            capacity_for_languages = _capacity_reachable(uow.session)
        start = threading.Barrier(8)
        with ThreadPoolExecutor(max_workers=8) as pool:
            counts = list(pool.map(lambda _: _route_until_nothing_moves(kefu, start), range(8)))
        assert sum(counts) == capacity_for_languages
        assert sum(1 for n in counts if n) >= 2, "the routers did not actually run side by side"
        _assert_routing_guarantees(kefu, capacity_for_languages)
    finally:
        kefu.dispose()


def _capacity_reachable(session) -> int:
    """How many queued tickets the online agents can take, team by team (a quarter of them read only Chinese)."""
    reachable = 0
    for team_id in session.execute(select(Ticket.team_id).distinct()).scalars():
        agents = session.execute(
            select(Agent).where(Agent.teams.any(id=team_id), Agent.presence == Presence.online)
        ).scalars()
        zh_only, bilingual = 0, 0
        for agent in agents:
            if agent.languages == ["zh"]:
                zh_only += agent.capacity
            else:
                bilingual += agent.capacity
        wanting = Counter(
            session.execute(
                select(Ticket.language).where(Ticket.team_id == team_id, Ticket.status == TicketStatus.queued)
            ).scalars()
        )
        english = min(wanting["en"], bilingual)
        reachable += english + min(wanting["zh"], zh_only + bilingual - english)
    return reachable


def test_concurrent_routers_and_presence_changes_on_sqlites_single_writer_path(sqlite_url: str, tmp_path: Path) -> None:
    kefu = make_kefu(sqlite_url, tmp_path)
    try:
        seed_backlog(kefu.engine, tickets=1_500, agents=20, capacity=100)
        with kefu.uow() as uow:
            expected = _capacity_reachable(uow.session)
            flapping_agent = uow.session.execute(select(Agent.id).order_by(Agent.id).limit(1)).scalar_one()
        start = threading.Barrier(5)

        def flap_presence() -> int:
            # An agent dropping out mid-race: their unstarted tickets must go back, not vanish or double up.
            start.wait()
            for presence in ("offline", "online", "offline", "online"):
                with kefu.uow() as uow:
                    set_presence(uow.session, flapping_agent, presence)
                    uow.commit()
            return 0

        with ThreadPoolExecutor(max_workers=5) as pool:
            routers = [pool.submit(_route_until_nothing_moves, kefu, start) for _ in range(4)]
            flapper = pool.submit(flap_presence)
            flapper.result()
            for router in routers:
                router.result()
        run_worker(kefu, interval_s=0.01, once=True)
        with kefu.uow() as uow:
            requeued = (
                uow.session.execute(select(TicketEvent.ticket_id).where(TicketEvent.kind == TicketEventKind.requeued))
                .scalars()
                .all()
            )
            assigned = uow.session.execute(
                select(TicketEvent.ticket_id, TicketEvent.agent_id).where(TicketEvent.kind == TicketEventKind.assigned)
            ).all()
            tickets = dict(uow.session.execute(select(Ticket.id, Ticket.assignee_id)).all())
            agents = uow.session.execute(select(Agent.id, Agent.capacity, Agent.open_tickets)).all()
        # With requeues, a ticket's trail is: assigned, (requeued, assigned)*; its last assignment is its owner.
        per_ticket = Counter(ticket_id for ticket_id, _ in assigned)
        back = Counter(requeued)
        assert all(per_ticket[t] - back[t] in (0, 1) for t in tickets), "assigned twice without a requeue between"
        last_owner = {ticket_id: agent_id for ticket_id, agent_id in assigned}
        for ticket_id, assignee_id in tickets.items():
            expected_owner = last_owner.get(ticket_id) if per_ticket[ticket_id] > back[ticket_id] else None
            assert assignee_id == expected_owner, f"ticket {ticket_id} lost or misassigned"
        load = Counter(a for t, a in tickets.items() if a is not None)
        assert all(load[a] <= cap and load[a] == open_ for a, cap, open_ in agents)
        assert sum(load.values()) == expected
    finally:
        kefu.dispose()
