"""Whole conversations through the real Rasa server and action server, with the CRM rows they leave behind."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.models import Conversation, CsatRating, Interaction, Speaker, Ticket
from router.delivery.rasa_api import RasaApi
from tests.support.crm import customer_tickets, one
from tests.support.rasa_stack import RasaStack
from tests.support.replies import TICKET_NUMBER, texts

pytestmark = pytest.mark.rasa

LOG_WAIT_S = 30


def logged(kefu: Kefu, sender_id: str, expected_customer_turns: int) -> list[Interaction]:
    """The sender's logged turns once the event broker has written them."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        with kefu.uow() as uow:
            rows = list(
                uow.session.execute(
                    select(Interaction)
                    .join(Conversation, Conversation.id == Interaction.conversation_id)
                    .where(Conversation.sender_id == sender_id)
                    .order_by(Interaction.created_at, Interaction.id)
                ).scalars()
            )
            uow.session.expunge_all()
        customer = [row for row in rows if row.speaker is Speaker.customer]
        if len(customer) >= expected_customer_turns or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


FLOWS = {
    "zh": {
        "sender": "web:flow-zh",
        "complaint": "买的吹风机用一次就坏了，太坑了",
        "order": "订单号是 202311301234",
        "order_number": "202311301234",
        "status": "我的投诉处理得怎么样了",
        "human": "我要人工客服",
        "rating": "5分，挺满意",
        "score": 5,
        "created_words": "工单",
    },
    "en": {
        "sender": "flow-en",
        "complaint": "the shoes you sent are the wrong size and the box was ripped",
        "order": "my order number is 99001122",
        "order_number": "99001122",
        "status": "where is my parcel, ordered last monday",
        "human": "let me talk to a real agent please",
        "rating": "4 stars",
        "score": 4,
        "created_words": "ticket",
    },
}


@pytest.mark.parametrize("language", FLOWS)
def test_customer_complains_asks_status_asks_for_a_human_and_rates(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str, tmp_path: Path
) -> None:
    flow = FLOWS[language]
    sender = flow["sender"]

    asked = rasa_stack.send(sender, flow["complaint"])
    assert asked, rasa_stack.logs()
    created = texts(rasa_stack.send(sender, flow["order"]))
    assert flow["created_words"] in created.lower(), f"{created}\n{rasa_stack.tracker(sender)['events'][-8:]}"
    number = TICKET_NUMBER.search(created).group(0)

    status = texts(rasa_stack.send(sender, flow["status"]))
    assert number in status

    queued = texts(rasa_stack.send(sender, flow["human"]))
    assert re.search(r"\d", queued), queued
    assert rasa_stack.tracker(sender)["paused"]
    assert rasa_stack.send(sender, "hello?") == [], "a paused bot stays quiet while the agent has the customer"

    # The agent resolves the ticket: the router resumes the bot, which asks for a rating.
    rasa_api = RasaApi(rasa_stack.rasa_url, token=rasa_stack.rasa_token)
    asked_rating = texts(rasa_api.ask_csat(sender, number))
    rasa_api.close()
    assert re.search("1.*5", asked_rating), asked_rating
    thanked = rasa_stack.send(sender, flow["rating"])
    assert thanked, [(e["event"], e.get("name") or e.get("text")) for e in rasa_stack.tracker(sender)["events"][-12:]]

    ticket = one(stack_crm, select(Ticket).where(Ticket.order_number == flow["order_number"]))
    assert ticket.number == number
    assert ticket.language == language
    assert ticket.category in {"delivery", "refund_return", "product_quality"}
    rating = one(stack_crm, select(CsatRating).where(CsatRating.ticket_id == ticket.id))
    assert rating.score == flow["score"]

    rows = logged(stack_crm, sender, expected_customer_turns=7)
    customer = [row for row in rows if row.speaker is Speaker.customer]
    bot = [row for row in rows if row.speaker is Speaker.bot]
    assert [row.text for row in customer][:4] == [flow["complaint"], flow["order"], flow["status"], flow["human"]]
    assert customer[0].intent == "complain"
    assert customer[3].intent == "request_human"
    assert all(row.confidence is not None and row.language == language for row in customer[:4])
    assert any(number in row.text for row in bot)
    assert all(row.latency_ms is not None and row.latency_ms >= 0 for row in bot)
    assert any(row.speaker is Speaker.system and row.intent == "EXTERNAL_ticket_resolved" for row in rows)
    assert {row.conversation_id for row in rows} == {ticket.conversation_id}


def conversation(stack: RasaStack, sender: str, *messages: str) -> list[str]:
    """Send the messages in turn; the bot's replies to each, joined."""
    return [texts(stack.send(sender, message)) for message in messages]


DESCRIPTION_FOR_ORDER = {
    "zh": ("web:describes-zh", "我要投诉", "东西坏了，我要退款", "不记得了", "订单号", "记下"),
    "en": (
        "describes-en",
        "I want to make a complaint",
        "the parcel arrived broken",
        "I don't know it",
        "order",
        "noted",
    ),
}


