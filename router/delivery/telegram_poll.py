"""Long polling for development: fetch Telegram updates and hand each to the Rasa server's Telegram webhook.

Like the web app's relay, it calls Rasa over the private network with ``KEFU_RASA_TOKEN``.

Forwarding to the webhook (with the secret token) keeps one code path for updates, so polling and webhook mode
dedupe, answer and log exactly alike. The offset only moves past an update Rasa accepted, so nothing is skipped,
however long Telegram or Rasa is unreachable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from telegram.error import TelegramError

from router.delivery.telegram import RetryPolicy, TelegramSender, is_retryable
from router.errors import KefuError
from router.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_PATH = "/webhooks/telegram/webhook"
LONG_POLL_SECONDS = 25
ALLOWED_UPDATES = ["message", "callback_query"]


@dataclass
class PollStats:
    """What one polling session did, for the command's summary line."""

    forwarded: int = 0
    duplicates: int = 0
    refused: int = 0


@dataclass(frozen=True)
class OutageWaits:
    """How long to wait before asking an unreachable Telegram again (after the sender's own retries): doubling from
    ``first_seconds`` up to ``most_seconds``, and from the first again once Telegram has answered."""

    first_seconds: float = 2.0
    most_seconds: float = 60.0

    def after(self, failures: int) -> float:
        """The wait after ``failures`` failed calls in a row."""
        return min(self.first_seconds * 2 ** (failures - 1), self.most_seconds)


class TelegramRefused(KefuError):
    """Telegram refuses the bot's calls (unknown token, an API URL that is not the Bot API): asking again won't help."""


class TelegramPoller:
    """getUpdates → POST to Rasa's Telegram webhook, until stopped."""

    def __init__(
        self,
        settings: Settings,
        long_poll_seconds: int = LONG_POLL_SECONDS,
        retry: RetryPolicy | None = None,
        outage: OutageWaits | None = None,
    ) -> None:
        self.settings = settings
        self.long_poll_seconds = long_poll_seconds
        self.sender = TelegramSender(settings.telegram_token, settings.telegram_api_url, retry)
        self.outage = outage or OutageWaits()
        self.webhook_url = settings.rasa_url.rstrip("/") + WEBHOOK_PATH
        self.offset: int | None = None
        self.stats = PollStats()

    async def run(self, rounds: int | None = None) -> PollStats:
        """Poll until Telegram has answered ``rounds`` getUpdates calls (forever when None); the webhook is removed
        first, as Telegram requires. Outages are waited out; TelegramRefused when Telegram refuses the bot."""
        headers = {SECRET_HEADER: self.settings.telegram_secret_token, "Content-Type": "application/json"}
        params = {"token": self.settings.rasa_token}
        try:
            await self._answer(self.sender.bot.delete_webhook)
            async with httpx.AsyncClient(timeout=120, params=params) as client:
                done = 0
                while rounds is None or done < rounds:
                    await self._round(client, headers)
                    done += 1
        finally:
            await self.sender.close()
        return self.stats

    async def _answer(self, method: Callable[..., Awaitable[T]], /, **kwargs: Any) -> T:
        """Telegram's answer to ``method``, however long it is unreachable."""
        failures = 0
        while True:
            try:
                return await self.sender.call(method, **kwargs)
            except TelegramError as error:
                if not is_retryable(error):
                    raise TelegramRefused(
                        f"Telegram at {self.settings.telegram_api_url} refused {method.__name__} ({error}): "
                        "check KEFU_TELEGRAM_TOKEN and KEFU_TELEGRAM_API_URL"
                    ) from error
                failures += 1
                wait = self.outage.after(failures)
                logger.warning(
                    "Telegram unreachable at %s (%s); retrying in %g s", self.settings.telegram_api_url, error, wait
                )
                await asyncio.sleep(wait)

    async def _round(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        updates = await self._answer(
            self.sender.bot.get_updates,
            offset=self.offset,
            timeout=self.long_poll_seconds,
            allowed_updates=ALLOWED_UPDATES,
        )
        for update in updates:
            try:
                answer = await client.post(self.webhook_url, content=update.to_json(), headers=headers)
            except httpx.HTTPError as error:
                logger.warning("Rasa unreachable at %s (%s); retrying", self.webhook_url, error)
                await asyncio.sleep(2)
                return
            if answer.status_code >= 500:
                logger.warning("Rasa answered %s for update %s; retrying it", answer.status_code, update.update_id)
                await asyncio.sleep(2)
                return
            if answer.status_code >= 400:
                # A refused update (bad secret, malformed) would be refused again: log it and move on.
                logger.error("Rasa refused update %s: %s %s", update.update_id, answer.status_code, answer.text[:200])
                self.stats.refused += 1
            elif answer.json().get("status") == "duplicate":
                self.stats.duplicates += 1
            else:
                self.stats.forwarded += 1
            self.offset = update.update_id + 1
