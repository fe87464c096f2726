"""Concurrent routers on a real database: no ticket assigned twice, none lost, no agent over capacity.

Everything is checked from the ticket events (the audit trail), independently of the routers' own bookkeeping.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Select

from benchmarks.routing import seed_backlog
from router.crm.interactions import Turn
from router.crm.models import (
    Agent,
    AuditEntry,
    Conversation,
    Presence,
    Role,
    Speaker,
    Team,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    User,
    agent_teams,
)
from router.errors import Conflict
from router.routing import agent_actions
from router.routing.assignment import assign_waiting, lock_candidates
from router.routing.escalation import escalate_due
from router.routing.presence import set_presence
from router.turn_log import log_turns
from router.worker import run_worker
from tests.support.cli import KEFU
from tests.support.crm import make_kefu
from tests.support.routing import make_agent, make_team, make_user, new_ticket, shipped_policy


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
@pytest.mark.slow  # ten thousand tickets: the scale is the point; the race tests below stay quick
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


def _escalate_without_waiting(kefu, at: datetime) -> list[int]:
    """One escalation sweep that fails instead of waiting for a lock: the tickets it escalated."""
    policy = shipped_policy()
    with kefu.uow() as sweep:
        sweep.session.execute(text("SET LOCAL lock_timeout = '3s'"))
        escalated = [ticket.id for ticket in escalate_due(sweep.session, at, policy=policy)]
        sweep.commit()
    return escalated


@pytest.mark.postgres
def test_an_escalation_waits_for_no_agent_that_a_presence_change_or_a_router_holds(
    postgres_url: str, tmp_path: Path
) -> None:
    """The deadlock the worker race below found: a presence change holds the agent, then waits for the agent's
    unstarted tickets (to requeue them), while an escalation sweep held one of those tickets and waited for the
    agent. The sweep holds tickets, so it must never wait for an agent row."""
    kefu = make_kefu(postgres_url, tmp_path)
    try:
        with kefu.uow() as uow:
            logistics = make_team(uow.session, "logistics")
            agent = make_agent(uow.session, logistics, capacity=5)
            unstarted, started = new_ticket(uow.session, "delivery"), new_ticket(uow.session, "delivery")
            uow.session.execute(update(Ticket).where(Ticket.id == started.id).values(status=TicketStatus.in_progress))
            spare = make_agent(uow.session, logistics, capacity=5)
            uow.commit()
        assert unstarted.assignee_id == started.assignee_id == agent
        at_risk = unstarted.created_at + (unstarted.first_response_due_at - unstarted.created_at) * 0.9

        with kefu.uow() as presence_change:  # under way: holds the agent and the unstarted ticket it requeued
            set_presence(presence_change.session, agent, "offline")
            # The started ticket is escalated (its events refer to the agent) without waiting for the agent.
            assert _escalate_without_waiting(kefu, at_risk) == [started.id]
            presence_change.rollback()
        with kefu.uow() as router:  # a router holds the agents while it assigns
            lock_candidates(router.session, logistics.id)
            assert _escalate_without_waiting(kefu, at_risk) == [], "the hand-off waited for the agent"
        assert _escalate_without_waiting(kefu, at_risk) == [unstarted.id]  # the next sweep hands it on
        with kefu.reader() as reader:
            assert reader.session.get(Ticket, unstarted.id).assignee_id == spare
    finally:
        kefu.dispose()


def _until_waiting_for_locks(kefu, transactions: int) -> None:
    """Return once ``transactions`` connections of this database wait for a lock (poll, with a deadline)."""
    deadline = time.monotonic() + 10
    with kefu.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(_WAITING_FOR_A_LOCK).scalar_one()
            connection.rollback()
            if waiting >= transactions:
                return
            time.sleep(0.01)
    pytest.fail(f"{waiting} transactions wait for a lock, not {transactions}")


_WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def _in_own_transaction(kefu, act: Callable[..., object], *args: object) -> Callable[[], None]:
    """``act(session, *args)`` in a transaction of its own that fails fast instead of hanging on a lock."""

    def run() -> None:
        with kefu.uow() as uow:
            uow.session.execute(text("SET LOCAL lock_timeout = '5s'"))
            act(uow.session, *args)
            uow.commit()

    return run


def _both_queued_behind(kefu, row: Select, first: Callable[[], None], second: Callable[[], None]) -> None:
    """Hold ``row`` (``FOR NO KEY UPDATE``) while ``first``, then ``second``, queue up behind it, then release it and
    let both finish; either raises here if PostgreSQL aborted it (a deadlock, say)."""
    with kefu.engine.connect() as holder, ThreadPoolExecutor(max_workers=2) as pool:
        holder.execute(row.with_for_update(key_share=True)).one()
        first_done = pool.submit(first)
        _until_waiting_for_locks(kefu, 1)
        second_done = pool.submit(second)
        _until_waiting_for_locks(kefu, 2)
        holder.rollback()
        first_done.result()
        second_done.result()


def _ticket_and_trail(kefu, ticket_id: int) -> tuple[TicketStatus, int | None, list[str]]:
    """The ticket's status and assignee, and the kinds of its events, oldest first."""
    with kefu.reader() as reader:
        status, assignee_id = reader.session.execute(
            select(Ticket.status, Ticket.assignee_id).where(Ticket.id == ticket_id)
        ).one()
        kinds = reader.session.execute(
            select(TicketEvent.kind).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        ).scalars()
        return status, assignee_id, [TicketEventKind(kind).value for kind in kinds]


