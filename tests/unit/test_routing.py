"""Routing rules on a real (SQLite) CRM: queue order, fair assignment, skills, capacity, presence, the worker."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.models import (
    Agent,
    Presence,
    Role,
    Team,
    Ticket,
    TicketEventKind,
    TicketStatus,
    User,
    utcnow,
)
from router.routing.assignment import assign_next, assign_waiting
from router.routing.presence import heartbeat, requeue_stale_agents, set_presence
from router.routing.queue import queue_position
from router.routing.tickets import find_ticket, latest_ticket_for_customer, resolve
from router.worker import run_worker
from tests.support.routing import events_of, make_agent, make_team, make_user, new_ticket, shipped_policy


def test_a_new_ticket_waits_in_its_categorys_team_queue_with_sla_deadlines(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        logistics = make_team(uow.session, "logistics")
        ticket = new_ticket(uow.session, "delivery", priority=2)
        uow.commit()
    assert (ticket.team_id, ticket.status, ticket.assignee_id) == (logistics.id, TicketStatus.queued, None)
    assert ticket.first_response_due_at - ticket.created_at == timedelta(minutes=60)
    assert ticket.resolution_due_at - ticket.created_at == timedelta(minutes=480)
    with kefu.uow() as uow:
        assert [e.kind for e in events_of(uow.session, ticket)] == [TicketEventKind.created]
        assert queue_position(uow.session, ticket) == 1


def test_an_unknown_team_is_created_rather_than_the_ticket_lost(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        ticket = new_ticket(uow.session, "payment_billing")
        uow.commit()
        assert ticket.team.name == "billing" and ticket.status is TicketStatus.queued


def test_queue_orders_by_priority_then_due_time_then_age(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        make_team(uow.session, "logistics")
        p4 = new_ticket(uow.session, priority=4)
        p3_old, p3_new = new_ticket(uow.session, priority=3), new_ticket(uow.session, priority=3)
        p1 = new_ticket(uow.session, priority=1)
        uow.commit()
        positions = [queue_position(uow.session, t) for t in (p1, p3_old, p3_new, p4)]
        most_urgent_id = p1.id
    assert positions == [1, 2, 3, 4]
    with kefu.uow() as uow:
        team = uow.session.execute(select(Team)).scalar_one()
        make_agent(uow.session, team, capacity=1)
        first = assign_next(uow.session, team.id)
        uow.commit()
    assert first.id == most_urgent_id


def test_the_least_loaded_agent_gets_the_ticket_and_ties_go_to_the_longest_idle(kefu: Kefu) -> None:
    now = utcnow()
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        busy = make_agent(uow.session, team, open_tickets=2, last_assigned_at=now - timedelta(hours=5))
        recent = make_agent(uow.session, team, open_tickets=1, last_assigned_at=now - timedelta(minutes=1))
        idle = make_agent(uow.session, team, open_tickets=1, last_assigned_at=now - timedelta(hours=1))
        tickets = [new_ticket(uow.session) for _ in range(3)]
        uow.commit()
    assignees = [t.assignee_id for t in tickets]
    # 1st: idle (load 1, idle longest); 2nd: recent (load 1 vs idle's 2); 3rd: busy (all at 2, idle 5 hours).
    assert assignees == [idle, recent, busy]
    with kefu.uow() as uow:
        loads = {a.id: a.open_tickets for a in uow.session.execute(select(Agent)).scalars()}
    assert loads == {busy: 3, recent: 2, idle: 2}


def test_language_and_category_skills_decide_who_fits_and_a_misfit_does_not_block_the_queue(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "after_sales")
        zh_only = make_agent(uow.session, team, languages=["zh"], skills=["refund_return"])
        uow.commit()
    with kefu.uow() as uow:
        english = new_ticket(uow.session, "refund_return", priority=1, lang="en")
        chinese = new_ticket(uow.session, "refund_return", priority=4, lang="zh")
        uow.commit()
    assert english.status is TicketStatus.queued
    assert (chinese.status, chinese.assignee_id) == (TicketStatus.assigned, zh_only)
    with kefu.uow() as uow:
        team = uow.session.get(Team, team.id)
        anyone = make_agent(uow.session, team, languages=["zh", "en"], skills=[])
        assert assign_waiting(uow.session) == 1
        uow.commit()
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, english.id).assignee_id == anyone


def test_capacity_is_a_hard_limit_and_a_freed_slot_is_filled_at_once(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        agent = make_agent(uow.session, team, capacity=2)
        supervisor = make_user(uow.session, Role.supervisor)
        first, second, third = (new_ticket(uow.session) for _ in range(3))
        uow.commit()
    assert [t.assignee_id for t in (first, second, third)] == [agent, agent, None]
    with kefu.uow() as uow:
        resolve(uow.session, ticket_id=first.id, actor=uow.session.get(User, supervisor.id))
        uow.commit()
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, third.id).assignee_id == agent
        assert uow.session.get(Agent, agent).open_tickets == 2


def test_nobody_online_means_waiting_until_an_agent_comes_online(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        agent = make_agent(uow.session, team, presence=Presence.offline)
        away = make_agent(uow.session, team, presence=Presence.away)
        ticket = new_ticket(uow.session)
        uow.commit()
    assert ticket.status is TicketStatus.queued
    with kefu.uow() as uow:
        set_presence(uow.session, agent, "online")
        uow.commit()
    with kefu.uow() as uow:
        assigned = uow.session.get(Ticket, ticket.id)
        assert (assigned.status, assigned.assignee_id) == (TicketStatus.assigned, agent)
        assert uow.session.get(Agent, away).open_tickets == 0


def test_going_offline_requeues_unstarted_tickets_to_colleagues_and_keeps_started_ones(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        leaving = make_agent(uow.session, team)
        unstarted, started = new_ticket(uow.session), new_ticket(uow.session)
        started.status = TicketStatus.in_progress
        colleague = make_agent(uow.session, team, presence=Presence.offline)
        uow.commit()
    with kefu.uow() as uow:
        set_presence(uow.session, colleague, Presence.online)
        set_presence(uow.session, leaving, Presence.offline)
        uow.commit()
    with kefu.uow() as uow:
        moved, kept = uow.session.get(Ticket, unstarted.id), uow.session.get(Ticket, started.id)
        assert (moved.assignee_id, kept.assignee_id) == (colleague, leaving)
        requeued = events_of(uow.session, moved, TicketEventKind.requeued)
        assert [(e.agent_id, e.data["reason"]) for e in requeued] == [(leaving, "offline")]
        assert [e.agent_id for e in events_of(uow.session, moved, TicketEventKind.assigned)] == [
            leaving,
            colleague,
        ]
        assert uow.session.get(Agent, leaving).open_tickets == 1


def test_missed_heartbeats_take_an_agent_offline_and_requeue_their_tickets(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        silent, alive = make_agent(uow.session, team), make_agent(uow.session, team, open_tickets=1)
        ticket = new_ticket(uow.session)
        uow.commit()
    assert ticket.assignee_id == silent
    later = utcnow() + timedelta(minutes=5)
    with kefu.uow() as uow:
        heartbeat(uow.session, alive)
        uow.session.get(Agent, alive).last_heartbeat_at = later
        stale = requeue_stale_agents(uow.session, later, policy=shipped_policy())
        uow.commit()
    assert [a.id for a in stale] == [silent]
    with kefu.uow() as uow:
        assert uow.session.get(Agent, silent).presence is Presence.offline
        assert uow.session.get(Ticket, ticket.id).assignee_id == alive


def test_unknown_presence_is_refused_without_change(kefu: Kefu) -> None:
    import pytest

    from router.errors import InvalidInput, NotFound

    with kefu.uow() as uow:
        agent = make_agent(uow.session, make_team(uow.session, "logistics"))
        uow.commit()
    with kefu.uow() as uow, pytest.raises(InvalidInput):
        set_presence(uow.session, agent, "sleeping")
    with kefu.uow() as uow, pytest.raises(NotFound):
        set_presence(uow.session, 9999, "online")
    with kefu.uow() as uow:
        assert uow.session.get(Agent, agent).presence is Presence.online


def test_find_ticket_accepts_the_numbers_people_quote(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        make_team(uow.session, "logistics")
        ticket = new_ticket(uow.session, sender="telegram:42")
        later = new_ticket(uow.session, sender="telegram:42")
        uow.commit()
        for quoted in (ticket.number, ticket.number.lower(), str(ticket.id), f" T{ticket.id} "):
            assert find_ticket(uow.session, quoted).id == ticket.id
        for junk in ("", "T", "abc", "T-1", "9" * 40, "T999999"):
            assert find_ticket(uow.session, junk) is None
        assert latest_ticket_for_customer(uow.session, ticket.customer_id).id == later.id


def test_the_worker_sweep_assigns_what_waits(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        tickets = [new_ticket(uow.session) for _ in range(4)]
        make_agent(uow.session, team, capacity=3)
        uow.commit()
    run_worker(kefu, interval_s=0.01, once=True)
    with kefu.uow() as uow:
        statuses = uow.session.execute(
            select(Ticket.status, func.count()).where(Ticket.id.in_([t.id for t in tickets])).group_by(Ticket.status)
        ).all()
    assert dict(statuses) == {TicketStatus.assigned: 3, TicketStatus.queued: 1}


def test_a_long_run_of_tickets_nobody_fits_does_not_hide_one_that_fits(kefu: Kefu) -> None:
    from router.routing.policy import ASSIGN_SCAN_LIMIT

    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        english = [new_ticket(uow.session, priority=1, lang="en") for _ in range(3)]
        uow.session.add_all(
            Ticket(
                customer_id=english[0].customer_id,
                channel=english[0].channel,
                language="en",
                priority=1,
                team_id=team.id,
                first_response_due_at=utcnow(),
            )
            for _ in range(ASSIGN_SCAN_LIMIT)
        )
        chinese = new_ticket(uow.session, priority=4, lang="zh").id
        agent = make_agent(uow.session, team, languages=["zh"])
        assert assign_waiting(uow.session, [team.id]) == 1
        uow.commit()
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, chinese).assignee_id == agent


def test_a_worker_sweep_requeues_silent_agents_and_escalates_overdue_tickets(kefu: Kefu) -> None:
    from router.worker import sweep

    long_ago = utcnow() - timedelta(hours=1)
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        silent = make_agent(uow.session, team, last_heartbeat_at=long_ago)
        overdue = new_ticket(uow.session, priority=3)
        overdue.created_at, overdue.first_response_due_at = long_ago, utcnow()
        colleague = make_agent(uow.session, team, open_tickets=1)
        overdue_id = overdue.id
        uow.commit()
    result = sweep(kefu)
    assert (result.requeued_agents, result.escalated) == (1, 1)
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, overdue_id)
        assert (ticket.assignee_id, ticket.priority, ticket.escalation_level) == (colleague, 2, 1)
        kinds = [e.kind for e in events_of(uow.session, ticket)]
        assert kinds == [
            TicketEventKind.created,
            TicketEventKind.assigned,
            TicketEventKind.requeued,
            TicketEventKind.assigned,
            TicketEventKind.escalated,
            TicketEventKind.priority_changed,
        ]
        assert uow.session.get(Agent, silent).presence is Presence.offline
