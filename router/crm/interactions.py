"""Interaction log: every customer, bot and agent turn stored once, redacted, against its conversation."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import bindparam, event, func, select, update
from sqlalchemy.orm import Session

from router.crm.conversations import CONVERSATION_GAP, current_conversation
from router.crm.models import OPEN_STATUSES, Channel, Conversation, Interaction, Speaker, Ticket, utcnow
from router.crm.redaction import KnownPii, PiiKind, known_pii, redact, redact_entities, redact_json
from router.recent import RecentlyUsed

# Longer texts are cut before storage: the log is for reading and training, not an archive of pastes.
MAX_STORED_CHARS = 4000
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
    # Bot turns: the domain response said ("utter_ask_csat").
    response: str | None = None


def guess_language(text: str) -> str | None:
    """ "zh" or "en" by script when the NLU did not say; None when the text has neither (emoji, digits)."""
    if _CJK.search(text):
        return "zh"
    if _LATIN.search(text):
        return "en"
    return None


def _open_ticket_ids(session: Session, conversation_ids: set[int]) -> dict[int, int]:
    """Each conversation's newest open ticket, for every conversation of a batch in one query."""
    rows = session.execute(
        select(Ticket.conversation_id, func.max(Ticket.id))
        .where(Ticket.conversation_id.in_(conversation_ids), Ticket.status.in_(OPEN_STATUSES))
        .group_by(Ticket.conversation_id)
    )
    return dict(rows.all())


def _stored_text(text: str, known: KnownPii) -> str:
    cleaned = redact(_CONTROL_CHARACTERS.sub("", text), known)
    return cleaned if len(cleaned) <= MAX_STORED_CHARS else cleaned[: MAX_STORED_CHARS - 1] + "…"


@dataclass(frozen=True)
class ConversationRef:
    """What logging a turn needs of its conversation, without loading the row."""

    id: int
    customer_id: int
    channel: Channel
    language: str | None
    touched_at: datetime

    @classmethod
    def of(cls, conversation: Conversation) -> ConversationRef:
        """The reference to a loaded conversation."""
        return cls(
            conversation.id,
            conversation.customer_id,
            conversation.channel,
            conversation.language,
            conversation.last_activity_at,
        )


class RecentConversations:
    """Sender → the conversation its turns were last logged to, so a sender who keeps talking costs no lookups.

    Safe to trust for half of ``CONVERSATION_GAP``: only ``current_conversation`` starts conversations, and only
    once the newest has been quiet for the whole gap. Entries are kept only for committed batches.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._refs: RecentlyUsed[ConversationRef] = RecentlyUsed(size)

    def get(self, sender_id: str, now: datetime) -> ConversationRef | None:
        """The sender's conversation if it was touched recently enough to be certainly still current."""
        ref = self._refs.get(sender_id)
        return ref if ref is not None and now - ref.touched_at < CONVERSATION_GAP / 2 else None

    def remember(self, refs: dict[str, ConversationRef]) -> None:
        """Keep these senders' conversations, forgetting the least recently used beyond ``size``."""
        for sender_id, ref in refs.items():
            self._refs.keep(sender_id, ref)


def _conversations(
    session: Session, turns: Sequence[Turn], languages: list[str | None], recent: RecentConversations | None
) -> dict[str, ConversationRef]:
    """Each sender's conversation, touched now and with the language its customer last wrote in."""
    now = utcnow()
    refs: dict[str, ConversationRef] = {}
    known: set[str] = set()
    for turn, language in zip(turns, languages, strict=True):
        customer_language = language if turn.speaker is Speaker.customer else None
        ref = refs.get(turn.sender_id)
        if ref is None and recent is not None and (ref := recent.get(turn.sender_id, now)) is not None:
            known.add(turn.sender_id)
        if ref is None:
            ref = ConversationRef.of(current_conversation(session, turn.sender_id, customer_language))
        refs[turn.sender_id] = replace(ref, language=customer_language or ref.language, touched_at=now)
    if known:
        # current_conversation touched the others; these get the same update in one statement.
        table = Conversation.__table__
        session.execute(
            update(table)
            .where(table.c.id == bindparam("ref_id"))
            .values(
                last_activity_at=bindparam("now", type_=table.c.last_activity_at.type),
                language=bindparam("ref_language", type_=table.c.language.type),
            ),
            [{"ref_id": refs[s].id, "now": now, "ref_language": refs[s].language} for s in known],
        )
    return refs


def record_turns(
    session: Session, turns: Sequence[Turn], recent: RecentConversations | None = None
) -> list[Interaction]:
    """Store the turns not stored yet (by ``event_key``), so a batch that is retried is never logged twice.

    A batch holds seconds of turns, so each sender's conversation is resolved once (not at all when ``recent``
    knows it) and the open tickets of all of them are found in one query: the event broker's writer shares its
    process with Rasa, and every query counts.
    """
    keys = [turn.event_key for turn in turns]
    already = set(session.execute(select(Interaction.event_key).where(Interaction.event_key.in_(keys))).scalars())
    new_turns = []
    for turn in turns:
        if turn.event_key not in already:
            already.add(turn.event_key)
            new_turns.append(turn)
    if not new_turns:
        return []
    languages = [turn.language or guess_language(turn.text) for turn in new_turns]
    conversations = _conversations(session, new_turns, languages, recent)
    open_tickets = _open_ticket_ids(session, {ref.id for ref in conversations.values()})
    # What a customer gave away in the batch is personal data wherever it comes back: the bot's "is this about
    # order 73920418?" after "passport E73920418".
    known: dict[str, dict[str, PiiKind]] = {}
    for turn in new_turns:
        if turn.speaker is Speaker.customer:
            known.setdefault(turn.sender_id, {}).update(known_pii(turn.text))
    stored = []
    for turn, language in zip(new_turns, languages, strict=True):
        conversation = conversations[turn.sender_id]
        stored.append(
            Interaction(
                conversation_id=conversation.id,
                customer_id=conversation.customer_id,
                ticket_id=open_tickets.get(conversation.id),
                agent_id=turn.agent_id,
                speaker=turn.speaker,
                channel=turn.channel or conversation.channel,
                text=_stored_text(turn.text, known.get(turn.sender_id, {})),
                language=language or conversation.language,
                intent=turn.intent,
                confidence=turn.confidence,
                entities=redact_entities(turn.entities, known.get(turn.sender_id, {})),
                latency_ms=turn.latency_ms,
                response=turn.response,
                event_key=turn.event_key,
                delivery=turn.delivery,
                buttons=redact_json(turn.buttons, known=known.get(turn.sender_id, {})),
                created_at=turn.created_at,
            )
        )
    session.add_all(stored)
    session.flush()
    if recent is not None:
        # A rolled-back batch may have started a conversation that does not exist; remember only committed ones.
        event.listen(session, "after_commit", lambda _session: recent.remember(conversations), once=True)
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
