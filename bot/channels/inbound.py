"""Rules both channels apply to what a customer sends before Rasa sees it."""

from __future__ import annotations

import hmac
import re

# Rasa treats "/intent{...}" as an already-parsed intent: only payloads of buttons we offered may look like that,
# and never the EXTERNAL_ intents the router alone triggers.
_BUTTON_PAYLOAD = re.compile(r"^/(?!EXTERNAL_)[A-Za-z][A-Za-z0-9_]{0,63}(\{[^{}]{0,200}\})?$")
# Longer messages are refused with an explanation instead of being cut silently.
MAX_MESSAGE_CHARS = 2000


class RejectedMessage(ValueError):
    """A customer message the channel will not pass on, with the reason to show."""


def typed_text(text: str | None) -> str:
    """A typed message as Rasa should see it: trimmed, bounded, and unable to inject an intent with a leading '/'."""
    cleaned = (text or "").strip().lstrip("/").strip()
    if not cleaned:
        raise RejectedMessage("empty message")
    if len(cleaned) > MAX_MESSAGE_CHARS:
        raise RejectedMessage(f"message too long ({len(cleaned)} characters, limit {MAX_MESSAGE_CHARS})")
    return cleaned


def button_payload(payload: str | None) -> str:
    """A tapped button's payload, accepted only when it has the shape of the payloads our responses offer."""
    cleaned = (payload or "").strip()
    if not _BUTTON_PAYLOAD.match(cleaned):
        raise RejectedMessage("unknown button")
    return cleaned


def from_kefu(token_sent: str, rasa_token: str) -> bool:
    """Whether a channel request carries ``KEFU_RASA_TOKEN``: only kefu's web app (and its poller) may call in.

    The token travels as the ``token`` query parameter, as Rasa's own HTTP API takes it; with no token configured
    nothing is let in.
    """
    return bool(rasa_token) and hmac.compare_digest(token_sent.encode(), rasa_token.encode())
