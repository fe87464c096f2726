"""`kefu telegram poll` between the fake Bot API and a stand-in for Rasa's Telegram webhook (no Rasa needed): it waits
out Telegram's outages without losing or repeating an update, and stops with one line when Telegram refuses the bot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from router.delivery.telegram import RetryPolicy
from router.delivery.telegram_poll import OutageWaits, TelegramPoller
from router.settings import Settings
from tests.support.cli import KEFU_SCRIPT, invoke_kefu, run_kefu
from tests.support.fake_telegram import (
    SECRET,
    TOKEN,
    FakeTelegram,
    fake_telegram_server,
    text_update,
    webhook_stand_in,
)
from tests.support.listening import free_port

FAST_RETRY = RetryPolicy(attempts=2, first_backoff_seconds=0.01, max_backoff_seconds=0.01)
SHORT_WAITS = OutageWaits(first_seconds=0.05, most_seconds=0.2)


def outage_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the poller announced, one per failed call to an unreachable Telegram."""
    return [r.args[-1] for r in caplog.records if r.getMessage().startswith("Telegram unreachable at")]


async def eventually(condition: Callable[[], bool], polling: asyncio.Task, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if polling.done():
            pytest.fail(f"the poller stopped: {polling.exception()!r}")
        assert time.monotonic() < deadline, "the poller never got there"
        await asyncio.sleep(0.02)


def test_the_poller_waits_out_telegram_outages_and_forwards_each_update_once(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    fake = FakeTelegram(updates=[text_update(9001, 1401, "你好")])
    with webhook_stand_in() as rasa:
        settings = Settings(
            telegram_token=TOKEN,
            telegram_secret_token=SECRET,
            telegram_api_url=f"http://127.0.0.1:{port}/bot",
            rasa_url=rasa.url,
        )
        poller = TelegramPoller(settings, long_poll_seconds=1, retry=FAST_RETRY, outage=SHORT_WAITS)

        async def two_outages() -> list[float]:
            polling = asyncio.create_task(poller.run())
            await eventually(lambda: len(outage_waits(caplog)) >= 3, polling)  # nothing listens: deleteWebhook fails
            with fake_telegram_server(fake, port):
                await eventually(lambda: 9001 in rasa.update_ids, polling)
            first = len(outage_waits(caplog))
            await eventually(lambda: len(outage_waits(caplog)) >= first + 4, polling)  # gone again: getUpdates fails
            second = outage_waits(caplog)[first:]
            fake.updates.append(text_update(9002, 1401, "还在吗"))
            with fake_telegram_server(fake, port):
                await eventually(lambda: 9002 in rasa.update_ids, polling)
            assert not polling.done()
            polling.cancel()
            with pytest.raises(asyncio.CancelledError):
                await polling
            return second

        second_outage = asyncio.run(two_outages())
    assert rasa.update_ids == [9001, 9002]  # the offset outlived the outage: 9001 was not fetched again
    assert outage_waits(caplog)[:3] == [0.05, 0.1, 0.2]
    assert second_outage[:4] == [0.05, 0.1, 0.2, 0.2]  # from the first wait again after an answer, and capped
    assert f"Telegram unreachable at http://127.0.0.1:{port}/bot" in caplog.text


def test_poll_and_set_webhook_stop_with_one_line_when_telegram_refuses_the_token(tmp_path: Path) -> None:
    with fake_telegram_server() as fake:
        env = {
            "KEFU_TELEGRAM_TOKEN": "999:not-this-bot",
            "KEFU_TELEGRAM_SECRET_TOKEN": SECRET,
            "KEFU_TELEGRAM_API_URL": fake.base_url,
            "KEFU_VAR_DIR": str(tmp_path / "var"),
        }
        polled = run_kefu("telegram", "poll", env=env, kefu=KEFU_SCRIPT)
        registered = invoke_kefu("telegram", "set-webhook", "https://kefu.example", env=env)
    for result in (polled, registered):
        assert result.returncode == 1
        assert "Traceback" not in result.stdout + result.stderr
        [error] = [line for line in result.stdout.splitlines() if line.startswith("✗")]
        assert "Unauthorized" in error and "KEFU_TELEGRAM_TOKEN" in error and fake.base_url in error
