"""Telegram end to end: the kefu web app's webhook → kefu's Telegram channel inside a real Rasa server → the fake Bot
API, and the CRM."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from bot.channels.telegram import HELP_TEXT, NOT_TEXT_REPLY
from router.bootstrap import Kefu
from router.crm.models import Channel, ChannelIdentity, ChannelUpdate, Interaction, Speaker, utcnow
from router.delivery.rasa_api import RasaApi
from router.delivery.telegram_poll import TelegramPoller
from router.delivery.updates import CLAIM_LEASE, Claim, claim_update
from router.settings import Settings
from tests.support.crm import seeded_sqlite_kefu
from tests.support.fake_telegram import (
    SECRET,
    TOKEN,
    FakeTelegram,
    callback_update,
    fake_telegram_server,
    photo_update,
    start_channels_stack,
    text_update,
)
from tests.support.rasa_stack import RasaStack
from tests.support.web import running_web_app

pytestmark = pytest.mark.rasa


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    with fake_telegram_server() as server:
        yield server


@pytest.fixture(scope="module")
def stack(fake: FakeTelegram, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RasaStack, Kefu, str]]:
    """Rasa and the action server, the CRM, and the URL of the web app that receives Telegram's webhook."""
    work_dir = tmp_path_factory.mktemp("telegram-stack")
    kefu = seeded_sqlite_kefu(work_dir)
    rasa = start_channels_stack(kefu.settings.database_url, work_dir, fake.base_url)
    web_settings = kefu.settings.copy(
        update={"rasa_url": rasa.rasa_url, "rasa_token": rasa.rasa_token, "telegram_secret_token": SECRET}
    )
    try:
        with running_web_app(web_settings, work_dir / "web.log") as web_url:
            yield rasa, kefu, web_url
    finally:
        rasa.stop()
        kefu.dispose()