def _agent_with_a_ticket(session, sender: str = "") -> tuple[Team, User, Ticket]:
    """A team, an online agent's user and a new ticket assigned to that agent (the only one there is)."""
    logistics = make_team(session, "logistics")
    user = make_user(session, Role.agent, [logistics], capacity=5)
    return logistics, user, new_ticket(session, "delivery", sender=sender)


def _act_as(user_id: int, action: str, ticket_id: int, colleague: int) -> Callable[..., object]:
    def act(session) -> object:
        actor = session.get(User, user_id)
        if action == "reply":
            return agent_actions.reply(session, ticket_id=ticket_id, actor=actor, text="马上为您查 checking now")
        if action == "resolve":
            return agent_actions.resolve(session, ticket_id=ticket_id, actor=actor)
        return agent_actions.transfer(session, ticket_id=ticket_id, actor=actor, to_agent=colleague)

    return act


@pytest.mark.postgres
@pytest.mark.parametrize("action", ["reply", "resolve", "transfer"])
def test_an_agent_acting_while_marked_offline_takes_the_agent_before_the_ticket(
    postgres_url: str, tmp_path: Path, action: str
) -> None:
    """An agent acts on their unstarted ticket at the moment they are marked offline. The presence change holds the
    agent and then locks the agent's unstarted tickets to requeue them; an action that held the ticket and then
    waited for the agent closed the cycle (PostgreSQL aborted one side after deadlock_timeout). Here a third
    transaction holds the agent while the presence change, then the action, queue up behind it; released, both
    must commit: the action waits for the agent holding nothing, and finds the ticket requeued."""
    kefu = make_kefu(postgres_url, tmp_path)
    try:
        with kefu.uow() as uow:
            logistics, user, ticket = _agent_with_a_ticket(uow.session)
            agent, user_id = user.agent.id, user.id
            colleague = make_agent(uow.session, logistics, capacity=5, presence=Presence.away)
            uow.commit()
        assert (ticket.status, ticket.assignee_id) == (TicketStatus.assigned, agent)

        _both_queued_behind(
            kefu,
            select(Agent.id).where(Agent.id == agent),
            _in_own_transaction(kefu, set_presence, agent, "offline"),
            _in_own_transaction(kefu, _act_as(user_id, action, ticket.id, colleague)),
        )
        status, assignee_id, kinds = _ticket_and_trail(kefu, ticket.id)
        with kefu.reader() as reader:
            loads = dict(reader.session.execute(select(Agent.id, Agent.open_tickets)).all())
        assert kinds[:3] == ["created", "assigned", "requeued"], kinds  # the presence change went first
        expected = {
            "reply": (TicketStatus.in_progress, agent, {agent: 1, colleague: 0}),  # answering a waiting ticket takes it
            "resolve": (TicketStatus.resolved, None, {agent: 0, colleague: 0}),
            "transfer": (TicketStatus.assigned, colleague, {agent: 0, colleague: 1}),
        }[action]
        assert (status, assignee_id, loads) == expected
    finally:
        kefu.dispose()


