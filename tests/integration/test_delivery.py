"""Outbound delivery: agent replies stored first, then sent to Telegram (fake Bot API) or streamed to web chat."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from router.bootstrap import Kefu, bootstrap
from router.crm.conversations import current_conversation
from router.crm.models import Channel, Conversation, Interaction, Speaker
from router.delivery.service import DeliveryResult, deliver, deliver_async, send_stored_async
from router.delivery.telegram import Button, RetryPolicy, TelegramSender
from router.errors import InvalidInput, NotFound
from router.settings import Settings
from router.web.webchat import chat_history, turns_after
from tests.support.crm import CrmTemplates
from tests.support.fake_telegram import TOKEN, FakeTelegram, fake_telegram_server

FAST_RETRY = RetryPolicy(attempts=3, first_backoff_seconds=0.05, max_backoff_seconds=0.1)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with fake_telegram_server() as server:
        yield server


@pytest.fixture
def kefu_tg(database_kind: str, tmp_path: Path, fake: FakeTelegram, crm_templates: CrmTemplates) -> Iterator[Kefu]:
    """A kefu on SQLite and on PostgreSQL whose Telegram bot talks to the fake Bot API."""
    with crm_templates.copy(database_kind, seeded=False, work_dir=tmp_path) as url:
        settings = Settings(
            database_url=url, var_dir=tmp_path / "var", telegram_token=TOKEN, telegram_api_url=fake.base_url
        )
        app = bootstrap(settings)
        yield app
        app.dispose()


def open_conversation(kefu: Kefu, sender_id: str) -> int:
    with kefu.uow() as uow:
        conversation = current_conversation(uow.session, sender_id, "zh")
        uow.commit()
        return conversation.id


def stored(kefu: Kefu, result: DeliveryResult) -> tuple[Speaker, Channel, str | None, str]:
    """Speaker, channel, delivery status and text of the turn ``deliver`` stored."""
    with kefu.uow() as uow:
        turn = uow.session.get(Interaction, result.interaction_id)
        return turn.speaker, turn.channel, turn.delivery, turn.text


def send_attempts(fake: FakeTelegram, chat_id: int) -> int:
    return len([p for m, p in fake.calls if m == "sendMessage" and p["chat_id"] == str(chat_id)])


def send_with_fast_retries(kefu: Kefu, conversation_id: int, text: str) -> DeliveryResult:
    async def run() -> DeliveryResult:
        sender = TelegramSender(kefu.settings.telegram_token, kefu.settings.telegram_api_url, FAST_RETRY)
        try:
            return await deliver_async(kefu, conversation_id, text, telegram=sender)
        finally:
            await sender.close()

    return asyncio.run(run())


def test_agent_reply_reaches_the_telegram_chat_and_is_logged_as_sent(kefu_tg: Kefu, fake: FakeTelegram) -> None:
    conversation_id = open_conversation(kefu_tg, "telegram:3101")
    buttons = [Button("1", '/give_rating{"rating":"1"}'), Button("5", '/give_rating{"rating":"5"}')]
    result = deliver(kefu_tg, conversation_id, "您好，我是客服小李 *不是粗体* 😀", buttons, agent_id=None)
    assert result.ok and len(result.message_ids) == 1
    message = fake.sent(3101)[-1]
    assert message["text"] == "您好，我是客服小李 *不是粗体* 😀"
    assert "parse_mode" not in message  # plain text: nothing to escape, nothing rendered as Markdown
    assert [k["text"] for k in message["reply_markup"]["inline_keyboard"][0]] == ["1", "5"]
    assert stored(kefu_tg, result)[:3] == (Speaker.agent, Channel.telegram, "sent")


def test_long_text_goes_out_in_pieces_with_the_buttons_on_the_last(fake: FakeTelegram) -> None:
    text = "\n".join(f"第{n}行：您的包裹正在派送中。" for n in range(700))

    async def run() -> list[int]:
        sender = TelegramSender(TOKEN, fake.base_url, FAST_RETRY)
        try:
            return await sender.send_text(3201, text, [Button("OK", "/affirm")])
        finally:
            await sender.close()

    message_ids = asyncio.run(run())
    sent = fake.sent(3201)
    assert len(message_ids) == len(sent) >= 3
    assert all(len(m["text"]) <= 4096 for m in sent)
    assert "\n".join(m["text"] for m in sent) == text
    assert [("reply_markup" in m) for m in sent] == [False] * (len(sent) - 1) + [True]


def test_429_is_retried_after_the_time_telegram_asks(kefu_tg: Kefu, fake: FakeTelegram) -> None:
    conversation_id = open_conversation(kefu_tg, "telegram:3301")
    fake.fail_next("sendMessage", 429, retry_after=1)
    before = send_attempts(fake, 3301)
    result = send_with_fast_retries(kefu_tg, conversation_id, "稍等")
    assert result.ok
    assert send_attempts(fake, 3301) - before == 2


def test_5xx_until_the_last_attempt_is_recorded_as_failed_not_lost(kefu_tg: Kefu, fake: FakeTelegram) -> None:
    conversation_id = open_conversation(kefu_tg, "telegram:3401")
    fake.fail_next("sendMessage", 502, times=FAST_RETRY.attempts)
    before = send_attempts(fake, 3401)
    result = send_with_fast_retries(kefu_tg, conversation_id, "您的退款已处理")
    assert result.status == "failed" and "scripted failure" in result.error
    assert stored(kefu_tg, result)[2:] == ("failed", "您的退款已处理")
    assert send_attempts(fake, 3401) - before == FAST_RETRY.attempts


def test_a_bad_request_is_not_retried(kefu_tg: Kefu, fake: FakeTelegram) -> None:
    conversation_id = open_conversation(kefu_tg, "telegram:3501")
    fake.fail_next("sendMessage", 400)
    before = send_attempts(fake, 3501)
    result = send_with_fast_retries(kefu_tg, conversation_id, "hello")
    assert result.status == "failed"
    assert send_attempts(fake, 3501) - before == 1


def test_without_a_bot_token_the_reply_is_recorded_as_failed(kefu_any_db: Kefu) -> None:
    conversation_id = open_conversation(kefu_any_db, "telegram:3601")
    result = deliver(kefu_any_db, conversation_id, "hello")
    assert (result.status, stored(kefu_any_db, result)[2]) == ("failed", "failed")
    assert "KEFU_TELEGRAM_TOKEN" in result.error


def test_web_chat_reply_is_stored_for_the_page_stream_with_its_buttons(kefu_any_db: Kefu) -> None:
    sender_id = f"web:{uuid.uuid4()}"
    conversation_id = open_conversation(kefu_any_db, sender_id)
    result = deliver(kefu_any_db, conversation_id, "请为本次服务打分", [Button("5", "/give_rating")])
    assert result.ok
    pushed = turns_after(kefu_any_db, sender_id, 0)
    assert [(t["speaker"], t["text"], t["buttons"]) for t in pushed] == [
        ("agent", "请为本次服务打分", [{"title": "5", "payload": "/give_rating"}])
    ]
    assert turns_after(kefu_any_db, sender_id, pushed[-1]["id"]) == []
    assert [t["text"] for t in chat_history(kefu_any_db, sender_id)] == ["请为本次服务打分"]
    # Another session's stream never sees it.
    assert turns_after(kefu_any_db, f"web:{uuid.uuid4()}", 0) == []


@pytest.mark.parametrize("text", ["", "   ", "长" * 4001])
def test_empty_or_huge_reply_is_refused_and_nothing_is_stored(kefu_any_db: Kefu, text: str) -> None:
    conversation_id = open_conversation(kefu_any_db, f"web:{uuid.uuid4()}")
    with pytest.raises(InvalidInput):
        deliver(kefu_any_db, conversation_id, text)
    with kefu_any_db.uow() as uow:
        assert uow.session.execute(select(func.count(Interaction.id))).scalar_one() == 0


def test_unknown_conversation_is_not_found(kefu_any_db: Kefu) -> None:
    with pytest.raises(NotFound):
        deliver(kefu_any_db, 999_999, "hello")


def test_a_reply_the_ticket_service_stored_is_sent_and_marked(kefu_tg: Kefu, fake: FakeTelegram) -> None:
    conversation_id = open_conversation(kefu_tg, "telegram:3701")
    with kefu_tg.uow() as uow:
        conversation = uow.session.get(Conversation, conversation_id)
        turn = Interaction(
            conversation_id=conversation_id,
            customer_id=conversation.customer_id,
            speaker=Speaker.agent,
            channel=Channel.telegram,
            text="已为您加急处理",
            delivery="pending",
            buttons=[{"title": "OK", "payload": "/affirm"}],
        )
        uow.session.add(turn)
        uow.session.flush()
        interaction_id = turn.id
        uow.commit()
    result = asyncio.run(send_stored_async(kefu_tg, interaction_id))
    assert result.ok and stored(kefu_tg, result)[2] == "sent"
    message = fake.sent(3701)[-1]
    assert (message["text"], message["reply_markup"]["inline_keyboard"][0][0]["text"]) == ("已为您加急处理", "OK")
    with pytest.raises(NotFound):
        asyncio.run(send_stored_async(kefu_tg, 999_999))
