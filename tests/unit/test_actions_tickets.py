"""Actions that open and read tickets (complaint, status, handoff) over a real CRM and a real triage model."""

from __future__ import annotations

from pathlib import Path

from rasa_sdk.events import ActionExecuted
from sqlalchemy import select

from actions.csat import ActionRecordCsat
from actions.handoff import ActionHandoff
from actions.status import ActionCheckStatus
from router.bootstrap import Kefu
from router.crm.conversations import current_conversation
from router.crm.models import Conversation, CsatRating, TicketStatus
from tests.support.actions import ASKED, make_tracker, run, submit, tickets, user_event
from tests.support.crm import make_kefu


def test_a_complaint_opens_a_triaged_ticket_and_tells_number_priority_and_wait(crm: Kefu) -> None:
    events, messages = submit(crm, "web:c1", "快递三天了还没到，物流一直不更新", "88812345")
    [ticket] = tickets(crm)
    assert (ticket.category, ticket.order_number, ticket.language) == ("delivery", "88812345", "zh")
    with crm.uow() as uow:
        assert uow.session.get(Conversation, ticket.conversation_id).sender_id == "web:c1"
    [message] = messages
    assert message["response"] == "utter_ticket_created"
    assert message["ticket_number"] == ticket.number
    assert message["priority"] == f"P{ticket.priority}"
    assert message["response_time"].endswith(("分钟", "小时", "天"))
    assert {"event": "slot", "name": "ticket_number", "value": ticket.number, "timestamp": None} in events
    assert {"event": "slot", "name": "complaint_description", "value": None, "timestamp": None} in events


def test_a_complaint_without_an_order_is_opened_in_english(crm: Kefu) -> None:
    _, messages = submit(crm, "c2", "the blender arrived broken and the lid is cracked", "none", language="en")
    [ticket] = tickets(crm)
    assert ticket.order_number is None
    assert ticket.category == "product_quality"
    assert messages[0]["response_time"].split()[1] in {"minute", "minutes", "hour", "hours", "day", "days"}


def test_without_a_trained_triage_model_the_customer_gets_an_apology(tmp_path: Path) -> None:
    kefu = make_kefu(f"sqlite:///{tmp_path / 'crm.db'}", tmp_path, models_dir=tmp_path / "no-models")
    _, messages = submit(kefu, "c3", "快递三天了还没到", "none")
    kefu.dispose()
    assert [message["response"] for message in messages] == ["utter_service_unavailable"]


def test_status_by_ticket_number_by_order_number_and_latest(crm: Kefu) -> None:
    submit(crm, "web:s1", "退款申请一周了还没到账", "555001")
    submit(crm, "web:s1", "吹风机用一次就坏了", "555002")
    first, second = tickets(crm)
    by_number = make_tracker(
        [
            user_event(
                f"{first.number}怎么样了", "check_status", entities=[{"entity": "ticket_number", "value": first.number}]
            )
        ],
        sender_id="web:s1",
    )
    by_order = make_tracker(
        [user_event("订单555002呢", "check_status", entities=[{"entity": "order_number", "value": "555002"}])],
        sender_id="web:s1",
    )
    latest = make_tracker([user_event("my complaint?", "check_status")], slots={"language": "en"}, sender_id="web:s1")
    answers = [run(ActionCheckStatus(crm), tracker)[1][0] for tracker in (by_number, by_order, latest)]
    assert [answer["ticket_number"] for answer in answers] == [first.number, second.number, second.number]
    assert answers[0]["status"] in {"排队等待客服处理", "已分配给客服"}
    assert answers[2]["status"] in {"waiting for an agent", "assigned to an agent"}


def test_status_without_any_ticket_says_none_found(crm: Kefu) -> None:
    _, messages = run(ActionCheckStatus(crm), make_tracker([user_event("我的投诉呢", "check_status")], sender_id="x"))
    assert messages[0]["response"] == "utter_no_ticket"
    with crm.uow() as uow:
        # A status question only reads: it creates no customer or conversation for a sender never seen.
        assert uow.session.execute(select(Conversation).where(Conversation.sender_id == "x")).first() is None


