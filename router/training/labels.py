"""Turn reviews into training examples: an intent (existing or new, with responses) or out of scope for a customer
turn, and an agent's category correction for a ticket's complaint."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import (
    IntentDefinition,
    Interaction,
    Speaker,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TrainingExample,
)
from router.crm.seed import load_categories
from router.errors import InvalidInput, NotFound
from router.routing.events import announce_change

OUT_OF_SCOPE = "out_of_scope"
INTENT_TARGET = "intent"
COMPLAINT_TARGET = "complaint"
MAX_EXAMPLE_CHARS = 1000
MAX_RESPONSE_CHARS = 2000
MAX_TURNS_PER_LABEL = 500
_INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
# Intents the bot sets itself; a person labelling a turn with them would teach the model nonsense.
_RESERVED_INTENTS = frozenset({"nlu_fallback"})


@dataclass(frozen=True)
class Response:
    """One bot answer for a new intent, in one language."""

    language: str
    text: str


def domain_intents(project_dir: Path) -> list[str]:
    """Intents the assistant's ``domain.yml`` declares (empty when the project has none yet)."""
    path = project_dir / "domain.yml"
    if not path.exists():
        return []
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = [next(iter(item)) if isinstance(item, dict) else item for item in document.get("intents") or []]
    return [name for name in names if not name.startswith("EXTERNAL_")]


def known_intents(session: Session, project_dir: Path) -> list[str]:
    """Every intent a turn may be labelled with: the domain's plus those admins created."""
    created = session.execute(select(IntentDefinition.name).order_by(IntentDefinition.name)).scalars()
    names = dict.fromkeys([*domain_intents(project_dir), *created, OUT_OF_SCOPE])
    return [name for name in names if name not in _RESERVED_INTENTS]


def _clean_responses(responses: Sequence[Response]) -> list[dict[str, str]]:
    cleaned = []
    for response in responses:
        text = response.text.strip()
        if not text:
            continue
        if len(text) > MAX_RESPONSE_CHARS:
            raise InvalidInput(f"a response may have at most {MAX_RESPONSE_CHARS} characters")
        if response.language not in ("zh", "en"):
            raise InvalidInput(f"response language must be zh or en, not {response.language!r}")
        cleaned.append({"language": response.language, "text": text})
    return cleaned


def define_intent(
    session: Session, name: str, responses: Sequence[Response], project_dir: Path, user_id: int | None
) -> IntentDefinition:
    """Create a new intent with the answers the bot should give, so labelling can use it."""
    name = name.strip().lower()
    if not _INTENT_NAME.fullmatch(name):
        raise InvalidInput("an intent name is 2–64 lower-case letters, digits or _, starting with a letter")
    if name in known_intents(session, project_dir) or name in _RESERVED_INTENTS:
        raise InvalidInput(f"intent {name!r} already exists")
    cleaned = _clean_responses(responses)
    if not cleaned:
        raise InvalidInput("a new intent needs at least one response for the bot to give")
    definition = IntentDefinition(name=name, responses=cleaned, created_by=user_id)
    session.add(definition)
    session.flush()
    return definition


def label_turns(
    session: Session, interaction_ids: Sequence[int], intent: str, project_dir: Path, user_id: int | None
) -> list[TrainingExample]:
    """Label customer turns with a known intent (or out of scope); a turn labelled again gets the new label."""
    if intent not in known_intents(session, project_dir):
        raise InvalidInput(f"unknown intent {intent!r}: pick an existing one or create it with its responses")
    ids = list(dict.fromkeys(interaction_ids))
    if not ids:
        raise InvalidInput("choose at least one turn to label")
    if len(ids) > MAX_TURNS_PER_LABEL:
        raise InvalidInput(f"label at most {MAX_TURNS_PER_LABEL} turns at once")
    turns = session.execute(select(Interaction).where(Interaction.id.in_(ids))).scalars().all()
    found = {turn.id: turn for turn in turns}
    missing = [turn_id for turn_id in ids if turn_id not in found or found[turn_id].speaker is not Speaker.customer]
    if missing:
        raise NotFound(f"no customer turn with id {missing[0]}")
    existing = {
        example.interaction_id: example
        for example in session.execute(
            select(TrainingExample).where(
                TrainingExample.interaction_id.in_(ids), TrainingExample.target == INTENT_TARGET
            )
        ).scalars()
    }
    examples = []
    for turn_id in ids:
        turn = found[turn_id]
        text = turn.text.strip()[:MAX_EXAMPLE_CHARS]
        if not text:
            raise InvalidInput(f"turn {turn_id} has no text to learn from")
        example = existing.get(turn_id) or TrainingExample(target=INTENT_TARGET, interaction_id=turn_id)
        example.text, example.label, example.language, example.labelled_by = text, intent, turn.language, user_id
        session.add(example)
        examples.append(example)
    session.flush()
    return examples


def complaint_categories(data_dir: Path) -> list[str]:
    """The complaint categories a ticket may be corrected to (``data/triage/categories.yml``)."""
    return list(load_categories(data_dir)["categories"])


def correct_ticket_category(
    session: Session, ticket_id: int, category: str, data_dir: Path, user_id: int | None
) -> TrainingExample:
    """An agent's correction of a ticket's complaint category: fix the ticket and keep it as a training example."""
    if category not in complaint_categories(data_dir):
        raise InvalidInput(f"unknown complaint category {category!r}")
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    # The description is what the classifier read; the subject is only its first line, so learn from the former.
    text = (ticket.description.strip() or ticket.subject.strip())[:MAX_EXAMPLE_CHARS]
    if not text:
        raise InvalidInput(f"ticket {ticket.number} has no subject or description to learn from")
    previous = ticket.category
    ticket.category, ticket.needs_review = category, False
    session.add(
        TicketEvent(
            ticket=ticket,
            kind=TicketEventKind.category_corrected,
            actor_user_id=user_id,
            data={"from": previous, "to": category},
        )
    )
    announce_change(session)
    example = session.execute(
        select(TrainingExample).where(
            TrainingExample.ticket_id == ticket_id, TrainingExample.target == COMPLAINT_TARGET
        )
    ).scalar_one_or_none() or TrainingExample(target=COMPLAINT_TARGET, ticket_id=ticket_id)
    example.text, example.label, example.language, example.labelled_by = text, category, ticket.language, user_id
    session.add(example)
    session.flush()
    return example
