"""The real-customers benchmark's machinery on a real stack: conversations held, the bot's questions answered, and the
figures read back from the CRM the actions wrote to."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from benchmarks.real_customers import (
    ASKS_ORDER_NUMBER,
    ASKS_REPHRASE,
    OFFERS_HANDOFF,
    PROJECT_ROOT,
    CustomerMessage,
    Driver,
    ResponseNames,
    read_crm,
    report,
)
from router.bootstrap import Kefu
from router.crm.models import Conversation, Ticket
from tests.support.rasa_stack import RasaStack

pytestmark = pytest.mark.rasa

COMPLAINT = CustomerMessage(
    "我要投诉，买的耳机一个耳朵没声音", "zh", "zh_test", "zh_test:耳机", "complain", "product_quality"
)
# Labelled a fraud report so the fraud targets have a row to count.
NOT_UNDERSTOOD = CustomerMessage("blorp snarfle", "en", "en_test", "en_test:noise", "complain", risk="fraud")
OUT_OF_SCOPE = CustomerMessage("what is the weather in Paris tomorrow", "en", "en_test", "en_test:oos", "out_of_scope")


def test_conversations_answer_the_bots_questions_and_the_crm_says_where_they_ended(
    rasa_stack: RasaStack, stack_crm: Kefu, capsys: pytest.CaptureFixture
) -> None:
    driver = Driver(rasa_stack.rasa_url, ResponseNames(PROJECT_ROOT / "domain.yml"), token=rasa_stack.rasa_token)
    complaint, not_understood, out_of_scope = driver.converse_all([COMPLAINT, NOT_UNDERSTOOD, OUT_OF_SCOPE], 2)
    read_crm(stack_crm, [complaint, not_understood, out_of_scope])

    # The complaint: taken as one, asked for the order number, answered "none", filed with a priority.
    assert complaint.error is None and complaint.taken_as_complaint, complaint
    assert ASKS_ORDER_NUMBER in complaint.first_replies
    assert [text for text, _ in complaint.turns] == [COMPLAINT.text, "没有订单号"]
    assert complaint.ticket_priority in (1, 2, 3, 4) and not complaint.handed_to_person
    with stack_crm.uow() as uow:
        ticket = uow.session.execute(
            select(Ticket).join(Conversation).where(Conversation.sender_id == complaint.sender_id)
        ).scalar_one()
        assert (ticket.priority, ticket.category) == (complaint.ticket_priority, complaint.ticket_category)
        assert ticket.order_number is None and "耳机" in ticket.description

    # Not understood: said again, then the offered person accepted — a person reached without a complaint.
    assert not_understood.asked_to_rephrase and not not_understood.taken_as_complaint
    assert [text for text, _ in not_understood.turns] == ["blorp snarfle", "blorp snarfle", "yes please"]
    assert OFFERS_HANDOFF in not_understood.turns[1][1] and ASKS_REPHRASE not in not_understood.turns[1][1]
    assert not_understood.handed_to_person and not_understood.reached_ticket_or_person
    assert not_understood.ticket_priority in (1, 2, 3, 4)  # the handoff opened a ticket for the agent

    # Out of scope: the bot says it cannot help, asks nothing, and the customer leaves without a ticket.
    assert out_of_scope.first_intent == "out_of_scope" and len(out_of_scope.turns) == 1
    assert out_of_scope.ticket_priority is None and not out_of_scope.reached_ticket_or_person

    figures = report([complaint, not_understood, out_of_scope])
    english = figures["by_language"]["en"]
    assert english["messages"] == 2 and english["asked_to_rephrase"] == 0.5 and english["answered_out_of_scope"] == 0.5
    assert english["reached_ticket_or_person"] == 0.5 and english["handed_to_person"] == 0.5
    assert figures["by_language"]["zh"]["taken_as_complaint"] == 1.0
    assert sum(figures["by_language"]["zh"]["priorities"].values()) == 1
    assert sum(english["priorities"].values()) == 1
    assert figures["targets"]["en_fraud_messages"] == 1 and figures["targets"]["en_fraud_reached"] == 1.0
    assert figures["targets"]["en_fraud_p1_p2_of_reached"] == (1.0 if not_understood.ticket_priority <= 2 else 0.0)
    printed = capsys.readouterr().out
    assert "risk messages with no ticket or person" not in printed and "complaints not taken (1)" in printed
