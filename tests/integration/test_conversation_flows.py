"""Whole conversations through the real Rasa server and action server, with the CRM rows they leave behind."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from router.bootstrap import Kefu, bootstrap
from router.crm.models import Conversation, CsatRating, Interaction, Speaker, Ticket
from router.delivery.rasa_api import RasaApi
from router.settings import Settings
from router.training.registry import active_model
from tests.rasa_stack import RasaStack
from tests.unit.test_actions_tickets import activate_triage, train_small_triage

pytestmark = pytest.mark.rasa

LOG_WAIT_S = 30
TICKET_NUMBER = re.compile(r"T\d{6}")


@pytest.fixture(scope="module")
def crm(rasa_stack: RasaStack, tmp_path_factory: pytest.TempPathFactory) -> Kefu:
    """The stack's CRM, with a triage model active so complaints can be triaged."""
    kefu = bootstrap(Settings(database_url=rasa_stack.database_url))
    with kefu.uow() as uow:
        has_triage = active_model(uow.session, "triage") is not None
    if not has_triage:
        activate_triage(kefu, train_small_triage(tmp_path_factory.mktemp("triage") / "model"))
    yield kefu
    kefu.dispose()


def texts(replies: list[dict]) -> str:
    return "\n".join(reply.get("text") or "" for reply in replies)


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


def one(kefu: Kefu, statement):
    with kefu.uow() as uow:
        row = uow.session.execute(statement).scalar_one()
        uow.session.expunge_all()
        return row


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
    rasa_stack: RasaStack, crm: Kefu, language: str, tmp_path: Path
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
    rasa_api = RasaApi(rasa_stack.rasa_url)
    asked_rating = texts(rasa_api.ask_csat(sender, number))
    rasa_api.close()
    assert re.search("1.*5", asked_rating), asked_rating
    thanked = rasa_stack.send(sender, flow["rating"])
    assert thanked, [(e["event"], e.get("name") or e.get("text")) for e in rasa_stack.tracker(sender)["events"][-12:]]

    ticket = one(crm, select(Ticket).where(Ticket.order_number == flow["order_number"]))
    assert ticket.number == number
    assert ticket.language == language
    assert ticket.category in {"delivery", "refund_return", "product_quality"}
    rating = one(crm, select(CsatRating).where(CsatRating.ticket_id == ticket.id))
    assert rating.score == flow["score"]

    rows = logged(crm, sender, expected_customer_turns=7)
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
