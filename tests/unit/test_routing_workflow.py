"""The ticket workflow on a real (SQLite) CRM: replies, resolve, transfer, notes, merge, reopen, SLA, visibility."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.interactions import Turn, record_turns
from router.crm.models import (
    Agent,
    Conversation,
    Interaction,
    Presence,
    Role,
    Speaker,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    User,
    utcnow,
)
from router.errors import Conflict, Forbidden, InvalidInput, NotFound
from router.routing.escalation import escalate_due
from router.routing.policy import MAX_REPLY_CHARS
from router.routing.returning import reopen_on_customer_turn
from router.routing.tickets import (
    add_note,
    merge,
    reopen,
    reopen_if_recent,
    reply,
    resolve,
    transfer,
)
from router.routing.visibility import ensure_can_see, visible_tickets
from tests.support.routing import events_of, make_agent, make_team, make_user, new_ticket, shipped_policy


@pytest.fixture
def desk(kefu: Kefu) -> dict[str, int]:
    """Two teams, an agent in each (plus a spare in logistics), a supervisor, and a ticket assigned in logistics."""
    with kefu.uow() as uow:
        session = uow.session
        logistics, billing = make_team(session, "logistics"), make_team(session, "billing")
        ids = {"logistics": logistics.id, "billing": billing.id}
        ids["agent"] = make_agent(session, logistics, capacity=5)
        ids["spare"] = make_agent(session, logistics, capacity=5, open_tickets=3)
        ids["biller"] = make_agent(session, billing, capacity=5)
        ids["supervisor"] = make_user(session, Role.supervisor).id
        ids["ticket"] = new_ticket(session, "delivery", priority=3, sender="telegram:777").id
        uow.commit()
    return ids


def user_of(session, agent_id: int) -> User:
    """The login behind an agent."""
    return session.get(Agent, agent_id).user


def counts(session) -> tuple[int, int, int]:
    """(tickets, events, interactions): a refused request must change none of them."""
    return tuple(session.scalar(select(func.count(model.id))) for model in (Ticket, TicketEvent, Interaction))


def test_a_reply_is_recorded_as_an_agent_turn_and_starts_the_ticket(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        actor = user_of(uow.session, desk["agent"])
        turn = reply(uow.session, ticket_id=desk["ticket"], actor=actor, text="您好，我们马上查 13812345678 的订单")
        uow.commit()
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, desk["ticket"])
        turn = uow.session.get(Interaction, turn.id)
        assert (turn.speaker, turn.agent_id, turn.ticket_id, turn.delivery) == (
            Speaker.agent,
            desk["agent"],
            ticket.id,
            "pending",
        )
        assert "13812345678" not in turn.text
        assert ticket.status is TicketStatus.in_progress and ticket.first_responded_at is not None
        (replied,) = events_of(uow.session, ticket, TicketEventKind.replied)
        assert replied.data["interaction_id"] == turn.id and replied.data["first_response_s"] >= 0


def test_bad_replies_are_refused_and_change_nothing(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        before = counts(uow.session)
        actor = user_of(uow.session, desk["agent"])
        for text, error in (("", InvalidInput), ("   ", InvalidInput), ("字" * (MAX_REPLY_CHARS + 1), InvalidInput)):
            with pytest.raises(error):
                reply(uow.session, ticket_id=desk["ticket"], actor=actor, text=text)
        with pytest.raises(NotFound):
            reply(uow.session, ticket_id=987654, actor=actor, text="hello")
        with pytest.raises(Forbidden):
            reply(uow.session, ticket_id=desk["ticket"], actor=user_of(uow.session, desk["biller"]), text="hi")
        assert counts(uow.session) == before


def test_replying_to_a_merged_ticket_is_a_conflict(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        duplicate = new_ticket(uow.session, sender="telegram:777").id
        supervisor = uow.session.get(User, desk["supervisor"])
        merge(uow.session, source_ticket_id=duplicate, target_ticket_id=desk["ticket"], actor=supervisor)
        uow.commit()
    with kefu.uow() as uow:
        before = counts(uow.session)
        with pytest.raises(Conflict, match="merged"):
            reply(uow.session, ticket_id=duplicate, actor=uow.session.get(User, desk["supervisor"]), text="hi")
        assert counts(uow.session) == before


def test_a_stale_version_makes_the_second_resolver_fail(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        version_seen_by_both = uow.session.get(Ticket, desk["ticket"]).version
    with kefu.uow() as uow:
        first = user_of(uow.session, desk["agent"])
        resolve(uow.session, ticket_id=desk["ticket"], actor=first, expected_version=version_seen_by_both)
        uow.commit()
    with kefu.uow() as uow:
        with pytest.raises(Conflict, match="changed since"):
            resolve(
                uow.session,
                ticket_id=desk["ticket"],
                actor=uow.session.get(User, desk["supervisor"]),
                expected_version=version_seen_by_both,
            )
        ticket = uow.session.get(Ticket, desk["ticket"])
        assert len(events_of(uow.session, ticket, TicketEventKind.resolved)) == 1
        with pytest.raises(Conflict, match="already resolved"):
            resolve(uow.session, ticket_id=ticket.id, actor=uow.session.get(User, desk["supervisor"]))


def test_resolving_frees_the_slot_and_unpauses_the_bot(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, desk["ticket"])
        uow.session.get(Conversation, ticket.conversation_id).bot_paused = True
        assert uow.session.get(Agent, desk["agent"]).open_tickets == 1
        resolve(uow.session, ticket_id=ticket.id, actor=user_of(uow.session, desk["agent"]), summary="refunded")
        uow.commit()
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, desk["ticket"])
        assert ticket.status is TicketStatus.resolved and ticket.resolved_at is not None
        assert uow.session.get(Agent, desk["agent"]).open_tickets == 0
        assert uow.session.get(Conversation, ticket.conversation_id).bot_paused is False
        assert events_of(uow.session, ticket, TicketEventKind.resolved)[0].data == {"summary": "refunded"}


def test_transfer_to_another_team_requeues_there_and_frees_the_old_agent(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        actor = user_of(uow.session, desk["agent"])
        transfer(uow.session, ticket_id=desk["ticket"], actor=actor, to_team=desk["billing"])
        uow.commit()
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, desk["ticket"])
        assert (ticket.team_id, ticket.assignee_id, ticket.transfer_count) == (desk["billing"], desk["biller"], 1)
        assert uow.session.get(Agent, desk["agent"]).open_tickets == 0
        (moved,) = events_of(uow.session, ticket, TicketEventKind.transferred)
        assert moved.data["from_team"] == desk["logistics"] and moved.data["to_team"] == desk["billing"]
        # The agent no longer sees it: it belongs to billing now.
        with pytest.raises(Forbidden):
            ensure_can_see(user_of(uow.session, desk["agent"]), ticket)


def test_transfer_to_an_agent_checks_team_and_capacity(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        actor = user_of(uow.session, desk["agent"])
        before = counts(uow.session)
        with pytest.raises(InvalidInput, match="not in the ticket's team"):
            transfer(uow.session, ticket_id=desk["ticket"], actor=actor, to_agent=desk["biller"])
        with pytest.raises(InvalidInput):
            transfer(uow.session, ticket_id=desk["ticket"], actor=actor)
        uow.session.get(Agent, desk["spare"]).open_tickets = 5
        with pytest.raises(Conflict, match="capacity"):
            transfer(uow.session, ticket_id=desk["ticket"], actor=actor, to_agent=desk["spare"])
        assert counts(uow.session) == before
        supervisor = uow.session.get(User, desk["supervisor"])
        transfer(uow.session, ticket_id=desk["ticket"], actor=supervisor, to_agent=desk["spare"])
        uow.commit()
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, desk["ticket"]).assignee_id == desk["spare"]
        assert uow.session.get(Agent, desk["spare"]).open_tickets == 6


def test_notes_are_internal_events(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        actor = user_of(uow.session, desk["agent"])
        add_note(uow.session, ticket_id=desk["ticket"], actor=actor, text="客户很着急 <script>x</script>")
        with pytest.raises(InvalidInput):
            add_note(uow.session, ticket_id=desk["ticket"], actor=actor, text=" ")
        uow.commit()
    with kefu.uow() as uow:
        (note,) = events_of(uow.session, uow.session.get(Ticket, desk["ticket"]), TicketEventKind.note)
        assert note.data["text"] == "客户很着急 <script>x</script>" and note.actor_user_id is not None
        assert uow.session.scalar(select(func.count(Interaction.id))) == 0


def test_merge_folds_a_duplicate_of_the_same_customer_only(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        duplicate = new_ticket(uow.session, priority=1, sender="telegram:777").id
        stranger = new_ticket(uow.session, sender="telegram:888").id
        supervisor = uow.session.get(User, desk["supervisor"])
        reply(uow.session, ticket_id=duplicate, actor=supervisor, text="看到了")
        with pytest.raises(InvalidInput, match="same customer"):
            merge(uow.session, source_ticket_id=stranger, target_ticket_id=desk["ticket"], actor=supervisor)
        with pytest.raises(InvalidInput):
            merge(uow.session, source_ticket_id=duplicate, target_ticket_id=duplicate, actor=supervisor)
        merge(uow.session, source_ticket_id=duplicate, target_ticket_id=desk["ticket"], actor=supervisor)
        uow.commit()
    with kefu.uow() as uow:
        source, target = uow.session.get(Ticket, duplicate), uow.session.get(Ticket, desk["ticket"])
        assert (source.status, source.merged_into_id, target.priority) == (TicketStatus.merged, target.id, 1)
        moved = uow.session.execute(select(Interaction.ticket_id)).scalars().all()
        assert moved == [target.id]
        assert events_of(uow.session, source, TicketEventKind.merged)[0].data == {"into": target.id}
        assert events_of(uow.session, target, TicketEventKind.merged)[0].data == {"from": source.id}


def test_a_customer_writing_soon_after_resolution_reopens_the_ticket(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        resolve(uow.session, ticket_id=desk["ticket"], actor=uow.session.get(User, desk["supervisor"]))
        uow.commit()
    with kefu.uow() as uow:
        conversation = current_conversation(uow.session, "telegram:777")
        policy = shipped_policy()
        too_late = utcnow() + policy.reopen_within + timedelta(hours=1)
        assert reopen_if_recent(uow.session, conversation, written_at=too_late, policy=policy) is None
        reopened = reopen_if_recent(uow.session, conversation, policy=policy)
        uow.commit()
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, reopened.id)
        assert (ticket.id, ticket.reopen_count, ticket.resolved_at) == (desk["ticket"], 1, None)
        assert ticket.status is TicketStatus.assigned
        assert uow.session.get(Conversation, ticket.conversation_id).bot_paused is True
        assert events_of(uow.session, ticket, TicketEventKind.reopened)[0].data == {"reason": "customer wrote again"}
        with pytest.raises(Conflict):
            reopen(uow.session, ticket_id=ticket.id)


def test_a_complaint_after_resolution_reopens_but_a_rating_or_thanks_does_not(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        resolve(uow.session, ticket_id=desk["ticket"], actor=uow.session.get(User, desk["supervisor"]))
        uow.commit()
    turns = [
        Turn(event_key=f"k{n}", sender_id="telegram:777", speaker=speaker, text=text, intent=intent)
        for n, (speaker, text, intent) in enumerate(
            [
                (Speaker.bot, "请为本次服务打分", None),
                (Speaker.customer, "5", "give_rating"),
                (Speaker.customer, "谢谢", "thanks"),
            ]
        )
    ]
    with kefu.uow() as uow:
        assert [
            reopen_on_customer_turn(uow.session, i, shipped_policy()) for i in record_turns(uow.session, turns)
        ] == [None] * 3
        uow.commit()
    again = Turn(event_key="k9", sender_id="telegram:777", speaker=Speaker.customer, text="还没到！", intent="complain")
    with kefu.uow() as uow:
        (interaction,) = record_turns(uow.session, [again])
        reopened = reopen_on_customer_turn(uow.session, interaction, shipped_policy())
        uow.commit()
    assert reopened is not None and reopened.id == desk["ticket"]
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, desk["ticket"]).status is not TicketStatus.resolved


def _log(kefu: Kefu, *turns: Turn) -> list[Ticket | None]:
    """Store each turn in a batch of its own (as separate replicas would) and run the reopen rule on it."""
    outcomes = []
    for turn in turns:
        with kefu.uow() as uow:
            (interaction,) = record_turns(uow.session, [turn])
            outcomes.append(reopen_on_customer_turn(uow.session, interaction, shipped_policy()))
            uow.commit()
    return outcomes


def test_whether_a_complaint_answers_the_survey_is_read_from_the_stored_turn_before_it(
    kefu: Kefu, desk: dict[str, int]
) -> None:
    with kefu.uow() as uow:
        resolve(uow.session, ticket_id=desk["ticket"], actor=uow.session.get(User, desk["supervisor"]))
        uow.commit()
    start = utcnow()
    sender = "telegram:777"

    def said(n: int, speaker: Speaker, text: str, **details: str) -> Turn:
        return Turn(f"s{n}", sender, speaker, text, created_at=start + timedelta(seconds=n), **details)

    survey, rude = (
        said(1, Speaker.bot, "请打分", response="utter_ask_csat"),
        said(3, Speaker.customer, "太差", intent="complain"),
    )
    # Stored late (another replica's buffer), the complaint still follows the question in the time it was said.
    assert _log(kefu, said(2, Speaker.customer, "1分", intent="give_rating"), survey, rude) == [None, None, None]
    comment = said(4, Speaker.bot, "哪里可以做得更好？", response="utter_ask_csat_comment")
    assert _log(kefu, comment, said(5, Speaker.customer, "客服态度太差", intent="complain")) == [None, None]
    with kefu.uow() as uow:
        assert uow.session.get(Ticket, desk["ticket"]).status is TicketStatus.resolved
    agent_asks = said(6, Speaker.agent, "Which part broke?")
    (_, reopened) = _log(kefu, agent_asks, said(7, Speaker.customer, "屏幕又坏了", intent="complain"))
    assert reopened is not None and reopened.id == desk["ticket"]


def test_escalation_raises_priority_alerts_and_reassigns_once_per_deadline(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, desk["ticket"])
        window = ticket.first_response_due_at - ticket.created_at
        assert escalate_due(uow.session, ticket.created_at + window * 0.5, policy=shipped_policy()) == []
        almost_late = ticket.created_at + window * 0.85
        assert [t.id for t in escalate_due(uow.session, almost_late, policy=shipped_policy())] == [ticket.id]
        assert escalate_due(uow.session, almost_late, policy=shipped_policy()) == []
        uow.commit()
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, desk["ticket"])
        assert (ticket.priority, ticket.escalation_level, ticket.assignee_id) == (2, 1, desk["spare"])
        kinds = [e.kind for e in events_of(uow.session, ticket)]
        assert kinds[-4:] == [
            TicketEventKind.escalated,
            TicketEventKind.priority_changed,
            TicketEventKind.requeued,
            TicketEventKind.assigned,
        ]
        alert = events_of(uow.session, ticket, TicketEventKind.escalated)[0]
        assert alert.data["notify"] == "supervisor" and alert.data["deadline"] == "first_response"
        late_for_resolution = ticket.resolution_due_at - timedelta(minutes=1)
        assert [t.id for t in escalate_due(uow.session, late_for_resolution, policy=shipped_policy())] == [ticket.id]
        assert uow.session.get(Ticket, ticket.id).escalation_level == 2


def test_agents_see_their_teams_tickets_and_supervisors_see_all(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        billing_ticket = new_ticket(uow.session, "payment_billing").id
        uow.commit()
    with kefu.uow() as uow:
        agent, supervisor = user_of(uow.session, desk["agent"]), uow.session.get(User, desk["supervisor"])
        assert [t.id for t in visible_tickets(uow.session, agent)] == [desk["ticket"]]
        assert {t.id for t in visible_tickets(uow.session, supervisor)} == {desk["ticket"], billing_ticket}
        assert [t.id for t in visible_tickets(uow.session, supervisor, team_id=desk["billing"])] == [billing_ticket]
        with pytest.raises(Forbidden):
            ensure_can_see(agent, uow.session.get(Ticket, billing_ticket))
        agent.active = False
        with pytest.raises(Forbidden):
            ensure_can_see(agent, uow.session.get(Ticket, desk["ticket"]))


def test_an_escalated_ticket_nobody_else_can_take_stays_with_its_agent(kefu: Kefu, desk: dict[str, int]) -> None:
    with kefu.uow() as uow:
        uow.session.get(Agent, desk["spare"]).presence = Presence.offline
        ticket = uow.session.get(Ticket, desk["ticket"])
        escalate_due(uow.session, ticket.first_response_due_at, policy=shipped_policy())
        uow.commit()
    with kefu.uow() as uow:
        ticket = uow.session.get(Ticket, desk["ticket"])
        assert (ticket.status, ticket.assignee_id, ticket.priority) == (TicketStatus.assigned, desk["agent"], 2)
        assert events_of(uow.session, ticket, TicketEventKind.requeued) == []
        assert uow.session.get(Agent, desk["agent"]).open_tickets == 1
