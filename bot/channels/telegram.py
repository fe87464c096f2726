"""Telegram as a Rasa input channel on python-telegram-bot: webhook behind the kefu web app, secret token enforced.

Credentials (``credentials.yml``, key ``bot.channels.telegram.TelegramInput``) may give ``token``,
``secret_token`` and ``api_url``; anything left out comes from the ``KEFU_TELEGRAM_*`` settings. Without a
secret token every webhook request is refused: an unauthenticated webhook would let anyone speak for any chat.
Telegram calls the web app (the one public port), which forwards each update here with ``KEFU_RASA_TOKEN``; an
update without that token is refused too, whoever else reaches Rasa's port.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import Message, Update
from telegram.error import TelegramError

from bot.channels.inbound import RejectedMessage, button_payload, from_kefu, typed_text
from router.bootstrap import Kefu, bootstrap
from router.crm.conversations import current_conversation, parse_sender_id, sender_id_for
from router.crm.interactions import MAX_STORED_CHARS
from router.crm.models import Channel, Interaction, Speaker
from router.delivery.telegram import Button, TelegramSender
from router.delivery.updates import CLAIM_LEASE, Claim, claim_update, finish_update, prune_claims, release_update
from router.settings import Settings, get_settings

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HELP_TEXT = (
    "您好！直接用中文或英文告诉我您的问题即可，例如“我的订单到哪了”。需要人工客服请说“转人工”。\n"
    "Hi! Just tell me your question in Chinese or English, e.g. “where is my order”. Say “agent” for a human."
)
NOT_TEXT_REPLY = (
    "收到您发送的文件/图片，谢谢！目前我只能阅读文字，请用文字描述您的问题。\n"
    "Thanks for the file/picture! I can only read text for now: please describe your problem in words."
)
TOO_LONG_REPLY = "消息太长了，请分几条发送。\nThat message is too long: please send it in shorter parts."


class TelegramOutput(OutputChannel):
    """Sends the bot's replies to a Telegram chat; a reply that cannot be sent is recorded in the CRM as failed."""

    def __init__(self, sender: TelegramSender, kefu_factory: Callable[[], Kefu]) -> None:
        self.sender = sender
        self._kefu_factory = kefu_factory

    @classmethod
    def name(cls) -> str:
        """The channel name Rasa stores on the tracker (``output_channel=latest`` finds this class by it)."""
        return "telegram"

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Plain text, split at Telegram's limit."""
        await self._send(recipient_id, text, [])

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Text with an inline keyboard of quick replies (taps come back as callback queries)."""
        quick_replies = [Button(str(b.get("title", "")), str(b.get("payload", ""))) for b in buttons]
        await self._send(recipient_id, text, quick_replies)

    async def send_image_url(self, recipient_id: str, image: str, **kwargs: Any) -> None:
        """Images are sent as their link: Telegram previews it, and nothing is uploaded."""
        await self._send(recipient_id, image, [])

    async def send_attachment(self, recipient_id: str, attachment: str, **kwargs: Any) -> None:
        """Attachments are sent as their link or text."""
        await self._send(recipient_id, str(attachment), [])

    async def _send(self, recipient_id: str, text: str, buttons: list[Button]) -> None:
        chat_id = parse_sender_id(recipient_id)[1]
        try:
            await self.sender.send_text(chat_id, text, buttons)
        except TelegramError as error:
            logger.error("Telegram send to chat %s failed for good: %s", chat_id, error)
            await asyncio.to_thread(self._record_failure, recipient_id, text, buttons)

    def _record_failure(self, sender_id: str, text: str, buttons: list[Button]) -> None:
        # A system turn, so the bot turn the event broker logs is not counted twice; agents see what never arrived.
        kefu = self._kefu_factory()
        with kefu.uow() as uow:
            conversation = current_conversation(uow.session, sender_id)
            uow.session.add(
                Interaction(
                    conversation_id=conversation.id,
                    customer_id=conversation.customer_id,
                    speaker=Speaker.system,
                    channel=Channel.telegram,
                    text=text[:MAX_STORED_CHARS],
                    event_key=f"telegram-failed:{uuid.uuid4().hex}",
                    delivery="failed",
                    buttons=[{"title": b.title, "payload": b.payload} for b in buttons] or None,
                )
            )
            uow.commit()


class TelegramInput(InputChannel):
    """Receives Telegram updates at ``/webhooks/telegram/webhook`` and answers through :class:`TelegramOutput`."""

    @classmethod
    def name(cls) -> str:
        """URL segment and tracker channel name."""
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Build from ``credentials.yml``, falling back to the ``KEFU_TELEGRAM_*`` settings."""
        credentials = credentials or {}
        settings = get_settings()
        return cls(
            token=credentials.get("token") or settings.telegram_token,
            secret_token=credentials.get("secret_token") or settings.telegram_secret_token,
            api_url=credentials.get("api_url") or settings.telegram_api_url,
            rasa_token=settings.rasa_token,
            settings=settings,
        )

    def __init__(self, token: str, secret_token: str, api_url: str, rasa_token: str, settings: Settings) -> None:
        self.token = token
        self.secret_token = secret_token
        self.api_url = api_url
        self.rasa_token = rasa_token
        self._settings = settings
        self._kefu: Kefu | None = None

    def kefu(self) -> Kefu:
        """The CRM connection, built on first use (Rasa constructs channels before the CRM may be reachable)."""
        if self._kefu is None:
            self._kefu = bootstrap(self._settings)
            with self._kefu.uow() as uow:
                prune_claims(uow.session)
                uow.commit()
        return self._kefu

    @cached_property
    def sender(self) -> TelegramSender:
        """The process's Bot API client."""
        return TelegramSender(self.token, self.api_url)

    def get_output_channel(self) -> OutputChannel | None:
        """Where bot messages Rasa sends on its own (``trigger_intent``, reminders) go: the customer's chat."""
        return TelegramOutput(self.sender, self.kefu) if self.token else None

    def _authorised(self, request: Request) -> bool:
        given = request.headers.get(SECRET_HEADER, "")
        from_telegram = bool(self.secret_token) and hmac.compare_digest(given.encode(), self.secret_token.encode())
        return from_telegram and from_kefu(request.args.get("token", ""), self.rasa_token)

    def _claim(self, update_id: str) -> Claim:
        with self.kefu().uow() as uow:
            claim = claim_update(uow.session, Channel.telegram, update_id)
            uow.commit()
        return claim

    def _finish(self, update_id: str) -> None:
        with self.kefu().uow() as uow:
            finish_update(uow.session, Channel.telegram, update_id)
            uow.commit()

    def _release(self, update_id: str) -> None:
        with self.kefu().uow() as uow:
            release_update(uow.session, Channel.telegram, update_id)
            uow.commit()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Health check and webhook routes."""
        hook = Blueprint("kefu_telegram_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok", "configured": bool(self.token and self.secret_token)})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "missing or wrong secret token"}, status=403)
            if not self.token:
                return response.json({"error": "KEFU_TELEGRAM_TOKEN is not set"}, status=503)
            try:
                update = Update.de_json(request.json, self.sender.bot)
            except Exception:  # any malformed body is the sender's error, answered 400
                update = None
            if update is None or not isinstance(update.update_id, int):
                return response.json({"error": "body is not a Telegram update"}, status=400)
            update_id = str(update.update_id)
            claim = await asyncio.to_thread(self._claim, update_id)
            if claim is Claim.done:
                return response.json({"status": "duplicate", "update_id": update.update_id})
            if claim is Claim.in_progress:
                # Not processed twice, and not acknowledged either: if the turn holding it dies, the redelivery
                # after its lease takes over, so the message is not lost.
                retry_after = str(int(CLAIM_LEASE.total_seconds()))
                body = {"status": "in_progress", "update_id": update.update_id}
                return response.json(body, status=503, headers={"Retry-After": retry_after})
            try:
                await self.handle_update(update, on_new_message)
            except Exception:
                # Give the claim back and answer 500: Telegram redelivers, and the redelivery is processed.
                logger.exception("Telegram update %s failed", update_id)
                await asyncio.to_thread(self._release, update_id)
                return response.json({"error": "processing failed; redeliver"}, status=500)
            await asyncio.to_thread(self._finish, update_id)
            return response.json({"status": "ok", "update_id": update.update_id})

        return hook

    async def handle_update(self, update: Update, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Turn one update into a Rasa message, a built-in reply, or nothing (edits, joins, other update kinds)."""
        output = TelegramOutput(self.sender, self.kefu)
        query = update.callback_query
        if query is not None:
            await self.sender.call(self.sender.bot.answer_callback_query, callback_query_id=query.id)
            chat_id = query.message.chat.id if query.message else query.from_user.id
            try:
                text = button_payload(query.data)
            except RejectedMessage:
                return
            await self._forward(on_new_message, output, chat_id, text, update, query.from_user.language_code)
            return
        message = update.message
        if message is None:
            return
        recipient = sender_id_for(Channel.telegram, str(message.chat.id))
        language_code = message.from_user.language_code if message.from_user else None
        if message.text is None:
            await output.send_text_message(recipient, NOT_TEXT_REPLY if _carries_media(message) else HELP_TEXT)
            return
        command = message.text.strip().split(maxsplit=1)[0].split("@")[0].lower() if message.text.strip() else ""
        if command == "/help":
            await output.send_text_message(recipient, HELP_TEXT)
            return
        if command == "/start":
            # The assistant greets in its own words (and the CRM logs it), as if the customer had said hello.
            await self._forward(on_new_message, output, message.chat.id, "/greet", update, language_code)
            return
        try:
            text = typed_text(message.text)
        except RejectedMessage:
            await output.send_text_message(recipient, TOO_LONG_REPLY if message.text.strip() else HELP_TEXT)
            return
        await self._forward(on_new_message, output, message.chat.id, text, update, language_code)

    async def _forward(
        self,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        output: TelegramOutput,
        chat_id: int,
        text: str,
        update: Update,
        language_code: str | None,
    ) -> None:
        metadata = {"telegram": {"update_id": update.update_id, "language_code": language_code}}
        await on_new_message(
            UserMessage(
                text,
                output,
                sender_id_for(Channel.telegram, str(chat_id)),
                input_channel=self.name(),
                metadata=metadata,
            )
        )


def _carries_media(message: Message) -> bool:
    return any(
        getattr(message, kind, None)
        for kind in ("photo", "document", "sticker", "voice", "audio", "video", "video_note", "animation", "location")
    )
