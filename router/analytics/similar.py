"""Similar past tickets: cosine similarity of TF-IDF vectors, so an agent sees how a problem like this was solved."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import Interaction, Speaker, Ticket, TicketEvent, TicketEventKind
from router.errors import InvalidInput, NotFound
from router.triage.text import normalise

# The newest resolved tickets are the ones whose fixes still apply; older ones would only slow the console.
MAX_CANDIDATES = 5000
MIN_SIMILARITY = 0.1


@dataclass(frozen=True)
class SimilarTicket:
    """An earlier resolved ticket like the current one, with how it was resolved."""

    ticket_id: int
    number: str
    subject: str
    category: str
    similarity: float
    resolution: str
    resolved_at: datetime | None


def _text(ticket: Ticket) -> str:
    return normalise(f"{ticket.subject} {ticket.description}")


def _resolutions(session: Session, ticket_ids: list[int]) -> dict[int, str]:
    """What each ticket's last resolution said, else the last thing an agent told the customer."""
    found: dict[int, str] = {}
    events = session.execute(
        select(TicketEvent.ticket_id, TicketEvent.data)
        .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == TicketEventKind.resolved)
        .order_by(TicketEvent.id)
    )
    for ticket_id, data in events:
        # Resolving in the console stores the agent's "summary"; generated demo history says "resolution".
        text = (data.get("summary") or data.get("resolution")) if isinstance(data, dict) else None
        if text:
            found[ticket_id] = str(text)
    replies = session.execute(
        select(Interaction.ticket_id, Interaction.text)
        .where(Interaction.ticket_id.in_(ticket_ids), Interaction.speaker == Speaker.agent)
        .order_by(Interaction.created_at, Interaction.id)
    )
    last_reply = {ticket_id: text for ticket_id, text in replies}
    return {ticket_id: found.get(ticket_id) or last_reply.get(ticket_id, "") for ticket_id in ticket_ids}


def similar_tickets(
    session: Session, ticket_id: int, k: int = 5, *, visible_teams: Collection[int] | None
) -> list[SimilarTicket]:
    """The ``k`` resolved tickets created before ``ticket_id`` that read most like it, most similar first.

    Only tickets of ``visible_teams`` are candidates (None: every team), so an agent never sees another team's
    tickets through this list; callers pass ``router.routing.visibility.team_scope(user)``. It has no default so
    that no caller forgets it.
    """
    if not 1 <= k <= 50:
        raise InvalidInput("k must be between 1 and 50")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"ticket {ticket_id} does not exist")
    if not _text(ticket).strip():
        return []
    statement = select(Ticket).where(
        Ticket.id != ticket.id, Ticket.resolved_at.is_not(None), Ticket.created_at <= ticket.created_at
    )
    if visible_teams is not None:
        # Filtered before ranking, so the k places go to tickets the user may open rather than being emptied later.
        statement = statement.where(Ticket.team_id.in_(list(visible_teams)))
    candidates = list(session.execute(statement.order_by(Ticket.created_at.desc()).limit(MAX_CANDIDATES)).scalars())
    if not candidates:
        return []
    # Character n-grams need no word segmentation, so Chinese and English tickets are compared alike.
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True)
    matrix = vectorizer.fit_transform([_text(candidate) for candidate in candidates] + [_text(ticket)])
    scores = linear_kernel(matrix[-1], matrix[:-1]).ravel()
    ranked = [i for i in scores.argsort()[::-1][:k] if scores[i] >= MIN_SIMILARITY]
    resolutions = _resolutions(session, [candidates[i].id for i in ranked])
    return [
        SimilarTicket(
            candidates[i].id,
            candidates[i].number,
            candidates[i].subject,
            candidates[i].category,
            round(float(scores[i]), 4),
            resolutions[candidates[i].id],
            candidates[i].resolved_at,
        )
        for i in ranked
    ]