def _customer_writes_again(session, sender_id: str) -> None:
    """What the event broker does with a customer's turn: log it (touching the conversation), then reopen."""
    turn = Turn("back-again", sender_id, Speaker.customer, "还是没到 still not here", intent="track_order")
    log_turns(session, [turn], shipped_policy())


@pytest.mark.postgres
def test_an_agent_replying_to_a_resolved_ticket_as_its_customer_writes_again_takes_the_conversation_first(
    postgres_url: str, tmp_path: Path
) -> None:
    """The turn writer updates the conversation, then reopens the ticket; a reply that held the ticket and then
    updated the conversation closed a cycle. A third transaction holds the conversation while the turn writer, then
    the reply, queue up behind it; released, both commit: the ticket is reopened and the reply takes it."""
    kefu = make_kefu(postgres_url, tmp_path)
    try:
        with kefu.uow() as uow:
            _, user, ticket = _agent_with_a_ticket(uow.session, sender="web:late-parcel")
            agent, user_id = user.agent.id, user.id
            agent_actions.resolve(uow.session, ticket_id=ticket.id, actor=user)
            uow.commit()

        _both_queued_behind(
            kefu,
            select(Conversation.id).where(Conversation.id == ticket.conversation_id),
            _in_own_transaction(kefu, _customer_writes_again, "web:late-parcel"),
            _in_own_transaction(kefu, _act_as(user_id, "reply", ticket.id, agent)),
        )
        status, assignee_id, kinds = _ticket_and_trail(kefu, ticket.id)
        assert kinds[-3:] == ["reopened", "assigned", "replied"], kinds  # the reply took the reopened ticket
        assert (status, assignee_id) == (TicketStatus.in_progress, agent)
    finally:
        kefu.dispose()


@pytest.mark.postgres
def test_an_action_on_a_ticket_that_changed_hands_while_it_waited_for_the_agent_is_refused(
    postgres_url: str, tmp_path: Path
) -> None:
    """The action locks the assignee it read before the ticket; if the ticket went to someone else meanwhile, that
    agent is not locked and waiting for them now (holding the ticket) could deadlock: it is refused, clearly."""
    kefu = make_kefu(postgres_url, tmp_path)
    try:
        with kefu.uow() as uow:
            logistics = make_team(uow.session, "logistics")
            agent = make_agent(uow.session, logistics, capacity=5)
            ticket = new_ticket(uow.session, "delivery")
            colleague = make_agent(uow.session, logistics, capacity=5)
            supervisor = make_user(uow.session, Role.supervisor).id
            uow.commit()
        assert ticket.assignee_id == agent

        with kefu.uow() as presence_change, ThreadPoolExecutor(max_workers=1) as pool:
            set_presence(presence_change.session, agent, "offline")  # requeued and routed on to the colleague
            resolving = pool.submit(_in_own_transaction(kefu, _act_as(supervisor, "resolve", ticket.id, colleague)))
            _until_waiting_for_locks(kefu, 1)
            presence_change.commit()
            with pytest.raises(Conflict, match="changed hands"):
                resolving.result()

        with kefu.reader() as reader:
            after = reader.session.get(Ticket, ticket.id)
            assert (after.status, after.assignee_id) == (TicketStatus.assigned, colleague)
            assert reader.session.get(Agent, colleague).open_tickets == 1
    finally:
        kefu.dispose()


WORKERS = 3
FLIP_S = 8.0


def _waiting_while_someone_fits(session) -> list[int]:
    """Queued tickets that an online agent of their team with spare capacity speaks and handles."""
    available = session.execute(
        select(Agent, agent_teams.c.team_id)
        .join(agent_teams, agent_teams.c.agent_id == Agent.id)
        .where(Agent.presence == Presence.online, Agent.open_tickets < Agent.capacity)
    ).all()
    queued = session.execute(
        select(Ticket.id, Ticket.team_id, Ticket.language, Ticket.category).where(Ticket.status == TicketStatus.queued)
    ).all()
    return [
        ticket_id
        for ticket_id, team_id, language, category in queued
        if any(
            team == team_id
            and (not agent.languages or language in agent.languages)
            and (not agent.skills or category in agent.skills)
            for agent, team in available
        )
    ]


