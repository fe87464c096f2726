"""Bad input through the real Rasa server and action server: a polite answer, never a crash, and still logged."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select

from router.bootstrap import bootstrap
from router.crm.interactions import MAX_STORED_CHARS
from router.crm.models import Conversation, Interaction, Speaker
from router.settings import Settings
from tests.support.rasa_stack import RasaStack

pytestmark = pytest.mark.rasa

LOG_WAIT_S = 30

HUGE = "我的快递还没到，" * 1250  # 10,000 characters
BAD_INPUTS = [
    pytest.param("empty", "", id="empty"),
    pytest.param("whitespace", "   \t  ", id="whitespace"),
    pytest.param("huge", HUGE, id="huge"),
    pytest.param("emoji", "😡😡😡🙄", id="emoji"),
    pytest.param("control", "hello\x00\x07\x1b[31m", id="control"),
    pytest.param("html", "<script>alert('x')</script><b>退款</b>", id="html"),
    pytest.param("sql", "'; DROP TABLE interactions; --", id="sql"),
    pytest.param("another language", "Где мой заказ? Я жду уже неделю.", id="another-language"),
]
# How the log keeps what was said: control characters dropped, huge pastes cut, and Rasa strips surrounding spaces.
STORED = {"control": "hello[31m", "huge": HUGE[: MAX_STORED_CHARS - 1] + "…", "whitespace": ""}


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


@pytest.mark.parametrize(("kind", "text"), BAD_INPUTS)
def test_bad_input_gets_a_polite_reply_and_is_logged(rasa_stack: RasaStack, kind: str, text: str) -> None:
    sender_id = f"bad-{uuid.uuid4().hex[:8]}"
    replies = rasa_stack.send(sender_id, text)
    assert replies, f"no reply to {kind} input\n{rasa_stack.logs()}"
    assert all(reply.get("text") for reply in replies)
    # The server is still fine: an ordinary message right after is understood.
    assert rasa_stack.send(sender_id, "hello")
    rows = customer_turns(rasa_stack, sender_id, expected=2)
    assert len(rows) == 2, rows
    assert rows[0].text == STORED.get(kind, text)
    assert rows[1].intent == "greet"
    assert "<script>" not in "".join(reply["text"] for reply in replies)
