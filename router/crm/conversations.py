"""Who is talking: resolve a Rasa sender id to its customer, channel identity and conversation."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from router.crm.models import Channel, ChannelIdentity, Conversation, Customer, utcnow

# A customer who comes back after this long starts a new conversation (Rasa's session expiry default).
CONVERSATION_GAP = timedelta(minutes=60)

_CHANNEL_PREFIXES = {"web": Channel.web, "telegram": Channel.telegram}


def parse_sender_id(sender_id: str) -> tuple[Channel, str]:
    """Channel and channel-native id of a sender id such as ``web:3f2a…`` or ``telegram:123456``."""
    prefix, _, external_id = sender_id.partition(":")
    if external_id and prefix in _CHANNEL_PREFIXES:
        return _CHANNEL_PREFIXES[prefix], external_id
    return Channel.rest, sender_id


def sender_id_for(channel: Channel, external_id: str) -> str:
    """The Rasa sender id kefu's channels use for ``external_id`` on ``channel``."""
    return external_id if channel is Channel.rest else f"{channel.value}:{external_id}"


def customer_id_of(session: Session, sender_id: str) -> int | None:
    """The customer behind ``sender_id`` without creating one, for questions that only read (a status lookup)."""
    return session.execute(
        select(ChannelIdentity.customer_id).where(ChannelIdentity.sender_id == sender_id)
    ).scalar_one_or_none()


def find_or_create_identity(session: Session, sender_id: str, language: str | None = None) -> ChannelIdentity:
    """The channel identity behind ``sender_id``, creating its customer on first contact."""
    identity = session.execute(
        select(ChannelIdentity).where(ChannelIdentity.sender_id == sender_id)
    ).scalar_one_or_none()
    if identity is not None:
        return identity
    channel, external_id = parse_sender_id(sender_id)
    customer = Customer(language=language or "zh")
    identity = ChannelIdentity(customer=customer, channel=channel, external_id=external_id, sender_id=sender_id)
    try:
        with session.begin_nested():
            session.add(identity)
    except IntegrityError:
        # Another process created the same identity between our read and insert; use theirs.
        identity = session.execute(select(ChannelIdentity).where(ChannelIdentity.sender_id == sender_id)).scalar_one()
    return identity


def current_conversation(session: Session, sender_id: str, language: str | None = None) -> Conversation:
    """The open conversation of ``sender_id``, or a new one when there is none or it went quiet."""
    identity = find_or_create_identity(session, sender_id, language)
    conversation = session.execute(
        select(Conversation)
        .where(Conversation.sender_id == sender_id)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    now = utcnow()
    if conversation is None or (now - conversation.last_activity_at > CONVERSATION_GAP and not conversation.bot_paused):
        conversation = Conversation(
            customer_id=identity.customer_id, sender_id=sender_id, channel=identity.channel, language=language
        )
        session.add(conversation)
        session.flush()
    conversation.last_activity_at = now
    if language:
        conversation.language = language
    return conversation
