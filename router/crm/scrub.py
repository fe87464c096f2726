"""Redacting what is already stored: rows written before a kind of personal data was recognised (or before their
field was redacted at all) get the same treatment new rows get. ``kefu db redact`` runs it; running it again
changes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import CsatRating, Interaction, Ticket, TicketEvent, TrainingExample
from router.crm.redaction import known_pii, redact, redact_entities, redact_json

BATCH_ROWS = 500


def _ticket(ticket: Ticket) -> dict[str, Any]:
    known = known_pii(ticket.description)
    order_number = redact(ticket.order_number, known) if ticket.order_number else ticket.order_number
    return {
        "subject": redact(ticket.subject, known),
        "description": redact(ticket.description),
        "order_number": order_number,
    }


def _interaction(interaction: Interaction) -> dict[str, Any]:
    known = known_pii(interaction.text)
    return {
        "text": redact(interaction.text),
        "entities": redact_entities(interaction.entities or [], known),
        "buttons": redact_json(interaction.buttons, known=known),
    }


# Each stored row kind with the redacted values of its free-text fields.
_REDACTIONS: dict[type[Any], Callable[[Any], dict[str, Any]]] = {
    Ticket: _ticket,
    TicketEvent: lambda event: {"data": redact_json(event.data or {})},
    Interaction: _interaction,
    CsatRating: lambda rating: {"comment": redact(rating.comment)},
    TrainingExample: lambda example: {"text": redact(example.text)},
}


def _batches(session: Session, model: type[Any]) -> Iterator[list[Any]]:
    last_id = 0
    while rows := list(
        session.execute(select(model).where(model.id > last_id).order_by(model.id).limit(BATCH_ROWS)).scalars()
    ):
        yield rows
        last_id = rows[-1].id


def redact_stored(session: Session, commit: Callable[[], None]) -> Counter[str]:
    """Redact every stored free text in place, committing batch by batch; how many rows changed, by table."""
    changed: Counter[str] = Counter()
    for model, redacted in _REDACTIONS.items():
        for rows in _batches(session, model):
            for row in rows:
                values = redacted(row)
                if any(getattr(row, name) != value for name, value in values.items()):
                    for name, value in values.items():
                        setattr(row, name, value)
                    changed[model.__tablename__] += 1
            commit()
    return changed
