"""``deliver``: send an agent's (or the system's) message to a customer on the channel their conversation uses.

Every outbound turn is stored in the CRM first (``delivery="pending"``), then sent, then marked ``sent`` or
``failed``: a crash or a Telegram outage leaves a visible record, never a silently lost reply. Web chat reads its
outbound turns from the CRM (the page's event stream), so storing the turn is what delivers it there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session
from telegram.error import TelegramError

from router.bootstrap import Kefu
from router.crm.conversations import parse_sender_id
from router.crm.models import OPEN_STATUSES, Channel, Conversation, Interaction, Speaker, Ticket
from router.crm.redaction import redact
from router.delivery.telegram import Button, TelegramSender
from router.errors import InvalidInput, NotFound
from router.routing.policy import MAX_REPLY_CHARS


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one outbound message: the stored turn, its channel and ``sent``/``failed``."""

    interaction_id: int
    channel: Channel
    status: str
    error: str = ""
    message_ids: tuple[int, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when the customer's channel accepted the message."""
        return self.status == "sent"


def _clean_text(text: str) -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        raise InvalidInput("the message is empty")
    if len(cleaned) > MAX_REPLY_CHARS:
        raise InvalidInput(f"the message has {len(cleaned)} characters; the limit is {MAX_REPLY_CHARS}")
    return cleaned


def _store_outbound(
    session: Session,
    conversation_id: int,
    text: str,
    buttons: Sequence[Button],
    speaker: Speaker,
    agent_id: int | None,
) -> Interaction:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist")
    ticket_id = session.execute(
        select(Ticket.id)
        .where(Ticket.conversation_id == conversation.id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    interaction = Interaction(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        ticket_id=ticket_id,
        agent_id=agent_id,
        speaker=speaker,
        channel=conversation.channel,
        text=redact(text),
        language=conversation.language,
        event_key=f"delivery:{uuid.uuid4().hex}",
        delivery="pending",
        buttons=[{"title": b.title, "payload": b.payload} for b in buttons] or None,
    )
    session.add(interaction)
    session.flush()
    return interaction


def _mark(kefu: Kefu, interaction_id: int, status: str) -> None:
    with kefu.uow() as uow:
        uow.session.get(Interaction, interaction_id).delivery = status
        uow.commit()


async def send_stored_async(
    kefu: Kefu, interaction_id: int, *, text: str | None = None, telegram: TelegramSender | None = None
) -> DeliveryResult:
    """Put an outbound turn already stored in the CRM (say by the ticket service) on the customer's channel.

    ``text`` overrides the stored text, which is redacted; the turn ends up marked ``sent`` or ``failed``.
    """
    with kefu.uow() as uow:
        interaction = uow.session.get(Interaction, interaction_id)
        if interaction is None:
            raise NotFound(f"interaction {interaction_id} does not exist")
        channel = interaction.channel
        sender_id = uow.session.get(Conversation, interaction.conversation_id).sender_id
        outgoing = text or interaction.text
        buttons = [Button(b["title"], b["payload"]) for b in interaction.buttons or []]
    if channel is Channel.web:
        _mark(kefu, interaction_id, "sent")
        return DeliveryResult(interaction_id, channel, "sent")
    if channel is not Channel.telegram:
        _mark(kefu, interaction_id, "failed")
        return DeliveryResult(interaction_id, channel, "failed", f"the {channel.value} channel has no outbound path")
    if not kefu.settings.telegram_token:
        _mark(kefu, interaction_id, "failed")
        return DeliveryResult(interaction_id, channel, "failed", "KEFU_TELEGRAM_TOKEN is not set")
    own_sender = telegram is None
    sender = telegram or TelegramSender(kefu.settings.telegram_token, kefu.settings.telegram_api_url)
    try:
        message_ids = await sender.send_text(parse_sender_id(sender_id)[1], outgoing, buttons)
    except TelegramError as error:
        _mark(kefu, interaction_id, "failed")
        return DeliveryResult(interaction_id, channel, "failed", str(error))
    finally:
        if own_sender:
            await sender.close()
    _mark(kefu, interaction_id, "sent")
    return DeliveryResult(interaction_id, channel, "sent", message_ids=tuple(message_ids))


async def deliver_async(
    kefu: Kefu,
    conversation_id: int,
    text: str,
    buttons: Sequence[Button] | None = None,
    *,
    speaker: Speaker = Speaker.agent,
    agent_id: int | None = None,
    telegram: TelegramSender | None = None,
) -> DeliveryResult:
    """Store the outbound turn and send it on the conversation's channel; for async callers (the web app)."""
    cleaned = _clean_text(text)
    with kefu.uow() as uow:
        interaction = _store_outbound(uow.session, conversation_id, cleaned, list(buttons or ()), speaker, agent_id)
        interaction_id = interaction.id
        uow.commit()
    return await send_stored_async(kefu, interaction_id, text=cleaned, telegram=telegram)


def deliver(
    kefu: Kefu,
    conversation_id: int,
    text: str,
    buttons: Sequence[Button] | None = None,
    *,
    speaker: Speaker = Speaker.agent,
    agent_id: int | None = None,
) -> DeliveryResult:
    """:func:`deliver_async` for synchronous callers (worker, CLI, threadpool handlers)."""

    def run() -> DeliveryResult:
        return asyncio.run(deliver_async(kefu, conversation_id, text, buttons, speaker=speaker, agent_id=agent_id))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    # A synchronous caller inside a running event loop (Playwright, Jupyter) cannot nest asyncio.run: use a thread.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()
