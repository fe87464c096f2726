"""The complaint form reads replies as a human agent would: a description, "I don't know", a question or "cancel"."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.complaint import ActionCancelComplaint, ValidateComplaintForm
from actions.complaint_answers import Reply, is_descriptive, is_question, read_description_reply, read_order_reply
from tests.support.actions import run, user_event
from tests.support.rasa_stack import PROJECT_ROOT

FORM = {"name": "complaint_form"}
# The part of the domain the action server gets from Rasa that the validation reads: the real form's slots.
DOMAIN = {
    "forms": {
        "complaint_form": yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))["forms"][
            "complaint_form"
        ]
    }
}


def form_turn(
    text: str, intent: str, requested: str, slots: dict[str, Any] | None = None, entities: list[dict] | None = None
) -> Tracker:
    """The tracker the form's validation gets: the reply, then the slot candidates Rasa extracted from it."""
    candidates = {requested: text}
    candidates.update({entity["entity"]: entity["value"] for entity in entities or [] if entity["entity"] == requested})
    message = user_event(text, intent, entities=entities)
    events = [message, *({"event": "slot", "name": name, "value": value} for name, value in candidates.items())]
    return Tracker(
        sender_id="web:form",
        slots={"language": "zh", "requested_slot": requested, **(slots or {}), **candidates},
        latest_message=message["parse_data"],
        events=events,
        paused=False,
        followup_action=None,
        active_loop=FORM,
        latest_action_name="action_listen",
    )


