"""A handoff's ticket carries the order the customer gave for this request; one named earlier is only mentioned."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker

from actions.handoff import ActionHandoff, OrderNumbers, order_numbers
from router.bootstrap import Kefu
from tests.support.actions import make_tracker, run, submit, tickets, user_event

COMPLAINT_FORM_STARTS = {"event": "active_loop", "name": "complaint_form"}
FORM_ENDS = {"event": "active_loop", "name": None}


def slot(name: str, value: object) -> dict[str, Any]:
    """A slot event as the tracker the action server receives carries it."""
    return {"event": "slot", "name": name, "value": value}


def naming(text: str, intent: str, order_number: str) -> dict[str, Any]:
    """A customer message whose order_number entity the NLU found."""
    return user_event(text, intent, entities=[{"entity": "order_number", "value": order_number}])


def status_question(order_number: str) -> list[dict[str, Any]]:
    """ "Where is order N?": the NLU's entity fills the order_number slot outside any form."""
    return [naming(f"where is order {order_number}?", "check_status", order_number), slot("order_number", order_number)]


def handoff_tracker(events: list[dict[str, Any]], sender_id: str = "web:orders") -> Tracker:
    """The tracker action_handoff gets: the events, with the slots they leave behind."""
    slots = {event["name"]: event["value"] for event in events if event["event"] == "slot"}
    return make_tracker(events, slots=slots, sender_id=sender_id)


HUMAN = user_event("转人工", "request_human")


def test_an_order_from_an_earlier_status_question_is_mentioned_not_attached() -> None:
    tracker = handoff_tracker([*status_question("70080001"), HUMAN])
    assert order_numbers(tracker) == OrderNumbers(given=None, earlier=("70080001",))


def test_an_order_named_in_the_handoff_request_itself_is_the_tickets() -> None:
    tracker = handoff_tracker(
        [*status_question("70080001"), naming("转人工，订单70080002没到", "request_human", "70080002")]
    )
    assert order_numbers(tracker) == OrderNumbers(given="70080002", earlier=("70080001",))


def test_an_order_answered_to_the_complaint_form_is_the_tickets() -> None:
    answered = [COMPLAINT_FORM_STARTS, naming("70080003", "inform", "70080003"), slot("order_number", "70080003")]
    tracker = handoff_tracker([*answered, HUMAN, FORM_ENDS])
    assert order_numbers(tracker) == OrderNumbers(given="70080003", earlier=())


def earlier_order_awaiting_confirmation(order_number: str) -> list[dict[str, Any]]:
    """A status question, then a complaint: the form parks the number and asks "is this about order N?"."""
    parked = [slot("order_number", None), slot("order_number_candidate", order_number)]
    return [*status_question(order_number), user_event("我要投诉", "complain"), COMPLAINT_FORM_STARTS, *parked]


def test_an_earlier_order_the_complaint_form_still_asks_about_is_only_mentioned() -> None:
    tracker = handoff_tracker([*earlier_order_awaiting_confirmation("70080004"), HUMAN, FORM_ENDS])
    assert order_numbers(tracker) == OrderNumbers(given=None, earlier=("70080004",))


def test_an_earlier_order_the_customer_confirmed_for_the_complaint_is_the_tickets() -> None:
    confirmed = [user_event("是的", "affirm"), slot("order_number", "70080005"), slot("order_number_candidate", None)]
    tracker = handoff_tracker([*earlier_order_awaiting_confirmation("70080005"), *confirmed, HUMAN, FORM_ENDS])
    assert order_numbers(tracker) == OrderNumbers(given="70080005", earlier=())


def test_after_a_filed_complaint_only_orders_mentioned_remain_most_recent_last_at_most_three() -> None:
    filed = [COMPLAINT_FORM_STARTS, naming("订单70080006", "inform", "70080006"), slot("order_number", "70080006")]
    filed += [FORM_ENDS, slot("order_number", None)]
    statuses = [*status_question("70080007"), *status_question("70080008"), *status_question("70080007")]
    tracker = handoff_tracker([*filed, *status_question("70080009"), *statuses, HUMAN])
    assert order_numbers(tracker) == OrderNumbers(given=None, earlier=("70080009", "70080008", "70080007"))


def test_an_order_carried_over_from_an_earlier_session_is_only_mentioned() -> None:
    carried = [{"event": "session_started"}, slot("order_number", "70080010")]
    assert order_numbers(handoff_tracker([*carried, HUMAN])) == OrderNumbers(given=None, earlier=("70080010",))


def test_no_order_anywhere_or_none_given_leaves_both_empty() -> None:
    declined = [COMPLAINT_FORM_STARTS, user_event("没有", "deny"), slot("order_number", "none")]
    assert order_numbers(handoff_tracker([HUMAN])) == OrderNumbers(given=None, earlier=())
    assert order_numbers(handoff_tracker([*declined, HUMAN, FORM_ENDS])) == OrderNumbers(given=None, earlier=())


@pytest.mark.parametrize(
    ("language", "label"),
    [("zh", "【对话中此前提到的订单，客户未确认与本次请求有关】70080011"), ("en", "[Orders mentioned earlier")],
)
def test_the_agent_sees_the_earlier_order_labelled_and_the_ticket_has_none(
    crm: Kefu, language: str, label: str
) -> None:
    events = [*status_question("70080011"), user_event("talk to a human", "request_human")]
    tracker = make_tracker(
        events, slots={"language": language, "order_number": "70080011"}, sender_id=f"web:{language}"
    )
    run(ActionHandoff(crm), tracker)
    [ticket] = tickets(crm)
    assert ticket.order_number is None
    context, note = ticket.description.rsplit("\n", 1)
    assert context == "where is order 70080011?\ntalk to a human"
    assert note.startswith(label) and note.endswith("70080011"), note


def test_joining_an_open_ticket_leaves_its_description_alone(crm: Kefu) -> None:
    submit(crm, "web:joined", "衣服洗一次就掉色", "none")
    events = [*status_question("70080012"), HUMAN]
    run(ActionHandoff(crm), make_tracker(events, slots={"order_number": "70080012"}, sender_id="web:joined"))
    [ticket] = tickets(crm)
    assert (ticket.description, ticket.order_number) == ("衣服洗一次就掉色", None)


def test_digits_of_a_passport_number_are_neither_the_tickets_order_nor_mentioned() -> None:
    passport = [{"entity": "order_number", "value": "73920418"}]
    events = [user_event("我的护照E73920418，转人工", "request_human", entities=passport)]
    assert order_numbers(make_tracker(events)) == OrderNumbers(given=None, earlier=())
