"""An agent's console reply reaches a Telegram customer through the channel layer (a fake Bot API server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.models import Interaction, Speaker
from tests.support.crm import open_demo_ticket, seeded_kefu
from tests.support.fake_telegram import TOKEN, FakeTelegram, fake_telegram_server
from tests.support.web import login


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with fake_telegram_server() as fake:
        yield fake


@pytest.fixture
def seeded(sqlite_url: str, tmp_path: Path, telegram: FakeTelegram) -> Iterator[Kefu]:
    with seeded_kefu(sqlite_url, tmp_path, telegram_token=TOKEN, telegram_api_url=telegram.base_url) as kefu:
        yield kefu


def _agent_turn(kefu: Kefu, ticket_id: int) -> tuple[str, str]:
    """(text, delivery) of the ticket's one agent turn."""
    with kefu.uow() as uow:
        turn = uow.session.scalars(
            select(Interaction).where(Interaction.ticket_id == ticket_id, Interaction.speaker == Speaker.agent)
        ).one()
        return turn.text, turn.delivery


def test_console_reply_is_sent_to_the_telegram_chat_and_marked_sent(seeded: Kefu, telegram: FakeTelegram) -> None:
    ticket_id = open_demo_ticket(seeded, "telegram:5150", "快递三天没动了")
    lina, csrf = login(seeded, "lina")
    response = lina.post(f"/console/tickets/{ticket_id}/reply", data={"text": "已为您催促快递", "csrf_token": csrf})
    assert response.status_code == 200 and "Reply sent" in response.text
    assert [message["text"] for message in telegram.sent(5150)] == ["已为您催促快递"]
    assert _agent_turn(seeded, ticket_id) == ("已为您催促快递", "sent")


def test_a_telegram_refusal_keeps_the_reply_and_marks_it_failed(seeded: Kefu, telegram: FakeTelegram) -> None:
    ticket_id = open_demo_ticket(seeded, "telegram:5151", "快递三天没动了")
    telegram.fail_next("sendMessage", 400, times=10)
    lina, csrf = login(seeded, "lina")
    response = lina.post(f"/console/tickets/{ticket_id}/reply", data={"text": "您好", "csrf_token": csrf})
    assert response.status_code == 200 and "delivery failed" in response.text
    assert _agent_turn(seeded, ticket_id) == ("您好", "failed")