def post_update(stack: tuple[RasaStack, Kefu, str], update: dict, secret: str | None = SECRET) -> httpx.Response:
    """Post ``update`` as Telegram does: to the web app's webhook, with the secret token."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return httpx.post(f"{stack[2]}/webhooks/telegram/webhook", json=update, headers=headers, timeout=120)


def test_chinese_and_english_text_get_bot_replies_and_a_crm_identity(stack, fake: FakeTelegram) -> None:
    assert post_update(stack, text_update(1001, 501, "你好")).json()["status"] == "ok"
    assert post_update(stack, text_update(1002, 502, "hello 👋", "en")).json()["status"] == "ok"
    zh_reply = fake.wait_for(lambda: fake.sent(501))
    en_reply = fake.wait_for(lambda: fake.sent(502))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh_reply[0]["text"])
    assert en_reply[0]["text"].isascii() or any(c.isalpha() and c.isascii() for c in en_reply[0]["text"])

    # The event broker logs the turns as they happen: the chats become CRM identities within moments.
    def logged_sender_ids() -> set[str]:
        with stack[1].uow() as uow:
            sender_ids = set(uow.session.execute(select(ChannelIdentity.sender_id)).scalars())
        return sender_ids if {"telegram:501", "telegram:502"} <= sender_ids else set()

    assert fake.wait_for(logged_sender_ids, timeout=30)


def test_missing_or_wrong_secret_token_is_refused_and_not_processed(stack, fake: FakeTelegram) -> None:
    update = text_update(2001, 601, "你好")
    assert post_update(stack, update, secret=None).status_code == 403
    assert post_update(stack, update, secret="wrong").status_code == 403
    with stack[1].uow() as uow:
        claimed = uow.session.execute(select(ChannelUpdate).where(ChannelUpdate.update_id == "2001")).first()
    assert claimed is None
    assert fake.sent(601) == []
    # The same update with the right secret is processed: the refusals did not consume it.
    assert post_update(stack, update).json()["status"] == "ok"
    fake.wait_for(lambda: fake.sent(601))


def test_malformed_body_is_a_clear_400(stack) -> None:
    response = httpx.post(
        f"{stack[2]}/webhooks/telegram/webhook",
        content=b"{not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "not a Telegram update" in response.json()["error"]


def test_redelivered_update_is_processed_once(stack, fake: FakeTelegram) -> None:
    update = text_update(3001, 701, "你好")
    assert post_update(stack, update).json()["status"] == "ok"
    replies = len(fake.wait_for(lambda: fake.sent(701)))
    assert post_update(stack, update).json()["status"] == "duplicate"
    assert post_update(stack, update).json()["status"] == "duplicate"
    assert len(fake.sent(701)) == replies


def test_a_redelivery_after_a_turn_died_is_processed_and_one_a_live_turn_holds_is_not(stack, fake) -> None:
    with stack[1].uow() as uow:
        # A replica took 3101 a lease ago and was killed mid-turn; another is in the middle of 3102 now.
        assert claim_update(uow.session, Channel.telegram, "3101", now=utcnow() - CLAIM_LEASE) is Claim.taken
        assert claim_update(uow.session, Channel.telegram, "3102") is Claim.taken
        uow.commit()
    assert post_update(stack, text_update(3101, 711, "你好")).json()["status"] == "ok"
    replies = len(fake.wait_for(lambda: fake.sent(711)))
    assert post_update(stack, text_update(3101, 711, "你好")).json()["status"] == "duplicate"
    live = post_update(stack, text_update(3102, 712, "你好"))
    # Not acknowledged, so Telegram redelivers: the turn holding it may still die.
    assert (live.status_code, live.json()["status"]) == (503, "in_progress")
    assert fake.sent(712) == []
    assert len(fake.sent(711)) == replies


def test_429_is_waited_out_and_the_reply_arrives(stack, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 429, retry_after=1)
    before = fake.methods().count("sendMessage")
    assert post_update(stack, text_update(4001, 801, "你好")).json()["status"] == "ok"
    assert fake.wait_for(lambda: fake.sent(801))
    # One refused attempt plus the successful retry (and any further replies of the turn).
    assert fake.methods().count("sendMessage") - before >= 2


def test_help_photo_and_start(stack, fake: FakeTelegram) -> None:
    post_update(stack, text_update(5001, 901, "/help"))
    post_update(stack, photo_update(5002, 902))
    post_update(stack, text_update(5003, 903, "/start"))
    assert fake.wait_for(lambda: fake.sent(901))[0]["text"] == HELP_TEXT
    assert fake.wait_for(lambda: fake.sent(902))[0]["text"] == NOT_TEXT_REPLY
    greeting = fake.wait_for(lambda: fake.sent(903))[0]["text"]
    assert greeting not in (HELP_TEXT, NOT_TEXT_REPLY)


def test_button_tap_is_answered_and_forged_external_intent_is_dropped(stack, fake: FakeTelegram) -> None:
    post_update(stack, callback_update(6001, 1001, "/EXTERNAL_ticket_resolved"))
    post_update(stack, callback_update(6002, 1002, "/greet"))
    answered = fake.wait_for(
        lambda: {p["callback_query_id"] for m, p in fake.calls if m == "answerCallbackQuery"} >= {"cb6001", "cb6002"}
    )
    assert answered
    fake.wait_for(lambda: fake.sent(1002))
    assert fake.sent(1001) == []


def test_resolved_ticket_csat_question_reaches_the_chat_with_a_one_row_keyboard(stack, fake: FakeTelegram) -> None:
    post_update(stack, text_update(7001, 1101, "hello", "en"))
    fake.wait_for(lambda: fake.sent(1101))
    api = RasaApi(stack[0].rasa_url, token=stack[0].rasa_token)
    try:
        api.ask_csat("telegram:1101", "T000001")
    finally:
        api.close()
    question = fake.wait_for(lambda: [m for m in fake.sent(1101) if m.get("reply_markup")])[-1]
    rows = question["reply_markup"]["inline_keyboard"]
    assert len(rows) == 1
    assert [key["text"] for key in rows[0]] == ["1", "2", "3", "4", "5"]
    assert rows[0][4]["callback_data"] == '/give_rating{"rating":"5"}'


def test_a_send_that_finally_fails_is_recorded(stack, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 500, times=20)
    try:
        assert post_update(stack, text_update(8001, 1201, "你好")).json()["status"] == "ok"
    finally:
        fake.failures.pop("sendMessage", None)
    with stack[1].uow() as uow:
        failed = uow.session.execute(
            select(Interaction).where(Interaction.delivery == "failed", Interaction.speaker == Speaker.system)
        ).scalars()
        assert any(i.text for i in failed)


def test_long_polling_forwards_updates_to_the_webhook_once(stack, fake: FakeTelegram) -> None:
    fake.updates.extend([text_update(9001, 1301, "你好"), text_update(9002, 1302, "hello", "en")])
    settings = Settings(
        telegram_token=TOKEN,
        telegram_secret_token=SECRET,
        telegram_api_url=fake.base_url,
        rasa_url=stack[0].rasa_url,
        rasa_token=stack[0].rasa_token,
    )
    poller = TelegramPoller(settings, long_poll_seconds=1)
    stats = asyncio.run(poller.run(rounds=2))
    assert (stats.forwarded, stats.duplicates, stats.refused) == (2, 0, 0)
    assert "deleteWebhook" in fake.methods()
    assert fake.wait_for(lambda: fake.sent(1301)) and fake.wait_for(lambda: fake.sent(1302))
    # A second poller starting from scratch sees the same updates again: the dedupe store drops them.
    again = asyncio.run(TelegramPoller(settings, long_poll_seconds=1).run(rounds=1))
    assert (again.forwarded, again.duplicates) == (0, 2)
