"""Interaction log: every customer, bot and agent turn stored once, redacted, against its conversation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.conversations import current_conversation
from router.crm.models import Channel, Conversation, Interaction, Speaker, Ticket, TicketStatus, utcnow
from router.crm.redaction import redact, redact_entities

# Longer texts are cut before storage: the log is for reading and training, not an archive of pastes.
MAX_STORED_CHARS = 4000
_OPEN_TICKET_STATUSES = (TicketStatus.queued, TicketStatus.assigned, TicketStatus.in_progress)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
# Control characters carry nothing a reader needs, and PostgreSQL refuses NUL in text outright.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Turn:
    """One thing said in a conversation, as the log receives it (text still raw)."""

    event_key: str
    sender_id: str
    speaker: Speaker
    text: str
    created_at: datetime = field(default_factory=utcnow)
    channel: Channel | None = None
    language: str | None = None
    intent: str | None = None
    confidence: float | None = None
    entities: list[dict] = field(default_factory=list)
    latency_ms: float | None = None
    agent_id: int | None = None
    delivery: str | None = None
    buttons: list[dict] | None = None


def guess_language(text: str) -> str | None:
    """ "zh" or "en" by script when the NLU did not say; None when the text has neither (emoji, digits)."""
    if _CJK.search(text):
        return "zh"
    if _LATIN.search(text):
        return "en"
    return None


def _open_ticket_id(session: Session, conversation: Conversation) -> int | None:
    return session.execute(
        select(Ticket.id)
        .where(Ticket.conversation_id == conversation.id, Ticket.status.in_(_OPEN_TICKET_STATUSES))
        .order_by(Ticket.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _stored_text(text: str) -> str:
    cleaned = redact(_CONTROL_CHARACTERS.sub("", text))
    return cleaned if len(cleaned) <= MAX_STORED_CHARS else cleaned[: MAX_STORED_CHARS - 1] + "…"


def record_turns(session: Session, turns: Sequence[Turn]) -> list[Interaction]:
    """Store the turns not stored yet (by ``event_key``), so a batch that is retried is never logged twice."""
    keys = [turn.event_key for turn in turns]
    already = set(session.execute(select(Interaction.event_key).where(Interaction.event_key.in_(keys))).scalars())
    stored: list[Interaction] = []
    for turn in turns:
        if turn.event_key in already:
            continue
        already.add(turn.event_key)
        language = turn.language or guess_language(turn.text)
        conversation = current_conversation(
            session, turn.sender_id, language if turn.speaker is Speaker.customer else None
        )
        interaction = Interaction(
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
            ticket_id=_open_ticket_id(session, conversation),
            agent_id=turn.agent_id,
            speaker=turn.speaker,
            channel=turn.channel or conversation.channel,
            text=_stored_text(turn.text),
            language=language or conversation.language,
            intent=turn.intent,
            confidence=turn.confidence,
            entities=redact_entities(turn.entities),
            latency_ms=turn.latency_ms,
            event_key=turn.event_key,
            delivery=turn.delivery,
            buttons=turn.buttons,
            created_at=turn.created_at,
        )
        session.add(interaction)
        stored.append(interaction)
    session.flush()
    return stored


def conversation_turns(session: Session, conversation_id: int) -> list[Interaction]:
    """A conversation's log in the order it was said, for the agent console and tests."""
    return list(
        session.execute(
            select(Interaction)
            .where(Interaction.conversation_id == conversation_id)
            .order_by(Interaction.created_at, Interaction.id)
        ).scalars()
    )
