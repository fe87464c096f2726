"""Reading the bot's replies as a customer reads them."""

from __future__ import annotations

import re

TICKET_NUMBER = re.compile(r"T\d{6}")


def texts(replies: list[dict]) -> str:
    """The replies' texts, one a line."""
    return "\n".join(reply.get("text") or "" for reply in replies)
