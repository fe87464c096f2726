"""Rasa events as log turns: the one translation the event broker and the tracker catch-up share.

A turn's key (``event_key``) is made of what Rasa stores with the event unchanged: the sender, the kind and the
message id (user events) or timestamp (bot events), not the text, which the tracker store keeps redacted. So a turn
the broker wrote from the live event and the catch-up from the stored one has the same key and is stored once.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from typing import Any

from router.crm.interactions import Turn
from router.crm.models import Channel, Speaker
from router.recent import RecentlyUsed

_INPUT_CHANNELS = {"rest": Channel.rest, "telegram": Channel.telegram, "webchat": Channel.web, "web": Channel.web}
# Remembering the last message time and language of this many senders is plenty for latency and costs little.
_REMEMBERED_SENDERS = 10_000


def event_key(event: dict[str, Any]) -> str:
    """Stable identity of a Rasa event, so the same event published or written twice is stored once."""
    identity = "\x00".join(
        str(part)
        for part in (
            event.get("sender_id"),
            event.get("event"),
            event.get("message_id") or repr(event.get("timestamp")),
        )
    )
    return f"rasa:{hashlib.sha256(identity.encode('utf-8', 'surrogatepass')).hexdigest()}"


class TurnTranslator:
    """Turns Rasa ``user`` and ``bot`` events into log turns, remembering per sender what latency needs.

    Only latency is remembered: a turn's user and bot events are published together by the process that ran the
    turn, whichever replica that is. Anything that spans turns is read from the CRM.
    """

    def __init__(self) -> None:
        self._last_user_message: RecentlyUsed[tuple[float, str | None]] = RecentlyUsed(_REMEMBERED_SENDERS)

    def translate(self, event: dict[str, Any]) -> Turn | None:
        """The turn an event stands for, or None for events that are not something said (slots, actions)."""
        kind = event.get("event")
        if kind == "user":
            return self._user_turn(event)
        if kind == "bot":
            return self._bot_turn(event)
        return None

    def _user_turn(self, event: dict[str, Any]) -> Turn:
        sender_id = str(event.get("sender_id"))
        parse_data = event.get("parse_data") or {}
        intent = parse_data.get("intent") or {}
        entities = [dict(entity) for entity in parse_data.get("entities") or []]
        metadata = event.get("metadata") or {}
        language = next((e.get("value") for e in entities if e.get("entity") == "language"), None)
        language = language or metadata.get("language")
        timestamp = float(event.get("timestamp") or time.time())
        self._last_user_message.keep(sender_id, (timestamp, language))
        intent_name = intent.get("name")
        # The router's injected intents (a ticket resolved) are not something the customer typed.
        speaker = Speaker.system if intent_name and intent_name.startswith("EXTERNAL_") else Speaker.customer
        return Turn(
            event_key=event_key(event),
            sender_id=sender_id,
            speaker=speaker,
            text=event.get("text") or "",
            created_at=datetime.fromtimestamp(timestamp, timezone.utc),
            channel=_INPUT_CHANNELS.get(event.get("input_channel") or ""),
            language=language,
            intent=intent_name,
            confidence=intent.get("confidence"),
            entities=[e for e in entities if e.get("entity") != "language"],
        )

    def _bot_turn(self, event: dict[str, Any]) -> Turn:
        sender_id = str(event.get("sender_id"))
        timestamp = float(event.get("timestamp") or time.time())
        user_timestamp, language = self._last_user_message.get(sender_id, (None, None))
        latency_ms = (timestamp - user_timestamp) * 1000 if user_timestamp is not None else None
        data = event.get("data") or {}
        return Turn(
            event_key=event_key(event),
            sender_id=sender_id,
            speaker=Speaker.bot,
            text=event.get("text") or "",
            created_at=datetime.fromtimestamp(timestamp, timezone.utc),
            language=language,
            latency_ms=latency_ms,
            buttons=data.get("buttons") or None,
            response=(event.get("metadata") or {}).get("utter_action"),
        )
