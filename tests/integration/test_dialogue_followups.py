"""Real Rasa + action server: an order number from earlier is confirmed before a complaint uses it, and at the CSAT
comment question a request for a human, a status or FAQ question or a new complaint wins over storing a comment."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.models import Conversation, CsatRating, Interaction, Role, Ticket, TicketStatus, User
from router.delivery.rasa_api import RasaApi
from router.routing.agent_actions import resolve
from router.routing.tickets import find_ticket
from tests.support.crm import customer_tickets, one
from tests.support.rasa_stack import RasaStack
from tests.support.replies import TICKET_NUMBER, texts

pytestmark = pytest.mark.rasa


def say(stack: RasaStack, sender: str, *messages: str) -> list[str]:
    """Send the messages in turn; the bot's replies to each, joined."""
    return [texts(stack.send(sender, message)) for message in messages]


# sender, status question naming the order, complaint without a number, yes, the question's words.
CONFIRMED = {
    "zh": ("web:earlier-yes-zh", "我的订单 70070001 到哪了？", "收到的杯子是碎的，我要投诉", "是的", "70070001", "吗"),
    "en": (
        "earlier-yes-en",
        "where is order 70070002?",
        "the blender I got smells of burning plastic, I want to complain",
        "yes",
        "70070002",
        "is this about order",
    ),
}