def test_handoff_opens_a_ticket_pauses_the_bot_and_tells_the_queue_position(crm: Kefu) -> None:
    events_before = [user_event("快递三天了还没到", "check_status"), user_event("转人工", "request_human")]
    events, messages = run(ActionHandoff(crm), make_tracker(events_before, sender_id="web:h1"))
    assert events[-2:] == [{"event": "pause", "timestamp": None}, ActionExecuted("action_listen")]
    [ticket] = tickets(crm)
    [message] = messages
    assert message["ticket_number"] == ticket.number
    if ticket.status is TicketStatus.queued:
        assert (message["response"], message["position"] >= 1) == ("utter_queue_position", True)
    else:  # an agent took it at once: no queue to wait in
        assert message["response"] == "utter_agent_has_ticket"
    assert ticket.description == "快递三天了还没到\n转人工"
    assert ticket.status in (TicketStatus.queued, TicketStatus.assigned)
    with crm.uow() as uow:
        assert current_conversation(uow.session, "web:h1").bot_paused


def test_handoff_after_a_complaint_joins_its_ticket(crm: Kefu) -> None:
    submit(crm, "web:h2", "衣服洗一次就掉色", "none")
    run(ActionHandoff(crm), make_tracker([user_event("人工客服", "request_human")], sender_id="web:h2"))
    assert len(tickets(crm)) == 1


def test_handoff_mid_complaint_gives_the_agent_the_order_number_and_forgets_the_form(crm: Kefu) -> None:
    answered = user_event("77700011", "inform", entities=[{"entity": "order_number", "value": "77700011"}])
    in_form = [{"event": "active_loop", "name": "complaint_form"}, answered]
    tracker = make_tracker(
        [
            *in_form,
            {"event": "slot", "name": "order_number", "value": "77700011"},
            user_event("转人工", "request_human"),
        ],
        slots={"order_number": "77700011", "complaint_description": "杯子碎了"},
        sender_id="web:h3",
    )
    events, _ = run(ActionHandoff(crm), tracker)
    [ticket] = tickets(crm)
    assert ticket.order_number == "77700011"
    assert {"event": "slot", "name": "order_number", "value": None, "timestamp": None} in events


def status_of(kefu: Kefu, sender_id: str, text: str, ticket_number: str) -> tuple[list, list]:
    entities = [{"entity": "ticket_number", "value": ticket_number}]
    return run(
        ActionCheckStatus(kefu),
        make_tracker([user_event(text, "check_status", entities=entities)], sender_id=sender_id),
    )


def test_status_by_ticket_number_shows_only_the_customers_own_tickets(crm: Kefu) -> None:
    submit(crm, "web:owner", "退款申请一周了还没到账", "555003")
    [theirs] = tickets(crm)
    own_events, own = status_of(crm, "web:owner", f"{theirs.number}怎么样了", theirs.number)
    other_events, other = status_of(crm, "web:stranger", f"{theirs.number}怎么样了", theirs.number)
    _, unknown = status_of(crm, "web:stranger", "T999999怎么样了", "T999999")
    assert own[0]["response"] == "utter_status"
    assert {"event": "slot", "name": "ticket_number", "value": theirs.number, "timestamp": None} in own_events
    # Someone else's ticket reads exactly like a number that does not exist: no status, no hint it is real.
    assert other == [{**unknown[0], "ticket_number": theirs.number}]
    assert other[0]["response"] == "utter_no_such_ticket"
    assert "status" not in other[0]
    assert other_events == [{"event": "slot", "name": "ticket_number", "value": None, "timestamp": None}]


def test_status_by_an_order_without_a_ticket_offers_to_register_it(crm: Kefu) -> None:
    entities = [{"entity": "order_number", "value": "4242424242"}]
    tracker = make_tracker([user_event("订单4242424242到哪了", "check_status", entities=entities)], sender_id="web:o1")
    _, messages = run(ActionCheckStatus(crm), tracker)
    assert (messages[0]["response"], messages[0]["order_number"]) == ("utter_no_ticket_for_order", "4242424242")


def test_a_rating_is_stored_on_the_ticket_the_bot_asked_about(crm: Kefu) -> None:
    submit(crm, "web:r1", "退款申请一周了还没到账", "555004")
    submit(crm, "web:r1", "吹风机用一次就坏了", "555005")
    first, _ = tickets(crm)
    rating = [ASKED, user_event("4分", "give_rating", entities=[{"entity": "rating", "value": "4"}])]
    run(ActionRecordCsat(crm), make_tracker(rating, slots={"ticket_number": first.number}, sender_id="web:r1"))
    run(ActionRecordCsat(crm), make_tracker(rating, slots={"ticket_number": first.number}, sender_id="web:r2"))
    with crm.uow() as uow:
        ratings = list(uow.session.execute(select(CsatRating).order_by(CsatRating.id)).scalars())
        assert ratings[0].ticket_id == first.id
        assert ratings[1].ticket_id != first.id, "another customer quoting the number does not rate that ticket"
