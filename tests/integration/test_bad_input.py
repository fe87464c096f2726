"""Bad input through the real Rasa server and action server: a polite answer, never a crash, and still logged."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from router.bootstrap import bootstrap
from router.crm.models import Conversation, Interaction, Speaker
from router.settings import Settings
from tests.rasa_stack import RasaStack

pytestmark = pytest.mark.rasa

LOG_WAIT_S = 30

BAD_INPUTS = {
    "empty": "",
    "whitespace": "   \t  ",
    "huge": "我的快递还没到，" * 1250,  # 10,000 characters
    "emoji": "😡😡😡🙄",
    "control": "hello\x00\x07\x1b[31m",
    "html": "<script>alert('x')</script><b>退款</b>",
    "sql": "'; DROP TABLE interactions; --",
    "another language": "Где мой заказ? Я жду уже неделю.",
}


def customer_turns(stack: RasaStack, sender_id: str, expected: int) -> list[Interaction]:
    """The sender's logged turns, waiting for the event broker's background writer to store ``expected`` rows."""
    kefu = bootstrap(Settings(database_url=stack.database_url))
    try:
        deadline = time.monotonic() + LOG_WAIT_S
        while True:
            with kefu.uow() as uow:
                rows = list(
                    uow.session.execute(
                        select(Interaction)
                        .join(Conversation, Conversation.id == Interaction.conversation_id)
                        .where(Interaction.speaker == Speaker.customer, Conversation.sender_id == sender_id)
                        .order_by(Interaction.id)
                    ).scalars()
                )
                uow.session.expunge_all()
            if len(rows) >= expected or time.monotonic() > deadline:
                return rows
            time.sleep(0.2)
    finally:
        kefu.dispose()


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_gets_a_polite_reply_and_is_logged(rasa_stack: RasaStack, kind: str) -> None:
    sender_id = f"bad-{uuid.uuid4().hex[:8]}"
    text = BAD_INPUTS[kind]
    replies = rasa_stack.send(sender_id, text)
    assert replies, f"no reply to {kind} input\n{rasa_stack.logs()}"
    assert all(reply.get("text") for reply in replies)
    # The server is still fine: an ordinary message right after is understood.
    assert rasa_stack.send(sender_id, "hello")
    rows = customer_turns(rasa_stack, sender_id, expected=2)
    assert len(rows) == 2, rows
    assert rows[0].text.startswith(text.strip()[:100]) or rows[0].text == text
    assert "<script>" not in "".join(reply["text"] for reply in replies)
