"""Rasa events as its tracker store hands them to an event broker: ``sender_id`` plus the event's ``as_dict()``."""

from __future__ import annotations

import time

from rasa.shared.core.events import BotUttered, UserUttered


def user_event(
    sender_id: str,
    text: str,
    intent: str,
    confidence: float,
    language: str,
    timestamp: float | None = None,
    **entities: str,
) -> dict:
    """A user event exactly as Rasa's tracker store publishes it."""
    parse_data = {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": [{"entity": "language", "value": language}]
        + [{"entity": name, "value": value, "extractor": "RegexEntityExtractor"} for name, value in entities.items()],
    }
    event = UserUttered(
        text, parse_data["intent"], parse_data["entities"], parse_data, input_channel="rest", timestamp=timestamp
    )
    return {"sender_id": sender_id, **event.as_dict()}


def bot_event(
    sender_id: str, text: str, delay_s: float = 0.0, timestamp: float | None = None, response: str | None = None
) -> dict:
    """A bot event as published, ``delay_s`` after ``timestamp`` (default now), saying domain ``response``."""
    metadata = {"utter_action": response} if response else {}
    event = BotUttered(text, metadata=metadata, timestamp=(timestamp or time.time()) + delay_s)
    return {"sender_id": sender_id, **event.as_dict()}