@pytest.mark.parametrize("language", CONFIRMED)
def test_an_order_number_from_a_status_question_is_confirmed_and_yes_files_it(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, status, complaint, yes, order_number, question_words = CONFIRMED[language]
    _, asked, filed = say(rasa_stack, sender, status, complaint, yes)
    assert order_number in asked and question_words in asked.lower(), asked
    [ticket] = customer_tickets(stack_crm, sender)
    assert ticket.number in filed
    assert (ticket.order_number, ticket.description, ticket.language) == (order_number, complaint, language)


def test_an_unreadable_reply_to_the_confirmation_is_asked_again_and_loses_nothing(
    rasa_stack: RasaStack, stack_crm: Kefu
) -> None:
    sender = "web:earlier-emoji-zh"
    _, _, again, filed = say(rasa_stack, sender, "订单 70070007 到哪了", "我要投诉，东西坏了", "😀😀😀", "对")
    assert "70070007" in again and "吗" in again, again
    [ticket] = customer_tickets(stack_crm, sender)
    assert ticket.number in filed
    assert ticket.order_number == "70070007"


# sender, status question naming one order, bare complaint, no, the right number, what happened, "which order" words.
DENIED = {
    "zh": (
        "web:earlier-no-zh",
        "订单 70070003 怎么还没发货",
        "我要投诉",
        "不是",
        "70070004",
        "衣服洗一次就掉色了",
        "订单号",
    ),
    "en": (
        "earlier-no-en",
        "any news on my order 70070005?",
        "I want to make a complaint",
        "no",
        "70070006",
        "the jacket lost its colour after one wash",
        "order number",
    ),
}


@pytest.mark.parametrize("language", DENIED)
def test_no_to_the_earlier_order_number_asks_for_the_right_one(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, status, complaint, no, order_number, description, order_question = DENIED[language]
    _, confirm, asked, _, filed = say(rasa_stack, sender, status, complaint, no, order_number, description)
    assert re.search(r"\d{8}", status).group(0) in confirm, confirm
    assert order_question in asked.lower(), asked
    [ticket] = customer_tickets(stack_crm, sender)
    assert ticket.number in filed
    assert (ticket.order_number, ticket.description) == (order_number, description)


# sender, status question naming an order, a request for a human, the label's opening words.
HANDOFF_AFTER_STATUS = {
    "zh": ("web:handoff-earlier-zh", "我的订单 70080021 到哪了？", "转人工", "【对话中此前提到的订单"),
    "en": ("handoff-earlier-en", "where is order 70080022?", "talk to a human", "[Orders mentioned earlier"),
}


@pytest.mark.parametrize("language", HANDOFF_AFTER_STATUS)
def test_a_handoff_after_a_status_question_shows_its_order_labelled_not_as_the_tickets(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, status, human, label = HANDOFF_AFTER_STATUS[language]
    _, handed_off = say(rasa_stack, sender, status, human)
    [ticket] = customer_tickets(stack_crm, sender)
    assert ticket.number in handed_off, handed_off
    order_number = re.search(r"\d{8}", status).group(0)
    assert ticket.order_number is None
    context, note = ticket.description.rsplit("\n", 1)
    assert context == f"{status}\n{human}"
    assert note.startswith(label) and note.endswith(order_number), note


def test_a_handoff_mid_complaint_gives_the_ticket_the_order_number_answered_to_the_form(
    rasa_stack: RasaStack, stack_crm: Kefu
) -> None:
    sender = "web:handoff-mid-complaint-zh"
    say(rasa_stack, sender, "我要投诉", "70080023", "转人工")
    [ticket] = customer_tickets(stack_crm, sender)
    assert (ticket.order_number, ticket.description) == ("70080023", "我要投诉\n70080023\n转人工")


def resolve_and_ask_csat(stack: RasaStack, kefu: Kefu, sender: str, ticket_number: str) -> str:
    """An admin resolves the ticket, as on the console, and the router has the bot ask for a rating."""
    with kefu.uow() as uow:
        admin = uow.session.execute(select(User).where(User.role == Role.admin).limit(1)).scalar_one()
        resolve(uow.session, ticket_id=find_ticket(uow.session, ticket_number).id, actor=admin)
        uow.commit()
    rasa_api = RasaApi(stack.rasa_url, token=stack.rasa_token)
    try:
        return texts(rasa_api.ask_csat(sender, ticket_number))
    finally:
        rasa_api.close()


def low_rating_asked_for_a_comment(stack: RasaStack, kefu: Kefu, sender: str, human: str, score: str) -> Ticket:
    """A customer handed to a human, resolved, rating low: the bot now asks what we could have done better."""
    number = TICKET_NUMBER.search(texts(stack.send(sender, human))).group(0)
    assert re.search("1.*5", resolve_and_ask_csat(stack, kefu, sender, number))
    asked = texts(stack.send(sender, score))
    assert any(words in asked for words in ("做得更好", "done better")), asked
    return one(kefu, select(Ticket).where(Ticket.id == int(number[1:])))


def rating_of(kefu: Kefu, ticket: Ticket) -> CsatRating:
    return one(kefu, select(CsatRating).where(CsatRating.ticket_id == ticket.id))


HANDOFF_AT_COMMENT = {
    "zh": ("web:csat-human-zh", "转人工", "2分", "转人工", "排在第"),
    "en": ("csat-human-en", "talk to a human", "2", "talk to a human", "number"),
}


@pytest.mark.parametrize("language", HANDOFF_AT_COMMENT)
def test_a_human_asked_for_at_the_comment_question_is_a_handoff_not_a_comment(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, human, score, human_again, queue_words = HANDOFF_AT_COMMENT[language]
    rated = low_rating_asked_for_a_comment(rasa_stack, stack_crm, sender, human, score)
    handed_off = texts(rasa_stack.send(sender, human_again))
    assert TICKET_NUMBER.search(handed_off) and queue_words in handed_off, handed_off
    tracker = rasa_stack.tracker(sender)
    assert tracker["paused"]
    assert tracker["active_loop"].get("name") is None
    rating = rating_of(stack_crm, rated)
    assert (rating.score, rating.comment) == (2, "")
    assert any(ticket.status.value in ("queued", "assigned") for ticket in customer_tickets(stack_crm, sender))


STATUS_AT_COMMENT = {
    "zh": ("web:csat-status-zh", "我要人工客服", "1", "我的工单现在什么状态？", "工单"),
    "en": ("csat-status-en", "can I speak to a human please", "1", "what's the status of my ticket?", "ticket"),
}


@pytest.mark.parametrize("language", STATUS_AT_COMMENT)
def test_a_status_question_at_the_comment_question_is_answered_not_stored(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, human, score, question, status_words = STATUS_AT_COMMENT[language]
    rated = low_rating_asked_for_a_comment(rasa_stack, stack_crm, sender, human, score)
    answered = texts(rasa_stack.send(sender, question))
    assert status_words in answered.lower() and TICKET_NUMBER.search(answered), answered
    assert rasa_stack.tracker(sender)["active_loop"].get("name") is None
    assert (rating_of(stack_crm, rated).score, rating_of(stack_crm, rated).comment) == (1, "")


# sender, handoff, low score, the FAQ question, words of its answer; then a comment naming the same topic.
FAQ_AT_COMMENT = {
    "zh": ("web:csat-faq-zh", "转人工", "2分", "怎么退货？", "申请售后", "web:csat-faq-topic-zh", "退货流程太麻烦"),
    "en": (
        "csat-faq-en",
        "talk to a human",
        "2",
        "how do I return an item?",
        "Request after-sales",
        "csat-faq-topic-en",
        "the refund took too long",
    ),
}


@pytest.mark.parametrize("language", FAQ_AT_COMMENT)
def test_an_faq_question_at_the_comment_question_is_answered_not_stored(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, human, score, question, answer_words, _, _ = FAQ_AT_COMMENT[language]
    rated = low_rating_asked_for_a_comment(rasa_stack, stack_crm, sender, human, score)
    answered = texts(rasa_stack.send(sender, question))
    assert answer_words in answered, answered
    assert rasa_stack.tracker(sender)["active_loop"].get("name") is None
    wait_until_logged(stack_crm, sender, question)
    rating = rating_of(stack_crm, rated)
    assert (rating.score, rating.comment) == (2, "")
    # A question put to the survey is not the problem coming back: the ticket stays resolved.
    assert one(stack_crm, select(Ticket).where(Ticket.id == rated.id)).status is TicketStatus.resolved


@pytest.mark.parametrize("language", FAQ_AT_COMMENT)
def test_a_comment_naming_an_faq_topic_is_stored_as_the_comment(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    _, human, score, _, answer_words, sender, comment = FAQ_AT_COMMENT[language]
    rated = low_rating_asked_for_a_comment(rasa_stack, stack_crm, sender, human, score)
    thanked = texts(rasa_stack.send(sender, comment))
    assert any(words in thanked for words in ("转达", "passed that on")) and answer_words not in thanked, thanked
    assert (rating_of(stack_crm, rated).score, rating_of(stack_crm, rated).comment) == (2, comment)


NEW_COMPLAINT_AT_COMMENT = {
    "zh": ("web:csat-complaint-zh", "转人工", "2", "我还要投诉另一个订单，衣服洗一次就掉色", "没有"),
    "en": (
        "csat-complaint-en",
        "talk to a human",
        "2",
        "I also want to complain about another order, the lamp is broken",
        "none",
    ),
}


@pytest.mark.parametrize("language", NEW_COMPLAINT_AT_COMMENT)
def test_a_new_complaint_at_the_comment_question_is_filed_not_stored_as_the_comment(
    rasa_stack: RasaStack, stack_crm: Kefu, language: str
) -> None:
    sender, human, score, complaint, no_order = NEW_COMPLAINT_AT_COMMENT[language]
    rated = low_rating_asked_for_a_comment(rasa_stack, stack_crm, sender, human, score)
    asked, filed = say(rasa_stack, sender, complaint, no_order)
    assert rasa_stack.tracker(sender)["active_loop"].get("name") is None, asked
    newest = customer_tickets(stack_crm, sender)[-1]
    assert newest.number != rated.number and newest.number in filed, filed
    assert (newest.description, newest.order_number) == (complaint, None)
    assert rating_of(stack_crm, rated).comment == ""


SCORE_FIRST = {
    "en-thanks": ("csat-score-thanks-en", "talk to a human", "5, thanks a lot", 5),
    "en-complaint": ("csat-score-complaint-en", "talk to a human", "1, the agent was rude", 1),
    "zh-thanks": ("web:csat-score-thanks-zh", "转人工", "5分，谢谢", 5),
}


@pytest.mark.parametrize("case", SCORE_FIRST)
def test_a_score_followed_by_thanks_or_a_complaint_is_the_rating_with_its_comment(
    rasa_stack: RasaStack, stack_crm: Kefu, case: str
) -> None:
    sender, human, rating_text, score = SCORE_FIRST[case]
    number = TICKET_NUMBER.search(texts(rasa_stack.send(sender, human))).group(0)
    resolve_and_ask_csat(rasa_stack, stack_crm, sender, number)
    thanked = texts(rasa_stack.send(sender, rating_text))
    assert any(words in thanked for words in ("感谢您的评价", "Thank you for your feedback")), thanked
    rated = one(stack_crm, select(Ticket).where(Ticket.id == int(number[1:])))
    rating = rating_of(stack_crm, rated)
    assert (rating.score, rating.comment) == (score, rating_text)
    wait_until_logged(stack_crm, sender, rating_text)
    # Feedback on the resolved ticket, even "1, the agent was rude", is not the problem coming back.
    assert one(stack_crm, select(Ticket).where(Ticket.id == rated.id)).status is TicketStatus.resolved


def wait_until_logged(kefu: Kefu, sender: str, text: str, timeout_s: float = 15.0) -> None:
    """The event broker logs turns off the reply path: wait until the customer's turn is in the CRM."""
    statement = (
        select(Interaction.id)
        .join(Conversation, Interaction.conversation_id == Conversation.id)
        .where(Conversation.sender_id == sender, Interaction.text == text)
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with kefu.uow() as uow:
            if uow.session.execute(statement).first() is not None:
                return
        time.sleep(0.1)
    pytest.fail(f"{text!r} from {sender} was not logged within {timeout_s} s")


def test_a_number_when_no_rating_was_asked_for_stores_no_rating(rasa_stack: RasaStack, stack_crm: Kefu) -> None:
    sender = "no-rating-asked-en"
    replies = say(rasa_stack, sender, "I have 3 questions", "5")
    assert all("feedback" not in reply.lower() for reply in replies), replies
    with stack_crm.uow() as uow:
        assert (
            uow.session.execute(select(CsatRating).join(Conversation).where(Conversation.sender_id == sender)).first()
            is None
        )
