"""Long polling for development: fetch Telegram updates and hand each to the Rasa server's Telegram webhook.

Like the web app's relay, it calls Rasa over the private network with ``KEFU_RASA_TOKEN``.

Forwarding to the webhook (with the secret token) keeps one code path for updates, so polling and webhook mode
dedupe, answer and log exactly alike. The offset only moves past an update Rasa accepted, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from router.delivery.telegram import TelegramSender
from router.settings import Settings

logger = logging.getLogger(__name__)

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


class TelegramPoller:
    """getUpdates → POST to Rasa's Telegram webhook, until stopped."""

    def __init__(self, settings: Settings, long_poll_seconds: int = LONG_POLL_SECONDS) -> None:
        self.settings = settings
        self.long_poll_seconds = long_poll_seconds
        self.sender = TelegramSender(settings.telegram_token, settings.telegram_api_url)
        self.webhook_url = settings.rasa_url.rstrip("/") + WEBHOOK_PATH
        self.offset: int | None = None
        self.stats = PollStats()

    async def run(self, rounds: int | None = None) -> PollStats:
        """Poll ``rounds`` times (forever when None); the webhook is removed first, as Telegram requires."""
        await self.sender.call(self.sender.bot.delete_webhook)
        headers = {SECRET_HEADER: self.settings.telegram_secret_token, "Content-Type": "application/json"}
        params = {"token": self.settings.rasa_token}
        async with httpx.AsyncClient(timeout=120, params=params) as client:
            done = 0
            while rounds is None or done < rounds:
                await self._round(client, headers)
                done += 1
        await self.sender.close()
        return self.stats

    async def _round(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        updates = await self.sender.call(
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
