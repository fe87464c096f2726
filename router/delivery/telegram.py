"""Sending to a Telegram chat through python-telegram-bot: split long texts, inline keyboards, retry 429 and 5xx."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Telegram's limit on a message, counted in UTF-16 code units (an emoji outside the BMP counts twice).
MAX_MESSAGE_UNITS = 4096
# callback_data may hold at most 64 bytes; longer button payloads cannot be sent as inline buttons.
MAX_CALLBACK_BYTES = 64
# Never sleep longer than this for one 429: a customer waiting minutes is worse than a recorded failure.
MAX_RETRY_AFTER_SECONDS = 30.0


@dataclass(frozen=True)
class Button:
    """A quick reply: what the customer sees and the payload Rasa receives when it is tapped."""

    title: str
    payload: str


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before a send counts as failed."""

    attempts: int = 5
    first_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = MAX_MESSAGE_UNITS) -> list[str]:
    """Cut ``text`` into pieces Telegram accepts, preferring paragraph, line and word breaks."""
    pieces: list[str] = []
    rest = text
    while _utf16_units(rest) > limit:
        cut = _longest_prefix(rest, limit)
        window = rest[:cut]
        for separator in ("\n\n", "\n", " ", "。", "，"):
            position = window.rfind(separator)
            if position > cut // 2:
                cut = position + len(separator)
                break
        pieces.append(rest[:cut].rstrip() or rest[:cut])
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _longest_prefix(text: str, limit: int) -> int:
    """Number of characters of ``text`` that fit in ``limit`` UTF-16 units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def inline_keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """Buttons as an inline keyboard: short scales (CSAT 1–5) in one row, longer choices one per row."""
    usable = [b for b in buttons if b.title and 0 < len(b.payload.encode()) <= MAX_CALLBACK_BYTES]
    if not usable:
        return None
    keys = [InlineKeyboardButton(b.title[:64], callback_data=b.payload) for b in usable]
    one_row = len(keys) <= 5 and all(len(b.title) <= 6 for b in usable)
    return InlineKeyboardMarkup([keys] if one_row else [[key] for key in keys])


def _seconds(value: int | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_retryable(error: TelegramError) -> bool:
    """Whether asking again may succeed: a 429, a 5xx, a timeout or a network error (not a refusal)."""
    # BadRequest is a NetworkError subclass in python-telegram-bot, but resending a bad request never helps.
    return isinstance(error, RetryAfter) or (isinstance(error, NetworkError) and not isinstance(error, BadRequest))


class TelegramSender:
    """One Bot API client for a process; sends plain text (no parse mode, so nothing needs Markdown escaping)."""

    def __init__(self, token: str, api_url: str, retry: RetryPolicy | None = None) -> None:
        self._requests = (HTTPXRequest(connection_pool_size=16), HTTPXRequest())
        self.bot = Bot(token, base_url=api_url, request=self._requests[0], get_updates_request=self._requests[1])
        self.retry = retry or RetryPolicy()

    async def send_text(self, chat_id: int | str, text: str, buttons: Sequence[Button] = ()) -> list[int]:
        """Send ``text`` (split when long; buttons go with the last piece) and return the message ids."""
        pieces = split_text(text)
        keyboard = inline_keyboard(buttons)
        message_ids = []
        for index, piece in enumerate(pieces):
            markup = keyboard if index == len(pieces) - 1 else None
            message = await self.call(self.bot.send_message, chat_id=chat_id, text=piece, reply_markup=markup)
            message_ids.append(message.message_id)
        return message_ids

    async def call(self, method: Callable[..., Awaitable[T]], /, **kwargs: Any) -> T:
        """Call a Bot API method, waiting out 429s and backing off on 5xx/network errors; re-raise the last error."""
        backoff = self.retry.first_backoff_seconds
        attempt = 1
        while True:
            try:
                return await method(**kwargs)
            except TelegramError as error:
                if attempt >= self.retry.attempts or not is_retryable(error):
                    raise
                wait = _seconds(error.retry_after) if isinstance(error, RetryAfter) else backoff
                logger.warning("Telegram %s failed (%s); retry %d in %.1fs", method.__name__, error, attempt, wait)
                await asyncio.sleep(min(wait, MAX_RETRY_AFTER_SECONDS))
                backoff = min(backoff * 2, self.retry.max_backoff_seconds)
                attempt += 1

    async def close(self) -> None:
        """Close the HTTP connections."""
        for request in self._requests:
            await request.shutdown()
