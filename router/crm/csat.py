"""Customer satisfaction: store the 1–5 rating (and optional comment) a customer gives after being helped."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.conversations import current_conversation
from router.crm.models import CsatRating, Ticket
from router.crm.redaction import redact
from router.errors import InvalidInput

MAX_COMMENT_CHARS = 2000
_CHINESE_SCORES = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
_SCORE_IN_TEXT = re.compile(r"(?<!\d)([1-5])(?!\d)|([一二两三四五])(?:分|星|颗星)")


def parse_score(value: object) -> int:
    """The 1–5 score in what the customer or NLU gave ("5", 4.0, "四星", "I'd give it 3"), else InvalidInput."""
    if isinstance(value, bool):
        raise InvalidInput("a rating is a number from 1 to 5")
    if isinstance(value, int | float) and float(value).is_integer() and 1 <= value <= 5:
        return int(value)
    if isinstance(value, str):
        match = _SCORE_IN_TEXT.search(value.translate(str.maketrans("１２３４５", "12345")))
        if match:
            return int(match.group(1)) if match.group(1) else _CHINESE_SCORES[match.group(2)]
    raise InvalidInput("a rating is a number from 1 to 5")


def record_csat(
    session: Session, *, sender_id: str, score: object, comment: str = "", ticket_id: int | None = None
) -> CsatRating:
    """Store a rating for the customer behind ``sender_id``, tied to the ticket it rates (default: their latest)."""
    conversation = current_conversation(session, sender_id)
    if ticket_id is None:
        ticket_id = session.execute(
            select(Ticket.id).where(Ticket.customer_id == conversation.customer_id).order_by(Ticket.id.desc()).limit(1)
        ).scalar_one_or_none()
    rating = CsatRating(
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        ticket_id=ticket_id,
        score=parse_score(score),
        comment=redact((comment or "").strip())[:MAX_COMMENT_CHARS],
    )
    session.add(rating)
    session.flush()
    return rating