def validate_and_ask(tracker: Tracker) -> tuple[dict[str, Any], list[str], bool, str | None]:
    """Slots the validation sets, the responses it says, whether it hands the turn back, and the slot asked next."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ValidateComplaintForm().run(dispatcher, tracker, DOMAIN))
    slots = {event["name"]: event["value"] for event in events if event["event"] == "slot"}
    rejected = any(event["event"] == "action_execution_rejected" for event in events)
    asked = slots.pop("requested_slot", tracker.get_slot("requested_slot"))
    return slots, [message["response"] for message in dispatcher.messages], rejected, asked


def validate(tracker: Tracker) -> tuple[dict[str, Any], list[str], bool]:
    """Slots the validation sets, the responses it says, and whether it hands the turn back to the rules."""
    slots, said, rejected, _ = validate_and_ask(tracker)
    return slots, said, rejected


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("the parcel arrived broken", "complain"),
        ("东西坏了，我要退款", "ask_faq"),
        ("my parcel never came", "check_status"),
    ],
)
def test_a_description_instead_of_the_order_number_is_kept_and_the_number_asked_once_more(
    text: str, intent: str
) -> None:
    slots, said, rejected = validate(form_turn(text, intent, "order_number"))
    assert slots == {"order_number": None, "order_number_misses": 1, "complaint_description": text}
    assert said == ["utter_description_noted"]
    assert not rejected


def test_a_second_reply_without_a_number_files_the_complaint_without_one() -> None:
    tracker = form_turn("嗯嗯", "affirm", "order_number", slots={"order_number_misses": 1})
    slots, said, _ = validate(tracker)
    assert slots["order_number"] == "none"
    assert said == ["utter_filing_without_order_number"]


def test_more_detail_at_the_second_ask_is_added_to_the_description() -> None:
    earlier = {"order_number_misses": 1, "complaint_description": "快递盒子破了"}
    slots, _, _ = validate(form_turn("里面的杯子也碎了", "complain", "order_number", slots=earlier))
    assert slots["complaint_description"] == "快递盒子破了\n里面的杯子也碎了"
    assert slots["order_number"] == "none"


def test_an_unreadable_reply_is_told_so_and_asked_again() -> None:
    slots, said, _ = validate(form_turn("asdf", "nlu_fallback", "order_number"))
    assert slots == {"order_number": None, "order_number_misses": 1}
    assert said == ["utter_no_order_number_found"]


@pytest.mark.parametrize(
    ("text", "intent"), [("I don't know it", "deny"), ("忘了", "goodbye"), ("没有", "deny"), ("I forgot", "inform")]
)
def test_not_knowing_the_order_number_counts_as_none(text: str, intent: str) -> None:
    slots, said, _ = validate(form_turn(text, intent, "order_number"))
    assert slots == {"order_number": "none"}
    assert said == []


def test_an_order_number_with_the_problem_fills_both() -> None:
    entities = [{"entity": "order_number", "value": "12345"}]
    slots, _, _ = validate(form_turn("订单12345，东西一直没发货", "complain", "order_number", entities=entities))
    assert slots == {"order_number": "12345", "complaint_description": "订单12345，东西一直没发货"}


def test_a_lettered_order_number_in_free_text_is_read() -> None:
    slots, _, _ = validate(form_turn("it's SO-88123", "inform", "order_number"))
    assert slots == {"order_number": "SO-88123"}


@pytest.mark.parametrize(
    ("text", "intent", "requested"),
    [
        ("cancel", "nlu_fallback", "order_number"),
        ("never mind", "deny", "order_number"),
        ("算了", "deny", "order_number"),
        ("不投诉了", "complain", "order_number"),
        ("算了，不投诉了", "complain", "complaint_description"),
        ("bye", "goodbye", "complaint_description"),
    ],
)
def test_cancel_leaves_the_form_without_filing(text: str, intent: str, requested: str) -> None:
    slots, _, rejected, asked = validate_and_ask(form_turn(text, intent, requested))
    assert slots["complaint_cancelled"] is True
    assert asked is None
    assert not rejected


@pytest.mark.parametrize(
    ("text", "intent", "requested"),
    [
        ("退款一般几天到账啊？", "ask_faq", "order_number"),
        ("where is my other parcel?", "check_status", "order_number"),
        ("how do I return an item", "ask_faq", "complaint_description"),
    ],
)
def test_a_question_mid_form_is_handed_back_to_the_rules(text: str, intent: str, requested: str) -> None:
    slots, said, rejected = validate(form_turn(text, intent, requested))
    assert rejected
    assert slots == {requested: None}
    assert said == []


def test_a_statement_the_nlu_took_for_a_status_question_is_the_description() -> None:
    slots, _, rejected = validate(form_turn("the screen is cracked", "check_status", "complaint_description"))
    assert slots == {"complaint_description": "the screen is cracked"}
    assert not rejected


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("等了好几天了", False),
        ("快递十几天了还没到", False),
        ("前几天买的耳机坏了", False),
        ("用了没多久就坏了", False),
        ("没过多久屏幕就裂了", False),
        ("我几天前下的单，还没发货", False),
        ("都几天了还没到", False),
        ("几天后再联系我", False),
        ("退款要几天", True),
        ("几天能到", True),
        ("还要等多久", True),
        ("要多久才发货", True),
        ("还要过多久才到", True),
        ("发货要几天", True),
    ],
)
def test_a_few_days_is_told_and_how_many_days_is_asked(text: str, asks: bool) -> None:
    assert is_question(text) is asks


def test_waiting_days_told_mid_form_is_the_description() -> None:
    text = "等了好几天了，快递一直不动"
    slots, _, rejected = validate(form_turn(text, "check_status", "complaint_description"))
    assert slots == {"complaint_description": text}
    assert not rejected


def test_a_bare_complaint_is_asked_for_details() -> None:
    slots, _, _ = validate(form_turn("我要投诉", "complain", "complaint_description"))
    assert slots == {"complaint_description": None}


def test_dropping_the_complaint_is_confirmed_and_forgets_the_form() -> None:
    tracker = form_turn("算了", "deny", "order_number", slots={"complaint_description": "杯子碎了"})
    events, messages = run(ActionCancelComplaint(), tracker)
    assert [message["response"] for message in messages] == ["utter_complaint_cancelled"]
    assert SlotSet("complaint_description", None) in events
    assert SlotSet("complaint_cancelled", None) in events


@pytest.mark.parametrize(
    ("text", "intent", "kind"),
    [
        ("A2023-77", "inform", Reply.order_number),
        ("T000123", "inform", Reply.unreadable),
        ("I don't have an order number", "deny", Reply.no_order),
        ("不记得了", "deny", Reply.no_order),
        ("they cancelled my order without telling me", "complain", Reply.description),
        ("what's your return policy?", "ask_faq", Reply.question),
        ("nah", "deny", Reply.no_order),
    ],
)
def test_order_replies_are_read_by_meaning(text: str, intent: str, kind: Reply) -> None:
    assert read_order_reply(text, intent, None).kind is kind


def test_descriptions_need_substance_in_either_language() -> None:
    assert [
        is_descriptive(text) for text in ["东西坏了", "the kettle leaks", "asdf", "我要投诉", "I want to complain"]
    ] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert read_description_reply("my refund never came", "check_status").kind is Reply.description


def form_start(text: str, earlier_order_number: str, entities: list[dict] | None = None) -> Tracker:
    """The tracker at the form's start: the complaint, with an order number left from an earlier turn."""
    message = user_event(text, "complain", entities=entities)
    slots = {"order_number": earlier_order_number, "complaint_description": text}
    return Tracker(
        sender_id="web:form",
        slots={"language": "en", "requested_slot": None, **slots},
        latest_message=message["parse_data"],
        events=[message, *({"event": "slot", "name": name, "value": value} for name, value in slots.items())],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


def test_an_order_number_from_an_earlier_turn_is_asked_about_not_assumed() -> None:
    # "where is order 99887766?" then a complaint: that status question may have been about another order.
    text = "it's been two weeks and nobody answers, this is unacceptable"
    slots, said, _, asked = validate_and_ask(form_start(text, "99887766"))
    assert slots == {"order_number": None, "order_number_candidate": "99887766", "complaint_description": text}
    assert asked == "order_number_confirmation"
    assert said == []


def test_an_order_number_in_the_complaint_itself_is_taken_without_asking() -> None:
    text = "order 99887766 came broken"
    entities = [{"entity": "order_number", "value": "99887766"}]
    slots, _, _, asked = validate_and_ask(form_start(text, "99887766", entities=entities))
    assert slots["order_number"] == "99887766"
    assert slots.get("order_number_candidate") is None
    assert asked is None  # nothing left to ask: the complaint is filed


def confirmation_turn(text: str, intent: str, entities: list[dict] | None = None, **slots: Any) -> Tracker:
    """The reply to "is this about order 55500011?"."""
    earlier = {"order_number_candidate": "55500011", "complaint_description": "东西一直没发货", **slots}
    return form_turn(text, intent, "order_number_confirmation", slots=earlier, entities=entities)


@pytest.mark.parametrize(
    ("text", "intent"), [("是的", "affirm"), ("对", "inform"), ("yes", "affirm"), ("yep that's the one", "affirm")]
)
def test_yes_takes_the_earlier_order_number(text: str, intent: str) -> None:
    slots, said, _, asked = validate_and_ask(confirmation_turn(text, intent))
    assert slots["order_number"] == "55500011"
    assert slots["order_number_candidate"] is None
    assert said == []
    assert asked is None


@pytest.mark.parametrize(("text", "intent"), [("不是", "deny"), ("no", "deny"), ("不是这个订单", "inform")])
def test_no_asks_for_the_order_number(text: str, intent: str) -> None:
    slots, said, _, asked = validate_and_ask(confirmation_turn(text, intent))
    assert slots["order_number"] is None
    assert slots["order_number_candidate"] is None
    assert said == []
    assert asked == "order_number"


def test_another_number_instead_of_yes_or_no_is_the_order_number() -> None:
    entities = [{"entity": "order_number", "value": "66600022"}]
    tracker = confirmation_turn("不是，是66600022", "inform", entities=entities, order_number="66600022")
    slots, _, _, asked = validate_and_ask(tracker)
    assert slots["order_number"] == "66600022"
    assert slots["order_number_candidate"] is None
    assert asked is None


def test_none_at_the_confirmation_files_without_an_order_number() -> None:
    slots, _, _, asked = validate_and_ask(confirmation_turn("I don't have one", "inform"))
    assert slots["order_number"] == "none"
    assert asked is None


def test_a_question_at_the_confirmation_is_answered_first_and_the_confirmation_waits() -> None:
    slots, _, rejected, _ = validate_and_ask(confirmation_turn("退款一般几天到账？", "ask_faq"))
    assert rejected
    assert slots == {"order_number_confirmation": None}


def test_an_unreadable_reply_at_the_confirmation_asks_it_once_more_then_goes_on_without() -> None:
    slots, said, _, asked = validate_and_ask(confirmation_turn("😀😀😀", "nlu_fallback"))
    assert slots == {"order_number_confirmation": None, "order_number_misses": 1}
    assert (said, asked) == ([], "order_number_confirmation")
    slots, said, _, asked = validate_and_ask(confirmation_turn("？？", "nlu_fallback", order_number_misses=1))
    assert (slots["order_number"], slots["order_number_candidate"]) == ("none", None)
    assert said == ["utter_filing_without_order_number"]


def test_cancel_at_the_confirmation_drops_the_complaint() -> None:
    slots, _, _, asked = validate_and_ask(confirmation_turn("算了", "deny"))
    assert slots["complaint_cancelled"] is True
    assert slots["order_number_candidate"] is None
    assert asked is None


@pytest.mark.parametrize(
    "text", ["取消订单以后钱一直没退", "they cancelled my order and never refunded me", "不用了的东西也不给退"]
)
def test_cancel_words_inside_a_description_do_not_drop_the_complaint(text: str) -> None:
    assert read_description_reply(text, "complain").kind is Reply.description


@pytest.mark.parametrize(
    ("text", "intent", "description"),
    [
        ("订单12345，东西一直没发货", "check_status", "订单12345，东西一直没发货"),
        ("订单号是 12345", "inform", None),
        ("my order number is 12345", "inform", None),
        ("12345, the lid was cracked when it came", "inform", "12345, the lid was cracked when it came"),
    ],
)
def test_an_order_number_reply_that_also_says_what_happened_answers_both(
    text: str, intent: str, description: str | None
) -> None:
    entities = [{"entity": "order_number", "value": "12345"}]
    slots, _, _ = validate(form_turn(text, intent, "order_number", entities=entities))
    assert slots["order_number"] == "12345"
    assert slots.get("complaint_description") == description


def test_a_reply_that_is_just_the_order_number_fills_it() -> None:
    entities = [{"entity": "order_number", "value": "88800011"}]
    slots, said, _ = validate(form_turn("88800011", "inform", "order_number", entities=entities))
    assert slots == {"order_number": "88800011"}
    assert said == []


@pytest.mark.parametrize(
    ("text", "digits"),
    [("吹风机坏了，我要退款，护照E73920418", "73920418"), ("the kettle leaks, passport number 548213907", "548213907")],
)
def test_the_digits_of_a_passport_number_are_not_taken_for_the_order(text: str, digits: str) -> None:
    entities = [{"entity": "order_number", "value": digits}]
    slots, _, _, asked = validate_and_ask(form_turn(text, "complain", "order_number", entities=entities))
    assert slots == {"order_number": None, "order_number_misses": 1, "complaint_description": text}
    assert asked == "order_number", "the form asks for the order number once more, as for any description"