@pytest.mark.parametrize("language", DESCRIPTION_FOR_ORDER)
def test_a_description_given_for_the_order_number_is_kept_and_i_dont_know_counts_as_none(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, opener, description, dont_know, order_word, noted_word = DESCRIPTION_FOR_ORDER[language]
    asked, noted, filed = conversation(rasa_stack, sender, opener, description, dont_know)
    assert order_word in asked.lower()
    # No fallback: the description is acknowledged and the order number asked for once more, saying "none" will do.
    assert noted_word in noted.lower() and order_word in noted.lower(), noted
    assert ("没有" if language == "zh" else "none") in noted.lower()
    [ticket] = customer_tickets(stack_crm, sender)
    assert ticket.number in filed
    assert (ticket.description, ticket.order_number, ticket.language) == (description, None, language)
    assert rasa_stack.tracker(sender)["active_loop"].get("name") is None


MID_FORM_QUESTION = {
    "zh": ("web:asks-zh", "我要投诉", "退款一般几天到账啊？", "88800011", "买的杯子收到就是裂的", "到账"),
    "en": (
        "asks-en",
        "I want to make a complaint",
        "how long does a refund take?",
        "88800012",
        "the kettle leaks",
        "business days",
    ),
}


@pytest.mark.parametrize("language", MID_FORM_QUESTION)
def test_a_question_mid_complaint_is_answered_and_the_form_resumes(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, opener, question, order_number, description, answer_word = MID_FORM_QUESTION[language]
    _, answered = conversation(rasa_stack, sender, opener, question)
    assert answer_word in answered.lower(), answered
    assert rasa_stack.tracker(sender)["active_loop"].get("name") == "complaint_form"
    assert rasa_stack.tracker(sender)["slots"]["requested_slot"] == "order_number"
    _, filed = conversation(rasa_stack, sender, order_number, description)
    [ticket] = customer_tickets(stack_crm, sender)
    assert ticket.number in filed
    assert (ticket.order_number, ticket.description) == (order_number, description)


CANCELLATIONS = {
    "zh": ("web:cancels-zh", "我要投诉", "算了，不投诉了"),
    "en": ("cancels-en", "I want to make a complaint", "never mind"),
}


@pytest.mark.parametrize("language", CANCELLATIONS)
def test_cancel_leaves_the_complaint_politely_without_a_ticket(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, opener, cancel = CANCELLATIONS[language]
    _, left = conversation(rasa_stack, sender, opener, cancel)
    assert ("先不登记" if language == "zh" else "haven't registered") in left, left
    tracker = rasa_stack.tracker(sender)
    assert tracker["active_loop"].get("name") is None
    assert tracker["slots"]["complaint_cancelled"] is None
    assert customer_tickets(stack_crm, sender) == []


def test_a_ticket_number_shows_its_status_only_to_the_customer_who_owns_it(
    rasa_stack: RasaStack, stack_crm: Kefu
) -> None:
    owner, stranger = "web:owner-of-ticket", "web:stranger-to-ticket"
    filed = conversation(rasa_stack, owner, "my order 55500099 never arrived, I want to complain")[0]
    number = TICKET_NUMBER.search(filed).group(0)
    own = texts(rasa_stack.send(owner, f"what's the status of ticket {number}?"))
    theirs = texts(rasa_stack.send(stranger, f"what's the status of ticket {number}?"))
    unknown = texts(rasa_stack.send(stranger, "what's the status of ticket T999999?"))
    assert number in own and any(word in own for word in ("waiting", "assigned")), own
    # Another customer's ticket gets exactly the answer an unknown number gets: nothing about it leaks.
    assert theirs == unknown.replace("T999999", number), (theirs, unknown)
    assert not any(word in theirs for word in ("waiting", "assigned", "handled", "resolved", "closed"))
    assert rasa_stack.tracker(stranger)["slots"]["ticket_number"] is None


LOW_RATINGS = {
    "zh": ("web:rates-low-zh", "转人工", "2分", "做得更好", "客服回复太慢了", "转达"),
    "en": ("rates-low-en", "talk to a human", "2", "done better", "the agent was slow", "passed that on"),
}


@pytest.mark.parametrize("language", LOW_RATINGS)
def test_a_low_rating_without_a_comment_is_asked_what_went_wrong(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, human, score, asked_words, comment, thanked_words = LOW_RATINGS[language]
    handed_off = texts(rasa_stack.send(sender, human))
    number = TICKET_NUMBER.search(handed_off).group(0)
    rasa_api = RasaApi(rasa_stack.rasa_url, token=rasa_stack.rasa_token)
    rasa_api.ask_csat(sender, number)
    rasa_api.close()
    asked = texts(rasa_stack.send(sender, score))
    assert asked_words in asked, asked
    thanked = texts(rasa_stack.send(sender, comment))
    assert thanked_words in thanked, thanked
    [ticket] = customer_tickets(stack_crm, sender)
    rating = one(stack_crm, select(CsatRating).where(CsatRating.ticket_id == ticket.id))
    assert (rating.score, rating.comment) == (2, comment)


ALL_IN_ONE = {
    "zh": ("web:all-in-one-zh", "我要投诉，订单12345678一直没发货", "12345678", "订单号"),
    "en": ("all-in-one-en", "I want to complain, order 12345679 never shipped", "12345679", "order number"),
}


@pytest.mark.parametrize("language", ALL_IN_ONE)
def test_a_complaint_with_its_order_number_is_filed_without_asking_again(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, complaint, order_number, order_question = ALL_IN_ONE[language]
    filed = texts(rasa_stack.send(sender, complaint))
    assert order_question not in filed.lower(), filed
    [ticket] = customer_tickets(stack_crm, sender)
    assert ticket.number in filed
    assert (ticket.order_number, ticket.description) == (order_number, complaint)