def _presence_timelines(session) -> dict[int, list[tuple[datetime, str]]]:
    """Each agent's presence changes, in the order they committed, from the audit log."""
    timelines: dict[int, list[tuple[datetime, str]]] = {}
    for target, data, at in session.execute(
        select(AuditEntry.target, AuditEntry.data, AuditEntry.created_at)
        .where(AuditEntry.action == "agent.presence")
        .order_by(AuditEntry.created_at)
    ):
        timelines.setdefault(int(target.removeprefix("agent:")), []).append((at, data["to"]))
    return timelines


def _presence_at(timeline: list[tuple[datetime, str]], at: datetime, initially: str) -> str:
    return next((to for changed_at, to in reversed(timeline) if changed_at < at), initially)


@pytest.mark.postgres
@pytest.mark.cluster
def test_worker_processes_while_agents_flip_presence_never_double_or_lose_an_assignment(
    postgres_url: str, tmp_path: Path
) -> None:
    """Three `kefu worker` processes route (and escalate) a backlog while this process flips agents' presence.

    What PostgreSQL guarantees, and what is asserted from the audit trail afterwards:
    - a ticket is held by at most one agent: its trail alternates assigned, requeued, assigned… (claims are
      ``FOR UPDATE SKIP LOCKED``), and its final row matches the trail's end — nothing assigned twice, none lost;
    - an assignment commits only while its agent is online: routers lock the agent row (``FOR NO KEY UPDATE``,
      online only) and a presence change locks the same row, so they commit one after the other; each assignment's
      ``created_at`` and each presence change's are taken under that lock, so their order is the commit order;
    - no deadlock between the sweeps and the presence changes (a failed transaction fails the test);
    - an agent's load is exactly its assigned tickets and never above capacity;
    - once the flipping stops, the workers leave no ticket waiting that an online agent with room fits.
    """
    kefu = make_kefu(postgres_url, tmp_path)
    workers: list[subprocess.Popen] = []
    try:
        seed_backlog(kefu.engine, tickets=3_000, agents=24, capacity=30)
        with kefu.uow() as uow:
            agent_ids = uow.session.execute(select(Agent.id).order_by(Agent.id)).scalars().all()
        flipping = agent_ids[::3]
        for n in range(WORKERS):
            env = {
                **os.environ,
                "KEFU_DATABASE_URL": _as_application(postgres_url, f"kefu-worker-{n}"),
                "KEFU_VAR_DIR": str(tmp_path / "var"),
            }
            with (tmp_path / f"worker-{n}.log").open("w") as log:
                workers.append(
                    subprocess.Popen([*KEFU, "worker", "--interval", "0.05"], env=env, stderr=log, stdout=log)
                )

        _wait_until_connected(kefu, WORKERS)
        flips, stop, started = Counter(), threading.Event(), time.monotonic()

        def flip(agents: list[int]) -> None:
            presence = "offline"
            while not stop.is_set():
                for agent_id in agents:
                    with kefu.uow() as uow:
                        set_presence(uow.session, agent_id, presence)
                        uow.commit()
                    flips[agent_id] += 1
                presence = "online" if presence == "offline" else "offline"

        def flipped_enough() -> bool:
            # Each flipping agent went offline and came back at least once, for at least FLIP_S.
            return time.monotonic() - started > FLIP_S and all(flips[agent_id] >= 2 for agent_id in flipping)

        with ThreadPoolExecutor(max_workers=2) as pool:
            flippers = [pool.submit(flip, flipping[half::2]) for half in (0, 1)]
            most_in_transaction = _most_workers_in_a_transaction_at_once(kefu, until=flipped_enough)
            stop.set()
            for flipper in flippers:
                flipper.result()
        assert flipped_enough(), f"the agents flipped too seldom: {flips}"
        assert most_in_transaction >= 2, "the workers never routed side by side"
        for agent_id in flipping[::2]:  # end with some of them online: the workers must fill their room
            with kefu.uow() as uow:
                set_presence(uow.session, agent_id, "online")
                uow.commit()

        deadline = time.monotonic() + 60
        while True:
            with kefu.reader() as reader:
                waiting = _waiting_while_someone_fits(reader.session)
            if not waiting or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert waiting == [], f"{len(waiting)} tickets wait while an online agent with room fits them"
        for n, worker in enumerate(workers):
            assert worker.poll() is None, (tmp_path / f"worker-{n}.log").read_text()[-3000:]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    try:
        for n in range(WORKERS):  # a sweep that fails (a deadlock, say) is logged and retried: none may fail
            log = (tmp_path / f"worker-{n}.log").read_text()
            assert "worker sweep failed" not in log, log[-3000:]
        with kefu.reader() as reader:
            session = reader.session
            trails: dict[int, list[tuple[str, int | None, datetime]]] = {}
            for ticket_id, kind, agent_id, at in session.execute(
                select(TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.agent_id, TicketEvent.created_at)
                .where(TicketEvent.kind.in_((TicketEventKind.assigned, TicketEventKind.requeued)))
                .order_by(TicketEvent.id)
            ):
                trails.setdefault(ticket_id, []).append((TicketEventKind(kind).value, agent_id, at))
            tickets = session.execute(select(Ticket.id, Ticket.status, Ticket.assignee_id)).all()
            agents = session.execute(select(Agent.id, Agent.capacity, Agent.open_tickets, Agent.presence)).all()
            timelines = _presence_timelines(session)
        assert sum(1 for trail in trails.values() for kind, _, _ in trail if kind == "assigned") > 1000
        assert any(kind == "requeued" for trail in trails.values() for kind, _, _ in trail)
        for ticket_id, status, assignee_id in tickets:
            trail = trails.get(ticket_id, [])
            kinds = [kind for kind, _, _ in trail]
            assert kinds == ["assigned", "requeued"] * (len(kinds) // 2) + ["assigned"] * (len(kinds) % 2), (
                f"ticket {ticket_id} was assigned twice without a requeue between: {trail}"
            )
            last_owner = trail[-1][1] if kinds and kinds[-1] == "assigned" else None
            assert (status, assignee_id) == (
                (TicketStatus.assigned, last_owner) if last_owner else (TicketStatus.queued, None)
            ), f"ticket {ticket_id} is {status.value} with {assignee_id}, its trail says {trail}"
            for kind, agent_id, at in trail:
                if kind == "assigned":
                    assert _presence_at(timelines.get(agent_id, []), at, "online") == "online", (
                        f"ticket {ticket_id} assigned at {at} to agent {agent_id}, offline then: {timelines[agent_id]}"
                    )
        load = Counter(assignee_id for _, status, assignee_id in tickets if status is TicketStatus.assigned)
        for agent_id, capacity, open_tickets, presence in agents:
            assert load[agent_id] == open_tickets <= capacity, f"agent {agent_id}'s load drifted"
            if load[agent_id]:
                assert presence is Presence.online, f"offline agent {agent_id} still holds unstarted tickets"
    finally:
        kefu.dispose()


