"""At "what could we have done better?" a request for a human, a status or FAQ question or a new complaint is no
comment."""

from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.csat import ValidateCsatCommentForm, asks_for_something_else
from tests.support.actions import user_event

DOMAIN = {"forms": {"csat_comment_form": {"required_slots": ["csat_comment"]}}}


def comment_turn(text: str, intent: str) -> Tracker:
    """The tracker the comment form's validation gets: the reply, extracted as the comment candidate."""
    message = user_event(text, intent)
    return Tracker(
        sender_id="web:csat",
        slots={"language": "zh", "requested_slot": "csat_comment", "csat_comment_wanted": True, "csat_comment": text},
        latest_message=message["parse_data"],
        events=[message, {"event": "slot", "name": "csat_comment", "value": text}],
        paused=False,
        followup_action=None,
        active_loop={"name": "csat_comment_form"},
        latest_action_name="action_listen",
    )


def validate(text: str, intent: str) -> tuple[dict[str, object], bool]:
    """Slots the validation sets and whether it hands the turn back to the rules."""
    events = asyncio.run(ValidateCsatCommentForm().run(CollectingDispatcher(), comment_turn(text, intent), DOMAIN))
    slots = {event["name"]: event["value"] for event in events if event["event"] == "slot"}
    return slots, any(event["event"] == "action_execution_rejected" for event in events)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("转人工", "request_human"),
        ("我要人工客服", "request_human"),
        ("talk to a human", "request_human"),
        ("agent please", "request_human"),
        ("我的退款什么时候到账？", "check_status"),
        ("where is my refund?", "check_status"),
        ("我还要投诉另一个订单，衣服洗一次就掉色", "complain"),
        ("I want to complain about another order", "complain"),
        ("怎么退货？", "ask_faq"),
        ("退款多久到账", "ask_faq"),
        ("how do I return an item?", "ask_faq"),
        ("what is your return policy?", "ask_faq"),
    ],
)
def test_a_request_instead_of_a_comment_stores_none_and_goes_to_the_rules(text: str, intent: str) -> None:
    slots, rejected = validate(text, intent)
    assert rejected
    assert (slots.pop("csat_comment"), slots.pop("csat_comment_wanted")) == (None, None)
    # A new complaint's words describe it in the complaint form the rules start next.
    assert slots == ({"complaint_description": text} if intent == "complain" else {})


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("your agent was rude to me", "complain"),
        ("the agent was slow", "request_human"),
        ("客服小姐姐态度不好", "request_human"),
        ("客服回复太慢了", "complain"),
        ("the parcel took two weeks", "check_status"),
        ("不用了", "deny"),
        # Naming a topic the FAQ covers, or asking only for effect, is still saying what went wrong.
        ("the refund took too long", "ask_faq"),
        ("退货流程太麻烦", "ask_faq"),
        ("退款怎么这么久", "ask_faq"),
        ("why was the refund so slow?", "ask_faq"),
        ("how come the return took two weeks?", "ask_faq"),
    ],
)
def test_what_went_wrong_is_the_comment(text: str, intent: str) -> None:
    slots, rejected = validate(text, intent)
    assert not rejected
    assert slots["csat_comment"] == text
    assert not asks_for_something_else(text, intent)
