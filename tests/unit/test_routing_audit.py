"""Every routing state change leaves a trace, and every freed slot is refilled at once, not at the next sweep."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.models import Agent, AuditEntry, Presence, Role, Ticket, TicketEventKind, TicketStatus, utcnow
from router.routing.presence import requeue_stale_agents, set_presence
from router.routing.tickets import merge, transfer
from tests.support.routing import events_of, make_agent, make_team, make_user, new_ticket, shipped_policy


def presence_trail(kefu: Kefu) -> list[tuple[int | None, str, dict]]:
    """(actor, target, data) of every presence change, oldest first."""
    with kefu.uow() as uow:
        entries = uow.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "agent.presence").order_by(AuditEntry.id)
        )
        return [(entry.actor_user_id, entry.target, entry.data) for entry in entries]


def test_presence_changes_are_audited_with_who_why_and_what_was_requeued(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        team = make_team(uow.session, "logistics")
        agent = make_agent(uow.session, team, presence=Presence.offline)
        user_id = uow.session.get(Agent, agent).user_id
        new_ticket(uow.session)
        uow.commit()
    with kefu.uow() as uow:
        set_presence(uow.session, agent, Presence.online)  # pulls the waiting ticket
        set_presence(uow.session, agent, Presence.online)  # no change, no entry
        set_presence(uow.session, agent, Presence.offline)  # hands it back
        uow.commit()
    assert presence_trail(kefu) == [
        (user_id, f"agent:{agent}", {"from": "offline", "to": "online", "reason": "agent", "requeued": 0}),
        (user_id, f"agent:{agent}", {"from": "online", "to": "offline", "reason": "agent", "requeued": 1}),
    ]


def test_the_worker_taking_a_silent_agent_offline_is_audited_without_an_actor(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        silent = make_agent(uow.session, make_team(uow.session, "logistics"))
        new_ticket(uow.session)
        uow.commit()
    with kefu.uow() as uow:
        requeue_stale_agents(uow.session, utcnow() + timedelta(hours=1), policy=shipped_policy())
        uow.commit()
    reason = {"from": "online", "to": "offline", "reason": "missed heartbeats", "requeued": 1}
    assert presence_trail(kefu) == [(None, f"agent:{silent}", reason)]


def test_a_transfer_away_fills_the_freed_slot_from_the_queue_at_once(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        logistics, billing = make_team(uow.session, "logistics"), make_team(uow.session, "billing")
        agent = make_agent(uow.session, logistics, capacity=1)
        supervisor = make_user(uow.session, Role.supervisor)
        held, waiting = new_ticket(uow.session), new_ticket(uow.session)
        assert (held.assignee_id, waiting.status) == (agent, TicketStatus.queued)
        transfer(uow.session, ticket_id=held.id, actor=supervisor, to_team=billing.id)
        waiting_id = waiting.id
        uow.commit()
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, waiting_id).assignee_id == agent
        assert uow.session.get(Agent, agent).open_tickets == 1


def test_merging_a_held_duplicate_fills_the_freed_slot_and_records_the_priority_it_takes(kefu: Kefu) -> None:
    with kefu.uow() as uow:
        agent = make_agent(uow.session, make_team(uow.session, "logistics"), capacity=1)
        supervisor = make_user(uow.session, Role.supervisor)
        urgent = new_ticket(uow.session, priority=1, sender="telegram:5")
        calm = new_ticket(uow.session, priority=4, sender="telegram:5")
        other = new_ticket(uow.session, priority=3, sender="telegram:6")
        assert (urgent.assignee_id, calm.status, other.status) == (agent, TicketStatus.queued, TicketStatus.queued)
        merge(uow.session, source_ticket_id=urgent.id, target_ticket_id=calm.id, actor=supervisor)
        ids = {"calm": calm.id, "other": other.id, "supervisor": supervisor.id}
        uow.commit()
    with kefu.uow() as uow:
        calm = uow.session.get(Ticket, ids["calm"])
        assert calm.priority == 1 and calm.assignee_id == agent  # now first in the queue, it took the freed slot
        assert uow.session.get(Ticket, ids["other"]).status is TicketStatus.queued
        (change,) = events_of(uow.session, calm, TicketEventKind.priority_changed)
        assert (change.actor_user_id, change.data) == (ids["supervisor"], {"from": 4, "to": 1, "reason": "merge"})
