"""A customer writing again soon after a resolution: which of their turns reopen the ticket.

Every Rasa replica logs turns from its own buffer, so the rule reads only what the CRM stores: whether a turn
answers the satisfaction survey is the bot turn said before it, whichever process logged either.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import Conversation, Interaction, Speaker, Ticket
from router.errors import KefuError
from router.routing.policy import RoutingPolicy
from router.routing.tickets import recently_resolved_customers, reopen_if_recent

logger = logging.getLogger(__name__)

# Rating the service, thanking or small talk after a resolution is not the problem coming back.
NOT_A_RETURNING_PROBLEM = frozenset(
    {"give_rating", "thanks", "goodbye", "greet", "affirm", "deny", "chitchat", "nlu_fallback"}
)
# What a customer says to the satisfaction survey is feedback on the resolved ticket ("客服态度太差"), not the
# problem coming back, so it never reopens the ticket; a new complaint there opens a ticket of its own.
SURVEY_QUESTIONS = frozenset({"utter_ask_csat", "utter_ask_csat_comment"})


def answers_survey(session: Session, interaction: Interaction) -> bool:
    """Whether the last thing said to the customer before this turn (by the bot or an agent) was a survey question."""
    said_before = session.execute(
        select(Interaction.response)
        .where(
            Interaction.customer_id == interaction.customer_id,
            Interaction.speaker.in_((Speaker.bot, Speaker.agent)),
            Interaction.created_at < interaction.created_at,
        )
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return said_before in SURVEY_QUESTIONS


def reopen_on_customer_turn(session: Session, interaction: Interaction, policy: RoutingPolicy) -> Ticket | None:
    """A customer raising something again soon after a resolution reopens their ticket; survey feedback does not."""
    if interaction.speaker is not Speaker.customer or interaction.intent in (None, *NOT_A_RETURNING_PROBLEM):
        return None
    if answers_survey(session, interaction):
        return None
    conversation = session.get(Conversation, interaction.conversation_id)
    return reopen_if_recent(session, conversation, written_at=interaction.created_at, policy=policy)


def customers_back_in_window(session: Session, interactions: Sequence[Interaction], policy: RoutingPolicy) -> set[int]:
    """Customers who wrote within the reopen window of a resolution, counted from when they wrote, not when stored.

    Turns buffered while the CRM was away are stored late; one query covers the batch by stretching the window over
    the span of its turns, and ``reopen_on_customer_turn`` then checks each turn at its own time.
    """
    said = [i for i in interactions if i.speaker is Speaker.customer]
    if not said:
        return set()
    first, last = min(i.created_at for i in said), max(i.created_at for i in said)
    stretched = replace(policy, reopen_within=policy.reopen_within + (last - first))
    return recently_resolved_customers(session, {i.customer_id for i in said}, written_at=last, policy=stretched)


def reopen_on_customer_turns(
    session: Session, interactions: Sequence[Interaction], policy: RoutingPolicy
) -> list[Ticket]:
    """The event log's hook for a stored batch of turns: the tickets their customers reopened by writing again."""
    # Reopening is rare: only customers with a recently resolved ticket need the per-turn check.
    returning = customers_back_in_window(session, interactions, policy)
    reopened = []
    for interaction in interactions:
        if interaction.customer_id not in returning:
            continue
        try:
            with session.begin_nested():
                ticket = reopen_on_customer_turn(session, interaction, policy)
        except KefuError:
            # Someone reopened or closed it meanwhile; the turn itself must still be logged.
            logger.warning("Ticket not reopened for interaction %s", interaction.id, exc_info=True)
            continue
        if ticket is not None:
            reopened.append(ticket)
    return reopened