def _as_application(url: str, name: str) -> str:
    return make_url(url).update_query_dict({"application_name": name}).render_as_string(hide_password=False)


def _wait_until_connected(kefu, workers: int) -> None:
    """Return once ``workers`` worker processes have connections to the database (they take seconds to start)."""
    deadline = time.monotonic() + 120
    with kefu.engine.connect() as connection:
        while time.monotonic() < deadline:
            connected = connection.execute(_WORKER_CONNECTIONS).one()[1]
            connection.rollback()
            if connected == workers:
                return
            time.sleep(0.2)
    pytest.fail(f"only {connected} of {workers} workers connected within 120 s")


# Worker processes inside a transaction, and connected at all (each shows under its own application_name).
_WORKER_CONNECTIONS = text(
    "SELECT count(DISTINCT application_name) FILTER (WHERE xact_start IS NOT NULL), count(DISTINCT application_name)"
    " FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'kefu-worker-%'"
)


def _most_workers_in_a_transaction_at_once(kefu, until: Callable[[], bool], limit_s: float = 120) -> int:
    """Watch pg_stat_activity until ``until()`` (at most ``limit_s``): most workers seen in a transaction at once."""
    most, deadline = 0, time.monotonic() + limit_s
    with kefu.engine.connect() as connection:
        while not until() and time.monotonic() < deadline:
            most = max(most, connection.execute(_WORKER_CONNECTIONS).one()[0])
            connection.rollback()
            time.sleep(0.01)
    return most
